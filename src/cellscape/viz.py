"""Pictures people look at: outline overlays of labels on images.

Pure functions returning uint8 RGB arrays ``(Y, X, 3)``; writing them is io's job.
"""

from __future__ import annotations

import numpy as np

from .io import ImageMeta
from .preprocess import normalize_percentile


def display_rgb(image: np.ndarray, meta: ImageMeta | None = None) -> np.ndarray:
    """An 8-bit RGB rendering of an image for display.

    Grey images are contrast-stretched (1-99.8 percentiles); colour images are kept as they are
    (stretched if they are not 8-bit); other multi-channel images show their first two channels
    in green and magenta.
    """
    image = np.asarray(image)
    axes = meta.axes if meta is not None else {2: "YX", 3: "CYX"}.get(image.ndim, "")
    if axes == "YX":
        grey = normalize_percentile(image, 1, 99.8, clip=True)
        rgb = np.repeat(grey[..., None], 3, axis=-1)
    elif axes == "CYX" and meta is not None and meta.rgb:
        rgb = np.moveaxis(image, 0, -1).astype(np.float32)
        rgb = rgb / 255.0 if image.dtype == np.uint8 else normalize_percentile(rgb, 0.5, 99.9, True)
    elif axes == "CYX":
        a = normalize_percentile(image[0], 1, 99.8, clip=True)
        b = normalize_percentile(image[1], 1, 99.8, clip=True) if image.shape[0] > 1 else a * 0
        rgb = np.stack([b, a, b], axis=-1) if image.shape[0] > 1 else np.stack([a, a, a], -1)
    else:
        raise ValueError(f"cannot display an image with axes {axes!r}")
    return (np.clip(rgb, 0, 1) * 255).astype(np.uint8)


def outline_overlay(
    image: np.ndarray,
    labels: np.ndarray,
    meta: ImageMeta | None = None,
    color: tuple[int, int, int] | None = None,
    seed: int = 0,
) -> np.ndarray:
    """Draw each cell's outline over the image.

    Parameters
    ----------
    image : ndarray
        The image, axes as in ``meta``.
    labels : ndarray of int, shape (Y, X)
        Instance labels.
    color : (r, g, b) or None
        One colour for all outlines; ``None`` gives each cell its own bright colour so that
        touching cells can be told apart.

    Returns
    -------
    ndarray of uint8, shape (Y, X, 3)
    """
    from skimage.segmentation import find_boundaries

    rgb = display_rgb(image, meta).copy()
    labels = np.asarray(labels)
    edges = find_boundaries(labels, mode="inner")
    if color is not None:
        rgb[edges] = color
        return rgb
    rng = np.random.default_rng(seed)
    n = int(labels.max()) + 1
    hues = rng.random(n)
    palette = _hsv_to_rgb(hues, 0.9, 1.0)
    rgb[edges] = palette[labels[edges]]
    return rgb


def _hsv_to_rgb(h: np.ndarray, s: float, v: float) -> np.ndarray:
    from matplotlib.colors import hsv_to_rgb

    hsv = np.stack([h, np.full_like(h, s), np.full_like(h, v)], axis=-1)
    return (hsv_to_rgb(hsv) * 255).astype(np.uint8)
