"""The one exception type users see.

Every problem with user input (a missing file, a truncated TIFF, NaNs, a folder that cannot be
written) is raised as :class:`CellscapeError` with a one-line message that names the file and the
problem. The command line prints that line and moves on to the next file; it never shows a
traceback for these.
"""

from __future__ import annotations

from os import PathLike


class CellscapeError(Exception):
    """A problem with the user's input or output location, described in one line.

    Parameters
    ----------
    path : str or PathLike or None
        The file or folder concerned; ``None`` when the problem is not tied to a file.
    problem : str
        What is wrong, phrased for a biologist (no jargon about internals).
    """

    def __init__(self, path: str | PathLike | None, problem: str):
        self.path = None if path is None else str(path)
        self.problem = problem.strip().splitlines()[0] if problem.strip() else "unknown problem"
        super().__init__(self.message)

    @property
    def message(self) -> str:
        return f"{self.path}: {self.problem}" if self.path else self.problem


def unexpected_error(path: str | PathLike, exc: BaseException) -> str:
    """One line for a failure that is not the user's input (a bug, a dead worker), naming the
    file, so that a batch reports it and goes on with the other files."""
    return f"{path}: unexpected error ({type(exc).__name__}: {exc})".splitlines()[0]
