"""Windowed conv-nets (DeepCell 2016): dilated inference, sampling, post-processing, CLI."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from cellscape import io
from cellscape.errors import CellscapeError
from cellscape.methods.convnet import (
    ConvNet,
    WindowSampler,
    class_targets,
    normalize_channels,
    pad_for_window,
    select_channels,
    threshold_instances,
)
from cellscape.models import load_model
from cellscape.nn.windowed import WindowNet, _shrink, plan_layers, predict_dense, predict_windows
from cellscape.post.snakes import grow_cells_from_nuclei


def _receptive_field(layers, dense_kernel):
    rf, d = 1, 1
    for layer in layers:
        if layer == "p":
            rf += d
            d *= 2
        else:
            rf += (int(layer) - 1) * d
    return rf + (dense_kernel - 1) * d


@pytest.mark.parametrize("window", [15, 31, 41, 61])
def test_layer_plan_receptive_field_is_the_window(window):
    layers = plan_layers(window)
    net = WindowNet(1, 3, window, layers=layers, filters=2, dense=4)
    assert _receptive_field(layers, net.dense_kernel) == window
    assert net(torch.zeros(2, 1, window, window)).shape == (2, 3)


def test_bad_layer_plan_is_refused():
    assert _shrink(31, (4, "p", 4, "p")) is None  # 28 -> 14 -> 11: odd before pooling
    with pytest.raises(ValueError, match="do not fit"):
        WindowNet(1, 3, 31, layers=(4, "p", 4, "p"))
    with pytest.raises(ValueError, match="odd"):
        WindowNet(1, 3, 30)


def _randomise_batchnorm(net, seed=0):
    g = torch.Generator().manual_seed(seed)
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            n = m.num_features
            m.running_mean.copy_(torch.rand(n, generator=g) - 0.5)
            m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(n, generator=g) + 0.5)
            m.bias.data.copy_(torch.rand(n, generator=g) - 0.5)
    return net.eval()


@pytest.mark.parametrize("window, channels", [(31, 1), (21, 2)])
def test_dilated_inference_equals_window_by_window(window, channels):
    torch.manual_seed(1)
    net = _randomise_batchnorm(WindowNet(channels, 4, window, filters=4, dense=8))
    rng = np.random.default_rng(0)
    image = rng.normal(size=(channels, 23, 37)).astype(np.float32)
    padded = pad_for_window(image, window)
    dense = predict_dense(net, padded, rows=7)  # strips must not change the answer
    assert dense.shape == (4, 23, 37)
    ys, xs = np.meshgrid(np.arange(23), np.arange(37), indexing="ij")
    windows = predict_windows(net, padded, ys.ravel(), xs.ravel(), batch=300)
    np.testing.assert_allclose(dense.reshape(4, -1), windows, atol=1e-4)
    # and the answer really depends on the window: shifting the image changes it
    assert np.abs(dense[:, :, 1:] - dense[:, :, :-1]).max() > 1e-3


def test_normalisation_divides_by_median_and_removes_local_mean():
    rng = np.random.default_rng(0)
    plane = 1000 + 50 * rng.random((40, 50))
    plane[:, 25:] += 400  # a step: the local mean follows it
    out = normalize_channels(np.stack([plane, 3 * plane]), window=9)
    assert out.shape == (2, 40, 50) and out.dtype == np.float32
    np.testing.assert_allclose(out[0], out[1], atol=1e-5)  # brightness does not matter
    assert abs(out[0, :, :20].mean()) < 0.01 and abs(out[0, :, 30:].mean()) < 0.01
    blank = normalize_channels(np.zeros((1, 10, 10)), 5)
    assert np.all(blank == 0)


def test_class_targets_from_labels_and_features():
    labels = np.zeros((8, 10), np.int32)
    labels[1:6, 1:5] = 1
    labels[1:6, 5:9] = 2
    cls = class_targets(labels)
    assert cls[0, 0] == 0 and cls[3, 2] == 2
    assert cls[3, 4] == 1 and cls[3, 5] == 1  # touching cells are parted by edge pixels
    features = np.zeros((3, 8, 10), np.uint8)
    features[1, 1:4, 1:4] = 1
    features[2, 5:7, 5:8] = 1
    features[0, 1, 1:4] = 1
    cls = class_targets(features, n_types=2)
    assert cls[1, 2] == 1 and cls[2, 2] == 2 and cls[6, 6] == 3 and cls[0, 9] == 0
    with pytest.raises(ValueError, match="interior classes"):
        class_targets(features, n_types=1)


def test_sampler_balances_classes_and_augments():
    rng = np.random.default_rng(0)
    cls = np.zeros((30, 40), np.int64)
    cls[5:10, 5:10] = 2
    cls[4, 4:11] = 1
    padded = [pad_for_window(rng.normal(size=(1, 30, 40)).astype(np.float32), 9)]
    sampler = WindowSampler(padded, [cls], 9, 64, rng)
    counts = np.bincount(sampler.labels)
    assert counts.tolist() == [7, 7, 7]  # down-sampled to the rarest class (7 edge pixels)
    x, y = sampler(np.random.default_rng(1))
    assert x.shape == (64, 1, 9, 9) and y.shape == (64,)
    # the window of an edge pixel is centred on that pixel (before rotation / reflection)
    plain = WindowSampler(padded, [cls], 9, 1, np.random.default_rng(0), augment=False)
    img, flat = plain.pool[0]
    yy, xx = divmod(int(flat), 40)
    xb, _ = plain(np.random.default_rng(0))
    i = np.random.default_rng(0).integers(0, len(plain.pool), 1)[0]
    img, flat = plain.pool[i]
    yy, xx = divmod(int(flat), 40)
    np.testing.assert_allclose(xb[0, 0, 4, 4].item(), padded[0][0, yy + 4, xx + 4], rtol=1e-6)


def test_threshold_instances_and_adaptive_keeps_dim_objects():
    interior = np.zeros((30, 60), np.float32)
    interior[5:15, 5:15] = 0.9  # bright
    interior[5:15, 30:40] = 0.45  # dim
    foreground = np.zeros_like(interior)
    foreground[4:16, 4:16] = 1
    fixed = threshold_instances(interior, foreground, threshold=0.6, grow=1, min_size=5)
    assert fixed.max() == 1
    # grown by one pixel (Euclidean: not the 4 corners) into the foreground only
    assert (fixed > 0).sum() == 12 * 12 - 4
    adaptive = threshold_instances(interior, None, threshold=0.6, adaptive=True, min_size=5)
    assert adaptive.max() == 2


def test_snakes_keep_touching_cells_apart():
    yy, xx = np.mgrid[:60, :90]
    cell1 = (yy - 30) ** 2 + (xx - 28) ** 2 < 18**2
    cell2 = (yy - 30) ** 2 + (xx - 62) ** 2 < 18**2
    interior = 0.9 * (cell1 | cell2).astype(np.float32)
    interior[:, 44:46] = 0.1  # the edge between the touching cells
    nuclei = np.zeros((60, 90), np.int32)
    nuclei[(yy - 30) ** 2 + (xx - 28) ** 2 < 5**2] = 1
    nuclei[(yy - 30) ** 2 + (xx - 62) ** 2 < 5**2] = 2
    cells = grow_cells_from_nuclei(interior, nuclei, iterations=30)
    assert set(np.unique(cells)) == {0, 1, 2}
    assert (cells == 1).sum() > 600 and (cells == 2).sum() > 600  # grown well past the nuclei
    assert np.all(cells[:, :40][cells[:, :40] > 0] == 1)
    assert np.all(cells[:, 50:][cells[:, 50:] > 0] == 2)
    assert cells[0, 0] == 0


def _disk_scene(seed=0, shape=(64, 80)):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    labels = np.zeros(shape, np.int32)
    for i, (cy, cx) in enumerate([(16, 20), (42, 52), (18, 60), (46, 18)], start=1):
        labels[(yy - cy) ** 2 + (xx - cx) ** 2 <= 49] = i
    image = 100 + 600 * (labels > 0) + rng.normal(0, 20, shape)
    return image.astype(np.float32), labels


@pytest.fixture(scope="module")
def trained():
    image, labels = _disk_scene()
    model = ConvNet(
        channels=("phase",),
        window=15,
        filters=4,
        dense=16,
        steps=150,
        batch_size=64,
        learning_rate=5e-3,
        n_models=2,
        threshold=0.5,
    )
    return model.fit([image], [labels], progress=False, threads=1)


def test_convnet_learns_and_ensemble_averages(trained):
    image, labels = _disk_scene(seed=3)
    proba = trained.predict_proba(image)
    assert proba.shape == (3, 64, 80) and proba.dtype == np.float32
    np.testing.assert_allclose(proba.sum(0), 1.0, atol=1e-5)
    inside = labels > 0
    assert (proba[0][~inside] > 0.5).mean() > 0.9
    assert (proba[0][inside] < 0.5).mean() > 0.9
    cells = trained.segment(image)
    assert 3 <= cells.max() <= 5
    members = [predict_dense(n, trained._input(image, None)) for n in trained.nets_]
    np.testing.assert_allclose(proba, (members[0] + members[1]) / 2, atol=1e-6)
    ys, xs = np.array([16, 30, 42]), np.array([20, 5, 52])
    np.testing.assert_allclose(trained.predict_windows(image, ys, xs), proba[:, ys, xs], atol=1e-4)


def test_save_load_and_load_model_round_trip(trained, tmp_path):
    image, _ = _disk_scene(seed=4)
    trained.save(tmp_path / "m")
    loaded = load_model(tmp_path / "m")
    assert isinstance(loaded, ConvNet) and len(loaded.nets_) == 2
    # float16 weights on disk: close, not bit-equal
    np.testing.assert_allclose(loaded.predict_proba(image), trained.predict_proba(image), atol=2e-2)
    assert loaded.class_names == ("background", "edge", "interior")


def test_snakes_model_with_nuclear_submodel(trained, tmp_path):
    image, _ = _disk_scene(seed=5)
    whole = ConvNet(**{**trained.get_params(), "postprocess": "snakes", "snake_iterations": 5})
    whole.nets_ = trained.nets_
    whole.set_nuclear_model(trained)
    cells = whole.segment(image)
    assert cells.max() >= 3
    whole.save(tmp_path / "w")
    assert (tmp_path / "w" / "nuclear" / "config.json").is_file()
    again = ConvNet.load(tmp_path / "w")
    assert again.nuclear_ is not None and again.segment(image).max() == cells.max()


def test_cell_type_scores_and_winner():
    model = ConvNet(cell_types=("A", "B"))
    labels = np.zeros((4, 6), np.int32)
    labels[:, :3] = 1
    labels[:, 3:] = 2
    proba = np.zeros((4, 4, 6), np.float32)
    proba[2, :, :3], proba[3, :, :3] = 0.7, 0.1
    proba[2, :, 3:], proba[3, :, 3:] = 0.2, 0.6
    result = model.cell_types_from(labels, proba)
    assert result.type_names == ("A", "B")
    np.testing.assert_allclose(result.scores, [[0.7, 0.1], [0.2, 0.6]], atol=1e-6)
    assert result.types.tolist() == [0, 1]
    assert model.class_names == ("background", "edge", "A", "B")


def test_select_channels_by_name_position_and_errors():
    image = np.stack([np.zeros((5, 6)), np.ones((5, 6))])
    meta = io.ImageMeta(axes="CYX", channel_names=("phase", "nuclear"))
    x = select_channels(image, meta, ("nuclear", "phase"))
    assert x[0, 0, 0] == 1 and x[1, 0, 0] == 0
    unnamed = io.ImageMeta(axes="CYX")
    assert select_channels(image, unnamed, ("phase", "nuclear")).shape == (2, 5, 6)
    pages = io.ImageMeta(axes="ZYX")  # a plain 2-page TIFF: pages = channels, in order
    assert select_channels(image, pages, ("phase", "nuclear"))[1, 0, 0] == 1
    with pytest.raises(CellscapeError, match="expected"):
        select_channels(np.zeros((3, 5, 6)), pages, ("phase", "nuclear"))
    with pytest.raises(CellscapeError, match="needs channels"):
        select_channels(image, meta, ("phase", "TRITC"))
    with pytest.raises(CellscapeError, match="has one"):
        select_channels(np.zeros((5, 6)), None, ("phase", "nuclear"))
    with pytest.raises(CellscapeError, match="not been trained"):
        ConvNet().predict_proba(np.zeros((5, 6)))


def test_cli_train_and_segment(tmp_path):
    from cellscape.cli import app

    image, labels = _disk_scene()
    data = tmp_path / "data" / "set1"
    data.mkdir(parents=True)
    io.write_tiff(data / "phase.tif", image.astype(np.uint16))
    cls = class_targets(labels)
    io.write_tiff(data / "feature_0.tif", (cls == 1).astype(np.uint8) * 255)
    io.write_tiff(data / "feature_1.tif", (cls == 2).astype(np.uint8) * 255)
    runner = CliRunner()
    out = tmp_path / "model"
    result = runner.invoke(
        app,
        [
            "train",
            "convnet",
            "--data",
            str(tmp_path / "data"),
            "--channels",
            "phase",
            "--window",
            "15",
            "--filters",
            "4",
            "--dense",
            "8",
            "--steps",
            "30",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert (out / "config.json").is_file() and (out / "weights.safetensors").is_file()
    io.write_tiff(tmp_path / "img.tif", image.astype(np.uint16))
    result = runner.invoke(
        app,
        ["segment", str(tmp_path / "img.tif"), "--model", str(out), "--out", str(tmp_path / "res")],
    )
    assert result.exit_code == 0, result.output
    assert io.read_labels(tmp_path / "res" / "img_masks.tif").shape == (64, 80)
    bad = runner.invoke(
        app,
        [
            "train",
            "convnet",
            "--data",
            str(tmp_path / "data"),
            "--channels",
            "nuclear",
            "--out",
            str(tmp_path / "m2"),
        ],
    )
    assert bad.exit_code == 2 and "no training images" in bad.output
