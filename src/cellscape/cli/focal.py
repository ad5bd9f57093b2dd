"""Commands of the focal capability: ``cellscape focal train`` and ``cellscape focal segment``.

Registered on the shared app as the ``focal`` sub-command group when this module is imported.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from ..errors import CellscapeError
from ._app import app, console, err_console, fail, friendly_errors, progress_bar

focal_app = typer.Typer(
    name="focal",
    help="Segment cells in bright-field z-stacks by the focal signature of each pixel.",
    no_args_is_help=True,
)
app.add_typer(focal_app, name="focal")


def _read_stack(path: Path):
    from .. import io

    stack, meta = io.read_image(path)
    if stack.ndim != 3 or meta.axes != "ZYX":
        raise CellscapeError(path, f"is not a z-stack (axes '{meta.axes}', shape {stack.shape})")
    return stack, meta


@focal_app.command("train")
@friendly_errors
def train(
    files: Annotated[
        list[Path],
        typer.Argument(
            help="STACK LABELS pairs: a z-stack (multi-page TIFF / OME-TIFF) and its painted "
            "label image (0 = unlabelled, 1..K = the classes in --classes order).",
            show_default=False,
        ),
    ],
    classes: Annotated[
        str,
        typer.Option(
            help="Comma-separated names of label values 1..K, e.g. interior,contour,background. "
            "background/contour/halo/wall have a role; other names are cell interiors (types)."
        ),
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Model folder to write.")] = Path(
        "focal_model"
    ),
    classifier: Annotated[
        str,
        typer.Option(
            help="svm, rf, mlp, linear (fastest) or cnn (reads the z-profiles of each pixel's "
            "neighbourhood: most accurate on thin contours and halos, minutes to train)."
        ),
    ] = "mlp",
    components: Annotated[
        float, typer.Option(help="PCA components (int) or variance fraction (<1).")
    ] = 10,
    n_frames: Annotated[
        int | None, typer.Option("--n-frames", help="Use this many frames (default: all).")
    ] = None,
    spacing: Annotated[str, typer.Option(help="Frame spacing for --n-frames: even or log.")] = (
        "even"
    ),
    frame_list: Annotated[
        str | None, typer.Option("--frame-list", help="Explicit frame indices, e.g. 0,20,45,50.")
    ] = None,
    normalization: Annotated[
        str, typer.Option(help="auto (equalize; stretch for cnn), equalize (paper) or stretch.")
    ] = "auto",
    xy_sigma: Annotated[
        float,
        typer.Option(
            "--xy-sigma",
            help="Smooth each used frame in Y, X by a Gaussian of this sigma (px) before "
            "reading the z-profiles: denoises noisy stacks (0 = off, 1 = a good start).",
        ),
    ] = 0.0,
    cnn_steps: Annotated[
        int, typer.Option("--cnn-steps", help="Training steps of the cnn classifier.")
    ] = 1500,
) -> None:
    """Train a focal-signature model on painted z-stacks; prints held-out accuracy."""
    from .. import io
    from ..methods.focal import FocalSignature

    if len(files) % 2:
        raise fail("give STACK LABELS pairs (an even number of files)")
    names = [c.strip() for c in classes.split(",") if c.strip()]
    frames = None
    if frame_list:
        try:
            frames = [int(f) for f in frame_list.split(",") if f.strip()]
        except ValueError:
            raise fail(
                f"--frame-list must be integers separated by commas, got {frame_list!r}"
            ) from None
    io.check_writable_folder(out)
    stacks, targets = [], []
    for stack_path, label_path in zip(files[::2], files[1::2], strict=True):
        stack, _ = _read_stack(stack_path)
        labels = io.read_labels(label_path)
        if labels.shape != stack.shape[1:]:
            raise CellscapeError(
                label_path, f"labels {labels.shape} do not match the stack frames {stack.shape[1:]}"
            )
        if labels.max() > len(names):
            raise CellscapeError(
                label_path,
                f"has label value {int(labels.max())} but --classes names only {len(names)}",
            )
        stacks.append(stack)
        targets.append(labels)
    model = FocalSignature(
        classes=names,
        classifier=classifier,
        n_components=int(components) if components >= 1 else components,
        n_frames=n_frames,
        spacing=spacing,
        frames=frames,
        normalization=normalization,
        xy_sigma=xy_sigma,
        cnn_steps=cnn_steps,
    )
    try:
        if classifier == "cnn":
            with progress_bar(cnn_steps) as progress:
                task = progress.add_task("training (cnn)", total=cnn_steps)

                def report(step: int, steps: int, loss: float) -> None:
                    progress.update(
                        task, completed=step, description=f"training (cnn), loss {loss:.3f}"
                    )

                model.fit(stacks, targets, progress=report)
        else:
            with console.status(f"training ({classifier})"):
                model.fit(stacks, targets)
    except ValueError as exc:
        raise fail(str(exc)) from None
    model.save(out)
    val = model.info_["validation"]
    table = Table(title=f"held-out 10% of labelled pixels: accuracy {val['accuracy']:.4f}")
    table.add_column("true \\ predicted")
    for n in model.class_names:
        table.add_column(n, justify="right")
    for n, row in zip(model.class_names, val["confusion"], strict=True):
        table.add_row(n, *map(str, row))
    console.print(table)
    console.print(
        f"model in {out}/ ({len(model.frames_)} frames, {model.proj_.shape[0]} components)"
    )


@focal_app.command("segment")
@friendly_errors
def segment(
    model: Annotated[Path, typer.Argument(help="Model folder written by `focal train`.")],
    inputs: Annotated[list[str], typer.Argument(help="Z-stacks: files, folders or glob patterns.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")] = Path("results"),
    save_probabilities: Annotated[
        bool, typer.Option(help="Also write <stem>_probabilities.tif (K, Y, X) float32.")
    ] = False,
) -> None:
    """Segment z-stacks: writes <stem>_masks.tif, _classes.tif, _confidence.tif (+ cell types)."""
    import numpy as np
    import pandas as pd

    from .. import io
    from ..methods.focal import FocalSignature

    segmenter = FocalSignature.load(model)
    paths = io.expand_inputs(inputs)
    if not paths:
        raise fail(f"no images found in {', '.join(inputs)}")
    io.check_writable_folder(out)
    failed = []
    n_cells = 0
    with progress_bar(len(paths)) as progress:
        task = progress.add_task("segmenting", total=len(paths))
        for path in paths:
            progress.update(task, description=f"segmenting {path.name}")
            try:
                stack, meta = _read_stack(path)
                res = segmenter.analyze(stack, meta)
                stem = io.image_stem(path)
                plane = io.ImageMeta(axes="YX", pixel_size=meta.pixel_size)
                io.write_labels(out / f"{stem}_masks.tif", res.labels, meta)
                io.write_tiff(out / f"{stem}_classes.tif", res.class_map, plane)
                io.write_tiff(out / f"{stem}_confidence.tif", res.confidence, plane)
                if save_probabilities:
                    io.write_tiff(
                        out / f"{stem}_probabilities.tif",
                        res.probabilities,
                        io.ImageMeta(axes="CYX", pixel_size=meta.pixel_size),
                    )
                if len(res.type_names) > 1:
                    ids = np.arange(1, int(res.labels.max()) + 1)
                    types = [res.type_names[t] for t in res.cell_types[1:]]
                    table = pd.DataFrame({"label": ids, "cell_type": types})
                    io.write_table(out / f"{stem}_cell_types.csv", table)
                n = int(res.labels.max())
                n_cells += n
                progress.console.print(f"{path.name}: {n} cells")
            except CellscapeError as exc:
                failed.append(path)
                progress.console.print(f"[red]{exc.message}[/red]", soft_wrap=True)
            progress.advance(task)
    console.print(
        f"{len(paths) - len(failed)} of {len(paths)} stacks segmented, {n_cells} cells, in {out}/"
    )
    if failed:
        err_console.print(f"[red]{len(failed)} failed:[/red] " + ", ".join(p.name for p in failed))
        raise typer.Exit(1)
