"""Preprocessing shared by every method: choose the plane to segment, normalise intensities.

Pure functions, numpy in and out. Images follow the axis order of :class:`cellscape.io.ImageMeta`.
"""

from __future__ import annotations

import numpy as np

from .errors import CellscapeError
from .io import ImageMeta


def to_single_channel(
    image: np.ndarray,
    meta: ImageMeta | None = None,
    channel: int | str | None = None,
    colour: str = "luminance",
) -> np.ndarray:
    """Reduce an image to the one 2-D plane a single-channel method segments.

    Parameters
    ----------
    image : ndarray
        ``(Y, X)``, ``(C, Y, X)`` or a colour image ``(3, Y, X)`` with ``meta.rgb``.
    meta : ImageMeta, optional
        Axes of ``image``; without it a 2-D array is ``(Y, X)`` and a 3-D one ``(C, Y, X)``.
    channel : int or str, optional
        Which channel to use (index or name). Colour images default to the plane chosen by
        ``colour``, multi-channel images to channel 0.
    colour : {"luminance", "hematoxylin"}, default "luminance"
        How a colour image (``meta.rgb``) becomes one plane when no ``channel`` is given: its
        luminance, or its hematoxylin stain density (:func:`hematoxylin`; nuclei bright in H&E
        histology, where the luminance hardly separates purple nuclei from pink tissue).

    Returns
    -------
    ndarray of float32, shape (Y, X)

    Raises
    ------
    CellscapeError
        For z-stacks, time series or more dimensions than a single plane with channels, and for
        an unknown channel.
    """
    image = np.asarray(image)
    axes = meta.axes if meta is not None else {2: "YX", 3: "CYX"}.get(image.ndim, "?" * image.ndim)
    source = meta.source if meta is not None else None
    if axes == "YX":
        return image.astype(np.float32, copy=False)
    if axes != "CYX":
        raise CellscapeError(
            source,
            f"expected a 2-D image (Y, X) or channels (C, Y, X), got axes {axes} with shape "
            f"{image.shape}; pick a plane first or use a method made for {axes}",
        )
    names = list(meta.channel_names) if meta is not None else []
    if channel is None:
        if meta is not None and meta.rgb:
            if colour == "hematoxylin" and is_coloured(image):
                return hematoxylin(image)
            return rgb_to_grey(image)
        channel = 0
    if isinstance(channel, str):
        if channel not in names:
            raise CellscapeError(source, f"no channel named '{channel}' (channels: {names})")
        channel = names.index(channel)
    if not -image.shape[0] <= channel < image.shape[0]:
        raise CellscapeError(source, f"channel {channel} out of range (image has {image.shape[0]})")
    return image[channel].astype(np.float32, copy=False)


COLOUR_MODES = ("luminance", "hematoxylin")


def is_coloured(rgb: np.ndarray, tolerance: float = 0.02) -> bool:
    """True if a ``(3, Y, X)`` image has real colour, not a grey image stored as RGB.

    The channels count as equal when their 99th-percentile absolute difference is at most
    ``tolerance`` of the image's range.
    """
    rgb = np.asarray(rgb, dtype=np.float32)
    span = float(rgb.max() - rgb.min())
    if span <= 0:
        return False
    spread = np.abs(rgb - rgb.mean(axis=0, keepdims=True)).max(axis=0)
    return float(np.percentile(spread, 99)) > tolerance * span


def hematoxylin(rgb: np.ndarray) -> np.ndarray:
    """Hematoxylin stain density of a ``(3, Y, X)`` bright-field colour image, float32 (Y, X).

    Colour deconvolution (Ruifrok & Johnston 2001, :func:`skimage.color.rgb2hed`): the optical
    density of each pixel split into hematoxylin, eosin and DAB; the hematoxylin part is high on
    nuclei and near 0 on background and eosin-stained tissue. Integer images are scaled by their
    dtype's range, floats are taken as 0..1.
    """
    from skimage.color import rgb2hed

    return rgb2hed(np.moveaxis(np.asarray(rgb), 0, -1))[..., 0].astype(np.float32)


def rgb_to_grey(rgb: np.ndarray) -> np.ndarray:
    """Luminance (ITU-R 709 weights, as scikit-image) of a ``(3, Y, X)`` colour image, float32."""
    weights = np.array([0.2125, 0.7154, 0.0721], dtype=np.float32)
    return np.tensordot(weights, np.asarray(rgb, dtype=np.float32), axes=1)


def normalize_percentile(
    image: np.ndarray, low: float = 1.0, high: float = 99.8, clip: bool = False
) -> np.ndarray:
    """Scale intensities so that the ``low`` and ``high`` percentiles map to 0 and 1.

    Robust to hot pixels and to 8/16-bit or float inputs alike. A constant image maps to zeros.

    Returns
    -------
    ndarray of float32, same shape as ``image``
    """
    image = np.asarray(image, dtype=np.float32)
    lo, hi = np.percentile(image, [low, high])
    if hi <= lo:
        hi = float(image.max())
        lo = float(image.min())
    if hi <= lo:
        return np.zeros_like(image)
    out = (image - lo) / (hi - lo)
    return np.clip(out, 0.0, 1.0) if clip else out


def bright_background(image: np.ndarray) -> bool:
    """Guess whether objects are dark on a bright background (bright field, H&E histology).

    Cells are usually the minority of pixels, so the background is the mode of the image: when
    the median lies in the upper half between the 1st and 99th percentiles, the background is
    bright.
    """
    image = np.asarray(image, dtype=np.float32)
    lo, med, hi = np.percentile(image, [1, 50, 99])
    if hi <= lo:
        return False
    return (med - lo) / (hi - lo) > 0.5
