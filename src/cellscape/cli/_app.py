"""The Typer application shared by all command modules, and the helpers they use."""

from __future__ import annotations

import functools
import sys
from typing import Annotated

import typer
from rich.console import Console

from ..errors import CellscapeError

app = typer.Typer(
    name="cellscape",
    help="Microscopy images in, single-cell data out.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


#: ``--pixel-size`` of the segmenting commands (one definition, one help text)
PixelSizeOption = Annotated[
    float | None,
    typer.Option(
        "--pixel-size",
        help="Pixel size in µm, used instead of what the files record: sets the µm columns, "
        "and rescales images for models that learned a physical size.",
    ),
]


def check_pixel_size(pixel_size: float | None, segmenter, name: str) -> None:
    """Refuse a pixel size that is not positive (the one bound, for every command); say so
    once when the model cannot use the pixel size."""
    if pixel_size is None:
        return
    if pixel_size <= 0:
        raise fail("--pixel-size must be positive (µm per pixel)")
    if not segmenter.uses_pixel_size:
        console.print(
            f"note: model '{name}' knows cell sizes in pixels only (it learned no physical "
            "scale): --pixel-size sets the µm columns; use --diameter to rescale"
        )


def fail(message: str, code: int = 2) -> typer.Exit:
    err_console.print(f"[red]error:[/red] {message}", soft_wrap=True)
    return typer.Exit(code)


def friendly_errors(command):
    """Turn a CellscapeError raised by a command into one red line and exit code 2."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except CellscapeError as exc:
            raise fail(exc.message) from None

    return wrapper


def progress_bar(total: int):
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
        disable=total < 2,
    )


def main() -> None:
    """Entry point: run the app, turning input problems into one line and exit code 2."""
    try:
        app()
    except CellscapeError as exc:
        err_console.print(f"[red]error:[/red] {exc.message}", soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)
