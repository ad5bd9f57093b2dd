"""Conv-nets (DeepCell 2016) on held-out DeepCell images, next to the classical baseline.

    /tmp/heavy .venv/bin/python benchmarks/convnet_heldout.py [--data DIR] [--models runs/convnet]

Needs the models of ``training/train_convnet.py``. Prints, per task, the mean per-cell Jaccard
and Dice of matched cells (IoU >= 0.5), AP at IoU 0.5, the E. coli merge error rate, the ensemble
against its first member, the U-Net against the windowed net on E. coli, and the cell-type
accuracy of the 3T3 / MCF10A co-culture. Writes benchmarks/out/convnet_heldout.json and overlay
pictures to docs/images/convnet_*.png.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from cellscape import io, metrics  # noqa: E402
from cellscape.methods.classical import Classical  # noqa: E402
from cellscape.methods.convnet import ConvNet  # noqa: E402
from cellscape.viz import outline_overlay  # noqa: E402
from convnet_common import (  # noqa: E402
    ROOT,
    SPLITS,
    check_split,
    data_root,
    load_sets,
    merge_error_rate,
)


def scores(gt, pred) -> dict:
    j, d = metrics.matched_jaccard_dice(gt, pred, 0.5)
    return {
        "n_gt": int(len(np.unique(gt)) - 1),
        "n_pred": int(len(np.unique(pred)) - 1),
        "jaccard": float(np.mean(j)) if len(j) else 0.0,
        "dice": float(np.mean(d)) if len(d) else 0.0,
        "ap50": float(metrics.average_precision(gt, pred, 0.5)),
        "merge_error": merge_error_rate(gt, pred),
    }


def mean_rows(rows: list[dict]) -> dict:
    keys = [k for k in rows[0] if isinstance(rows[0][k], float)]
    out = {k: float(np.nanmean([r[k] for r in rows])) for k in keys}
    out["n_gt"] = int(sum(r["n_gt"] for r in rows))
    return out


def show(task: str, name: str, row: dict) -> None:
    print(
        f"{task:7s} {name:22s} cells {row['n_gt']:4d}  Jaccard {row['jaccard']:.3f}  "
        f"Dice {row['dice']:.3f}  AP@0.5 {row['ap50']:.3f}  merge err {row['merge_error']:.3f}"
    )


def save_overlay(name: str, image, meta, labels, crop=None, gt=None) -> None:
    """Outlines of ``labels`` (left) and, with ``gt``, of the ground truth (right)."""
    rgb = outline_overlay(image, labels, meta)
    if crop is not None:
        rgb = rgb[crop]
    if gt is not None:
        right = outline_overlay(image, gt, meta)
        right = right[crop] if crop is not None else right
        gap = np.full((rgb.shape[0], 6, 3), 255, np.uint8)
        rgb = np.concatenate([rgb, gap, right], 1)
    io.write_png(ROOT / "docs" / "images" / f"convnet_{name}.png", np.ascontiguousarray(rgb))


def segment_task(task: str, models: Path, root: Path, results: dict) -> None:
    channels, train, held = SPLITS[task]
    model = ConvNet.load(models / task)
    train_data = load_sets(root, train, channels)
    classical_channel = "phase" if "phase" in channels else channels[0]
    baseline = Classical(channel=classical_channel).fit(
        [d[1] for d in train_data], [d[4] for d in train_data], [d[2] for d in train_data]
    )
    del train_data
    rows: dict[str, list] = {"convnet": [], "classical": []}
    extra: dict[str, list] = {}
    if task == "ecoli" and model.n_models > 1:
        single = ConvNet.load(models / task)
        single.nets_ = single.nets_[:1]
        single.n_models = 1
        extra["convnet, 1 net"] = [single]
    if task == "ecoli" and (models / "unet-ecoli").is_dir():
        from cellscape.methods.unet import UNetSegmenter

        extra["U-Net"] = [UNetSegmenter.load(models / "unet-ecoli")]
    for name, image, meta, _features, gt in load_sets(root, held, channels):
        t0 = time.perf_counter()
        pred = model.segment(image, meta)
        seconds = time.perf_counter() - t0
        rows["convnet"].append({**scores(gt, pred), "seconds": seconds})
        rows["classical"].append(scores(gt, baseline.segment(image, meta)))
        for label, (other,) in extra.items():
            other_pred = other.segment(image[0]) if label == "U-Net" else other.segment(image, meta)
            rows.setdefault(label, []).append(scores(gt, other_pred))
        if name == held[-1]:
            crop = (slice(0, 300), slice(0, 300))
            if task == "ecoli":
                crop = (slice(300, 600), slice(300, 600))
            save_overlay(task, image, meta, pred, crop, gt=gt)
            if task == "ecoli":  # the three softmax maps as red (edge), green, blue
                proba = model.predict_proba(image, meta)
                rgb = (np.stack([proba[1], proba[2], proba[0]], -1) * 255).astype(np.uint8)
                io.write_png(
                    ROOT / "docs" / "images" / "convnet_ecoli_proba.png",
                    np.ascontiguousarray(rgb[crop]),
                )
    results[task] = {k: mean_rows(v) for k, v in rows.items()}
    results[task]["held_out"] = held
    for k, v in results[task].items():
        if k != "held_out":
            show(task, k, v)


def cell_types(models: Path, root: Path, results: dict) -> None:
    channels, _, held = SPLITS["types"]
    name = "types_snakes" if (models / "types_snakes").is_dir() else "types"
    model = ConvNet.load(models / name)
    print(f"types: model {models / name}")
    gt_correct = gt_total = seg_correct = seg_total = 0
    per_set = {}
    for name, image, meta, features, gt in load_sets(root, held, channels):
        proba = model.predict_proba(image, meta)
        # true type of every GT cell: the feature mask (1 = 3T3, 2 = MCF10A) covering it most
        n = int(gt.max())
        cover = np.stack(
            [np.bincount(gt.ravel(), weights=features[k].ravel(), minlength=n + 1) for k in (1, 2)]
        )
        truth = np.argmax(cover, 0)[1:]
        # (a) the cellular classification score over the true cells
        on_gt = model.cell_types_from(gt, proba)
        ok_gt = int((on_gt.types == truth).sum())
        # (b) over the cells the model segments itself, matched to true cells at IoU >= 0.5
        nuclei = model.segment_nuclei(image, meta) if model.postprocess == "snakes" else None
        pred = model.labels_from_proba(proba, nuclei)
        own = model.cell_types_from(pred, proba)
        m = metrics.match(gt, pred, 0.5)
        pairs = [(g, p) for g, p in zip(m.gt_ids, m.pred_ids, strict=True)]
        ok_seg = sum(int(own.types[p - 1] == truth[g - 1]) for g, p in pairs)
        gt_correct += ok_gt
        gt_total += n
        seg_correct += ok_seg
        seg_total += len(pairs)
        per_set[name] = {
            "cells": n,
            "accuracy_on_true_cells": ok_gt / max(n, 1),
            "matched_cells": len(pairs),
            "accuracy_on_segmented_cells": ok_seg / max(len(pairs), 1),
        }
        print(f"types   {name:38s} {per_set[name]}")
        if "MCF10A" in name:
            save_overlay("types", image, meta, pred, (slice(0, 300), slice(0, 400)))
    results["types"] = {
        "per_set": per_set,
        "accuracy_on_true_cells": gt_correct / max(gt_total, 1),
        "accuracy_on_segmented_cells": seg_correct / max(seg_total, 1),
        "cells": gt_total,
        "matched_cells": seg_total,
    }
    print(
        f"types   accuracy {results['types']['accuracy_on_true_cells']:.3f} on {gt_total} true "
        f"cells, {results['types']['accuracy_on_segmented_cells']:.3f} on {seg_total} "
        "segmented + matched cells"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data", default=None)
    ap.add_argument("--models", default="runs/convnet")
    ap.add_argument("--tasks", default="ecoli,nuclei,hela,types")
    args = ap.parse_args()
    root = data_root(args.data)
    check_split(root)
    models = Path(args.models)
    out = ROOT / "benchmarks" / "out" / "convnet_heldout.json"
    results = json.loads(out.read_text()) if out.exists() else {}
    for task in args.tasks.split(","):
        if not (models / task).is_dir():
            print(f"{task}: no model in {models / task}, skipped")
            continue
        if task == "types":
            cell_types(models, root, results)
        else:
            segment_task(task, models, root, results)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(results, indent=1))
    print(f"written {out}")


if __name__ == "__main__":
    main()
