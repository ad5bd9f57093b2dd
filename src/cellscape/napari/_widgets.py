"""The plugin's dock widgets: Segment, Train, Curate and Export.

Each widget only gathers layers, clicks and settings, and hands the work to the pure functions
of :mod:`cellscape.napari.core`, in a napari worker thread when it takes time (the viewer stays
responsive; a status line and a progress bar follow the work, and Cancel stops it between
steps). Errors that a user can fix arrive as one line in the status line, never a traceback.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ..errors import CellscapeError
from . import core

#: models trained (or loaded) in this session, by display name; shared by the widgets
SESSION_MODELS: dict[str, object] = {}

_CLASS_COLOURS = ("#ffd700", "#ff3b30", "#3b82f6", "#22c55e", "#d946ef", "#06b6d4", "#f97316")


def _message(exc: BaseException) -> str:
    if isinstance(exc, CellscapeError):
        return str(exc)
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:200]


class _LayerCombo(QComboBox):
    """A combo box listing the viewer's layers of some kinds, kept up to date."""

    def __init__(self, viewer, kinds: tuple[str, ...], optional: bool = False):
        super().__init__()
        self.viewer = viewer
        self.kinds = kinds
        self.optional = optional
        viewer.layers.events.inserted.connect(self.refresh)
        viewer.layers.events.removed.connect(self.refresh)
        self.refresh()

    def refresh(self, *_):
        current = self.currentText()
        self.blockSignals(True)
        self.clear()
        if self.optional:
            self.addItem("(none)")
        for layer in self.viewer.layers:
            if type(layer).__name__.lower() in self.kinds:
                self.addItem(layer.name)
        idx = self.findText(current)
        if idx >= 0:
            self.setCurrentIndex(idx)
        self.blockSignals(False)

    def layer(self):
        name = self.currentText()
        return self.viewer.layers[name] if name in self.viewer.layers else None

    def select(self, name: str) -> None:
        self.refresh()
        idx = self.findText(name)
        if idx >= 0:
            self.setCurrentIndex(idx)


class _WorkerWidget(QWidget):
    """Common parts: a status line, a progress bar, a Cancel button and one worker at a time."""

    def __init__(self, viewer):
        super().__init__()
        self.viewer = viewer
        self.worker = None
        self.setLayout(QVBoxLayout())
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.progress = QProgressBar()
        self.progress.setVisible(False)
        self.cancel = QPushButton("Cancel")
        self.cancel.setVisible(False)
        self.cancel.clicked.connect(self._cancel)

    def _add_footer(self):
        row = QHBoxLayout()
        row.addWidget(self.progress)
        row.addWidget(self.cancel)
        self.layout().addLayout(row)
        self.layout().addWidget(self.status)
        self.layout().addStretch(1)

    def say(self, text: str) -> None:
        self.status.setText(text)

    def _start(self, gen_func, *args, on_yield=None, on_done=None, total: int = 0):
        from napari.qt.threading import create_worker

        if self.worker is not None and self.worker.is_running:
            self.say("busy: wait for the running job or cancel it")
            return None
        worker = create_worker(gen_func, *args)
        self.progress.setRange(0, total)
        self.progress.setValue(0)
        self.progress.setVisible(True)
        self.cancel.setVisible(True)
        if on_yield is not None:
            worker.yielded.connect(on_yield)
        if on_done is not None:
            worker.returned.connect(on_done)
        worker.errored.connect(lambda exc: self.say("error: " + _message(exc)))
        worker.finished.connect(self._finished)
        self.worker = worker
        worker.start()
        return worker

    def _finished(self):
        self.progress.setVisible(False)
        self.cancel.setVisible(False)

    def _cancel(self):
        if self.worker is not None:
            self.worker.quit()
            self.say("cancelled")


def _labels_layer(viewer, name: str, data: np.ndarray, scale=None, **kwargs):
    """Update the layer ``name`` with ``data`` or add it."""
    if name in viewer.layers and type(viewer.layers[name]).__name__ == "Labels":
        layer = viewer.layers[name]
        layer.data = data
        return layer
    return viewer.add_labels(data, name=name, scale=scale, **kwargs)


def _image_layer(viewer, name: str, data: np.ndarray, scale=None, **kwargs):
    if name in viewer.layers and type(viewer.layers[name]).__name__ == "Image":
        layer = viewer.layers[name]
        layer.data = data
        return layer
    return viewer.add_image(data, name=name, scale=scale, **kwargs)


def _yx_scale(layer) -> list[float]:
    return [float(s) for s in layer.scale[-2:]]


def show_segmentation(viewer, image_layer, seg: core.Segmentation) -> None:
    """Add (or update) the masks, probability and class-map layers of a segmentation."""
    base = image_layer.name
    scale = _yx_scale(image_layer)
    if seg.probabilities is not None:
        fg = [i for i, n in enumerate(seg.class_names) if n.lower() not in ("background", "wall")]
        for k, name in enumerate(seg.class_names):
            _image_layer(
                viewer,
                f"{base} P({name})",
                seg.probabilities[k],
                scale=scale,
                colormap=("magma", "viridis", "cividis", "inferno")[k % 4],
                contrast_limits=(0.0, 1.0),
                blending="additive",
                visible=bool(fg) and k == fg[0],
                opacity=0.6,
            )
    if seg.class_map is not None:
        _labels_layer(viewer, f"{base} classes", seg.class_map, scale=scale, visible=False)
    _labels_layer(viewer, f"{base} masks", seg.labels, scale=scale)


def _class_colours(layer, n: int) -> None:
    """Paint value k in the colour of class k in the z-profile plot."""
    from napari.utils.colormaps import DirectLabelColormap

    colours = {None: "transparent", 0: "transparent"}
    colours.update({k + 1: _CLASS_COLOURS[k % len(_CLASS_COLOURS)] for k in range(max(n, 1))})
    layer.colormap = DirectLabelColormap(color_dict=colours)


def _model_names() -> list[str]:
    from ..models import list_models

    return [c.name for c in list_models()]


# --------------------------------------------------------------------------------------------
# Segment
# --------------------------------------------------------------------------------------------


class SegmentWidget(_WorkerWidget):
    """Pick a bundled, saved or just-trained model and segment the chosen image."""

    def __init__(self, napari_viewer):
        super().__init__(napari_viewer)
        form = QFormLayout()
        self.image = _LayerCombo(napari_viewer, ("image",))
        self.model = QComboBox()
        self.browse = QPushButton("Saved model…")
        self.browse.clicked.connect(self._browse)
        self.run = QPushButton("Segment")
        self.run.clicked.connect(self.start)
        form.addRow("image", self.image)
        form.addRow("model", self.model)
        self.layout().addLayout(form)
        self.layout().addWidget(self.browse)
        self.layout().addWidget(self.run)
        self.info = QLabel("")
        self.info.setWordWrap(True)
        self.layout().addWidget(self.info)
        self._add_footer()
        self.refresh_models()
        self.model.currentTextChanged.connect(self._describe)
        self._describe()
        self.result: core.Segmentation | None = None

    def refresh_models(self, select: str | None = None) -> None:
        current = select or self.model.currentText()
        self.model.blockSignals(True)
        self.model.clear()
        self.model.addItems(_model_names() + list(SESSION_MODELS))
        idx = self.model.findText(current)
        if idx >= 0:
            self.model.setCurrentIndex(idx)
        self.model.blockSignals(False)
        self._describe()

    def _describe(self, *_):
        from ..models import BUNDLED

        name = self.model.currentText()
        card = BUNDLED.get(name)
        if card is not None:
            self.info.setText(f"{card.method}: {card.purpose}")
        elif name:
            self.info.setText(f"{name}: trained or loaded in this session")

    def _browse(self):
        folder = QFileDialog.getExistingDirectory(self, "Model folder (with config.json)")
        if folder:
            self.add_saved_model(folder)

    def add_saved_model(self, folder: str) -> str | None:
        """Load a model folder written by ``Segmenter.save`` and offer it in the list."""
        from ..models import load_model

        try:
            model = load_model(folder)
        except CellscapeError as exc:
            self.say("error: " + str(exc))
            return None
        name = f"saved: {Path(folder).name} ({model.method})"
        SESSION_MODELS[name] = model
        self.refresh_models(select=name)
        return name

    def start(self):
        layer = self.image.layer()
        if layer is None:
            self.say("open an image first")
            return None
        name = self.model.currentText()
        try:
            image, meta = core.layer_image(
                layer.data, rgb=layer.rgb, scale=layer.scale, metadata=layer.metadata
            )
        except CellscapeError as exc:
            self.say("error: " + str(exc))
            return None
        t0 = time.perf_counter()

        def job():
            from ..models import load_model

            yield f"loading model {name}"
            model = SESSION_MODELS.get(name) or load_model(name)
            seg = yield from core.segment_steps(model, image, meta)
            seg.info["model"] = model
            return seg

        def done(seg):
            self.result = seg
            show_segmentation(self.viewer, layer, seg)
            n = int(seg.labels.max())
            self.say(f"{n} cells found with {name} in {time.perf_counter() - t0:.1f} s")

        return self._start(job, on_yield=self.say, on_done=done)


# --------------------------------------------------------------------------------------------
# Train
# --------------------------------------------------------------------------------------------


class TrainWidget(_WorkerWidget):
    """Paint classes (focal signature) or cells (U-Net), train in the background, see results."""

    def __init__(self, napari_viewer):
        super().__init__(napari_viewer)
        form = QFormLayout()
        self.image = _LayerCombo(napari_viewer, ("image",))
        self.method = QComboBox()
        self.method.addItems(["focal", "unet"])
        self.classes = QLineEdit(", ".join(core.FOCAL_CLASSES))
        self.classifier = QComboBox()
        self.classifier.addItems(["mlp", "linear", "rf", "svm", "cnn"])
        self.paint = _LayerCombo(napari_viewer, ("labels",))
        self.paint_class = QComboBox()
        self.epochs = QSpinBox()
        self.epochs.setRange(1, 1000)
        self.epochs.setValue(5)
        self.steps = QSpinBox()
        self.steps.setRange(1, 1000)
        self.steps.setValue(20)
        self.finetune = QCheckBox("fine-tune the bundled nuclei model")
        form.addRow("image", self.image)
        form.addRow("method", self.method)
        form.addRow("classes", self.classes)
        form.addRow("classifier", self.classifier)
        form.addRow("painted layer", self.paint)
        form.addRow("paint class", self.paint_class)
        form.addRow("epochs", self.epochs)
        form.addRow("steps / epoch", self.steps)
        self.layout().addLayout(form)
        self.layout().addWidget(self.finetune)
        self.new_layer = QPushButton("New painting layer")
        self.new_layer.clicked.connect(self.add_paint_layer)
        self.train = QPushButton("Train")
        self.train.clicked.connect(self.start)
        self.save = QPushButton("Save model…")
        self.save.clicked.connect(self._save)
        row = QHBoxLayout()
        row.addWidget(self.new_layer)
        row.addWidget(self.train)
        row.addWidget(self.save)
        self.layout().addLayout(row)
        self.readout = QLabel("")
        self.readout.setWordWrap(True)
        self.layout().addWidget(self.readout)
        self._build_plot()
        self._add_footer()
        self.method.currentTextChanged.connect(self._method_changed)
        self.classes.editingFinished.connect(self._classes_changed)
        self.paint_class.currentIndexChanged.connect(self._paint_class_changed)
        self.paint.currentTextChanged.connect(self._connect_paint)
        self.model = None
        self.losses: list[float] = []
        self.accuracies: list[float] = []
        self._last_mouse = 0.0
        self._classes_changed()
        self._method_changed()
        self._connect_paint()
        napari_viewer.mouse_move_callbacks.append(self._on_mouse_move)

    # -- plot: class mean z-profiles and the profile under the cursor -------------------------
    def _build_plot(self):
        from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
        from matplotlib.figure import Figure

        self.figure = Figure(figsize=(4, 2.6), tight_layout=True)
        self.axes = self.figure.add_subplot(111)
        self.canvas = FigureCanvasQTAgg(self.figure)
        self.canvas.setMinimumHeight(200)
        self.layout().addWidget(self.canvas)
        self.cursor_profile: np.ndarray | None = None
        self.means: np.ndarray | None = None

    def class_names(self) -> list[str]:
        return [c.strip() for c in self.classes.text().split(",") if c.strip()]

    def _classes_changed(self):
        layer = self.paint.layer()
        if layer is not None and layer.metadata.get("cellscape_paint") == "classes":
            _class_colours(layer, len(self.class_names()))
        self.paint_class.blockSignals(True)
        self.paint_class.clear()
        for k, name in enumerate(self.class_names(), start=1):
            self.paint_class.addItem(f"{k}: {name}")
        self.paint_class.blockSignals(False)
        self._paint_class_changed()

    def _paint_class_changed(self, *_):
        layer = self.paint.layer()
        if layer is not None and self.method.currentText() == "focal":
            layer.selected_label = self.paint_class.currentIndex() + 1

    def _method_changed(self, *_):
        focal = self.method.currentText() == "focal"
        for w in (self.classes, self.classifier, self.paint_class):
            w.setEnabled(focal)
        for w in (self.epochs, self.steps, self.finetune):
            w.setEnabled(not focal)
        self.canvas.setVisible(True)
        self.redraw()

    def _connect_paint(self, *_):
        layer = self.paint.layer()
        if layer is not None and not getattr(layer, "_cellscape_connected", False):
            layer.events.paint.connect(self.update_class_means)
            layer.events.data.connect(self.update_class_means)
            layer._cellscape_connected = True
        self.update_class_means()

    def _stack(self):
        layer = self.image.layer()
        if layer is None or layer.rgb or layer.ndim != 3:
            return None, layer
        return np.asarray(layer.data), layer

    def add_paint_layer(self):
        """Add an empty Labels layer the size of the image's frames, ready to paint class 1."""
        layer = self.image.layer()
        if layer is None:
            self.say("open an image first")
            return None
        shape = layer.data.shape[-3:-1] if layer.rgb else layer.data.shape[-2:]
        focal = self.method.currentText() == "focal"
        name = "painted classes" if focal else "painted cells"
        paint = self.viewer.add_labels(
            np.zeros(shape, dtype=np.int32),
            name=name,
            scale=_yx_scale(layer),
            metadata={"cellscape_paint": "classes" if focal else "cells"},
        )
        if focal:
            _class_colours(paint, len(self.class_names()))
        paint.brush_size = 4
        paint.mode = "paint"
        paint.selected_label = 1
        self.paint.select(paint.name)
        self._connect_paint()
        self.say(
            "paint each class with its value (pick it in 'paint class')"
            if focal
            else "paint cells, one label value per cell (press M for a new value)"
        )
        return paint

    def update_class_means(self, *_):
        stack, _ = self._stack()
        paint = self.paint.layer()
        if stack is None or paint is None or np.asarray(paint.data).shape != stack.shape[1:]:
            self.means = None
        else:
            n = max(len(self.class_names()), int(np.asarray(paint.data).max()))
            self.means = core.class_means(stack, paint.data, n)
        self.redraw()

    def _on_mouse_move(self, viewer, event):
        now = time.perf_counter()
        if now - self._last_mouse < 0.05:
            return
        self._last_mouse = now
        self.profile_at_world(event.position)

    def profile_at_world(self, position) -> np.ndarray | None:
        """Show the z-profile of the pixel under a world position (the cursor)."""
        stack, layer = self._stack()
        if stack is None:
            return None
        data_pos = layer.world_to_data(position)
        self.cursor_profile = core.z_profile(stack, data_pos)
        self.redraw()
        return self.cursor_profile

    def redraw(self):
        ax = self.axes
        ax.clear()
        if self.method.currentText() == "unet" or (
            self.means is None and self.cursor_profile is None
        ):
            if self.losses:
                ax.plot(np.arange(1, len(self.losses) + 1), self.losses, "o-", color="#3b82f6")
                ax.set_xlabel("epoch")
                ax.set_ylabel("training loss")
            else:
                ax.text(
                    0.5,
                    0.5,
                    "z-profiles or the loss curve appear here",
                    ha="center",
                    va="center",
                    transform=ax.transAxes,
                    fontsize=8,
                )
                ax.set_axis_off()
            self.canvas.draw_idle()
            return
        names = self.class_names()
        if self.means is not None:
            mean, std = self.means
            z = np.arange(mean.shape[1])
            for k, (m, s) in enumerate(zip(mean, std, strict=True)):
                if np.isnan(m).all():
                    continue
                colour = _CLASS_COLOURS[k % len(_CLASS_COLOURS)]
                label = names[k] if k < len(names) else f"class {k + 1}"
                ax.plot(z, m, color=colour, label=label, lw=1.5)
                ax.fill_between(z, m - s, m + s, color=colour, alpha=0.15, lw=0)
        if self.cursor_profile is not None:
            ax.plot(self.cursor_profile, color="black", lw=1, ls="--", label="under cursor")
        ax.set_xlabel("frame (z)")
        ax.set_ylabel("intensity / frame median")
        ax.tick_params(labelsize=7)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7, loc="best")
        self.canvas.draw_idle()

    # -- training --------------------------------------------------------------------------------
    def start(self):
        layer, paint = self.image.layer(), self.paint.layer()
        if layer is None or paint is None:
            self.say("choose an image and a painted Labels layer (New painting layer)")
            return None
        try:
            image, meta = core.layer_image(
                layer.data, rgb=layer.rgb, scale=layer.scale, metadata=layer.metadata
            )
        except CellscapeError as exc:
            self.say("error: " + str(exc))
            return None
        painted = np.asarray(paint.data).copy()
        if self.method.currentText() == "focal":
            return self._start_focal(layer, image, meta, painted)
        return self._start_unet(layer, image, meta, painted)

    def _start_focal(self, layer, stack, meta, painted):
        names = self.class_names()
        classifier = self.classifier.currentText()
        t0 = time.perf_counter()

        def job():
            yield "fitting the focal-signature classifier"
            # the cnn classifier trains for minutes: report its steps as they come
            model = yield from core.callback_steps(
                core.fit_focal, stack, painted, names, classifier=classifier,
                callback_name="progress",
            )  # fmt: skip
            yield "predicting the stack"
            seg = yield from core.segment_steps(model, stack, meta)
            return model, seg

        def on_yield(item):
            if isinstance(item, str):
                self.say(item)
                return
            step, steps, loss = item
            self.say(f"training the cnn classifier: step {step}/{steps}, loss {loss:.4f}")

        def done(result):
            model, seg = result
            self._trained(model, f"trained: focal {classifier}")
            val = model.info_["validation"]
            acc = val["accuracy"]
            self.accuracies.append(acc if acc is not None else float("nan"))
            show_segmentation(self.viewer, layer, seg)
            rounds = ", ".join(f"{a:.3f}" for a in self.accuracies[-5:])
            painted_n = model.info_["trained_on"]["labelled_pixels"]
            self.readout.setText(
                f"held-out accuracy {acc:.3f} ({val['n_pixels']} of {painted_n} painted pixels "
                f"held out; rounds: {rounds}); classes {', '.join(model.class_names)}"
            )
            self.say(f"trained and predicted in {time.perf_counter() - t0:.1f} s")

        return self._start(job, on_yield=on_yield, on_done=done)

    def _start_unet(self, layer, image, meta, painted):
        epochs, steps = self.epochs.value(), self.steps.value()
        finetune = self.finetune.isChecked()
        if meta.axes == "ZYX":
            image, meta = image[image.shape[0] // 2], meta.with_(axes="YX")
        if meta.axes == "CYX" and meta.rgb:
            image = image.mean(axis=0)
        self.losses = []
        t0 = time.perf_counter()

        def job():
            from ..models import load_model

            base = load_model("nuclei") if finetune else None
            yield "training"
            model = yield from core.callback_steps(
                core.fit_unet, [image], [painted], epochs=epochs, steps_per_epoch=steps, base=base
            )
            yield "predicting"
            seg = yield from core.segment_steps(model, image, None)
            return model, seg

        def on_yield(item):
            if isinstance(item, str):
                self.say(item)
                return
            epoch, loss = item
            self.losses.append(loss)
            self.progress.setValue(epoch + 1)
            self.readout.setText(f"epoch {epoch + 1}/{epochs}: training loss {loss:.4f}")
            self.redraw()

        def done(result):
            model, seg = result
            self._trained(model, "trained: unet")
            show_segmentation(self.viewer, layer, seg)
            self.say(
                f"trained {epochs} x {steps} steps and predicted in "
                f"{time.perf_counter() - t0:.1f} s: {int(seg.labels.max())} cells"
            )

        return self._start(job, on_yield=on_yield, on_done=done, total=epochs)

    def _trained(self, model, name: str):
        self.model = model
        SESSION_MODELS[name] = model
        for widget in _live_widgets(SegmentWidget):
            widget.refresh_models()

    def _save(self):
        if self.model is None:
            self.say("train a model first")
            return
        folder = QFileDialog.getExistingDirectory(self, "Save the model into folder")
        if folder:
            self.save_model(folder)

    def save_model(self, folder: str) -> Path | None:
        try:
            path = self.model.save(folder)
        except CellscapeError as exc:
            self.say("error: " + str(exc))
            return None
        self.say(f"model saved to {path}")
        return path


# --------------------------------------------------------------------------------------------
# Curate
# --------------------------------------------------------------------------------------------


class CurateWidget(_WorkerWidget):
    """Delete, merge, split and add cells of a Labels layer; save and retrain from the result."""

    def __init__(self, napari_viewer):
        super().__init__(napari_viewer)
        form = QFormLayout()
        self.labels = _LayerCombo(napari_viewer, ("labels",))
        self.click = QComboBox()
        self.click.addItems(["pick", "delete", "merge"])
        self.ids = QLineEdit("")
        self.ids.setPlaceholderText("ids, e.g. 4, 9 (empty: the picked cells)")
        form.addRow("masks layer", self.labels)
        form.addRow("on click", self.click)
        form.addRow("cell ids", self.ids)
        self.layout().addLayout(form)
        buttons = [
            ("Delete", self.delete),
            ("Merge", self.merge),
            ("Split along lines", self.split),
            ("Add painted cell", self.add),
            ("Undo", self.undo),
        ]
        grid = QHBoxLayout()
        for text, slot in buttons[:3]:
            b = QPushButton(text)
            b.clicked.connect(slot)
            grid.addWidget(b)
        self.layout().addLayout(grid)
        grid2 = QHBoxLayout()
        for text, slot in buttons[3:]:
            b = QPushButton(text)
            b.clicked.connect(slot)
            grid2.addWidget(b)
        self.layout().addLayout(grid2)
        box = QGroupBox("save and retrain")
        box.setLayout(QFormLayout())
        self.path = QLineEdit("")
        self.path.setPlaceholderText("…/image_masks.tif")
        self.save_button = QPushButton("Save masks")
        self.save_button.clicked.connect(self.save)
        self.image = _LayerCombo(napari_viewer, ("image",))
        self.epochs = QSpinBox()
        self.epochs.setRange(1, 1000)
        self.epochs.setValue(5)
        self.retrain_button = QPushButton("Retrain U-Net from these masks")
        self.retrain_button.clicked.connect(self.retrain)
        box.layout().addRow("file", self.path)
        box.layout().addRow(self.save_button)
        box.layout().addRow("image", self.image)
        box.layout().addRow("epochs", self.epochs)
        box.layout().addRow(self.retrain_button)
        self.layout().addWidget(box)
        self._add_footer()
        self.picked: list[int] = []
        self.history: list[np.ndarray] = []
        self.model = None
        self.labels.currentTextChanged.connect(self._hook)
        napari_viewer.layers.events.inserted.connect(self._hook)
        self._hook()

    def _hook(self, *_):
        layer = self.labels.layer()
        if layer is not None and self._on_click not in layer.mouse_drag_callbacks:
            layer.mouse_drag_callbacks.append(self._on_click)

    def _on_click(self, layer, event):
        if layer.mode not in ("pan_zoom", "pick"):
            return
        self.click_at(layer.world_to_data(event.position))

    def click_at(self, data_position) -> int:
        """What a click at ``(row, col)`` of the masks does: pick, delete or pick for merging."""
        layer = self.labels.layer()
        if layer is None:
            return 0
        cell = core.cell_at(np.asarray(layer.data), data_position)
        if cell == 0:
            self.say("no cell here")
            return 0
        action = self.click.currentText()
        if action == "delete":
            self._apply(core.delete_cell, cell, done=f"deleted cell {cell}")
        else:
            self.picked = (self.picked + [cell])[-2:]
            self.ids.setText(", ".join(map(str, self.picked)))
            if action == "merge" and len(self.picked) == 2:
                self.merge()
            else:
                self.say(f"picked cell {cell}")
        return cell

    def _ids(self) -> list[int]:
        text = self.ids.text().replace(";", ",")
        try:
            return [int(t) for t in text.split(",") if t.strip()]
        except ValueError:
            raise CellscapeError(None, f"cell ids must be whole numbers, got '{text}'") from None

    def _apply(self, func, *args, done: str = "") -> bool:
        layer = self.labels.layer()
        if layer is None:
            self.say("choose a masks (Labels) layer")
            return False
        before = np.asarray(layer.data)
        try:
            out = func(before, *args)
        except CellscapeError as exc:
            self.say("error: " + str(exc))
            return False
        out = out[0] if isinstance(out, tuple) else out
        self.history = (self.history + [before.copy()])[-20:]
        layer.data = out
        self.say(done)
        return True

    def delete(self):
        try:
            ids = self._ids() or [getattr(self.labels.layer(), "selected_label", 0)]
        except CellscapeError as exc:
            self.say("error: " + str(exc))
            return
        for i in ids:
            if not self._apply(core.delete_cell, i, done=f"deleted cell {i}"):
                return
        self.ids.setText("")
        self.picked = []

    def merge(self):
        try:
            ids = self._ids()
        except CellscapeError as exc:
            self.say("error: " + str(exc))
            return
        if self._apply(core.merge_cells, ids, done=f"merged cells {', '.join(map(str, ids))}"):
            self.ids.setText("")
            self.picked = []

    def cut_layer(self):
        """The Shapes layer to draw cutting lines in (added, in line-drawing mode, if missing)."""
        name = "cut lines"
        if name in self.viewer.layers:
            return self.viewer.layers[name]
        masks = self.labels.layer()
        scale = _yx_scale(masks) if masks is not None else None
        layer = self.viewer.add_shapes(
            name=name,
            ndim=2,
            scale=scale,
            edge_color="yellow",
            edge_width=1,
            face_color="transparent",
        )
        layer.mode = "add_path"
        return layer

    def split(self):
        lines = self.cut_layer()
        if not len(lines.data):
            self.say("draw a line across the cell in the 'cut lines' layer, then press Split")
            return
        n_ok = 0
        for pts in list(lines.data):
            if self._apply(core.split_cell, np.asarray(pts)[:, -2:], done="split"):
                n_ok += 1
        if n_ok:
            lines.data = []
            self.say(f"split along {n_ok} line(s)")

    def paint_layer(self):
        """The Labels layer to paint a new cell in (added if missing)."""
        name = "new cell"
        if name in self.viewer.layers:
            return self.viewer.layers[name]
        masks = self.labels.layer()
        if masks is None:
            return None
        layer = self.viewer.add_labels(
            np.zeros(np.asarray(masks.data).shape, np.int32), name=name, scale=_yx_scale(masks)
        )
        layer.mode = "paint"
        layer.brush_size = 5
        self.labels.select(masks.name)
        return layer

    def add(self):
        painting = self.paint_layer()
        if painting is None:
            self.say("choose a masks (Labels) layer")
            return
        mask = np.asarray(painting.data) > 0
        if not mask.any():
            self.say("paint the new cell in the 'new cell' layer, then press Add")
            return
        if self._apply(core.add_cell, mask, done="added a cell"):
            painting.data = np.zeros_like(painting.data)

    def undo(self):
        layer = self.labels.layer()
        if layer is None or not self.history:
            self.say("nothing to undo")
            return
        layer.data = self.history.pop()
        self.say("undone")

    def save(self) -> Path | None:
        layer = self.labels.layer()
        if layer is None:
            self.say("choose a masks (Labels) layer")
            return None
        path = self.path.text().strip()
        if not path:
            path, _ = QFileDialog.getSaveFileName(self, "Save masks", "", "TIFF (*.tif)")
            if not path:
                return None
            self.path.setText(path)
        try:
            meta = _meta_of(layer)
            written = core.save_masks(path, np.asarray(layer.data), meta)
        except CellscapeError as exc:
            self.say("error: " + str(exc))
            return None
        self.say(f"saved {written}")
        return written

    def retrain(self):
        """Fine-tune the session's U-Net (or the bundled nuclei model) on the curated masks."""
        masks, image_layer = self.labels.layer(), self.image.layer()
        if masks is None or image_layer is None:
            self.say("choose the image and its curated masks")
            return None
        try:
            image, meta = core.layer_image(
                image_layer.data,
                rgb=image_layer.rgb,
                scale=image_layer.scale,
                metadata=image_layer.metadata,
            )
        except CellscapeError as exc:
            self.say("error: " + str(exc))
            return None
        if meta.axes == "ZYX":
            image = image[image.shape[0] // 2]
        elif meta.rgb:
            image = image.mean(axis=0)
        labels = np.asarray(masks.data).copy()
        epochs = self.epochs.value()
        base = next(
            (
                m
                for m in reversed(list(SESSION_MODELS.values()))
                if getattr(m, "method", "") == "unet"
            ),
            None,
        )

        def job():
            from ..models import load_model

            start = base if base is not None else load_model("nuclei")
            yield "retraining"
            model = yield from core.callback_steps(
                core.fit_unet, [image], [labels], epochs=epochs, steps_per_epoch=10, base=start
            )
            return model

        def on_yield(item):
            if isinstance(item, str):
                self.say(item)
            else:
                self.progress.setValue(item[0] + 1)
                self.say(f"epoch {item[0] + 1}/{epochs}: training loss {item[1]:.4f}")

        def done(model):
            self.model = model
            SESSION_MODELS["retrained: unet"] = model
            for widget in _live_widgets(SegmentWidget):
                widget.refresh_models(select="retrained: unet")
            self.say("retrained: choose 'retrained: unet' in Segment to use it")

        return self._start(job, on_yield=on_yield, on_done=done, total=epochs)


def _meta_of(layer):
    from ..io import ImageMeta

    s = layer.scale[-1]
    md = dict(layer.metadata or {}).get("cellscape", {})
    pixel_size = float(s) if abs(float(s) - 1.0) > 1e-9 else md.get("pixel_size")
    return ImageMeta("YX", pixel_size) if pixel_size else None


# --------------------------------------------------------------------------------------------
# Export
# --------------------------------------------------------------------------------------------


class ExportWidget(_WorkerWidget):
    """Write masks TIFF, ImageJ ROIs and the per-cell measurement table of a Labels layer."""

    def __init__(self, napari_viewer):
        super().__init__(napari_viewer)
        form = QFormLayout()
        self.labels = _LayerCombo(napari_viewer, ("labels",))
        self.image = _LayerCombo(napari_viewer, ("image",), optional=True)
        self.folder = QLineEdit("")
        self.folder.setPlaceholderText("output folder")
        browse = QPushButton("…")
        browse.clicked.connect(self._browse)
        row = QHBoxLayout()
        row.addWidget(self.folder)
        row.addWidget(browse)
        self.stem = QLineEdit("")
        self.stem.setPlaceholderText("file name stem (default: layer name)")
        self.masks = QCheckBox("masks (_masks.tif)")
        self.rois = QCheckBox("ImageJ ROIs (_rois.zip)")
        self.table = QCheckBox("measurements (_cells.csv)")
        for box in (self.masks, self.rois, self.table):
            box.setChecked(True)
        form.addRow("masks layer", self.labels)
        form.addRow("measure in", self.image)
        form.addRow("folder", row)
        form.addRow("stem", self.stem)
        self.layout().addLayout(form)
        for box in (self.masks, self.rois, self.table):
            self.layout().addWidget(box)
        self.button = QPushButton("Export")
        self.button.clicked.connect(self.export)
        self.layout().addWidget(self.button)
        self._add_footer()

    def _browse(self):
        folder = QFileDialog.getExistingDirectory(self, "Export into folder")
        if folder:
            self.folder.setText(folder)

    def export(self) -> list[Path]:
        layer = self.labels.layer()
        if layer is None or not self.folder.text().strip():
            self.say("choose a masks layer and an output folder")
            return []
        stem = self.stem.text().strip() or layer.name.replace(" masks", "").replace(" ", "_")
        image = meta = None
        img_layer = self.image.layer()
        try:
            if img_layer is not None:
                image, meta = core.layer_image(
                    img_layer.data,
                    rgb=img_layer.rgb,
                    scale=img_layer.scale,
                    metadata=img_layer.metadata,
                )
            else:
                meta = _meta_of(layer)
            written = core.export(
                self.folder.text().strip(),
                stem,
                np.asarray(layer.data),
                image,
                meta,
                masks=self.masks.isChecked(),
                rois=self.rois.isChecked(),
                table=self.table.isChecked(),
            )
        except CellscapeError as exc:
            self.say("error: " + str(exc))
            return []
        self.say("wrote " + ", ".join(p.name for p in written))
        return written


def _live_widgets(cls):
    from qtpy.QtWidgets import QApplication

    app = QApplication.instance()
    if app is None:
        return []
    return [w for w in app.allWidgets() if isinstance(w, cls)]


__all__ = ["SegmentWidget", "TrainWidget", "CurateWidget", "ExportWidget"]
