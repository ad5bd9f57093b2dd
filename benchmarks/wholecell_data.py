"""Data of the whole-cell training script and benchmarks: fixed splits, never mixed.

* synthetic: :func:`cellscape.synthetic.whole_cells` 512 x 512 images at 0.65 µm; seeds 0-23
  train, 100-103 validation, 1000-1011 test.
* hela: DeepCell 2016 HeLa_joint (1080 x 1280 phase + nuclear): sets 1-3 train, set 4
  validation, set 5 test. The pixel size is not recorded with the set; 0.325 µm is assumed
  (cells then measure about 17 µm across, as HeLa cells do).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from cellscape import synthetic
from cellscape.twochannel import TwoChannelSegmenter, class_targets

SYNTH_TRAIN = range(24)
SYNTH_VAL = range(100, 104)
SYNTH_TEST = range(1000, 1012)
HELA_PIXEL_SIZE = 0.325


@dataclass
class Item:
    """One image of a split: the single channel, the nuclear channel, truth and targets."""

    name: str
    image: np.ndarray
    nuclear: np.ndarray
    labels: np.ndarray
    targets: np.ndarray | None
    pixel_size: float


def synthetic_item(seed: int) -> synthetic.SyntheticWholeCells:
    rng = np.random.default_rng(seed + 7919)
    return synthetic.whole_cells(
        (512, 512),
        n_cells=int(rng.integers(40, 90)),
        confluence=float(rng.uniform(0.4, 0.8)),
        nuclear_dim=float(rng.uniform(0.25, 0.5)),
        seed=seed,
    )


@lru_cache(maxsize=1)
def synthetic_cell_area() -> float:
    """Median cell area (µm²) of the training images' masks: the two-channel segmenter's prior."""
    areas = []
    for seed in SYNTH_TRAIN:
        s = synthetic_item(seed)
        a = np.bincount(s.labels.ravel())[1:]
        areas.append(a[a > 0])
    return float(np.median(np.concatenate(areas))) * 0.65**2


def synthetic_two_channel() -> TwoChannelSegmenter:
    return TwoChannelSegmenter(cell_area=synthetic_cell_area())


def synthetic_images(seeds, targets: bool = False) -> list[Item]:
    """Synthetic items; with ``targets`` the two-channel class maps (the paper's way)."""
    seg = synthetic_two_channel()
    items = []
    for seed in seeds:
        s = synthetic_item(seed)
        t = seg.targets(s.image, s.nuclear_image) if targets else None
        items.append(Item(f"synthetic-{seed}", s.image, s.nuclear_image, s.labels, t, 0.65))
    return items


def hela_two_channel(use_intensity: bool = True) -> TwoChannelSegmenter:
    return TwoChannelSegmenter(
        pixel_size=HELA_PIXEL_SIZE,
        nucleus_diameter=8.0,
        cell_area=280.0,
        sensitivity=1.0,
        levels=5,
        tophat_um=None,
        use_intensity=use_intensity,
    )


def hela_split(root: str | Path) -> dict[str, list[Item]]:
    """HeLa_joint sets 1-3 / 4 / 5 as train / val / test, with targets (cells from the masks,
    nuclei from the two-channel segmenter on the nuclear channel)."""
    from cellscape.datasets import deepcell_instances, list_deepcell_sets

    root = Path(root) / "deepcell2016" / "training_data"
    sets = {s.name: s for s in list_deepcell_sets(root) if s.name.startswith("HeLa_joint/")}
    seg = hela_two_channel()
    out: dict[str, list[Item]] = {"train": [], "val": [], "test": []}
    for name, part in (
        ("set1", "train"),
        ("set2", "train"),
        ("set3", "train"),
        ("set4", "val"),
        ("set5", "test"),
    ):
        image, _, features = sets[f"HeLa_joint/{name}"].load(("phase", "nuclear"))
        labels = deepcell_instances(features)
        nuclei = seg.segment(image[0], image[1]).nuclei
        out[part].append(
            Item(
                f"HeLa_joint/{name}",
                image[0],
                image[1],
                labels,
                class_targets(labels, nuclei),
                HELA_PIXEL_SIZE,
            )
        )
    return out
