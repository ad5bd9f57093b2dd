"""Single-channel whole-cell segmentation: seeds, two-channel targets, ROC, the method, the CLI."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from cellscape import io, synthetic
from cellscape.cli import app
from cellscape.methods.wholecell import PatchSampler, WholeCell, cross_validate, wholecell_loss
from cellscape.metrics import average_precision, sm_similarity
from cellscape.models import load_model
from cellscape.pipeline import segment_file
from cellscape.post.seeds import (
    cells_from_nuclei,
    multi_otsu_threshold,
    nuclei_from_map,
    shape_watershed,
)
from cellscape.roc import pixel_roc, plot_roc
from cellscape.twochannel import (
    TwoChannelSegmenter,
    class_targets,
    from_working_scale,
    to_working_scale,
    tophat,
)

runner = CliRunner()
TINY = dict(filters=(4, 8, 8), dropout=0.1, patch=48, margin=4, batch_size=2)


def _two_disks(gap: float):
    yy, xx = np.mgrid[:60, :90]
    d1 = np.hypot(yy - 30, xx - 30)
    d2 = np.hypot(yy - 30, xx - 30 - gap)
    return (d1 <= 12) | (d2 <= 12)


@pytest.fixture(scope="module")
def cells():
    return synthetic.whole_cells((160, 160), n_cells=10, seed=3)


@pytest.fixture(scope="module")
def tiny_model(cells):
    targets = TwoChannelSegmenter(cell_area=560).targets(cells.image, cells.nuclear_image)
    model = WholeCell(epochs=1, steps_per_epoch=3, seed=1, **TINY)
    return model.fit([cells.image], [targets], progress=False, threads=1)


# -- seeds and watershed ------------------------------------------
def test_shape_watershed_splits_touching_discs_unless_h_is_large():
    mask = _two_disks(gap=20)  # overlapping discs with a clear neck
    assert shape_watershed(mask, h=2).max() == 2
    assert shape_watershed(mask, h=30).max() == 1  # the neck is not h deep: one object
    assert shape_watershed(np.zeros((5, 5), bool), h=2).max() == 0


def test_multi_otsu_sensitivity_picks_lower_thresholds():
    rng = np.random.default_rng(0)
    values = np.concatenate([rng.normal(m, 0.05, 2000) for m in (0.1, 0.4, 0.7, 1.0)])
    ts = [multi_otsu_threshold(values, levels=4, sensitivity=s) for s in (0.0, 0.5, 1.0)]
    assert ts[0] > ts[1] > ts[2]
    assert 0.75 < ts[0] < 0.95 and 0.15 < ts[2] < 0.35


def test_nuclei_from_map_finds_each_nucleus(cells):
    nuclear = (cells.nuclei_labels > 0).astype(np.float32)
    nuclei = nuclei_from_map(nuclear, pixel_size=cells.pixel_size, nucleus_diameter=10)
    assert average_precision(cells.nuclei_labels, nuclei, 0.5) > 0.9


def test_a_ring_of_nucleus_signal_is_not_filled_into_a_giant_nucleus():
    yy, xx = np.mgrid[:120, :120]
    r = np.hypot(yy - 60, xx - 60)
    nucleus_map = ((r > 40) & (r < 44)).astype(np.float32)  # a halo around a cell
    for cy, cx in ((50, 50), (70, 75)):
        nucleus_map[np.hypot(yy - cy, xx - cx) <= 7] = 1.0
    nuclei = nuclei_from_map(nucleus_map, pixel_size=0.65, nucleus_diameter=10)
    assert np.bincount(nuclei.ravel())[1:].max() < 2000  # the ring is not filled (~5000 px)
    assert 0 != nuclei[50, 50] != nuclei[70, 75] != 0


def test_cells_from_nuclei_one_cell_per_nucleus_with_its_id():
    evidence = np.zeros((40, 80), np.float32)
    evidence[5:35, 5:75] = 1.0
    evidence[:, 40] = 0.6  # a darker border between the two cells
    nuclei = np.zeros((40, 80), np.int32)
    nuclei[18:22, 18:22] = 7
    nuclei[18:22, 58:62] = 3
    cells, t = cells_from_nuclei(evidence, nuclei, cell_area=600 * 0.65**2, pixel_size=0.65)
    assert sorted(np.unique(cells)) == [0, 3, 7]
    assert cells[20, 10] == 7 and cells[20, 70] == 3
    assert (cells[20, 5:40] == 7).all() and (cells[20, 41:75] == 3).all()
    # a threshold that keeps the cells: the expected area (2 x 600 px) is closer to 2100 px
    # (evidence > 0.3) than to the whole image
    assert (cells > 0).sum() == pytest.approx(30 * 70, rel=0.05)
    assert 0 < t < 1


def test_no_nuclei_gives_no_cells():
    cells, _ = cells_from_nuclei(np.ones((10, 10)), np.zeros((10, 10), int), cell_area=10)
    assert cells.max() == 0


# -- preprocessing and targets ------------------------------------------
def test_tophat_removes_a_smooth_background_and_keeps_small_objects():
    yy, xx = np.mgrid[:128, :128]
    background = 0.5 + xx / 256.0
    image = background.copy()
    image[60:70, 60:70] += 1.0
    out = tophat(image, size_um=30 * 0.65, pixel_size=0.65)
    assert abs(out[10, 10]) < 0.05 and abs(out[100, 120]) < 0.05
    assert out[65, 65] == pytest.approx(1.0, abs=0.1)
    np.testing.assert_array_equal(tophat(image, None, 0.65), image.astype(np.float32))


def test_working_scale_round_trip_shapes():
    plane = np.random.default_rng(0).random((101, 77)).astype(np.float32)
    small = to_working_scale(plane, pixel_size=0.325, working_pixel_size=0.65)
    assert small.shape == (50, 38) or small.shape == (51, 39)
    assert from_working_scale(small, plane.shape).shape == plane.shape
    labels = from_working_scale(np.arange(small.size).reshape(small.shape), (101, 77), True)
    assert set(np.unique(labels)) <= set(range(small.size))


def test_class_targets_one_hot_with_seams_between_touching_cells():
    cells_ = np.zeros((10, 12), np.int32)
    cells_[1:9, 1:6] = 1
    cells_[1:9, 6:11] = 2
    nuclei = np.zeros_like(cells_)
    nuclei[4:6, 2:4] = 1
    t = class_targets(cells_, nuclei)
    assert t.shape == (3, 10, 12)
    np.testing.assert_array_equal(t.sum(0), 1)
    assert t[0, 4, 2] == 1 and t[1, 2, 2] == 1 and t[2, 0, 0] == 1
    assert t[2, 4, 5] == 1 and t[2, 4, 6] == 1  # the seam between the cells is background
    assert t[1, 4, 1] == 1  # the rim facing the background stays cytoplasm


def test_two_channel_segmenter_on_synthetic(cells):
    result = TwoChannelSegmenter(cell_area=560).segment(cells.image, cells.nuclear_image)
    assert average_precision(cells.nuclei_labels, result.nuclei, 0.5) > 0.8
    assert sm_similarity(cells.labels, result.cells).mean > 0.6
    # every cell holds its nucleus' id
    inside = result.cells[result.nuclei > 0]
    np.testing.assert_array_equal(inside, result.nuclei[result.nuclei > 0])


def test_two_channel_rejects_mismatched_planes():
    with pytest.raises(ValueError, match="one shape"):
        TwoChannelSegmenter().segment(np.zeros((10, 10)), np.zeros((10, 11)))


# -- ROC ------------------------------------------
def test_pixel_roc_by_hand(tmp_path):
    truth = np.array([0, 0, 1, 1], bool)
    roc = pixel_roc(truth, np.array([0.1, 0.4, 0.35, 0.8]))
    assert roc.auc == pytest.approx(0.75)  # 3 of the 4 (pos, neg) pairs ordered correctly
    assert roc.accuracy == pytest.approx(0.75)  # 0.35 is below 0.5
    assert pixel_roc(truth, truth.astype(float)).auc == pytest.approx(1.0)
    assert (roc.fpr[0], roc.tpr[0], roc.fpr[-1], roc.tpr[-1]) == (0, 0, 1, 1)
    rng = np.random.default_rng(0)
    assert pixel_roc(rng.random(20000) > 0.5, rng.random(20000)).auc == pytest.approx(0.5, abs=0.02)
    assert np.isnan(pixel_roc(np.zeros(3, bool), np.ones(3)).auc)
    png = plot_roc({"cell": roc}, tmp_path / "roc.png")
    assert png.stat().st_size > 1000


# -- the network, loss and sampler -----------------------------------------------------------------
def test_paper_network_shape_and_three_dropout_layers():
    net = WholeCell()._build()
    assert net(torch.zeros(1, 1, 32, 32)).shape == (1, 3, 32, 32)
    convs = [m.out_channels for m in net.down.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs[::2] == [32, 64, 128, 128, 256]
    assert sum(isinstance(m, torch.nn.Dropout2d) for m in net.modules()) == 3
    assert sum(isinstance(m, torch.nn.ConvTranspose2d) for m in net.modules()) == 4


@pytest.mark.parametrize("kind", ["rmsd", "cross_entropy"])
def test_loss_prefers_the_truth_and_ignores_the_margin(kind):
    targets = torch.zeros(1, 3, 32, 32)
    targets[:, 2] = 1
    targets[:, 0, 10:20, 10:20], targets[:, 2, 10:20, 10:20] = 1, 0
    good = (targets * 2 - 1) * 8  # confident, right
    bad = -good
    assert wholecell_loss(good, targets, kind, margin=4) < 0.05
    assert wholecell_loss(bad, targets, kind, margin=4) > 1.0
    # what the network says in the 4-px rim does not count
    rim = good.clone()
    rim[..., :4, :] = -rim[..., :4, :]
    assert wholecell_loss(rim, targets, kind, margin=4) == pytest.approx(
        float(wholecell_loss(good, targets, kind, margin=4)), abs=1e-6
    )
    assert wholecell_loss(rim, targets, kind, margin=0) > wholecell_loss(
        good, targets, kind, margin=0
    )


def test_rmsd_loss_punishes_maps_that_do_not_sum_to_one():
    targets = torch.zeros(1, 3, 16, 16)
    targets[:, 2] = 1
    all_high = torch.full((1, 3, 16, 16), 8.0)  # every class ~1: sums to 3
    assert wholecell_loss(all_high, targets, "rmsd", sum_weight=1.0, margin=0) > 4.0


def test_patch_sampler_rotates_targets_with_the_image():
    x = np.zeros((64, 64), np.float32)
    x[5:15, 40:60] = 1
    t = np.zeros((3, 64, 64), np.float32)
    t[2] = 1
    t[0][x > 0], t[2][x > 0] = 1, 0
    sampler = PatchSampler([(x, t)], patch=64, batch_size=8)
    xs, ts = sampler(np.random.default_rng(0))
    assert xs.shape == (8, 1, 64, 64) and ts.shape == (8, 3, 64, 64)
    for xi, ti in zip(xs, ts, strict=True):
        bright = xi[0] > xi[0].mean()
        np.testing.assert_array_equal(bright.numpy(), ti[0].numpy() > 0.5)
    np.testing.assert_allclose(ts.sum(1), 1)


# -- the estimator ------------------------------------------
def test_fit_predict_segment_save_load(tiny_model, cells, tmp_path):
    p = tiny_model.predict_proba(cells.image)
    assert p.shape == (3, 160, 160) and p.dtype == np.float32
    np.testing.assert_allclose(p.sum(0), 1, atol=1e-4)
    labels, nuclei = tiny_model.segment_with_nuclei(cells.image)
    assert labels.shape == (160, 160) and labels.dtype == np.int32
    # one cell per nucleus, sharing its id
    assert set(np.unique(labels)) <= set(np.unique(nuclei))
    assert tiny_model.cell_area_ > 0
    folder = tiny_model.save(tmp_path / "model")
    loaded = load_model(folder)
    assert isinstance(loaded, WholeCell) and loaded.filters == TINY["filters"]
    np.testing.assert_allclose(loaded.predict_proba(cells.image), p, atol=2e-2)
    # the pipeline of `cellscape segment --model <folder>`
    io.write_tiff(tmp_path / "img.tif", cells.image)
    result = segment_file(tmp_path / "img.tif", loaded, tmp_path / "out")
    assert result.ok, result.error
    assert io.read_labels(tmp_path / "out" / "img_masks.tif").shape == (160, 160)


def test_rescaling_to_the_working_pixel_size(tiny_model, cells):
    meta = io.ImageMeta(axes="YX", pixel_size=0.325)
    x, _ = tiny_model.preprocess(cells.image, meta)
    assert x.shape == (80, 80)
    assert tiny_model.predict_proba(cells.image, meta).shape == (3, 160, 160)


def test_unfitted_model_and_bad_targets_are_clear_errors(cells):
    from cellscape.errors import CellscapeError

    with pytest.raises(CellscapeError, match="not been trained"):
        WholeCell().predict_proba(cells.image)
    with pytest.raises(ValueError, match=r"\(3, Y, X\)"):
        WholeCell(**TINY).fit([cells.image], [cells.labels], progress=False)
    with pytest.raises(ValueError, match="loss"):
        WholeCell(loss="l1").fit([cells.image], [np.zeros((3, 160, 160))], progress=False)


def test_cross_validation_reports_roc_and_sm():
    data = [synthetic.whole_cells((96, 96), n_cells=4, seed=s) for s in range(3)]
    seg = TwoChannelSegmenter(cell_area=560)
    result = cross_validate(
        lambda: WholeCell(epochs=1, steps_per_epoch=1, **TINY),
        [d.image for d in data],
        [seg.targets(d.image, d.nuclear_image) for d in data],
        k=3,
        cell_labels=[d.labels for d in data],
        progress=False,
        threads=1,
    )
    assert len(result["folds"]) == 3
    assert sorted(j for f in result["folds"] for j in f["test"]) == [0, 1, 2]
    for key in ("nucleus_auc", "cell_auc", "cell_accuracy", "sm_mean"):
        assert 0 <= result["summary"][key] <= 1
    with pytest.raises(ValueError, match="k >= 3"):
        cross_validate(WholeCell, [1, 2], [1, 2], k=2)


# -- command line ------------------------------------------
@pytest.fixture(scope="module")
def two_channel_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("train")
    for s in range(3):
        d = synthetic.whole_cells((96, 96), n_cells=4, seed=s)
        meta = io.ImageMeta(axes="CYX", channel_names=("marker", "nuclear"), pixel_size=0.65)
        io.write_tiff(folder / f"img{s}.tif", np.stack([d.image, d.nuclear_image]), meta)
    return folder


def test_cli_train_then_segment(two_channel_files, tmp_path):
    out = tmp_path / "model"
    args = ["train", "wholecell", str(two_channel_files), "--out", str(out), "--filters", "4,8,8"]
    args += ["--epochs", "1", "--steps", "2", "--batch-size", "2", "--patch", "48"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert (out / "weights.safetensors").exists()
    d = synthetic.whole_cells((96, 96), n_cells=4, seed=9)
    io.write_tiff(tmp_path / "single.tif", d.image)
    result = runner.invoke(
        app, ["segment", str(tmp_path / "single.tif"), "--model", str(out), "--out", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "single_masks.tif").exists()


def test_cli_cross_validation_saves_the_roc_plot(two_channel_files, tmp_path):
    args = ["train", "wholecell", str(two_channel_files), "--out", str(tmp_path), "--cv", "3"]
    args += ["--filters", "4,8,8", "--epochs", "1", "--steps", "1", "--patch", "48"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "cv_roc.png").stat().st_size > 1000
    assert io.read_json(tmp_path / "cv.json")["summary"]["cell_auc"] >= 0


def test_cli_single_channel_training_image_is_one_line_error(tmp_path, disks):
    io.write_tiff(tmp_path / "one.tif", disks[0])
    result = runner.invoke(app, ["train", "wholecell", str(tmp_path / "one.tif")])
    assert result.exit_code == 2
    assert "one.tif" in result.output and "nuclear channel" in result.output
    assert "Traceback" not in result.output
