"""Figures of docs/selfsup.md from the outputs of benchmarks/selfsup_deepcell.py.

Usage: python docs/scripts/selfsup_figures.py [BENCH_OUT]
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from PIL import Image  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "docs" / "images"


def main() -> None:
    bench = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "benchmarks/out/selfsup_deepcell"
    box = (300, 200, 800, 600)
    panels = [
        ("HeLa_joint_set3__selfsup.png", "nuclear markers, beta = 15 (texture mask)"),
        ("HeLa_joint_set3__selfsup_beta0.png", "nuclear markers, beta = 0 (no mask)"),
        ("HeLa_joint_set3__selfsup_synth.png", "synthetic-nucleus markers, beta = 15"),
        ("HeLa_joint_set3__synthetic_nuclei.png", "synthetic nuclei (from phase alone)"),
    ]
    fig, axes = plt.subplots(2, 2, figsize=(10, 8.2))
    for ax, (name, title) in zip(axes.ravel(), panels, strict=True):
        ax.imshow(Image.open(bench / name).crop(box), cmap="gray")
        ax.set_title(title, fontsize=10)
        ax.axis("off")
    fig.suptitle("HeLa-S3 phase contrast (DeepCell 2016, HeLa_joint/set3), fitted without labels")
    fig.tight_layout()
    fig.savefig(OUT / "selfsup_hela_overlay.png", dpi=80)
    # 256 colours keep the outlines and quarter the file
    target = OUT / "selfsup_hela_overlay.png"
    img = Image.open(target).convert("RGB")
    img.quantize(256, dither=Image.Dither.NONE).save(target, optimize=True)
    print(OUT / "selfsup_hela_overlay.png")


if __name__ == "__main__":
    main()
