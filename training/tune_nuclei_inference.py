"""Choose the inference options of the bundled `nuclei` model on the tune images.

    python training/tune_nuclei_inference.py [--tta] [--validation]

Compares, on the 60 tune images of training/train_nuclei.py (never on the validation split),
segmenting at the image's own scale with segmenting after estimating the nuclei diameter
(``auto_diameter``), optionally with flip test-time augmentation. ``--validation`` then scores
the options on the validation split, for the report only: choose on the tune lines.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from cellscape import metrics
from cellscape.datasets import dsb2018_split, split_ids
from cellscape.models import load_model

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "dsb2018" / "train"


def evaluate(model, pairs) -> tuple[dict, float]:
    rows, seconds = [], 0.0
    for pair in pairs:
        image, meta, truth = pair.load()
        start = time.perf_counter()
        labels = model.segment(image, meta)
        seconds += time.perf_counter() - start
        rows.append(metrics.image_scores(truth, labels))
    return metrics.summarize(rows), seconds / len(pairs)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--tta", action="store_true", help="also try flip averaging (4x time)")
    parser.add_argument("--no-auto", action="store_true", help="skip the diameter estimate")
    parser.add_argument("--validation", action="store_true", help="also score the validation")
    args = parser.parse_args()

    train_pairs, val_pairs = dsb2018_split(args.data)
    _, tune_ids = split_ids([p.id for p in train_pairs], fraction=0.1, salt="cellscape-tune")
    tune = [p for p in train_pairs if p.id in set(tune_ids)]
    autos = [False] if args.no_auto else [False, True]
    options = [{"auto_diameter": a} for a in autos]
    if args.tta:
        options += [{"auto_diameter": a, "tta": True} for a in autos]
    sets = [("tune", tune)] + ([("validation", val_pairs)] if args.validation else [])
    for name, pairs in sets:
        for option in options:
            model = load_model("nuclei", **option)
            s, sec = evaluate(model, pairs)
            print(
                f"{name} ({len(pairs)} images) {option}: AP@0.5 pooled {s['ap_pooled@0.5']:.4f} "
                f"per image {s['ap@0.5']:.4f} DSB {s['dsb2018']:.4f} AJI {s['aji']:.4f} "
                f"{sec:.2f} s/image",
                flush=True,
            )


if __name__ == "__main__":
    main()
