"""Time StarDist 2D prediction on one image (for benchmarks/segment_speed.py's side-by-side run).

Runs inside benchmarks/peers/envs/stardist:

    benchmarks/peers/envs/stardist/bin/python benchmarks/peers/time_stardist.py \
        --model benchmarks/out/peers/stardist/model --image PATH_img.tif [--repeats 5]

Loads a trained StarDist model folder (``<model>/stardist`` as written by train_stardist.py,
with its optimised thresholds), warms it up on the image, then prints one JSON line with the
median and minimum of ``--repeats`` timed ``predict_instances`` calls on the image, percentile
normalisation included (as in train_stardist.py), file reading excluded. Prediction time
depends on the network (fixed by the configuration) and on the number of candidate polygons
that survive the probability threshold, so use a trained model for the figure that counts.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import peer_common as pc  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True, help="folder holding stardist/")
    parser.add_argument("--image", type=Path, required=True)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    for var in ("OMP_NUM_THREADS", "TF_NUM_INTRAOP_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    os.environ["TF_NUM_INTEROP_THREADS"] = "1"
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    import tensorflow as tf
    import tifffile
    from csbdeep.utils import normalize
    from stardist.models import StarDist2D

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    if not (args.model / "stardist" / "config.json").exists():
        raise SystemExit(f"{args.model}: no stardist/config.json (train it first)")
    model = StarDist2D(None, name="stardist", basedir=str(args.model))
    image = pc.to_grey(tifffile.imread(args.image))

    def run():
        return model.predict_instances(normalize(image, 1, 99.8, axis=(0, 1)))[0]

    run()  # warm-up: the first call builds the graph
    times = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        labels = run()
        times.append(time.perf_counter() - t0)
    print(
        json.dumps(
            {
                "median_seconds": statistics.median(times),
                "min_seconds": min(times),
                "n_objects": int(labels.max()),
                "thresholds": {"prob": model.thresholds.prob, "nms": model.thresholds.nms},
            }
        )
    )


if __name__ == "__main__":
    main()
