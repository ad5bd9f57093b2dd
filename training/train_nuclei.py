"""Train the bundled `nuclei` model on the DSB2018 training split, tune it, score it, save it.

    python training/train_nuclei.py [--epochs 24] [--steps 100] [--out MODEL_FOLDER]
    python training/train_nuclei.py --init nuclei --colour hematoxylin --epochs 40 \
        --learning-rate 1e-3 --runs runs/nuclei-ft   # fine-tune the bundled model
    python training/train_nuclei.py --device cuda --workers 12 --filters 32,64,128,256,512 \
        --epochs 300 --steps 200 --runs runs/nuclei-gpu --out runs/nuclei-gpu/model  # on a GPU

Training runs in bfloat16 where the processor computes it natively (``--precision auto``: about
2x the steps per second on this project's CPUs); on a GPU, ``--workers`` processes crop and
augment the batches, since one CPU core cannot keep up with the network there.

Data: ../shared/data/dsb2018/train, split by `cellscape.datasets.dsb2018_split` into
train (552) and the project's validation split (112 images, never used here except for the
final report). The train part is split again (salt "cellscape-tune", 10%) into images the
network learns from and images that pick the best epoch and the post-processing thresholds.
Checkpoints go to runs/nuclei (resumable: rerun the same command after an interruption).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from cellscape import metrics
from cellscape.datasets import dsb2018_split, split_ids
from cellscape.methods.unet import UNetSegmenter
from cellscape.models import load_model

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "dsb2018" / "train"


def load(pairs):
    images, labels, metas = [], [], []
    for p in pairs:
        image, meta, lab = p.load()
        images.append(image)
        labels.append(lab)
        metas.append(meta)
    return images, labels, metas


def score(model, images, labels, metas) -> dict:
    rows = [
        metrics.image_scores(t, model.segment(i, m))
        for i, t, m in zip(images, labels, metas, strict=True)
    ]
    return metrics.summarize(rows)


SUFFIX = " (each step starts from the model the step before saved as the bundled nuclei)"


def recipe(earlier: dict | None, command: str) -> str:
    """The whole recipe of the weights: the commands behind the starting model, then this one.

    A continued model is only reproducible with every step before it, so its config records
    the chain rather than the last command alone.
    """
    if not earlier or not earlier.get("command"):
        return command
    return earlier["command"].removesuffix(SUFFIX) + ", then " + command + SUFFIX


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--filters", default="16,32,64,128,256")
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--runs", type=Path, default=ROOT / "runs" / "nuclei")
    parser.add_argument("--out", type=Path, default=ROOT / "src/cellscape/data/models/nuclei")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--init", help="start from this model's weights (a name or folder) instead of new ones"
    )
    parser.add_argument("--colour", choices=("luminance", "hematoxylin"), default="luminance")
    parser.add_argument("--learning-rate", type=float, default=2e-3)
    parser.add_argument(
        "--oversample-colour",
        type=int,
        default=1,
        help="draw crops from colour (H&E) images this many times as often: they are the worst "
        "kind on the tune images and, being small, get few crops otherwise",
    )
    parser.add_argument(
        "--precision",
        choices=("float32", "bfloat16", "auto"),
        default="auto",
        help="training arithmetic: auto = bfloat16 autocast where the CPU computes it natively "
        "(about 2x the steps per second)",
    )
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    parser.add_argument(
        "--workers", type=int, default=0, help="batch-drawing processes (use several on a GPU)"
    )
    args = parser.parse_args()

    train_pairs, val_pairs = dsb2018_split(args.data)
    fit_ids, tune_ids = split_ids([p.id for p in train_pairs], fraction=0.1, salt="cellscape-tune")
    tune_set = set(tune_ids)
    fit_pairs = [p for p in train_pairs if p.id not in tune_set]
    tune_pairs = [p for p in train_pairs if p.id in tune_set]
    print(f"fit {len(fit_pairs)}, tune {len(tune_pairs)}, validation {len(val_pairs)} images")
    fit_x, fit_y, fit_m = load(fit_pairs)
    if args.oversample_colour > 1:
        extra = [i for i, m in enumerate(fit_m) if m.rgb] * (args.oversample_colour - 1)
        fit_x, fit_y, fit_m = (v + [v[i] for i in extra] for v in (fit_x, fit_y, fit_m))
        print(f"colour images drawn {args.oversample_colour}x: {len(extra)} extra entries")
    tune_x, tune_y, tune_m = load(tune_pairs)

    schedule = {
        "epochs": args.epochs,
        "steps_per_epoch": args.steps,
        "colour": args.colour,
        "learning_rate": args.learning_rate,
    }
    if args.init:
        model = load_model(args.init)
        earlier = model.info_
        model.set_params(**schedule)
    else:
        earlier = None
        model = UNetSegmenter(filters=tuple(int(f) for f in args.filters.split(",")), **schedule)
    model.fit(
        fit_x,
        fit_y,
        fit_m,
        val_images=tune_x,
        val_targets=tune_y,
        val_metas=tune_m,
        checkpoint_dir=args.runs,
        threads=args.threads,
        warm_start=bool(args.init),
        precision=args.precision,
        device=args.device,
        workers=args.workers,
    )
    model.info_["n_train_images"] = len(fit_pairs)  # distinct images, not oversampled entries
    model.info_["oversample_colour"] = args.oversample_colour
    # all epochs, also those of an interrupted run this one resumed
    train_seconds = sum(model.info_["history"]["seconds"])
    if earlier is not None:  # the whole cost of the weights: the run it started from too
        train_seconds += earlier.get("train_seconds", 0)
        model.info_["initialised_from"] = {
            "model": args.init,
            "command": earlier.get("command"),
            "train_seconds": earlier.get("train_seconds"),
            "validation": earlier.get("validation"),
        }

    # post-processing thresholds picked on the tune images (never on the validation split)
    for row in model.tune_thresholds(tune_x, tune_y, tune_m):
        print(
            f"tune fg {row['foreground']} seed {row['seed']}: DSB {row['dsb2018']:.4f} "
            f"AP@0.5 {row['ap_pooled@0.5']:.4f}"
        )

    val_x, val_y, val_m = load(val_pairs)
    t1 = time.perf_counter()
    s = score(model, val_x, val_y, val_m)
    seg_seconds = (time.perf_counter() - t1) / len(val_x)
    validation = {
        "ap_pooled@0.5": s["ap_pooled@0.5"],
        "ap@0.5": s["ap@0.5"],
        "dsb2018": s["dsb2018"],
        "f1_pooled@0.5": s["f1_pooled@0.5"],
        "aji": s["aji"],
    }
    print("validation:", {k: round(v, 4) for k, v in validation.items()})
    model.info_.update(
        {
            "purpose": "nuclei in fluorescence, bright-field and H&E histology images",
            "training_data": "DSB2018 stage-1 train (BBBC038, CC0) with community mask fixes: "
            f"{len(fit_pairs)} images to learn, {len(tune_pairs)} to pick epoch and thresholds "
            "(cellscape.datasets.dsb2018_split, then split_ids salt 'cellscape-tune')",
            "validation_data": f"the {len(val_pairs)} images of the cellscape-v1 validation split",
            "validation": validation,
            "train_seconds": round(train_seconds),
            "seconds_per_validation_image": round(seg_seconds, 3),
            "command": recipe(earlier, "python training/train_nuclei.py " + " ".join(sys.argv[1:])),
            "machine": "2-core CPU, no GPU",
        }
    )
    model.save(args.out)
    print(f"saved to {args.out}")


if __name__ == "__main__":
    main()
