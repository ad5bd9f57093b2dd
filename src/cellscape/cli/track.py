"""Commands of the track capability: ``track`` and ``quantify`` (registered on the shared app)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ._app import app, console, fail, friendly_errors, progress_bar


@app.command("track")
@friendly_errors
def track_command(
    masks: Annotated[
        Path,
        typer.Argument(
            help="Label frames: a folder of TIFFs (ordered by the number in their names) or "
            "one multi-page TIFF (T, Y, X)."
        ),
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")] = Path("tracks"),
    max_distance: Annotated[
        float | None,
        typer.Option(help="Largest move per frame in pixels (default: typical cell diameter)."),
    ] = None,
    divisions: Annotated[bool, typer.Option(help="Detect divisions.")] = True,
    gap_closing: Annotated[
        bool, typer.Option(help="Join tracks across one missing frame.")
    ] = False,
    jump: Annotated[
        float, typer.Option(help="Relative area change between frames that flags a cell.")
    ] = 0.3,
    frame_interval: Annotated[
        float, typer.Option(help="Time between frames (growth rates are per this unit).")
    ] = 1.0,
    plots: Annotated[
        bool, typer.Option(help="Write growth histogram and colony map PNGs.")
    ] = False,
) -> None:
    """Track cells: writes OUT/mask<T>.tif + res_track.txt (Cell Tracking Challenge format),
    lineage.csv, growth.csv and quality.csv."""
    from .. import io
    from .. import track as trk

    frames = trk.read_label_frames(masks)
    if frames.shape[0] < 2:
        raise fail(f"{masks}: need at least 2 frames to track, found {frames.shape[0]}")
    io.check_writable_folder(out)
    with progress_bar(frames.shape[0]) as progress:
        task = progress.add_task("tracking", total=frames.shape[0])
        result = trk.track(
            frames,
            max_distance=max_distance,
            divisions=divisions,
            gap_closing=gap_closing,
            progress=lambda n: progress.advance(task, n),
        )
    trk.write_ctc_result(out, result.labels, result.tracks)
    lineage = trk.lineage_table(result.tracks, result.link_kind)
    growth = trk.growth_table(result.labels, result.tracks, frame_interval=frame_interval)
    per_cell, rates = trk.area_jump_flags(growth, jump)
    io.write_table(out / "lineage.csv", lineage)
    io.write_table(out / "growth.csv", growth)
    io.write_table(out / "quality.csv", per_cell)
    if plots:
        trk.save_figure(trk.plot_growth_histogram(growth), out / "growth_histogram.png")
        trk.save_figure(trk.plot_colony_growth(result.labels, growth), out / "colony_growth.png")
    console.print(
        f"{frames.shape[0]} frames, {result.n_tracks} tracks, {result.n_divisions} divisions; "
        f"{rates['n_flagged']} of {rates['n_cells']} cells flagged for area jumps >= "
        f"{jump:.0%} ({rates['step_error_rate']:.1%} of frame-to-frame steps); results in {out}/"
    )


@app.command("quantify")
@friendly_errors
def quantify_command(
    masks: Annotated[
        Path,
        typer.Argument(help="Whole-cell label frames (folder or multi-page TIFF), ids = nuclei."),
    ],
    images: Annotated[
        Path, typer.Argument(help="Reporter images (folder or multi-page TIFF), same frames.")
    ],
    nuclei: Annotated[
        Path, typer.Option("--nuclei", help="Nucleus label frames with the cell ids.")
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output CSV table.")] = Path(
        "reporter.csv"
    ),
    method: Annotated[
        list[str] | None,
        typer.Option(help="Cytoplasm estimate: mask, ring, mixture (repeat for several)."),
    ] = None,
    ring_radius: Annotated[int, typer.Option(help="Cytoring width in pixels.")] = 4,
    ring_gap: Annotated[int, typer.Option(help="Cytoring distance from the nucleus.")] = 0,
    plot: Annotated[
        Path | None, typer.Option(help="Also write a PNG of the C/N traces here.")
    ] = None,
) -> None:
    """Per-cell nuclear and cytoplasmic reporter intensity and their ratios (N/C and C/N)."""
    from .. import io, quantify
    from .. import track as trk
    from ..errors import CellscapeError

    cells = trk.read_label_frames(masks)
    nuc = trk.read_label_frames(nuclei)
    reporter = _read_frames(images)
    for name, arr, path in (("nuclei", nuc, nuclei), ("images", reporter, images)):
        if arr.shape != cells.shape:
            raise CellscapeError(path, f"{name} have shape {arr.shape}, masks {cells.shape}")
    methods = tuple(method or ("mask", "ring", "mixture"))
    bad = [m for m in methods if m not in quantify.REPORTER_METHODS]
    if bad:
        raise fail(f"unknown method {bad[0]!r} (use mask, ring or mixture)")
    table = quantify.reporter_table(
        nuc, reporter, cells, methods=methods, ring_radius=ring_radius, ring_gap=ring_gap
    )
    io.write_table(out, table)
    if plot is not None:
        trk.save_figure(quantify.plot_reporter_traces(table), plot)
    console.print(f"{table['id'].nunique()} cells over {cells.shape[0]} frames; table in {out}")


def _read_frames(source: Path):
    """Intensity frames (T, Y, X) from a folder of TIFFs or one multi-page TIFF."""
    import numpy as np

    from .. import io
    from ..errors import CellscapeError
    from ..track import _NUMBER

    if not source.exists():
        raise CellscapeError(source, "not found")
    if source.is_file():
        data, _ = io.read_image(source)
        return data[None] if data.ndim == 2 else data
    files = [p for p in source.iterdir() if p.suffix.lower() in (".tif", ".tiff")]
    if not files:
        raise CellscapeError(source, "no .tif images in this folder")

    def key(p: Path):
        m = _NUMBER.search(p.stem)
        return (int(m.group(1)) if m else -1, p.name)

    return np.stack([io.read_image(p)[0] for p in sorted(files, key=key)])
