"""Label-free marker-controlled segmentation on DeepCell 2016 phase + nuclear images.

For one held-out image per collection (HeLa_joint/set3, 3T3/set3, MCF10A, RAW40X/set3) it runs,
in the same process and on the same markers:

* ``classical``       cellscape's classical method on the phase channel (no markers);
* ``watershed``       nuclei-seeded watershed on the phase gradient inside the graph-cut mask
                      (CellProfiler-like baseline);
* ``selfsup``         the self-supervised U-Net, nuclear-image DoG markers, beta = 15;
* ``selfsup_beta0``   the same without the foreground mask (beta = 0);
* ``selfsup_synth``   markers from synthetic nuclei predicted from the phase image by a U-Net
                      trained on the (phase, nuclear) pairs of set1 and set2 of the same
                      collection (MCF10A has one image: no synthetic-nucleus run);
* ``watershed_synth`` the baseline on the synthetic-nucleus markers.

The cell masks (feature_0/1) are read ONLY to score (matched mIoU, mean best IoU, AP@0.5) and to
rate the markers; nothing is tuned on them. Results go to OUT/<image>__<condition>.json (the
script resumes), a summary to OUT/summary.csv, overlays to OUT/*.png.

Usage: python benchmarks/selfsup_deepcell.py [--data DIR] [--out DIR] [--steps N] [--only NAME]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from selfsup_common import (  # noqa: E402
    DEFAULT_DATA,
    HERE,
    cell_marker_rates,
    deepcell_images,
    scores,
    seeded_watershed,
)

TEST = {"HeLa_joint/set3", "3T3/set3", "MCF10A", "RAW40X/set3"}
TRAIN_NUCLEI = {"HeLa_joint": ("set1", "set2"), "3T3": ("set1", "set2"), "RAW40X": ("set1", "set2")}
#: µm per pixel assumed for the 15 µm marker pairing (not recorded in the files)
PIXEL_SIZE = 0.65


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--out", type=Path, default=HERE / "out" / "selfsup_deepcell")
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--nucleus-steps", type=int, default=200)
    ap.add_argument("--only", action="append", default=None)
    args = ap.parse_args()
    threads = int(os.environ.get("CELLSCAPE_THREADS", "0")) or None

    from cellscape import io
    from cellscape.markers import SyntheticNuclei, marker_errors
    from cellscape.methods.classical import Classical
    from cellscape.methods.selfsup import SelfSupervised
    from cellscape.viz import outline_overlay

    args.out.mkdir(parents=True, exist_ok=True)
    data = {name: (line, img, meta, gt) for name, line, img, meta, gt in deepcell_images(args.data)}
    tests = sorted(n for n in TEST if n in data and (not args.only or n in args.only))

    def done(key):
        return (args.out / f"{key}.json").exists()

    def record(key, row):
        io.write_json(args.out / f"{key}.json", row)
        print(json.dumps(row), flush=True)

    for name in tests:
        line, image, meta, gt = data[name]
        phase, nuclear = image[0], image[1]
        tag = name.replace("/", "_")
        cells_only = meta.with_(channel_names=("phase", "nuclear"))
        base = SelfSupervised(foreground="texture", steps=args.steps, channel=0)
        markers = base._dog(nuclear)
        from cellscape.markers import estimate_nucleus_diameter

        diameter = estimate_nucleus_diameter(nuclear)
        mk_rates = cell_marker_rates(markers, gt)
        mask = base.area_mask(phase)

        if not done(f"{tag}__classical"):
            t = time.perf_counter()
            lab = Classical(channel=0).segment(image, meta)
            record(
                f"{tag}__classical",
                {"image": name, "condition": "classical", "seconds": time.perf_counter() - t}
                | scores(gt, lab),
            )
        if not done(f"{tag}__watershed"):
            t = time.perf_counter()
            lab = seeded_watershed(phase, markers, mask, nuclear)
            row = {"image": name, "condition": "watershed", "seconds": time.perf_counter() - t}
            record(f"{tag}__watershed", row | scores(gt, lab) | mk_rates)
        for cond, beta in (("selfsup", 15.0), ("selfsup_beta0", 0.0)):
            if done(f"{tag}__{cond}"):
                continue
            model = SelfSupervised(foreground="texture", steps=args.steps, beta=beta)
            t = time.perf_counter()
            model.fit(image, None, cells_only, markers=markers, progress=False, threads=threads)
            fit_s = time.perf_counter() - t
            lab = model.segment(image, cells_only, markers=markers)
            row = {
                "image": name,
                "condition": cond,
                "seconds": time.perf_counter() - t,
                "fit_seconds": fit_s,
                "scale": model.scale_,
                "steps": model.info_["steps"],
                "patches_seen": model.info_["patches_seen"],
            }
            record(f"{tag}__{cond}", row | scores(gt, lab) | mk_rates)
            io.write_png(args.out / f"{tag}__{cond}.png", outline_overlay(image, lab, meta))
            if cond == "selfsup":
                model.save(args.out / f"model_{tag}")

        # synthetic nuclei: trained on other images of the same collection
        if line not in TRAIN_NUCLEI:
            continue
        if done(f"{tag}__selfsup_synth") and done(f"{tag}__watershed_synth"):
            continue
        nuc_folder = args.out / f"nuclei_{line}"
        if (nuc_folder / "config.json").exists():
            nuc_model = SyntheticNuclei.load(nuc_folder)
        else:
            pairs = [data[f"{line}/{s}"] for s in TRAIN_NUCLEI[line]]
            nuc_model = SyntheticNuclei(steps=args.nucleus_steps, nucleus_diameter=diameter)
            t = time.perf_counter()
            nuc_model.fit(
                [p[1][0] for p in pairs], [p[1][1] for p in pairs], progress=False, threads=threads
            )
            nuc_model.info_["fit_seconds"] = time.perf_counter() - t
            nuc_model.save(nuc_folder)
        synth = nuc_model.markers(phase)
        true_nuc = markers  # the nuclei as the real stain shows them
        err = marker_errors(synth, true_nuc, 15.0, PIXEL_SIZE)
        synth_rates = cell_marker_rates(synth, gt)
        synth_info = {
            "synth_fn_rate_vs_stain": err.fn_rate,
            "synth_fp_rate_vs_stain": err.fp_rate,
            "n_synth": err.n_pred,
            "n_stain": err.n_true,
            "pair_px": err.max_distance_px,
        }
        io.write_png(
            args.out / f"{tag}__synthetic_nuclei.png",
            (np.clip(nuc_model.predict_proba(phase), 0, 1) * 255).astype(np.uint8),
        )
        if not done(f"{tag}__watershed_synth"):
            lab = seeded_watershed(phase, synth, mask, nuc_model.predict_proba(phase))
            row = {"image": name, "condition": "watershed_synth"}
            record(f"{tag}__watershed_synth", row | scores(gt, lab) | synth_rates | synth_info)
        if not done(f"{tag}__selfsup_synth"):
            model = SelfSupervised(foreground="texture", steps=args.steps)
            t = time.perf_counter()
            row = {"image": name, "condition": "selfsup_synth"}
            if len(synth):
                model.fit(image, None, cells_only, markers=synth, progress=False, threads=threads)
                lab = model.segment(image, cells_only, markers=synth)
                row |= {"seconds": time.perf_counter() - t, "scale": model.scale_}
            else:  # no synthetic nucleus found: nothing segmented
                lab = np.zeros(gt.shape, np.int32)
            record(f"{tag}__selfsup_synth", row | scores(gt, lab) | synth_rates | synth_info)
            io.write_png(args.out / f"{tag}__selfsup_synth.png", outline_overlay(image, lab, meta))
    summarize(args.out)


def summarize(out: Path) -> None:
    import pandas as pd

    rows = [json.loads(p.read_text()) for p in sorted(out.glob("*__*.json"))]
    if not rows:
        return
    table = pd.DataFrame(rows)
    table.to_csv(out / "summary.csv", index=False)
    cols = [c for c in ("miou", "mean_best_iou", "ap50", "n_gt", "n_pred") if c in table]
    with pd.option_context("display.width", 160, "display.max_columns", 20):
        print(table.pivot_table(index="image", columns="condition", values="ap50").round(3))
        print(table.pivot_table(index="image", columns="condition", values="miou").round(3))
        print(table.groupby("condition")[cols].mean().round(3))


if __name__ == "__main__":
    main()
