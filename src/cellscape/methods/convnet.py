"""Windowed conv-nets for live-cell images: edge / interior / background (Van Valen et al. 2016).

A compact conv-net (:class:`cellscape.nn.windowed.WindowNet`) classifies each pixel as cell
edge, cell interior or background from a window about one cell wide around it (31 x 31 pixels
for bacteria, 61 x 61 for mammalian cells). With ``cell_types`` the interior class is split into
one class per cell type (co-cultures).

* **Input**: one or more named channels (``("phase",)``, ``("nuclear",)``,
  ``("phase", "nuclear")``), each divided by its median and then reduced by its local mean over
  the window (the receptive field), as in the paper.
* **Training**: windows around annotated pixels; the classes are balanced by down-sampling every
  class to the size of the rarest; each window is rotated by a random multiple of 90 degrees and
  randomly reflected on the fly; batch normalisation; an L2 penalty on the weights.
* **Inference**: fully convolutional, with dilated (d-regularly sparse) kernels, giving exactly
  the window-by-window answer over the whole image at once
  (:func:`cellscape.nn.windowed.predict_dense`).
* **Ensembles**: ``n_models`` nets trained with seeds ``seed, seed + 1, ...``; their softmax
  outputs are averaged.
* **Masks**: ``postprocess="threshold"`` thresholds the interior softmax (0.6 for bacteria,
  0.5-0.75 for nuclei; ``adaptive=True`` lowers the cut for dim objects) and grows each piece
  over the edge pixels around it; ``postprocess="snakes"`` grows whole mammalian cells from the
  nuclei found by a nuclear conv-net (``nuclear_model``) with an active contour on the interior
  map (:mod:`cellscape.post.snakes`).
* **Cell types**: :meth:`ConvNet.cell_types` gives every cell the mean score of each type over
  its pixels (the cellular classification score) and the winning type.
"""

from __future__ import annotations

import math
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

from ..errors import CellscapeError
from ..io import ImageMeta, read_safetensors, write_safetensors
from ..preprocess import rgb_to_grey
from .base import CONFIG_NAME, Segmenter

WEIGHTS_NAME = "weights.safetensors"
NUCLEAR_FOLDER = "nuclear"

__all__ = [
    "CellTypes",
    "ConvNet",
    "WindowSampler",
    "class_targets",
    "normalize_channels",
    "select_channels",
    "threshold_instances",
]


# ----------------------------------------------------------------------------------------------
# input
# ----------------------------------------------------------------------------------------------


def select_channels(
    image: np.ndarray, meta: ImageMeta | None, channels: tuple[str, ...]
) -> np.ndarray:
    """The model's input channels of an image, in the model's order.

    Parameters
    ----------
    image : ndarray
        ``(Y, X)`` or ``(C, Y, X)`` (a colour image ``(3, Y, X)`` with ``meta.rgb`` counts as one
        grey channel). A plain multi-page TIFF read as ``(Z, Y, X)`` with exactly
        ``len(channels)`` pages is taken as the channels in the model's order.
    meta : ImageMeta, optional
        Axes and channel names. Channels are picked by name; when none of the names is known
        (unnamed channels) and the image has exactly ``len(channels)`` channels, by position.
    channels : tuple of str
        Channel names the model was trained on.

    Returns
    -------
    ndarray of float32, shape (len(channels), Y, X)

    Raises
    ------
    CellscapeError
        Z-stacks or time series, or channels that cannot be matched.
    """
    image = np.asarray(image)
    axes = meta.axes if meta is not None else {2: "YX", 3: "CYX"}.get(image.ndim, "?")
    source = meta.source if meta is not None else None
    want = ", ".join(channels)
    if axes == "YX" or (axes == "CYX" and meta is not None and meta.rgb):
        plane = image if axes == "YX" else rgb_to_grey(image)
        if len(channels) != 1:
            raise CellscapeError(
                source, f"this model needs {len(channels)} channels ({want}); the image has one"
            )
        return plane[None].astype(np.float32)
    if axes == "ZYX" and image.shape[0] == len(channels) > 1:
        # a plain multi-page TIFF carries no axis names: as many pages as channels = channels
        return image.astype(np.float32)
    if axes != "CYX":
        raise CellscapeError(
            source, f"expected (Y, X) or (C, Y, X), got axes {axes} with shape {image.shape}"
        )
    names = list(meta.channel_names) if meta is not None else []
    if names and all(c in names for c in channels):
        return np.stack([image[names.index(c)] for c in channels]).astype(np.float32)
    if not any(c in names for c in channels) and image.shape[0] == len(channels):
        return image.astype(np.float32)
    have = ", ".join(names) if names else f"{image.shape[0]} unnamed"
    raise CellscapeError(source, f"this model needs channels {want}; the image has {have}")


def normalize_channels(image: np.ndarray, window: int) -> np.ndarray:
    """The paper's normalisation: divide each channel by its median, then subtract the local
    mean over a ``window`` x ``window`` neighbourhood (the receptive field).

    A channel whose median is 0 (sparse fluorescence) is divided by its mean instead; a blank
    channel is left at 0.

    Parameters
    ----------
    image : ndarray, shape (C, Y, X)
    window : int
        Side of the local-mean window in pixels.

    Returns
    -------
    ndarray of float32, shape (C, Y, X)
    """
    out = np.empty(image.shape, np.float32)
    for c, plane in enumerate(np.asarray(image, dtype=np.float32)):
        scale = float(np.median(plane))
        if scale <= 0:
            scale = float(np.mean(np.abs(plane)))
        plane = plane / scale if scale > 0 else np.zeros_like(plane)
        out[c] = plane - ndi.uniform_filter(plane, size=window, mode="reflect")
    return out


def pad_for_window(x: np.ndarray, window: int) -> np.ndarray:
    """Reflect-pad ``(C, Y, X)`` by ``window // 2`` on each side (every pixel gets a window)."""
    h = window // 2
    mode = "reflect" if min(x.shape[1:]) > h else "symmetric"
    return np.pad(x, ((0, 0), (h, h), (h, h)), mode=mode)


# ----------------------------------------------------------------------------------------------
# targets
# ----------------------------------------------------------------------------------------------


def class_targets(target: np.ndarray, n_types: int = 1) -> np.ndarray:
    """Per-pixel class index from DeepCell feature masks or from instance labels.

    Parameters
    ----------
    target : ndarray
        Either feature masks ``(K, Y, X)`` (``K >= 2``: 0 edge, 1 interior, 2.. interior of the
        other cell types; non-zero = in the class), or instance labels ``(Y, X)`` (the inner
        one-pixel rim of each cell becomes edge, the rest interior).
    n_types : int
        Number of interior classes the model has.

    Returns
    -------
    ndarray of int64, shape (Y, X)
        0 background, 1 edge, 2 interior (of type 1), 3.. interiors of the other types.
        Edge wins where masks overlap.
    """
    target = np.asarray(target)
    if target.ndim == 2:
        from skimage.segmentation import find_boundaries

        classes = (target > 0).astype(np.int64) * 2
        classes[find_boundaries(target, mode="inner") & (target > 0)] = 1
        return classes
    if target.ndim != 3 or target.shape[0] < 2:
        raise ValueError(
            f"targets must be labels (Y, X) or feature masks (K, Y, X), got {target.shape}"
        )
    if target.shape[0] - 1 > n_types:
        raise ValueError(
            f"targets have {target.shape[0] - 1} interior classes but the model has {n_types}"
        )
    classes = np.zeros(target.shape[1:], np.int64)
    for k in range(1, target.shape[0]):
        classes[target[k] > 0] = k + 1
    classes[target[0] > 0] = 1
    return classes


class WindowSampler:
    """Class-balanced random windows with random rotations and reflections.

    Every class is down-sampled (over all images together) to the pixel count of the rarest
    class present, capped at ``max_per_class``; batches are drawn from that balanced pool.
    Calling the sampler with a random generator returns ``(windows (N, C, w, w) float32,
    classes (N,) int64)`` tensors.

    Parameters
    ----------
    padded : list of ndarray, shape (C, Y + w - 1, X + w - 1)
        Normalised, padded images.
    classes : list of ndarray of int, shape (Y, X)
        Class index per pixel (:func:`class_targets`).
    window, batch_size : int
    rng : numpy Generator
        Draws the balanced pool.
    augment : bool
        Random rotations by multiples of 90 degrees and reflections.
    """

    def __init__(
        self,
        padded,
        classes,
        window: int,
        batch_size: int,
        rng: np.random.Generator,
        augment: bool = True,
        max_per_class: int = 200_000,
    ):
        self.window = window
        self.batch_size = batch_size
        self.augment = augment
        self.views = [
            np.lib.stride_tricks.sliding_window_view(p, (window, window), axis=(1, 2))
            for p in padded
        ]
        n_classes = int(max(c.max() for c in classes)) + 1
        per_class: list[list[np.ndarray]] = [[] for _ in range(n_classes)]
        for i, cls in enumerate(classes):
            flat = cls.ravel()
            for k in range(n_classes):
                idx = np.flatnonzero(flat == k)
                if idx.size:
                    per_class[k].append(np.stack([np.full(idx.size, i), idx], 1))
        pools = [np.concatenate(p) if p else np.zeros((0, 2), np.int64) for p in per_class]
        counts = [len(p) for p in pools if len(p)]
        m = min(min(counts), max_per_class)
        self.counts_ = {k: len(p) for k, p in enumerate(pools)}
        chosen = []
        labels = []
        for k, pool in enumerate(pools):
            if len(pool) == 0:
                continue
            pick = pool[rng.choice(len(pool), size=m, replace=False)]
            chosen.append(pick)
            labels.append(np.full(m, k))
        self.pool = np.concatenate(chosen)
        self.labels = np.concatenate(labels)
        self.widths = [c.shape[1] for c in classes]

    def __len__(self) -> int:
        return len(self.pool)

    def __call__(self, rng: np.random.Generator):
        import torch

        pick = rng.integers(0, len(self.pool), self.batch_size)
        windows = []
        for (img, flat), _ in zip(self.pool[pick], pick, strict=True):
            y, x = divmod(int(flat), self.widths[img])
            w = self.views[img][:, y, x]
            if self.augment:
                w = np.rot90(w, int(rng.integers(4)), axes=(1, 2))
                if rng.random() < 0.5:
                    w = w[:, :, ::-1]
            windows.append(w)
        xb = torch.from_numpy(np.ascontiguousarray(np.stack(windows), dtype=np.float32))
        yb = torch.from_numpy(self.labels[pick].astype(np.int64))
        return xb, yb


# ----------------------------------------------------------------------------------------------
# post-processing
# ----------------------------------------------------------------------------------------------


def threshold_instances(
    interior: np.ndarray,
    foreground: np.ndarray | None = None,
    *,
    threshold: float = 0.6,
    adaptive: bool = False,
    adaptive_low: float = 0.25,
    adaptive_fraction: float = 0.75,
    grow: int = 1,
    min_size: int = 10,
) -> np.ndarray:
    """Cells by thresholding the interior softmax (the paper's bacteria / nuclei masks).

    Parameters
    ----------
    interior : ndarray of float, shape (Y, X)
        Interior probability.
    foreground : ndarray of float, shape (Y, X), optional
        ``1 - P(background)``: each piece grows by up to ``grow`` pixels into pixels where it is
        above 0.5 (the edge pixels around the interior).
    threshold : float
        Cut-off on the interior probability.
    adaptive : bool
        Also keep dim objects: each connected piece of ``interior > adaptive_low`` is cut at
        ``min(threshold, adaptive_fraction * its maximum)``, so an object whose interior
        probability peaks at 0.5 is cut at 0.375 while bright ones are cut at ``threshold``.
    grow : int
        Pixels to grow each cell into the foreground (0 = the thresholded interior alone).
    min_size : int
        Cells smaller than this (pixels, after growing) are dropped.

    Returns
    -------
    ndarray of int32, shape (Y, X)
        0 background, 1..N cells (4-connected pieces).
    """
    from skimage.segmentation import expand_labels, relabel_sequential

    interior = np.asarray(interior, dtype=np.float32)
    if adaptive:
        low, n = ndi.label(interior > adaptive_low)
        peaks = np.asarray(ndi.maximum(interior, low, np.arange(n + 1)), np.float32)
        cut = np.minimum(threshold, adaptive_fraction * peaks)[low]
        cut[low == 0] = max(threshold, adaptive_low)
        mask = (interior > cut) & (low > 0) | (interior > threshold)
    else:
        mask = interior > threshold
    labels, _ = ndi.label(mask)
    if grow > 0 and foreground is not None:
        grown = expand_labels(labels, grow)
        labels = np.where((np.asarray(foreground) > 0.5) | (labels > 0), grown, 0)
    if min_size > 0:
        sizes = np.bincount(labels.ravel())
        small = sizes < min_size
        small[0] = False
        labels[small[labels]] = 0
    labels, _, _ = relabel_sequential(labels)
    return labels.astype(np.int32, copy=False)


@dataclass
class CellTypes:
    """Cell types of a segmented image.

    Attributes
    ----------
    labels : ndarray of int32, shape (Y, X)
        Cells, ids 1..N.
    type_names : tuple of str
        The T cell types.
    scores : ndarray of float32, shape (N, T)
        Mean probability of each type's interior class over each cell's pixels (the cellular
        classification score); row ``i`` is cell ``i + 1``.
    types : ndarray of int32, shape (N,)
        Index of the winning type of each cell.
    """

    labels: np.ndarray
    type_names: tuple[str, ...]
    scores: np.ndarray
    types: np.ndarray


# ----------------------------------------------------------------------------------------------
# the estimator
# ----------------------------------------------------------------------------------------------


class ConvNet(Segmenter):
    """Windowed edge / interior / background conv-net (see the module docstring).

    Parameters
    ----------
    channels : tuple of str
        Input channel names, in order (``("phase",)``, ``("nuclear",)``,
        ``("phase", "nuclear")``); images are matched by channel name.
    window : int
        Window (receptive field) in pixels, odd: 31 for bacteria, 61 for mammalian cells.
    layers : tuple of int or "p", optional
        Conv kernel sizes and ``"p"`` for pooling; default
        :func:`cellscape.nn.windowed.plan_layers`.
    filters, dense : int
        Width of the first conv layer (later ones have twice as many) and of the dense layer.
    cell_types : tuple of str, optional
        Names of the cell types when the interior is split into one class per type (feature
        masks ``feature_1``, ``feature_2``, ... in that order); ``None`` = one interior class.
    n_models : int
        Ensemble size: nets trained with seeds ``seed .. seed + n_models - 1``, softmax averaged.
    steps, batch_size : int
        Optimiser steps per net and windows per step.
    learning_rate : float
        AdamW learning rate (cosine decay).
    l2 : float
        L2 penalty on the conv weights, added to the loss.
    max_per_class : int
        Cap of the balanced pool of training windows per class.
    postprocess : {"threshold", "snakes"}
        Thresholded interior (bacteria, nuclei) or active contours from nuclei (mammalian
        cytoplasm; needs a nuclear model or uses interior cores as seeds).
    threshold : float
        Interior-probability cut-off of ``"threshold"`` (0.6 bacteria, 0.5-0.75 nuclei).
    adaptive : bool
        Lower the cut-off for dim objects (see :func:`threshold_instances`).
    grow : int
        Pixels each thresholded cell grows into the edge / foreground.
    min_size : int
        Smallest cell, in pixels.
    snake_iterations : int
        Active-contour iterations of ``"snakes"``.
    min_nucleus_fraction : float
        ``"snakes"`` ignores nuclei smaller than this fraction of the image's median nucleus
        area (fragments that would split a cell; 0.4 chosen on a HeLa training image).
    nuclear_model : str, optional
        Folder of a saved nuclear ConvNet that seeds ``"snakes"``; it is copied into the model
        folder on :meth:`save`.
    rows : int
        Output rows per strip of fully convolutional inference (bounds memory).
    seed : int
        Random seed of the first net.
    """

    method = "convnet"

    def __init__(
        self,
        channels: tuple[str, ...] = ("phase",),
        window: int = 31,
        layers: tuple | None = None,
        filters: int = 16,
        dense: int = 64,
        cell_types: tuple[str, ...] | None = None,
        n_models: int = 1,
        steps: int = 2000,
        batch_size: int = 128,
        learning_rate: float = 2e-3,
        l2: float = 1e-5,
        max_per_class: int = 200_000,
        postprocess: str = "threshold",
        threshold: float = 0.6,
        adaptive: bool = False,
        grow: int = 1,
        min_size: int = 10,
        snake_iterations: int = 40,
        min_nucleus_fraction: float = 0.4,
        nuclear_model: str | None = None,
        rows: int = 256,
        seed: int = 0,
    ):
        self.channels = tuple(channels)
        self.window = window
        self.layers = tuple(layers) if layers is not None else None
        self.filters = filters
        self.dense = dense
        self.cell_types = tuple(cell_types) if cell_types is not None else None
        self.n_models = n_models
        self.steps = steps
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.l2 = l2
        self.max_per_class = max_per_class
        self.postprocess = postprocess
        self.threshold = threshold
        self.adaptive = adaptive
        self.grow = grow
        self.min_size = min_size
        self.snake_iterations = snake_iterations
        self.min_nucleus_fraction = min_nucleus_fraction
        self.nuclear_model = nuclear_model
        self.rows = rows
        self.seed = seed

    # ------------------------------------------------------------------------------------------
    @property
    def class_names(self) -> tuple[str, ...]:  # type: ignore[override]
        types = self.cell_types or ("interior",)
        if len(types) == 1:
            return ("background", "edge", "interior")
        return ("background", "edge", *types)

    @property
    def n_types(self) -> int:
        return len(self.cell_types) if self.cell_types else 1

    def _build(self):
        from ..nn.windowed import WindowNet

        return WindowNet(
            len(self.channels),
            len(self.class_names),
            self.window,
            layers=self.layers,
            filters=self.filters,
            dense=self.dense,
        )

    def _input(self, image: np.ndarray, meta: ImageMeta | None) -> np.ndarray:
        x = select_channels(image, meta, self.channels)
        return pad_for_window(normalize_channels(x, self.window), self.window)

    # ------------------------------------------------------------------------------------------
    def fit(
        self,
        images,
        targets,
        metas=None,
        *,
        checkpoint_dir: str | os.PathLike | None = None,
        progress: bool = True,
        threads: int | None = None,
    ) -> ConvNet:
        """Train ``n_models`` nets on images and their targets.

        Parameters
        ----------
        images : sequence of ndarray
            ``(Y, X)`` or ``(C, Y, X)`` images holding the model's channels.
        targets : sequence of ndarray
            Per image: DeepCell feature masks ``(K, Y, X)`` (edge, interior, second type ...)
            or instance labels ``(Y, X)`` (see :func:`class_targets`).
        metas : sequence of ImageMeta, optional
            Channel names of the images (needed to pick channels by name).
        checkpoint_dir : path, optional
            Each net checkpoints to ``<checkpoint_dir>/net<i>`` every 200 steps; calling
            ``fit`` again with the same folder resumes (finished nets are read back).
        progress : bool
            Show a progress bar.
        threads : int, optional
            torch CPU threads.
        """
        import torch

        from ..nn.train import TrainConfig, train_network

        if self.postprocess not in ("threshold", "snakes"):
            raise ValueError(
                f"postprocess must be 'threshold' or 'snakes', got {self.postprocess!r}"
            )
        metas = list(metas) if metas is not None else [None] * len(images)
        padded, classes = [], []
        for image, target, meta in zip(images, targets, metas, strict=True):
            x = self._input(image, meta)
            cls = class_targets(target, self.n_types)
            h = self.window // 2
            if cls.shape != (x.shape[1] - 2 * h, x.shape[2] - 2 * h):
                raise ValueError(f"targets {cls.shape} do not match the image's (Y, X)")
            padded.append(x)
            classes.append(cls)
        sampler = WindowSampler(
            padded,
            classes,
            self.window,
            self.batch_size,
            np.random.default_rng(self.seed),
            max_per_class=self.max_per_class,
        )
        l2 = float(self.l2)

        self.nets_ = []
        histories = []
        steps_per_epoch = min(200, self.steps)
        epochs = max(1, math.ceil(self.steps / steps_per_epoch))
        for i in range(self.n_models):
            net = self._build()

            def loss_fn(output, target, net=net):
                loss = torch.nn.functional.cross_entropy(output, target)
                if l2 > 0:
                    loss = loss + l2 * sum(
                        (p**2).sum() for n, p in net.named_parameters() if n.endswith("weight")
                    )
                return loss

            config = TrainConfig(
                epochs=epochs,
                steps_per_epoch=steps_per_epoch,
                learning_rate=self.learning_rate,
                weight_decay=0.0,
                seed=self.seed + i,
                threads=threads,
            )
            folder = Path(checkpoint_dir) / f"net{i}" if checkpoint_dir is not None else None
            history = train_network(
                net, sampler, loss_fn, config, checkpoint_dir=folder, progress=progress
            )
            net.eval()
            self.nets_.append(net)
            histories.append(history.to_dict())
        self.info_ = {
            "history": histories,
            "n_train_images": len(padded),
            "balanced_windows_per_class": int(len(sampler) // max(1, len(set(sampler.labels)))),
            "pixels_per_class": {self.class_names[k]: v for k, v in sampler.counts_.items()},
        }
        return self

    # ------------------------------------------------------------------------------------------
    def _check_fitted(self):
        if not getattr(self, "nets_", None):
            raise CellscapeError(None, "this conv-net model has not been trained or loaded")

    def predict_proba(self, image: np.ndarray, meta: ImageMeta | None = None) -> np.ndarray:
        """Per-pixel class probabilities, the mean softmax of the ensemble.

        Parameters
        ----------
        image : ndarray
            ``(Y, X)`` or ``(C, Y, X)`` holding the model's channels.
        meta : ImageMeta, optional
            Channel names.

        Returns
        -------
        ndarray of float32, shape (K, Y, X)
            In the order of :attr:`class_names` (background, edge, interior or the types).
        """
        from ..nn.windowed import predict_dense

        self._check_fitted()
        padded = self._input(image, meta)
        out = None
        for net in self.nets_:
            p = predict_dense(net, padded, rows=self.rows)
            out = p if out is None else out + p
        assert out is not None
        return out / len(self.nets_)

    def predict_windows(
        self, image: np.ndarray, ys, xs, meta: ImageMeta | None = None
    ) -> np.ndarray:
        """Class probabilities of pixels ``(ys, xs)``, classifying one window at a time (the
        slow reference that :meth:`predict_proba` equals). Returns ``(K, N)`` float32."""
        from ..nn.windowed import predict_windows

        self._check_fitted()
        padded = self._input(image, meta)
        ys, xs = np.asarray(ys), np.asarray(xs)
        out = sum(predict_windows(net, padded, ys, xs) for net in self.nets_)
        return out / len(self.nets_)

    def interior(self, proba: np.ndarray) -> np.ndarray:
        """Interior probability (summed over cell types), shape (Y, X)."""
        return proba[2:].sum(0)

    def labels_from_proba(
        self,
        proba: np.ndarray,
        nuclei: np.ndarray | None = None,
    ) -> np.ndarray:
        """Instance labels from :meth:`predict_proba` output (the post-processing alone).

        Parameters
        ----------
        proba : ndarray of float32, shape (K, Y, X)
        nuclei : ndarray of int, shape (Y, X), optional
            Nucleus labels seeding ``postprocess="snakes"``; without them, pieces of interior
            probability above ``max(threshold, 0.8)`` shrunk by 2 pixels are the seeds.
        """
        interior = self.interior(proba)
        foreground = 1.0 - proba[0]
        if self.postprocess == "threshold":
            return threshold_instances(
                interior,
                foreground,
                threshold=self.threshold,
                adaptive=self.adaptive,
                grow=self.grow,
                min_size=self.min_size,
            )
        if self.postprocess != "snakes":
            raise CellscapeError(None, f"unknown postprocess '{self.postprocess}'")
        from ..post.snakes import grow_cells_from_nuclei

        if nuclei is None:
            core = ndi.binary_erosion(interior > max(self.threshold, 0.8), iterations=2)
            nuclei, _ = ndi.label(core)
        labels = grow_cells_from_nuclei(
            interior,
            nuclei,
            iterations=self.snake_iterations,
            min_size=self.min_size,
            min_seed_fraction=self.min_nucleus_fraction,
            foreground=foreground > 0.5,
        )
        from skimage.segmentation import relabel_sequential

        return relabel_sequential(labels)[0].astype(np.int32, copy=False)

    def segment_nuclei(self, image: np.ndarray, meta: ImageMeta | None = None):
        """Nuclei of the nuclear model (``None`` when the model has none)."""
        nuclear = getattr(self, "nuclear_", None)
        if nuclear is None and self.nuclear_model:
            self.set_nuclear_model(self.nuclear_model)
            nuclear = self.nuclear_
        if nuclear is None:
            return None
        # hand the nuclear model this model's channels, named, so that it finds its own
        # channel also in images whose channels carry no names
        x = select_channels(image, meta, self.channels)
        named = ImageMeta(
            axes="CYX", channel_names=self.channels, source=meta.source if meta else None
        )
        return nuclear.segment(x, named)

    def segment(self, image: np.ndarray, meta: ImageMeta | None = None) -> np.ndarray:
        """Instance labels, shape (Y, X), int32, 0 = background."""
        proba = self.predict_proba(image, meta)
        nuclei = self.segment_nuclei(image, meta) if self.postprocess == "snakes" else None
        return self.labels_from_proba(proba, nuclei)

    def cell_types_from(self, labels: np.ndarray, proba: np.ndarray) -> CellTypes:
        """Cell types of given cells from :meth:`predict_proba` output."""
        names = self.cell_types or ("interior",)
        n = int(labels.max()) if labels.size else 0
        flat = labels.ravel()
        area = np.bincount(flat, minlength=n + 1)[1:].astype(np.float64)
        area[area == 0] = 1
        scores = np.stack(
            [np.bincount(flat, weights=p.ravel(), minlength=n + 1)[1:] / area for p in proba[2:]],
            axis=1,
        ).astype(np.float32)
        types = np.argmax(scores, axis=1).astype(np.int32) if n else np.zeros(0, np.int32)
        scores = scores.reshape(n, len(names))
        return CellTypes(labels.astype(np.int32), tuple(names), scores, types)

    def cell_types_of(self, image: np.ndarray, meta: ImageMeta | None = None) -> CellTypes:
        """Segment the image and give every cell its type scores and winning type."""
        proba = self.predict_proba(image, meta)
        nuclei = self.segment_nuclei(image, meta) if self.postprocess == "snakes" else None
        return self.cell_types_from(self.labels_from_proba(proba, nuclei), proba)

    # ------------------------------------------------------------------------------------------
    def config(self) -> dict:
        config = super().config()
        if getattr(self, "nuclear_", None) is not None:
            config["params"]["nuclear_model"] = NUCLEAR_FOLDER
        return config

    def save(self, path: str | os.PathLike) -> Path:
        """Write ``config.json`` and ``weights.safetensors`` (float16) into the folder ``path``;
        a nuclear model goes to ``path/nuclear``."""
        from ..nn.train import state_to_numpy

        self._check_fitted()
        folder = Path(path)
        arrays = {}
        for i, net in enumerate(self.nets_):
            for k, v in state_to_numpy(net).items():
                arrays[f"net{i}.{k}"] = v.astype(np.float16) if v.dtype == np.float32 else v
        write_safetensors(folder / WEIGHTS_NAME, arrays)
        nuclear = getattr(self, "nuclear_", None)
        if nuclear is not None:
            nuclear.save(folder / NUCLEAR_FOLDER)
        elif (folder / NUCLEAR_FOLDER).is_dir():
            shutil.rmtree(folder / NUCLEAR_FOLDER)
        return super().save(folder)

    def set_nuclear_model(self, model: ConvNet | str | os.PathLike | None) -> ConvNet:
        """Attach the nuclear ConvNet that seeds ``postprocess="snakes"`` (a model or folder)."""
        if model is None or isinstance(model, ConvNet):
            self.nuclear_ = model
        else:
            self.nuclear_ = ConvNet.load(model)
        return self

    @classmethod
    def load(cls, path: str | os.PathLike) -> ConvNet:
        from ..nn.train import load_numpy_state

        folder = Path(path)
        folder = folder.parent if folder.name == CONFIG_NAME else folder
        model = super().load(folder)
        model.channels = tuple(model.channels)
        model.layers = tuple(model.layers) if model.layers is not None else None
        model.cell_types = tuple(model.cell_types) if model.cell_types is not None else None
        arrays = read_safetensors(folder / WEIGHTS_NAME)
        model.nets_ = []
        try:
            for i in range(model.n_models):
                prefix = f"net{i}."
                state = {
                    k[len(prefix) :]: v.astype(np.float32) if v.dtype == np.float16 else v
                    for k, v in arrays.items()
                    if k.startswith(prefix)
                }
                net = model._build()
                load_numpy_state(net, state)
                net.eval()
                model.nets_.append(net)
        except (RuntimeError, KeyError) as exc:
            raise CellscapeError(
                folder / WEIGHTS_NAME,
                f"weights do not fit the network ({str(exc).splitlines()[0][:120]})",
            ) from None
        model.nuclear_ = None
        if model.nuclear_model:
            sub = Path(model.nuclear_model)
            sub = sub if sub.is_absolute() else folder / sub
            model.nuclear_ = ConvNet.load(sub)
        return model
