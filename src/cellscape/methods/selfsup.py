"""Label-free marker-controlled segmentation: a U-Net learned without any annotation.

The method of the 2021 Scientific Reports paper on unsupervised marker-controlled CNN
segmentation. Nuclei give one marker per cell; a small U-Net segments the one cell of each
``k x k`` patch centred on a marker (its input is the patch plus a Gaussian disk at the marker);
it is trained on the very image to segment, with no labels at all, by asking overlapping patches
not to claim the same pixels and not to spill outside the cell area (a graph-cut mask). See
:mod:`cellscape.selfsup_net` for the loss.

Workflow::

    model = SelfSupervised().fit(image, meta)      # (C, Y, X) with a nuclear channel
    labels = model.segment(image, meta)            # each pixel to its most probable patch
    model.save("my_model")                         # reusable on new images of the same kind

Markers of an image come from (first that applies): markers given to ``fit`` / ``segment``; a
nucleus image given as ``nuclei=``; the nuclear channel of a multi-channel image (DoG blobs); a
synthetic-nucleus model (:class:`cellscape.markers.SyntheticNuclei`) predicting nuclei from the
cell channel. A saved model records which it used (``info["markers"]``) and carries its
synthetic-nucleus model, so that ``cellscape segment --model FOLDER`` needs nothing more than a
two-channel image (cell, nuclear) -- or the cell image alone when the model has a nucleus model.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

from ..errors import CellscapeError
from ..io import ImageMeta
from ..markers import SyntheticNuclei, dog_markers
from ..preprocess import normalize_percentile
from .base import CONFIG_NAME, Segmenter

WEIGHTS_NAME = "weights.safetensors"
NUCLEUS_FOLDER = "nuclei"


class SelfSupervised(Segmenter):
    """Marker-controlled U-Net segmentation trained without labels (see the module docstring).

    Parameters
    ----------
    patch : int
        Patch edge ``k`` in (working) pixels; a multiple of 4.
    sigma : float
        Sigma of the Gaussian disk marking the patch centre, in patch pixels.
    lam : float
        Weight of the cross-patch term. 3.32 (``1 / log10(2)``) balances it against the area
        term when the other patch is at 0.5.
    beta : float
        Weight of the predicted area outside the cell-area mask (0: no mask).
    learning_rate : float
        Adam learning rate.
    window : int
        Each batch holds the patches of the markers inside one random ``window x window``
        region of the (working) image.
    steps : int
        Training length: optimiser steps, each on the patches of one window.
    filters : tuple of int
        U-Net feature maps per level.
    scale : "auto" or float
        Working scale: the image is resized by this factor before anything else. ``"auto"``
        makes the median distance between neighbouring markers ``0.6 * patch`` (never enlarging
        the image) at ``fit``; new images use the fitted scale.
    foreground : {"intensity", "texture", "scribbles"}
        Foreground map of the graph cut: bright cells (fluorescence), textured cells on a flat
        background (phase contrast, bright field), or a random forest on user scribbles.
    alpha : float or None
        Expected fraction of the image covered by cells (graph-cut prior; None = 0.5, none).
    kappa : float
        Graph-cut cost of a label change between 4-neighbours.
    channel : int or str
        The cell channel of multi-channel images.
    nuclear_channel : int or str or None
        The nuclear channel of multi-channel images (name or index); None: never use one.
    markers_from : {"auto", "nuclear", "synthetic"}
        Force the nuclear channel or the synthetic-nucleus model for markers ("auto": the
        nuclear channel when the image has one, else the nucleus model).
    nucleus_diameter : float or None
        Nucleus diameter in pixels of the original image, for the DoG; None estimates it.
    marker_threshold : float
        DoG threshold of nucleus-image markers (contrast units, see
        :func:`cellscape.markers.dog_markers`).
    min_size : int
        Smallest cell kept, in pixels of the original image.
    seed : int
        Random seed.
    """

    method = "selfsup"
    class_names = ("background", "cell")

    def __init__(
        self,
        patch: int = 64,
        sigma: float = 15.0,
        lam: float = 3.32,
        beta: float = 15.0,
        learning_rate: float = 0.005,
        window: int = 640,
        steps: int = 200,
        filters: tuple[int, ...] = (8, 16, 32),
        scale: str | float = "auto",
        foreground: str = "intensity",
        alpha: float | None = None,
        kappa: float = 1.0,
        channel: int | str = 0,
        nuclear_channel: int | str | None = "nuclear",
        markers_from: str = "auto",
        nucleus_diameter: float | None = None,
        marker_threshold: float = 0.05,
        min_size: int = 20,
        seed: int = 0,
    ):
        self.patch = patch
        self.sigma = sigma
        self.lam = lam
        self.beta = beta
        self.learning_rate = learning_rate
        self.window = window
        self.steps = steps
        self.filters = tuple(filters)
        self.scale = scale
        self.foreground = foreground
        self.alpha = alpha
        self.kappa = kappa
        self.channel = channel
        self.nuclear_channel = nuclear_channel
        self.markers_from = markers_from
        self.nucleus_diameter = nucleus_diameter
        self.marker_threshold = marker_threshold
        self.min_size = min_size
        self.seed = seed

    # ------------------------------------------------------------------------------------------
    # channels and markers
    # ------------------------------------------------------------------------------------------
    @staticmethod
    def _axes(image: np.ndarray, meta: ImageMeta | None) -> str:
        axes = meta.axes if meta is not None else {2: "YX", 3: "CYX"}.get(np.ndim(image), "?")
        # a plain multi-page TIFF of a few planes reads as a z-stack: take its planes as channels
        if axes == "ZYX" and np.shape(image)[0] <= 4:
            return "CYX"
        return axes

    def _channel_index(self, image, meta, which) -> int | None:
        """Index of channel ``which`` (name or int) in a (C, Y, X) image, None when absent."""
        names = list(meta.channel_names) if meta is not None else []
        n = np.shape(image)[0]
        if isinstance(which, str):
            if which in names:
                return names.index(which)
            if which == "nuclear" and not names and n == 2 and isinstance(self.channel, int):
                return 1 - (self.channel % 2)  # unnamed two-channel image: the other one
            return None
        if which is None or not -n <= int(which) < n:
            return None
        return int(which) % n

    def cell_plane(self, image: np.ndarray, meta: ImageMeta | None = None) -> np.ndarray:
        """The cell channel as float32 (Y, X)."""
        image = np.asarray(image)
        axes = self._axes(image, meta)
        source = meta.source if meta is not None else None
        if axes == "YX":
            return image.astype(np.float32)
        if axes != "CYX":
            raise CellscapeError(
                source, f"expected an image (Y, X) or channels (C, Y, X), got axes {axes}"
            )
        idx = self._channel_index(image, meta, self.channel)
        if idx is None:
            raise CellscapeError(source, f"no cell channel {self.channel!r} in this image")
        return image[idx].astype(np.float32)

    def nuclear_plane(self, image: np.ndarray, meta: ImageMeta | None = None) -> np.ndarray | None:
        """The nuclear channel as float32 (Y, X), or None when the image has none."""
        if self._axes(image, meta) != "CYX" or self.nuclear_channel is None:
            return None
        idx = self._channel_index(image, meta, self.nuclear_channel)
        cell = self._channel_index(image, meta, self.channel)
        if idx is None or idx == cell:
            return None
        return np.asarray(image)[idx].astype(np.float32)

    def find_markers(
        self,
        image: np.ndarray,
        meta: ImageMeta | None = None,
        nuclei: np.ndarray | None = None,
    ) -> tuple[np.ndarray, str]:
        """Markers of an image in original pixels, and how they were found.

        Returns
        -------
        markers : ndarray of float64, shape (N, 2)
            ``(y, x)`` pixel coordinates.
        source : str
            ``"nucleus image"``, ``"nuclear channel"`` or ``"synthetic nuclei"``.
        """
        plane_source = meta.source if meta is not None else None
        model = getattr(self, "nucleus_model_", None)
        if nuclei is None and self.markers_from != "synthetic":
            nuclei_plane = self.nuclear_plane(image, meta)
            if nuclei_plane is not None:
                return self._dog(nuclei_plane), "nuclear channel"
        elif nuclei is not None:
            nuclei = np.asarray(nuclei, dtype=np.float32)
            if nuclei.shape != self.cell_plane(image, meta).shape:
                raise CellscapeError(
                    plane_source,
                    f"nucleus image {nuclei.shape} does not match the cell image "
                    f"{self.cell_plane(image, meta).shape}",
                )
            return self._dog(nuclei), "nucleus image"
        if model is not None and self.markers_from != "nuclear":
            return model.markers(self.cell_plane(image, meta)), "synthetic nuclei"
        raise CellscapeError(
            plane_source,
            "no markers: give a nucleus image (--nuclei), an image with a nuclear channel, "
            "or fit with a synthetic-nucleus model",
        )

    def _dog(self, nuclei: np.ndarray) -> np.ndarray:
        diameter = self.nucleus_diameter or getattr(self, "nucleus_diameter_", None)
        return dog_markers(nuclei, diameter, self.marker_threshold)

    # ------------------------------------------------------------------------------------------
    # working scale and cell-area mask
    # ------------------------------------------------------------------------------------------
    def _auto_scale(self, markers: np.ndarray) -> float:
        from scipy.spatial import cKDTree

        if self.scale != "auto":
            return float(self.scale)
        if len(markers) < 3:
            return 1.0
        dist, _ = cKDTree(markers).query(markers, k=2)
        nn = float(np.median(dist[:, 1]))
        return float(np.clip(0.6 * self.patch / max(nn, 1e-6), 0.2, 1.0))

    @staticmethod
    def _resize(plane: np.ndarray, scale: float, order: int = 1) -> np.ndarray:
        if abs(scale - 1.0) < 1e-6:
            return plane
        return ndi.zoom(plane, scale, order=order, grid_mode=True, mode="grid-constant")

    def area_mask(self, plane: np.ndarray, scribbles: np.ndarray | None = None) -> np.ndarray:
        """The graph-cut cell-area mask of a cell plane ``(Y, X)``, holes filled: bool (Y, X)."""
        from ..post.graphcut import foreground_probability, graphcut_mask

        kind = self.foreground if scribbles is None else "scribbles"
        x = foreground_probability(plane, kind, scribbles)
        # nuclei are inside cells even where the cell stain leaves them dark
        return ndi.binary_fill_holes(graphcut_mask(x, self.alpha, self.kappa))

    def _with_nuclei(self, mask: np.ndarray, markers: np.ndarray) -> np.ndarray:
        """The mask plus a disk of the nucleus radius at every marker (working pixels): a cell
        holds its nucleus, so no marker may start outside the cell area."""
        diameter = self.nucleus_diameter or getattr(self, "nucleus_diameter_", None) or 10.0
        radius = max(diameter * self.scale_ / 2.0, 1.0)
        seeds = np.zeros(mask.shape, bool)
        rc = np.round(np.asarray(markers).reshape(-1, 2)).astype(int)
        ok = (rc >= 0).all(1) & (rc[:, 0] < mask.shape[0]) & (rc[:, 1] < mask.shape[1])
        seeds[rc[ok, 0], rc[ok, 1]] = True
        return mask | (ndi.distance_transform_edt(~seeds) <= radius)

    # ------------------------------------------------------------------------------------------
    # fitting
    # ------------------------------------------------------------------------------------------
    def _build(self):
        from ..nn.unet import UNet

        return UNet(in_channels=2, out_channels=1, filters=self.filters)

    def _prepared(self, plane, markers, scale, mask=None):
        """Working-scale input, padded, with the patch corners of the markers inside it."""
        h = self.patch // 2
        x = normalize_percentile(self._resize(plane, scale), 1.0, 99.8)
        pts = np.asarray(markers, dtype=np.float64).reshape(-1, 2) * scale
        inside = (
            (pts[:, 0] >= 0)
            & (pts[:, 0] <= x.shape[0] - 1)
            & (pts[:, 1] >= 0)
            & (pts[:, 1] <= x.shape[1] - 1)
        )
        pts = np.round(pts[inside]).astype(np.int64)
        padded = np.pad(x, h, mode="reflect" if min(x.shape) > h else "edge").astype(np.float32)
        valid = np.pad(np.ones(x.shape, np.float32), h)
        outside = None
        if mask is not None:
            m = mask if mask.shape == x.shape else self._resize(mask.astype(np.float32), scale, 0)
            outside = np.pad((m[: x.shape[0], : x.shape[1]] < 0.5).astype(np.float32), h)
        return x.shape, padded, valid, outside, pts, np.flatnonzero(inside)

    def fit(
        self,
        images,
        targets=None,
        metas=None,
        *,
        markers=None,
        nuclei=None,
        masks=None,
        scribbles=None,
        nucleus_model: SyntheticNuclei | str | os.PathLike | None = None,
        progress: bool = True,
        threads: int | None = None,
    ) -> SelfSupervised:
        """Learn the network on the image(s) to segment; no labels are used.

        Parameters
        ----------
        images : ndarray or sequence of ndarray
            One image or several: ``(Y, X)`` cell images, or ``(C, Y, X)`` with a nuclear
            channel (axes as in ``metas``).
        targets : None
            Must be None: the method learns without annotation (kept for the common interface).
        metas : ImageMeta or sequence of ImageMeta, optional
        markers : ndarray (N, 2) or sequence of them, optional
            Marker coordinates ``(y, x)`` in pixels; otherwise found (see :meth:`find_markers`).
        nuclei : ndarray (Y, X) or sequence, optional
            Nucleus images for DoG markers.
        masks : ndarray (Y, X) of bool or sequence, optional
            Cell-area masks; otherwise the graph cut of :meth:`area_mask` (unused when
            ``beta`` is 0).
        scribbles : ndarray (Y, X) of int or sequence, optional
            0 unmarked, 1 background, 2 cell: the mask comes from a random forest on them.
        nucleus_model : SyntheticNuclei or path, optional
            Synthetic-nucleus model used for markers where an image has no nuclear channel
            (and saved with this model).
        progress : bool
            Show a progress bar.
        threads : int, optional
            torch CPU threads.

        Returns
        -------
        self
        """
        import torch

        from ..nn.train import _Progress
        from ..selfsup_net import canvas_index, dihedral, disk_channel, selfsup_loss, undo_dihedral

        if targets is not None:
            raise ValueError("SelfSupervised learns without labels: targets must be None")
        if self.patch % 4 or self.patch < 16:
            raise ValueError(f"patch must be a multiple of 4 and at least 16, got {self.patch}")
        t_start = time.perf_counter()
        single = isinstance(images, np.ndarray)
        images = [images] if single else list(images)

        def listify(v):
            if v is None:
                return [None] * len(images)
            if single or isinstance(v, np.ndarray | ImageMeta):
                return [v]
            return list(v)

        metas, markers, nuclei = listify(metas), listify(markers), listify(nuclei)
        masks, scribbles = listify(masks), listify(scribbles)
        if isinstance(nucleus_model, str | os.PathLike):
            nucleus_model = SyntheticNuclei.load(nucleus_model)
        if nucleus_model is not None:
            self.nucleus_model_ = nucleus_model
        if threads:
            torch.set_num_threads(threads)
        torch.manual_seed(self.seed)
        rng = np.random.default_rng(self.seed)

        # markers, working scale, masks
        planes, found, sources = [], [], []
        for img, meta, mk, nuc in zip(images, metas, markers, nuclei, strict=True):
            planes.append(self.cell_plane(img, meta))
            if self.nucleus_diameter is None and not hasattr(self, "nucleus_diameter_"):
                from ..markers import estimate_nucleus_diameter

                nplane = nuc if nuc is not None else self.nuclear_plane(img, meta)
                if nplane is not None:
                    self.nucleus_diameter_ = estimate_nucleus_diameter(nplane)
                elif getattr(self, "nucleus_model_", None) is not None:
                    self.nucleus_diameter_ = float(self.nucleus_model_.diameter_)
            if mk is None:
                mk, src = self.find_markers(img, meta, nuc)
            else:
                src = "given"
            found.append(np.asarray(mk, np.float64).reshape(-1, 2))
            sources.append(src)
        if sum(len(m) for m in found) == 0:
            raise CellscapeError(None, "no markers found: nothing to segment")
        scales = [self._auto_scale(m) for m in found if len(m)]
        self.scale_ = float(np.median(scales))
        data = []
        for plane, mk, mask, scr in zip(planes, found, masks, scribbles, strict=True):
            if len(mk) == 0:
                continue
            work_mask = None
            if self.beta > 0:
                if mask is None:
                    small = normalize_percentile(self._resize(plane, self.scale_), 1.0, 99.8)
                    scr_small = (
                        None if scr is None else self._resize(np.asarray(scr), self.scale_, 0)
                    )
                    work_mask = self.area_mask(small, scr_small)
                else:
                    work_mask = np.asarray(mask) > 0
                    if work_mask.shape == plane.shape:
                        work_mask = self._resize(work_mask.astype(np.float32), self.scale_, 0) > 0.5
                work_mask = self._with_nuclei(work_mask, mk * self.scale_)
            data.append(self._prepared(plane, mk, self.scale_, work_mask))

        k = self.patch
        disk = torch.from_numpy(disk_channel(k, self.sigma))
        self.net_ = self._build()
        optimiser = torch.optim.Adam(self.net_.parameters(), lr=self.learning_rate)
        n_markers = sum(len(d[4]) for d in data)
        bar = _Progress(self.steps, 0, progress)
        losses: list[float] = []
        parts_log: list[dict] = []
        seen = 0
        self.net_.train()
        try:
            while len(losses) < self.steps:
                shape, padded, valid, outside, pts, _ = data[
                    rng.choice(len(data), p=[len(d[4]) / n_markers for d in data])
                ]
                wy = int(rng.integers(0, max(shape[0] - self.window, 0) + 1))
                wx = int(rng.integers(0, max(shape[1] - self.window, 0) + 1))
                sel = (
                    (pts[:, 0] >= wy)
                    & (pts[:, 0] < wy + self.window)
                    & (pts[:, 1] >= wx)
                    & (pts[:, 1] < wx + self.window)
                )
                if not sel.any():
                    continue
                corners = pts[sel]  # patch [y - h, y + h) is padded[y : y + k]
                xs = np.stack([padded[y : y + k, x : x + k] for y, x in corners])
                v = np.stack([valid[y : y + k, x : x + k] for y, x in corners])
                o = (
                    np.stack([outside[y : y + k, x : x + k] for y, x in corners])
                    if outside is not None
                    else np.zeros_like(v)
                )
                inputs = torch.stack([torch.from_numpy(xs), disk.expand(len(xs), k, k)], dim=1)
                t = int(rng.integers(8))
                out = self.net_(dihedral(inputs, t))
                y = torch.sigmoid(undo_dihedral(out, t))[:, 0]
                index, size = canvas_index(corners, k)
                loss, parts = selfsup_loss(
                    y,
                    torch.from_numpy(v),
                    torch.from_numpy(o),
                    index,
                    size,
                    self.lam,
                    self.beta,
                )
                optimiser.zero_grad(set_to_none=True)
                loss.backward()
                optimiser.step()
                losses.append(float(loss.detach()))
                parts_log.append(parts)
                seen += len(corners)
                if bar.enabled:
                    bar.progress.update(
                        bar.task,
                        completed=len(losses),
                        description=f"self-supervised fit, loss {np.mean(losses[-20:]):.3f}",
                    )
        finally:
            bar.close()
        self.net_.eval()
        self.info_ = {
            "markers": sorted(set(sources)),
            "n_markers": int(n_markers),
            "n_images": len(data),
            "scale": self.scale_,
            "steps": len(losses),
            "patches_seen": int(seen),
            "loss_start": float(np.mean(losses[:10])) if losses else None,
            "loss_end": float(np.mean(losses[-10:])) if losses else None,
            "terms_end": {
                key: float(np.mean([p[key] for p in parts_log[-10:]]))
                for key in ("area", "cross", "outside")
            }
            if parts_log
            else {},
            "fit_seconds": time.perf_counter() - t_start,
            "training": "label-free: fitted on the image(s) it segments, no annotation",
        }
        return self

    # ------------------------------------------------------------------------------------------
    # inference
    # ------------------------------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if not hasattr(self, "net_"):
            raise CellscapeError(None, "this self-supervised model has not been fitted or loaded")

    def patch_probabilities(
        self, plane: np.ndarray, markers: np.ndarray, batch_size: int = 256
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Network output of every marker's patch at the working scale.

        Returns
        -------
        probs : ndarray of float32, shape (N, k, k)
        corners : ndarray of int, shape (N, 2)
            Patch ``i`` covers padded rows ``corners[i, 0] : corners[i, 0] + k`` (the padding is
            ``k // 2``), i.e. working-scale rows from ``corners[i, 0] - k // 2``.
        kept : ndarray of int
            Indices of the markers inside the image (the others have no patch).
        """
        import torch

        from ..selfsup_net import disk_channel

        self._check_fitted()
        k = self.patch
        _, padded, _, _, pts, kept = self._prepared(plane, markers, self.scale_)
        disk = torch.from_numpy(disk_channel(k, self.sigma))
        probs = np.zeros((len(pts), k, k), np.float32)
        net = self.net_.eval()
        with torch.inference_mode():
            for i in range(0, len(pts), batch_size):
                chunk = pts[i : i + batch_size]
                xs = torch.from_numpy(np.stack([padded[y : y + k, x : x + k] for y, x in chunk]))
                inputs = torch.stack([xs, disk.expand(len(xs), k, k)], dim=1)
                probs[i : i + len(chunk)] = torch.sigmoid(net(inputs))[:, 0].numpy()
        return probs, pts, kept

    def _assemble(self, plane, markers) -> tuple[np.ndarray, np.ndarray]:
        """Best probability and owner (marker index + 1) of every working-scale pixel."""
        self._check_fitted()
        k, h = self.patch, self.patch // 2
        shape = self._resize(plane, self.scale_).shape
        best = np.zeros((shape[0] + 2 * h, shape[1] + 2 * h), np.float32)
        owner = np.zeros(best.shape, np.int32)
        if len(markers):
            probs, corners, kept = self.patch_probabilities(plane, markers)
            for p, (y, x), idx in zip(probs, corners, kept, strict=True):
                region = best[y : y + k, x : x + k]
                win = p > region
                region[win] = p[win]
                owner[y : y + k, x : x + k][win] = idx + 1
        best = best[h : h + shape[0], h : h + shape[1]]
        owner = owner[h : h + shape[0], h : h + shape[1]]
        return best, owner

    def _to_original(self, array: np.ndarray, shape, order: int) -> np.ndarray:
        if array.shape == tuple(shape):
            return array
        from skimage.transform import resize

        out = resize(
            array, shape, order=order, preserve_range=True, anti_aliasing=False, mode="edge"
        )
        return out.astype(array.dtype)

    def predict_proba(
        self,
        image: np.ndarray,
        meta: ImageMeta | None = None,
        *,
        markers: np.ndarray | None = None,
        nuclei: np.ndarray | None = None,
    ) -> np.ndarray:
        """Probability of background and of belonging to the most probable cell.

        Returns
        -------
        ndarray of float32, shape (2, Y, X)
        """
        plane = self.cell_plane(image, meta)
        if markers is None:
            markers, _ = self.find_markers(image, meta, nuclei)
        best, _ = self._assemble(plane, markers)
        best = np.clip(self._to_original(best, plane.shape, 1), 0, 1)
        return np.stack([1.0 - best, best]).astype(np.float32)

    def segment(
        self,
        image: np.ndarray,
        meta: ImageMeta | None = None,
        *,
        markers: np.ndarray | None = None,
        nuclei: np.ndarray | None = None,
    ) -> np.ndarray:
        """Instance labels: each pixel goes to the patch with the highest probability; pixels
        below 0.5 for every patch are background.

        Parameters
        ----------
        image : ndarray
            ``(Y, X)`` cell image or ``(C, Y, X)`` with a nuclear channel.
        meta : ImageMeta, optional
        markers : ndarray (N, 2), optional
            Marker coordinates in pixels; otherwise found (see :meth:`find_markers`).
        nuclei : ndarray (Y, X), optional
            Nucleus image for DoG markers.

        Returns
        -------
        ndarray of int32, shape (Y, X)
            0 background; cell ``i + 1`` grew from marker ``i`` (ids of cells that vanished are
            absent).
        """
        plane = self.cell_plane(image, meta)
        if markers is None:
            markers, _ = self.find_markers(image, meta, nuclei)
        markers = np.asarray(markers, np.float64).reshape(-1, 2)
        best, owner = self._assemble(plane, markers)
        owner[best < 0.5] = 0
        labels = self._to_original(owner, plane.shape, 0)
        return clean_labels(labels, markers, self.min_size)

    def fit_segment(self, image: np.ndarray, meta: ImageMeta | None = None, **fit_kwargs):
        """Fit on ``image`` and segment it (the usual label-free use); returns the labels."""
        self.fit(image, None, meta, **fit_kwargs)
        markers = fit_kwargs.get("markers")
        nuclei = fit_kwargs.get("nuclei")
        return self.segment(image, meta, markers=markers, nuclei=nuclei)

    # ------------------------------------------------------------------------------------------
    # persistence
    # ------------------------------------------------------------------------------------------
    def _state(self) -> dict:
        return {
            "scale_": getattr(self, "scale_", None),
            "nucleus_diameter_": getattr(self, "nucleus_diameter_", None),
            "has_nucleus_model": hasattr(self, "nucleus_model_"),
        }

    def _set_state(self, state: dict) -> None:
        if state.get("scale_") is not None:
            self.scale_ = float(state["scale_"])
        if state.get("nucleus_diameter_") is not None:
            self.nucleus_diameter_ = float(state["nucleus_diameter_"])

    def config(self) -> dict:
        config = super().config()
        config["params"]["filters"] = list(self.filters)
        return config

    def save(self, path: str | os.PathLike) -> Path:
        """Write ``config.json``, ``weights.safetensors`` and the synthetic-nucleus model (in
        ``nuclei/``, when there is one) into the folder ``path``."""
        from ..nn.train import save_weights

        self._check_fitted()
        folder = Path(path)
        save_weights(self.net_, folder / WEIGHTS_NAME, half=False)
        if hasattr(self, "nucleus_model_"):
            self.nucleus_model_.save(folder / NUCLEUS_FOLDER)
        return super().save(folder)

    @classmethod
    def load(cls, path: str | os.PathLike) -> SelfSupervised:
        from ..io import read_json
        from ..nn.train import load_weights

        folder = Path(path)
        folder = folder.parent if folder.name == CONFIG_NAME else folder
        model = super().load(folder)
        model.filters = tuple(model.filters)
        model.net_ = model._build()
        load_weights(model.net_, folder / WEIGHTS_NAME)
        model.net_.eval()
        state = read_json(folder / CONFIG_NAME).get("state", {})
        if state.get("has_nucleus_model"):
            model.nucleus_model_ = SyntheticNuclei.load(folder / NUCLEUS_FOLDER)
        return model


def clean_labels(labels: np.ndarray, markers: np.ndarray, min_size: int = 20) -> np.ndarray:
    """Keep, for every cell, the connected piece holding its marker (else its largest piece),
    fill its holes, and drop cells smaller than ``min_size`` pixels.

    Parameters
    ----------
    labels : ndarray of int, shape (Y, X)
        Cell ``i + 1`` belongs to marker row ``i``.
    markers : ndarray (N, 2)
        Marker coordinates in pixels.

    Returns
    -------
    ndarray of int32, shape (Y, X)
    """
    labels = np.asarray(labels, dtype=np.int32)
    out = np.zeros_like(labels)
    for i, sl in enumerate(ndi.find_objects(labels), start=1):
        if sl is None:
            continue
        own = labels[sl] == i
        pieces, n = ndi.label(own)
        if n > 1:
            keep = 0
            if i - 1 < len(markers):
                y, x = np.round(markers[i - 1]).astype(int)
                y, x = y - sl[0].start, x - sl[1].start
                if 0 <= y < own.shape[0] and 0 <= x < own.shape[1]:
                    keep = pieces[y, x]
            if keep == 0:
                keep = int(np.argmax(np.bincount(pieces.ravel())[1:])) + 1
            own = pieces == keep
        own = ndi.binary_fill_holes(own)
        if own.sum() < min_size:
            continue
        region = out[sl]
        region[own & (region == 0)] = i
    return out
