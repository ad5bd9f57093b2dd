"""Train a U-Net on DeepCell 2016 data: the bundled `cells-phase-nuclear` (whole mammalian
cells from phase + nuclear, ``--task cells``, the default) or an E. coli phase model
(``--task ecoli``, split ``SPLITS["ecoli"]``: ecoli/set1 and ecoli_kc/set1 train, set2 of each
is held out).

    python training/train_cells_unet.py [--task cells] [--epochs 40] [--steps 100] [--out DIR]

Data: the DeepCell 2016 training data (../shared/data/deepcell2016/training_data), split by
``SPLITS["cells"]`` in benchmarks/convnet_common.py: HeLa-S3, 3T3, MCF10A, RAW 264.7 and BMDM
images train; HeLa_joint/set4 and set5 (the held-out images of the conv-net benchmark),
3T3/set3, RAW40X/set3 and the bottom halves of the single MCF10A and BMDM images are held out
and only scored at the end. The right 20% of the columns of every training image (at least a
patch wide) pick the best epoch and the post-processing thresholds (the network never learns
from those columns).
Checkpoints go to runs/cells-unet (rerun the same command to resume). ``--init MODEL``
continues from a model's weights (with ``--learning-rate`` for the new schedule); its config
then records the whole chain of commands.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from skimage.segmentation import relabel_sequential

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from cellscape import metrics  # noqa: E402
from cellscape.methods.unet import UNetSegmenter  # noqa: E402
from cellscape.models import load_model  # noqa: E402
from convnet_common import SPLITS, check_split, data_root, load_sets  # noqa: E402

TUNE_FRACTION = 0.2

#: per task: default output, crop size, zoom range of the crops, smallest cell, what it is for
TASKS = {
    "cells": {
        "out": ROOT / "src/cellscape/data/models/cells-phase-nuclear",
        "patch": 256,
        # cell diameters of 23-80 px across the lines: zooms of 0.5-1.6 cover them both ways
        "scale_range": (0.5, 1.6),
        "min_size": 30,
        "purpose": "whole mammalian cells from phase contrast + a nuclear marker",
    },
    "ecoli": {
        "out": ROOT / "runs" / "ecoli-unet" / "model",
        "patch": 128,
        # rods of about 13 px (ecoli) and 28 px (ecoli_kc) across: zooms of 0.5-2 bridge them
        "scale_range": (0.5, 2.0),
        "min_size": 20,
        "purpose": "E. coli (rod bacteria) in phase contrast",
    },
}


def split_columns(image: np.ndarray, labels: np.ndarray, patch: int):
    """(fit image, fit labels), (tune image, tune labels): the left columns learn, the right
    ``TUNE_FRACTION`` of them (at least ``patch``, so that tune crops need no padding) tune."""
    width = labels.shape[1]
    cut = width - max(patch, int(round(width * TUNE_FRACTION)))
    fit = (image[..., :cut], relabel_sequential(labels[:, :cut])[0])
    tune = (image[..., cut:], relabel_sequential(labels[:, cut:])[0])
    return fit, tune


def score_sets(model, sets) -> dict:
    """Per held-out set and pooled over all of them: cellscape's metrics of each image."""
    rows, out = [], {}
    for name, image, meta, _, labels in sets:
        row = metrics.image_scores(labels, model.segment(image, meta))
        rows.append(row)
        out[name] = {k: round(float(row[k]), 4) for k in ("ap@0.5", "dsb2018", "aji")}
    s = metrics.summarize(rows)
    out["all"] = {k: round(float(s[k]), 4) for k in ("ap_pooled@0.5", "ap@0.5", "dsb2018", "aji")}
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--task", choices=tuple(TASKS), default="cells")
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--filters", default="16,32,64,128,256")
    parser.add_argument("--patch", type=int, help="crop size [default: the task's]")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--learning-rate", type=float, default=2e-3)
    parser.add_argument("--data", default=None)
    parser.add_argument(
        "--init", help="continue from this model's weights (a name or folder) instead of new ones"
    )
    parser.add_argument("--runs", type=Path, help="checkpoints [default: runs/<task>-unet]")
    parser.add_argument("--out", type=Path, help="model folder [default: the task's]")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--precision", choices=("float32", "bfloat16", "auto"), default="auto")
    args = parser.parse_args()
    task = TASKS[args.task]
    args.patch = args.patch or task["patch"]
    args.runs = args.runs or ROOT / "runs" / f"{args.task}-unet"
    args.out = args.out or task["out"]

    root = data_root(args.data)
    check_split(root)
    channels, train_names, held_names = SPLITS[args.task]
    fit_x, fit_y, fit_m, tune_x, tune_y, tune_m = [], [], [], [], [], []
    for _, image, meta, _, labels in load_sets(root, train_names, channels):
        (fx, fy), (tx, ty) = split_columns(image, labels, args.patch)
        fit_x.append(fx)
        fit_y.append(fy)
        fit_m.append(meta)
        tune_x.append(tx)
        tune_y.append(ty)
        tune_m.append(meta)
    print(f"fit {len(fit_x)} images (left), tune their right columns; held out {held_names}")

    schedule = {
        "epochs": args.epochs,
        "steps_per_epoch": args.steps,
        "learning_rate": args.learning_rate,
    }
    earlier = None
    if args.init:
        model = load_model(args.init)
        if not isinstance(model, UNetSegmenter) or model.channels != channels:
            raise SystemExit(f"--init {args.init}: not a U-Net on the channels {channels}")
        earlier = model.info_
        model.set_params(**schedule)
    else:
        model = UNetSegmenter(
            filters=tuple(int(f) for f in args.filters.split(",")),
            channels=channels,
            batch_size=args.batch_size,
            patch=args.patch,
            scale_range=task["scale_range"],
            min_size=task["min_size"],
            **schedule,
        )
    model.fit(
        fit_x,
        fit_y,
        fit_m,
        val_images=tune_x,
        val_targets=tune_y,
        val_metas=tune_m,
        checkpoint_dir=args.runs,
        threads=args.threads,
        warm_start=earlier is not None,
        precision=args.precision,
    )
    train_seconds = sum(model.info_["history"]["seconds"])
    command = "python training/train_cells_unet.py " + " ".join(sys.argv[1:])
    if earlier is not None:  # the whole cost and recipe of the weights, the run before included
        train_seconds += earlier.get("train_seconds", 0)
        command = f"{earlier.get('command')}, then {command}"
        model.info_["initialised_from"] = {
            "model": args.init,
            "train_seconds": earlier.get("train_seconds"),
            "validation": earlier.get("validation"),
        }
    for row in model.tune_thresholds(
        tune_x, tune_y, tune_m, foreground=(0.3, 0.4, 0.5, 0.6), seeds=(0.3, 0.4, 0.5, 0.6, 0.7)
    ):
        print(
            f"tune fg {row['foreground']} seed {row['seed']}: DSB {row['dsb2018']:.4f} "
            f"AP@0.5 {row['ap_pooled@0.5']:.4f}",
            flush=True,
        )
    held = load_sets(root, held_names, channels)
    t1 = time.perf_counter()
    validation = score_sets(model, held)
    seg_seconds = (time.perf_counter() - t1) / len(held)
    for name, row in validation.items():
        print(name, row)
    model.info_.update(
        {
            "purpose": task["purpose"],
            "training_data": "DeepCell 2016 training data (Van Valen et al. 2016): "
            + ", ".join(train_names)
            + f"; the right {round(100 * TUNE_FRACTION)}% of the columns of each (at least "
            f"{args.patch}) pick the epoch and the thresholds, the rest learn",
            "validation_data": ", ".join(held_names),
            "validation": validation["all"],
            "validation_per_set": {k: v for k, v in validation.items() if k != "all"},
            "train_seconds": round(train_seconds),
            "seconds_per_validation_image": round(seg_seconds, 3),
            "command": command,
            "machine": "2-core CPU, no GPU",
        }
    )
    model.save(args.out)
    print(f"saved to {args.out}")


if __name__ == "__main__":
    main()
