"""Classical baseline on the DSB2018 training images: segment with the CLI, score with the CLI.

Runs exactly what a user would run:

    cellscape segment IMAGES --model classical --out OUT
    cellscape evaluate GT OUT --csv OUT/scores.csv

on every ``<id>_img.tif`` of ../shared/data/dsb2018/train (or a folder given as the first
argument), and prints the table, the time per image and the scores on the project's validation
split (the split no model is trained on) next to the whole set.

Usage: python benchmarks/classical_dsb2018.py [DSB_TRAIN_DIR] [OUT_DIR]
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
DEFAULT_DATA = HERE.parent.parent / "shared" / "data" / "dsb2018" / "train"


def main() -> None:
    data = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_DATA
    out = Path(sys.argv[2]) if len(sys.argv) > 2 else HERE / "out" / "classical_dsb2018"
    images = sorted(data.glob("*_img.tif"))
    start = time.perf_counter()
    subprocess.run(
        ["cellscape", "segment", str(data), "--model", "classical", "--out", str(out)],
        check=False,
        stdout=subprocess.DEVNULL,
    )
    seconds = time.perf_counter() - start
    subprocess.run(
        ["cellscape", "evaluate", str(data), str(out), "--csv", str(out / "scores.csv")],
        check=True,
    )
    from cellscape import metrics
    from cellscape.datasets import split_ids

    rows = pd.read_csv(out / "scores.csv")
    _, val_ids = split_ids(rows["image"].tolist())
    print(
        f"\n{len(images)} images segmented in {seconds:.1f} s "
        f"({seconds / max(len(images), 1):.3f} s per image, incl. reading and writing)"
    )
    for name, subset in (("all", rows), ("validation split", rows[rows["image"].isin(val_ids)])):
        s = metrics.summarize(subset.drop(columns="image").to_dict("records"))
        print(
            f"{name:>16}: n={s['n_images']:4d}  AP@0.5 pooled {s['ap_pooled@0.5']:.4f}  "
            f"AP@0.5 per image {s['ap@0.5']:.4f}  F1@0.5 {s['f1_pooled@0.5']:.4f}  "
            f"DSB2018 {s['dsb2018']:.4f}  AJI {s['aji']:.4f}  SEG {s['seg']:.4f}  "
            f"SM {s['sm_mean']:.4f}"
        )


if __name__ == "__main__":
    main()
