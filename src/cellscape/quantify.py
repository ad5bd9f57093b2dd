"""Per-cell measurements: one row per cell, the table biologists take to their statistics.

Pure functions, numpy in, pandas DataFrame out.
"""

from __future__ import annotations

import numpy as np

from .io import ImageMeta


def equivalent_diameters(labels: np.ndarray) -> np.ndarray:
    """Diameter of the disk with the same area as each object, ``2 sqrt(area / pi)``.

    Parameters
    ----------
    labels : ndarray of int
        Instance labels, 0 = background (any number of dimensions; areas are pixel counts).

    Returns
    -------
    ndarray of float64, one value per object present (pixels)
    """
    areas = np.bincount(np.asarray(labels).ravel())[1:]
    areas = areas[areas > 0]
    return 2.0 * np.sqrt(areas / np.pi)


def median_diameter(label_images, min_area: int = 0) -> float | None:
    """Median equivalent diameter (pixels) over all objects of several label images; ``None``
    when there is no object.

    Objects smaller than ``min_area`` pixels are left out: specks of a predicted foreground
    would otherwise outnumber the cells and pull the median down to a pixel or two.
    """
    min_diameter = 2.0 * np.sqrt(min_area / np.pi)
    diameters = [
        d for labels in label_images for d in equivalent_diameters(labels) if d >= min_diameter
    ]
    return float(np.median(diameters)) if diameters else None


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


# --------------------------------------------------------------------------------------------
# Kinase-translocation reporters: nuclear and cytoplasmic intensity per cell
# --------------------------------------------------------------------------------------------

#: Ways to choose the cytoplasm pixels of a cell for :func:`reporter_table`.
REPORTER_METHODS = ("mask", "ring", "mixture")


def cytoring_labels(
    nuclei: np.ndarray, radius: int = 4, gap: int = 0, cells: np.ndarray | None = None
) -> np.ndarray:
    """A ring of cytoplasm around each nucleus, labelled with the nucleus id.

    Parameters
    ----------
    nuclei : ndarray of int, shape (Y, X)
        Nucleus labels (0 = background).
    radius : int
        Ring width in pixels.
    gap : int
        Pixels left out between the nucleus edge and the ring (keeps blurred nuclear light out).
    cells : ndarray of int, shape (Y, X), optional
        Whole-cell labels with the nucleus ids; the ring is kept inside the cell.

    Returns
    -------
    ndarray of int32, shape (Y, X)
        Ring pixels carry the id of the nearest nucleus (rings of neighbours never overlap:
        pixels are split by proximity, as :func:`skimage.segmentation.expand_labels` does).
    """
    from skimage.segmentation import expand_labels

    nuclei = np.asarray(nuclei)
    outer = expand_labels(nuclei, distance=radius + gap)
    inner = expand_labels(nuclei, distance=gap) if gap > 0 else nuclei
    ring = np.where(inner > 0, 0, outer).astype(np.int32)
    if cells is not None:
        ring[np.asarray(cells) != ring] = 0
    return ring


def _mixture_mean(values: np.ndarray, seed: int = 0) -> float:
    """Mean of the brighter component of a 2-component Gaussian mixture of pixel values."""
    from sklearn.mixture import GaussianMixture

    if values.size < 10 or np.ptp(values) == 0:
        return float(values.mean()) if values.size else float("nan")
    gmm = GaussianMixture(n_components=2, random_state=seed).fit(values.reshape(-1, 1))
    return float(gmm.means_.max())


def _background_level(image: np.ndarray, occupied: np.ndarray, margin: int) -> float:
    from scipy import ndimage as ndi

    free = ~ndi.binary_dilation(occupied, iterations=margin)
    return float(np.median(image[free])) if free.any() else 0.0


def reporter_table(
    nuclei: np.ndarray,
    reporter: np.ndarray,
    cells: np.ndarray | None = None,
    *,
    methods: tuple[str, ...] | str = REPORTER_METHODS,
    ring_radius: int = 4,
    ring_gap: int = 0,
    background: float | str | None = "auto",
):
    """Nuclear and cytoplasmic reporter intensity of every cell, frame by frame.

    Three ways to pick the cytoplasm of a cell (``methods``):

    * ``"mask"``: the whole cytoplasm, ``cells == id`` minus the nucleus (needs ``cells``).
    * ``"ring"``: a cytoring ``ring_radius`` pixels wide around the nucleus, ``ring_gap``
      pixels off its edge (inside the cell when ``cells`` is given), see
      :func:`cytoring_labels`.
    * ``"mixture"``: a 2-component Gaussian mixture (scikit-learn) fitted to the intensities
      of the cytoplasm pixels (the ``"mask"`` cytoplasm, or the ring without ``cells``); the
      mean of the brighter component is the cytoplasm level. The dim component gathers pixels
      that hold little reporter (thin cell edges, background caught by a loose cell mask),
      the bright one the cytoplasm that exchanges reporter with the nucleus.

    Parameters
    ----------
    nuclei : ndarray of int, shape (Y, X) or (T, Y, X)
        Nucleus labels; a cell's id is its nucleus id (track ids for a time-lapse).
    reporter : ndarray, shape like ``nuclei``
        Reporter intensities (any real dtype).
    cells : ndarray of int, shape like ``nuclei``, optional
        Whole-cell labels carrying the same ids as the nuclei.
    methods : str or tuple of str
        Any of ``"mask"``, ``"ring"``, ``"mixture"``.
    ring_radius, ring_gap : int
        Cytoring width and distance from the nucleus, pixels.
    background : float, "auto" or None
        Subtracted from every intensity before the ratios: a number, ``"auto"`` (median of
        the pixels farther than ``ring_radius + ring_gap + 3`` pixels from any nucleus or
        cell, per frame) or None (no subtraction).

    Returns
    -------
    pandas.DataFrame
        One row per (frame, cell, method): ``frame, id, method, nucleus`` (mean background-
        subtracted nuclear intensity), ``cytoplasm`` (cytoplasm level), ``n_pixels`` (cytoplasm
        pixels used), ``nc_ratio = nucleus / cytoplasm`` and ``cn_ratio = cytoplasm / nucleus``
        (the usual KTR readout: C/N rises with kinase activity).

    Raises
    ------
    ValueError
        Shapes differ, an unknown method, or ``"mask"`` without ``cells``.
    """
    import pandas as pd
    from scipy import ndimage as ndi

    methods = (methods,) if isinstance(methods, str) else tuple(methods)
    for m in methods:
        if m not in REPORTER_METHODS:
            raise ValueError(f"unknown method {m!r}; use one of {REPORTER_METHODS}")
    nuclei = np.asarray(nuclei)
    reporter = np.asarray(reporter, dtype=np.float64)
    single = nuclei.ndim == 2
    if single:
        nuclei, reporter = nuclei[None], reporter[None]
        cells = None if cells is None else np.asarray(cells)[None]
    if reporter.shape != nuclei.shape:
        raise ValueError(f"reporter {reporter.shape} does not match nuclei {nuclei.shape}")
    if cells is not None:
        cells = np.asarray(cells)
        if cells.shape != nuclei.shape:
            raise ValueError(f"cells {cells.shape} does not match nuclei {nuclei.shape}")
    if cells is None and "mask" in methods:
        raise ValueError("the 'mask' method needs whole-cell labels (cells)")

    rows = []
    for t in range(nuclei.shape[0]):
        nuc, img = nuclei[t], reporter[t]
        cel = None if cells is None else cells[t]
        ids = np.unique(nuc[nuc > 0])
        if ids.size == 0:
            continue
        if background == "auto":
            occupied = (nuc > 0) | (cel > 0 if cel is not None else False)
            bg = _background_level(img, occupied, ring_radius + ring_gap + 3)
        else:
            bg = float(background or 0.0)
        img = img - bg
        nuc_mean = ndi.mean(img, nuc, ids)
        cyto_mask = None if cel is None else np.where(nuc > 0, 0, cel)
        ring = cytoring_labels(nuc, ring_radius, ring_gap, cel)
        for method in methods:
            region = cyto_mask if method == "mask" else ring
            if method == "mixture" and cyto_mask is not None:
                region = cyto_mask
            if method == "mixture":
                order = np.argsort(region.ravel(), kind="stable")
                flat = region.ravel()[order]
                vals = img.ravel()[order]
                starts = np.searchsorted(flat, ids, side="left")
                ends = np.searchsorted(flat, ids, side="right")
                cyto = np.array(
                    [_mixture_mean(vals[s:e]) for s, e in zip(starts, ends, strict=True)]
                )
                count = ends - starts
            else:
                count = ndi.sum_labels(np.ones_like(img), region, ids).astype(np.int64)
                with np.errstate(invalid="ignore", divide="ignore"):
                    cyto = np.where(count > 0, ndi.sum_labels(img, region, ids) / count, np.nan)
            with np.errstate(invalid="ignore", divide="ignore"):
                rows.append(
                    pd.DataFrame(
                        {
                            "frame": t,
                            "id": ids.astype(np.int64),
                            "method": method,
                            "nucleus": nuc_mean,
                            "cytoplasm": cyto,
                            "n_pixels": count,
                            "nc_ratio": nuc_mean / cyto,
                            "cn_ratio": cyto / nuc_mean,
                        }
                    )
                )
    columns = ["frame", "id", "method", "nucleus", "cytoplasm", "n_pixels", "nc_ratio", "cn_ratio"]
    if not rows:
        return pd.DataFrame(columns=columns)
    table = pd.concat(rows, ignore_index=True)
    return table.sort_values(["method", "frame", "id"], kind="stable").reset_index(drop=True)


def plot_reporter_traces(table, *, ratio: str = "cn_ratio", max_cells: int = 20):
    """Reporter ratio over time, one line per cell, one panel per method.

    Parameters
    ----------
    table : pandas.DataFrame
        Output of :func:`reporter_table`.
    ratio : str
        ``"cn_ratio"`` (C/N) or ``"nc_ratio"`` (N/C).
    max_cells : int
        Draw at most this many cells (the longest-lived ones).

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.figure import Figure

    methods = list(dict.fromkeys(table["method"]))
    fig = Figure(figsize=(4.2 * max(len(methods), 1), 3.4), dpi=100)
    axes = fig.subplots(1, max(len(methods), 1), squeeze=False, sharey=True)[0]
    life = table.groupby("id")["frame"].nunique().sort_values(ascending=False)
    keep = set(life.index[:max_cells].tolist())
    for ax, method in zip(axes, methods, strict=False):
        sub = table[(table["method"] == method) & table["id"].isin(keep)]
        for _, g in sub.groupby("id"):
            ax.plot(g["frame"], g[ratio], lw=1)
        ax.set_title(method)
        ax.set_xlabel("frame")
    axes[0].set_ylabel("C/N ratio" if ratio == "cn_ratio" else "N/C ratio")
    fig.tight_layout()
    return fig
