"""End-to-end speed of `cellscape segment` models on one 1024 x 1024 image.

Times `model.segment(image)` (normalisation, network, post-processing) for each model named on
the command line, median of --repeats runs after one warm-up, on a 1024 x 1024 DSB2018
validation image when one exists, else a synthetic nuclei image.

Usage: python benchmarks/segment_speed.py [MODEL ...] [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "dsb2018" / "train"


def test_image():
    from cellscape import synthetic
    from cellscape.datasets import dsb2018_split

    if DATA.exists():
        for pair in dsb2018_split(DATA)[1]:
            image, meta, _ = pair.load()
            if image.shape[-2:] == (1024, 1024):
                return image, meta, f"DSB2018 validation image {pair.id[:12]}"
    return synthetic.nuclei((1024, 1024), n_nuclei=400, seed=0).image, None, "synthetic nuclei"


def main() -> None:
    from cellscape.models import load_model

    parser = argparse.ArgumentParser()
    parser.add_argument("models", nargs="*", default=["classical", "nuclei"])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    image, meta, what = test_image()
    print(f"image: {what}, shape {image.shape}")
    for name in args.models:
        model = load_model(name)
        model.segment(image, meta)  # warm-up: imports, thread pools, first-call allocations
        times = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            labels = model.segment(image, meta)
            times.append(time.perf_counter() - t0)
        print(
            f"{name:>12}: median {statistics.median(times):.3f} s over {args.repeats} runs "
            f"(min {min(times):.3f}), {labels.max()} cells"
        )


if __name__ == "__main__":
    main()
