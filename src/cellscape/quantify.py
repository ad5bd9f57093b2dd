"""Per-cell measurements: one row per cell, the table biologists take to their statistics.

Pure functions, numpy in, pandas DataFrame out.
"""

from __future__ import annotations

import numpy as np

from .io import ImageMeta


def cell_table(labels: np.ndarray, image: np.ndarray | None = None, meta: ImageMeta | None = None):
    """Measure every cell of a label image.

    Parameters
    ----------
    labels : ndarray of int, shape (Y, X)
        Instance labels, 0 = background.
    image : ndarray, optional
        The intensities to measure, ``(Y, X)`` or channels first ``(C, Y, X)`` (axes as in
        ``meta``); one ``mean_<channel>`` column per channel.
    meta : ImageMeta, optional
        Channel names for the column titles and the pixel size for ``area_um2``.

    Returns
    -------
    pandas.DataFrame
        Columns ``id, area`` (pixels), ``area_um2`` (when the pixel size is known),
        ``centroid_y, centroid_x`` (pixels), ``bbox_y0, bbox_x0, bbox_y1, bbox_x1`` (half-open,
        pixels), then ``mean_<channel>`` per channel. One row per cell, sorted by id.
    """
    import pandas as pd
    from scipy import ndimage as ndi
    from skimage.measure import regionprops_table

    labels = np.asarray(labels)
    props = regionprops_table(labels, properties=("label", "area", "centroid", "bbox"))
    table = pd.DataFrame(
        {
            "id": props["label"].astype(np.int64),
            "area": props["area"].astype(np.int64),
            "centroid_y": props["centroid-0"],
            "centroid_x": props["centroid-1"],
            "bbox_y0": props["bbox-0"],
            "bbox_x0": props["bbox-1"],
            "bbox_y1": props["bbox-2"],
            "bbox_x1": props["bbox-3"],
        }
    )
    if meta is not None and meta.pixel_size:
        table.insert(2, "area_um2", table["area"] * meta.pixel_size**2)
    if image is not None and len(table):
        image = np.asarray(image)
        planes, names = _channels(image, meta)
        for plane, name in zip(planes, names, strict=True):
            if plane.shape != labels.shape:
                raise ValueError(f"image plane {plane.shape} does not match labels {labels.shape}")
            table[f"mean_{name}"] = ndi.mean(plane.astype(np.float64), labels, table["id"].values)
    return table


def _channels(image: np.ndarray, meta: ImageMeta | None):
    if image.ndim == 2:
        name = (
            meta.channel_names[0]
            if meta is not None and len(meta.channel_names) == 1
            else "intensity"
        )
        return [image], [name]
    if meta is not None and meta.axes != "CYX":
        raise ValueError(f"cannot measure intensities of an image with axes {meta.axes}")
    names = list(meta.channel_names) if meta is not None and meta.channel_names else []
    if len(names) != image.shape[0]:
        names = [f"c{i}" for i in range(image.shape[0])]
    return list(image), names
