"""Shared helpers of the focal-signature benchmarks: simulated stacks, painted labels, scoring.

Two ways of painting training labels and two ways of scoring pixel error:

* ``painted`` labels random pixels of every class, class transitions included (harsh: a user
  never paints the ambiguous 1-px transitions between classes);
* ``painted_strokes`` labels random pixels of the *painted regions* (``stroke_mask``), the way
  a user paints strokes inside each region, as in Lugagne et al. 2018;
* pixel error is reported on **all pixels** and on the **painted regions** of stacks never
  trained or tuned on.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from cellscape.synthetic import brightfield_zstack

NAMES = ("background", "interior", "contour", "halo", "wall")
#: distance in pixels from the nearest pixel of another class for a pixel to count as
#: "painted region" (1 = on a transition; 2 = one pixel clear of it)
STROKE_MARGIN = 2


def stack(kind: str, seed: int, shape=(256, 256), n_frames: int = 100, dz: float = 0.1, **kw):
    return brightfield_zstack(shape, n_frames=n_frames, dz=dz, kind=kind, seed=seed, **kw)


def painted(classes: np.ndarray, fraction: float = 0.15, seed: int = 0) -> np.ndarray:
    """Sparse labels: random pixels of each class (value = class + 1), transitions included.

    Pixels of every class are sampled, boundaries included (a harsher test than painting only
    the middle of each region).
    """
    rng = np.random.default_rng(seed)
    keep = rng.random(classes.shape) < fraction
    return np.where(keep, classes.astype(np.int64) + 1, 0)


def distance_to_other_class(classes: np.ndarray) -> np.ndarray:
    """Euclidean distance (px) from each pixel to the nearest pixel of a different class.

    A pixel next to another class has distance 1. The image border is not a transition.
    """
    d = np.zeros(classes.shape, np.float64)
    for c in np.unique(classes):
        m = classes == c
        d[m] = ndi.distance_transform_edt(m)[m]
    return d


def stroke_mask(classes: np.ndarray, margin: int = STROKE_MARGIN) -> np.ndarray:
    """The pixels a user would paint: region cores, not the transitions between classes.

    A pixel is kept if it lies at least ``margin`` px from every pixel of another class, or if
    it lies on the medial line of its region (its distance to another class is within half a
    pixel of the maximum in its 3 x 3 neighbourhood). The second rule keeps thin regions
    scored: a 2-px contour ring stays in (about 90% of the simulated contour pixels) and a 3-px
    halo ring keeps its middle pixel, so no class drops out; only the 1-px transitions of
    wider regions are left out.

    Parameters
    ----------
    classes : ndarray of int, shape (Y, X)
        Ground-truth class of every pixel.
    margin : int
        Distance in pixels from other classes (1 keeps everything).

    Returns
    -------
    ndarray of bool, shape (Y, X)
    """
    d = distance_to_other_class(classes)
    ridge = np.zeros(classes.shape, bool)
    for c in np.unique(classes):
        m = classes == c
        dc = np.where(m, d, 0.0)
        # a local maximum, with half a pixel of slack so that the 1 vs sqrt(2) steps of a
        # thin ring's distances (diagonal neighbours) do not break its medial line
        ridge |= m & (dc > ndi.maximum_filter(dc, size=3) - 0.5)
    return (d >= margin) | ridge


def painted_strokes(
    classes: np.ndarray, fraction: float = 0.25, seed: int = 0, margin: int = STROKE_MARGIN
) -> np.ndarray:
    """Sparse labels like a user's strokes: random pixels of the painted regions only."""
    rng = np.random.default_rng(seed)
    keep = (rng.random(classes.shape) < fraction) & stroke_mask(classes, margin)
    return np.where(keep, classes.astype(np.int64) + 1, 0)


def core_mask(classes: np.ndarray) -> np.ndarray:
    """Pixels whose 4 neighbours have the same class (away from class boundaries)."""
    same = np.ones(classes.shape, bool)
    for axis in (0, 1):
        for shift in (1, -1):
            same &= np.roll(classes, shift, axis=axis) == classes
    return same & ~ndi.binary_dilation(np.zeros_like(same), border_value=1)
