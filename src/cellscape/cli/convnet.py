"""Commands of edge / interior conv-nets (``cellscape train convnet``).

Registered on the shared ``train`` group when this module is imported. The model folder it
writes is used like any other: ``cellscape segment --model <folder> images/``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from ._app import console, fail, friendly_errors
from .train import train_app


def _split(text: str | None) -> tuple[str, ...] | None:
    if text is None:
        return None
    parts = tuple(p.strip() for p in text.split(",") if p.strip())
    return parts or None


def _load_training_data(data: Path, channels: tuple[str, ...], exclude: tuple[str, ...]):
    """Images, metas and targets of a DeepCell-layout folder (feature masks) or of a folder
    of ``<id>_img`` / ``<id>_masks`` pairs (instance labels)."""
    from .. import datasets
    from ..errors import CellscapeError

    try:
        sets = datasets.list_deepcell_sets(data)
    except CellscapeError:
        sets = []
    images, metas, targets, names = [], [], [], []
    if sets:
        for s in sets:
            if any(s.name == e or s.name.startswith(e.rstrip("/") + "/") for e in exclude):
                continue
            if not all(c in s.channels for c in channels):
                continue  # sets without the model's channels are skipped, and listed
            image, meta, features = s.load(channels)
            images.append(image)
            metas.append(meta)
            targets.append(features)
            names.append(s.name)
        return images, metas, targets, names
    for pair in datasets.list_pairs(data):
        if pair.id in exclude:
            continue
        image, meta, labels = pair.load()
        images.append(image)
        metas.append(meta)
        targets.append(labels)
        names.append(pair.id)
    return images, metas, targets, names


@train_app.command("convnet")
@friendly_errors
def train_convnet(
    data: Annotated[
        Path,
        typer.Option(
            "--data",
            help="DeepCell-layout folder (channel images + feature_0 edge, feature_1 interior, "
            "feature_2 second type) or a folder of <id>_img / <id>_masks pairs.",
        ),
    ],
    channels: Annotated[
        str, typer.Option(help="Input channels by name, comma-separated, e.g. phase,nuclear.")
    ] = "phase",
    out: Annotated[Path, typer.Option("--out", "-o", help="Model folder to write.")] = Path(
        "convnet-model"
    ),
    window: Annotated[
        int, typer.Option(help="Window (receptive field) in pixels: 31 bacteria, 61 mammalian.")
    ] = 31,
    filters: Annotated[int, typer.Option(help="Width of the first conv layer.")] = 16,
    dense: Annotated[int, typer.Option(help="Width of the dense layer.")] = 64,
    steps: Annotated[int, typer.Option(help="Training steps per network.")] = 2000,
    batch_size: Annotated[int, typer.Option(help="Windows per step.")] = 128,
    ensemble: Annotated[
        int, typer.Option(help="Number of nets (seeds) whose softmax is averaged.")
    ] = 1,
    cell_types: Annotated[
        str | None,
        typer.Option(
            "--cell-types",
            help="Names of the cell types of feature_1, feature_2, ... (e.g. 3T3,MCF10A).",
        ),
    ] = None,
    postprocess: Annotated[
        str, typer.Option(help="threshold (bacteria, nuclei) or snakes (cytoplasm from nuclei).")
    ] = "threshold",
    threshold: Annotated[float, typer.Option(help="Interior-probability cut-off.")] = 0.6,
    adaptive: Annotated[bool, typer.Option(help="Lower the cut-off for dim objects.")] = False,
    nuclear_model: Annotated[
        Path | None,
        typer.Option(help="Saved nuclear conv-net that seeds --postprocess snakes."),
    ] = None,
    exclude: Annotated[
        str | None,
        typer.Option(help="Sets (or pair ids) to leave out of training, comma-separated."),
    ] = None,
    checkpoint: Annotated[
        Path | None,
        typer.Option(help="Checkpoint folder; running again with it resumes training."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Random seed of the first net.")] = 0,
) -> None:
    """Train an edge / interior / background conv-net (DeepCell 2016) and save it to OUT."""
    from .. import io
    from ..methods.convnet import ConvNet

    chans = _split(channels)
    if not chans:
        raise fail("--channels is empty")
    if postprocess not in ("threshold", "snakes"):
        raise fail(f"--postprocess must be threshold or snakes, got '{postprocess}'")
    if window < 7 or window % 2 == 0:
        raise fail(f"--window must be an odd number of at least 7 pixels, got {window}")
    io.check_writable_folder(out.parent if out.parent != Path("") else Path("."))
    images, metas, targets, names = _load_training_data(data, chans, _split(exclude) or ())
    if not images:
        raise fail(f"{data}: no training images with channels {', '.join(chans)}")
    console.print(f"training on {len(images)} images: {', '.join(names)}")
    model = ConvNet(
        channels=chans,
        window=window,
        filters=filters,
        dense=dense,
        cell_types=_split(cell_types),
        n_models=ensemble,
        steps=steps,
        batch_size=batch_size,
        postprocess=postprocess,
        threshold=threshold,
        adaptive=adaptive,
        seed=seed,
    )
    if nuclear_model is not None:
        model.set_nuclear_model(nuclear_model)
    try:
        model.fit(
            images,
            targets,
            metas,
            checkpoint_dir=checkpoint,
            threads=int(os.environ.get("CELLSCAPE_THREADS", 0)) or None,
        )
    except ValueError as exc:
        raise fail(f"{data}: {exc}") from None
    model.info_["train_sets"] = names
    model.save(out)
    console.print(f"model written to {out}/ (use: cellscape segment --model {out} IMAGES)")
