"""Label-free segmentation on a synthetic whole-cell image: nuclear markers with and without the
foreground mask, synthetic-nucleus markers, and the nuclei-seeded watershed baseline.

The synthetic-nucleus U-Net is trained on two other synthetic (cell, nucleus) image pairs
(different seeds); its markers are rated against the true nuclei (pairs within 15 µm).

Usage: python benchmarks/selfsup_synthetic.py [--size 512] [--steps 200] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from selfsup_common import HERE, scores, seeded_watershed  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--nucleus-steps", type=int, default=200)
    ap.add_argument("--out", type=Path, default=HERE / "out" / "selfsup_synthetic")
    args = ap.parse_args()

    from cellscape import io, synthetic
    from cellscape.markers import SyntheticNuclei, dog_markers, marker_errors
    from cellscape.methods.selfsup import SelfSupervised
    from cellscape.viz import outline_overlay

    threads = int(os.environ.get("CELLSCAPE_THREADS", "0")) or None
    args.out.mkdir(parents=True, exist_ok=True)
    n = int(90 * (args.size / 512) ** 2)
    test = synthetic.whole_cells((args.size, args.size), n, seed=100)
    train = [synthetic.whole_cells((args.size, args.size), n, seed=s) for s in (200, 201)]
    image = np.stack([test.image, test.nuclear_image])
    meta = io.ImageMeta(axes="CYX", channel_names=("cell", "nuclear"))
    px = test.pixel_size
    rows = []

    nuclear = dog_markers(test.nuclear_image)
    nuc_model = SyntheticNuclei(steps=args.nucleus_steps)
    nuc_model.fit([t.image for t in train], [t.nuclear_image for t in train], threads=threads)
    synth = nuc_model.markers(test.image)
    for name, pts in (("nuclear image (DoG)", nuclear), ("synthetic nuclei", synth)):
        err = marker_errors(pts, test.nuclei_labels, 15.0, px)
        rows.append({"markers": name} | err.as_dict())
    mask = SelfSupervised().area_mask(test.image)
    results = {"markers": rows, "n_cells": int(test.labels.max())}
    prob = nuc_model.predict_proba(test.image)
    results["watershed"] = scores(
        test.labels, seeded_watershed(test.image, nuclear, mask, test.nuclear_image)
    )
    results["watershed_synth"] = scores(
        test.labels, seeded_watershed(test.image, synth, mask, prob)
    )
    for cond, beta, pts in (
        ("selfsup", 15.0, nuclear),
        ("selfsup_beta0", 0.0, nuclear),
        ("selfsup_synth", 15.0, synth),
    ):
        model = SelfSupervised(beta=beta, steps=args.steps)
        model.fit(image, None, meta, markers=pts, progress=False, threads=threads)
        lab = model.segment(image, meta, markers=pts)
        results[cond] = scores(test.labels, lab) | {"fit_seconds": model.info_["fit_seconds"]}
        io.write_png(args.out / f"{cond}.png", outline_overlay(image, lab, meta))
        print(cond, results[cond], flush=True)
    io.write_json(args.out / "results.json", results)
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
