"""``cellscape train unet``: fine-tune the bundled nuclei U-Net, or train one, on a pair folder."""

from __future__ import annotations

import numpy as np
from typer.testing import CliRunner

from cellscape import io, synthetic
from cellscape.cli import app
from cellscape.cli.unet import _held_out
from cellscape.models import load_model

runner = CliRunner()


def _pairs(folder, n=4, shape=(96, 96)):
    for i in range(n):
        s = synthetic.nuclei(shape=shape, n_nuclei=10, radius=(5, 8), seed=100 + i)
        io.write_tiff(folder / f"cell{i}_img.tif", s.image)
        io.write_labels(folder / f"cell{i}_masks.tif", s.labels)
    return folder


def test_held_out_pairs_are_stable_and_at_least_one():
    ids = [f"img{i}" for i in range(12)]
    picked = _held_out(ids, 0.1)
    assert len(picked) == 1 and picked <= set(ids)
    assert _held_out(list(reversed(ids)), 0.1) == picked  # the order of the files does not matter
    assert len(_held_out(ids, 0.25)) == 3
    assert _held_out(ids[:2], 0.5) == set()  # too few to hold any out


def test_fine_tune_nuclei_writes_a_model_segment_can_use(tmp_path):
    pairs = _pairs(tmp_path / "pairs")
    out = tmp_path / "model"
    args = ["train", "unet", str(pairs), "--out", str(out), "--epochs", "1", "--steps", "2"]
    result = runner.invoke(app, [*args, "--tune-fraction", "0.25", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert "3 pairs to learn from, 1 held out; starting from 'nuclei'" in result.output
    assert "starting model" in result.output and "trained model" in result.output
    model = load_model(out)
    bundled = load_model("nuclei")
    assert model.filters == bundled.filters and model.colour == bundled.colour
    assert model.learning_rate == bundled.learning_rate * 0.25
    info = model.info_
    assert info["initialised_from"] == "nuclei" and len(info["held_out_ids"]) == 1
    assert set(info["tune_scores"]) == {"starting model", "trained model"}
    # the weights moved away from the bundled ones, and the model segments nuclei
    a = model.net_.state_dict()["head.weight"]
    b = bundled.net_.state_dict()["head.weight"]
    assert not np.allclose(a.numpy(), b.numpy())
    seg = runner.invoke(
        app, ["segment", str(pairs / "cell0_img.tif"), "--model", str(out), "--out", str(tmp_path)]
    )
    assert seg.exit_code == 0, seg.output
    assert io.read_labels(tmp_path / "cell0_masks.tif").max() > 0


def test_train_from_scratch_and_clear_errors(tmp_path):
    pairs = _pairs(tmp_path / "pairs", n=2, shape=(64, 64))
    out = tmp_path / "scratch"
    result = runner.invoke(
        app,
        ["train", "unet", str(pairs), "--out", str(out), "--init", "none"]
        + ["--filters", "8,16,32", "--epochs", "1", "--steps", "2", "--device", "cpu"],
    )
    assert result.exit_code == 0, result.output
    assert "2 pairs to learn from, 0 held out; a new network" in result.output
    assert load_model(out).filters == (8, 16, 32)

    bad = runner.invoke(app, ["train", "unet", str(pairs), "--init", "classical"])
    assert bad.exit_code == 2 and "is a 'classical' model, not a U-Net" in bad.output
    empty = tmp_path / "empty"
    empty.mkdir()
    none = runner.invoke(app, ["train", "unet", str(empty)])
    assert none.exit_code == 2 and "no <id>_img / <id>_masks image pairs found" in none.output
    assert "Traceback" not in bad.output + none.output


def test_train_a_two_channel_network_and_segment_with_it(tmp_path):
    pairs = tmp_path / "pairs"
    pairs.mkdir()
    for i in range(2):
        s = synthetic.whole_cells(shape=(64, 64), n_cells=4, cell_radius=(10, 14), seed=i)
        io.write_tiff(pairs / f"f{i}_img.tif", np.stack([s.image, s.nuclear_image]))
        io.write_labels(pairs / f"f{i}_masks.tif", s.labels)
    out = tmp_path / "two"
    result = runner.invoke(
        app,
        ["train", "unet", str(pairs), "--out", str(out), "--init", "none", "--channels"]
        + ["cyto,nuclear", "--filters", "8,16", "--epochs", "1", "--steps", "2", "--device", "cpu"],
    )
    assert result.exit_code == 0, result.output
    model = load_model(out)
    assert model.channels == ("cyto", "nuclear")
    seg = runner.invoke(
        app, ["segment", str(pairs / "f0_img.tif"), "--model", str(out), "--out", str(tmp_path)]
    )
    assert seg.exit_code == 0, seg.output
    assert io.read_labels(tmp_path / "f0_masks.tif").shape == (64, 64)
    # one channel where the model needs two: a one-line error naming the file
    one = tmp_path / "one.tif"
    io.write_tiff(one, s.image)
    bad = runner.invoke(app, ["segment", str(one), "--model", str(out), "--out", str(tmp_path)])
    assert bad.exit_code != 0 and "one.tif" in bad.output and "needs 2 channels" in bad.output
    assert "Traceback" not in bad.output
    # a model to fine-tune keeps its channels
    keep = runner.invoke(app, ["train", "unet", str(pairs), "--init", str(out), "--channels", "a"])
    assert keep.exit_code == 2 and "keeps its own channels (cyto, nuclear)" in keep.output
