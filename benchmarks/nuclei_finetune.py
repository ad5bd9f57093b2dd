"""Does `cellscape train unet` help a lab with one kind of images? H&E histology as the case.

Builds a pair folder of the DSB2018 *training-split* H&E images (links to the files, the
project's validation split left out), fine-tunes the bundled `nuclei` model on it with the
command a user would type (`cellscape train unet PAIRS --out MODEL`, default settings unless
given), times it, and scores the bundled and the fine-tuned model on the H&E images of the
validation split (never used by either).

    python benchmarks/nuclei_finetune.py [--epochs 20] [--steps 50] [--out benchmarks/out/finetune]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE.parents[1] / "shared" / "data" / "dsb2018" / "train"


def main() -> None:
    from cellscape import metrics
    from cellscape.datasets import dsb2018_split
    from cellscape.models import load_model

    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--out", type=Path, default=HERE / "out" / "finetune")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--steps", type=int, default=50)
    args = parser.parse_args()

    train_pairs, val_pairs = dsb2018_split(args.data)
    pairs_dir = args.out / "pairs"
    pairs_dir.mkdir(parents=True, exist_ok=True)
    n_train = 0
    for pair in train_pairs:
        if pair.load()[1].rgb:
            for src in (pair.image_path, pair.masks_path):
                link = pairs_dir / src.name
                if not link.exists():
                    link.symlink_to(src.resolve())
            n_train += 1
    print(f"{n_train} H&E training-split pairs in {pairs_dir}")

    model_dir = args.out / "model"
    cli = Path(sys.executable).with_name("cellscape")
    t0 = time.perf_counter()
    subprocess.run(
        [str(cli), "train", "unet", str(pairs_dir), "--out", str(model_dir)]
        + ["--epochs", str(args.epochs), "--steps", str(args.steps)],
        check=True,
    )
    seconds = time.perf_counter() - t0
    print(f"cellscape train unet: {seconds:.0f} s ({args.epochs} x {args.steps} batches)")

    val = [p.load() for p in val_pairs]
    val = [(x, m, y) for x, m, y in val if m.rgb]
    print(f"validation split: {len(val)} H&E images")
    print(f"{'model':<24}{'AP@0.5 pooled':>15}{'AP@0.5 per image':>18}{'DSB2018':>9}{'AJI':>7}")
    for name, where in (("nuclei (bundled)", "nuclei"), ("nuclei fine-tuned on H&E", model_dir)):
        model = load_model(where)
        s = metrics.summarize([metrics.image_scores(y, model.segment(x, m)) for x, m, y in val])
        print(
            f"{name:<24}{s['ap_pooled@0.5']:>15.3f}{s['ap@0.5']:>18.3f}"
            f"{s['dsb2018']:>9.3f}{s['aji']:>7.3f}"
        )


if __name__ == "__main__":
    main()
