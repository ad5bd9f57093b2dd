"""Whole mammalian cells from phase + nuclear on held-out DeepCell 2016 images, model by model.

    python benchmarks/cells_heldout.py [--task cells|ecoli] [--model NAME=MODEL ...] [--data DIR]

Every model (a bundled name or a model folder; default: the bundled ``cells-phase-nuclear``
U-Net and ``cells-phase-nuclear-convnet``, the DeepCell 2016 conv-net + active contours it
replaced) segments the held-out images of ``SPLITS["cells"]`` (benchmarks/convnet_common.py:
HeLa_joint/set4 and set5, 3T3/set3, RAW40X/set3, the bottom halves of MCF10A and BMDM), which
no model learned from. Prints per set and pooled: AP@0.5 (TP / (TP + FP + FN)), the per-cell
Jaccard of cells matched at IoU >= 0.5, the DSB2018 score, AJI and seconds per image. Writes
benchmarks/out/cells_heldout.json and docs/images/cells_heldout.png (outlines of each model on
a crop of the first HeLa and the 3T3 held-out image, then the ground truth). ``--task ecoli``
does the same for E. coli in phase contrast (``SPLITS["ecoli"]``; default models: the bundled
``ecoli-phase`` U-Net of ``training/train_cells_unet.py --task ecoli`` and the conv-net
ensemble ``ecoli-phase-convnet``), writing ``ecoli_heldout.json`` / ``.png``.

The ground truth of 3T3/set3 is partly broken: 163 of its 361 objects are smaller than
``FRAGMENT_AREA`` pixels, slivers of the interior annotation between cells (a HeLa cell here
covers about 2,800 px). The pooled scores are therefore printed twice: over all held-out images,
and over the images whose ground truth is at most 10% such fragments.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from cellscape import metrics  # noqa: E402
from cellscape.models import load_model  # noqa: E402
from cellscape.viz import outline_overlay  # noqa: E402
from convnet_common import ROOT, SPLITS, check_split, data_root, load_sets  # noqa: E402

#: per task: default models and the held-out images of the figure (crop, or None: a quarter)
TASKS = {
    "cells": (
        ["unet=cells-phase-nuclear", "convnet=cells-phase-nuclear-convnet"],
        {"HeLa_joint/set4": (slice(200, 600), slice(300, 700)), "3T3/set3": None},
    ),
    "ecoli": (
        ["unet=ecoli-phase", "convnet=ecoli-phase-convnet"],
        {"ecoli/set2": (slice(0, 300), slice(0, 300)), "ecoli_kc/set2": None},
    ),
}
KEYS = ("ap@0.5", "jaccard", "dsb2018", "aji", "seconds")
#: ground-truth objects smaller than this (pixels) are annotation fragments, not cells (for
#: mammalian cells only: bacteria are that small)
FRAGMENT_AREA = 300


def image_row(gt: np.ndarray, row: dict, seconds: float) -> dict:
    """What the benchmark shows of one image's :func:`cellscape.metrics.image_scores`."""
    areas = np.bincount(gt.ravel())[1:]
    areas = areas[areas > 0]
    return {
        "n_gt": int(row["n_gt"]),
        "gt_fragments": int((areas < FRAGMENT_AREA).sum()),
        "ap@0.5": float(row["ap@0.5"]),
        # mean IoU of the cells matched at IoU >= 0.5 (the conv-net benchmark's Jaccard)
        "jaccard": float(row["jaccard_mean"]) if row["n_matched"] else 0.0,
        "dsb2018": float(row["dsb2018"]),
        "aji": float(row["aji"]),
        "seconds": seconds,
    }


def pooled(rows: list[dict], scores: list[dict]) -> dict:
    """Means over images of the shown ``rows``, and the pooled AP@0.5 and cell count of their
    ``image_scores`` (by :func:`cellscape.metrics.summarize`)."""
    summary = metrics.summarize(scores)
    out = {k: float(np.mean([r[k] for r in rows])) for k in KEYS}
    out["ap_pooled@0.5"] = float(summary["ap_pooled@0.5"])
    out["n_gt"] = int(summary["n_gt"])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data", default=None)
    ap.add_argument("--task", choices=tuple(TASKS), default="cells")
    ap.add_argument("--model", action="append", help="NAME=MODEL (bundled name or folder)")
    args = ap.parse_args()
    root = data_root(args.data)
    check_split(root)
    channels, _, held = SPLITS[args.task]
    default_models, figure_sets = TASKS[args.task]
    specs = [m.split("=", 1) for m in (args.model or default_models)]
    models = {name: load_model(path) for name, path in specs}
    sets = load_sets(root, held, channels)

    results: dict = {"held_out": held, "models": dict(specs), "per_set": {}, "all": {}}
    panels = []
    for label, model in models.items():
        rows, scores = [], []
        for name, image, meta, _features, gt in sets:
            t0 = time.perf_counter()
            pred = model.segment(image, meta)
            seconds = time.perf_counter() - t0
            scores.append(metrics.image_scores(gt, pred))
            row = image_row(gt, scores[-1], seconds)
            fragments = (
                f"({row['gt_fragments']} < {FRAGMENT_AREA} px) " if args.task == "cells" else ""
            )
            rows.append(row)
            results["per_set"].setdefault(name, {})[label] = row
            print(
                f"{label:10s} {name:18s} cells {row['n_gt']:4d} {fragments}"
                f"AP@0.5 {row['ap@0.5']:.3f} Jaccard {row['jaccard']:.3f} "
                f"DSB {row['dsb2018']:.3f} AJI {row['aji']:.3f} {row['seconds']:.1f} s",
                flush=True,
            )
            if name in figure_sets:
                panels.append((name, label, outline_overlay(image, pred, meta)))
        results["all"][label] = pooled(rows, scores)
        if args.task == "cells":
            keep = [i for i, r in enumerate(rows) if r["gt_fragments"] <= 0.1 * r["n_gt"]]
            results.setdefault("clean_gt", {})[label] = pooled(
                [rows[i] for i in keep], [scores[i] for i in keep]
            )
    for which in ("all", "clean_gt")[: 2 if args.task == "cells" else 1]:
        for label, row in results[which].items():
            print(
                f"{label:10s} {which} ({row['n_gt']} cells): AP@0.5 pooled "
                f"{row['ap_pooled@0.5']:.3f} per image {row['ap@0.5']:.3f} Jaccard "
                f"{row['jaccard']:.3f} DSB {row['dsb2018']:.3f} AJI {row['aji']:.3f} "
                f"{row['seconds']:.1f} s/image"
            )

    picture = ROOT / "docs" / "images" / f"{args.task}_heldout.png"
    figure(sets, panels, results, figure_sets, picture)

    out = ROOT / "benchmarks" / "out" / f"{args.task}_heldout.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1))
    print(f"written {out} and {picture}")


def figure(sets, panels, results: dict, figure_sets: dict, path: Path) -> None:
    """One row per figure image (a crop): each model's outlines with its AP@0.5 on the whole
    image, then the ground truth."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n_cols = 1 + len({label for _, label, _ in panels})
    fig, axes = plt.subplots(
        len(figure_sets), n_cols, figsize=(4 * n_cols, 4 * len(figure_sets)), squeeze=False
    )
    for row, (name, crop) in enumerate(figure_sets.items()):
        _, image, meta, _, gt = next(s for s in sets if s[0] == name)
        if crop is None:  # a quarter of the image keeps the outlines readable
            crop = (slice(0, gt.shape[0] // 2), slice(0, gt.shape[1] // 2))
        shown = [
            (f"{label}: AP@0.5 {results['per_set'][name][label]['ap@0.5']:.2f}", p)
            for n, label, p in panels
            if n == name
        ]
        shown.append(("ground truth", outline_overlay(image, gt, meta)))
        for col, (title, picture) in enumerate(shown):
            ax = axes[row, col]
            ax.imshow(picture[crop])
            ax.set_title(f"{name}, {title}" if col == 0 else title, fontsize=9)
            ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


if __name__ == "__main__":
    main()
