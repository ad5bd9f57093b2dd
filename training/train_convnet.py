"""Train the conv-nets of the DeepCell 2016 benchmarks (resumable; run through /tmp/heavy).

    python training/train_convnet.py ecoli --n-models 3 --steps 1000
    python training/train_convnet.py nuclei|hela|types|unet-ecoli

Models go to runs/convnet/<task>; checkpoints to runs/convnet/<task>_ckpt (re-running resumes).
Train ``nuclei`` before ``hela`` and ``types``: their whole cells grow from its nuclei (it is
copied into their model folders). Post-processing settings (grow, thresholds) were chosen on
training images; see docs/convnet.md.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from cellscape.methods.convnet import ConvNet  # noqa: E402
from convnet_common import SPLITS, check_split, data_root, load_sets  # noqa: E402

SETTINGS = {
    "ecoli": dict(window=31, threshold=0.6, grow=2, filters=16, dense=64),
    "nuclei": dict(window=31, threshold=0.5, grow=2, filters=16, dense=64),
    "hela": dict(window=61, postprocess="snakes", filters=8, dense=48, threshold=0.5),
    "types": dict(
        window=61,
        filters=8,
        dense=48,
        cell_types=("3T3", "MCF10A"),
        threshold=0.5,
        postprocess="snakes",
    ),
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("task", choices=[*SETTINGS, "unet-ecoli"])
    ap.add_argument("--data", default=None)
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--n-models", type=int, default=1)
    ap.add_argument("--out", default="runs/convnet")
    args = ap.parse_args()
    root = data_root(args.data)
    check_split(root)
    threads = int(os.environ.get("CELLSCAPE_THREADS", 0)) or None
    out = Path(args.out)
    t0 = time.time()
    if args.task == "unet-ecoli":
        from cellscape.methods.unet import UNetSegmenter

        channels, train, _ = SPLITS["ecoli"]
        data = load_sets(root, train, channels)
        model = UNetSegmenter(
            filters=(8, 16, 32),
            epochs=args.steps // 100,
            steps_per_epoch=100,
            batch_size=8,
            patch=96,
            scale_range=(0.8, 1.25),
        )
        model.fit(
            [d[1][0] for d in data],
            [d[4] for d in data],
            checkpoint_dir=out / "unet-ecoli_ckpt",
            threads=threads,
        )
        model.save(out / "unet-ecoli")
    else:
        channels, train, _ = SPLITS[args.task]
        data = load_sets(root, train, channels)
        model = ConvNet(
            channels=channels, steps=args.steps, n_models=args.n_models, **SETTINGS[args.task]
        )
        model.fit(
            [d[1] for d in data],
            [d[3] for d in data],
            [d[2] for d in data],
            checkpoint_dir=out / f"{args.task}_ckpt",
            threads=threads,
        )
        model.info_["command"] = "python training/train_convnet.py " + " ".join(sys.argv[1:])
        model.info_["train_sets"] = list(train)
        model.info_["held_out_sets"] = list(SPLITS[args.task][2])
        if args.task in ("hela", "types") and (out / "nuclei").is_dir():
            model.set_nuclear_model(out / "nuclei")
        model.save(out / args.task)
    print(f"{args.task}: trained in {time.time() - t0:.0f} s -> {out / args.task}")


if __name__ == "__main__":
    main()
