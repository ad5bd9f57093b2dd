"""Commands of label-free marker-controlled segmentation.

``cellscape selfsup IMAGE --nuclei NUCLEI --out DIR`` fits the self-supervised network on the image
and segments it in one go; ``cellscape selfsup-nuclei CELL NUCLEI ... --out FOLDER`` trains a
synthetic-nucleus model, so that later images need no nuclear stain. The fitted model is saved in
``DIR/model`` and segments new images with ``cellscape segment --model DIR/model``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from ..errors import CellscapeError
from ._app import app, console, fail, friendly_errors


def _threads() -> int | None:
    value = os.environ.get("CELLSCAPE_THREADS", "")
    return int(value) if value.isdigit() and int(value) > 0 else None


def _plane(path: Path):
    """A single-channel image file as float32 (Y, X)."""
    from .. import io

    data, meta = io.read_image(path)
    if data.ndim != 2:
        raise CellscapeError(
            path, f"expected a single-channel image, got axes {meta.axes} {data.shape}"
        )
    return data


def _channel(value: str | None) -> int | str | None:
    if value is None:
        return None
    return int(value) if value.lstrip("-").isdigit() else value


@app.command("selfsup")
@friendly_errors
def selfsup(
    image: Annotated[
        Path,
        typer.Argument(
            help="Cell image (TIFF, PNG, ...): one channel, or channels with a nuclear one.",
            show_default=False,
        ),
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")] = Path("results"),
    nuclei: Annotated[
        Path | None,
        typer.Option(help="Nucleus image of the same field: one marker per nucleus (DoG blobs)."),
    ] = None,
    nucleus_model: Annotated[
        Path | None,
        typer.Option(
            "--nucleus-model",
            help="Synthetic-nucleus model folder (from `cellscape selfsup-nuclei`): markers "
            "from nuclei predicted from the cell image, no nuclear stain needed.",
        ),
    ] = None,
    scribbles: Annotated[
        Path | None,
        typer.Option(
            help="Scribble image for bright field (0 unmarked, 1 background, 2 cell): the "
            "cell-area mask comes from a random forest trained on them."
        ),
    ] = None,
    foreground: Annotated[
        str,
        typer.Option(help="Cell-area map: intensity (fluorescence) or texture (phase, BF)."),
    ] = "intensity",
    beta: Annotated[
        float, typer.Option(help="Weight of the area outside the cell-area mask (0: no mask).")
    ] = 15.0,
    lam: Annotated[float, typer.Option("--lambda", help="Weight of the cross-patch term.")] = 3.32,
    patch: Annotated[int, typer.Option(help="Patch size in working pixels.")] = 64,
    steps: Annotated[int, typer.Option(help="Training steps (one window of patches each).")] = 200,
    scale: Annotated[
        str, typer.Option(help="Working scale: 'auto' (cells fit the patch) or a factor.")
    ] = "auto",
    alpha: Annotated[
        float | None, typer.Option(help="Expected area fraction of cells (graph cut prior).")
    ] = None,
    kappa: Annotated[float, typer.Option(help="Graph-cut smoothness.")] = 1.0,
    channel: Annotated[
        str, typer.Option(help="Cell channel of a multi-channel image (index or name).")
    ] = "0",
    nuclear_channel: Annotated[
        str, typer.Option(help="Nuclear channel of a multi-channel image (index or name).")
    ] = "nuclear",
    save_model: Annotated[
        bool, typer.Option(help="Save the fitted model in OUT/model for new images.")
    ] = True,
) -> None:
    """Fit a label-free marker-controlled U-Net on IMAGE and segment it (no annotation).

    Writes OUT/<stem>_masks.tif, OUT/<stem>_overlay.png, OUT/<stem>_markers.csv and the model
    (segment new images of the same kind with `cellscape segment --model OUT/model`).
    """
    import numpy as np
    import pandas as pd

    from .. import io
    from ..markers import SyntheticNuclei
    from ..methods.selfsup import SelfSupervised
    from ..viz import outline_overlay

    data, meta = io.read_image(image)
    if meta.axes not in ("YX", "CYX"):
        raise CellscapeError(image, f"expected a 2-D image or channels, got axes {meta.axes}")
    if foreground not in ("intensity", "texture"):
        raise fail(f"--foreground must be intensity or texture, got {foreground!r}")
    try:
        scale_value: str | float = "auto" if scale == "auto" else float(scale)
    except ValueError:
        raise fail(f"--scale must be 'auto' or a number, got {scale!r}") from None
    io.check_writable_folder(out)
    nuc = _plane(nuclei) if nuclei is not None else None
    scr = io.read_labels(scribbles) if scribbles is not None else None
    nmodel = SyntheticNuclei.load(nucleus_model) if nucleus_model is not None else None
    model = SelfSupervised(
        patch=patch,
        lam=lam,
        beta=beta,
        steps=steps,
        scale=scale_value,
        foreground=foreground,
        alpha=alpha,
        kappa=kappa,
        channel=_channel(channel),
        nuclear_channel=_channel(nuclear_channel),
        markers_from="synthetic" if nmodel is not None and nuc is None else "auto",
    )
    try:
        with console.status("finding markers"):
            plane = model.cell_plane(data, meta)
            if nuc is not None and nuc.shape != plane.shape:
                raise CellscapeError(nuclei, f"is {nuc.shape} but the cell image is {plane.shape}")
            if scr is not None and scr.shape != plane.shape:
                raise CellscapeError(
                    scribbles, f"is {scr.shape} but the cell image is {plane.shape}"
                )
            if nmodel is not None:
                model.nucleus_model_ = nmodel
            markers, source = model.find_markers(data, meta, nuc)
        if len(markers) == 0:
            raise CellscapeError(image, f"no markers found ({source}): nothing to segment")
        console.print(f"{len(markers)} markers from the {source}")
        model.fit(
            data,
            None,
            meta,
            markers=markers,
            scribbles=scr,
            nucleus_model=nmodel,
            threads=_threads(),
        )
        with console.status("segmenting"):
            labels = model.segment(data, meta, markers=markers)
    except ValueError as exc:
        raise fail(f"{image}: {exc}") from None
    model.info_["markers"] = [source]
    stem = io.image_stem(image)
    io.write_labels(out / f"{stem}_masks.tif", labels, meta)
    io.write_png(out / f"{stem}_overlay.png", outline_overlay(data, labels, meta))
    table = pd.DataFrame({"y": markers[:, 0], "x": markers[:, 1]})
    table.insert(0, "marker", np.arange(1, len(markers) + 1))
    io.write_table(out / f"{stem}_markers.csv", table)
    if save_model:
        model.save(out / "model")
    n = len(np.unique(labels)) - 1
    console.print(
        f"{n} cells from {len(markers)} markers in {model.info_['fit_seconds']:.0f} s; "
        f"masks in {out}/" + (f", model in {out / 'model'}/" if save_model else "")
    )


@app.command("selfsup-nuclei")
@friendly_errors
def selfsup_nuclei(
    files: Annotated[
        list[Path],
        typer.Argument(
            help="CELL NUCLEI pairs: a cell image and the nucleus image of the same field "
            "(two pairs are usually enough).",
            show_default=False,
        ),
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Model folder to write.")] = Path(
        "nucleus_model"
    ),
    steps: Annotated[int, typer.Option(help="Training steps (batches of 8 crops).")] = 400,
) -> None:
    """Train a synthetic-nucleus model (cell image -> nuclei) for `selfsup --nucleus-model`."""
    from .. import io
    from ..markers import SyntheticNuclei

    if len(files) % 2 or not files:
        raise fail("give CELL NUCLEI pairs (an even number of files)")
    io.check_writable_folder(out)
    cells, nuclei = [], []
    for cell_path, nuc_path in zip(files[::2], files[1::2], strict=True):
        c, n = _plane(cell_path), _plane(nuc_path)
        if c.shape != n.shape:
            raise CellscapeError(nuc_path, f"is {n.shape} but {cell_path.name} is {c.shape}")
        cells.append(c)
        nuclei.append(n)
    model = SyntheticNuclei(steps=steps).fit(cells, nuclei, threads=_threads())
    model.save(out)
    console.print(
        f"synthetic-nucleus model in {out}/ ({len(cells)} pairs, final loss "
        f"{model.info_['train_loss'][-1]:.3f})"
    )
