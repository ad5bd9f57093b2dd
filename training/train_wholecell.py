"""Train the single-channel whole-cell model (cellscape.methods.wholecell.WholeCell).

Two data sources, each with a fixed train / validation / test split (the test images are only
ever used by benchmarks/wholecell_accuracy.py):

* ``synthetic``: cytoplasm-marker images from :func:`cellscape.synthetic.whole_cells`
  (seeds 0-23 train, 100-103 validation; the benchmark tests on seeds 1000+). Targets are made
  the paper's way, by the two-channel segmenter from the marker + nuclear channels; no ground
  truth mask is used for training.
* ``hela``: DeepCell 2016 HeLa_joint phase images (sets 1-3 train, set 4 validation, set 5 test).
  Phase is not a cytoplasm marker, so here the cell targets are the published masks and the
  nucleus targets the two-channel segmenter's nuclei from the nuclear channel.

Training is resumable: run the same command again after an interruption (or a ``timeout``) and
it continues from the last epoch checkpoint in ``runs/wholecell_<data>/checkpoints``.

    /tmp/heavy timeout 1200 .venv/bin/python training/train_wholecell.py synthetic
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from cellscape.methods.wholecell import WholeCell  # noqa: E402
from wholecell_data import hela_split, synthetic_images  # noqa: E402

#: the compact network used for CPU training (the paper's is 32-64-128-128-256)
COMPACT = (8, 16, 32, 32, 64)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", choices=["synthetic", "hela"])
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--epochs", type=int, default=14)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--root", type=Path, default=ROOT / ".." / "shared" / "data")
    parser.add_argument("--run", default=None, help="run folder name under runs/")
    parser.add_argument(
        "--bundle", action="store_true", help="also save as the bundled wholecell-single model"
    )
    args = parser.parse_args()
    threads = int(os.environ.get("CELLSCAPE_THREADS", 0)) or None
    run = ROOT / "runs" / (args.run or f"wholecell_{args.data}")
    out = args.out or run / "model"
    common = dict(
        filters=COMPACT,
        epochs=args.epochs,
        steps_per_epoch=args.steps,
        batch_size=args.batch,
        learning_rate=2e-3,
    )
    if args.data == "synthetic":
        train = synthetic_images(range(24), targets=True)
        val = synthetic_images(range(100, 104), targets=True)
        model = WholeCell(**common)
        info = {
            "training_data": "24 synthetic 512x512 whole-cell images (cellscape.synthetic."
            "whole_cells, seeds 0-23), targets from the two-channel segmenter",
        }
    else:
        split = hela_split(args.root)
        train, val = split["train"], split["val"]
        model = WholeCell(
            **common, tophat_um=None, use_intensity=False, pixel_size=0.325, nucleus_diameter=8.0
        )
        info = {
            "training_data": "DeepCell 2016 HeLa_joint sets 1-3 (phase), cell masks as "
            "published, nuclei from the two-channel segmenter on the nuclear channel",
        }
    model.fit(
        [d.image for d in train],
        [d.targets for d in train],
        val_images=[d.image for d in val],
        val_targets=[d.targets for d in val],
        checkpoint_dir=run / "checkpoints",
        threads=threads,
    )
    model.info_.update(info)
    model.info_["command"] = "python training/train_wholecell.py " + " ".join(sys.argv[1:])
    model.tile = 1024  # fewer, larger inference tiles: less overlap work on big images
    model.save(out)
    if args.bundle:
        bundled = ROOT / "src" / "cellscape" / "data" / "models" / "wholecell-single"
        model.save(bundled)
        print(f"bundled as {bundled}")
    print(f"saved {out} (cell area {model.cell_area_:.0f} µm²)")
    hist = model.info_["history"]
    print("val loss per epoch:", np.round(hist["val_loss"], 4).tolist())


if __name__ == "__main__":
    main()
