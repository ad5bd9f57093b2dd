"""cellscape's nuclei models against StarDist / Cellpose on the DSB2018 validation split.

Scores, with cellscape's own metrics, the masks of every method on the 112 images of the
project's validation split (never trained or tuned on): cellscape's bundled models (run here),
and the ``val_masks/<id>_masks.tif`` that benchmarks/peers/train_stardist.py and
train_cellpose.py wrote (each in its own environment). Prints one table over all images and
one per kind of image (fluorescence: grey, dark background; bright field: grey, bright
background; histology: colour), since the kinds fail differently.

    python benchmarks/nuclei_peers.py [--models classical nuclei] \
        [--peer stardist=benchmarks/out/peers/stardist] [--peer cellpose=...]
"""

from __future__ import annotations

import argparse
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE.parents[1] / "shared" / "data" / "dsb2018" / "train"
COLUMNS = {
    "ap_pooled@0.5": "AP@0.5 pooled",
    "ap@0.5": "AP@0.5 per image",
    "f1_pooled@0.5": "F1@0.5 pooled",
    "dsb2018": "DSB2018 score",
    "aji": "AJI",
}


def image_kind(image, meta) -> str:
    from cellscape.preprocess import bright_background, to_single_channel

    if meta.rgb:
        return "histology"
    plane = to_single_channel(image, meta)
    return "bright field" if bright_background(plane) else "fluorescence"


def main() -> None:
    from cellscape import io, metrics
    from cellscape.datasets import dsb2018_split
    from cellscape.models import load_model

    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--models", nargs="*", default=["classical", "nuclei"])
    parser.add_argument("--peer", action="append", default=[], help="NAME=FOLDER (val_masks/)")
    parser.add_argument("--limit", type=int, help="first N images only (smoke tests)")
    args = parser.parse_args()

    peers = dict(p.split("=", 1) for p in args.peer)
    methods = [*args.models, *peers]
    models = {name: load_model(name) for name in args.models}
    rows: dict[str, list[dict]] = {m: [] for m in methods}
    kinds = []
    for pair in dsb2018_split(args.data)[1][: args.limit]:
        image, meta, truth = pair.load()
        kinds.append(image_kind(image, meta))
        for name, model in models.items():
            rows[name].append(metrics.image_scores(truth, model.segment(image, meta)))
        for name, folder in peers.items():
            masks = io.read_labels(Path(folder) / "val_masks" / f"{pair.id}_masks.tif")
            rows[name].append(metrics.image_scores(truth, masks))

    groups = [("all", range(len(kinds)))]
    for kind in ("fluorescence", "bright field", "histology"):
        groups.append((kind, [i for i, k in enumerate(kinds) if k == kind]))
    print("| images | method | " + " | ".join(COLUMNS.values()) + " |")
    print("|---|---|" + "---|" * len(COLUMNS))
    for group, index in groups:
        if not index:
            continue
        for name in methods:
            s = metrics.summarize([rows[name][i] for i in index])
            cells = " | ".join(f"{s[k]:.3f}" for k in COLUMNS)
            print(f"| {group} ({len(index)}) | {name} | {cells} |", flush=True)


if __name__ == "__main__":
    main()
