"""Core commands: ``segment``, ``evaluate`` and ``models``.

Each command is a thin layer over the Python API: it finds the inputs, calls the library, shows
progress and prints one line per problem (never a traceback for bad input), and exits non-zero
when something failed.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from ..errors import CellscapeError
from ._app import (
    PixelSizeOption,
    app,
    check_pixel_size,
    console,
    err_console,
    fail,
    friendly_errors,
    progress_bar,
)

EXAMPLES = {
    "nuclei": "nuclei images (fluorescence, H&E histology, bright field) from the Data Science "
    "Bowl 2018 (CC0), cropped, with their ground-truth masks",
}


def example_folder(name: str) -> Path:
    """Folder of a bundled example set."""
    if name not in EXAMPLES:
        raise CellscapeError(None, f"unknown example '{name}' (examples: {', '.join(EXAMPLES)})")
    return Path(str(resources.files("cellscape") / "data" / "examples" / name))


@app.command()
@friendly_errors
def segment(
    inputs: Annotated[
        list[str] | None,
        typer.Argument(
            help="Image files, folders or glob patterns (TIFF, OME-TIFF, PNG, JPEG, OME-Zarr).",
            show_default=False,
        ),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            "-m",
            help="Bundled model name (see `cellscape models`) or a saved model folder.",
        ),
    ] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")] = Path("results"),
    example: Annotated[
        str | None, typer.Option(help=f"Segment a bundled example set: {', '.join(EXAMPLES)}.")
    ] = None,
    diameter: Annotated[
        float | None,
        typer.Option(
            help="Typical cell diameter in pixels. 0: estimate it per image (learned models "
            "then segment twice when the cells are far from the size they learned). Default: "
            "classical estimates it, learned models use the size they were trained on."
        ),
    ] = None,
    channel: Annotated[
        str | None,
        typer.Option(
            help="Channel to segment: index or name (default: first, or "
            "the luminance of colour images)."
        ),
    ] = None,
    pixel_size: PixelSizeOption = None,
    save_png: Annotated[bool, typer.Option(help="Write an outline overlay PNG per image.")] = False,
    save_rois: Annotated[bool, typer.Option(help="Write an ImageJ ROI zip per image.")] = False,
    save_csv: Annotated[
        bool, typer.Option(help="Write a per-cell measurement CSV per image.")
    ] = False,
) -> None:
    """Segment images: writes OUT/<stem>_masks.tif (0 = background, one id per cell)."""
    from .. import io
    from ..batch import is_large, segment_large_file
    from ..models import DEFAULT_MODEL, load_model
    from ..pipeline import OutputOptions, segment_file

    items: list[str] = list(inputs or [])
    if example is not None:
        items.append(str(example_folder(example)))
        save_png = True  # an example is for looking at
    if not items:
        raise fail("no input images given (pass files or folders, or --example nuclei)")
    paths = io.expand_inputs(items)
    if not paths:
        raise fail(f"no images found in {', '.join(items)}")
    io.check_writable_folder(out)
    chan: int | str | None = int(channel) if channel is not None and channel.isdigit() else channel
    segmenter = load_model(model or DEFAULT_MODEL, diameter=diameter or None, channel=chan)
    if diameter == 0 and "auto_diameter" in segmenter.get_params():
        segmenter.set_params(auto_diameter=True)
    check_pixel_size(pixel_size, segmenter, model or DEFAULT_MODEL)
    options = OutputOptions(
        save_png=save_png, save_rois=save_rois, save_csv=save_csv, pixel_size=pixel_size
    )

    results = []
    with progress_bar(len(paths)) as progress:
        task = progress.add_task("segmenting", total=len(paths))
        for path in paths:
            progress.update(task, description=f"segmenting {path.name}")
            if is_large(path):  # bigger than memory: block-wise on Dask, OME-Zarr labels
                result = segment_large_file(path, segmenter, out, pixel_size=pixel_size)
            else:
                result = segment_file(path, segmenter, out, options)
            results.append(result)
            line = result.summary()
            progress.console.print(line if result.ok else f"[red]{line}[/red]", soft_wrap=True)
            progress.advance(task)
    failed = [r for r in results if not r.ok]
    n_cells = sum(r.n_cells for r in results)
    console.print(
        f"{len(results) - len(failed)} of {len(results)} images segmented, {n_cells} cells, "
        f"masks in {out}/"
    )
    if failed:
        err_console.print(
            f"[red]{len(failed)} failed:[/red] " + ", ".join(r.path.name for r in failed)
        )
        raise typer.Exit(1)


@app.command()
@friendly_errors
def evaluate(
    gt_dir: Annotated[Path, typer.Argument(help="Folder of ground-truth <stem>_masks.tif.")],
    pred_dir: Annotated[Path, typer.Argument(help="Folder of predicted <stem>_masks.tif.")],
    csv: Annotated[Path | None, typer.Option(help="Write one row of scores per image.")] = None,
) -> None:
    """Score predicted masks against ground truth (AP at IoU 0.5-0.9, F1, DSB2018, AJI, SEG...)."""
    from .. import io, metrics

    for folder in (gt_dir, pred_dir):
        if not folder.is_dir():
            raise fail(f"{folder}: folder not found")
    gt_files = {
        io.image_stem(p).removesuffix("_masks"): p for p in sorted(gt_dir.glob("*_masks.tif"))
    }
    pred_files = {
        io.image_stem(p).removesuffix("_masks"): p for p in sorted(pred_dir.glob("*_masks.tif"))
    }
    if not gt_files:
        raise fail(f"{gt_dir}: no *_masks.tif files")
    stems = sorted(gt_files)
    missing = [s for s in stems if s not in pred_files]
    rows, problems = [], []
    with progress_bar(len(stems)) as progress:
        task = progress.add_task("scoring", total=len(stems))
        for stem in stems:
            progress.advance(task)
            if stem not in pred_files:
                continue
            try:
                gt = io.read_labels(gt_files[stem])
                pred = io.read_labels(pred_files[stem])
                if gt.shape != pred.shape:
                    raise CellscapeError(
                        pred_files[stem],
                        f"shape {pred.shape} differs from the ground truth {gt.shape}",
                    )
                rows.append({"image": stem, **metrics.image_scores(gt, pred)})
            except CellscapeError as exc:
                problems.append(exc.message)
    for line in problems:
        err_console.print(f"[red]{line}[/red]", soft_wrap=True)
    if missing:
        err_console.print(
            f"[yellow]{len(missing)} ground-truth image(s) have no prediction and are not "
            f"scored:[/yellow] {', '.join(missing[:10])}{' ...' if len(missing) > 10 else ''}"
        )
    if not rows:
        raise fail("no image pairs could be scored")
    summary = metrics.summarize([{k: v for k, v in r.items() if k != "image"} for r in rows])
    for table in _summary_tables(summary):
        console.print(table)
    if csv is not None:
        import pandas as pd

        io.write_table(csv, pd.DataFrame(rows))
        console.print(f"per-image scores in {csv}")
    if problems:
        raise typer.Exit(1)


def _summary_tables(summary: dict) -> list[Table]:
    """Per-threshold detection scores, then per-cell overlap scores."""
    n = summary["n_images"]
    thresholds = [k.split("@")[1] for k in summary if k.startswith("ap@")]
    det = Table(
        title=f"Detection over {n} image(s): {summary['n_gt']} true, "
        f"{summary['n_pred']} predicted cells"
    )
    # pooled: TP, FP and FN summed over images first; AP/image: the mean of each image's AP.
    # Short headers keep the table readable in an 80-column terminal.
    for col in ("IoU", "AP pooled", "AP/image", "F1", "precision", "recall", "TP", "FP", "FN"):
        det.add_column(col, justify="right")
    for t in thresholds:
        det.add_row(
            t,
            *(
                f"{summary[k]:.4f}"
                for k in (
                    f"ap_pooled@{t}",
                    f"ap@{t}",
                    f"f1_pooled@{t}",
                    f"precision_pooled@{t}",
                    f"recall_pooled@{t}",
                )
            ),
            *(str(int(summary[k])) for k in (f"tp@{t}", f"fp@{t}", f"fn@{t}")),
        )
    seg = Table(title="Overlap scores")
    seg.add_column("metric")
    seg.add_column("mean over images", justify="right")
    seg.add_column("pooled over cells", justify="right")
    rows = [
        ("DSB2018 score (AP over IoU 0.50:0.05:0.95)", "dsb2018", None),
        ("Jaccard of matched cells (IoU >= 0.5)", "jaccard_mean", "jaccard_mean_pooled"),
        ("Dice of matched cells (IoU >= 0.5)", "dice_mean", "dice_mean_pooled"),
        ("SM similarity (Al-Kofahi 2018)", "sm_mean", "sm_mean_pooled"),
        ("fraction of cells with SM >= 0.6", "sm_fraction", "sm_fraction_pooled"),
        ("aggregated Jaccard index (Kumar 2017)", "aji", "aji_pooled"),
        ("CTC SEG", "seg", "seg_pooled"),
    ]
    for title, mean_key, pooled_key in rows:
        pooled = f"{summary[pooled_key]:.4f}" if pooled_key else "-"
        seg.add_row(title, f"{summary[mean_key]:.4f}", pooled)
    return [det, seg]


@app.command("models")
@friendly_errors
def list_models_command() -> None:
    """List the models cellscape can use, with what each is for."""
    from ..models import DEFAULT_MODEL, METHODS, list_models

    table = Table(title="Bundled models (use with --model NAME; a saved model folder works too)")
    table.add_column("name")
    table.add_column("method")
    table.add_column("for")
    table.add_column("held-out scores")
    for card in list_models():
        scores = card.scores()
        score_text = ", ".join(f"{label} {value:.3f}" for label, value in scores.items()) or "-"
        name = card.name + (" (default)" if card.name == DEFAULT_MODEL else "")
        table.add_row(name, card.method, card.purpose, score_text)
    console.print(table)
    console.print(f"methods: {', '.join(METHODS)}")
