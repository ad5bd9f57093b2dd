"""One marker per cell: where marker-controlled segmentation starts.

Markers are point coordinates ``(N, 2)`` float64, rows ``(y, x)`` in pixels. They come from

* a nucleus image, by difference-of-Gaussians blob detection (:func:`dog_markers`);
* a nuclear segmentation, as the centroids of its objects (:func:`markers_from_labels`);
* a *synthetic* nucleus image, predicted from the cell image alone by a small U-Net trained on
  a few pairs of (cell image, nucleus image) (:class:`SyntheticNuclei`), then DoG as above.

:func:`marker_errors` scores markers against true nuclei: false-negative and false-positive rates
after a one-to-one pairing of markers within a distance (15 µm in the paper).

torch is imported only by :class:`SyntheticNuclei` when it trains or predicts.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

from .errors import CellscapeError
from .io import ImageMeta
from .preprocess import normalize_percentile

WEIGHTS_NAME = "weights.safetensors"


# ----------------------------------------------------------------------------------------------
# markers from a nucleus image or a nuclear segmentation
# ----------------------------------------------------------------------------------------------


def estimate_nucleus_diameter(image: np.ndarray) -> float:
    """Typical nucleus diameter in pixels: the median equivalent diameter of the pieces above
    the Otsu threshold of the smoothed, normalised nucleus image (10 px when there are none).
    """
    from skimage.filters import threshold_otsu

    plane = ndi.gaussian_filter(normalize_percentile(image, 1.0, 99.8), 1.5)
    if np.ptp(plane) == 0:
        return 10.0
    mask = ndi.binary_opening(plane > threshold_otsu(plane), iterations=1)
    pieces, n = ndi.label(mask)
    if n == 0:
        return 10.0
    areas = np.bincount(pieces.ravel())[1:]
    areas = areas[areas >= 9]
    if areas.size == 0:
        return 10.0
    return float(np.median(2.0 * np.sqrt(areas / np.pi)))


def dog_markers(
    image: np.ndarray,
    diameter: float | None = None,
    threshold: float = 0.05,
    min_distance: float | None = None,
) -> np.ndarray:
    """Nucleus centres by difference-of-Gaussians blob detection.

    The image is scaled to [0, 1] (1-99.8 percentiles), filtered by the difference of two
    Gaussians tuned to blobs of ``diameter`` pixels, and the local maxima of the response above
    ``threshold`` are kept.

    Parameters
    ----------
    image : ndarray, shape (Y, X)
        Nucleus image, bright nuclei on a dark background.
    diameter : float or None
        Typical nucleus diameter in pixels; ``None`` estimates it
        (:func:`estimate_nucleus_diameter`).
    threshold : float
        Smallest DoG response of a marker, in units of the normalised intensity (contrast of a
        nucleus against its surroundings). Lower finds dimmer nuclei and more false markers.
    min_distance : float or None
        Smallest distance between two markers in pixels; default ``0.6 * diameter``.

    Returns
    -------
    ndarray of float64, shape (N, 2)
        Marker coordinates ``(y, x)`` in pixels, sorted by row then column.
    """
    from skimage.feature import peak_local_max

    image = np.asarray(image, dtype=np.float32)
    if image.ndim != 2:
        raise ValueError(f"expected a 2-D nucleus image (Y, X), got shape {image.shape}")
    if diameter is None:
        diameter = estimate_nucleus_diameter(image)
    plane = normalize_percentile(image, 1.0, 99.8)
    s1 = max(diameter / (2.0 * np.sqrt(2.0)), 0.7)
    dog = ndi.gaussian_filter(plane, s1) - ndi.gaussian_filter(plane, 1.6 * s1)
    # the DoG of a disk peaks at about a third of its contrast: scale it back to contrast units
    dog *= 3.0
    if min_distance is None:
        min_distance = 0.6 * diameter
    peaks = peak_local_max(
        dog,
        min_distance=max(int(round(min_distance)), 1),
        threshold_abs=threshold,
        exclude_border=False,
    )
    peaks = peaks[np.lexsort((peaks[:, 1], peaks[:, 0]))] if len(peaks) else peaks
    return peaks.astype(np.float64).reshape(-1, 2)


def markers_from_labels(labels: np.ndarray) -> np.ndarray:
    """Centroids of the objects of a nuclear segmentation.

    Parameters
    ----------
    labels : ndarray of int, shape (Y, X)
        0 background, one positive id per nucleus.

    Returns
    -------
    ndarray of float64, shape (N, 2)
        ``(y, x)`` centroid of each object, in increasing label order. A centroid that falls
        outside its (concave) object is moved to the object's pixel nearest to it.
    """
    labels = np.asarray(labels)
    ids = np.unique(labels)
    ids = ids[ids > 0]
    if ids.size == 0:
        return np.zeros((0, 2), np.float64)
    cents = np.asarray(ndi.center_of_mass(np.ones_like(labels), labels, ids), dtype=np.float64)
    out = cents.reshape(-1, 2)
    for k, (i, c) in enumerate(zip(ids, out, strict=True)):
        y, x = int(round(c[0])), int(round(c[1]))
        if labels[y, x] != i:
            pts = np.argwhere(labels == i)
            out[k] = pts[np.argmin(((pts - c) ** 2).sum(1))]
    return out


def marker_labels(points: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Rasterise markers: a ``(Y, X)`` int32 image with marker ``i`` drawn as the pixel value
    ``i + 1`` at its rounded position (points outside the image are dropped)."""
    points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    out = np.zeros(shape, np.int32)
    rc = np.round(points).astype(int)
    ok = (rc[:, 0] >= 0) & (rc[:, 0] < shape[0]) & (rc[:, 1] >= 0) & (rc[:, 1] < shape[1])
    out[rc[ok, 0], rc[ok, 1]] = np.flatnonzero(ok) + 1
    return out


# ----------------------------------------------------------------------------------------------
# marker quality
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MarkerErrors:
    """Markers against true nuclei after a one-to-one pairing within ``max_distance``.

    Attributes
    ----------
    n_true, n_pred, n_matched : int
        True nuclei, predicted markers, pairs.
    fn_rate : float
        True nuclei without a marker, divided by ``n_true`` (NaN when there are none).
    fp_rate : float
        Markers without a nucleus, divided by ``n_pred`` (NaN when there are none).
    max_distance_px : float
        The pairing distance in pixels.
    """

    n_true: int
    n_pred: int
    n_matched: int
    fn_rate: float
    fp_rate: float
    max_distance_px: float

    def as_dict(self) -> dict:
        return asdict(self)


def match_markers(pred: np.ndarray, true: np.ndarray, max_distance: float) -> np.ndarray:
    """One-to-one pairs of markers closer than ``max_distance`` pixels, minimising the total
    distance (Hungarian assignment).

    Returns
    -------
    ndarray of int, shape (M, 2)
        Rows ``(index in pred, index in true)``.
    """
    from scipy.optimize import linear_sum_assignment
    from scipy.spatial import cKDTree

    pred = np.asarray(pred, np.float64).reshape(-1, 2)
    true = np.asarray(true, np.float64).reshape(-1, 2)
    if len(pred) == 0 or len(true) == 0:
        return np.zeros((0, 2), int)
    tree = cKDTree(true)
    near = tree.sparse_distance_matrix(cKDTree(pred), max_distance, output_type="coo_matrix")
    if near.nnz == 0:
        return np.zeros((0, 2), int)
    # dense cost on the pairs that can match only: large for the impossible ones
    big = 1e6
    cost = np.full((len(pred), len(true)), big)
    cost[near.col, near.row] = near.data
    rows, cols = linear_sum_assignment(cost)
    ok = cost[rows, cols] <= max_distance
    return np.stack([rows[ok], cols[ok]], axis=1)


def marker_errors(
    pred: np.ndarray,
    true: np.ndarray,
    max_distance: float = 15.0,
    pixel_size: float | None = None,
) -> MarkerErrors:
    """False-negative and false-positive rates of markers against true nuclei.

    Parameters
    ----------
    pred : ndarray, shape (N, 2)
        Marker coordinates ``(y, x)`` in pixels.
    true : ndarray, shape (M, 2), or label image (Y, X)
        True nucleus centres, or a nuclear label image (its centroids are used).
    max_distance : float
        Pairing distance: in µm when ``pixel_size`` (µm per pixel) is given, else in pixels.
        The paper pairs within 15 µm.
    pixel_size : float or None
        µm per pixel.

    Returns
    -------
    MarkerErrors
    """
    true = np.asarray(true)
    if true.ndim == 2 and true.dtype.kind in "iub" and true.shape[1] != 2:
        true = markers_from_labels(true)  # a label image, not (M, 2) points
    dist_px = max_distance / pixel_size if pixel_size else float(max_distance)
    pairs = match_markers(pred, true, dist_px)
    n_true, n_pred, m = len(np.reshape(true, (-1, 2))), len(np.reshape(pred, (-1, 2))), len(pairs)
    return MarkerErrors(
        n_true=n_true,
        n_pred=n_pred,
        n_matched=m,
        fn_rate=(n_true - m) / n_true if n_true else float("nan"),
        fp_rate=(n_pred - m) / n_pred if n_pred else float("nan"),
        max_distance_px=dist_px,
    )


# ----------------------------------------------------------------------------------------------
# synthetic nuclei
# ----------------------------------------------------------------------------------------------


def nucleus_target(nucleus_image: np.ndarray) -> np.ndarray:
    """Binary training target of a nucleus image: above the Otsu threshold of the smoothed,
    normalised image (float32 0/1, shape (Y, X))."""
    from skimage.filters import threshold_otsu

    plane = ndi.gaussian_filter(normalize_percentile(nucleus_image, 1.0, 99.8), 1.0)
    if np.ptp(plane) == 0:
        return np.zeros(plane.shape, np.float32)
    return (plane > threshold_otsu(plane)).astype(np.float32)


def cell_input(image: np.ndarray) -> np.ndarray:
    """Network input of a cell image: scaled to [0, 1] by the 1-99.8 percentiles, float32."""
    return normalize_percentile(np.asarray(image, dtype=np.float32), 1.0, 99.8)


class SyntheticNuclei:
    """Predict a nucleus image from the cell image alone, to place markers without a nuclear
    stain.

    A small U-Net is trained on a few pairs of (cell image, nucleus image): the nucleus image is
    thresholded to binary (Otsu) and the loss is the binary cross-entropy. The paper needed two
    image pairs. Markers are then DoG blobs of the predicted nucleus probability.

    Parameters
    ----------
    filters : tuple of int
        U-Net feature maps per level.
    steps : int
        Optimiser steps (batches) of training.
    batch_size, patch : int
        Each batch holds ``batch_size`` random ``patch`` x ``patch`` crops.
    learning_rate : float
        Adam learning rate (cosine decay).
    nucleus_diameter : float or None
        Typical nucleus diameter in pixels for the DoG; ``None`` takes it from the training
        nucleus images.
    threshold : float
        DoG threshold of the markers (see :func:`dog_markers`), on the predicted probability.
    seed : int
        Random seed.
    """

    method = "synthetic-nuclei"

    def __init__(
        self,
        filters: tuple[int, ...] = (8, 16, 32, 64),
        steps: int = 400,
        batch_size: int = 8,
        patch: int = 128,
        learning_rate: float = 3e-3,
        nucleus_diameter: float | None = None,
        threshold: float = 0.15,
        seed: int = 0,
    ):
        self.filters = tuple(filters)
        self.steps = steps
        self.batch_size = batch_size
        self.patch = patch
        self.learning_rate = learning_rate
        self.nucleus_diameter = nucleus_diameter
        self.threshold = threshold
        self.seed = seed

    def get_params(self) -> dict:
        return {
            "filters": list(self.filters),
            "steps": self.steps,
            "batch_size": self.batch_size,
            "patch": self.patch,
            "learning_rate": self.learning_rate,
            "nucleus_diameter": self.nucleus_diameter,
            "threshold": self.threshold,
            "seed": self.seed,
        }

    def _build(self):
        from .nn.unet import UNet

        return UNet(in_channels=1, out_channels=1, filters=self.filters)

    def fit(
        self,
        cell_images,
        nucleus_images,
        *,
        progress: bool = True,
        threads: int | None = None,
    ) -> SyntheticNuclei:
        """Train on pairs of (cell image, nucleus image), each ``(Y, X)`` of the same shape.

        A single pair may be given as two arrays instead of two lists.
        """
        import torch
        import torch.nn.functional as F

        from .nn.train import TrainConfig, train_network

        if isinstance(cell_images, np.ndarray) and cell_images.ndim == 2:
            cell_images, nucleus_images = [cell_images], [nucleus_images]
        pairs = []
        for c, n in zip(cell_images, nucleus_images, strict=True):
            if np.shape(c) != np.shape(n):
                raise ValueError(f"cell image {np.shape(c)} and nucleus image {np.shape(n)} differ")
            pairs.append((cell_input(c), nucleus_target(n)))
        if not pairs:
            raise ValueError("need at least one (cell image, nucleus image) pair")
        self.diameter_ = float(
            self.nucleus_diameter
            or np.median([estimate_nucleus_diameter(n) for n in nucleus_images])
        )
        p = self.patch

        def sample(rng: np.random.Generator):
            xs, ys = [], []
            for _ in range(self.batch_size):
                x, y = pairs[rng.integers(len(pairs))]
                if x.shape[0] < p or x.shape[1] < p:
                    ph, pw = max(p - x.shape[0], 0), max(p - x.shape[1], 0)
                    x = np.pad(x, ((0, ph), (0, pw)), mode="reflect")
                    y = np.pad(y, ((0, ph), (0, pw)), mode="reflect")
                y0 = rng.integers(0, x.shape[0] - p + 1)
                x0 = rng.integers(0, x.shape[1] - p + 1)
                xc, yc = x[y0 : y0 + p, x0 : x0 + p], y[y0 : y0 + p, x0 : x0 + p]
                k = int(rng.integers(4))
                xc, yc = np.rot90(xc, k), np.rot90(yc, k)
                if rng.random() < 0.5:
                    xc, yc = xc[:, ::-1], yc[:, ::-1]
                xc = xc * float(np.exp(rng.normal(0, 0.1))) + rng.normal(0, 0.03)
                xs.append(np.ascontiguousarray(xc, np.float32)[None])
                ys.append(np.ascontiguousarray(yc, np.float32)[None])
            return torch.from_numpy(np.stack(xs)), torch.from_numpy(np.stack(ys))

        def loss(out, target):
            return F.binary_cross_entropy_with_logits(out, target)

        self.net_ = self._build()
        config = TrainConfig(
            epochs=1,
            steps_per_epoch=self.steps,
            learning_rate=self.learning_rate,
            seed=self.seed,
            threads=threads,
        )
        history = train_network(self.net_, sample, loss, config, progress=progress)
        self.info_ = {"train_loss": history.train_loss, "n_pairs": len(pairs)}
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "net_"):
            raise CellscapeError(None, "the synthetic-nucleus model has not been trained or loaded")

    def predict_proba(self, image: np.ndarray) -> np.ndarray:
        """Probability of nucleus of every pixel of a cell image ``(Y, X)``: float32 (Y, X)."""
        import torch

        from .nn.infer import predict_tiled

        self._check_fitted()
        x = cell_input(image)[None]
        net = self.net_.eval()
        out = predict_tiled(net, x, tile=512, divisor=net.divisor, transform=torch.sigmoid)
        return out[0]

    def markers(self, image: np.ndarray) -> np.ndarray:
        """DoG markers of the synthetic nucleus image, ``(N, 2)`` float64 ``(y, x)`` pixels."""
        prob = self.predict_proba(image)
        return dog_markers_on_probability(prob, self.diameter_, self.threshold)

    # -- persistence --------------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> Path:
        """Write ``config.json`` and ``weights.safetensors`` (float16) into the folder ``path``."""
        from . import __version__
        from .io import write_json
        from .nn.train import save_weights

        self._check_fitted()
        folder = Path(path)
        save_weights(self.net_, folder / WEIGHTS_NAME)
        write_json(
            folder / "config.json",
            {
                "format": "cellscape-model",
                "cellscape_version": __version__,
                "method": self.method,
                "params": self.get_params(),
                "state": {"diameter_": self.diameter_},
                "info": getattr(self, "info_", {}),
            },
        )
        return folder

    @classmethod
    def load(cls, path: str | os.PathLike) -> SyntheticNuclei:
        """Load a model written by :meth:`save` (a folder or its ``config.json``)."""
        from .io import read_json
        from .nn.train import load_weights

        folder = Path(path)
        folder = folder.parent if folder.name == "config.json" else folder
        config = read_json(folder / "config.json")
        if config.get("method") != cls.method:
            raise CellscapeError(
                folder, f"is a '{config.get('method')}' model, not a synthetic-nucleus model"
            )
        params = config.get("params", {})
        model = cls(**{k: v for k, v in params.items() if k in cls().get_params()})
        model.filters = tuple(model.filters)
        model.diameter_ = float(config.get("state", {}).get("diameter_") or 10.0)
        model.info_ = config.get("info", {})
        model.net_ = model._build()
        load_weights(model.net_, folder / WEIGHTS_NAME)
        model.net_.eval()
        return model


def dog_markers_on_probability(
    prob: np.ndarray, diameter: float, threshold: float = 0.15
) -> np.ndarray:
    """DoG markers of a probability map in [0, 1] (no percentile stretch: a map without nuclei
    gives no markers)."""
    from skimage.feature import peak_local_max

    prob = np.asarray(prob, dtype=np.float32)
    s1 = max(diameter / (2.0 * np.sqrt(2.0)), 0.7)
    dog = 3.0 * (ndi.gaussian_filter(prob, s1) - ndi.gaussian_filter(prob, 1.6 * s1))
    peaks = peak_local_max(
        dog,
        min_distance=max(int(round(0.6 * diameter)), 1),
        threshold_abs=threshold,
        exclude_border=False,
    )
    peaks = peaks[np.lexsort((peaks[:, 1], peaks[:, 0]))] if len(peaks) else peaks
    return peaks.astype(np.float64).reshape(-1, 2)


def markers_for_image(
    nucleus_image: np.ndarray | None = None,
    *,
    cell_image: np.ndarray | None = None,
    nucleus_model: SyntheticNuclei | None = None,
    diameter: float | None = None,
    threshold: float = 0.05,
    meta: ImageMeta | None = None,
) -> np.ndarray:
    """Markers from a nucleus image (DoG), or from a cell image through a synthetic-nucleus
    model. Exactly one of ``nucleus_image`` and (``cell_image`` + ``nucleus_model``) is used."""
    if nucleus_image is not None:
        return dog_markers(nucleus_image, diameter, threshold)
    if cell_image is None or nucleus_model is None:
        raise CellscapeError(
            meta.source if meta else None,
            "markers need a nucleus image, or a cell image with a synthetic-nucleus model",
        )
    return nucleus_model.markers(cell_image)
