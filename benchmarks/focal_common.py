"""Shared helpers of the focal-signature benchmarks: simulated stacks and painted labels."""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from cellscape.synthetic import brightfield_zstack

NAMES = ("background", "interior", "contour", "halo", "wall")


def stack(kind: str, seed: int, shape=(256, 256), n_frames: int = 100, dz: float = 0.1):
    return brightfield_zstack(shape, n_frames=n_frames, dz=dz, kind=kind, seed=seed)


def painted(classes: np.ndarray, fraction: float = 0.15, seed: int = 0) -> np.ndarray:
    """Sparse labels like a user's strokes: random pixels of each class (value = class + 1).

    Pixels of every class are sampled, boundaries included (a harsher test than painting only
    the middle of each region).
    """
    rng = np.random.default_rng(seed)
    keep = rng.random(classes.shape) < fraction
    return np.where(keep, classes.astype(np.int64) + 1, 0)


def core_mask(classes: np.ndarray) -> np.ndarray:
    """Pixels whose 4 neighbours have the same class (away from class boundaries)."""
    same = np.ones(classes.shape, bool)
    for axis in (0, 1):
        for shift in (1, -1):
            same &= np.roll(classes, shift, axis=axis) == classes
    return same & ~ndi.binary_dilation(np.zeros_like(same), border_value=1)
