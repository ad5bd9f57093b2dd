"""Whole cells from nuclei: active contours guided by an interior map (DeepCell 2016).

The cytoplasm of mammalian cells in phase contrast is hard to threshold on its own, but every
cell has one nucleus, which a nuclear network finds reliably. Following Van Valen et al. (2016),
the cells are grown from the nuclei by an active contour on the network's cell-interior map:
scikit-image's morphological Chan-Vese evolution starts from the nuclei and moves the contour
until it separates the high-interior region (cells) from the low one (background and cell
edges). The region it encloses is then divided among the nuclei by a seeded watershed on the
interior map, so that touching cells stay apart along the ridge of low interior probability
(the edge class) between them, and a cell is only ever grown from a nucleus.

Pure functions: arrays in, arrays out.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

__all__ = ["grow_cells_from_nuclei", "snake_region"]


def snake_region(
    interior: np.ndarray,
    seeds: np.ndarray,
    *,
    iterations: int = 40,
    smoothing: int = 1,
    lambda1: float = 1.0,
    lambda2: float = 1.0,
    init_dilation: int = 2,
) -> np.ndarray:
    """Cell region found by a morphological Chan-Vese contour started from the seeds.

    Parameters
    ----------
    interior : ndarray of float, shape (Y, X)
        Cell-interior probability (or any map that is high inside cells), in [0, 1].
    seeds : ndarray of bool or int, shape (Y, X)
        Where the contour starts (non-zero = inside), e.g. the nuclei.
    iterations : int
        Chan-Vese iterations; each moves the contour by about a pixel.
    smoothing : int
        Smoothing steps per iteration (0 = none; higher = rounder contours).
    lambda1, lambda2 : float
        Weights of the inside and outside region terms (``lambda1 < lambda2`` grows the
        region into dimmer areas).
    init_dilation : int
        Seeds are dilated by this many pixels to start the contour.

    Returns
    -------
    ndarray of bool, shape (Y, X)
        The region inside the final contour.
    """
    from skimage.segmentation import morphological_chan_vese

    interior = np.asarray(interior, dtype=np.float32)
    init = np.asarray(seeds) > 0
    if not init.any():
        return np.zeros(interior.shape, bool)
    if init_dilation > 0:
        init = ndi.binary_dilation(init, iterations=init_dilation)
    level = morphological_chan_vese(
        interior,
        num_iter=int(iterations),
        init_level_set=init.astype(np.int8),
        smoothing=int(smoothing),
        lambda1=lambda1,
        lambda2=lambda2,
    )
    return level.astype(bool)


def grow_cells_from_nuclei(
    interior: np.ndarray,
    nuclei: np.ndarray,
    *,
    iterations: int = 40,
    smoothing: int = 1,
    min_size: int = 20,
    min_seed_fraction: float = 0.0,
    foreground: np.ndarray | None = None,
) -> np.ndarray:
    """Whole-cell labels grown from nuclei by an active contour on the interior map.

    Parameters
    ----------
    interior : ndarray of float, shape (Y, X)
        Cell-interior probability in [0, 1] (a whole-cell network's interior softmax).
    nuclei : ndarray of int, shape (Y, X)
        Nucleus labels (0 = background); each nucleus seeds one cell with its id.
    iterations, smoothing : int
        Passed to :func:`snake_region`.
    min_size : int
        Cells smaller than this many pixels are dropped.
    min_seed_fraction : float
        Nuclei smaller than this fraction of the median nucleus area are not used as seeds
        (fragments of a nucleus would otherwise split its cell).
    foreground : ndarray of bool, shape (Y, X), optional
        Extra pixels the cells may cover (e.g. ``P(background) < 0.5``, which includes the
        cell edges the interior map leaves out); the contour's region is united with it.

    Returns
    -------
    ndarray of int32, shape (Y, X)
        0 background; cell ``i`` grown from nucleus ``i`` (ids kept; nuclei whose cell is too
        small are dropped). Each cell contains its nucleus' pixels that lie inside the region.
    """
    from skimage.segmentation import watershed

    nuclei = np.asarray(nuclei)
    interior = np.asarray(interior, dtype=np.float32)
    if nuclei.shape != interior.shape:
        raise ValueError(f"nuclei {nuclei.shape} and interior {interior.shape} differ in shape")
    if nuclei.max() <= 0:
        return np.zeros(interior.shape, np.int32)
    if min_seed_fraction > 0:
        area = np.bincount(nuclei.ravel())
        present = area[1:][area[1:] > 0]
        small = area < min_seed_fraction * float(np.median(present))
        small[0] = False
        if small.any():
            nuclei = np.where(small[nuclei], 0, nuclei)
    region = snake_region(interior, nuclei, iterations=iterations, smoothing=smoothing)
    region |= nuclei > 0
    # the contour's region only partly includes the cell edges (low interior probability)
    region = ndi.binary_closing(region, iterations=1) | (nuclei > 0)
    if foreground is not None:
        region &= ndi.binary_dilation(np.asarray(foreground, bool), iterations=1) | (nuclei > 0)
    labels = watershed(1.0 - interior, markers=nuclei.astype(np.int32), mask=region)
    if min_size > 0:
        sizes = np.bincount(labels.ravel())
        small = sizes < min_size
        small[0] = False
        labels[small[labels]] = 0
    return labels.astype(np.int32, copy=False)
