"""Reading and writing images, label images, ROIs and tables.

This is the only module of cellscape that touches files. Every reader returns plain numpy arrays
with an :class:`ImageMeta` describing axes and physical scale; every writer is atomic (it writes a
temporary file next to the target and renames it), so a killed run never leaves a half-written
output behind.

Axis conventions (see DESIGN.md): ``(Y, X)`` for 2-D images, channels first ``(C, Y, X)``,
z-stacks ``(Z, Y, X)``, time first ``(T, ...)``. RGB(A) files are returned as ``(3, Y, X)`` with
``meta.rgb = True``.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from .errors import CellscapeError

TIFF_SUFFIXES = (".tif", ".tiff")
PNG_JPEG_SUFFIXES = (".png", ".jpg", ".jpeg")
IMAGE_SUFFIXES = TIFF_SUFFIXES + PNG_JPEG_SUFFIXES
MASK_SUFFIX = "_masks.tif"

# dtypes a microscope or an image program actually produces; anything else (complex, object,
# strings, float16 from odd converters is accepted) is refused with a clear message.
_SUPPORTED_KINDS = "biuf"

_UMASK = os.umask(0)
os.umask(_UMASK)


@dataclass(frozen=True)
class ImageMeta:
    """What travels with an image: its axes and its physical scale.

    Attributes
    ----------
    axes : str
        One letter per array axis, from ``"TCZYX"`` (e.g. ``"YX"``, ``"CYX"``, ``"ZYX"``).
    pixel_size : float or None
        Lateral pixel size in µm (square pixels assumed), ``None`` when unknown.
    z_step : float or None
        Distance between z-planes in µm, ``None`` when unknown or not a z-stack.
    channel_names : tuple of str
        Names of the channels along the ``C`` axis (empty when there is no ``C`` axis).
    rgb : bool
        True when the channels are the red, green and blue of a colour image (histology, JPEG).
    source : str or None
        The file the image was read from.
    """

    axes: str = "YX"
    pixel_size: float | None = None
    z_step: float | None = None
    channel_names: tuple[str, ...] = ()
    rgb: bool = False
    source: str | None = None
    extra: dict = field(default_factory=dict, compare=False)

    def with_(self, **changes) -> ImageMeta:
        """A copy with some fields changed."""
        return replace(self, **changes)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["channel_names"] = list(self.channel_names)
        return d


# --------------------------------------------------------------------------------------------
# atomic writing
# --------------------------------------------------------------------------------------------


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` if the block succeeds.

    The temporary file keeps the target's suffix so that libraries choosing a format from the
    name (tifffile, imageio) still do the right thing. On any error the temporary file is removed
    and the target is left untouched.
    """
    path = Path(path)
    folder = path.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CellscapeError(folder, f"cannot create output folder ({exc.strerror})") from None
    if not os.access(folder, os.W_OK):
        raise CellscapeError(folder, "output folder is not writable")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{path.suffix}", dir=folder)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        # mkstemp makes 0600 files and some writers recreate the file: set the usual mode last
        os.chmod(tmp_path, 0o666 & ~_UMASK)
        os.replace(tmp_path, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp_path.unlink()
        raise


@contextlib.contextmanager
def atomic_folder(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary folder next to ``path``; it replaces ``path`` if the block succeeds.

    The folder counterpart of :func:`atomic_path`, for OME-Zarr and other directory formats: on
    any error the temporary folder is removed and an existing ``path`` is left untouched.
    """
    import shutil

    path = Path(path)
    check_writable_folder(path.parent)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        yield tmp
        if path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def check_writable_folder(folder: str | os.PathLike) -> Path:
    """Create ``folder`` if needed and check that files can be written in it.

    Raises
    ------
    CellscapeError
        If the folder cannot be created or written to (read-only, a file in the way, ...).
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise CellscapeError(folder, "output path exists and is not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".cellscape-write-check", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise CellscapeError(folder, f"output folder is not writable ({exc.strerror})") from None
    return folder


# --------------------------------------------------------------------------------------------
# validation
# --------------------------------------------------------------------------------------------


def validate_image(data: np.ndarray, path: str | os.PathLike | None = None) -> np.ndarray:
    """Check that an array is an image cellscape can work with, and return it.

    Refuses empty arrays, non-numeric dtypes (complex, object, strings), and NaN or infinite
    values, each with a :class:`CellscapeError` naming ``path``. Booleans become uint8.
    """
    data = np.asarray(data)
    if data.size == 0 or 0 in data.shape:
        raise CellscapeError(path, f"image is empty (shape {data.shape})")
    if data.dtype == bool:
        data = data.astype(np.uint8)
    if data.dtype.kind not in _SUPPORTED_KINDS:
        raise CellscapeError(path, f"unsupported pixel type {data.dtype} (need integer or float)")
    if data.dtype.kind == "f":
        finite = np.isfinite(data)
        if not finite.all():
            bad = int(data.size - np.count_nonzero(finite))
            raise CellscapeError(path, f"image contains {bad} NaN or infinite pixel value(s)")
    return data


def validate_labels(labels: np.ndarray, path: str | os.PathLike | None = None) -> np.ndarray:
    """Check a label image (integers, no negative ids) and return it as int32 or int64."""
    labels = np.asarray(labels)
    if labels.size == 0:
        raise CellscapeError(path, f"label image is empty (shape {labels.shape})")
    if labels.dtype.kind == "f":
        if not np.all(np.isfinite(labels)) or not np.all(labels == np.round(labels)):
            raise CellscapeError(path, "label image has non-integer values")
        labels = labels.astype(np.int64)
    if labels.dtype.kind not in "biu":
        raise CellscapeError(path, f"label image has unsupported type {labels.dtype}")
    if labels.dtype.kind == "i" and labels.size and labels.min() < 0:
        raise CellscapeError(path, "label image has negative ids")
    top = int(labels.max()) if labels.size else 0
    return labels.astype(np.int32 if top < 2**31 else np.int64, copy=False)


# --------------------------------------------------------------------------------------------
# reading
# --------------------------------------------------------------------------------------------


def is_ome_zarr(path: str | os.PathLike) -> bool:
    """True when ``path`` is a folder holding an OME-Zarr (NGFF) image."""
    p = Path(path)
    if not p.is_dir():
        return False
    if p.suffix.lower() == ".zarr":
        return True
    return (p / ".zattrs").exists() or (p / "zarr.json").exists()


def read_image(path: str | os.PathLike) -> tuple[np.ndarray, ImageMeta]:
    """Read an image file into a numpy array with its metadata.

    Parameters
    ----------
    path : str or PathLike
        A TIFF / OME-TIFF / ImageJ TIFF, PNG, JPEG, or an OME-Zarr folder.

    Returns
    -------
    data : ndarray
        The pixels, axes as in ``meta.axes``; singleton axes removed; colour images as
        ``(3, Y, X)``.
    meta : ImageMeta
        Axes, pixel size (µm) and z step (µm) where the file records them.

    Raises
    ------
    CellscapeError
        Missing file, unknown format, unreadable or truncated data, empty image, NaN/inf pixels,
        unsupported pixel type.
    """
    p = Path(path)
    if not p.exists():
        raise CellscapeError(p, "file not found")
    if is_ome_zarr(p):
        data, meta = _read_ome_zarr(p)
    elif p.is_dir():
        raise CellscapeError(p, "is a folder, not an image")
    else:
        suffix = p.suffix.lower()
        if suffix in TIFF_SUFFIXES:
            data, meta = _read_tiff(p)
        elif suffix in PNG_JPEG_SUFFIXES:
            data, meta = _read_png_jpeg(p)
        else:
            raise CellscapeError(
                p, f"unsupported file type '{p.suffix}' (use TIFF, PNG, JPEG or OME-Zarr)"
            )
    data = validate_image(data, p)
    return data, meta.with_(source=str(p))


def _read_tiff(path: Path) -> tuple[np.ndarray, ImageMeta]:
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            data = series.asarray()
            axes = series.axes
            pixel_size, z_step, channel_names = None, None, ()
            if tif.is_ome and tif.ome_metadata:
                pixel_size, z_step, channel_names = _ome_xml_scale(tif.ome_metadata)
            elif tif.is_imagej:
                ij = tif.imagej_metadata or {}
                pixel_size = _tiff_resolution_um(tif.pages[0])
                z_step = _float_or_none(ij.get("spacing"))
            else:
                pixel_size = _tiff_resolution_um(tif.pages[0])
    except CellscapeError:
        raise
    except FileNotFoundError:
        raise CellscapeError(path, "file not found") from None
    except Exception as exc:  # tifffile raises many types on corrupt data
        raise CellscapeError(path, f"cannot read TIFF ({_short(exc)})") from None
    return _standardise_axes(path, data, axes, pixel_size, z_step, channel_names)


def _read_png_jpeg(path: Path) -> tuple[np.ndarray, ImageMeta]:
    import imageio.v3 as iio

    try:
        data = np.asarray(iio.imread(path))
    except Exception as exc:
        raise CellscapeError(path, f"cannot read image ({_short(exc)})") from None
    axes = "YX" if data.ndim == 2 else "YXS"
    return _standardise_axes(path, data, axes, None, None, ())


def _read_ome_zarr(path: Path) -> tuple[np.ndarray, ImageMeta]:
    import zarr

    try:
        group = zarr.open_group(str(path), mode="r")
        attrs = dict(group.attrs)
        ome = attrs.get("ome", attrs)  # NGFF 0.5 nests everything under "ome"
        multiscales = ome["multiscales"][0]
        dataset = multiscales["datasets"][0]
        data = np.asarray(group[dataset["path"]][...])
        axes_meta = multiscales.get("axes") or [{"name": a} for a in "tczyx"[-data.ndim :]]
        axes = "".join((a["name"] if isinstance(a, dict) else a)[0].upper() for a in axes_meta)
        scale = None
        for t in dataset.get("coordinateTransformations", []):
            if t.get("type") == "scale":
                scale = t["scale"]
        pixel_size = z_step = None
        if scale is not None:
            if "X" in axes:
                pixel_size = float(scale[axes.index("X")])
            if "Z" in axes:
                z_step = float(scale[axes.index("Z")])
        channel_names = tuple(
            c.get("label", f"c{i}") for i, c in enumerate(ome.get("omero", {}).get("channels", []))
        )
    except CellscapeError:
        raise
    except Exception as exc:
        raise CellscapeError(path, f"cannot read OME-Zarr ({_short(exc)})") from None
    return _standardise_axes(path, data, axes, pixel_size, z_step, channel_names)


def _standardise_axes(path, data, axes, pixel_size, z_step, channel_names):
    """Put axes in T C Z Y X order, colour samples first, and drop singleton axes."""
    axes = axes.upper().replace("I", "Z").replace("Q", "Z")
    if len(axes) != data.ndim:
        raise CellscapeError(path, f"axes '{axes}' do not match the data shape {data.shape}")
    rgb = False
    if "S" in axes:
        if data.shape[axes.index("S")] in (3, 4):
            rgb = True
        axes = axes.replace("S", "C") if "C" not in axes else axes
    if "S" in axes:  # both C and S present: fold samples into channels is ambiguous
        raise CellscapeError(path, f"unsupported axis layout '{axes}'")
    for a in axes:
        if a not in "TCZYX":
            # unknown letters from exotic writers: treat as z (stacks of planes)
            axes = axes.replace(a, "Z")
    if len(set(axes)) != len(axes):
        raise CellscapeError(path, f"unsupported axis layout '{axes}'")
    order = sorted(range(len(axes)), key=lambda i: "TCZYX".index(axes[i]))
    data = np.transpose(data, order)
    axes = "".join(axes[i] for i in order)
    keep = [i for i, a in enumerate(axes) if data.shape[i] > 1 or a in "YX"]
    data = data.reshape([data.shape[i] for i in keep])
    axes = "".join(axes[i] for i in keep)
    if "Y" not in axes or "X" not in axes:
        raise CellscapeError(path, f"not an image: no Y/X axes in '{axes}'")
    if rgb and "C" in axes and data.shape[axes.index("C")] == 4:
        data = np.take(data, [0, 1, 2], axis=axes.index("C"))  # drop alpha
    if "C" in axes:
        n = data.shape[axes.index("C")]
        if rgb:
            channel_names = ("red", "green", "blue")
        elif len(channel_names) != n:
            channel_names = tuple(f"c{i}" for i in range(n))
    else:
        channel_names, rgb = (), False
    meta = ImageMeta(
        axes=axes,
        pixel_size=pixel_size,
        z_step=z_step if "Z" in axes else None,
        channel_names=tuple(channel_names),
        rgb=rgb,
    )
    return data, meta


def _ome_xml_scale(xml: str):
    import tifffile

    try:
        ome = tifffile.xml2dict(xml).get("OME", {})
        image = ome.get("Image", {})
        if isinstance(image, list):
            image = image[0]
        pixels = image.get("Pixels", {})
        size = _float_or_none(pixels.get("PhysicalSizeX"))
        unit = pixels.get("PhysicalSizeXUnit", "µm")
        size = _to_um(size, unit)
        z = _to_um(
            _float_or_none(pixels.get("PhysicalSizeZ")), pixels.get("PhysicalSizeZUnit", "µm")
        )
        channels = pixels.get("Channel", [])
        if isinstance(channels, dict):
            channels = [channels]
        names = tuple(str(c.get("Name", f"c{i}")) for i, c in enumerate(channels))
        return size, z, names
    except Exception:
        return None, None, ()


def _to_um(value: float | None, unit: str | None) -> float | None:
    if value is None:
        return None
    factors = {"µm": 1.0, "um": 1.0, "micron": 1.0, "nm": 1e-3, "mm": 1e3, "m": 1e6}
    return value * factors.get((unit or "µm").strip(), 1.0)


def _tiff_resolution_um(page) -> float | None:
    """Pixel size in µm from TIFF resolution tags, when they are in microns or centimetres."""
    try:
        tags = page.tags
        if "XResolution" not in tags:
            return None
        num, den = tags["XResolution"].value
        if not num or not den:
            return None
        pixels_per_unit = num / den
        unit = int(tags["ResolutionUnit"].value) if "ResolutionUnit" in tags else 2
        description = str(page.description or "")
        if "unit=micron" in description or "unit=um" in description:
            return 1.0 / pixels_per_unit
        if unit == 3:  # centimetre
            return 1e4 / pixels_per_unit
        return None  # inches / no unit: a DPI, not a physical pixel size
    except Exception:
        return None


def _float_or_none(value) -> float | None:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if np.isfinite(v) and v > 0 else None


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    msg = text[0] if text else type(exc).__name__
    return msg[:160]


def read_labels(path: str | os.PathLike) -> np.ndarray:
    """Read a label image (``*_masks.tif`` or any integer TIFF/PNG/OME-Zarr) as int32.

    Raises
    ------
    CellscapeError
        If the file cannot be read or does not hold integer labels.
    """
    data, _ = read_image(path)
    return validate_labels(data, path)


# --------------------------------------------------------------------------------------------
# writing
# --------------------------------------------------------------------------------------------


def write_tiff(
    path: str | os.PathLike,
    data: np.ndarray,
    meta: ImageMeta | None = None,
    *,
    ome: bool | None = None,
    compression: str | None = "zlib",
) -> Path:
    """Write an array as a (by default OME-) TIFF, atomically.

    Parameters
    ----------
    path : str or PathLike
        Target file. ``.ome.tif`` names, or ``ome=True``, write OME-XML metadata with pixel size.
    data : ndarray
        Pixels with axes ``meta.axes`` (default: ``"YX"``, ``"ZYX"`` for 3-D).
    meta : ImageMeta, optional
        Axes and physical scale to record.
    compression : str or None
        Lossless compression (zlib by default; ``None`` for plain).
    """
    import tifffile

    path = Path(path)
    data = np.asarray(data)
    if meta is None:
        meta = ImageMeta(axes={2: "YX", 3: "ZYX", 4: "CZYX", 5: "TCZYX"}.get(data.ndim, "YX"))
    if len(meta.axes) != data.ndim:
        raise ValueError(f"meta.axes {meta.axes!r} does not match data of shape {data.shape}")
    if ome is None:
        ome = path.name.lower().endswith((".ome.tif", ".ome.tiff")) or meta.pixel_size is not None
    # say what the planes are: otherwise tifffile takes a stack of 3 or 4 planes for colour
    kwargs: dict = {"compression": compression, "photometric": "minisblack"}
    if meta.rgb and meta.axes.startswith("C") and data.shape[0] == 3:
        kwargs.update(photometric="rgb", planarconfig="separate")
    if ome:
        md: dict = {"axes": meta.axes}
        if meta.pixel_size:
            md.update(
                PhysicalSizeX=meta.pixel_size,
                PhysicalSizeY=meta.pixel_size,
                PhysicalSizeXUnit="µm",
                PhysicalSizeYUnit="µm",
            )
        if meta.z_step:
            md.update(PhysicalSizeZ=meta.z_step, PhysicalSizeZUnit="µm")
        if meta.channel_names:
            md["Channel"] = {"Name": list(meta.channel_names)}
        kwargs.update(ome=True, metadata=md)
        if meta.pixel_size:
            kwargs.update(
                resolution=(1e4 / meta.pixel_size, 1e4 / meta.pixel_size),
                resolutionunit="CENTIMETER",
            )
    else:
        kwargs.update(metadata=None)
    with atomic_path(path) as tmp:
        tifffile.imwrite(tmp, data, **kwargs)
    return path


def write_labels(
    path: str | os.PathLike, labels: np.ndarray, meta: ImageMeta | None = None
) -> Path:
    """Write an instance label image (0 = background) as a compressed TIFF, atomically.

    The smallest unsigned type that holds the largest id is used (uint16 for up to 65535 cells,
    like Cellpose's ``_masks.tif``), so other tools read the file directly.
    """
    labels = validate_labels(labels, path)
    top = int(labels.max()) if labels.size else 0
    dtype = np.uint16 if top < 2**16 else np.uint32
    lab_meta = ImageMeta(
        axes="YX" if labels.ndim == 2 else "ZYX"[-labels.ndim :] if labels.ndim <= 3 else "TZYX",
        pixel_size=meta.pixel_size if meta else None,
    )
    return write_tiff(
        path, labels.astype(dtype), lab_meta, ome=meta is not None and meta.pixel_size is not None
    )


def write_png(path: str | os.PathLike, rgb: np.ndarray) -> Path:
    """Write an 8-bit RGB(A) or grey picture ``(Y, X[, 3|4])`` as PNG, atomically."""
    import imageio.v3 as iio

    rgb = np.asarray(rgb)
    if rgb.dtype != np.uint8:
        raise ValueError("write_png expects uint8 data")
    with atomic_path(path) as tmp:
        iio.imwrite(tmp, rgb, extension=".png")
    return Path(path)


def write_ome_zarr(
    path: str | os.PathLike,
    data: np.ndarray,
    meta: ImageMeta | None = None,
    *,
    labels: dict[str, np.ndarray] | None = None,
    chunks: int = 1024,
) -> Path:
    """Write an image (and optional label images) as OME-Zarr (NGFF), atomically.

    The image is stored at full resolution only (one multiscale level); label images go under
    ``labels/<name>`` in the NGFF labels layout, which napari and other viewers open.
    """

    import zarr
    from ome_zarr.format import FormatV04
    from ome_zarr.writer import write_image, write_labels

    path = Path(path)
    data = np.asarray(data)
    meta = meta or ImageMeta(axes={2: "YX", 3: "ZYX"}.get(data.ndim, "CZYX"))
    axes = meta.axes.lower()
    scale = {a: 1.0 for a in axes}
    if meta.pixel_size:
        scale.update(y=meta.pixel_size, x=meta.pixel_size)
    if meta.z_step and "z" in axes:
        scale["z"] = meta.z_step
    with atomic_folder(path) as tmp:
        root = zarr.open_group(str(tmp), mode="w", zarr_format=2)
        chunk_shape = tuple(
            min(s, chunks) if a in "yx" else 1 for s, a in zip(data.shape, axes, strict=True)
        )
        # NGFF 0.4 (Zarr v2) rather than 0.5: every current viewer and Fiji plugin reads it
        write_image(
            data,
            root,
            axes=axes,
            scale_factors=[],
            fmt=FormatV04(),
            storage_options={"chunks": chunk_shape},
            scale=scale,
        )
        if meta.channel_names:
            omero = {"channels": [{"label": c} for c in meta.channel_names]}
            attrs = dict(root.attrs)
            if "ome" in attrs:
                attrs["ome"]["omero"] = omero
                root.attrs.update(attrs)
            else:
                root.attrs["omero"] = omero
        for name, lab in (labels or {}).items():
            lab = validate_labels(lab, path)
            lab_axes = "".join(a for a in axes if a != "c")
            write_labels(
                lab,
                root,
                name=name,
                axes=lab_axes,
                scaler=None,
                scale_factors=[],
                fmt=FormatV04(),
                scale={a: scale[a] for a in lab_axes},
                storage_options={"chunks": tuple(min(s, chunks) for s in lab.shape)},
            )
    return path


def read_ome_zarr_labels(path: str | os.PathLike, name: str | None = None) -> np.ndarray:
    """Read a label image stored under ``labels/`` of an OME-Zarr (the first one by default)."""
    import zarr

    p = Path(path)
    try:
        group = zarr.open_group(str(p), mode="r")
        lab_group = group["labels"]
        attrs = dict(lab_group.attrs)
        names = attrs.get("ome", attrs).get("labels", [])
        if name is None:
            if not names:
                raise CellscapeError(p, "OME-Zarr has no label images")
            name = names[0]
        sub = lab_group[name]
        sub_attrs = dict(sub.attrs)
        ds = sub_attrs.get("ome", sub_attrs)["multiscales"][0]["datasets"][0]["path"]
        return validate_labels(np.asarray(sub[ds][...]), p)
    except CellscapeError:
        raise
    except Exception as exc:
        raise CellscapeError(p, f"cannot read OME-Zarr labels ({_short(exc)})") from None


def write_table(path: str | os.PathLike, table) -> Path:
    """Write a pandas DataFrame as CSV, atomically."""
    with atomic_path(path) as tmp:
        table.to_csv(tmp, index=False)
    return Path(path)


def write_json(path: str | os.PathLike, obj) -> Path:
    """Write a JSON document, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, default=_json_default) + "\n")
    return Path(path)


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


# --------------------------------------------------------------------------------------------
# ImageJ ROIs
# --------------------------------------------------------------------------------------------


def labels_to_polygons(labels: np.ndarray) -> dict[int, np.ndarray]:
    """Outline of each cell as a polygon of ``(x, y)`` pixel-corner coordinates.

    The outline traces the outer boundary of the largest connected piece of each label, on the
    pixel edges (not pixel centres), so filling the polygon gives the cell back exactly when
    the cell has no holes.
    """
    from skimage.measure import find_contours, regionprops

    labels = np.asarray(labels)
    polygons: dict[int, np.ndarray] = {}
    for region in regionprops(labels):
        y0, x0, y1, x1 = region.bbox
        mask = np.pad(region.image, 1)
        # upsample x2 so that contours at level 0.5 run along pixel edges instead of cutting
        # corners through pixel centres
        big = np.kron(mask, np.ones((2, 2), dtype=np.uint8)).astype(float)
        contours = find_contours(big, 0.5)
        if not contours:
            continue
        contour = max(contours, key=len)
        yx = (contour + 0.5) / 2.0 - 1.0  # back to original pixel-corner coordinates
        yx = _simplify_collinear(yx)
        polygons[int(region.label)] = np.column_stack([yx[:, 1] + x0, yx[:, 0] + y0])
    return polygons


def _simplify_collinear(points: np.ndarray) -> np.ndarray:
    """Drop points that lie on a straight line between their neighbours (keeps ROI files small)."""
    if len(points) < 4:
        return points
    pts = points[:-1] if np.allclose(points[0], points[-1]) else points
    prev = np.roll(pts, 1, axis=0)
    nxt = np.roll(pts, -1, axis=0)
    cross = (pts[:, 0] - prev[:, 0]) * (nxt[:, 1] - pts[:, 1]) - (pts[:, 1] - prev[:, 1]) * (
        nxt[:, 0] - pts[:, 0]
    )
    keep = np.abs(cross) > 1e-9
    return pts[keep] if keep.sum() >= 3 else pts


def write_rois(path: str | os.PathLike, labels: np.ndarray) -> Path:
    """Write each cell's outline as an ImageJ polygon ROI in a zip (open with ImageJ/Fiji's
    ROI Manager), atomically. ROI names are ``cell_<id>``."""
    import roifile

    polygons = labels_to_polygons(labels)
    rois = []
    for cell_id, xy in polygons.items():
        roi = roifile.ImagejRoi.frompoints(xy.astype(np.float32))
        roi.roitype = roifile.ROI_TYPE.POLYGON
        roi.name = f"cell_{cell_id}"
        rois.append(roi)
    with atomic_path(path) as tmp:
        tmp.unlink()  # roiwrite appends to existing zips
        if rois:
            roifile.roiwrite(tmp, rois, mode="w")
        else:
            import zipfile

            zipfile.ZipFile(tmp, "w").close()
    return Path(path)


def read_rois(path: str | os.PathLike, shape: Sequence[int]) -> np.ndarray:
    """Rasterise the polygon ROIs of an ImageJ ROI zip (or single .roi) into a label image.

    Cells get ids 1..N in file order; where ROIs overlap the later one wins.
    """
    import roifile
    from skimage.draw import polygon as draw_polygon

    p = Path(path)
    if not p.exists():
        raise CellscapeError(p, "file not found")
    try:
        rois = roifile.roiread(p)
    except Exception as exc:
        raise CellscapeError(p, f"cannot read ImageJ ROIs ({_short(exc)})") from None
    if not isinstance(rois, list):
        rois = [rois]
    labels = np.zeros(tuple(shape), dtype=np.int32)
    for i, roi in enumerate(rois, start=1):
        xy = roi.coordinates()
        if xy is None or len(xy) < 3:
            continue
        # polygon vertices are on pixel corners: pixel (r, c) is inside when its centre
        # (r + 0.5, c + 0.5) is inside the polygon
        rr, cc = draw_polygon(xy[:, 1] - 0.5, xy[:, 0] - 0.5, shape=labels.shape)
        labels[rr, cc] = i
    return labels


# --------------------------------------------------------------------------------------------
# finding inputs
# --------------------------------------------------------------------------------------------


def expand_inputs(inputs: Sequence[str | os.PathLike], *, masks: bool = False) -> list[Path]:
    """Turn files, folders and glob patterns into a sorted list of image paths.

    Folders contribute the images directly inside them (``*_masks.tif`` files are skipped unless
    ``masks=True``); OME-Zarr folders count as one image. Missing paths are kept in the list so
    that the caller reports them as failures alongside the others.
    """
    import glob

    found: list[Path] = []
    for item in inputs:
        s = str(item)
        if any(ch in s for ch in "*?["):
            matches = sorted(glob.glob(s))
            found.extend(Path(m) for m in matches if _is_image(Path(m), masks))
            if not matches:
                found.append(Path(s))
            continue
        p = Path(s)
        if p.is_dir() and not is_ome_zarr(p):
            found.extend(sorted(q for q in p.iterdir() if _is_image(q, masks)))
        else:
            found.append(p)
    seen: set[Path] = set()
    unique = []
    for p in found:
        if p not in seen:
            seen.add(p)
            unique.append(p)
    return unique


def _is_image(p: Path, masks: bool) -> bool:
    if is_ome_zarr(p):
        return True
    if not p.is_file() or p.name.startswith("."):
        return False
    name = p.name.lower()
    if not masks and (name.endswith(MASK_SUFFIX) or name.endswith("_masks.tiff")):
        return False
    return name.endswith(IMAGE_SUFFIXES)


def image_stem(path: str | os.PathLike) -> str:
    """The name used for outputs: ``a/b/cells.ome.tif`` -> ``cells``; ``x_img.tif`` -> ``x``.

    The ``_img`` suffix of Cellpose-style pairs is dropped so that ``<id>_img.tif`` gives
    ``<id>_masks.tif``, the name of its ground truth.
    """
    name = Path(path).name
    for suffix in (
        ".ome.tiff",
        ".ome.tif",
        ".ome.zarr",
        ".tiff",
        ".tif",
        ".png",
        ".jpeg",
        ".jpg",
        ".zarr",
    ):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
            break
    if name.endswith("_img"):
        name = name[:-4]
    return name


def read_json(path: str | os.PathLike) -> dict:
    """Read a JSON document (a model's ``config.json``, a manifest), with a one-line error."""
    p = Path(path)
    if not p.exists():
        raise CellscapeError(p, "file not found")
    try:
        return json.loads(p.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CellscapeError(p, f"cannot read JSON ({_short(exc)})") from None


def write_safetensors(
    path: str | os.PathLike, arrays: dict[str, np.ndarray], metadata: dict[str, str] | None = None
) -> Path:
    """Write named numpy arrays as a safetensors file (no pickling, safe to share), atomically."""
    from safetensors.numpy import save_file

    contiguous = {k: np.ascontiguousarray(v) for k, v in arrays.items()}
    with atomic_path(path) as tmp:
        save_file(contiguous, str(tmp), metadata=metadata)
    return Path(path)


def read_safetensors(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read every array of a safetensors file as numpy, with a one-line error for bad files."""
    from safetensors.numpy import load_file

    p = Path(path)
    if not p.exists():
        raise CellscapeError(p, "file not found")
    try:
        return load_file(str(p))
    except Exception as exc:
        raise CellscapeError(p, f"cannot read weights ({_short(exc)})") from None


# --------------------------------------------------------------------------------------------
# big images: lazy windows and block-by-block OME-Zarr writing (used by cellscape.batch)
# --------------------------------------------------------------------------------------------


class LazyImage:
    """A 2-D image (optionally with channels) on disk, read window by window.

    Opens the full-resolution array of an OME-Zarr, or a TIFF through tifffile's Zarr view,
    without reading pixels. The object pickles as its path, so Dask workers reopen the file
    themselves instead of receiving pixels.

    Attributes
    ----------
    path : Path
        The file or OME-Zarr folder.
    shape : tuple of int
        ``(Y, X)`` size of the full-resolution plane, in pixels.
    meta : ImageMeta
        Axes of what :meth:`window` returns (``"YX"`` or ``"CYX"``) and the pixel size (µm).
    dtype : numpy.dtype
        Pixel type.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._arrays = None
        array, levels, raw_axes, meta = self._open()
        self._raw_axes = raw_axes
        self.meta = meta.with_(source=str(self.path))
        y, x = raw_axes.index("Y"), raw_axes.index("X")
        self.shape = (int(array.shape[y]), int(array.shape[x]))
        self.dtype = np.dtype(array.dtype)
        self.n_levels = len(levels)
        self._arrays = levels

    def __getstate__(self):
        return {"path": self.path}

    def __setstate__(self, state):
        self.__init__(state["path"])

    def _open(self):
        p = self.path
        if not p.exists():
            raise CellscapeError(p, "file not found")
        try:
            if is_ome_zarr(p):
                return self._open_zarr(p)
            if p.suffix.lower() in TIFF_SUFFIXES:
                return self._open_tiff(p)
        except CellscapeError:
            raise
        except Exception as exc:
            raise CellscapeError(p, f"cannot open image lazily ({_short(exc)})") from None
        raise CellscapeError(p, "big images must be OME-Zarr or TIFF")

    def _open_zarr(self, p: Path):
        import zarr

        group = zarr.open_group(str(p), mode="r")
        attrs = dict(group.attrs)
        ome = attrs.get("ome", attrs)
        multiscales = ome["multiscales"][0]
        datasets = multiscales["datasets"]
        levels = [group[d["path"]] for d in datasets]
        ndim = levels[0].ndim
        axes_meta = multiscales.get("axes") or [{"name": a} for a in "tczyx"[-ndim:]]
        raw = "".join((a["name"] if isinstance(a, dict) else a)[0].upper() for a in axes_meta)
        pixel_size = None
        for t in datasets[0].get("coordinateTransformations", []):
            if t.get("type") == "scale" and "X" in raw:
                pixel_size = float(t["scale"][raw.index("X")])
        names = tuple(
            c.get("label", f"c{i}") for i, c in enumerate(ome.get("omero", {}).get("channels", []))
        )
        return levels[0], levels, raw, self._meta(p, levels[0].shape, raw, pixel_size, names)

    def _open_tiff(self, p: Path):
        import tifffile
        import zarr

        with tifffile.TiffFile(p) as tif:
            series = tif.series[0]
            raw = series.axes.upper().replace("S", "C").replace("I", "Z").replace("Q", "Z")
            pixel_size = None
            if tif.is_ome and tif.ome_metadata:
                pixel_size = _ome_xml_scale(tif.ome_metadata)[0]
            else:
                pixel_size = _tiff_resolution_um(tif.pages[0])
            n_levels = len(series.levels)
        levels = [
            zarr.open_array(tifffile.imread(p, aszarr=True, level=i), mode="r")
            for i in range(n_levels)
        ]
        return levels[0], levels, raw, self._meta(p, levels[0].shape, raw, pixel_size, ())

    @staticmethod
    def _meta(p, shape, raw, pixel_size, names) -> ImageMeta:
        if len(raw) != len(shape) or "Y" not in raw or "X" not in raw:
            raise CellscapeError(p, f"axes '{raw}' do not match the data shape {tuple(shape)}")
        extra = [a for a, n in zip(raw, shape, strict=True) if n > 1 and a not in "CYX"]
        if extra:
            raise CellscapeError(
                p, f"block-wise segmentation needs one 2-D plane, got axes {raw} {tuple(shape)}"
            )
        n_channels = shape[raw.index("C")] if "C" in raw else 1
        if n_channels > 1:
            if len(names) != n_channels:
                names = tuple(f"c{i}" for i in range(n_channels))
            return ImageMeta(axes="CYX", pixel_size=pixel_size, channel_names=tuple(names))
        return ImageMeta(axes="YX", pixel_size=pixel_size)

    def _take(self, array, y: slice, x: slice) -> np.ndarray:
        index = []
        for a in self._raw_axes:
            index.append(y if a == "Y" else x if a == "X" else slice(None) if a == "C" else 0)
        data = np.asarray(array[tuple(index)])
        kept = [a for a in self._raw_axes if a in "CYX"]
        data = np.transpose(data, [kept.index(a) for a in "CYX" if a in kept])
        if self.meta.axes == "YX" and data.ndim == 3:
            data = data[0]
        return data

    def window(self, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
        """Pixels of rows ``y0:y1`` and columns ``x0:x1`` (full resolution), axes ``meta.axes``."""
        try:
            return validate_image(self._take(self._arrays[0], slice(y0, y1), slice(x0, x1)))
        except CellscapeError as exc:
            raise CellscapeError(self.path, exc.problem) from None
        except Exception as exc:
            raise CellscapeError(self.path, f"cannot read pixels ({_short(exc)})") from None

    def overview(self, max_size: int = 2048) -> tuple[np.ndarray, int]:
        """A low-resolution copy no larger than ``max_size`` per side, and its step (pixels).

        Uses a stored pyramid level when there is one small enough; otherwise reads every
        ``step``-th pixel chunk by chunk (memory stays that of the result plus a few chunks).
        """
        step = max(1, -(-max(self.shape) // max_size))
        for array in self._arrays[1:]:
            y = array.shape[self._raw_axes.index("Y")]
            if y <= max(self.shape[0] // step, 1) * 2 and self.shape[0] % y == 0:
                data = self._take(array, slice(None), slice(None))
                return data, self.shape[0] // y
        data = self._take(self._arrays[0], slice(None, None, step), slice(None, None, step))
        return data, step


def peek_image_shape(path: str | os.PathLike) -> tuple[int, ...] | None:
    """Shape of the largest stored array of a TIFF or OME-Zarr without reading its pixels.

    Returns ``None`` for formats without cheap metadata (PNG, JPEG) and for unreadable files
    (the normal reader then reports the problem).
    """
    p = Path(path)
    try:
        if is_ome_zarr(p):
            import zarr

            group = zarr.open_group(str(p), mode="r")
            attrs = dict(group.attrs)
            ome = attrs.get("ome", attrs)
            return tuple(group[ome["multiscales"][0]["datasets"][0]["path"]].shape)
        if p.suffix.lower() in TIFF_SUFFIXES and p.is_file():
            import tifffile

            with tifffile.TiffFile(p) as tif:
                return tuple(tif.series[0].shape)
    except Exception:
        return None
    return None


def _zarr_format(root: Path) -> int:
    return 3 if (root / "zarr.json").exists() else 2


def _ngff_attrs(fmt: int, attrs: dict) -> dict:
    """NGFF 0.4 puts metadata at the top of the attributes, 0.5 nests it under ``"ome"``."""
    if fmt == 3:
        inner = {k: v for k, v in attrs.items()}
        for ms in inner.get("multiscales", []):
            ms.pop("version", None)
        if "image-label" in inner:
            inner["image-label"].pop("version", None)
        return {"ome": {"version": "0.5", **inner}}
    return attrs


def _multiscales(name: str, axes: str, pixel_size: float | None, fmt: int) -> list[dict]:
    units = {"y": "micrometer", "x": "micrometer"} if pixel_size else {}
    scale = [(pixel_size or 1.0) if a in "yx" else 1.0 for a in axes]
    axes_meta = []
    for a in axes:
        entry = {"name": a, "type": "channel" if a == "c" else "space"}
        if a in units:
            entry["unit"] = units[a]
        axes_meta.append(entry)
    ms = {
        "name": name,
        "axes": axes_meta,
        "datasets": [
            {"path": "0", "coordinateTransformations": [{"type": "scale", "scale": scale}]}
        ],
    }
    if fmt == 2:
        ms["version"] = "0.4"
    return [ms]


def _create_zarr_array(path: Path, shape, chunks, dtype, fmt: int):
    import zarr

    kwargs: dict = {"zarr_format": fmt, "fill_value": 0}
    if fmt == 2:
        kwargs["chunk_key_encoding"] = {"name": "v2", "separator": "/"}
    return zarr.create_array(
        str(path), shape=tuple(shape), chunks=tuple(chunks), dtype=dtype, **kwargs
    )


@contextlib.contextmanager
def ome_zarr_image_writer(
    path: str | os.PathLike,
    shape: Sequence[int],
    dtype,
    meta: ImageMeta | None = None,
    *,
    chunks: int = 1024,
) -> Iterator:
    """Create an empty OME-Zarr image (NGFF 0.4, one level) to fill block by block, atomically.

    Yields the full-resolution zarr array (axes ``meta.axes``, default ``"YX"``). The image is
    built in a temporary folder next to ``path`` and renamed onto it when the block succeeds,
    so a killed run never leaves a half-filled image under the target name. The array can be
    passed to Dask workers, which write their own chunks.
    """

    import zarr

    path = Path(path)
    meta = meta or ImageMeta(axes="YX")
    axes = meta.axes.lower()
    if len(axes) != len(shape):
        raise ValueError(f"meta.axes {meta.axes!r} does not match shape {tuple(shape)}")
    with atomic_folder(path) as tmp:
        root = zarr.open_group(str(tmp), mode="w", zarr_format=2)
        attrs: dict = {"multiscales": _multiscales(path.name, axes, meta.pixel_size, 2)}
        if meta.channel_names:
            attrs["omero"] = {"channels": [{"label": c} for c in meta.channel_names]}
        root.attrs.update(attrs)
        chunk_shape = [min(s, chunks) if a in "yx" else 1 for s, a in zip(shape, axes, strict=True)]
        array = _create_zarr_array(tmp / "0", shape, chunk_shape, dtype, 2)
        yield array


@contextlib.contextmanager
def ome_zarr_labels_writer(
    root: str | os.PathLike,
    name: str,
    shape: tuple[int, int],
    *,
    pixel_size: float | None = None,
    chunks: int = 1024,
    dtype=np.uint32,
) -> Iterator:
    """Create an empty ``(Y, X)`` label image under ``<root>/labels/<name>`` to fill block-wise.

    Writes the NGFF labels layout (``labels/.zattrs`` listing the names, ``image-label``
    metadata) in the Zarr format of ``root`` (NGFF 0.4 for Zarr v2, 0.5 for Zarr v3), so napari
    and other NGFF viewers show it over the image. The array is filled under a hidden temporary
    name and renamed to ``name`` and listed only when the block succeeds: a killed run leaves
    no half-written label image behind, and an earlier one of the same name stays until then.
    """
    import zarr

    root = Path(root)
    if not is_ome_zarr(root):
        raise CellscapeError(root, "not an OME-Zarr folder")
    fmt = _zarr_format(root)
    labels_dir = root / "labels"
    try:
        labels_group = zarr.open_group(str(labels_dir), mode="a", zarr_format=fmt)
    except Exception as exc:
        raise CellscapeError(root, f"cannot write labels ({_short(exc)})") from None
    with atomic_folder(labels_dir / name) as tmp:
        group = zarr.open_group(str(tmp), mode="w", zarr_format=fmt)
        attrs = {
            "multiscales": _multiscales(name, "yx", pixel_size, fmt),
            "image-label": {"version": "0.4", "source": {"image": "../../"}},
        }
        group.attrs.update(_ngff_attrs(fmt, attrs))
        array = _create_zarr_array(tmp / "0", shape, (chunks, chunks), dtype, fmt)
        yield array
    # listed only once complete, so viewers never open a half-written label image
    current = dict(labels_group.attrs)
    names = list(current.get("ome", current).get("labels", []))
    if name not in names:
        names.append(name)
    labels_group.attrs.update(_ngff_attrs(fmt, {"labels": names}))


def file_digest(path: str | os.PathLike) -> tuple[int, str]:
    """Size in bytes and SHA-256 hex digest of a file (read in 1 MiB pieces)."""
    import hashlib

    p = Path(path)
    h = hashlib.sha256()
    with open(p, "rb") as f:
        for piece in iter(lambda: f.read(1 << 20), b""):
            h.update(piece)
    return p.stat().st_size, h.hexdigest()
