"""npe2 reader, writers and sample data (no Qt here; napari calls these by name).

Reader: cellscape's outputs and inputs open as the right kind of layer:

- ``*_masks.tif`` (and any ``*_labels.tif``) -> a Labels layer;
- ``*_classes.tif`` (focal-signature class maps) -> a Labels layer;
- ``*_probabilities.tif`` / ``*_confidence.tif`` -> Image layers (one per class);
- an OME-Zarr folder -> its image, plus every label image under ``labels/`` as Labels layers;
- other TIFF / PNG / JPEG -> an Image layer (colour as RGB, channels split, z-stacks as stacks).

Layers carry the pixel size as their scale (µm) when the file records it.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import CellscapeError
from ..io import ImageMeta

_LABEL_ENDINGS = ("_masks", "_labels", "_classes")
_MAP_ENDINGS = ("_probabilities", "_confidence")


def _stem(path: Path) -> str:
    name = path.name
    for suffix in (".ome.tiff", ".ome.tif", ".tiff", ".tif", ".png", ".jpg", ".jpeg", ".zarr"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def _scale(meta: ImageMeta, ndim: int) -> list[float]:
    scale = [1.0] * ndim
    if meta.pixel_size:
        scale[-1] = scale[-2] = float(meta.pixel_size)
    if meta.z_step and "Z" in meta.axes and ndim >= 3:
        scale[-3] = float(meta.z_step)
    return scale


def _md(meta: ImageMeta) -> dict:
    return {
        "cellscape": {"pixel_size": meta.pixel_size, "z_step": meta.z_step, "source": meta.source}
    }


def get_reader(path: str | list[str]):
    """npe2 reader contribution: a reader function for cellscape files, or None."""
    if isinstance(path, list):
        if not path:
            return None
        path = path[0]
    p = Path(path)
    from ..io import IMAGE_SUFFIXES, is_ome_zarr

    if is_ome_zarr(p) or (p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES):
        return read_layers
    return None


def read_layers(path: str | list[str]) -> list[tuple]:
    """Read one or more files into napari layer-data tuples ``(data, kwargs, layer_type)``."""
    paths = path if isinstance(path, list) else [path]
    layers: list[tuple] = []
    for one in paths:
        layers.extend(_read_one(Path(one)))
    return layers


def _read_one(p: Path) -> list[tuple]:
    from ..io import is_ome_zarr, read_image, read_ome_zarr_labels, validate_labels

    stem = _stem(p)
    data, meta = read_image(p)
    kwargs = {"name": stem, "metadata": _md(meta)}
    if stem.endswith(_LABEL_ENDINGS):
        labels = validate_labels(data, p)
        return [(labels, {**kwargs, "scale": _scale(meta, labels.ndim)}, "labels")]
    if stem.endswith(_MAP_ENDINGS) and meta.axes in ("ZYX", "CYX") and "_probabilities" in stem:
        # one layer per class, additive, so they overlay like the focal GUI's class maps
        return [
            (
                plane,
                {
                    **kwargs,
                    "name": f"{stem} [{k}]",
                    "scale": _scale(meta, 2),
                    "blending": "additive",
                    "colormap": ("magenta", "green", "cyan", "yellow", "red", "blue")[k % 6],
                    "contrast_limits": (0.0, 1.0),
                    "visible": k == 0,
                },
                "image",
            )
            for k, plane in enumerate(data)
        ]
    layers: list[tuple] = []
    if meta.rgb:
        layers.append((np.moveaxis(data, 0, -1), {**kwargs, "rgb": True}, "image"))
    elif meta.axes.startswith("C"):
        names = meta.channel_names or tuple(f"c{i}" for i in range(data.shape[0]))
        layers.append(
            (
                data,
                {
                    **kwargs,
                    "channel_axis": 0,
                    "name": [f"{stem} {n}" for n in names],
                    "scale": _scale(meta, data.ndim - 1),
                },
                "image",
            )
        )
    else:
        layers.append((data, {**kwargs, "scale": _scale(meta, data.ndim)}, "image"))
    if is_ome_zarr(p):
        layers.extend(_zarr_labels(p, meta, read_ome_zarr_labels))
    return layers


def _zarr_labels(p: Path, meta: ImageMeta, reader) -> list[tuple]:
    import zarr

    try:
        group = zarr.open_group(str(p), mode="r")
        if "labels" not in group:
            return []
        attrs = dict(group["labels"].attrs)
        names = attrs.get("ome", attrs).get("labels", [])
    except Exception:
        return []
    out = []
    for name in names:
        lab = reader(p, name)
        out.append(
            (lab, {"name": name, "scale": _scale(meta, lab.ndim), "metadata": _md(meta)}, "labels")
        )
    return out


# --------------------------------------------------------------------------------------------
# writers
# --------------------------------------------------------------------------------------------


def _meta_from(attributes: dict, ndim: int) -> ImageMeta:
    scale = attributes.get("scale")
    pixel_size = None
    if scale is not None and len(scale) >= 2 and abs(float(scale[-1]) - 1.0) > 1e-9:
        pixel_size = float(scale[-1])
    axes = {2: "YX", 3: "ZYX"}.get(ndim, "YX")
    return ImageMeta(axes, pixel_size)


def write_labels_layer(path: str, data, attributes: dict) -> list[str]:
    """npe2 writer: a Labels layer as ``*_masks.tif`` (or into an OME-Zarr's ``labels/``)."""
    from ..io import is_ome_zarr

    p = Path(path)
    labels = np.asarray(data)
    meta = _meta_from(attributes, labels.ndim)
    if p.suffix.lower() == ".zarr" or is_ome_zarr(p):
        return [str(_write_zarr_labels(p, labels, attributes.get("name", "masks"), meta))]
    if labels.ndim != 2:
        from ..io import write_labels

        return [str(write_labels(p, labels, meta))]
    from .core import save_masks

    return [str(save_masks(p, labels, meta))]


def _write_zarr_labels(p: Path, labels: np.ndarray, name: str, meta: ImageMeta) -> Path:
    """Write labels as a new OME-Zarr holding a blank image of the same shape plus the labels.

    Adding to an existing OME-Zarr rewrites it (image and labels) atomically.
    """
    from ..io import is_ome_zarr, read_image, read_ome_zarr_labels, write_ome_zarr

    name = str(name).replace("/", "_") or "masks"
    if is_ome_zarr(p):
        image, img_meta = read_image(p)
        existing = {}
        import zarr

        group = zarr.open_group(str(p), mode="r")
        if "labels" in group:
            attrs = dict(group["labels"].attrs)
            for other in attrs.get("ome", attrs).get("labels", []):
                existing[other] = read_ome_zarr_labels(p, other)
        existing[name] = labels
        spatial = image.shape[-labels.ndim :]
        if spatial != labels.shape:
            raise CellscapeError(p, f"labels {labels.shape} do not match the image {image.shape}")
        return write_ome_zarr(p, image, img_meta.with_(source=None), labels=existing)
    blank = np.zeros(labels.shape, dtype=np.uint8)
    return write_ome_zarr(p, blank, meta, labels={name: labels})


def write_image_layer(path: str, data, attributes: dict) -> list[str]:
    """npe2 writer: an Image layer as (OME-)TIFF, keeping the pixel size."""
    from ..io import write_tiff

    arr = np.asarray(data)
    if attributes.get("rgb"):
        arr = np.moveaxis(arr, -1, 0)
        meta = ImageMeta("CYX", _meta_from(attributes, 2).pixel_size, rgb=True)
    else:
        meta = _meta_from(attributes, arr.ndim)
        if arr.ndim > 3:
            raise CellscapeError(path, f"cannot write a {arr.ndim}-D image layer")
    return [str(write_tiff(path, arr, meta))]


# --------------------------------------------------------------------------------------------
# sample data
# --------------------------------------------------------------------------------------------


def _seed() -> int:
    return int(os.environ.get("CELLSCAPE_SAMPLE_SEED", "0"))


def sample_nuclei() -> list[tuple]:
    """Synthetic fluorescent nuclei (256 x 256) with their ground-truth masks."""
    from ..synthetic import nuclei

    s = nuclei(shape=(256, 256), n_nuclei=40, seed=_seed())
    scale = [s.pixel_size, s.pixel_size]
    md = {"cellscape": {"pixel_size": s.pixel_size}}
    return [
        (s.image, {"name": "nuclei", "scale": scale, "metadata": md}, "image"),
        (s.labels, {"name": "nuclei ground truth", "scale": scale, "visible": False}, "labels"),
    ]


def sample_whole_cells() -> list[tuple]:
    """Synthetic whole cells: cytoplasm and nuclear channels, cell and nucleus masks."""
    from ..synthetic import whole_cells

    s = whole_cells(shape=(256, 256), n_cells=20, seed=_seed())
    scale = [s.pixel_size, s.pixel_size]
    md = {"cellscape": {"pixel_size": s.pixel_size}}
    return [
        (
            s.image,
            {
                "name": "cytoplasm",
                "scale": scale,
                "metadata": md,
                "colormap": "green",
                "blending": "additive",
            },
            "image",
        ),
        (
            s.nuclear_image,
            {
                "name": "nuclear stain",
                "scale": scale,
                "metadata": md,
                "colormap": "magenta",
                "blending": "additive",
            },
            "image",
        ),
        (s.labels, {"name": "cells ground truth", "scale": scale, "visible": False}, "labels"),
        (
            s.nuclei_labels,
            {"name": "nuclei ground truth", "scale": scale, "visible": False},
            "labels",
        ),
    ]


def sample_zstack() -> list[tuple]:
    """A simulated bright-field z-stack of E. coli in a microfluidic chip (40 frames, 192 px)
    with its ground-truth class map (interior, contour, background...) and cell masks."""
    from ..synthetic import brightfield_zstack

    s = brightfield_zstack(shape=(192, 192), n_frames=40, dz=0.2, kind="ecoli", seed=_seed())
    md = {"cellscape": {"pixel_size": s.pixel_size, "z_step": s.dz}}
    scale2 = [s.pixel_size, s.pixel_size]
    return [
        (
            s.stack,
            {
                "name": "bright-field z-stack",
                "metadata": md,
                "scale": [s.dz, s.pixel_size, s.pixel_size],
            },
            "image",
        ),
        (
            s.classes,
            {
                "name": "classes ground truth",
                "scale": scale2,
                "visible": False,
                "metadata": {"class_names": list(s.class_names)},
            },
            "labels",
        ),
        (s.labels, {"name": "cells ground truth", "scale": scale2, "visible": False}, "labels"),
    ]
