"""The napari plugin: its pure functions (no Qt), its reader/writer, and the widgets driven
headlessly in a real napari viewer under a virtual X screen (pytest-xvfb).

Without napari/Qt/X the widget tests skip, except where ``CELLSCAPE_REQUIRE_NAPARI=1`` (CI),
where they fail instead.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import subprocess
import sys

import numpy as np
import pytest

from cellscape.errors import CellscapeError
from cellscape.napari import core

REQUIRE = os.environ.get("CELLSCAPE_REQUIRE_NAPARI") == "1"


@functools.cache
def _gui_problem() -> str | None:
    """Why napari's Qt viewer cannot run here, or None when it can."""
    for module in ("napari", "qtpy", "pytestqt"):
        if importlib.util.find_spec(module) is None:
            return f"{module} is not installed (pip install 'cellscape[napari]')"
    if not os.environ.get("DISPLAY"):
        return "no X display (install Xvfb: pytest-xvfb then starts one)"
    # Qt aborts the whole process when its platform plugin cannot load (missing libxcb-*
    # packages): try in a child process first
    probe = subprocess.run(
        [sys.executable, "-c", "from qtpy.QtWidgets import QApplication; QApplication([])"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if probe.returncode != 0:
        lines = [ln for ln in probe.stderr.splitlines() if ln.strip()]
        return "Qt cannot start: " + (lines[0] if lines else f"exit code {probe.returncode}")
    return None


@pytest.fixture
def viewer(request):
    """A napari viewer (napari's make_napari_viewer fixture), or skip/fail with the reason."""
    problem = _gui_problem()
    if problem:
        if REQUIRE:
            pytest.fail(f"CELLSCAPE_REQUIRE_NAPARI=1 but {problem}")
        pytest.skip(problem)
    make = request.getfixturevalue("make_napari_viewer")
    return make()


@pytest.fixture
def qtbot_(request):
    return request.getfixturevalue("qtbot")


def _two_cells():
    lab = np.zeros((40, 60), np.int32)
    lab[5:35, 5:25] = 1  # one tall cell
    lab[10:30, 35:55] = 2
    return lab


# --------------------------------------------------------------------------------------------
# pure curation functions
# --------------------------------------------------------------------------------------------


def test_cell_at_and_delete():
    lab = _two_cells()
    assert core.cell_at(lab, (20, 10)) == 1
    assert core.cell_at(lab, (0, 0)) == 0
    assert core.cell_at(lab, (-5, 1000)) == 0
    out = core.delete_cell(lab, 2)
    assert not (out == 2).any() and (out == 1).sum() == (lab == 1).sum()
    assert (lab == 2).any()  # input untouched
    with pytest.raises(CellscapeError, match="no cell 7"):
        core.delete_cell(lab, 7)


def test_merge_fills_the_seam():
    lab = np.zeros((20, 30), np.int32)
    lab[5:15, 5:14] = 4
    lab[5:15, 15:25] = 9  # one background column between them
    out = core.merge_cells(lab, [9, 4])
    assert set(np.unique(out)) == {0, 4}
    assert (out[5:15, 14] == 4).all()  # seam filled
    assert out[0, 0] == 0 and (out > 0).sum() == 10 * 20
    with pytest.raises(CellscapeError, match="at least two"):
        core.merge_cells(lab, [4])
    with pytest.raises(CellscapeError, match="no cell with id 5"):
        core.merge_cells(lab, [4, 5])


def test_split_along_a_line():
    lab = _two_cells()
    # a horizontal cut through cell 1 (rows 5..34) at row 20, drawn a bit beyond the cell
    out = core.split_cell(lab, np.array([[20.0, 0.0], [20.0, 28.0]]))
    ids = set(np.unique(out)) - {0}
    assert ids == {1, 2, 3}
    assert (out > 0).sum() == (lab > 0).sum()  # line pixels given back to a piece
    assert (out[6:19, 10] == out[6, 10]).all() and out[6, 10] != out[33, 10]
    assert (out == 2).sum() == (lab == 2).sum()  # the other cell untouched
    # a diagonal cut also separates (8-connected lines must not leak)
    diag = core.split_cell(lab, np.array([[3.0, 3.0], [37.0, 27.0]]))
    assert len(set(np.unique(diag)) - {0}) == 3
    with pytest.raises(CellscapeError, match="does not cut"):
        core.split_cell(lab, np.array([[20.0, 10.0], [20.0, 15.0]]))  # inside only
    with pytest.raises(CellscapeError, match="crosses no cell"):
        core.split_cell(lab, np.array([[1.0, 30.0], [38.0, 30.0]]))
    # a cell of two blobs (after a merge): only the blob the line crosses is cut
    two = np.where(lab == 2, 1, lab)
    cut = core.split_cell(two, np.array([[20.0, 0.0], [20.0, 28.0]]))
    assert set(np.unique(cut)) == {0, 1, 2} and (cut[lab == 2] == cut[lab == 2][0]).all()


def test_add_cell_and_relabel():
    lab = _two_cells()
    mask = np.zeros_like(lab, bool)
    mask[20:38, 20:40] = True  # overlaps cell 1 and cell 2 and background
    out, new = core.add_cell(lab, mask)
    assert new == 3
    assert (out == 1).sum() == (lab == 1).sum()  # existing cells keep their pixels
    assert ((out == 3) == (mask & (lab == 0))).all()
    out2, _ = core.add_cell(lab, mask, overwrite=True)
    assert (out2[mask] == 3).all()
    with pytest.raises(CellscapeError, match="nothing painted"):
        core.add_cell(lab, np.zeros_like(mask))
    gappy = np.array([[0, 5, 5], [9, 0, 2]])
    assert core.relabel(gappy).tolist() == [[0, 2, 2], [3, 0, 1]]


def test_layer_image_conventions():
    rgb = np.zeros((10, 12, 3), np.uint8)
    arr, meta = core.layer_image(rgb, rgb=True, scale=(0.5, 0.5))
    assert arr.shape == (3, 10, 12) and meta.rgb and meta.pixel_size == 0.5
    arr, meta = core.layer_image(np.zeros((5, 10, 12)), metadata={"cellscape": {"z_step": 0.2}})
    assert meta.axes == "ZYX" and meta.z_step == 0.2 and meta.pixel_size is None
    with pytest.raises(CellscapeError):
        core.layer_image(np.zeros((2, 3, 4, 5)))


def test_class_means_and_profile():
    stack = np.ones((6, 8, 8), np.float32)
    stack[:, :2] *= np.arange(1, 7)[:, None, None]  # top rows brighten along z
    painted = np.zeros((8, 8), np.int32)
    painted[:2] = 1
    painted[6:] = 2
    mean, std = core.class_means(stack, painted, 3)
    assert mean.shape == (3, 6) and np.isnan(mean[2]).all()
    assert np.allclose(mean[0], np.arange(1, 7)) and np.allclose(mean[1], 1.0)
    prof = core.z_profile(stack, (1, 1))
    assert np.allclose(prof, mean[0]) and core.z_profile(stack, (50, 1)) is None
    with pytest.raises(CellscapeError, match="two classes"):
        core.painted_classes(np.where(painted == 1, 1, 0), ["a", "b"])
    assert core.painted_classes(painted, ["a", "b", "c"]) == ["a", "b"]


def test_callback_steps_reports_and_raises():
    def work(n, on_epoch):
        for i in range(n):
            on_epoch(i, float(i) / 2)
        return "ok"

    gen = core.callback_steps(work, 3)
    seen = []
    with pytest.raises(StopIteration) as stop:
        while True:
            seen.append(next(gen))
    assert seen == [(0, 0.0), (1, 0.5), (2, 1.0)] and stop.value.value == "ok"

    def boom(on_epoch):
        raise CellscapeError(None, "bad")

    with pytest.raises(CellscapeError, match="bad"):
        list(core.callback_steps(boom))


def test_save_masks_and_export(tmp_path):
    from cellscape.io import ImageMeta, read_labels, read_rois

    lab = _two_cells() * 3  # ids 3, 6: saved consecutively
    path = core.save_masks(tmp_path / "img.tif", lab, ImageMeta("YX", 0.5))
    assert path.name == "img_masks.tif"
    back = read_labels(path)
    assert set(np.unique(back)) == {0, 1, 2} and ((back > 0) == (lab > 0)).all()
    assert not list(tmp_path.glob(".*"))  # no temporary left over
    image = np.random.default_rng(0).integers(0, 100, lab.shape).astype(np.uint16)
    written = core.export(tmp_path / "out", "img", lab, image, ImageMeta("YX", 0.5))
    assert sorted(p.name for p in written) == ["img_cells.csv", "img_masks.tif", "img_rois.zip"]
    rois = read_rois(tmp_path / "out" / "img_rois.zip", lab.shape)
    assert rois.max() == 2 and ((rois > 0) == (lab > 0)).all()
    import pandas as pd

    table = pd.read_csv(tmp_path / "out" / "img_cells.csv")
    assert table["area"].tolist() == [600, 400] and "area_um2" in table
    assert np.isclose(table["mean_intensity"].iloc[0], image[lab == 3].mean())


def test_segment_steps_classical(disks):
    from cellscape.models import load_model

    image, truth = disks
    gen = core.segment_steps(load_model("classical"), image, None)
    stages = []
    with pytest.raises(StopIteration) as stop:
        while True:
            stages.append(next(gen))
    seg = stop.value.value
    assert stages == ["predicting", "finding cells"]
    assert seg.labels.max() == 3 and seg.probabilities.shape[1:] == image.shape


def test_fit_focal_on_painted_stack():
    from cellscape.synthetic import brightfield_zstack

    s = brightfield_zstack(shape=(64, 64), n_frames=12, dz=0.3, kind="ecoli", seed=1)
    painted = np.zeros((64, 64), np.int32)
    rng = np.random.default_rng(0)
    keep = rng.random(painted.shape) < 0.3  # sparse strokes
    painted[(s.classes == 1) & keep] = 1  # interior
    painted[(s.classes == 2) & keep] = 2  # contour
    painted[(s.classes == 0) & keep] = 3  # background
    model = core.fit_focal(s.stack, painted, core.FOCAL_CLASSES, classifier="linear")
    assert model.class_names == core.FOCAL_CLASSES
    assert model.info_["validation"]["accuracy"] > 0.7
    seg = core.run_steps(core.segment_steps(model, s.stack, None))
    assert seg.class_map.shape == (64, 64) and seg.labels.max() >= 1
    with pytest.raises(CellscapeError, match="z-stack"):
        core.run_steps(core.segment_steps(model, s.stack[0], None))
    # classes painted: only 1 and 3 -> the model gets the two used names
    two = np.where(painted == 2, 0, painted)
    model2 = core.fit_focal(s.stack, two, core.FOCAL_CLASSES, classifier="linear")
    assert model2.class_names == ("interior", "background")


# --------------------------------------------------------------------------------------------
# reader, writer and sample data (npe2 contributions, no Qt)
# --------------------------------------------------------------------------------------------


def test_reader_and_writer_round_trip(tmp_path):
    from cellscape.io import ImageMeta, write_ome_zarr, write_tiff
    from cellscape.napari import _io

    lab = _two_cells()
    img = (lab * 100 + 10).astype(np.uint16)
    write_tiff(tmp_path / "a.tif", img, ImageMeta("YX", 0.5))
    paths = _io.write_labels_layer(str(tmp_path / "a.tif"), lab, {"scale": [0.5, 0.5]})
    assert paths == [str(tmp_path / "a_masks.tif")]
    reader = _io.get_reader(paths[0])
    ((data, kwargs, kind),) = reader(paths[0])
    assert kind == "labels" and (data == lab).all() and kwargs["scale"] == [0.5, 0.5]
    ((data, kwargs, kind),) = _io.get_reader(str(tmp_path / "a.tif"))(str(tmp_path / "a.tif"))
    assert (
        kind == "image"
        and kwargs["name"] == "a"
        and kwargs["metadata"]["cellscape"]["pixel_size"] == pytest.approx(0.5)
    )
    assert _io.get_reader(str(tmp_path / "nothing.xyz")) is None
    # OME-Zarr: image + labels/ open together; the writer adds labels to an existing one
    write_ome_zarr(tmp_path / "b.zarr", img, ImageMeta("YX", 0.5), labels={"cells": lab})
    _io.write_labels_layer(str(tmp_path / "b.zarr"), lab == 1, {"name": "curated"})
    layers = _io.read_layers(str(tmp_path / "b.zarr"))
    kinds = [(k, kw["name"]) for _, kw, k in layers]
    assert kinds == [("image", "b"), ("labels", "cells"), ("labels", "curated")]
    assert (layers[2][0] == (lab == 1)).all()
    # an Image layer written and read back keeps its pixels and scale
    out = _io.write_image_layer(str(tmp_path / "c.tif"), img, {"scale": [0.25, 0.25]})
    ((data, kwargs, _),) = _io.read_layers(out[0])
    assert (data == img).all() and kwargs["scale"] == [0.25, 0.25]


def test_sample_data_shapes():
    from cellscape.napari import _io

    layers = _io.sample_zstack()
    (stack, kw, kind), (classes, ckw, ckind), (cells, _, _) = layers
    assert kind == "image" and stack.ndim == 3 and classes.shape == stack.shape[1:]
    assert ckind == "labels" and "interior" in ckw["metadata"]["class_names"]
    assert len(kw["scale"]) == 3
    nuc = _io.sample_nuclei()
    assert nuc[0][0].shape == nuc[1][0].shape and nuc[1][0].max() > 10


def test_manifest_is_valid():
    npe2 = pytest.importorskip("npe2") if not REQUIRE else __import__("npe2")
    from importlib.resources import files

    manifest = npe2.PluginManifest.from_file(files("cellscape.napari") / "napari.yaml")
    commands = {c.id for c in manifest.contributions.commands}
    assert {w.command for w in manifest.contributions.widgets} <= commands
    for c in manifest.contributions.commands:  # every python_name resolves
        module, attr = c.python_name.split(":")
        if module.endswith("_widgets") and _gui_problem():
            continue
        assert callable(getattr(__import__(module, fromlist=[attr]), attr))


# --------------------------------------------------------------------------------------------
# the widgets, headless in a real viewer
# --------------------------------------------------------------------------------------------


def _wait(qtbot, worker, timeout=60_000):
    assert worker is not None
    with qtbot.waitSignal(worker.finished, timeout=timeout):
        pass


def test_segment_curate_export_widgets(viewer, qtbot_, tmp_path):
    from cellscape.napari._widgets import CurateWidget, ExportWidget, SegmentWidget
    from cellscape.synthetic import nuclei

    s = nuclei(shape=(96, 96), n_nuclei=8, touching=0.0, seed=3)
    layer = viewer.add_image(s.image, name="nuc", scale=(0.65, 0.65))
    seg = SegmentWidget(viewer)
    viewer.window.add_dock_widget(seg)
    seg.model.setCurrentText("classical")
    worker = seg.start()
    _wait(qtbot_, worker)
    assert "nuc masks" in viewer.layers and "cells found" in seg.status.text()
    masks = viewer.layers["nuc masks"]
    n0 = int(masks.data.max())
    assert n0 >= 5 and masks.scale[-1] == pytest.approx(0.65)
    assert any(name.startswith("nuc P(") for name in [ly.name for ly in viewer.layers])

    cur = CurateWidget(viewer)
    viewer.window.add_dock_widget(cur)
    cur.labels.select("nuc masks")
    ids = [i for i in np.unique(masks.data) if i]
    # delete by clicking
    cur.click.setCurrentText("delete")
    ys, xs = np.nonzero(masks.data == ids[0])
    assert cur.click_at((ys[0], xs[0])) == ids[0]
    assert ids[0] not in masks.data
    # merge two cells picked by click
    cur.click.setCurrentText("merge")
    for cell in ids[1:3]:
        ys, xs = np.nonzero(masks.data == cell)
        cur.click_at((ys[0], xs[0]))
    assert ids[2] not in masks.data and ids[1] in masks.data
    # split a cell along a line drawn in the Shapes layer
    before = len(np.unique(masks.data))
    ys, xs = np.nonzero(masks.data == ids[3])
    cy = int(np.median(ys))
    lines = cur.cut_layer()
    lines.add_paths([np.array([[cy, xs.min() - 3], [cy, xs.max() + 3]], float)])
    cur.split()
    assert len(np.unique(masks.data)) == before + 1, cur.status.text()
    # add a painted cell on background
    painting = cur.paint_layer()
    free = np.argwhere(masks.data == 0)
    r, c = free[len(free) // 2]
    blob = np.zeros_like(painting.data)
    blob[max(r - 2, 0) : r + 3, max(c - 2, 0) : c + 3] = 1
    painting.data = blob
    top = int(masks.data.max())
    cur.add()
    assert int(masks.data.max()) == top + 1 and not painting.data.any()
    cur.undo()
    assert int(masks.data.max()) == top
    # save atomically, read back
    cur.path.setText(str(tmp_path / "nuc.tif"))
    saved = cur.save()
    from cellscape.io import read_labels

    assert saved.name == "nuc_masks.tif"
    assert ((read_labels(saved) > 0) == (masks.data > 0)).all()
    # napari opens it through the plugin's manifest as a Labels layer
    (opened,) = viewer.open(str(saved), plugin="cellscape")
    assert type(opened).__name__ == "Labels" and opened.name == "nuc_masks"
    assert (opened.data > 0).sum() == (masks.data > 0).sum()

    exp = ExportWidget(viewer)
    exp.labels.select("nuc masks")
    exp.image.select("nuc")
    exp.folder.setText(str(tmp_path / "export"))
    written = exp.export()
    assert sorted(p.name for p in written) == ["nuc_cells.csv", "nuc_masks.tif", "nuc_rois.zip"]
    assert layer.data is not None


def test_train_focal_widget_on_zstack(viewer, qtbot_):
    from cellscape.napari._widgets import SESSION_MODELS, SegmentWidget, TrainWidget

    viewer.open_sample("cellscape", "zstack")  # through the manifest
    truth = viewer.layers["classes ground truth"].data
    seg = SegmentWidget(viewer)
    train = TrainWidget(viewer)
    viewer.window.add_dock_widget(train)
    train.image.select("bright-field z-stack")
    train.classifier.setCurrentText("linear")
    paint = train.add_paint_layer()
    assert paint.data.shape == truth.shape and paint.selected_label == 1
    train.paint_class.setCurrentIndex(2)
    assert paint.selected_label == 3
    # "paint" sparse strokes of interior (1), contour (2) and background (3)
    strokes = np.zeros_like(paint.data)
    rows = np.arange(truth.shape[0]) % 6 == 0
    for value, cls in ((1, 1), (2, 2), (3, 0)):
        strokes[rows[:, None] & (truth == cls)] = value
    paint.data = strokes
    assert train.means is not None and not np.isnan(train.means[0]).any()
    profile = train.profile_at_world(
        viewer.layers["bright-field z-stack"].data_to_world((0, 50, 50))
    )
    assert profile is not None and profile.shape == (40,)
    worker = train.start()
    _wait(qtbot_, worker, 120_000)
    assert "held-out accuracy" in train.readout.text(), train.status.text()
    assert train.model.info_["validation"]["accuracy"] > 0.8
    masks = viewer.layers["bright-field z-stack masks"].data
    assert masks.shape == truth.shape and masks.max() >= 3
    assert "bright-field z-stack classes" in viewer.layers
    assert "trained: focal linear" in SESSION_MODELS
    assert seg.model.findText("trained: focal linear") >= 0  # Segment offers it at once


def test_train_unet_widget_and_retrain(viewer, qtbot_, tmp_path):
    from cellscape.napari._widgets import CurateWidget, SegmentWidget, TrainWidget
    from cellscape.synthetic import nuclei

    s = nuclei(shape=(64, 64), n_nuclei=5, touching=0.0, seed=2)
    viewer.add_image(s.image, name="img")
    train = TrainWidget(viewer)
    train.image.select("img")
    train.method.setCurrentText("unet")
    train.epochs.setValue(2)
    train.steps.setValue(3)
    paint = train.add_paint_layer()
    paint.data = s.labels.astype(np.int32)  # painted cells
    worker = train.start()
    _wait(qtbot_, worker, 120_000)
    assert len(train.losses) == 2 and all(np.isfinite(train.losses)), train.status.text()
    assert "epoch 2/2" in train.readout.text()
    assert "img masks" in viewer.layers
    saved = train.save_model(str(tmp_path / "model"))
    assert (saved / "config.json").exists()
    seg = SegmentWidget(viewer)
    name = seg.add_saved_model(str(tmp_path / "model"))
    assert name and seg.model.currentText() == name
    # retrain from the curated masks, starting from the session's U-Net
    cur = CurateWidget(viewer)
    cur.labels.select("img masks")
    cur.image.select("img")
    viewer.layers["img masks"].data = s.labels
    cur.epochs.setValue(1)
    worker = cur.retrain()
    _wait(qtbot_, worker, 120_000)
    assert cur.model is not None and "retrained" in cur.status.text()
    assert seg.model.currentText() == "retrained: unet"
