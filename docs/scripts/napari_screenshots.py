"""Screenshots of the napari plugin's widgets for docs/napari.md.

Runs napari on a virtual X screen when there is no display (pyvirtualdisplay + Xvfb, installed
with ``cellscape[napari]`` and Debian's ``xvfb``), opens the plugin's synthetic sample data,
drives each widget the way a user would (segment, paint classes and train, curate, export)
and saves one picture per widget into ``docs/images/napari_<widget>.png``::

    .venv/bin/python docs/scripts/napari_screenshots.py [--out docs/images]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np

SIZE = (1500, 900)


def _wait(app, worker, timeout: float = 300.0) -> None:
    """Let the Qt event loop run until a napari worker has finished."""
    if worker is None:
        raise RuntimeError("the widget did not start a job")
    done = {"flag": False}
    worker.finished.connect(lambda: done.update(flag=True))
    t0 = time.perf_counter()
    while not done["flag"]:
        app.processEvents()
        time.sleep(0.02)
        if time.perf_counter() - t0 > timeout:
            raise TimeoutError("job did not finish")
    for _ in range(20):
        app.processEvents()


def _viewer(title: str):
    import napari

    viewer = napari.Viewer(title=title, show=True)
    viewer.window._qt_window.resize(*SIZE)
    return viewer


def _shot(app, viewer, path: Path) -> None:
    from cellscape.io import write_png

    for _ in range(30):
        app.processEvents()
        time.sleep(0.01)
    img = viewer.screenshot(canvas_only=False, flash=False)
    write_png(path, np.ascontiguousarray(img[..., :3]))
    print(f"wrote {path} {img.shape[1]}x{img.shape[0]}")


def _add(viewer, layers) -> None:
    for data, kwargs, kind in layers:
        getattr(viewer, f"add_{kind}")(data, **kwargs)


def segment_shot(app, out: Path) -> None:
    from cellscape.napari import _io
    from cellscape.napari._widgets import SegmentWidget

    viewer = _viewer("cellscape: Segment")
    _add(viewer, _io.sample_nuclei())
    widget = SegmentWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Segment", area="right")
    widget.model.setCurrentText("nuclei")
    _wait(app, widget.start())
    viewer.layers["nuclei masks"].contour = 2
    _shot(app, viewer, out / "napari_segment.png")
    viewer.close()


def _dabs(truth: np.ndarray, rng, n: int, radius: int) -> np.ndarray:
    """Round brush dabs at random places, like a user's strokes."""
    yy, xx = np.mgrid[: truth.shape[0], : truth.shape[1]]
    mask = np.zeros(truth.shape, bool)
    for _ in range(n):
        cy, cx = rng.integers(0, truth.shape[0]), rng.integers(0, truth.shape[1])
        mask |= (yy - cy) ** 2 + (xx - cx) ** 2 <= radius**2
    return mask


def train_shot(app, out: Path) -> None:
    from cellscape.napari import _io
    from cellscape.napari._widgets import TrainWidget

    viewer = _viewer("cellscape: Train")
    _add(viewer, _io.sample_zstack())
    truth = viewer.layers["classes ground truth"].data
    widget = TrainWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Train", area="right")
    widget.image.select("bright-field z-stack")
    paint = widget.add_paint_layer()
    rng = np.random.default_rng(4)
    strokes = np.zeros_like(paint.data)
    brush = _dabs(truth, rng, 60, 5)
    for value, cls in ((1, 1), (2, 2), (3, 0)):
        strokes[brush & (truth == cls)] = value
    paint.data = strokes
    stack = viewer.layers["bright-field z-stack"]
    viewer.dims.set_current_step(0, stack.data.shape[0] // 2 + 4)
    _wait(app, widget.start())
    ys, xs = np.nonzero(truth == 1)
    widget.profile_at_world(stack.data_to_world((0, ys[len(ys) // 2], xs[len(xs) // 2])))
    viewer.layers["bright-field z-stack masks"].contour = 1
    for layer in viewer.layers:
        if " P(" in layer.name:
            layer.visible = False
    paint.opacity = 0.9
    viewer.layers.selection.active = paint
    _shot(app, viewer, out / "napari_train.png")
    viewer.close()


def train_unet_shot(app, out: Path) -> None:
    from cellscape.napari import _io
    from cellscape.napari._widgets import TrainWidget

    viewer = _viewer("cellscape: Train (U-Net)")
    layers = _io.sample_nuclei()
    _add(viewer, layers)
    widget = TrainWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Train", area="right")
    widget.image.select("nuclei")
    widget.method.setCurrentText("unet")
    widget.epochs.setValue(6)
    widget.steps.setValue(10)
    widget.finetune.setChecked(True)  # adapt the bundled model: the human-in-the-loop start
    paint = widget.add_paint_layer()
    paint.data = layers[1][0].astype(np.int32)  # painted (here: the ground-truth) cells
    _wait(app, widget.start(), timeout=900)
    _shot(app, viewer, out / "napari_train_unet.png")
    viewer.close()


def curate_shot(app, out: Path) -> tuple[np.ndarray, np.ndarray]:
    from cellscape.napari import _io
    from cellscape.napari._widgets import CurateWidget, SegmentWidget

    viewer = _viewer("cellscape: Curate")
    _add(viewer, _io.sample_nuclei())
    seg = SegmentWidget(viewer)
    seg.model.setCurrentText("classical")
    _wait(app, seg.start())
    for layer in list(viewer.layers):
        if layer.name.startswith("nuclei P("):
            viewer.layers.remove(layer)
    widget = CurateWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Curate", area="right")
    widget.labels.select("nuclei masks")
    widget.image.select("nuclei")
    masks = viewer.layers["nuclei masks"]
    # a cell that covers two true nuclei (the classical baseline merged them) gets a cutting
    # line between the two, as a user would draw it
    truth = viewer.layers["nuclei ground truth"].data
    best, best_pair = None, None
    for cell in np.unique(masks.data[masks.data > 0]):
        inside = truth[masks.data == cell]
        ids, counts = np.unique(inside[inside > 0], return_counts=True)
        big = ids[counts >= 20]
        if big.size >= 2 and (best is None or big.size > len(best_pair)):
            best, best_pair = int(cell), big[:2]
    lines = widget.cut_layer()
    if best is None:
        raise RuntimeError("no merged nuclei in this sample: change the seed")
    c1, c2 = (np.argwhere((truth == t) & (masks.data == best)).mean(axis=0) for t in best_pair)
    mid, d = (c1 + c2) / 2, c2 - c1
    perp = np.array([-d[1], d[0]]) / np.hypot(*d)
    ys, xs = np.nonzero(masks.data == best)
    half = 0.5 * np.hypot(np.ptp(ys), np.ptp(xs)) + 3
    lines.add_paths([np.array([mid - half * perp, mid + half * perp])])
    widget.ids.setText(str(best))
    widget.say(f"cell {best} holds two nuclei; a line is drawn between them: 'Split along lines'")
    camera = viewer.scene.camera if hasattr(viewer, "scene") else viewer.camera
    camera.center = (mid[0] * masks.scale[-2], mid[1] * masks.scale[-1])
    camera.zoom = camera.zoom * 2.5
    _shot(app, viewer, out / "napari_curate.png")
    viewer.close()


def export_shot(app, out: Path) -> None:
    from cellscape.napari import _io
    from cellscape.napari._widgets import ExportWidget

    viewer = _viewer("cellscape: Export")
    _add(viewer, _io.sample_whole_cells())
    viewer.layers["cells ground truth"].visible = True
    viewer.layers["cells ground truth"].contour = 2
    widget = ExportWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Export", area="right")
    widget.labels.select("cells ground truth")
    widget.image.select("cytoplasm")
    folder = Path(tempfile.mkdtemp(prefix="cellscape-export-"))
    widget.folder.setText(str(folder))
    widget.stem.setText("cells")
    widget.export()
    _shot(app, viewer, out / "napari_export.png")
    viewer.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parents[1] / "images")
    parser.add_argument("--skip-unet", action="store_true", help="no U-Net training picture")
    args = parser.parse_args()
    display = None
    if not os.environ.get("DISPLAY"):
        from pyvirtualdisplay import Display

        display = Display(visible=False, size=(SIZE[0] + 100, SIZE[1] + 100), color_depth=24)
        display.start()
    status = 1
    try:
        from napari.qt import get_qapp

        app = get_qapp()
        args.out.mkdir(parents=True, exist_ok=True)
        segment_shot(app, args.out)
        train_shot(app, args.out)
        if not args.skip_unet:
            train_unet_shot(app, args.out)
        curate_shot(app, args.out)
        export_shot(app, args.out)
        app.processEvents()
        status = 0
    except Exception:
        traceback.print_exc()
    finally:
        if display is not None:
            display.stop()
            # Qt must not outlive its X server (it aborts noisily): leave at once
            sys.stdout.flush()
            os._exit(status)
    sys.exit(status)


if __name__ == "__main__":
    main()
