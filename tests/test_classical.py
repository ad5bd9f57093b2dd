"""The classical baseline and the model registry."""

from __future__ import annotations

import numpy as np
import pytest

from cellscape import metrics
from cellscape.errors import CellscapeError
from cellscape.io import ImageMeta
from cellscape.methods.classical import Classical
from cellscape.models import list_models, load_model


def test_separated_disks_are_found_exactly(disks):
    image, labels = disks
    pred = Classical().segment(image)
    assert pred.dtype == np.int32
    assert pred.max() == 3
    assert metrics.average_precision(labels, pred, thresholds=(0.8,))[0] == 1.0


def test_touching_disks_are_split(disks):
    _, _ = disks
    yy, xx = np.mgrid[:60, :90]
    labels = np.zeros((60, 90), np.int32)
    labels[(yy - 30) ** 2 + (xx - 30) ** 2 <= 14**2] = 1
    labels[((yy - 30) ** 2 + (xx - 56) ** 2 <= 14**2) & (labels == 0)] = 2
    image = (labels > 0).astype(np.float32) * 100 + 10
    pred = Classical().segment(image)
    assert pred.max() == 2
    assert metrics.average_precision(labels, pred, thresholds=(0.7,))[0] == 1.0


def test_dark_objects_on_bright_background_are_found(disks):
    image, labels = disks
    inverted = image.max() - image
    pred = Classical().segment(inverted)
    assert pred.max() == 3
    assert metrics.average_precision(labels, pred, thresholds=(0.8,))[0] == 1.0
    # forcing the wrong polarity finds the background instead
    assert Classical(polarity="bright").segment(inverted).max() != 3


def test_rgb_and_channel_selection(disks):
    image, labels = disks
    rgb = np.stack([image, image, image]).astype(np.float32)
    pred = Classical().segment(rgb, ImageMeta(axes="CYX", rgb=True, channel_names=("r", "g", "b")))
    assert pred.max() == 3
    two = np.stack([np.zeros_like(image), image])
    meta = ImageMeta(axes="CYX", channel_names=("empty", "nuclei"))
    assert Classical(channel="nuclei").segment(two, meta).max() == 3
    with pytest.raises(CellscapeError, match="no channel named"):
        Classical(channel="dapi").segment(two, meta)


def test_z_stack_is_refused_with_a_clear_message():
    with pytest.raises(CellscapeError, match="expected a 2-D image"):
        Classical().segment(np.zeros((3, 8, 8)), ImageMeta(axes="ZYX"))


def test_blank_image_gives_no_cells():
    assert Classical().segment(np.full((32, 32), 7, np.uint8)).max() == 0


def test_predict_proba_sums_to_one(disks):
    image, labels = disks
    proba = Classical().predict_proba(image)
    assert proba.shape == (2,) + image.shape and proba.dtype == np.float32
    np.testing.assert_allclose(proba.sum(0), 1.0, atol=1e-6)
    assert proba[1][labels > 0].mean() > 0.9 and proba[1][labels == 0].mean() < 0.1


def test_fit_learns_diameter_and_save_load_round_trip(tmp_path, disks):
    _, labels = disks
    model = Classical().fit(None, [labels])
    assert model.diameter_ == pytest.approx(2 * np.sqrt((labels == 1).sum() / np.pi))
    model.save(tmp_path / "m")
    again = load_model(tmp_path / "m")
    assert isinstance(again, Classical) and again.diameter_ == pytest.approx(model.diameter_)
    assert again.get_params() == model.get_params()


def test_registry_lists_and_loads_models():
    names = [card.name for card in list_models()]
    assert "classical" in names
    assert isinstance(load_model("classical", diameter=12.0), Classical)
    assert load_model("classical", diameter=12.0).diameter == 12.0
    with pytest.raises(CellscapeError, match="unknown model"):
        load_model("nope")


def test_image_folder_named_like_a_bundled_model_does_not_hide_it(tmp_path, monkeypatch):
    (tmp_path / "classical").mkdir()  # e.g. a folder of images the user called so
    monkeypatch.chdir(tmp_path)
    assert isinstance(load_model("classical"), Classical)


def test_folder_that_is_not_a_model_is_refused(tmp_path):
    (tmp_path / "config.json").write_text('{"hello": 1}')
    with pytest.raises(CellscapeError, match="not a cellscape model"):
        load_model(tmp_path)
