"""Train StarDist 2D from scratch on the DSB2018 fit images within a wall-clock budget.

Runs inside benchmarks/peers/envs/stardist (built by benchmarks/peers/build.sh), never in the
cellscape environment:

    benchmarks/peers/envs/stardist/bin/python benchmarks/peers/train_stardist.py \
        --split-file benchmarks/out/peers/split.json --seconds 3600 \
        --out benchmarks/out/peers/stardist

What it does, following StarDist's own DSB2018 example (examples/2D/2_training.ipynb):
- images -> grey by the mean over colour channels (peer_common.to_grey), then csbdeep's
  percentile normalisation ``normalize(x, 1, 99.8)`` per image; label holes filled
  (``fill_label_holes``);
- ``Config2D(n_rays=32, grid=(2, 2), n_channel_in=1, train_tensorboard=False)`` with the default
  U-Net, patch 256x256, batch 4; augmentation: random flips / 90-degree rotations, intensity
  scale and offset, a little Gaussian noise (as in the example);
- training stops when ``--seconds`` of wall-clock time have passed (checked after every batch);
  the per-epoch validation loss on the tune images picks the best checkpoint (StarDist reloads
  ``weights_best`` after training);
- ``optimize_thresholds`` on the tune images (probability and NMS thresholds), scored over IoU
  0.5..0.95 like the DSB2018 score; its time is reported separately (``tune_seconds``);
- predicts the val images into ``--out/val_masks/<id>_masks.tif`` (uint16) and writes
  ``--out/timing.json``.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import peer_common as pc  # noqa: E402


def main() -> None:
    parser = pc.common_args(__doc__.splitlines()[0])
    parser.add_argument("--steps-per-epoch", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--patch", type=int, default=256)
    args = parser.parse_args()

    # thread counts must be fixed before TensorFlow starts its pools
    for var in ("OMP_NUM_THREADS", "TF_NUM_INTRAOP_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    os.environ["TF_NUM_INTEROP_THREADS"] = "1"
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    import numpy as np
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    import csbdeep
    import stardist
    from csbdeep.utils import normalize
    from csbdeep.utils.tf import keras_import
    from stardist import fill_label_holes
    from stardist.models import Config2D, StarDist2D

    callback_base = keras_import("callbacks", "Callback")

    np.random.seed(args.seed)  # noqa: NPY002 - StarDist samples patches from the global RNG
    rng = np.random.default_rng(args.seed)
    tf.random.set_seed(args.seed)
    split = pc.load_split(args.split_file, args.limit)
    print({k: len(v) for k, v in split.items()}, "images (fit/tune/val)", flush=True)

    def norm(image):
        return normalize(image, 1, 99.8, axis=(0, 1))

    fit_raw, fit_y = pc.read_pairs(args.data, split["fit"])
    tune_raw, tune_y = pc.read_pairs(args.data, split["tune"])

    budget = pc.Budget(args.seconds)  # training time: preprocessing + fit, not file reading
    fit_x = [norm(x) for x in fit_raw]
    tune_x = [norm(x) for x in tune_raw]
    fit_y = [fill_label_holes(y) for y in fit_y]
    tune_y = [fill_label_holes(y) for y in tune_y]

    conf = Config2D(
        n_rays=32,
        grid=(2, 2),
        n_channel_in=1,
        train_tensorboard=False,
        train_patch_size=(args.patch, args.patch),
        train_batch_size=args.batch_size,
        use_gpu=False,
    )
    model = StarDist2D(conf, name="stardist", basedir=str(args.out / "model"))

    class TimeBudget(callback_base):
        """Stop after the batch during which the budget ran out."""

        def __init__(self):
            super().__init__()
            self.batches = 0

        def on_train_batch_end(self, batch, logs=None):
            self.batches += 1
            if budget.spent():
                self.model.stop_training = True

    def augment(x, y):
        # random flips and 90-degree rotations, intensity scale/offset, a little noise
        k = int(rng.integers(4))
        x, y = np.rot90(x, k), np.rot90(y, k)
        if rng.random() < 0.5:
            x, y = x[:, ::-1], y[:, ::-1]
        x = x * rng.uniform(0.6, 2) + rng.uniform(-0.2, 0.2)
        x = x + 0.02 * rng.uniform(0, 1) * rng.normal(0, 1, x.shape)
        return np.ascontiguousarray(x, dtype=np.float32), np.ascontiguousarray(y)

    stopper = TimeBudget()
    model.prepare_for_training()
    model.callbacks.append(stopper)
    history = model.train(
        fit_x,
        fit_y,
        validation_data=(tune_x, tune_y),
        augmenter=augment,
        epochs=100000,  # the budget callback ends training
        steps_per_epoch=args.steps_per_epoch,
    )
    train_seconds, train_cpu = budget.elapsed(), budget.cpu()
    epochs = len(history.history.get("loss", []))
    print(f"trained {stopper.batches} batches ({epochs} epochs) in {train_seconds:.0f} s")

    t0 = time.perf_counter()
    iou = tuple(float(t) for t in np.round(np.arange(0.5, 1.0, 0.05), 2))
    thresholds = model.optimize_thresholds(tune_x, tune_y, iou_threshs=iou)
    tune_seconds = time.perf_counter() - t0

    model.predict_instances(norm(fit_x[0]))  # warm-up: the first call builds the graph
    per_image = {}
    for item in split["val"]:
        image = pc.read_image(args.data, item)
        t0 = time.perf_counter()
        labels, _ = model.predict_instances(norm(image))
        per_image[item] = time.perf_counter() - t0
        pc.write_mask(args.out / "val_masks", item, labels)

    name, big = pc.image_1024(args.data, split["val"])
    model.predict_instances(norm(big))  # warm-up at this size
    t0 = time.perf_counter()
    model.predict_instances(norm(big))
    seconds_1024 = time.perf_counter() - t0

    pc.write_json(
        args.out / "timing.json",
        {
            "method": "stardist",
            "versions": {
                "stardist": stardist.__version__,
                "csbdeep": csbdeep.__version__,
                "tensorflow": tf.__version__,
                "numpy": np.__version__,
            },
            "threads": args.threads,
            "budget_seconds": args.seconds,
            "train_seconds": round(train_seconds, 1),
            "train_cpu_seconds": round(train_cpu, 1),
            "train_batches": stopper.batches,
            "train_epochs": epochs,
            "batch_size": args.batch_size,
            "patch": args.patch,
            "tune_seconds": round(tune_seconds, 1),
            "thresholds": {k: float(v) for k, v in thresholds.items()},
            "n_fit": len(split["fit"]),
            "n_tune": len(split["tune"]),
            "n_val": len(split["val"]),
            "predict_seconds_median": round(pc.median(list(per_image.values())), 4),
            "predict_seconds_per_image": {k: round(v, 4) for k, v in per_image.items()},
            "predict_1024_seconds": round(seconds_1024, 3),
            "image_1024": name,
            "note": "prediction times include percentile normalisation, exclude file I/O",
        },
    )
    print(f"wrote {len(per_image)} masks to {args.out / 'val_masks'}", flush=True)


if __name__ == "__main__":
    main()
