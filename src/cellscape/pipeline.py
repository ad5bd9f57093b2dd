"""Segment one image file and write its outputs: the unit of work of the CLI and batch runs.

Reading, segmenting and writing are kept apart so that a failure in any step is reported for
that file alone (as a :class:`~cellscape.errors.CellscapeError` turned into a result row) and
never leaves half-written outputs: every writer in :mod:`cellscape.io` is atomic.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import io
from .errors import CellscapeError, unexpected_error


@dataclass
class OutputOptions:
    """Which outputs to write next to ``<stem>_masks.tif``, and the pixel size to assume.

    ``pixel_size`` (µm per pixel), when given, replaces what each file records (files often
    record none, or a wrong one): it sets the µm columns of the tables and the scale of models
    that learned one (``Segmenter.uses_pixel_size``).
    """

    save_png: bool = False
    save_rois: bool = False
    save_csv: bool = False
    pixel_size: float | None = None


@dataclass
class ImageResult:
    """What happened to one input file."""

    path: Path
    n_cells: int = 0
    seconds: float = 0.0
    outputs: list[Path] = field(default_factory=list)
    error: str | None = None
    median_area: float = float("nan")

    @property
    def ok(self) -> bool:
        return self.error is None

    def summary(self) -> str:
        """One line for the terminal."""
        if not self.ok:
            return f"FAILED {self.error}"
        area = f", median area {self.median_area:.0f} px" if self.n_cells else ""
        return f"{self.path.name}: {self.n_cells} cells{area}, {self.seconds:.2f} s"


def output_paths(path: Path, out_dir: Path, options: OutputOptions) -> dict[str, Path]:
    """The files :func:`segment_file` writes for ``path`` (masks always, the rest on request)."""
    stem = io.image_stem(path)
    paths = {"masks": out_dir / f"{stem}_masks.tif"}
    if options.save_png:
        paths["png"] = out_dir / f"{stem}_overlay.png"
    if options.save_rois:
        paths["rois"] = out_dir / f"{stem}_rois.zip"
    if options.save_csv:
        paths["csv"] = out_dir / f"{stem}_cells.csv"
    return paths


def segment_file(
    path: str | Path, model, out_dir: str | Path, options: OutputOptions | None = None
) -> ImageResult:
    """Read an image, segment it with ``model`` and write the requested outputs.

    Parameters
    ----------
    path : str or Path
        Image file (TIFF, OME-TIFF, PNG, JPEG) or OME-Zarr folder.
    model : Segmenter
        Any cellscape method (see :func:`cellscape.models.load_model`).
    out_dir : str or Path
        Folder for ``<stem>_masks.tif`` and the optional outputs.
    options : OutputOptions, optional
        Which optional outputs to write.

    Returns
    -------
    ImageResult
        Never raises for bad input: problems are returned in ``error`` as one line naming the
        file.
    """
    from .quantify import cell_table
    from .viz import outline_overlay

    path = Path(path)
    out_dir = Path(out_dir)
    options = options or OutputOptions()
    result = ImageResult(path=path)
    start = time.perf_counter()
    try:
        image, meta = io.read_image(path)
        if options.pixel_size:
            meta = meta.with_(pixel_size=float(options.pixel_size))
        try:
            labels = model.segment(image, meta)
        except CellscapeError as exc:
            if exc.path is None:
                raise CellscapeError(path, exc.problem) from None
            raise
        targets = output_paths(path, out_dir, options)
        io.write_labels(targets["masks"], labels, meta)
        if "png" in targets:
            io.write_png(targets["png"], outline_overlay(image, labels, meta))
        if "rois" in targets:
            io.write_rois(targets["rois"], labels)
        if "csv" in targets:
            io.write_table(targets["csv"], cell_table(labels, image, meta))
        result.outputs = list(targets.values())
        areas = np.bincount(labels.ravel())[1:]
        areas = areas[areas > 0]
        result.n_cells = int(areas.size)
        result.median_area = float(np.median(areas)) if areas.size else float("nan")
    except CellscapeError as exc:
        result.error = exc.message
    except MemoryError:
        result.error = f"{path}: not enough memory to process this image"
    except Exception as exc:  # a bug must not stop the other files of a batch
        result.error = unexpected_error(path, exc)
    result.seconds = time.perf_counter() - start
    return result
