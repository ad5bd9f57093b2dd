"""Watershed post-processing: foreground masks and seeds to instance labels.

Pure functions: arrays and parameters in, arrays out.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi


def distance_watershed(
    mask: np.ndarray,
    min_distance: float = 5.0,
    *,
    h: float = 0.0,
    smoothing: float = 1.0,
    min_size: int = 0,
) -> np.ndarray:
    """Split a binary foreground into touching objects with a distance-transform watershed.

    The Euclidean distance to the background peaks near each object's centre; one seed per
    peak, then a watershed on the inverted distance cuts touching objects along their necks.

    Parameters
    ----------
    mask : ndarray of bool, shape (Y, X)
        Foreground pixels.
    min_distance : float
        Smallest distance between two seeds, in pixels; about a third of the object diameter.
        Smaller values split more.
    h : float
        Seeds are regional maxima of the distance that stand at least ``h`` pixels above their
        surroundings (h-maxima); 0 keeps every peak allowed by ``min_distance``.
    smoothing : float
        Gaussian sigma (pixels) applied to the distance map before finding peaks, so that
        ragged edges do not create spurious seeds.
    min_size : int
        Objects smaller than this (pixels) are removed from the result.

    Returns
    -------
    labels : ndarray of int32, shape (Y, X)
        0 = background, 1..N objects, consecutive ids.
    """
    from skimage.feature import peak_local_max
    from skimage.morphology import h_maxima
    from skimage.segmentation import relabel_sequential, watershed

    mask = np.asarray(mask, dtype=bool)
    if not mask.any():
        return np.zeros(mask.shape, dtype=np.int32)
    distance = ndi.distance_transform_edt(mask)
    if smoothing > 0:
        distance = ndi.gaussian_filter(distance, smoothing)
    components, _ = ndi.label(mask)
    peaks = peak_local_max(
        distance,
        min_distance=max(1, int(round(min_distance))),
        labels=components,
        exclude_border=False,
    )
    seeds = np.zeros(mask.shape, dtype=bool)
    seeds[tuple(peaks.T)] = True
    if h > 0:
        seeds &= h_maxima(distance, h).astype(bool)
    # every connected component gets at least one seed, so no object is lost
    seeded = np.unique(components[seeds])
    missing = np.setdiff1d(np.arange(1, components.max() + 1), seeded)
    if missing.size:
        centres = ndi.maximum_position(distance, components, missing)
        for c in centres:
            seeds[c] = True
    markers, _ = ndi.label(seeds)
    labels = watershed(-distance, markers, mask=mask)
    if min_size > 0:
        labels = remove_small(labels, min_size)
    labels, _, _ = relabel_sequential(labels)
    return labels.astype(np.int32, copy=False)


def remove_small(labels: np.ndarray, min_size: int) -> np.ndarray:
    """Set objects with fewer than ``min_size`` pixels to background (ids are kept)."""
    labels = np.asarray(labels)
    sizes = np.bincount(labels.ravel())
    small = sizes < min_size
    small[0] = False
    if small.any():
        labels = labels.copy()
        labels[small[labels]] = 0
    return labels


def maps_to_instances(
    foreground: np.ndarray,
    seeds: np.ndarray,
    relief: np.ndarray,
    *,
    foreground_threshold: float = 0.5,
    seed_threshold: float = 0.5,
    min_seed_size: int = 4,
    min_size: int = 8,
) -> np.ndarray:
    """Instances from predicted maps: seeds where the network is sure, grown over the foreground.

    Parameters
    ----------
    foreground : ndarray of float, shape (Y, X)
        Probability that a pixel belongs to any cell.
    seeds : ndarray of float, shape (Y, X)
        A map that is high only in the cores of cells (e.g. a predicted normalised distance to
        the cell border, or interior probability without the boundary).
    relief : ndarray of float, shape (Y, X)
        The watershed floods ``-relief`` (high = centre of a cell), e.g. the same distance map.
    foreground_threshold, seed_threshold : float
        Cut-offs on ``foreground`` and ``seeds``.
    min_seed_size, min_size : int
        Seeds and final objects smaller than this (pixels) are dropped.

    Returns
    -------
    ndarray of int32, shape (Y, X)
        0 = background, 1..N cells.
    """
    from skimage.segmentation import relabel_sequential, watershed

    mask = np.asarray(foreground) > foreground_threshold
    cores = (np.asarray(seeds) > seed_threshold) & mask
    markers, _ = ndi.label(cores)
    if min_seed_size > 1:
        markers = remove_small(markers, min_seed_size)
    labels = watershed(-np.asarray(relief, dtype=np.float32), markers, mask=mask)
    # foreground pieces the seeds missed (small or faint cells) become cells of their own
    orphans, n_orphans = ndi.label(mask & (labels == 0))
    if n_orphans:
        labels = np.where(orphans > 0, orphans + labels.max(), labels)
    labels = remove_small(labels, min_size)
    labels, _, _ = relabel_sequential(labels)
    return labels.astype(np.int32, copy=False)
