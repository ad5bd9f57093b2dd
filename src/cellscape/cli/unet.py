"""``cellscape train unet``: fine-tune a bundled U-Net (or train one) on your own masks.

The training data is a folder of Cellpose-style pairs, ``<id>_img.tif`` + ``<id>_masks.tif``
(what ``cellscape segment`` writes, corrected in napari or Fiji). A few of the pairs are held
out: they choose the best epoch and the watershed thresholds, and the command reports the
scores of the starting model and of the trained one on them, so you see whether training
helped. The folder it writes works with ``cellscape segment --model``.
"""

from __future__ import annotations

import math
import os
import shlex
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from ._app import console, fail, friendly_errors, progress_bar
from .train import train_app


def _scores(model, images, targets, metas) -> dict[str, float]:
    from .. import metrics

    pairs = zip(images, targets, metas, strict=True)
    s = metrics.summarize([metrics.image_scores(y, model.segment(x, m)) for x, y, m in pairs])
    return {k: s[k] for k in ("ap_pooled@0.5", "dsb2018")}


def _held_out(ids: list[str], fraction: float) -> set[str]:
    """The ids held out for tuning: ``fraction`` of them, at least one from 3 images on,
    chosen by a stable hash of the id (rerunning picks the same ones)."""
    from ..datasets import split_score

    if len(ids) < 3 or fraction <= 0:
        return set()
    count = max(1, math.floor(fraction * len(ids) + 0.5))
    return set(sorted(ids, key=lambda i: split_score(i, "cellscape-tune"))[:count])


@train_app.command("unet")
@friendly_errors
def train_unet(
    folder: Annotated[
        Path,
        typer.Argument(help="Folder of <id>_img.tif + <id>_masks.tif pairs.", show_default=False),
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Model folder to write.")] = Path(
        "unet_model"
    ),
    init: Annotated[
        str,
        typer.Option(
            help="Start from this U-Net (a bundled name such as 'nuclei', or a model folder); "
            "'none' trains a new network from scratch."
        ),
    ] = "nuclei",
    epochs: Annotated[int, typer.Option(help="Training epochs.")] = 20,
    steps: Annotated[int, typer.Option(help="Batches per epoch.")] = 50,
    learning_rate: Annotated[
        float | None,
        typer.Option(
            "--lr",
            help="Learning rate [default: a quarter of the starting model's when fine-tuning, "
            "2e-3 from scratch].",
            show_default=False,
        ),
    ] = None,
    filters: Annotated[
        str, typer.Option(help="U-Net filters per level (from scratch only).")
    ] = "16,32,64,128,256",
    colour: Annotated[
        str | None,
        typer.Option(
            help="How colour images become one plane: luminance or hematoxylin (H&E) "
            "[default: the starting model's; luminance from scratch].",
            show_default=False,
        ),
    ] = None,
    channels: Annotated[
        str | None,
        typer.Option(
            help="Channel names the network sees, comma-separated in order (from scratch only; "
            "e.g. phase,nuclear for whole cells): multi-channel images are matched by channel "
            "name, or by position when unnamed [default: one channel].",
            show_default=False,
        ),
    ] = None,
    tune_fraction: Annotated[
        float, typer.Option(help="Fraction of the pairs held out to tune and report on.")
    ] = 0.1,
    device: Annotated[str, typer.Option(help="cpu, cuda or auto (the GPU when there is one).")] = (
        "auto"
    ),
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
) -> None:
    """Fine-tune the bundled nuclei U-Net (or train a new one) on your images and masks."""
    from ..datasets import list_pairs
    from ..methods.unet import UNetSegmenter
    from ..models import load_model
    from ..nn.train import training_device
    from ..preprocess import COLOUR_MODES

    if colour is not None and colour not in COLOUR_MODES:
        raise fail(f"--colour must be one of {', '.join(COLOUR_MODES)}, got '{colour}'")
    if epochs < 1 or steps < 1:
        raise fail("--epochs and --steps must be at least 1")
    if not 0 <= tune_fraction < 1:
        raise fail(f"--tune-fraction must be in [0, 1), got {tune_fraction}")
    # a GPU steps faster than one core can crop and augment: batches come from worker processes
    on_gpu = training_device(device).type == "cuda"
    workers = min(8, (os.cpu_count() or 2) - 1) if on_gpu else 0

    pairs = list_pairs(folder)
    held_out = _held_out([p.id for p in pairs], tune_fraction)
    fit_data: tuple[list, list, list] = ([], [], [])
    tune_data: tuple[list, list, list] = ([], [], [])
    with progress_bar(len(pairs)) as bar:
        task = bar.add_task("reading pairs", total=len(pairs))
        for pair in pairs:
            image, meta, labels = pair.load()
            for store, value in zip(
                tune_data if pair.id in held_out else fit_data, (image, labels, meta), strict=True
            ):
                store.append(value)
            bar.advance(task)
    if not any(labels.max() > 0 for labels in fit_data[1]):
        raise fail(f"{folder}: the training masks hold no cells")

    if init.lower() == "none":
        try:
            filter_list = tuple(int(f) for f in filters.split(",") if f.strip())
        except ValueError:
            raise fail(f"--filters must be comma-separated integers, got '{filters}'") from None
        before = None
        names = tuple(c.strip() for c in (channels or "").split(",") if c.strip()) or None
        model = UNetSegmenter(
            filters=filter_list, colour=colour or "luminance", channels=names, seed=seed
        )
        model.set_params(learning_rate=learning_rate or model.learning_rate)
    else:
        model = load_model(init)
        if not isinstance(model, UNetSegmenter):
            raise fail(f"--init '{init}' is a '{model.method}' model, not a U-Net")
        if channels is not None:
            raise fail(
                "--channels applies to a new network (--init none); a model to "
                f"fine-tune keeps its own channels ({', '.join(model.channels or ()) or 'one'})"
            )
        # the starting model on the held-out pairs, to compare with the trained one
        before = _scores(model, *tune_data) if tune_data[0] else None
        # fine-tuning: a quarter of the model's rate keeps what it knew (as the napari plugin)
        model.set_params(
            learning_rate=learning_rate or model.learning_rate * 0.25,
            colour=colour or model.colour,
            seed=seed,
        )
    model.set_params(epochs=epochs, steps_per_epoch=steps)
    console.print(
        f"{len(fit_data[0])} pairs to learn from, {len(tune_data[0])} held out"
        + (f"; starting from '{init}'" if init.lower() != "none" else "; a new network")
    )

    threads = int(os.environ.get("CELLSCAPE_THREADS", 0)) or None
    model.fit(
        *fit_data,
        val_images=tune_data[0],
        val_targets=tune_data[1],
        val_metas=tune_data[2],
        checkpoint_dir=out / "checkpoints",
        threads=threads,
        warm_start=init.lower() != "none",
        precision="auto",
        device=device,
        workers=workers,
    )

    if tune_data[0]:
        rows = model.tune_thresholds(*tune_data)
        # the row of the thresholds it chose holds the trained model's scores
        chosen = next(
            r
            for r in rows
            if (r["foreground"], r["seed"]) == (model.foreground_threshold, model.seed_threshold)
        )
        held_out_scores = {"trained model": {k: chosen[k] for k in ("ap_pooled@0.5", "dsb2018")}}
        if before is not None:
            held_out_scores = {"starting model": before, **held_out_scores}
        table = Table(f"held-out pairs ({len(tune_data[0])})", "AP@0.5 pooled", "DSB2018")
        for name, s in held_out_scores.items():
            table.add_row(name, f"{s['ap_pooled@0.5']:.3f}", f"{s['dsb2018']:.3f}")
        console.print(table)
        # these pairs chose the epoch and the thresholds: tune scores, not a clean validation
        model.info_["tune_scores"] = held_out_scores
    model.info_.update(
        {
            "training_data": str(folder),
            "n_train_images": len(fit_data[0]),
            "held_out_ids": sorted(held_out),
            "initialised_from": None if init.lower() == "none" else init,
            "command": "cellscape " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
        }
    )
    model.save(out)
    console.print(f"model written to {out} (use it with: cellscape segment --model {out})")
