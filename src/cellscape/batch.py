"""Many images, or one image larger than memory, on a Dask cluster.

This is the only module of cellscape that knows about Dask. It runs the same models as the rest
of cellscape on ``dask.distributed``: a :class:`~distributed.LocalCluster` of worker processes by
default, or any cluster a :class:`~distributed.Client` is connected to (a scheduler address, or
a SLURM / PBS / LSF cluster made with dask-jobqueue).

* :func:`segment_many` segments many image files in parallel (one task per image, the model
  loaded once per worker) and resumes: every finished image leaves a small record with the size
  and SHA-256 of each of its outputs, so a re-run skips images whose outputs are complete and
  redoes the rest. Outputs are written atomically, so a killed run never leaves a corrupt mask.
* :func:`segment_large` segments one big 2-D image (OME-Zarr or TIFF) block by block with halos,
  stitches cells cut by block borders (see :mod:`cellscape.tiling`) and writes OME-Zarr labels
  in the NGFF labels layout, with memory bounded by the block size whatever the image size.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import io, tiling
from .errors import CellscapeError, unexpected_error
from .pipeline import ImageResult, OutputOptions, output_paths, segment_file

#: images with more pixels than this (per plane) go block-wise through :func:`segment_large`
#: when given to ``cellscape segment`` (8192 x 8192 by default)
LARGE_IMAGE_PIXELS = int(os.environ.get("CELLSCAPE_LARGE_PIXELS", 8192 * 8192))

MANIFEST_NAME = "cellscape-manifest.json"
RECORDS_DIR = ".cellscape-batch"
TABLE_NAME = "cells.csv"

# -------------------------------------------------------------------------------------------
# the cluster and the model on the workers
# -------------------------------------------------------------------------------------------


#: Dask settings of the local cluster's workers. Their default housekeeping wakes the worker's
#: event loop every 10-20 ms (statistical profiler, loop-health tick, system monitor); each wake
#: takes the GIL from the single compute thread, which made segmentation in a worker 30-40%
#: slower than in a plain process (benchmarks/batch_speedup.py). The profiler is off; the tick
#: and the system monitor run, at a pace that costs nothing measurable. Put the same keys in
#: the Dask configuration of a remote cluster's workers (``--scheduler``).
LOCAL_WORKER_CONFIG = {
    "distributed.worker.profile.enabled": False,
    "distributed.admin.tick.interval": "1s",
    "distributed.admin.system-monitor.interval": "5s",
    "distributed.admin.system-monitor.gil.enabled": False,
}


@contextlib.contextmanager
def cluster_client(
    client=None, *, scheduler: str | None = None, n_workers: int | None = None
) -> Iterator:
    """A Dask client: ``client`` itself, one connected to ``scheduler``, or a new LocalCluster.

    The local cluster has ``n_workers`` worker processes (default: one per CPU core) with one
    thread each, since the models are single-threaded numpy/scipy code that holds the GIL. Only
    what this function created is closed on exit.
    """
    from distributed import Client, LocalCluster

    if client is not None:
        yield client
        return
    if scheduler:
        try:
            own = Client(scheduler, timeout=30)
        except OSError as exc:
            raise CellscapeError(
                None, f"cannot reach the Dask scheduler {scheduler} ({exc})"
            ) from None
        with own:
            yield own
        return
    import dask

    # the worker processes take this configuration with them when they are spawned
    with dask.config.set(LOCAL_WORKER_CONFIG):
        cluster = LocalCluster(
            n_workers=n_workers or os.cpu_count() or 1,
            threads_per_worker=1,
            processes=True,
            dashboard_address=":0",
            silence_logs=logging.ERROR,
        )
    with cluster, Client(cluster) as own:
        yield own


@dataclass(frozen=True)
class _ModelSpec:
    """A model by name or folder, loaded by each worker itself (once, then cached)."""

    name_or_path: str
    params: tuple = ()


_WORKER_MODELS: dict = {}


def _worker_model(ref):
    """The model on this worker: loaded once per process from its name/path, then reused."""
    if not isinstance(ref, _ModelSpec):
        return ref  # a Segmenter object the client scattered to every worker
    if ref not in _WORKER_MODELS:
        from .models import load_model

        _WORKER_MODELS[ref] = load_model(ref.name_or_path, **dict(ref.params))
    return _WORKER_MODELS[ref]


def _model_ref(model, params: dict | None, client):
    """What to send to workers for ``model``, the model itself (for checks), and a job key.

    A name or folder travels as a name (folders as absolute paths, which the workers must see,
    as on a shared file system); a Segmenter object is scattered once to every worker.
    """
    from .models import load_model

    params = {k: v for k, v in (params or {}).items() if v is not None}
    if isinstance(model, str | os.PathLike):
        name = str(model)
        if Path(name).exists():
            name = str(Path(name).resolve())
        loaded = load_model(name, **params)  # fails here, once, on a bad name
        ref = _ModelSpec(name, tuple(sorted(params.items())))
    else:
        loaded = model
        if params:
            loaded.set_params(**params)
        ref = client.scatter(model, broadcast=True, hash=False)
    config = json.dumps(loaded.config(), sort_keys=True, default=str)
    return ref, loaded, hashlib.sha256(config.encode()).hexdigest()[:16]


# -------------------------------------------------------------------------------------------
# many images
# -------------------------------------------------------------------------------------------


@dataclass
class ImageOutcome:
    """What happened to one image of a batch.

    ``status`` is ``"done"`` (segmented in this run), ``"skipped"`` (complete outputs from an
    earlier run, verified) or ``"failed"`` (``error`` says why, in one line).
    """

    path: Path
    status: str
    n_cells: int = 0
    seconds: float = 0.0
    error: str | None = None

    def summary(self) -> str:
        if self.status == "failed":
            return f"FAILED {self.error}"
        return f"{self.path.name}: {self.n_cells} cells ({self.status}, {self.seconds:.2f} s)"


@dataclass
class BatchReport:
    """The outcome of :func:`segment_many`."""

    outcomes: list[ImageOutcome]
    out_dir: Path
    manifest: Path
    table: Path | None
    seconds: float = 0.0

    def _with(self, status: str) -> list[ImageOutcome]:
        return [o for o in self.outcomes if o.status == status]

    @property
    def done(self) -> list[ImageOutcome]:
        return self._with("done")

    @property
    def skipped(self) -> list[ImageOutcome]:
        return self._with("skipped")

    @property
    def failed(self) -> list[ImageOutcome]:
        return self._with("failed")


def _input_signature(path: Path) -> list[int]:
    """Size and modification time of an input, so that a changed input is segmented again."""
    try:
        st = path.stat()
    except OSError:
        return [-1, -1]
    return [int(st.st_size), int(st.st_mtime_ns)]


def _record_path(out_dir: Path, stem: str) -> Path:
    return out_dir / RECORDS_DIR / f"{stem}.json"


def _segment_one(path: str, model_ref, out_dir: str, options: dict, job: str) -> dict:
    """Worker task: segment one image, write its outputs, then its record (last, atomically)."""
    p, out = Path(path), Path(out_dir)
    result = segment_file(p, _worker_model(model_ref), out, OutputOptions(**options))
    record = {
        "input": str(p),
        "input_signature": _input_signature(p),
        "job": job,
        "status": "done" if result.ok else "failed",
        "error": result.error,
        "n_cells": result.n_cells,
        "seconds": round(result.seconds, 3),
        "outputs": {},
    }
    if result.ok:
        names = output_paths(p, out, OutputOptions(**options))
        for kind, target in names.items():
            size, digest = io.file_digest(target)
            record["outputs"][kind] = {"file": target.name, "size": size, "sha256": digest}
    # the record is the proof of completion: written after the outputs, so a run killed in
    # between leaves no record and the image is simply done again
    io.write_json(_record_path(out, io.image_stem(p)), record)
    return record


def _load_records(out_dir: Path) -> dict[str, dict]:
    """Records of earlier runs: the manifest, updated by the per-image records written since."""
    records: dict[str, dict] = {}
    manifest = out_dir / MANIFEST_NAME
    if manifest.exists():
        with contextlib.suppress(CellscapeError):
            records.update(io.read_json(manifest).get("images", {}))
    folder = out_dir / RECORDS_DIR
    if folder.is_dir():
        for f in folder.glob("*.json"):
            with contextlib.suppress(CellscapeError):
                records[f.stem] = io.read_json(f)
    return records


def is_complete(record: dict | None, path: Path, out_dir: Path, job: str) -> bool:
    """True when ``record`` proves that ``path`` was segmented by this job and that every
    output it lists is still on disk with the recorded size and SHA-256."""
    if not record or record.get("status") != "done" or record.get("job") != job:
        return False
    if record.get("input_signature") != _input_signature(path):
        return False
    outputs = record.get("outputs") or {}
    if "masks" not in outputs:
        return False
    for entry in outputs.values():
        target = out_dir / entry["file"]
        try:
            if target.stat().st_size != entry["size"]:
                return False
            if io.file_digest(target)[1] != entry["sha256"]:
                return False
        except OSError:
            return False
    return True


def segment_many(
    inputs: Sequence[str | os.PathLike],
    model="classical",
    out_dir: str | os.PathLike = "results",
    options: OutputOptions | None = None,
    *,
    model_params: dict | None = None,
    client=None,
    scheduler: str | None = None,
    n_workers: int | None = None,
    resume: bool = True,
    progress: Callable[[ImageOutcome], None] | None = None,
) -> BatchReport:
    """Segment many images in parallel on Dask, resumably, with a merged measurement table.

    Parameters
    ----------
    inputs : sequence of str or PathLike
        Image files, folders or glob patterns (as for ``cellscape segment``).
    model : str, PathLike or Segmenter
        A bundled model name or saved model folder (each worker loads it once; a folder must be
        readable by the workers), or a model object (sent once to every worker).
    out_dir : str or PathLike
        Output folder: ``<stem>_masks.tif`` and ``<stem>_cells.csv`` per image (plus the
        optional outputs of ``options``), the merged table ``cells.csv`` (every cell of every
        image, with an ``image`` column) and the manifest ``cellscape-manifest.json``.
    options : OutputOptions, optional
        Optional outputs; the per-image CSV is always written (it feeds the merged table).
    model_params : dict, optional
        Model parameters to override (e.g. ``{"diameter": 20}``).
    client : distributed.Client, optional
        Run on this client's cluster. Otherwise ``scheduler`` (an address such as
        ``tcp://host:8786``) is connected to, or a LocalCluster of ``n_workers`` processes
        (default: one per core) is started and closed again.
    resume : bool
        Skip images whose outputs an earlier run of the same model and options completed
        (checked by size and SHA-256); ``False`` segments everything again.
    progress : callable, optional
        Called with each :class:`ImageOutcome` as soon as it is known.

    Returns
    -------
    BatchReport
        One outcome per input; failures are reported there, never raised.

    Raises
    ------
    CellscapeError
        Before any work: no inputs, an unknown model, an unwritable output folder, or two
        inputs that would write the same output names.
    """
    from distributed import as_completed

    start = time.perf_counter()
    paths = io.expand_inputs(list(inputs))
    if not paths:
        raise CellscapeError(None, "no input images given")
    out = io.check_writable_folder(out_dir).resolve()
    stems: dict[str, Path] = {}
    for p in paths:
        stem = io.image_stem(p)
        if stem in stems:
            raise CellscapeError(p, f"same output name '{stem}' as {stems[stem]}; rename one")
        stems[stem] = p
    opts = options or OutputOptions()
    option_dict = {
        "save_png": opts.save_png,
        "save_rois": opts.save_rois,
        "save_csv": True,
        "pixel_size": opts.pixel_size,
    }

    outcomes: dict[Path, ImageOutcome] = {}

    def report(outcome: ImageOutcome) -> None:
        outcomes[outcome.path] = outcome
        if progress is not None:
            progress(outcome)

    with cluster_client(client, scheduler=scheduler, n_workers=n_workers) as dask_client:
        ref, _, job = _model_ref(model, model_params, dask_client)
        # options left unset stay out of the key, so that adding an option keeps old runs valid
        set_options = sorted((k, v) for k, v in option_dict.items() if v is not None)
        job = hashlib.sha256(f"{job}{set_options}".encode()).hexdigest()[:16]
        records = _load_records(out) if resume else {}
        todo = []
        for p in paths:
            record = records.get(io.image_stem(p))
            if resume and is_complete(record, p, out, job):
                report(ImageOutcome(p, "skipped", record["n_cells"], record["seconds"]))
            else:
                records.pop(io.image_stem(p), None)
                todo.append(p)
        futures = dask_client.map(
            _segment_one,
            [str(p.resolve()) if p.exists() else str(p) for p in todo],
            model_ref=ref,
            out_dir=str(out),
            options=option_dict,
            job=job,
            pure=False,
        )
        path_of = {f.key: p for f, p in zip(futures, todo, strict=True)}
        for future in as_completed(futures):
            p = path_of[future.key]
            try:
                record = future.result()
            except Exception as exc:  # a worker died (out of memory, killed): this image only
                error = f"{p}: worker failed ({type(exc).__name__}: {exc})".splitlines()[0]
                report(ImageOutcome(p, "failed", error=error))
                continue
            finally:
                future.release()
            records[io.image_stem(p)] = record
            if record["status"] == "done":
                report(ImageOutcome(p, "done", record["n_cells"], record["seconds"]))
            else:
                report(ImageOutcome(p, "failed", error=record["error"]))

    manifest = io.write_json(
        out / MANIFEST_NAME,
        {
            "format": "cellscape-batch-manifest",
            "job": job,
            "model": str(model) if isinstance(model, str | os.PathLike) else repr(model),
            "options": option_dict,
            "images": {s: records[s] for s in map(io.image_stem, paths) if s in records},
        },
    )
    finished = [p for p in paths if outcomes[p].status != "failed"]
    table = _merge_tables(out, finished) if finished else None
    ordered = [outcomes[p] for p in paths]
    return BatchReport(ordered, out, manifest, table, time.perf_counter() - start)


def _csv_field(text: str) -> str:
    """``text`` as one CSV field (quoted only when it must be, as the csv module does)."""
    if any(c in text for c in ',"\r\n'):
        return '"' + text.replace('"', '""') + '"'
    return text


def _merge_tables(out: Path, paths: Sequence[Path]) -> Path:
    """Concatenate the per-image cell tables into ``cells.csv`` with an ``image`` column,
    one image at a time (the merged table is never held in memory).

    The tables are joined as text, not parsed: this runs on the client after the last image,
    so it is the serial tail of every batch (parsing and rewriting 200 tables with pandas took
    2.6 s, longer than segmenting 20 images). A table whose header differs from the first one
    (a column added or missing) is aligned to it with pandas."""
    target = out / TABLE_NAME
    header: str | None = None
    with io.atomic_path(target) as tmp, open(tmp, "w", newline="") as merged:
        for p in paths:
            stem = io.image_stem(p)
            source = out / f"{stem}_cells.csv"
            lines = source.read_text().splitlines()
            if not lines:
                continue
            if header is None:
                header = lines[0]
                merged.write(f"image,{header}\n")
            if lines[0] != header:
                lines = _aligned_rows(source, header)
            prefix = _csv_field(stem) + ","
            merged.writelines(prefix + line + "\n" for line in lines[1:] if line)
    return target


def _aligned_rows(source: Path, header: str) -> list[str]:
    """The rows of ``source`` as CSV lines with the columns of ``header`` (header line first)."""
    from io import StringIO

    import pandas as pd

    columns = pd.read_csv(StringIO(header + "\n")).columns
    table = pd.read_csv(source).reindex(columns=columns)
    return table.to_csv(index=False, lineterminator="\n").splitlines()


# -------------------------------------------------------------------------------------------
# one image larger than memory
# -------------------------------------------------------------------------------------------


@dataclass
class LargeResult:
    """The outcome of :func:`segment_large`.

    Attributes
    ----------
    zarr_path : Path
        The OME-Zarr holding the labels (under ``labels/<name>``).
    name : str
        Name of the label image.
    n_cells : int
        Cells in the stitched result (ids ``1..n_cells``).
    n_blocks, n_skipped : int
        Blocks in the grid, and blocks skipped as empty.
    n_joined : int
        Cell pieces joined across block borders.
    seconds : float
        Wall time.
    """

    zarr_path: Path
    name: str
    n_cells: int
    n_blocks: int
    n_skipped: int
    n_joined: int
    seconds: float
    blocks: list[tiling.Block] = field(default_factory=list, repr=False)


def default_halo(model, max_diameter: float | None = None) -> int:
    """Halo (pixels) wide enough for the largest cell and the model's context.

    ``max_diameter`` defaults to 3 x the model's ``diameter`` parameter when it has one set, else
    64 px; the context is the model's ``receptive_field`` attribute when it has one, else 16 px.
    """
    if max_diameter is None:
        diameter = getattr(model, "diameter", None)
        max_diameter = 3 * float(diameter) if diameter else 64.0
    context = int(getattr(model, "receptive_field", 0) or 16)
    return int(math.ceil(max_diameter)) + context


def foreground_blocks(
    overview: np.ndarray, step: int, blocks: Sequence[tiling.Block], threshold: float | None = None
) -> list[bool]:
    """Which blocks have foreground in a low-resolution overview of the image.

    Parameters
    ----------
    overview : ndarray, shape (Y', X') or (C, Y', X')
        The image at ``1/step`` of full resolution (channels are summed).
    step : int
        Full-resolution pixels per overview pixel.
    blocks : sequence of Block
        The grid.
    threshold : float, optional
        Foreground is brighter than this; default: Otsu's threshold of the smoothed overview.
        (Bright objects on a dark background, as fluorescence.)

    Returns
    -------
    list of bool
        True for blocks whose outer box holds at least one foreground overview pixel.
    """
    from scipy import ndimage as ndi
    from skimage.filters import threshold_otsu

    plane = np.asarray(overview, dtype=np.float32)
    if plane.ndim == 3:
        plane = plane.sum(axis=0)
    plane = ndi.gaussian_filter(plane, 1.0)
    if threshold is None:
        threshold = float(threshold_otsu(plane)) if np.ptp(plane) > 0 else np.inf
    fg = plane > threshold
    keep = []
    for b in blocks:
        y0, y1, x0, x1 = b.outer
        keep.append(bool(fg[y0 // step : -(-y1 // step), x0 // step : -(-x1 // step)].any()))
    return keep


def _block_task(
    image: io.LazyImage,
    model_ref,
    block: tiling.Block,
    neighbours: list[tiling.Block],
    labels_array,
    image_array,
    segment: bool,
) -> tuple[int, int, dict[int, np.ndarray]]:
    """Worker task of pass 1: segment one block, write its core with local ids 1..n."""
    window = image.window(*block.outer)
    y0, y1, x0, x1 = block.core
    if image_array is not None:
        image_array[..., y0:y1, x0:x1] = tiling.crop(window, block.outer, block.core)
    if not segment:
        return block.index, 0, {}
    labels = _worker_model(model_ref).segment(window, image.meta)
    outer = tiling.relabel_like_core(labels, block)
    core = tiling.crop(outer, block.outer, block.core)
    labels_array[y0:y1, x0:x1] = core
    strips = {nb.index: tiling.overlap_strip(outer, block, nb) for nb in neighbours}
    return block.index, int(core.max()), strips


def _relabel_task(labels_array, block: tiling.Block, lut: np.ndarray) -> int:
    """Worker task of pass 2: local ids of one core -> global ids."""
    y0, y1, x0, x1 = block.core
    labels_array[y0:y1, x0:x1] = lut[np.asarray(labels_array[y0:y1, x0:x1])]
    return block.index


def segment_large(
    path: str | os.PathLike,
    model="classical",
    out: str | os.PathLike | None = None,
    *,
    name: str = "masks",
    block_size: int = 2048,
    halo: int | None = None,
    max_diameter: float | None = None,
    skip_empty: bool = False,
    model_params: dict | None = None,
    pixel_size: float | None = None,
    client=None,
    scheduler: str | None = None,
    n_workers: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> LargeResult:
    """Segment one big 2-D image block by block on Dask and write stitched OME-Zarr labels.

    Each block of ``block_size`` pixels is segmented with a ``halo`` of context on every side;
    cells cut by block borders are joined (:mod:`cellscape.tiling`), ids are globally unique and
    consecutive. Memory per worker is that of one block plus halo, whatever the image size.

    Parameters
    ----------
    path : str or PathLike
        An OME-Zarr (its full-resolution level) or a TIFF; ``(Y, X)`` or ``(C, Y, X)``.
    model : str, PathLike or Segmenter
        As for :func:`segment_many`. Parameters a model estimates per image (a diameter, a
        threshold) are estimated per block: fix them (``model_params``) for seamless results.
    out : str or PathLike, optional
        Where the labels go. ``None``: into ``<path>/labels/<name>`` of the input OME-Zarr (the
        NGFF layout: napari shows the labels over the image). Otherwise a new OME-Zarr ``out``
        holding a copy of the image (made block by block in the same pass) and the labels;
        this is required for TIFF inputs.
    name : str
        Name of the label image under ``labels/``.
    block_size : int
        Side of a block's core in pixels (memory grows with its square).
    halo : int, optional
        Context in pixels on each side; default :func:`default_halo`.
    max_diameter : float, optional
        Diameter of the largest cell in pixels, for the default halo.
    skip_empty : bool
        Skip blocks with no foreground in a low-resolution overview (see
        :func:`foreground_blocks`); for bright objects on a dark background.
    model_params : dict, optional
        Model parameters to override.
    pixel_size : float, optional
        Pixel size (µm) to use instead of the one the file records (also written to the
        output's scale).
    client, scheduler, n_workers
        The cluster, as for :func:`segment_many`.
    progress : callable, optional
        ``progress(blocks_done, blocks_total)`` after each block of the segmentation pass.

    Returns
    -------
    LargeResult

    Raises
    ------
    CellscapeError
        Unreadable input, not a single plane, or nowhere to write.
    """
    start = time.perf_counter()
    image = io.LazyImage(path)
    if pixel_size:
        image.meta = image.meta.with_(pixel_size=float(pixel_size))
    if out is not None and Path(out).resolve() == image.path.resolve():
        out = None  # labels into the input itself, never a copy over it
    if out is None and not io.is_ome_zarr(image.path):
        raise CellscapeError(image.path, "labels of a TIFF need an output OME-Zarr (give out=)")
    # zarr chunks must not straddle two blocks' cores: each chunk is written by one task
    chunk = next((c for c in (1024, 512, 256) if block_size % c == 0), block_size)
    with cluster_client(client, scheduler=scheduler, n_workers=n_workers) as dask_client:
        ref, loaded, _ = _model_ref(model, model_params, dask_client)
        halo = default_halo(loaded, max_diameter) if halo is None else int(halo)
        blocks = tiling.block_grid(image.shape, block_size, halo)
        wanted = [True] * len(blocks)
        if skip_empty:
            overview, step = image.overview()
            wanted = foreground_blocks(overview, step, blocks)
        with contextlib.ExitStack() as stack:
            if out is None:
                root, image_array = image.path, None
            else:
                root = Path(out)
                shape = (len(image.meta.channel_names),) * (image.meta.axes == "CYX")
                image_array = stack.enter_context(
                    io.ome_zarr_image_writer(
                        root, shape + image.shape, image.dtype, image.meta, chunks=chunk
                    )
                )
                root = Path(image_array.store.root).parent
            labels_array = stack.enter_context(
                io.ome_zarr_labels_writer(
                    root, name, image.shape, pixel_size=image.meta.pixel_size, chunks=chunk
                )
            )
            n_labels, links = _segment_blocks(
                dask_client, image, ref, blocks, wanted, labels_array, image_array, progress
            )
            luts, n_cells = tiling.merge_labels(n_labels, links)
            futures = [
                dask_client.submit(_relabel_task, labels_array, b, luts[b.index], pure=False)
                for b in blocks
                if n_labels[b.index] > 0
            ]
            dask_client.gather(futures)
    target = Path(out) if out is not None else image.path
    return LargeResult(
        zarr_path=target,
        name=name,
        n_cells=n_cells,
        n_blocks=len(blocks),
        n_skipped=len(blocks) - sum(wanted),
        n_joined=int(sum(n_labels)) - n_cells,
        seconds=time.perf_counter() - start,
        blocks=blocks,
    )


def _segment_blocks(client, image, ref, blocks, wanted, labels_array, image_array, progress):
    """Pass 1 on the cluster; links are computed as soon as both blocks of a pair are back,
    and their overlap strips dropped, so the client holds about one row of blocks' strips."""
    from distributed import as_completed

    pairs = tiling.neighbour_pairs(blocks)
    neighbours: dict[int, list[tiling.Block]] = {b.index: [] for b in blocks}
    pending: dict[int, int] = {b.index: 0 for b in blocks}
    for i, j in pairs:
        neighbours[i].append(blocks[j])
        neighbours[j].append(blocks[i])
        pending[i] += 1
        pending[j] += 1
    tasks = [(b, wanted[b.index]) for b in blocks if wanted[b.index] or image_array is not None]
    futures = [
        client.submit(
            _block_task, image, ref, b, neighbours[b.index], labels_array, image_array, seg,
            pure=False,
        )
        for b, seg in tasks
    ]  # fmt: skip
    n_labels = [0] * len(blocks)
    strips: dict[int, dict[int, np.ndarray]] = {}
    returned = {b.index for b in blocks if not wanted[b.index]}  # skipped: nothing to link
    links = []

    def settle(i: int, j: int) -> None:
        a, b = min(i, j), max(i, j)
        if a in strips and b in strips:
            box = tiling.intersect(blocks[a].outer, blocks[b].outer)
            ids_a, ids_b = tiling.match_labels(
                strips[a][b],
                tiling.box_mask(box, blocks[a].core),
                strips[b][a],
                tiling.box_mask(box, blocks[b].core),
            )
            if ids_a.size:
                links.append((a, ids_a, b, ids_b))
        for k in (a, b):
            pending[k] -= 1
            if pending[k] == 0:
                strips.pop(k, None)

    done = 0
    for future in as_completed(futures):
        index, n, block_strips = future.result()
        future.release()
        done += 1
        if progress is not None:
            progress(done, len(futures))
        if not wanted[index]:
            continue
        n_labels[index] = n
        strips[index] = block_strips
        returned.add(index)
        for other in neighbours[index]:
            if other.index in returned:
                settle(index, other.index)
    return n_labels, links


def segment_large_file(
    path: str | os.PathLike, model, out_dir: str | os.PathLike, **kwargs
) -> ImageResult:
    """:func:`segment_large` for the command line: ``out_dir/<stem>.ome.zarr`` (image + labels),
    problems returned in the result as one line, never raised."""
    p = Path(path)
    result = ImageResult(path=p)
    target = Path(out_dir) / f"{io.image_stem(p)}.ome.zarr"
    try:
        large = segment_large(p, model, target, **kwargs)
        result.n_cells = large.n_cells
        result.outputs = [target]
        result.seconds = large.seconds
    except CellscapeError as exc:
        result.error = exc.message
    except Exception as exc:  # a bug or a dead worker must not hide the other files
        result.error = unexpected_error(p, exc)
    return result


def is_large(path: str | os.PathLike) -> bool:
    """True when a TIFF or OME-Zarr plane has more than :data:`LARGE_IMAGE_PIXELS` pixels."""
    shape = io.peek_image_shape(path)
    return shape is not None and len(shape) >= 2 and shape[-1] * shape[-2] > LARGE_IMAGE_PIXELS
