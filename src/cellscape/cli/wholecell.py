"""Commands of single-channel whole-cell segmentation (``cellscape train wholecell``).

Training images hold a cytoplasm-marker channel and a nuclear channel; the two-channel
segmenter turns each pair into training targets (no drawing needed), or drawn cell masks
(``<stem>_masks.tif``) are used for the cells when ``--masks`` is given. The trained folder
segments single-channel images with ``cellscape segment --model <folder>``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from rich.table import Table

from ..errors import CellscapeError
from ._app import console, fail, friendly_errors, progress_bar
from .train import train_app


def _channel(value: str | None) -> int | str | None:
    if value is None:
        return None
    return int(value) if value.lstrip("-").isdigit() else value


def _pick(image: np.ndarray, meta, channel, path: Path) -> np.ndarray:
    from ..preprocess import to_single_channel

    if image.ndim != 3 or meta.axes != "CYX":
        raise CellscapeError(
            path, f"needs a marker and a nuclear channel (C, Y, X), got axes '{meta.axes}'"
        )
    return to_single_channel(image, meta, channel)


def _load_training_data(
    files: list[Path],
    marker: int | str,
    nuclear: int | str,
    masks: bool,
    pixel_size: float | None,
    cell_area: float,
):
    """Read every file, make its targets; returns images, targets, metas, cell labels."""
    from .. import io
    from ..twochannel import TwoChannelSegmenter, class_targets

    images, targets, metas, cells_all = [], [], [], []
    with progress_bar(len(files)) as bar:
        task = bar.add_task("making targets", total=len(files))
        for path in files:
            image, meta = io.read_image(path)
            px = meta.pixel_size or pixel_size
            cell_plane = _pick(image, meta, marker, path)
            nuclear_plane = _pick(image, meta, nuclear, path)
            seg = TwoChannelSegmenter(pixel_size=px or 0.65, cell_area=cell_area)
            result = seg.segment(cell_plane, nuclear_plane)
            cells = result.cells
            if masks:
                mask_path = path.parent / f"{io.image_stem(path)}_masks.tif"
                if not mask_path.exists():
                    raise CellscapeError(mask_path, "mask file not found (--masks was given)")
                cells = io.read_labels(mask_path)
                if cells.shape != cell_plane.shape:
                    raise CellscapeError(
                        mask_path, f"masks {cells.shape} do not match the image {cell_plane.shape}"
                    )
            images.append(cell_plane)
            targets.append(class_targets(cells, result.nuclei))
            metas.append(io.ImageMeta(axes="YX", pixel_size=px, source=str(path)))
            cells_all.append(cells)
            bar.advance(task)
    return images, targets, metas, cells_all


@train_app.command("wholecell")
@friendly_errors
def train_wholecell(
    inputs: Annotated[
        list[Path],
        typer.Argument(
            help="Training images (files or folders) with a cytoplasm-marker and a nuclear "
            "channel.",
            show_default=False,
        ),
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Model folder to write.")] = Path(
        "wholecell_model"
    ),
    marker_channel: Annotated[
        str, typer.Option("--marker-channel", help="Cytoplasm-marker channel (index or name).")
    ] = "0",
    nuclear_channel: Annotated[
        str, typer.Option("--nuclear-channel", help="Nuclear-stain channel (index or name).")
    ] = "1",
    masks: Annotated[
        bool,
        typer.Option(
            "--masks", help="Use drawn cell masks <stem>_masks.tif instead of automatic cells."
        ),
    ] = False,
    pixel_size: Annotated[
        float | None, typer.Option(help="Pixel size in µm when the files do not record it.")
    ] = None,
    cell_area: Annotated[
        float, typer.Option(help="Expected cell area in µm² (automatic targets).")
    ] = 600.0,
    filters: Annotated[
        str, typer.Option(help="U-Net filters per level (the paper: 32,64,128,128,256).")
    ] = "32,64,128,128,256",
    loss: Annotated[str, typer.Option(help="rmsd (the paper) or cross_entropy.")] = "rmsd",
    epochs: Annotated[int, typer.Option(help="Training epochs.")] = 20,
    steps: Annotated[int, typer.Option(help="Batches per epoch.")] = 100,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Patches per batch.")] = 8,
    patch: Annotated[
        int, typer.Option(help="Patch edge in px (0 = whole images); inner patch-16 counted.")
    ] = 176,
    learning_rate: Annotated[float, typer.Option("--lr", help="Learning rate.")] = 1e-3,
    tophat_um: Annotated[
        float, typer.Option("--tophat-um", help="Top-hat kernel in µm (0 = off).")
    ] = 130.0,
    val_fraction: Annotated[
        float, typer.Option(help="Fraction of the images kept for validation.")
    ] = 0.2,
    cv: Annotated[
        int,
        typer.Option(
            help="k-fold cross-validation (k >= 3) instead of one training: writes cv.json and "
            "cv_roc.png into --out."
        ),
    ] = 0,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
) -> None:
    """Train a single-channel whole-cell model (U-Net + nuclei seeds + seeded watershed)."""
    from .. import io
    from ..methods.wholecell import WholeCell, cross_validate
    from ..roc import plot_roc

    files = io.expand_inputs(inputs)
    if not files:
        raise fail("no images found in the inputs")
    try:
        filter_list = tuple(int(f) for f in filters.split(",") if f.strip())
    except ValueError:
        raise fail(f"--filters must be comma-separated integers, got '{filters}'") from None
    if loss not in ("rmsd", "cross_entropy"):
        raise fail(f"--loss must be rmsd or cross_entropy, got '{loss}'")
    marker = _channel(marker_channel)
    images, targets, metas, cells = _load_training_data(
        files, marker, _channel(nuclear_channel), masks, pixel_size, cell_area
    )
    threads = int(os.environ.get("CELLSCAPE_THREADS", 0)) or None

    def make_model() -> WholeCell:
        return WholeCell(
            filters=filter_list,
            loss=loss,
            epochs=epochs,
            steps_per_epoch=steps,
            batch_size=batch_size,
            patch=patch,
            learning_rate=learning_rate,
            tophat_um=tophat_um or None,
            pixel_size=pixel_size,
            seed=seed,
        )

    if cv:
        if cv < 3 or len(images) < cv:
            raise fail(f"--cv needs k >= 3 and at least k images ({len(images)} given)")
        result = cross_validate(
            make_model, images, targets, cv, metas=metas, cell_labels=cells, threads=threads
        )
        table = Table("fold", "test images", "nucleus AUC", "cell AUC", "cell acc@0.5", "SM")
        for i, f in enumerate(result["folds"]):
            table.add_row(
                str(i + 1),
                str(len(f["test"])),
                f"{f['nucleus']['auc']:.3f}",
                f"{f['cell']['auc']:.3f}",
                f"{f['cell']['accuracy']:.3f}",
                f"{np.mean(f['sm']):.3f}",
            )
        console.print(table)
        plot = plot_roc(result["roc"], out / "cv_roc.png", f"{cv}-fold cross-validation")
        summary = {
            "folds": result["folds"],
            "summary": result["summary"],
            "files": [str(f) for f in files],
        }
        io.write_json(out / "cv.json", summary)
        console.print(f"ROC plot: {plot}; scores: {out / 'cv.json'}")
        return

    n_val = int(round(val_fraction * len(images))) if len(images) > 1 else 0
    order = np.random.default_rng(seed).permutation(len(images))
    val, train = order[:n_val], order[n_val:]
    model = make_model()
    model.channel = None
    model.fit(
        [images[i] for i in train],
        [targets[i] for i in train],
        [metas[i] for i in train],
        val_images=[images[i] for i in val] or None,
        val_targets=[targets[i] for i in val],
        val_metas=[metas[i] for i in val],
        checkpoint_dir=out.parent / f".{out.name}.checkpoints",
        threads=threads,
    )
    model.info_["training_data"] = [str(files[i]) for i in train]
    model.save(out)
    console.print(
        f"saved {out} ({len(train)} training, {len(val)} validation images); "
        f"segment with: cellscape segment IMAGES --model {out}"
    )
