"""Train Cellpose 3 from scratch on the DSB2018 fit images within a wall-clock budget.

Runs inside benchmarks/peers/envs/cellpose (built by benchmarks/peers/build.sh), never in the
cellscape environment:

    benchmarks/peers/envs/cellpose/bin/python benchmarks/peers/train_cellpose.py \
        --split-file benchmarks/out/peers/split.json --seconds 3600 \
        --out benchmarks/out/peers/cellpose

What it does (Cellpose 3's documented training API, ``cellpose.train.train_seg``):
- images -> grey by the mean over colour channels (peer_common.to_grey), channels ``[0, 0]``;
  Cellpose's own per-image percentile normalisation (1..99) inside training and prediction;
- ``models.CellposeModel(pretrained_model=False, diam_mean=17)``: the default Cellpose U-Net with
  random weights (17 px is the object size Cellpose's own ``nuclei`` model is trained at);
- flows are computed once from the masks (counted in the training time); training uses
  ``train_seg`` defaults (AdamW, lr 0.005 with its warm-up / decay schedule, batch 8, 224x224
  crops, each image rescaled so its median object diameter is ``diam_mean``). The number of
  epochs is set to fit ``--seconds``: a few calibration batches measure the time per batch;
  when more than 100 epochs of ``--nimg-per-epoch`` images fit, that many are run (so the
  schedule, including its final learning-rate halvings, completes inside the budget), otherwise
  the 100-epoch schedule (warm-up, then a constant rate) runs until the budget is spent; a hook
  on the network stops training outright when the budget runs out;
- diameter: Cellpose's size model (``train.train_size``: a linear regression from the network's
  style vector to the log object diameter) is trained on the fit images and estimates a diameter
  for every tune / val image, as Cellpose's built-in models do. ``--no-size-model`` uses the
  mean object diameter of the training set for every image instead;
- ``flow_threshold`` x ``cellprob_threshold`` are chosen on the tune images by the DSB2018 score
  (mean over IoU 0.5..0.95 of TP / (TP + FP + FN)); size model and tuning are timed separately;
- predicts the val images into ``--out/val_masks/<id>_masks.tif`` (uint16) and writes
  ``--out/timing.json``. The training record goes to ``--out/train.json`` as soon as training
  ends: ``--resume`` reuses it and the saved weights, so a run that fails later (the size model,
  tuning, prediction) goes on without training again.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import peer_common as pc  # noqa: E402


class BudgetSpent(Exception):
    """Raised inside a training forward pass once the budget has run out."""


def main() -> None:
    parser = pc.common_args(__doc__.splitlines()[0])
    parser.add_argument("--nimg-per-epoch", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--calibration-batches", type=int, default=8)
    parser.add_argument("--size-epochs", type=int, default=1, help="passes for train_size")
    parser.add_argument(
        "--size-images", type=int, default=200, help="fit images per train_size pass"
    )
    parser.add_argument(
        "--size-batch",
        type=int,
        default=8,
        help="images per train_size batch (Cellpose's default of 64 crops of 512 x 512 peaked "
        "at 22.7 GB and was killed for memory on a 24 GB machine)",
    )
    parser.add_argument("--no-size-model", action="store_true")
    parser.add_argument(
        "--resume",
        action="store_true",
        help="reuse the weights and train.json of an earlier run in --out (one that stopped "
        "after training) instead of training again",
    )
    args = parser.parse_args()

    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)

    import logging

    import numpy as np
    import torch

    torch.set_num_threads(args.threads)
    from cellpose import dynamics, metrics, models, train
    from cellpose.version import version as cellpose_version

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for noisy in ("cellpose.dynamics", "cellpose.models", "cellpose.core", "cellpose.transforms"):
        logging.getLogger(noisy).setLevel(logging.WARNING)

    # train_seg reseeds numpy's global RNG every epoch; torch's sets the initial weights
    torch.manual_seed(args.seed)
    split = pc.load_split(args.split_file, args.limit)
    print({k: len(v) for k, v in split.items()}, "images (fit/tune/val)", flush=True)

    fit_x, fit_y = pc.read_pairs(args.data, split["fit"])
    tune_x, tune_y = pc.read_pairs(args.data, split["tune"])
    channels = [0, 0]
    model_dir = args.out / "model"
    model_dir.mkdir(parents=True, exist_ok=True)

    weights = model_dir / "models" / "cellpose_scratch"

    cpu = torch.device("cpu")
    budget = pc.Budget(args.seconds)  # training time: flows + calibration + training
    # the size model needs the fit flows too, so they are computed once, here
    fit_flows = dynamics.labels_to_flows([y.copy() for y in fit_y], device=cpu)

    def train_from_scratch() -> dict:
        """Calibration and training within the budget; saves the weights."""
        tune_flows = dynamics.labels_to_flows([y.copy() for y in tune_y], device=cpu)
        model = models.CellposeModel(gpu=False, pretrained_model=False, diam_mean=17.0)
        common = dict(
            train_data=fit_x,
            train_labels=fit_flows,
            test_data=tune_x,
            test_labels=tune_flows,
            channels=channels,
            batch_size=args.batch_size,
            save_path=str(model_dir),
            model_name="cellpose_scratch",
            min_train_masks=5,
        )

        forward_times: list[float] = []

        def stop_when_spent(module, inputs):
            if module.training:
                forward_times.append(time.perf_counter())
                if budget.spent():
                    raise BudgetSpent

        # calibration: one short real training run; the hook times its training batches, the rest
        # of the call (set-up, diameters, the pass over the tune images that train_seg repeats at
        # epoch 5 and every 10 epochs, torch warm-up) is the fixed cost. Its weights are discarded
        # (fresh network below); its time comes out of the budget.
        hook = model.net.register_forward_pre_hook(stop_when_spent)
        n_cal = max(3, args.calibration_batches) * args.batch_size
        t0 = time.perf_counter()
        try:
            train.train_seg(model.net, n_epochs=1, nimg_per_epoch=n_cal, **common)
        except BudgetSpent:
            pass  # a budget too small even for calibration: the real run stops at once
        call_seconds = time.perf_counter() - t0
        hook.remove()
        # the first interval holds the first backward pass and the allocator's warm-up (12.9 s
        # against 7.7 s for later batches on the 2-core CPU, so 3 batches planned 30 epochs into a
        # 3600 s budget and training ended after 2003 s): leave it out of the median
        steps = np.diff(forward_times)[1:]
        if steps.size:
            per_batch = float(np.median(steps))
        else:
            per_batch = call_seconds
        overhead = max(call_seconds - per_batch * len(forward_times), 0.0)
        test_pass = per_batch / 3 * -(-len(tune_x) // args.batch_size)  # forward only
        per_epoch = per_batch * args.nimg_per_epoch / args.batch_size + test_pass / 10
        remaining = budget.seconds - budget.elapsed() - overhead
        planned = max(1, int(0.95 * remaining / per_epoch))
        # Up to 100 epochs train_seg's learning rate is a 10-epoch warm-up and then constant (its
        # halvings start above 100), so a shorter schedule is a prefix of the 100-epoch one: plan
        # 100 and let the hook stop at the budget, which then does not depend on the calibration
        # (the first batches of each run are slow: calibrated 10.9 s against 8.5 s per batch later)
        n_epochs = planned if planned > 100 else 100
        print(
            f"calibration: {per_batch:.2f} s per batch of {args.batch_size}, {per_epoch:.1f} s per "
            f"epoch of {args.nimg_per_epoch} images, fixed {overhead:.1f} s -> {planned} epochs; "
            f"schedule of {n_epochs}",
            flush=True,
        )
        model = models.CellposeModel(gpu=False, pretrained_model=False, diam_mean=17.0)
        forward_times.clear()
        hook = model.net.register_forward_pre_hook(stop_when_spent)
        stopped_early = False
        try:
            _, train_losses, _ = train.train_seg(
                model.net, n_epochs=n_epochs, nimg_per_epoch=args.nimg_per_epoch, **common
            )
        except BudgetSpent:
            stopped_early = True
            print("budget spent before the schedule finished; using the weights as they are")
        hook.remove()
        trained = {
            "train_seconds": round(budget.elapsed(), 1),
            "train_cpu_seconds": round(budget.cpu(), 1),
            "train_epochs": round(len(forward_times) * args.batch_size / args.nimg_per_epoch, 2),
            "schedule_epochs": n_epochs,
            "stopped_early": stopped_early,
            "final_train_loss": None if stopped_early else float(train_losses[-1]),
        }
        model.net.eval()
        model.net.save_model(str(weights))
        # written before the size model and the tuning, so that a run that fails there can go on
        # with --resume from these weights instead of training again
        pc.write_json(args.out / "train.json", trained)
        return trained

    if args.resume and (args.out / "train.json").exists() and weights.exists():
        trained = pc.read_json(args.out / "train.json")
        print(f"--resume: weights {weights} and {args.out / 'train.json'}", flush=True)
    else:
        trained = train_from_scratch()
    print(f"trained {trained['train_epochs']} epochs in {trained['train_seconds']:.0f} s")
    model = models.CellposeModel(gpu=False, pretrained_model=str(weights))

    size_model = None
    size_seconds = 0.0
    if not args.no_size_model:
        t0 = time.perf_counter()
        train.train_size(
            model.net,
            str(weights),
            train_data=fit_x,
            train_labels=fit_flows,
            channels=channels,
            n_epochs=args.size_epochs,
            nimg_per_epoch=min(args.size_images, len(fit_x)),
            batch_size=args.size_batch,
            min_train_masks=5,
        )
        model = models.CellposeModel(gpu=False, pretrained_model=str(weights))
        size_model = models.SizeModel(model, pretrained_size=str(weights) + "_size.npy")
        size_seconds = time.perf_counter() - t0

    def diameter(image):
        if size_model is None:
            return None  # CellposeModel falls back to the training set's mean diameter
        return float(size_model.eval(image, channels=channels)[0])

    def segment(image, diam, flow_threshold=0.4, cellprob_threshold=0.0):
        masks = model.eval(
            image,
            channels=channels,
            diameter=diam,
            flow_threshold=flow_threshold,
            cellprob_threshold=cellprob_threshold,
        )[0]
        return masks

    t0 = time.perf_counter()
    tune_diams = [diameter(x) for x in tune_x]
    iou = np.round(np.arange(0.5, 1.0, 0.05), 2)
    grid = []
    for flow_t in (0.4, 0.6):
        for prob_t in (-1.0, 0.0, 1.0):
            preds = [segment(x, d, flow_t, prob_t) for x, d in zip(tune_x, tune_diams, strict=True)]
            ap = metrics.average_precision(tune_y, preds, threshold=iou)[0]
            grid.append((float(np.mean(ap)), flow_t, prob_t))
            print(f"tune flow {flow_t} cellprob {prob_t}: DSB {grid[-1][0]:.4f}", flush=True)
    best_score, best_flow, best_prob = max(grid)
    tune_seconds = time.perf_counter() - t0

    per_image, diams = {}, {}
    for item in split["val"]:
        image = pc.read_image(args.data, item)
        t0 = time.perf_counter()
        d = diameter(image)
        labels = segment(image, d, best_flow, best_prob)
        per_image[item] = time.perf_counter() - t0
        diams[item] = d
        pc.write_mask(args.out / "val_masks", item, labels)

    name, big = pc.image_1024(args.data, split["val"])
    segment(big, diameter(big), best_flow, best_prob)  # warm-up at this size
    t0 = time.perf_counter()
    segment(big, diameter(big), best_flow, best_prob)
    seconds_1024 = time.perf_counter() - t0

    pc.write_json(
        args.out / "timing.json",
        {
            "method": "cellpose",
            "versions": {
                "cellpose": cellpose_version,
                "torch": torch.__version__,
                "numpy": np.__version__,
            },
            "threads": args.threads,
            "budget_seconds": args.seconds,
            # a train.json note (how a resumed run's training was recorded) keeps its own key
            **{("train_note" if k == "note" else k): v for k, v in trained.items()},
            "nimg_per_epoch": args.nimg_per_epoch,
            "batch_size": args.batch_size,
            "size_model": size_model is not None,
            "size_model_seconds": round(size_seconds, 1),
            "size_model_images": min(args.size_images, len(fit_x)) * args.size_epochs,
            "size_model_batch": args.size_batch,
            "tune_seconds": round(tune_seconds, 1),
            "tune_grid": [{"dsb2018": s, "flow": f, "cellprob": c} for s, f, c in grid],
            "flow_threshold": best_flow,
            "cellprob_threshold": best_prob,
            "n_fit": len(split["fit"]),
            "n_tune": len(split["tune"]),
            "n_val": len(split["val"]),
            "val_diameters": diams,
            "predict_seconds_median": round(pc.median(list(per_image.values())), 4),
            "predict_seconds_per_image": {k: round(v, 4) for k, v in per_image.items()},
            "predict_1024_seconds": round(seconds_1024, 3),
            "image_1024": name,
            "note": "prediction times include diameter estimation and Cellpose's normalisation, "
            "exclude file I/O",
        },
    )
    print(f"wrote {len(per_image)} masks to {args.out / 'val_masks'}", flush=True)


if __name__ == "__main__":
    main()
