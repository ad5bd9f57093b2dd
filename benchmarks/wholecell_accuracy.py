"""Whole-cell accuracy on held-out images: single-channel model vs two-channel vs classical.

For every test image (never used for training or for choosing settings):

* ``wholecell``  -- the single-channel model (one channel in);
* ``two-channel`` -- the automatic two-channel segmenter (the same channel + the nuclear stain);
* ``classical``  -- cellscape's threshold + distance-watershed baseline on the single channel.

Scores against the ground-truth whole-cell masks: SM similarity (Al-Kofahi et al., k = 0.6:
mean S per cell, and the fraction of cells with S >= 0.6) and AP at IoU 0.5; pixel ROC AUC and
accuracy at 0.5 of the model's nucleus and cell maps. Prints medians over images and writes a
JSON table, an overlay figure and the ROC plot.

    /tmp/heavy .venv/bin/python benchmarks/wholecell_accuracy.py synthetic hela
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from cellscape import io  # noqa: E402
from cellscape.methods.classical import Classical  # noqa: E402
from cellscape.metrics import average_precision, sm_similarity  # noqa: E402
from cellscape.models import load_model  # noqa: E402
from cellscape.roc import pixel_roc, plot_roc  # noqa: E402
from cellscape.twochannel import from_working_scale  # noqa: E402
from cellscape.viz import outline_overlay  # noqa: E402
from wholecell_data import (  # noqa: E402
    SYNTH_TEST,
    hela_split,
    hela_two_channel,
    synthetic_images,
    synthetic_item,
    synthetic_two_channel,
)


def scores(gt, pred) -> dict:
    sm = sm_similarity(gt, pred)
    return {
        "sm": float(sm.mean),
        "sm_fraction": float(sm.fraction),
        "ap50": float(average_precision(gt, pred, 0.5)),
        "n_pred": int(len(np.unique(pred)) - 1),
        "n_gt": int(len(np.unique(gt)) - 1),
    }


def evaluate(name: str, items, model, two_channel, out: Path, figures: Path | None):
    rows = {"wholecell": [], "two-channel": [], "classical": []}
    roc_data = {"nucleus": ([], []), "cell": ([], [])}
    nuclei_ap = []
    for k, it in enumerate(items):
        meta = io.ImageMeta(axes="YX", pixel_size=it.pixel_size)
        image = it.image.astype(np.float32)
        t = time.perf_counter()
        maps, intensity = model.predict_working(image, meta)
        cells, nuclei = model.labels_from_maps(maps, intensity)
        cells = from_working_scale(cells, image.shape, labels=True)
        nuclei = from_working_scale(nuclei, image.shape, labels=True)
        seconds = time.perf_counter() - t
        rows["wholecell"].append({**scores(it.labels, cells), "seconds": seconds})
        prob = np.stack([from_working_scale(m, image.shape) for m in maps])
        # nucleus truth: the drawn nuclei where there are any (synthetic), else the targets
        # (HeLa: the two-channel segmenter's nuclei from the nuclear stain)
        if getattr(it, "nuclei_labels", None) is not None:
            truth_nuclei = it.nuclei_labels > 0
        elif it.targets is not None:
            truth_nuclei = it.targets[0] > 0.5
        else:
            truth_nuclei = None
        if truth_nuclei is not None:
            roc_data["nucleus"][0].append(prob[0][::2, ::2].ravel())
            roc_data["nucleus"][1].append(truth_nuclei[::2, ::2].ravel())
        roc_data["cell"][0].append((prob[0] + prob[1])[::2, ::2].ravel())
        roc_data["cell"][1].append((it.labels > 0)[::2, ::2].ravel())
        if getattr(it, "nuclei_labels", None) is not None:
            nuclei_ap.append(float(average_precision(it.nuclei_labels, nuclei, 0.5)))
        t = time.perf_counter()
        two = two_channel.segment(image, it.nuclear.astype(np.float32), it.pixel_size)
        rows["two-channel"].append(
            {**scores(it.labels, two.cells), "seconds": time.perf_counter() - t}
        )
        t = time.perf_counter()
        classical = Classical().segment(image)
        rows["classical"].append(
            {**scores(it.labels, classical), "seconds": time.perf_counter() - t}
        )
        if figures is not None and k == 0:
            panels = [
                outline_overlay(image, cells),
                outline_overlay(image, two.cells),
                outline_overlay(image, classical),
                outline_overlay(image, it.labels),
            ]
            h = min(p.shape[0] for p in panels)
            w = min(p.shape[1] for p in panels)
            crop = [p[: min(h, 512), : min(w, 512)] for p in panels]
            io.write_png(figures / f"wholecell_{name}_overlay.png", np.concatenate(crop, 1))
        print(
            f"  {it.name}: "
            + ", ".join(
                f"{m} SM {r[-1]['sm']:.3f} AP {r[-1]['ap50']:.3f}" for m, r in rows.items()
            ),
            flush=True,
        )
    curves = {
        k: pixel_roc(np.concatenate(v[1]), np.concatenate(v[0]))
        for k, v in roc_data.items()
        if v[0]
    }
    if figures is not None:
        plot_roc(curves, figures / f"wholecell_{name}_roc.png", f"{name}: held-out pixels")
    summary = {}
    print(f"{name}: {len(items)} held-out images (median over images)")
    print(f"  {'method':12s} {'SM mean':>8s} {'SM>=0.6':>8s} {'AP@0.5':>8s} {'s/img':>7s}")
    for m, r in rows.items():
        med = {k: float(np.median([x[k] for x in r])) for k in ("sm", "sm_fraction", "ap50")}
        med["seconds"] = float(np.median([x["seconds"] for x in r]))
        summary[m] = med
        print(
            f"  {m:12s} {med['sm']:8.3f} {med['sm_fraction']:8.3f} {med['ap50']:8.3f} "
            f"{med['seconds']:7.2f}"
        )
    base = summary["classical"]
    for key in ("sm", "ap50"):
        if base[key] > 0:
            print(f"  wholecell / classical {key}: {summary['wholecell'][key] / base[key]:.2f}x")
        else:
            print(f"  wholecell / classical {key}: n/a (classical scores 0)")
    for k, c in curves.items():
        print(f"  pixel ROC {k}: AUC {c.auc:.3f}, accuracy@0.5 {c.accuracy:.3f}")
    if nuclei_ap:
        print(f"  wholecell nuclei AP@0.5 (median): {np.median(nuclei_ap):.3f}")
    result = {
        "images": [it.name for it in items],
        "summary": summary,
        "per_image": rows,
        "roc": {k: c.summary() for k, c in curves.items()},
        "nuclei_ap50": nuclei_ap,
    }
    io.write_json(out / f"wholecell_{name}.json", result)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", nargs="+", choices=["synthetic", "hela"])
    parser.add_argument("--root", type=Path, default=ROOT / ".." / "shared" / "data")
    parser.add_argument("--synthetic-model", default=str(ROOT / "runs/wholecell_synthetic/model"))
    parser.add_argument("--hela-model", default=str(ROOT / "runs/wholecell_hela/model"))
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/out")
    parser.add_argument("--figures", type=Path, default=ROOT / "docs/images")
    args = parser.parse_args()
    if "synthetic" in args.data:
        items = synthetic_images(SYNTH_TEST)
        for it, seed in zip(items, SYNTH_TEST, strict=True):
            it.nuclei_labels = synthetic_item(seed).nuclei_labels
            it.targets = None
        model = load_model(args.synthetic_model)
        print(f"synthetic model {args.synthetic_model}: filters {model.filters}")
        evaluate("synthetic", items, model, synthetic_two_channel(), args.out, args.figures)
    if "hela" in args.data:
        items = hela_split(args.root)["test"]
        model = load_model(args.hela_model)
        print(f"HeLa model {args.hela_model}: filters {model.filters}")
        evaluate("hela", items, model, hela_two_channel(), args.out, args.figures)


if __name__ == "__main__":
    main()
