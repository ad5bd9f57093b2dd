"""The Typer application shared by all command modules, and the helpers they use."""

from __future__ import annotations

import functools
import sys

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
