"""Commands of the batch capability (registered on the shared app by importing this module)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

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


@app.command("batch")
@friendly_errors
def batch_command(
    inputs: Annotated[
        list[str],
        typer.Argument(
            help="Image files, folders or glob patterns (TIFF, OME-TIFF, PNG, JPEG, OME-Zarr).",
            show_default=False,
        ),
    ],
    model: Annotated[
        str,
        typer.Option(
            "--model", "-m", help="Bundled model name or a saved model folder the workers can read."
        ),
    ] = "classical",
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")] = Path("results"),
    workers: Annotated[
        int | None,
        typer.Option(help="Worker processes of the local cluster (default: one per core)."),
    ] = None,
    scheduler: Annotated[
        str | None,
        typer.Option(help="Use a running Dask cluster instead, e.g. tcp://host:8786."),
    ] = None,
    diameter: Annotated[
        float | None, typer.Option(help="Typical cell diameter in pixels (default: estimated).")
    ] = None,
    channel: Annotated[str | None, typer.Option(help="Channel to segment: index or name.")] = None,
    pixel_size: PixelSizeOption = None,
    save_png: Annotated[bool, typer.Option(help="Write an outline overlay PNG per image.")] = False,
    save_rois: Annotated[bool, typer.Option(help="Write an ImageJ ROI zip per image.")] = False,
    resume: Annotated[
        bool,
        typer.Option(help="Skip images whose outputs an earlier run completed (verified)."),
    ] = True,
) -> None:
    """Segment many images in parallel on Dask; resumable; merged table in OUT/cells.csv."""
    from .. import io
    from ..batch import segment_many
    from ..pipeline import OutputOptions

    if workers is not None and scheduler is not None:
        raise fail("give --workers or --scheduler, not both")
    if workers is not None and workers < 1:
        raise fail("--workers must be at least 1")
    paths = io.expand_inputs(inputs)
    if not paths:
        raise fail(f"no images found in {', '.join(inputs)}")
    chan: int | str | None = int(channel) if channel is not None and channel.isdigit() else channel
    if pixel_size is not None:  # the note about models without a physical scale, before the run
        from ..models import load_model

        check_pixel_size(pixel_size, load_model(model, channel=chan), str(model))
    with progress_bar(len(paths)) as progress:
        task = progress.add_task("segmenting", total=len(paths))

        def show(outcome) -> None:
            if outcome.status == "failed":
                progress.console.print(f"[red]{outcome.summary()}[/red]", soft_wrap=True)
            progress.advance(task)

        report = segment_many(
            [str(p) for p in paths],
            model,
            out,
            OutputOptions(
                save_png=save_png, save_rois=save_rois, save_csv=True, pixel_size=pixel_size
            ),
            model_params={"diameter": diameter, "channel": chan},
            scheduler=scheduler,
            n_workers=workers,
            resume=resume,
            progress=show,
        )
    n_cells = sum(o.n_cells for o in report.outcomes if o.status != "failed")
    console.print(
        f"{len(report.done)} segmented, {len(report.skipped)} already done (skipped), "
        f"{len(report.failed)} failed; {n_cells} cells in {report.seconds:.1f} s; "
        f"table {report.table or '-'}, manifest {report.manifest}"
    )
    if report.failed:
        err_console.print(f"[red]{len(report.failed)} failed:[/red]")
        for outcome in report.failed:
            err_console.print(f"  {outcome.error}", soft_wrap=True)
        raise typer.Exit(1)
