"""From per-pixel class maps of cells (interior, contour, halo, ...) to cell instances.

Pure functions: arrays and parameters in, arrays out. They implement the elementary topological
rules of the focal-signature method (Lugagne et al., Sci Rep 2018): a contour is never inside an
interior, and a cell interior is surrounded by contour or halo; then a watershed grows each
interior over its contour to give one label per cell, and each cell gets the majority type of its
interior when there are several interior classes (cell types).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage as ndi

_CROSS = ndi.generate_binary_structure(2, 1)


def _ring_stats(components: np.ndarray, n: int, good: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each component 1..n: number of pixels in its 1-pixel outer ring, and how many are good.

    The ring of a component is found with a max filter of the component ids, so a ring pixel
    between two components counts for the larger id only (a small bias; rings rarely touch).
    """
    grown = ndi.grey_dilation(components, footprint=_CROSS)
    ring = (components == 0) & (grown > 0)
    ids = grown[ring]
    total = np.bincount(ids, minlength=n + 1)
    ok = np.bincount(ids, weights=good[ring].astype(np.float64), minlength=n + 1)
    return total, ok


def apply_topology_rules(
    class_map: np.ndarray,
    interior: Sequence[int],
    contour: int | None = None,
    halo: int | None = None,
    background: int | None = None,
    *,
    min_enclosed: float = 0.5,
) -> np.ndarray:
    """Correct a class map with the topological rules of cells seen in bright field.

    1. A contour region entirely surrounded by interior pixels is a misclassified piece of
       interior: it becomes interior (of the class of the interior around it).
    2. An interior region must be surrounded by contour or halo: an interior region whose outer
       ring holds less than ``min_enclosed`` of contour / halo / other interior pixels is a false
       detection and becomes ``background`` (rule applied only when a contour or halo class
       exists).

    Parameters
    ----------
    class_map : ndarray of int, shape (Y, X)
        Class index per pixel (0..K-1).
    interior : sequence of int
        Indices of the interior classes (one per cell type).
    contour, halo, background : int or None
        Indices of those classes, ``None`` when the model has no such class. Without
        ``background`` rejected interiors become the most common non-interior class around them.
    min_enclosed : float
        Smallest fraction of an interior region's outer ring that must be contour, halo or
        another cell's interior (0..1).

    Returns
    -------
    ndarray, same shape and dtype as ``class_map``
        The corrected class map (a new array).
    """
    out = np.array(class_map, copy=True)
    inside = np.isin(out, list(interior))
    if contour is not None:
        comps, n = ndi.label(out == contour)
        if n:
            total, ok = _ring_stats(comps, n, inside)
            enclosed = (total > 0) & (ok >= total)
            enclosed[0] = False
            flip = enclosed[comps]
            if flip.any():
                # the enclosing interior class: the nearest interior pixel's class
                _, (iy, ix) = ndi.distance_transform_edt(~inside, return_indices=True)
                out[flip] = out[iy[flip], ix[flip]]
                inside = np.isin(out, list(interior))
    walls = [c for c in (contour, halo) if c is not None]
    if walls:
        comps, n = ndi.label(inside)
        if n:
            good = np.isin(out, walls) | inside
            total, ok = _ring_stats(comps, n, good)
            frac = np.divide(ok, total, out=np.ones(n + 1), where=total > 0)
            bad = frac < min_enclosed
            bad[0] = False
            reject = bad[comps]
            if reject.any():
                if background is not None:
                    out[reject] = background
                else:
                    _, (iy, ix) = ndi.distance_transform_edt(reject | inside, return_indices=True)
                    out[reject] = out[iy[reject], ix[reject]]
    return out


def instances_from_classes(
    class_map: np.ndarray,
    interior_prob: np.ndarray,
    interior: Sequence[int],
    contour: int | None = None,
    *,
    min_size: int = 20,
    seed_erosion: int = 0,
) -> np.ndarray:
    """Cell instances: one seed per interior region, grown over the contour by a watershed.

    Parameters
    ----------
    class_map : ndarray of int, shape (Y, X)
        Class index per pixel, usually after :func:`apply_topology_rules`.
    interior_prob : ndarray of float, shape (Y, X)
        Probability that a pixel is inside a cell (all interior classes summed); the watershed
        floods ``1 - interior_prob`` so that touching cells split along their contours.
    interior : sequence of int
        Indices of the interior classes.
    contour : int or None
        Index of the contour class (cells then include their contour pixels).
    min_size : int
        Cells smaller than this (pixels) are removed.
    seed_erosion : int
        Erode the interior by this many pixels before labelling seeds (splits interiors joined
        by a thin bridge).

    Returns
    -------
    ndarray of int32, shape (Y, X)
        0 = background, 1..N cells, consecutive ids.
    """
    from skimage.segmentation import relabel_sequential, watershed

    inside = np.isin(class_map, list(interior))
    seeds = ndi.binary_erosion(inside, iterations=seed_erosion) if seed_erosion else inside
    markers, n = ndi.label(seeds, structure=_CROSS)
    if n == 0:
        return np.zeros(class_map.shape, np.int32)
    mask = inside | (class_map == contour) if contour is not None else inside
    labels = watershed(1.0 - np.asarray(interior_prob, np.float32), markers, mask=mask)
    if min_size > 0:
        sizes = np.bincount(labels.ravel())
        labels[sizes[labels] < min_size] = 0
    labels, _, _ = relabel_sequential(labels)
    return labels.astype(np.int32, copy=False)


def instance_types(labels: np.ndarray, type_scores: np.ndarray) -> np.ndarray:
    """The type of each cell: the type with the largest summed score over the cell's pixels.

    Parameters
    ----------
    labels : ndarray of int, shape (Y, X)
        Instance labels, 0 = background, ids 1..N.
    type_scores : ndarray of float, shape (T, Y, X)
        Per-pixel score (e.g. probability) of each of the T cell types.

    Returns
    -------
    ndarray of int32, shape (N + 1,)
        ``types[i]`` in 0..T-1 is the type of cell ``i``; ``types[0]`` is -1 (background).
    """
    n = int(labels.max()) if labels.size else 0
    if n == 0:
        return np.full(1, -1, np.int32)
    flat = labels.ravel()
    sums = np.stack(
        [np.bincount(flat, weights=s.ravel(), minlength=n + 1) for s in type_scores], axis=0
    )
    types = np.argmax(sums, axis=0).astype(np.int32)
    types[0] = -1
    return types
