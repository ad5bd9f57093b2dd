"""Fit time of the label-free segmentation on one 1750 x 1750 image (target: at most 10 minutes on
the 2-core CPU), plus its accuracy there next to the nuclei-seeded watershed baseline.

The image is a synthetic whole-cell image (cytoplasm + nuclear channel, cellscape.synthetic),
since the DeepCell images are 1080 x 1280 at most. Timed: everything ``fit`` does (DoG markers
from the nuclear channel, graph-cut mask, training) and, separately, ``segment``. Run it on the
quiet machine (``/tmp/quiet``) for the timing that counts.

Usage: python benchmarks/selfsup_speed.py [--size 1750] [--steps 200] [--out DIR]
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
from selfsup_common import HERE, cell_marker_rates, scores, seeded_watershed  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=1750)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--beta", type=float, default=15.0)
    ap.add_argument("--out", type=Path, default=HERE / "out" / "selfsup_speed")
    args = ap.parse_args()

    import torch

    from cellscape import io, synthetic
    from cellscape.markers import dog_markers, marker_errors
    from cellscape.methods.selfsup import SelfSupervised
    from cellscape.viz import outline_overlay

    threads = int(os.environ.get("CELLSCAPE_THREADS", "0")) or None
    args.out.mkdir(parents=True, exist_ok=True)
    n = int(1000 * (args.size / 1750) ** 2)
    s = synthetic.whole_cells((args.size, args.size), n, seed=7)
    image = np.stack([s.image, s.nuclear_image])
    meta = io.ImageMeta(axes="CYX", channel_names=("cell", "nuclear"), pixel_size=s.pixel_size)
    print(f"image {image.shape}, {s.labels.max()} cells, torch threads {torch.get_num_threads()}")

    model = SelfSupervised(steps=args.steps, beta=args.beta)
    t = time.perf_counter()
    model.fit(image, None, meta, threads=threads)
    fit_s = time.perf_counter() - t
    t = time.perf_counter()
    labels = model.segment(image, meta)
    seg_s = time.perf_counter() - t

    markers = dog_markers(s.nuclear_image)
    t = time.perf_counter()
    base = seeded_watershed(s.image, markers, model.area_mask(s.image), s.nuclear_image)
    base_s = time.perf_counter() - t
    err = marker_errors(markers, s.nuclei_labels, 15.0, s.pixel_size)
    row = {
        "size": args.size,
        "n_cells": int(s.labels.max()),
        "n_markers": model.info_["n_markers"],
        "steps": model.info_["steps"],
        "patches_seen": model.info_["patches_seen"],
        "scale": model.scale_,
        "torch_threads": torch.get_num_threads(),
        "fit_seconds": fit_s,
        "segment_seconds": seg_s,
        "baseline_seconds": base_s,
        "selfsup": scores(s.labels, labels),
        "watershed": scores(s.labels, base),
        "dog_marker_fn_rate": err.fn_rate,
        "dog_marker_fp_rate": err.fp_rate,
        "cell_marker_rates": cell_marker_rates(markers, s.labels),
    }
    print(json.dumps(row, indent=1))
    io.write_json(args.out / f"speed_{args.size}_beta{args.beta:g}.json", row)
    crop = (slice(0, 600), slice(0, 600))
    io.write_png(
        args.out / f"overlay_{args.size}.png",
        outline_overlay(image[(slice(None), *crop)], labels[crop], meta),
    )
    print(
        f"fit {fit_s:.0f} s ({fit_s / 60:.1f} min, target <= 10 min), segment {seg_s:.1f} s; "
        f"AP@0.5 selfsup {row['selfsup']['ap50']:.3f} vs watershed {row['watershed']['ap50']:.3f}"
    )


if __name__ == "__main__":
    main()
