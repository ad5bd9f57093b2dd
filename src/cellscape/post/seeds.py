"""Nuclei seeds and seeded whole-cell watershed (Al-Kofahi et al., BMC Bioinformatics 2018).

Two pure steps, arrays and parameters in, labels out:

* :func:`nuclei_from_map` -- multi-scale Laplacian-of-Gaussian blob enhancement of a nucleus
  map, a multi-level Otsu threshold whose level is picked by a sensitivity setting, and a
  shape-based watershed (inverse distance transform, extended h-minima, seeded watershed) that
  splits touching nuclei.
* :func:`cells_from_nuclei` -- Gaussian-denoised, scaled, log-transformed intensity multiplied
  by a cell (cytoplasm) map; a three-level Otsu whose threshold is the one with the foreground
  area closest to ``number of nuclei x expected cell area``; a seeded watershed from the nuclei
  inside that foreground, giving exactly one cell per nucleus.

Lengths are given in µm together with the pixel size of the arrays, so the same defaults work
at any magnification.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from .watershed import remove_small


def log_blob_enhance(image: np.ndarray, sigmas) -> np.ndarray:
    """Multi-scale Laplacian-of-Gaussian blob response (bright blobs positive).

    Parameters
    ----------
    image : ndarray of float, shape (Y, X)
        Map in which blobs are bright (e.g. a nucleus probability).
    sigmas : sequence of float
        Gaussian scales in pixels; a blob of radius ``r`` answers most at ``sigma = r / sqrt(2)``.

    Returns
    -------
    ndarray of float32, shape (Y, X)
        The maximum over scales of the scale-normalised response ``-sigma**2 * LoG``, clipped at 0.
    """
    image = np.asarray(image, dtype=np.float32)
    sigmas = [float(s) for s in sigmas]
    # a LoG response at scale >= 2 px is smooth: compute it on a 2x coarser grid (4x faster)
    step = 2 if min(sigmas) >= 2.0 and min(image.shape) >= 64 else 1
    work = image
    if step > 1:
        h, w = image.shape
        work = image[: h - h % 2, : w - w % 2].reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))
    out = np.zeros(work.shape, np.float32)
    for s in sigmas:
        r = -((s / step) ** 2) * ndi.gaussian_laplace(work, s / step)
        np.maximum(out, r, out=out)
    if step > 1:
        out = ndi.zoom(out, 2, order=1, grid_mode=True, mode="nearest")
        pad = ((0, image.shape[0] - out.shape[0]), (0, image.shape[1] - out.shape[1]))
        out = np.pad(out, pad, mode="edge")
    return out


def multi_otsu_threshold(values: np.ndarray, levels: int = 3, sensitivity: float = 0.5) -> float:
    """One of the thresholds of a multi-level Otsu, chosen by ``sensitivity``.

    Parameters
    ----------
    values : ndarray of float
        Intensities to threshold.
    levels : int
        Number of Otsu classes (``levels - 1`` thresholds).
    sensitivity : float in [0, 1]
        1 picks the lowest threshold (most foreground), 0 the highest; values between pick the
        threshold at that fraction of the way, ties going to the lower one (with the default
        three levels, 0.5 and above pick the lower of the two thresholds).

    Returns
    -------
    float
    """
    from skimage.filters import threshold_multiotsu

    values = np.asarray(values, dtype=np.float32)
    if float(values.max()) <= float(values.min()):
        return float(values.max())
    try:
        thresholds = threshold_multiotsu(values, classes=int(levels))
    except ValueError:  # too few distinct values for that many classes
        from skimage.filters import threshold_otsu

        thresholds = np.array([threshold_otsu(values)])
    # ties (e.g. 0.5 with two thresholds) go to the lower, more sensitive threshold
    position = (1.0 - float(np.clip(sensitivity, 0, 1))) * (len(thresholds) - 1)
    index = int(np.clip(np.ceil(position - 0.5), 0, len(thresholds) - 1))
    return float(thresholds[index])


def shape_watershed(
    mask: np.ndarray, h: float, min_size: int = 0, min_split_area: int = 0
) -> np.ndarray:
    """Split a binary mask of roundish objects: inverse distance, extended h-minima, watershed.

    Parameters
    ----------
    mask : ndarray of bool, shape (Y, X)
    h : float
        Depth in pixels a minimum of the inverse distance transform must have to seed an object;
        larger values split less.
    min_size : int
        Objects smaller than this (pixels) are removed.
    min_split_area : int
        Connected pieces smaller than this (pixels) are taken as one object without a
        watershed (a speed-up: one nucleus needs no splitting); 0 examines every piece.

    Returns
    -------
    ndarray of int32, shape (Y, X)
        0 background, objects 1..N.
    """
    from skimage.morphology import h_minima
    from skimage.segmentation import relabel_sequential, watershed

    mask = np.asarray(mask, dtype=bool)
    labels, n = ndi.label(mask)
    if n == 0:
        return np.zeros(mask.shape, np.int32)
    sizes = np.bincount(labels.ravel())
    next_id = n + 1
    # each large piece is split in its own bounding box (h-minima of the whole image is slow)
    for i, box in enumerate(ndi.find_objects(labels), start=1):
        if box is None or sizes[i] < max(min_split_area, 2):
            continue
        box = tuple(slice(max(b.start - 1, 0), b.stop + 1) for b in box)
        piece = labels[box] == i
        inverse = -ndi.distance_transform_edt(piece).astype(np.float32)
        minima = h_minima(inverse, float(h)).astype(bool) & piece if h > 0 else piece * False
        markers, m = ndi.label(minima, structure=np.ones((3, 3)))
        if m <= 1:
            continue
        split = watershed(inverse, markers, mask=piece)
        sub = labels[box]
        sub[piece] = np.where(split[piece] > 1, split[piece] - 2 + next_id, i)
        next_id += m - 1
    if min_size > 0:
        labels = remove_small(labels, min_size)
    labels, _, _ = relabel_sequential(labels)
    return labels.astype(np.int32, copy=False)


def nuclei_from_map(
    nucleus_map: np.ndarray,
    *,
    pixel_size: float = 0.65,
    nucleus_diameter: float = 10.0,
    sensitivity: float = 0.5,
    levels: int = 3,
    h: float = 3.0,
    min_area: float = 12.0,
    foreground: np.ndarray | None = None,
) -> np.ndarray:
    """Nuclei (the seeds of the cells) from a nucleus map.

    Parameters
    ----------
    nucleus_map : ndarray of float, shape (Y, X)
        Bright where nuclei are: a predicted nucleus probability, or a normalised nuclear stain.
    pixel_size : float
        Pixel size of ``nucleus_map`` in µm.
    nucleus_diameter : float
        Typical nucleus diameter in µm; sets the LoG scales (0.5x, 0.7x and 1x of
        ``diameter / (2 sqrt 2)``: small scales keep the nucleus shape, the largest answers to
        whole nuclei).
    sensitivity : float in [0, 1]
        Which multi-level Otsu threshold of the blob response to use: higher finds dimmer
        nuclei (and more false ones).
    levels : int
        Number of Otsu classes.
    h : float
        Extended h-minima depth of the shape watershed, in µm (the paper's default 3 µm): two
        touching nuclei are split when each is at least ``h`` wider than their neck.
    min_area : float
        Smallest nucleus kept, in µm².
    foreground : ndarray of bool, shape (Y, X), optional
        Where cells are (e.g. predicted background < 0.5). Nuclei lie inside cells, so the
        Otsu threshold is computed on these pixels only (it then separates nuclei from
        cytoplasm rather than cells from a large background) and nuclei are kept inside them.

    Returns
    -------
    ndarray of int32, shape (Y, X)
        Nucleus labels 1..N, 0 elsewhere.
    """
    nucleus_map = np.asarray(nucleus_map, dtype=np.float32)
    radius_px = nucleus_diameter / pixel_size / 2.0
    base = radius_px / np.sqrt(2.0)
    sigmas = [max(0.7, base * f) for f in (0.5, 0.7, 1.0)]
    # the map itself is added so that the mask follows the nucleus outline, not the LoG's
    # blob shape; the LoG term lifts nucleus centres and deepens the valleys between them
    response = log_blob_enhance(nucleus_map, sigmas) + nucleus_map
    step = (max(1, response.shape[0] // 512), max(1, response.shape[1] // 512))
    sample = response[:: step[0], :: step[1]]
    if foreground is not None:
        foreground = np.asarray(foreground, dtype=bool)
        inside = sample[foreground[:: step[0], :: step[1]]]
        if inside.size < 16:
            return np.zeros(nucleus_map.shape, np.int32)
        sample = inside
    t = multi_otsu_threshold(sample, levels, sensitivity)
    mask = response > t
    if foreground is not None:
        mask &= foreground
    # fill holes inside nuclei only: filling every hole would turn a ring of nucleus-like
    # pixels around a cell (phase-contrast halos) into one giant nucleus
    one_nucleus = np.pi * radius_px**2
    mask = _fill_small_holes(mask, int(one_nucleus))
    min_px = max(1, int(round(min_area / pixel_size**2)))
    return shape_watershed(
        mask, h / pixel_size, min_size=min_px, min_split_area=int(1.3 * one_nucleus)
    )


def _fill_small_holes(mask: np.ndarray, max_area: int) -> np.ndarray:
    """Fill the holes of ``mask`` smaller than ``max_area`` pixels."""
    holes, n = ndi.label(~mask)
    if n == 0:
        return mask
    sizes = np.bincount(holes.ravel())
    small = sizes < max_area
    small[0] = False
    return mask | small[holes]


def cell_evidence(
    image: np.ndarray, cell_map: np.ndarray | None, smoothing: float = 1.0
) -> np.ndarray:
    """Gaussian-denoised, scaled, log-transformed intensity times the cell map.

    Parameters
    ----------
    image : ndarray of float, shape (Y, X) or None
        Cytoplasm-marker intensity (bright cytoplasm). ``None`` uses the cell map alone.
    cell_map : ndarray of float, shape (Y, X), or None
        Probability of being inside a cell; ``None`` uses the intensity alone.
    smoothing : float
        Gaussian sigma in pixels.

    Returns
    -------
    ndarray of float32 in [0, 1], shape (Y, X)
    """
    if image is None:
        if cell_map is None:
            raise ValueError("need an image, a cell map, or both")
        return np.asarray(cell_map, dtype=np.float32)
    g = ndi.gaussian_filter(np.asarray(image, dtype=np.float32), smoothing)
    lo, hi = np.percentile(g[:: max(1, g.shape[0] // 512), :: max(1, g.shape[1] // 512)], [1, 99.5])
    g = np.clip((g - lo) / max(hi - lo, 1e-6), 0, 1)
    logged = np.log1p(100.0 * g) / np.log1p(100.0)
    if cell_map is None:
        return logged.astype(np.float32)
    return (logged * np.asarray(cell_map, dtype=np.float32)).astype(np.float32)


def cells_from_nuclei(
    evidence: np.ndarray,
    nuclei: np.ndarray,
    *,
    cell_area: float,
    pixel_size: float = 0.65,
    levels: int = 3,
) -> tuple[np.ndarray, float]:
    """One cell per nucleus: expected-area multi-level Otsu foreground + seeded watershed.

    Parameters
    ----------
    evidence : ndarray of float, shape (Y, X)
        High inside cells, lower on cell borders (see :func:`cell_evidence`).
    nuclei : ndarray of int, shape (Y, X)
        Nucleus labels; each becomes the seed of its cell and keeps its id.
    cell_area : float
        Expected area of one cell in µm²: among the ``levels - 1`` Otsu thresholds, the one
        whose foreground area is closest to ``number of nuclei x cell_area`` is used.
    pixel_size : float
        Pixel size in µm.
    levels : int
        Otsu classes (the paper: three). Foreground pieces no nucleus reaches are dropped, and
        nucleus pixels always belong to their cell, so no cell vanishes.

    Returns
    -------
    cells : ndarray of int32, shape (Y, X)
        Cell labels, the id of each cell equal to its nucleus id; 0 background.
    threshold : float
        The threshold chosen on ``evidence``.
    """
    from skimage.filters import threshold_multiotsu
    from skimage.segmentation import watershed

    evidence = np.asarray(evidence, dtype=np.float32)
    nuclei = np.asarray(nuclei, dtype=np.int32)
    n = len(np.unique(nuclei)) - (1 if (nuclei == 0).any() else 0)
    if n == 0:
        return np.zeros(evidence.shape, np.int32), float("nan")
    sample = evidence[:: max(1, evidence.shape[0] // 512), :: max(1, evidence.shape[1] // 512)]
    try:
        thresholds = np.atleast_1d(threshold_multiotsu(sample, classes=int(levels)))
    except ValueError:
        thresholds = np.array([0.5 * float(sample.max())])
    target = n * cell_area / pixel_size**2
    areas = [np.count_nonzero(evidence > t) for t in thresholds]
    t = float(thresholds[int(np.argmin([abs(a - target) for a in areas]))])
    foreground = (evidence > t) | (nuclei > 0)
    # the watershed floods from every seed at once only if the seeds are the lowest points of
    # the relief: nuclei are dim in a cytoplasm marker, so their pixels are set to the floor
    relief = -evidence
    relief[nuclei > 0] = float(relief.min()) - 1.0
    cells = watershed(relief, nuclei, mask=foreground)
    return cells.astype(np.int32, copy=False), t
