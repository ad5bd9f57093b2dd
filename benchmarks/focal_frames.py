"""Pixel error against the number of frames (even, logarithmic, hand-picked spacing).

The paper's Fig. 2E on simulated E. coli stacks (256 x 256, 100 frames, dz = 0.1 µm, walls,
5 classes: background, interior, contour, halo, wall). Train: one stack (seed 100) with 15% of
its pixels painted at random. Errors: (1) the held-out 10% of the painted pixels (the paper's
protocol), (2) all pixels and (3) pixels away from class boundaries of two validation stacks
(seeds 200, 201) never trained or tuned on. Classifier: the small neural network ("mlp").
Writes docs/images/focal_frames.png. Run: ``python benchmarks/focal_frames.py``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cellscape.methods.focal import FocalSignature  # noqa: E402
from focal_common import NAMES, core_mask, painted, stack  # noqa: E402

COUNTS = (2, 3, 5, 10, 20, 50, 100)
# hand-picked: the focus, then pairs on both sides where the defocus contrast is strong, then
# fill-ins (the first n of this list are used)
HAND = [50, 40, 60, 30, 70, 45, 55, 20, 80, 35, 65, 10, 90, 0, 99, 25, 75, 48, 52, 15, 85]


def frames_for(spacing: str, n: int) -> dict:
    if spacing == "hand-picked":
        order = HAND + [i for i in range(100) if i not in HAND]
        return {"frames": sorted(order[:n])}
    return {"n_frames": n, "spacing": spacing}


def main() -> None:
    train = stack("ecoli", 100)
    vals = [stack("ecoli", s) for s in (200, 201)]
    labels = painted(train.classes, 0.15, seed=0)
    results = {}
    print(
        "| spacing | frames | held-out painted error | validation error (all px) | "
        "validation error (away from boundaries) |"
    )
    print("|---|---|---|---|---|")
    for spacing in ("even", "log", "hand-picked"):
        for n in COUNTS:
            model = FocalSignature(
                classes=NAMES, classifier="mlp", max_train_pixels=10000, **frames_for(spacing, n)
            )
            model.fit(train.stack, labels)
            held = 1 - model.info_["validation"]["accuracy"]
            wrong = [model.predict(v.stack) != v.classes for v in vals]
            err_all = float(np.mean([w.mean() for w in wrong]))
            err_core = float(
                np.mean([w[core_mask(v.classes)].mean() for w, v in zip(wrong, vals, strict=True)])
            )
            results[(spacing, n)] = (held, err_all, err_core)
            print(
                f"| {spacing} | {n} | {100 * held:.2f}% | {100 * err_all:.2f}% | "
                f"{100 * err_core:.2f}% |",
                flush=True,
            )
    plot(results)


def plot(results) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6), sharey=False)
    titles = ("held-out 10% of painted pixels", "validation stacks, away from boundaries")
    for ax, which, title in zip(axes, (0, 2), titles, strict=True):
        for spacing, style in (("even", "o-"), ("log", "s--"), ("hand-picked", "^:")):
            y = [100 * results[(spacing, n)][which] for n in COUNTS]
            ax.plot(COUNTS, y, style, label=spacing)
        ax.axhline(1.0, color="grey", lw=0.8)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("frames used")
        ax.set_ylabel("pixel error (%)")
        ax.set_title(title, fontsize=9)
    axes[0].legend(fontsize=8)
    fig.suptitle("Focal signature, simulated E. coli (5 classes)", fontsize=10)
    fig.tight_layout()
    out = Path(__file__).resolve().parents[1] / "docs" / "images" / "focal_frames.png"
    fig.savefig(out, dpi=90)
    print(f"plot: {out}")


if __name__ == "__main__":
    main()
