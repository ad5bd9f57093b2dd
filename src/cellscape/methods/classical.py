"""The classical baseline: smoothing, automatic threshold, hole filling, distance watershed.

No learning is needed (``fit`` only estimates the typical cell diameter from example masks when
none is given). It is the yardstick every learned method in cellscape must beat.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from ..io import ImageMeta
from ..post.watershed import distance_watershed, remove_small
from ..preprocess import bright_background, normalize_percentile, to_single_channel
from ..quantify import equivalent_diameters, median_diameter
from .base import Segmenter


class Classical(Segmenter):
    """Threshold + distance-transform watershed segmentation of bright (or dark) objects.

    Parameters
    ----------
    diameter : float or None
        Typical object diameter in pixels. ``None`` estimates it per image from the thresholded
        mask (median equivalent diameter of its connected pieces), or from the training masks
        given to :meth:`fit`.
    smoothing : float or None
        Gaussian sigma in pixels before thresholding; ``None`` uses ``diameter / 12`` (at least 1).
    threshold : {"otsu", "li", "triangle"} or float
        Automatic threshold method, or a fixed threshold on the 1-99.8 percentile normalised
        image (0..1).
    polarity : {"auto", "bright", "dark"}
        Are objects brighter or darker than the background? ``"auto"`` decides per image from
        where the background (the majority of pixels) lies; dark objects are inverted before
        thresholding (bright field, histology).
    split_distance : float
        Smallest distance between the centres of two touching objects, as a fraction of the
        diameter. Larger values split less.
    min_size_fraction : float
        Objects smaller than this fraction of the typical object area are dropped.
    channel : int or str or None
        Channel to segment in multi-channel images (colour images default to their luminance).
    """

    method = "classical"
    class_names = ("background", "foreground")

    def __init__(
        self,
        diameter: float | None = None,
        smoothing: float | None = None,
        threshold: str | float = "otsu",
        polarity: str = "auto",
        split_distance: float = 0.35,
        min_size_fraction: float = 0.1,
        channel: int | str | None = None,
    ):
        self.diameter = diameter
        self.smoothing = smoothing
        self.threshold = threshold
        self.polarity = polarity
        self.split_distance = split_distance
        self.min_size_fraction = min_size_fraction
        self.channel = channel

    # ------------------------------------------------------------------------------------------
    def fit(self, images=None, targets=None, metas=None) -> Classical:
        """Learn the typical diameter from example label images (when ``diameter`` is None).

        Parameters
        ----------
        images : ignored
            Accepted for a uniform interface.
        targets : sequence of ndarray (Y, X) of int
            Instance label images.
        """
        self.diameter_ = self.diameter
        if self.diameter is None and targets is not None:
            self.diameter_ = median_diameter(targets)
        return self

    def _state(self) -> dict:
        return {"diameter_": getattr(self, "diameter_", None)}

    def _set_state(self, state: dict) -> None:
        if state.get("diameter_") is not None:
            self.diameter_ = float(state["diameter_"])

    # ------------------------------------------------------------------------------------------
    def _prepare(self, image: np.ndarray, meta: ImageMeta | None) -> tuple[np.ndarray, float]:
        plane = to_single_channel(image, meta, self.channel)
        plane = normalize_percentile(plane, 1.0, 99.8)
        dark = self.polarity == "dark" or (self.polarity == "auto" and bright_background(plane))
        if dark:
            plane = 1.0 - plane
        diameter = self.diameter or getattr(self, "diameter_", None)
        sigma = self.smoothing if self.smoothing is not None else max(1.0, (diameter or 12) / 12)
        smooth = ndi.gaussian_filter(plane, sigma)
        return smooth, self._threshold_value(smooth)

    def _threshold_value(self, smooth: np.ndarray) -> float:
        from skimage import filters

        if isinstance(self.threshold, int | float):
            return float(self.threshold)
        methods = {
            "otsu": filters.threshold_otsu,
            "li": filters.threshold_li,
            "triangle": filters.threshold_triangle,
        }
        if self.threshold not in methods:
            raise ValueError(f"unknown threshold method {self.threshold!r}")
        if np.ptp(smooth) == 0:
            return float(smooth.max()) + 1.0  # constant image: nothing is foreground
        return float(methods[self.threshold](smooth))

    def predict_proba(self, image: np.ndarray, meta: ImageMeta | None = None) -> np.ndarray:
        """Soft foreground map: a logistic of the distance to the threshold.

        Returns
        -------
        ndarray of float32, shape (2, Y, X)
            Background and foreground probabilities (they sum to 1).
        """
        smooth, t = self._prepare(image, meta)
        spread = max(float(np.std(smooth)) * 0.25, 1e-6)
        fg = 1.0 / (1.0 + np.exp(-(smooth - t) / spread))
        return np.stack([1.0 - fg, fg]).astype(np.float32)

    def segment(self, image: np.ndarray, meta: ImageMeta | None = None) -> np.ndarray:
        """Instance labels of the objects in ``image``.

        Parameters
        ----------
        image : ndarray
            ``(Y, X)``, ``(C, Y, X)`` or colour ``(3, Y, X)``; see :func:`to_single_channel`.
        meta : ImageMeta, optional
            Axes and channel names of ``image``.

        Returns
        -------
        ndarray of int32, shape (Y, X)
            0 = background, 1..N objects.
        """
        smooth, t = self._prepare(image, meta)
        mask = ndi.binary_fill_holes(smooth > t)
        mask = ndi.binary_opening(mask, iterations=1)
        diameter = self.diameter or getattr(self, "diameter_", None)
        if diameter is None:
            pieces, _ = ndi.label(mask)
            found = equivalent_diameters(remove_small(pieces, 9))
            diameter = float(np.median(found)) if len(found) else 10.0
        min_size = int(self.min_size_fraction * np.pi * (diameter / 2) ** 2)
        return distance_watershed(
            mask,
            min_distance=self.split_distance * diameter,
            smoothing=max(1.0, diameter / 15),
            min_size=max(min_size, 1),
        )
