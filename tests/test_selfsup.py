"""Label-free marker-controlled segmentation: graph cut, markers, the loss, the estimator, CLI.

Tiny synthetic images and a few training steps only (the whole file runs in seconds).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from cellscape import io, synthetic
from cellscape.cli import app
from cellscape.errors import CellscapeError
from cellscape.markers import (
    SyntheticNuclei,
    dog_markers,
    marker_errors,
    markers_from_labels,
)
from cellscape.methods.selfsup import SelfSupervised, clean_labels
from cellscape.models import load_model
from cellscape.pipeline import segment_file
from cellscape.post.graphcut import calibrate, graphcut_mask, scribble_map
from cellscape.selfsup_net import canvas_index, dihedral, selfsup_loss, undo_dihedral

runner = CliRunner()


@pytest.fixture(scope="module")
def cells():
    s = synthetic.whole_cells((128, 128), 10, cell_radius=(12, 16), nucleus_radius=(4, 6), seed=2)
    meta = io.ImageMeta(axes="CYX", channel_names=("cell", "nuclear"))
    return s, np.stack([s.image, s.nuclear_image]), meta


def tiny(**kw) -> SelfSupervised:
    params = dict(patch=32, sigma=8.0, steps=30, window=128, filters=(4, 8), scale=1.0)
    params.update(kw)
    return SelfSupervised(**params)


# -- graph cut -----------------------------------------------------------------------------------
def test_graphcut_follows_probability_and_kappa_removes_specks():
    x = np.full((40, 40), 0.2)
    x[10:30, 10:30] = 0.8
    x[2, 2] = 0.95  # an isolated speck
    plain = graphcut_mask(x, alpha=0.5, kappa=0.0)
    assert plain[2, 2] and plain[10:30, 10:30].all() and plain.sum() == 401
    smooth = graphcut_mask(x, alpha=0.5, kappa=2.0)
    assert not smooth[2, 2] and smooth[12:28, 12:28].all()
    # alpha is the prior area fraction: a small alpha needs x > 1 - alpha
    assert graphcut_mask(x, alpha=0.1, kappa=0.0).sum() == 1  # only the 0.95 speck
    assert graphcut_mask(x, alpha=0.9, kappa=0.0).all()


def test_calibrated_intensity_cut_matches_synthetic_cell_area(cells):
    s, _, _ = cells
    from cellscape.post.graphcut import intensity_map

    mask = graphcut_mask(calibrate(intensity_map(s.image)), kappa=1.0)
    truth = s.labels > 0
    assert (mask & truth).sum() / (mask | truth).sum() > 0.75


def test_scribble_forest_separates_cells_from_background(cells):
    s, _, _ = cells
    scribbles = np.zeros(s.labels.shape, np.int32)
    rng = np.random.default_rng(0)
    for value, where in ((1, s.labels == 0), (2, s.labels > 0)):
        pts = np.argwhere(where)
        pick = pts[rng.choice(len(pts), 60, replace=False)]
        scribbles[pick[:, 0], pick[:, 1]] = value
    prob = scribble_map(s.image, scribbles, n_estimators=20)
    assert prob[s.labels > 0].mean() > prob[s.labels == 0].mean() + 0.4
    with pytest.raises(ValueError, match="both"):
        scribble_map(s.image, np.where(scribbles == 2, 2, 0))


# -- markers -------------------------------------------------------------------------------------
def test_dog_markers_find_the_synthetic_nuclei(cells):
    s, _, _ = cells
    pts = dog_markers(s.nuclear_image)
    err = marker_errors(pts, s.nuclei_labels, max_distance=5.0)
    assert err.n_true == s.labels.max()
    assert err.fn_rate <= 0.1 and err.fp_rate <= 0.1


def test_marker_errors_pairs_one_to_one_within_distance_in_um():
    true = np.array([[10.0, 10.0], [50.0, 50.0], [90.0, 90.0]])
    pred = np.array([[12.0, 10.0], [13.0, 10.0], [50.0, 70.0]])
    err = marker_errors(pred, true, max_distance=15.0, pixel_size=1.0)
    # one pair near (10, 10); (50, 70) is 20 px from its nucleus; (90, 90) is missed
    assert err.n_matched == 1
    assert err.fn_rate == pytest.approx(2 / 3) and err.fp_rate == pytest.approx(2 / 3)
    # 15 µm at 0.5 µm per pixel is 30 px: now (50, 70) pairs too
    err = marker_errors(pred, true, max_distance=15.0, pixel_size=0.5)
    assert err.n_matched == 2 and err.max_distance_px == 30.0


def test_centroids_of_a_concave_object_stay_inside_it():
    labels = np.zeros((30, 30), np.int32)
    labels[5:25, 5:8] = 1
    labels[5:8, 5:25] = 1  # an L: its centroid lies outside
    labels[15:20, 15:20] = 2
    pts = markers_from_labels(labels)
    assert labels[tuple(np.round(pts[0]).astype(int))] == 1
    assert np.allclose(pts[1], (17, 17))


def test_synthetic_nuclei_train_save_load(tmp_path, cells):
    s, _, _ = cells
    model = SyntheticNuclei(filters=(4, 8), steps=3, batch_size=2, patch=64)
    model.fit(s.image, s.nuclear_image, progress=False)
    prob = model.predict_proba(s.image)
    assert prob.shape == s.image.shape and 0 <= prob.min() and prob.max() <= 1
    model.save(tmp_path / "nuc")
    again = SyntheticNuclei.load(tmp_path / "nuc")
    np.testing.assert_allclose(again.predict_proba(s.image), prob, atol=2e-3)
    with pytest.raises(CellscapeError, match="not a synthetic-nucleus model"):
        io.write_json(tmp_path / "x" / "config.json", {"method": "unet"})
        SyntheticNuclei.load(tmp_path / "x")


# -- the loss ------------------------------------------------------------------------------------
def test_cross_patch_term_equals_the_sum_over_pairs():
    rng = np.random.default_rng(0)
    k = 6
    corners = np.array([[0, 0], [3, 2], [8, 9], [2, 4]])
    y = torch.tensor(rng.uniform(0.05, 0.95, (4, k, k)), dtype=torch.float64)
    valid = torch.ones_like(y)
    outside = torch.zeros_like(y)
    outside[0, :2] = 1
    index, size = canvas_index(corners, k)
    loss, parts = selfsup_loss(y, valid, outside, index, size, lam=3.32, beta=2.0)
    # brute force: every ordered pair i != j over the canvas pixels both patches cover
    canvas = np.zeros((4, 20, 20))
    for i, (cy, cx) in enumerate(corners):
        canvas[i, cy : cy + k, cx : cx + k] = y[i].numpy()
    cover = np.zeros((4, 20, 20), bool)
    for i, (cy, cx) in enumerate(corners):
        cover[i, cy : cy + k, cx : cx + k] = True
    cross = 0.0
    for i in range(4):
        for j in range(4):
            if i != j:
                both = cover[i] & cover[j]
                cross += np.sum(-canvas[i][both] * np.log10(1 - canvas[j][both]))
    n = y.numel()
    area = float(y.sum())
    spill = float((y * outside).sum())
    assert parts["cross"] * n == pytest.approx(cross)
    assert float(loss) == pytest.approx((-area + 3.32 * cross + 2.0 * spill) / n)
    # balanced weight: with the other patch at 0.5 the cross term cancels the area term
    assert 3.32 * -np.log10(0.5) == pytest.approx(1.0, abs=0.001)


def test_flips_and_transposes_are_undone():
    x = torch.arange(2 * 5 * 5, dtype=torch.float32).reshape(2, 1, 5, 5)
    for t in range(8):
        assert torch.equal(undo_dihedral(dihedral(x, t), t), x)
    assert len({tuple(dihedral(x, t).flatten().tolist()) for t in range(8)}) == 8


# -- the estimator -------------------------------------------------------------------------------
def test_fit_segment_save_load_and_segment_with_the_saved_model(tmp_path, cells):
    s, image, meta = cells
    model = tiny().fit(image, None, meta, progress=False)
    assert model.info_["markers"] == ["nuclear channel"] and model.info_["steps"] == 30
    labels = model.segment(image, meta)
    assert labels.shape == s.labels.shape and labels.dtype == np.int32
    markers, _ = model.find_markers(image, meta)
    # cells grow from their own marker: no marker lies in another marker's cell
    at_marker = labels[tuple(np.round(markers).astype(int).T)]
    assert np.all((at_marker == 0) | (at_marker == np.arange(1, len(markers) + 1)))
    assert (at_marker > 0).mean() >= 0.5
    model.save(tmp_path / "model")
    loaded = load_model(tmp_path / "model")
    assert isinstance(loaded, SelfSupervised) and loaded.filters == (4, 8)
    np.testing.assert_array_equal(loaded.segment(image, meta), labels)
    proba = loaded.predict_proba(image, meta)
    assert proba.shape == (2, *s.labels.shape)
    np.testing.assert_allclose(proba.sum(0), 1.0, atol=1e-5)
    # the pipeline of `cellscape segment --model`
    io.write_tiff(tmp_path / "two.tif", image, meta)
    result = segment_file(tmp_path / "two.tif", loaded, tmp_path / "out")
    assert result.ok, result.error
    assert io.read_labels(tmp_path / "out" / "two_masks.tif").max() > 0


def test_beta_zero_and_given_markers_work(cells):
    s, image, meta = cells
    pts = markers_from_labels(s.nuclei_labels)
    model = tiny(beta=0.0, steps=30).fit(s.image, markers=pts, progress=False)
    assert model.info_["terms_end"]["outside"] == 0.0
    labels = model.segment(s.image, markers=pts)
    assert 0 < len(np.unique(labels)) - 1 <= len(pts)


def test_training_lowers_the_loss(cells):
    s, image, meta = cells
    model = tiny(steps=40, filters=(8, 16)).fit(image, None, meta, progress=False)
    assert model.info_["loss_end"] < model.info_["loss_start"]


def test_synthetic_nucleus_markers_for_single_channel_images(tmp_path, cells):
    s, image, meta = cells
    nuc = SyntheticNuclei(filters=(4, 8), steps=2, batch_size=2, patch=64, threshold=0.0)
    nuc.fit(s.image, s.nuclear_image, progress=False)
    model = tiny(markers_from="synthetic").fit(s.image, nucleus_model=nuc, progress=False)
    assert model.info_["markers"] == ["synthetic nuclei"]
    model.save(tmp_path / "m")
    loaded = load_model(tmp_path / "m")
    assert isinstance(loaded.nucleus_model_, SyntheticNuclei)
    assert loaded.segment(s.image).shape == s.image.shape


def test_bad_input_is_one_clear_error(cells):
    s, image, meta = cells
    with pytest.raises(CellscapeError, match="no markers"):
        tiny().fit(s.image, progress=False)
    with pytest.raises(ValueError, match="without labels"):
        tiny().fit(image, s.labels, meta)
    with pytest.raises(CellscapeError, match="not been fitted"):
        tiny().segment(image, meta)
    with pytest.raises(CellscapeError, match="does not match"):
        tiny().find_markers(image, meta, nuclei=np.zeros((5, 5)))


def test_clean_labels_keeps_the_marker_piece_and_drops_small_cells():
    labels = np.zeros((20, 20), np.int32)
    labels[2:8, 2:8] = 1
    labels[12:14, 12:14] = 1  # a stray piece of cell 1
    labels[15:17, 2:4] = 2  # 4 px: too small
    out = clean_labels(labels, np.array([[4.0, 4.0], [16.0, 3.0]]), min_size=5)
    assert (out == 1).sum() == 36 and (out == 2).sum() == 0


# -- command line --------------------------------------------------------------------------------
def test_cli_selfsup_then_segment_with_the_saved_model(tmp_path, cells):
    s, image, meta = cells
    io.write_tiff(tmp_path / "cells.tif", s.image)
    io.write_tiff(tmp_path / "nuclei.tif", s.nuclear_image)
    out = tmp_path / "out"
    args = ["selfsup", str(tmp_path / "cells.tif"), "--nuclei", str(tmp_path / "nuclei.tif")]
    result = runner.invoke(app, [*args, "--out", str(out), "--steps", "3", "--patch", "32"])
    assert result.exit_code == 0, result.output
    assert "markers from the nucleus image" in result.output
    for name in ("cells_masks.tif", "cells_overlay.png", "cells_markers.csv", "model"):
        assert (out / name).exists()
    # new two-channel images: markers from their nuclear channel
    io.write_tiff(tmp_path / "new" / "two.tif", image, meta)
    result = runner.invoke(
        app,
        ["segment", str(tmp_path / "new"), "--model", str(out / "model"), "--out", str(out)],
    )
    assert result.exit_code == 0, result.output
    assert (out / "two_masks.tif").exists()
    # a single-channel image and no nucleus model: one line, no traceback
    result = runner.invoke(app, ["selfsup", str(tmp_path / "cells.tif"), "--out", str(out)])
    assert result.exit_code == 2 and "no markers" in result.output
    assert "Traceback" not in result.output
    result = runner.invoke(app, ["selfsup", str(tmp_path / "missing.tif")])
    assert result.exit_code == 2 and "file not found" in result.output


def test_cli_nucleus_model_then_selfsup_without_a_nuclear_stain(tmp_path, cells):
    s, _, _ = cells
    io.write_tiff(tmp_path / "cells.tif", s.image)
    io.write_tiff(tmp_path / "nuclei.tif", s.nuclear_image)
    result = runner.invoke(
        app,
        [
            "selfsup-nuclei",
            str(tmp_path / "cells.tif"),
            str(tmp_path / "nuclei.tif"),
            "--out",
            str(tmp_path / "nuc"),
            "--steps",
            "2",
        ],
    )
    assert result.exit_code == 0, result.output
    result = runner.invoke(
        app,
        [
            "selfsup",
            str(tmp_path / "cells.tif"),
            "--nucleus-model",
            str(tmp_path / "nuc"),
            "--out",
            str(tmp_path / "out"),
            "--steps",
            "2",
            "--patch",
            "32",
        ],
    )
    # an untrained nucleus model may find no nuclei: either way one clean line
    assert result.exit_code in (0, 2), result.output
    assert "Traceback" not in result.output
    if result.exit_code == 0:
        assert "markers from the synthetic nuclei" in result.output
