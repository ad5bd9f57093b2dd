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
    parser.add_argument("--figure", type=Path, help="write outlines of one image per kind here")
    args = parser.parse_args()

    peers = dict(p.split("=", 1) for p in args.peer)
    methods = [*args.models, *peers]
    models = {name: load_model(name) for name in args.models}
    rows: dict[str, list[dict]] = {m: [] for m in methods}
    kinds = []
    examples = {}  # kind -> (image, meta, {method: labels}) of its first image, for the figure
    for pair in dsb2018_split(args.data)[1][: args.limit]:
        image, meta, truth = pair.load()
        kind = image_kind(image, meta)
        kinds.append(kind)
        found = {"truth": truth}
        for name, model in models.items():
            found[name] = model.segment(image, meta)
        for name, folder in peers.items():
            found[name] = io.read_labels(Path(folder) / "val_masks" / f"{pair.id}_masks.tif")
        for name in methods:
            rows[name].append(metrics.image_scores(truth, found[name]))
        if kind not in examples:
            aps = {name: rows[name][-1]["ap@0.5"] for name in methods}
            examples[kind] = (image, meta, found, aps)

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
    if args.figure:
        figure(examples, ["truth", *methods], args.figure)


def figure(examples: dict, columns: list[str], path: Path) -> None:
    """One row per kind of image, one column per method: outlines over the image, with the
    image's AP@0.5 in the title."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from cellscape.viz import outline_overlay

    fig, axes = plt.subplots(
        len(examples), len(columns), figsize=(3 * len(columns), 3 * len(examples)), squeeze=False
    )
    for row, (kind, (image, meta, found, aps)) in enumerate(examples.items()):
        for col, name in enumerate(columns):
            ax = axes[row, col]
            ax.imshow(outline_overlay(image, found[name], meta))
            title = name if name == "truth" else f"{name}: AP@0.5 {aps[name]:.2f}"
            ax.set_title(f"{kind}, {title}" if col == 0 else title, fontsize=8)
            ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    print(f"figure: {path}")


if __name__ == "__main__":
    main()
