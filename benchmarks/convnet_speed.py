"""Window-by-window vs fully convolutional (dilated) inference: same output, and the speed-up.

    /tmp/quiet .venv/bin/python benchmarks/convnet_speed.py [--data DIR] [--models runs/convnet]

On a 1024 x 1024 image (a held-out E. coli image for the 31 x 31 net, a crop of a held-out HeLa
image for the 61 x 61 net), one net each:

* fully convolutional inference of every pixel, timed (median of 3 runs);
* window-by-window classification (batches of 1024 windows) of a random subset of pixels,
  timed and extrapolated to all 1024 x 1024 pixels (classifying a million windows one by one
  takes tens of minutes on this CPU, so the full run is not done);
* the largest difference between the two on the subset, and on every pixel of a small crop
  (128 x 128 for the 31 net, 64 x 64 for the 61 net).

Writes benchmarks/out/convnet_speed.json.
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

from cellscape.methods.convnet import ConvNet  # noqa: E402
from cellscape.nn.windowed import predict_dense, predict_windows  # noqa: E402
from convnet_common import ROOT, data_root, load_sets  # noqa: E402


def to_size(image: np.ndarray, size: int) -> np.ndarray:
    image = image[:, :size, :size]
    ph, pw = size - image.shape[1], size - image.shape[2]
    return np.pad(image, ((0, 0), (0, ph), (0, pw)), mode="reflect")


def bench(model: ConvNet, image: np.ndarray, meta, subset: int, crop: int) -> dict:
    import torch

    net = model.nets_[0]
    padded = model._input(image, meta)
    h, w = image.shape[1:]
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        dense = predict_dense(net, padded, rows=model.rows)
        times.append(time.perf_counter() - t0)
    rng = np.random.default_rng(0)
    ys, xs = rng.integers(0, h, subset), rng.integers(0, w, subset)
    t0 = time.perf_counter()
    windows = predict_windows(net, padded, ys, xs, batch=1024)
    t_sub = time.perf_counter() - t0
    diff_subset = float(np.abs(dense[:, ys, xs] - windows).max())
    # every pixel of a small crop, the crop's own padding (a separate test image)
    small = image[:, :crop, :crop]
    p_small = model._input(small, meta)
    d_small = predict_dense(net, p_small, rows=model.rows)
    yy, xx = np.meshgrid(np.arange(crop), np.arange(crop), indexing="ij")
    w_small = predict_windows(net, p_small, yy.ravel(), xx.ravel())
    diff_crop = float(np.abs(d_small.reshape(d_small.shape[0], -1) - w_small).max())
    per_window = t_sub / subset
    return {
        "window": model.window,
        "image": [int(h), int(w)],
        "threads": torch.get_num_threads(),
        "fcn_seconds_median": float(np.median(times)),
        "windowed_subset_pixels": subset,
        "windowed_subset_seconds": t_sub,
        "windowed_seconds_extrapolated": per_window * h * w,
        "speedup": per_window * h * w / float(np.median(times)),
        "max_abs_diff_subset": diff_subset,
        "max_abs_diff_full_crop": diff_crop,
        "crop": crop,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data", default=None)
    ap.add_argument("--models", default="runs/convnet")
    ap.add_argument("--subset", type=int, default=4096)
    args = ap.parse_args()
    import torch

    torch.set_num_threads(int(os.environ.get("CELLSCAPE_THREADS", 0)) or torch.get_num_threads())
    root = data_root(args.data)
    models = Path(args.models)
    results = {}
    cases = [
        ("ecoli", "ecoli_kc/set2", ("phase",), 128),
        ("hela", "HeLa_joint/set5", ("phase", "nuclear"), 64),
    ]
    for task, set_name, channels, crop in cases:
        if not (models / task).is_dir():
            print(f"{task}: no model, skipped")
            continue
        model = ConvNet.load(models / task)
        ((_, image, meta, _, _),) = load_sets(root, [set_name], channels)
        image = to_size(image, 1024)
        r = bench(model, image, meta, args.subset, crop)
        results[task] = {"set": set_name, **r}
        print(
            f"{task} ({r['window']}x{r['window']} window, {set_name} at 1024x1024, "
            f"{r['threads']} thread): FCN {r['fcn_seconds_median']:.2f} s; window-by-window "
            f"{r['windowed_subset_seconds']:.1f} s for {args.subset} pixels -> "
            f"{r['windowed_seconds_extrapolated']:.0f} s extrapolated; speed-up "
            f"{r['speedup']:.0f}x; max |difference| {r['max_abs_diff_subset']:.2e} (subset), "
            f"{r['max_abs_diff_full_crop']:.2e} (every pixel of a {crop}x{crop} crop)"
        )
    out = ROOT / "benchmarks" / "out" / "convnet_speed.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1))
    print(f"written {out}")


if __name__ == "__main__":
    main()
