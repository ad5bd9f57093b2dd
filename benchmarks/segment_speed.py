"""End-to-end speed of `cellscape segment` models on one 1024 x 1024 image.

Times `model.segment(image)` (normalisation, network, post-processing) for each model named on
the command line, median of --repeats runs after one warm-up, on a 1024 x 1024 DSB2018
validation image when one exists, else a synthetic nuclei image.

With ``--stardist-model DIR`` (a model trained by benchmarks/peers/train_stardist.py), the same
image is also timed through StarDist 2D in its own environment (benchmarks/peers/envs/stardist,
``benchmarks/peers/time_stardist.py``), in the same run, for a side-by-side figure.

Usage: python benchmarks/segment_speed.py [MODEL ...] [--repeats 5] [--stardist-model DIR]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE.parents[1] / "shared" / "data" / "dsb2018" / "train"
STARDIST_PYTHON = HERE / "peers" / "envs" / "stardist" / "bin" / "python"


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
    parser.add_argument("--stardist-model", type=Path, help="also time this StarDist model")
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
    if args.stardist_model:
        time_stardist(args.stardist_model, meta, args.repeats)


def time_stardist(model: Path, meta, repeats: int) -> None:
    if meta is None or not meta.source:
        raise SystemExit("StarDist is timed on the DSB2018 image file; it was not found")
    if not STARDIST_PYTHON.exists():
        raise SystemExit(f"{STARDIST_PYTHON} missing: run bash benchmarks/peers/build.sh")
    command = [str(STARDIST_PYTHON), str(HERE / "peers" / "time_stardist.py")]
    command += ["--model", str(model), "--image", str(meta.source), "--repeats", str(repeats)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"StarDist timing failed: {done.stderr.strip().splitlines()[-1:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    print(
        f"{'stardist':>12}: median {result['median_seconds']:.3f} s over {repeats} runs "
        f"(min {result['min_seconds']:.3f}), {result['n_objects']} cells ({model})"
    )


if __name__ == "__main__":
    main()
