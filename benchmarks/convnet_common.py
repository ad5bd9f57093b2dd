"""Shared data split of the conv-net training script and benchmarks (DeepCell 2016 data).

Held-out images are never used to train or tune; the split respects the duplicate groups found
by :func:`cellscape.datasets.find_duplicate_sets` (a held-out image's twins are held out too, or
are not used at all).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from cellscape.datasets import deepcell_instances, find_duplicate_sets, list_deepcell_sets

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "deepcell2016" / "training_data"

#: task -> (channels, train sets, held-out sets)
SPLITS = {
    "ecoli": (("phase",), ["ecoli/set1", "ecoli_kc/set1"], ["ecoli/set2", "ecoli_kc/set2"]),
    "nuclei": (
        ("nuclear",),
        # nuclei/set3 has the masks of nuclei/set1 (= HeLa_joint/set1) over a different
        # rendering of the image: not byte-identical, so find_duplicate_sets misses it; both train
        ["nuclei/set1", "nuclei/set2", "nuclei/set3", "nuclei/set5", "nuclei/set8"],
        ["nuclei/set4", "nuclei/set7"],
    ),
    "hela": (
        ("phase", "nuclear"),
        ["HeLa_joint/set1", "HeLa_joint/set2", "HeLa_joint/set3"],
        ["HeLa_joint/set4", "HeLa_joint/set5"],
    ),
    # the U-Net of the bundled cells-phase-nuclear model: every mammalian cell line with phase +
    # nuclear channels; one image of a line (MCF10A, BMDM) -> its top half trains, its bottom
    # half is held out; RAW40X/set4 and set5 repeat set1 and set2 (find_duplicate_sets): unused
    "cells": (
        ("phase", "nuclear"),
        [
            "HeLa_joint/set1",
            "HeLa_joint/set2",
            "HeLa_joint/set3",
            "3T3/set1",
            "3T3/set2",
            "MCF10A:top",
            "RAW40X/set1",
            "RAW40X/set2",
            "BMDM:top",
        ],
        [
            "HeLa_joint/set4",
            "HeLa_joint/set5",
            "3T3/set3",
            "MCF10A:bottom",
            "RAW40X/set3",
            "BMDM:bottom",
        ],
    ),
    # co-culture: one MCF10A image only -> its top half trains, its bottom half is held out
    "types": (
        ("phase", "nuclear"),
        [
            "MCF10A_3T3_semantic/3T3/set1",
            "MCF10A_3T3_semantic/3T3/set2",
            "MCF10A_3T3_semantic/MCF10A:top",
        ],
        ["MCF10A_3T3_semantic/3T3/set3", "MCF10A_3T3_semantic/MCF10A:bottom"],
    ),
}


def data_root(arg: str | None = None) -> Path:
    return Path(arg or os.environ.get("CELLSCAPE_DEEPCELL", DEFAULT_DATA))


def check_split(root: Path) -> list[tuple[str, ...]]:
    """Raise if a held-out set of a task has a duplicate among that task's training sets
    (or among the nuclear net's training sets, which seed HeLa's cells)."""
    groups = find_duplicate_sets(list_deepcell_sets(root))
    twin = {}
    for g in groups:
        for s in g:
            twin[s] = set(g)
    for task, (_, train, held) in SPLITS.items():
        trained = {t.split(":")[0] for t in train}
        if task == "hela":
            trained |= set(SPLITS["nuclei"][1])
        for h in held:
            if ":" in h:  # a half image whose other half trains: a deliberate spatial split
                continue
            clash = twin.get(h, {h}) & trained
            if clash:
                raise SystemExit(f"held-out {h} of {task} duplicates training sets {clash}")
    return groups


def load_sets(root: Path, names, channels):
    """Images, metas, feature masks and instance labels of named sets (``name:top`` /
    ``name:bottom`` = that half of the image)."""
    by_name = {s.name: s for s in list_deepcell_sets(root)}
    out = []
    for full in names:
        name, _, half = full.partition(":")
        image, meta, features = by_name[name].load(channels)
        if half:
            mid = image.shape[1] // 2
            sl = slice(0, mid) if half == "top" else slice(mid, None)
            image, features = image[:, sl], features[:, sl]
        labels = deepcell_instances(features)
        out.append((full, image, meta, features, labels))
    return out


def merge_error_rate(gt: np.ndarray, pred: np.ndarray, min_fraction: float = 0.5) -> float:
    """Fraction of true cells merged with another true cell in the prediction.

    As in Van Valen et al. (2016): a true cell counts as merged when the predicted object that
    covers most of it also covers most (``min_fraction``) of another true cell.
    """
    gt = np.asarray(gt)
    pred = np.asarray(pred)
    n = int(gt.max())
    if n == 0:
        return float("nan")
    pairs = np.stack([gt.ravel(), pred.ravel()], 1)
    pairs = pairs[(pairs[:, 0] > 0) & (pairs[:, 1] > 0)]
    counts = {}
    for (g, p), c in zip(*np.unique(pairs, axis=0, return_counts=True), strict=True):
        counts[(int(g), int(p))] = int(c)
    sizes = np.bincount(gt.ravel(), minlength=n + 1)
    best = {}
    for (g, p), c in counts.items():
        if c > best.get(g, (0, 0))[1]:
            best[g] = (p, c)
    owner = {}
    for g, (p, c) in best.items():
        if c >= min_fraction * sizes[g]:
            owner.setdefault(p, []).append(g)
    merged = sum(len(v) for v in owner.values() if len(v) > 1)
    return merged / n
