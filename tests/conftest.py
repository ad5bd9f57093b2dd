"""Shared fixtures: tiny images made here, never the real data sets (CI has none)."""

from __future__ import annotations

import numpy as np
import pytest


def _disk_labels(shape=(64, 80), centres=((16, 20), (40, 50), (20, 60)), radius=7):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    labels = np.zeros(shape, dtype=np.int32)
    for i, (cy, cx) in enumerate(centres, start=1):
        labels[(yy - cy) ** 2 + (xx - cx) ** 2 <= radius**2] = i
    return labels


@pytest.fixture
def disks():
    """A (Y, X) uint16 image of three bright disks on a dark noisy background, and its labels."""
    labels = _disk_labels()
    rng = np.random.default_rng(0)
    image = (100 + 800 * (labels > 0) + rng.normal(0, 20, labels.shape)).clip(0).astype(np.uint16)
    return image, labels
