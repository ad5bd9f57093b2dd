"""The plugin's logic as plain functions: numpy arrays in, numpy arrays out, no Qt, no napari.

The widgets in :mod:`cellscape.napari._widgets` only collect clicks and layers and call these
functions (in a worker thread where they take time), so everything here is tested without a
screen. Arrays follow cellscape's conventions: label images ``(Y, X)`` int32 with 0 =
background, z-stacks ``(Z, Y, X)``, probabilities ``(K, Y, X)`` float32. Coordinates are
``(row, column)`` pixel positions, as napari gives them for a 2-D layer.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import CellscapeError
from ..io import ImageMeta

#: class names offered for painting when training a focal-signature model (paint value = index + 1)
FOCAL_CLASSES = ("interior", "contour", "background")


# --------------------------------------------------------------------------------------------
# curation: delete, merge, split, add
# --------------------------------------------------------------------------------------------


def _check_labels(labels: np.ndarray) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.ndim != 2 or labels.dtype.kind not in "iu":
        raise CellscapeError(None, f"expected a (Y, X) integer label image, got {labels.shape}")
    return labels


def cell_at(labels: np.ndarray, position: Sequence[float]) -> int:
    """Id of the cell under ``position`` = ``(row, column)`` (0 when outside or on background)."""
    labels = _check_labels(labels)
    r, c = (int(round(float(v))) for v in position[-2:])
    if not (0 <= r < labels.shape[0] and 0 <= c < labels.shape[1]):
        return 0
    return int(labels[r, c])


def delete_cell(labels: np.ndarray, cell_id: int) -> np.ndarray:
    """A copy of ``labels`` with cell ``cell_id`` set to background.

    Raises
    ------
    CellscapeError
        If there is no such cell (or ``cell_id`` is 0).
    """
    labels = _check_labels(labels)
    if cell_id <= 0 or not np.any(labels == cell_id):
        raise CellscapeError(None, f"there is no cell {cell_id} to delete")
    out = labels.copy()
    out[out == cell_id] = 0
    return out


def merge_cells(labels: np.ndarray, ids: Sequence[int]) -> np.ndarray:
    """A copy of ``labels`` where the cells ``ids`` become one cell, with the smallest of the ids.

    The gap of background pixels between the merged cells (the one-pixel line a segmenter
    leaves between touching cells) is filled when it is at most 2 pixels wide.
    """
    from scipy import ndimage as ndi

    labels = _check_labels(labels)
    ids = sorted({int(i) for i in ids if int(i) > 0})
    if len(ids) < 2:
        raise CellscapeError(None, "give at least two different cell ids to merge")
    missing = [i for i in ids if not np.any(labels == i)]
    if missing:
        raise CellscapeError(None, f"no cell with id {', '.join(map(str, missing))}")
    out = labels.copy()
    target = ids[0]
    merged = np.isin(out, ids)
    out[merged] = target
    # close the thin background seam between the pieces (only background pixels change)
    closed = ndi.binary_closing(merged, structure=np.ones((3, 3), bool), iterations=1)
    out[closed & (out == 0)] = target
    return out


def rasterize_polyline(points: np.ndarray, shape: Sequence[int], width: int = 1) -> np.ndarray:
    """Boolean mask of the pixels a polyline through ``points`` ``(N, 2)`` (row, col) crosses.

    The line is 8-connected; ``width > 1`` dilates it.
    """
    from scipy import ndimage as ndi
    from skimage.draw import line

    pts = np.round(np.asarray(points, dtype=float)[:, -2:]).astype(np.int64)
    mask = np.zeros(tuple(shape), dtype=bool)
    if len(pts) < 2:
        raise CellscapeError(None, "draw a line with at least two points to split a cell")
    for (r0, c0), (r1, c1) in zip(pts[:-1], pts[1:], strict=True):
        rr, cc = line(r0, c0, r1, c1)
        ok = (rr >= 0) & (rr < shape[0]) & (cc >= 0) & (cc < shape[1])
        mask[rr[ok], cc[ok]] = True
    # an 8-connected line leaks 4-connected regions across its diagonal steps: thicken to
    # 4-connectivity so that it cuts
    mask |= ndi.binary_dilation(mask, structure=np.array([[0, 0, 0], [0, 1, 1], [0, 0, 0]], bool))
    if width > 1:
        mask = ndi.binary_dilation(mask, iterations=width - 1)
    return mask


def split_cell(
    labels: np.ndarray, points: np.ndarray, cell_id: int | None = None, min_size: int = 5
) -> np.ndarray:
    """A copy of ``labels`` with one cell cut in pieces along a drawn line.

    Parameters
    ----------
    labels : ndarray of int, shape (Y, X)
    points : ndarray, shape (N, 2)
        Vertices of the cutting line, ``(row, column)``; the line must cross the cell from
        one side to the other.
    cell_id : int, optional
        The cell to split; by default the cell the line crosses most.
    min_size : int
        Pieces smaller than this (pixels) are given back to their neighbour piece.

    Returns
    -------
    ndarray of int32
        The largest piece keeps ``cell_id``; the others get new ids after the current maximum.
        The pixels under the line go to the nearest piece.
    """
    from scipy import ndimage as ndi

    labels = _check_labels(labels)
    cut = rasterize_polyline(points, labels.shape)
    if cell_id is None:
        under = labels[cut]
        under = under[under > 0]
        if under.size == 0:
            raise CellscapeError(None, "the line crosses no cell")
        cell_id = int(np.bincount(under).argmax())
    cell = labels == cell_id
    if not cell.any():
        raise CellscapeError(None, f"there is no cell {cell_id} to split")
    # only the connected parts of the cell that the line touches are cut (a cell made of two
    # blobs by a merge keeps the blob the line misses)
    parts, _ = ndi.label(cell)
    touched = np.unique(parts[cut & cell])
    region = np.isin(parts, touched[touched > 0])
    pieces, n = ndi.label(region & ~cut)
    sizes = np.bincount(pieces.ravel(), minlength=n + 1)[1:]
    big = [i + 1 for i, s in enumerate(sizes) if s >= min_size]
    if len(big) <= touched[touched > 0].size:
        raise CellscapeError(None, f"the line does not cut cell {cell_id} in two")
    order = sorted(big, key=lambda i: -sizes[i - 1])
    out = labels.astype(np.int32, copy=True)
    seeds = np.zeros_like(out)
    next_id = int(labels.max()) + 1
    for k, piece in enumerate(order):
        seeds[pieces == piece] = cell_id if k == 0 else next_id + k - 1
    # every pixel of the cut region (line and tiny fragments included) goes to its nearest piece
    _, (ri, ci) = ndi.distance_transform_edt(seeds == 0, return_indices=True)
    out[region] = seeds[ri, ci][region]
    return out


def add_cell(
    labels: np.ndarray, mask: np.ndarray, overwrite: bool = False
) -> tuple[np.ndarray, int]:
    """A copy of ``labels`` with a new cell where ``mask`` is True, and the new cell's id.

    Parameters
    ----------
    labels : ndarray of int, shape (Y, X)
    mask : ndarray of bool, shape (Y, X)
        The painted cell. Holes are filled.
    overwrite : bool
        Take pixels from existing cells too (default: only background pixels become the cell).
    """
    from scipy import ndimage as ndi

    labels = _check_labels(labels)
    mask = ndi.binary_fill_holes(np.asarray(mask, dtype=bool))
    if mask.shape != labels.shape:
        raise CellscapeError(None, f"painted mask {mask.shape} does not match {labels.shape}")
    if not overwrite:
        mask &= labels == 0
    if not mask.any():
        raise CellscapeError(None, "nothing painted on background to add as a cell")
    new_id = int(labels.max()) + 1
    out = labels.astype(np.int32, copy=True)
    out[mask] = new_id
    return out, new_id


def relabel(labels: np.ndarray) -> np.ndarray:
    """Ids made consecutive 1..N (in order of the old ids), int32."""
    labels = np.asarray(labels)
    ids = np.unique(labels)
    ids = ids[ids > 0]
    lut = np.zeros(int(labels.max()) + 1 if labels.size else 1, dtype=np.int32)
    lut[ids] = np.arange(1, ids.size + 1, dtype=np.int32)
    return lut[labels]


# --------------------------------------------------------------------------------------------
# images from layers
# --------------------------------------------------------------------------------------------


def layer_image(
    data: np.ndarray, *, rgb: bool = False, scale: Sequence[float] | None = None, metadata=None
) -> tuple[np.ndarray, ImageMeta]:
    """Turn an image layer's data into cellscape's array + :class:`ImageMeta`.

    napari keeps colour images as ``(Y, X, 3)``; cellscape wants ``(3, Y, X)`` with
    ``meta.rgb``. A 3-D grey layer is taken as a z-stack ``(Z, Y, X)``. The pixel size is the
    layer's last scale when it is not 1 (napari's default), or the one a cellscape reader
    stored in the layer's metadata.
    """
    data = np.asarray(data)
    pixel_size = None
    z_step = None
    md = dict(metadata or {}).get("cellscape", {})
    if md.get("pixel_size"):
        pixel_size = float(md["pixel_size"])
    if md.get("z_step"):
        z_step = float(md["z_step"])
    if scale is not None and len(scale) >= 2 and abs(float(scale[-1]) - 1.0) > 1e-9:
        pixel_size = float(scale[-1])
    if rgb:
        if data.ndim != 3 or data.shape[-1] not in (3, 4):
            raise CellscapeError(None, f"colour layer of unexpected shape {data.shape}")
        return np.moveaxis(data[..., :3], -1, 0), ImageMeta("CYX", pixel_size, rgb=True)
    if data.ndim == 2:
        return data, ImageMeta("YX", pixel_size)
    if data.ndim == 3:
        return data, ImageMeta("ZYX", pixel_size, z_step=z_step)
    raise CellscapeError(None, f"cannot segment an image layer of shape {data.shape}")


# --------------------------------------------------------------------------------------------
# segmentation
# --------------------------------------------------------------------------------------------


@dataclass
class Segmentation:
    """What the Segment widget shows: instances, probabilities and (focal) a class map."""

    labels: np.ndarray
    probabilities: np.ndarray | None
    class_names: tuple[str, ...]
    class_map: np.ndarray | None = None
    info: dict = field(default_factory=dict)


def segment_steps(
    model, image: np.ndarray, meta: ImageMeta | None
) -> Generator[str, None, Segmentation]:
    """Segment ``image`` with a loaded model, yielding a line of progress before each stage.

    A generator so that a napari worker can show the stage and stop between stages; its return
    value (``StopIteration.value``) is the :class:`Segmentation`. A z-stack given to a 2-D
    method is segmented in its middle plane; a 2-D image given to the focal-signature method is
    refused.
    """
    image = np.asarray(image)
    method = getattr(model, "method", "")
    if method == "focal":
        if image.ndim != 3 or (meta is not None and meta.axes != "ZYX"):
            raise CellscapeError(None, "the focal-signature method needs a (Z, Y, X) z-stack")
        yield "classifying focal signatures"
        result = model.analyze(image, meta)
        return Segmentation(
            result.labels.astype(np.int32),
            result.probabilities.astype(np.float32),
            tuple(result.class_names),
            class_map=result.class_map,
        )
    if meta is not None and meta.axes == "ZYX":
        image = image[image.shape[0] // 2]
        meta = meta.with_(axes="YX", z_step=None)
    if hasattr(model, "predict_maps") and hasattr(model, "labels_from_maps"):
        yield "predicting"
        maps = model.predict_maps(image, meta)
        yield "finding cells"
        labels = model.labels_from_maps(maps)
        proba = maps[: len(model.class_names)]
    else:
        yield "predicting"
        proba = model.predict_proba(image, meta)
        yield "finding cells"
        labels = model.segment(image, meta)
    return Segmentation(
        np.asarray(labels, dtype=np.int32),
        None if proba is None else np.asarray(proba, dtype=np.float32),
        tuple(model.class_names),
    )


def run_steps(gen: Generator) -> object:
    """Run a step generator to the end (without a viewer) and return its value."""
    while True:
        try:
            next(gen)
        except StopIteration as stop:
            return stop.value


# --------------------------------------------------------------------------------------------
# training
# --------------------------------------------------------------------------------------------


def painted_classes(painted: np.ndarray, class_names: Sequence[str]) -> list[str]:
    """Check a class-painting layer and return the names of the classes that were painted.

    Raises
    ------
    CellscapeError
        Fewer than two classes painted, or a value beyond the named classes.
    """
    painted = np.asarray(painted)
    values = np.unique(painted)
    values = values[values > 0]
    if values.size and values.max() > len(class_names):
        raise CellscapeError(
            None, f"paint value {int(values.max())} has no class name ({len(class_names)} named)"
        )
    if values.size < 2:
        raise CellscapeError(None, "paint at least two classes (e.g. interior and background)")
    return [class_names[v - 1] for v in values]


def fit_focal(
    stack: np.ndarray,
    painted: np.ndarray,
    class_names: Sequence[str],
    progress: Callable | None = None,
    **params,
):  # -> FocalSignature
    """Fit a :class:`~cellscape.methods.focal.FocalSignature` on one painted z-stack.

    ``painted`` holds the paint value ``k`` (1..K) for class ``class_names[k - 1]`` and 0 where
    nothing is painted. Classes never painted are dropped (and the values renumbered), so a user
    may paint only some of the offered classes. ``progress(step, steps, loss)`` is called while
    the ``"cnn"`` classifier trains.
    """
    from ..methods.focal import FocalSignature

    stack = np.asarray(stack)
    painted = np.asarray(painted)
    if stack.ndim != 3:
        raise CellscapeError(None, "the focal-signature method needs a (Z, Y, X) z-stack")
    if painted.shape != stack.shape[1:]:
        if painted.shape == stack.shape:  # painted in 3-D: merge the planes
            painted = painted.max(axis=0)
        else:
            raise CellscapeError(
                None, f"painted classes {painted.shape} do not match the stack {stack.shape}"
            )
    used = painted_classes(painted, class_names)
    values = np.unique(painted[painted > 0])
    lut = np.zeros(int(values.max()) + 1, dtype=np.int32)
    lut[values] = np.arange(1, values.size + 1)
    model = FocalSignature(classes=used, **params)
    return model.fit(stack, lut[painted], progress=progress)


def class_means(
    stack: np.ndarray, painted: np.ndarray, n_classes: int
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation of the z-profiles of each painted class.

    Each frame is divided by its median first (as the focal-signature model does), so the
    profiles of different stacks compare.

    Returns
    -------
    mean, std : ndarray, shape (n_classes, Z), float32
        Row ``k`` belongs to paint value ``k + 1``; NaN for classes with no painted pixel.
    """
    stack = np.asarray(stack, dtype=np.float32)
    painted = np.asarray(painted)
    norm = (
        stack
        / np.maximum(np.median(stack.reshape(stack.shape[0], -1), axis=1), 1e-12)[:, None, None]
    )
    mean = np.full((n_classes, stack.shape[0]), np.nan, np.float32)
    std = np.full_like(mean, np.nan)
    for k in range(n_classes):
        sel = painted == k + 1
        if sel.any():
            prof = norm[:, sel]
            mean[k] = prof.mean(axis=1)
            std[k] = prof.std(axis=1)
    return mean, std


def z_profile(stack: np.ndarray, position: Sequence[float]) -> np.ndarray | None:
    """Median-normalised z-profile ``(Z,)`` of the pixel at ``position`` (None when outside)."""
    stack = np.asarray(stack)
    r, c = (int(round(float(v))) for v in position[-2:])
    if not (0 <= r < stack.shape[1] and 0 <= c < stack.shape[2]):
        return None
    med = np.median(stack.reshape(stack.shape[0], -1), axis=1).astype(np.float32)
    return stack[:, r, c].astype(np.float32) / np.maximum(med, 1e-12)


def fit_unet(
    images: Sequence[np.ndarray],
    labels: Sequence[np.ndarray],
    *,
    epochs: int = 5,
    steps_per_epoch: int = 10,
    base=None,
    on_epoch: Callable[[int, float], None] | None = None,
    **params,
):
    """Train a :class:`~cellscape.methods.unet.UNetSegmenter` on painted instances.

    Parameters
    ----------
    images, labels : sequences of ndarray ``(Y, X)``
        Images and their instance labels (curated masks or painted cells).
    epochs, steps_per_epoch : int
        Training length (a few epochs of a few steps fit a small image in seconds).
    base : UNetSegmenter, optional
        Start from this model's weights (fine-tuning, e.g. the bundled ``nuclei`` model) instead
        of from scratch; its parameters are kept.
    on_epoch : callable, optional
        ``on_epoch(epoch, train_loss)`` after every epoch (the widget's live read-out).
    **params
        Constructor parameters of a new model (``filters``, ``patch``, ``batch_size``...).
    """
    from ..methods.unet import PatchSampler, UNetSegmenter, _prepare_pair, unet_loss
    from ..nn.train import TrainConfig, train_network
    from ..quantify import median_diameter

    if base is not None:
        model = base
        net = model.net_
        # fine-tuning: a quarter of the from-scratch learning rate keeps what the model knew
        # and small batches of small crops keep each step interactive on a CPU
        model.set_params(
            learning_rate=model.learning_rate * 0.25,
            batch_size=min(model.batch_size, 4),
            patch=min(model.patch, 96),
        )
    else:
        params.setdefault("filters", (8, 16, 32))
        params.setdefault("patch", 64)
        params.setdefault("batch_size", 4)
        model = UNetSegmenter(**params)
        net = model._build()
    model.set_params(epochs=epochs, steps_per_epoch=steps_per_epoch)
    pairs = []
    for im, lab in zip(images, labels, strict=True):
        lab = np.asarray(lab)
        if lab.max() <= 0:
            raise CellscapeError(None, "no cells painted: paint or curate some cells first")
        pairs.append(_prepare_pair(im, lab, None, model.channel, model.colour, model.channels))
    patch = min(model.patch, *(min(lab.shape) for _, lab in pairs))
    patch = max(16, patch // 16 * 16)
    sampler = PatchSampler(pairs, patch, model.batch_size, model.scale_range)
    threads = int(os.environ.get("CELLSCAPE_THREADS", "0")) or None
    config = TrainConfig(
        epochs=epochs,
        steps_per_epoch=steps_per_epoch,
        learning_rate=model.learning_rate,
        seed=model.seed,
        threads=threads,
    )

    def report(epoch, history):
        if on_epoch is not None:
            on_epoch(epoch, history.train_loss[-1])

    history = train_network(net, sampler, unet_loss, config, progress=False, on_epoch=report)
    model.net_ = net
    if base is None or not getattr(model, "diameter_", None):
        model.diameter_ = median_diameter(lab for _, lab in pairs)
    model.info_ = {"history": history.to_dict(), "n_train_images": len(pairs)}
    return model


_DONE = object()


def callback_steps(func: Callable, *args, callback_name: str = "on_epoch", **kwargs) -> Generator:
    """Run ``func(*args, **kwargs, <callback_name>=cb)`` in a thread; yield what ``cb`` gets.

    Turns a callback-reporting function (such as :func:`fit_unet`) into a generator that a
    napari worker iterates, so the live read-out reaches the viewer between steps. The
    generator's return value is ``func``'s; an exception in ``func`` is raised from it.
    """
    q: queue.Queue = queue.Queue()
    box: dict = {}

    def cb(*values):
        q.put(values)

    def target():
        try:
            box["value"] = func(*args, **kwargs, **{callback_name: cb})
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            box["error"] = exc
        finally:
            q.put(_DONE)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    while True:
        item = q.get()
        if item is _DONE:
            break
        yield item
    thread.join()
    if "error" in box:
        raise box["error"]
    return box.get("value")


# --------------------------------------------------------------------------------------------
# saving and exporting
# --------------------------------------------------------------------------------------------


def save_masks(path: str | os.PathLike, labels: np.ndarray, meta: ImageMeta | None = None) -> Path:
    """Write curated masks as a ``_masks.tif`` (uint16/uint32 TIFF), atomically.

    A path without the ``_masks.tif`` ending gets it, so cellscape and Cellpose pair the file
    with its image.
    """
    from ..io import MASK_SUFFIX, write_labels

    path = Path(path)
    if not path.name.endswith(MASK_SUFFIX):
        stem = path.name
        for suffix in (".tiff", ".tif"):
            if stem.lower().endswith(suffix):
                stem = stem[: -len(suffix)]
        path = path.with_name(stem + MASK_SUFFIX)
    return write_labels(path, relabel(_check_labels(labels)), meta)


def export(
    folder: str | os.PathLike,
    stem: str,
    labels: np.ndarray,
    image: np.ndarray | None = None,
    meta: ImageMeta | None = None,
    *,
    masks: bool = True,
    rois: bool = True,
    table: bool = True,
) -> list[Path]:
    """Write ``<stem>_masks.tif``, ``<stem>_rois.zip`` (ImageJ) and ``<stem>_cells.csv``.

    Every file is written atomically; the folder is created if needed. The measurement table is
    :func:`cellscape.quantify.cell_table` of ``labels`` over ``image`` (2-D, or channels first
    with ``meta.axes == "CYX"``).
    """
    from ..io import check_writable_folder, write_rois, write_table
    from ..quantify import cell_table

    folder = check_writable_folder(folder)
    labels = relabel(_check_labels(labels))
    written: list[Path] = []
    if masks:
        written.append(save_masks(folder / f"{stem}_masks.tif", labels, meta))
    if rois:
        written.append(write_rois(folder / f"{stem}_rois.zip", labels))
    if table:
        if (
            image is not None
            and np.asarray(image).ndim == 3
            and (meta is None or meta.axes == "ZYX")
        ):
            image = None  # a z-stack has no single intensity per pixel: shapes only
            meta = meta.with_(axes="YX") if meta is not None else None
        written.append(write_table(folder / f"{stem}_cells.csv", cell_table(labels, image, meta)))
    return written
