"""Two-channel automatic whole-cell segmentation, and the preprocessing of the whole-cell method.

Al-Kofahi et al. (BMC Bioinformatics 2018) made the training targets of their single-channel
network without drawing anything: nuclei are segmented in a nuclear-stain channel, then the
same seeded watershed as at prediction time grows one cell per nucleus in the cytoplasm-marker
channel. :class:`TwoChannelSegmenter` does that for any marker + nuclear image pair, and
:func:`class_targets` turns its result (or hand-drawn masks) into the three maps the network
learns: nucleus, cytoplasm, background.

The preprocessing shared with :mod:`cellscape.methods.wholecell` lives here too, so that this
module (no torch) can run alone: top-hat background suppression with a kernel given in µm, and
rescaling to a working pixel size and back.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from .post.seeds import cell_evidence, cells_from_nuclei, nuclei_from_map

#: the paper's working pixel size (10x objective), µm
WORKING_PIXEL_SIZE = 0.65
#: names of the three classes, in the order of the network outputs and of class_targets
CLASSES = ("nucleus", "cytoplasm", "background")


def tophat(image: np.ndarray, size_um: float | None, pixel_size: float) -> np.ndarray:
    """White top-hat background suppression with a square kernel given in µm.

    Parameters
    ----------
    image : ndarray of float, shape (Y, X)
    size_um : float or None
        Kernel edge in µm (the paper: 200 px at 0.65 µm = 130 µm); ``None`` or 0 skips it.
    pixel_size : float
        Pixel size of ``image`` in µm.

    Returns
    -------
    ndarray of float32, shape (Y, X)
        ``image`` minus its grey opening (the slowly varying background).
    """
    image = np.asarray(image, dtype=np.float32)
    if not size_um:
        return image
    size = max(3, int(round(size_um / pixel_size)) | 1)
    # the opening of a large square is separable (1-D min / max filters), so it is fast; it is
    # computed on a 4x coarser grid when the kernel is large, which is as good for a background
    step = 4 if size >= 64 else 1
    if step > 1:
        small = ndi.zoom(image, 1 / step, order=1)
        opened = ndi.grey_opening(small, size=(size // step, size // step))
        opened = _resize(opened, image.shape)
        opened = np.minimum(opened, image)
    else:
        opened = ndi.grey_opening(image, size=(size, size))
    return image - opened


def normalize(image: np.ndarray, low: float = 1.0, high: float = 99.8) -> np.ndarray:
    """Percentile normalisation (``low`` -> 0, ``high`` -> 1) on a subsample, float32."""
    image = np.asarray(image, dtype=np.float32)
    step = max(1, max(image.shape) // 1024)
    lo, hi = np.percentile(image[::step, ::step], [low, high])
    if hi <= lo:
        return np.zeros_like(image)
    return (image - lo) / (hi - lo)


def _resize(plane: np.ndarray, shape, order: int = 1) -> np.ndarray:
    shape = tuple(int(s) for s in shape)
    if plane.shape == shape:
        return plane
    factors = (shape[0] / plane.shape[0], shape[1] / plane.shape[1])
    out = ndi.zoom(plane, factors, order=order, grid_mode=True, mode="nearest")
    if out.shape != shape:
        out = np.pad(
            out[: shape[0], : shape[1]],
            ((0, max(0, shape[0] - out.shape[0])), (0, max(0, shape[1] - out.shape[1]))),
            mode="edge",
        )
    return out


def to_working_scale(
    plane: np.ndarray, pixel_size: float, working_pixel_size: float = WORKING_PIXEL_SIZE
) -> np.ndarray:
    """Rescale a plane from ``pixel_size`` to ``working_pixel_size`` (both µm), bilinear."""
    factor = pixel_size / working_pixel_size
    if abs(factor - 1.0) < 0.02:
        return np.asarray(plane, dtype=np.float32)
    shape = [max(1, int(round(s * factor))) for s in plane.shape]
    return _resize(np.asarray(plane, dtype=np.float32), shape)


def from_working_scale(plane: np.ndarray, shape, labels: bool = False) -> np.ndarray:
    """Undo :func:`to_working_scale`: back to ``shape`` (nearest neighbour for labels)."""
    return _resize(plane, shape, order=0 if labels else 1)


@dataclass
class TwoChannelResult:
    """Output of :meth:`TwoChannelSegmenter.segment`, at the input's own pixel grid."""

    cells: np.ndarray
    nuclei: np.ndarray


@dataclass
class TwoChannelSegmenter:
    """Whole cells from a cytoplasm-marker channel plus a nuclear channel, no training.

    Nuclei come from the nuclear stain (:func:`~cellscape.post.seeds.nuclei_from_map` on the
    normalised, top-hat filtered stain); cells from the marker channel by the seeded watershed
    of :func:`~cellscape.post.seeds.cells_from_nuclei`, one per nucleus.

    Attributes
    ----------
    pixel_size : float
        Pixel size of the input images in µm (used when the caller gives none).
    working_pixel_size : float
        Pixel size the work is done at, µm.
    tophat_um : float or None
        Top-hat kernel in µm for both channels (None skips it).
    nucleus_diameter, h, min_nucleus_area : float
        Nucleus size (µm), h-minima depth (µm) and smallest nucleus (µm²).
    sensitivity : float
        Multi-level Otsu sensitivity of the nucleus threshold (0..1).
    levels : int
        Classes of that multi-level Otsu.
    cell_area : float
        Expected cell area in µm², picks the cell threshold.
    use_intensity : bool
        Use the marker intensity for the cell foreground (True, for a cytoplasm marker); False
        grows cells on a smoothed version of the nuclear stain's complement only (rarely useful).
    smoothing : float
        Gaussian denoising sigma of the marker, µm.
    """

    pixel_size: float = WORKING_PIXEL_SIZE
    working_pixel_size: float = WORKING_PIXEL_SIZE
    tophat_um: float | None = 130.0
    nucleus_diameter: float = 10.0
    h: float = 3.0
    min_nucleus_area: float = 12.0
    sensitivity: float = 0.5
    levels: int = 3
    cell_area: float = 600.0
    use_intensity: bool = True
    smoothing: float = 0.2

    def segment(
        self, cell_image: np.ndarray, nuclear_image: np.ndarray, pixel_size: float | None = None
    ) -> TwoChannelResult:
        """Segment one image pair.

        Parameters
        ----------
        cell_image, nuclear_image : ndarray, shape (Y, X)
            Cytoplasm-marker channel and nuclear-stain channel of the same field.
        pixel_size : float, optional
            Pixel size in µm (default :attr:`pixel_size`).

        Returns
        -------
        TwoChannelResult
            ``cells`` and ``nuclei`` (Y, X) int32; a nucleus and its cell share an id.
        """
        cell_image = np.asarray(cell_image, dtype=np.float32)
        nuclear_image = np.asarray(nuclear_image, dtype=np.float32)
        if cell_image.shape != nuclear_image.shape or cell_image.ndim != 2:
            raise ValueError(
                f"need two (Y, X) planes of one shape, got {cell_image.shape} and "
                f"{nuclear_image.shape}"
            )
        px = float(pixel_size or self.pixel_size)
        wp = self.working_pixel_size
        nuc = to_working_scale(tophat(nuclear_image, self.tophat_um, px), px, wp)
        nuc = np.clip(normalize(ndi.gaussian_filter(nuc, 0.5)), 0, 1)
        nuclei = nuclei_from_map(
            nuc,
            pixel_size=wp,
            nucleus_diameter=self.nucleus_diameter,
            sensitivity=self.sensitivity,
            levels=self.levels,
            h=self.h,
            min_area=self.min_nucleus_area,
        )
        cyto = to_working_scale(tophat(cell_image, self.tophat_um, px), px, wp)
        if self.use_intensity:
            evidence = cell_evidence(cyto, None, self.smoothing / wp)
        else:
            evidence = cell_evidence(None, 1.0 - ndi.gaussian_filter(nuc, 2.0))
        cells, _ = cells_from_nuclei(evidence, nuclei, cell_area=self.cell_area, pixel_size=wp)
        shape = cell_image.shape
        return TwoChannelResult(
            cells=from_working_scale(cells, shape, labels=True).astype(np.int32),
            nuclei=from_working_scale(nuclei, shape, labels=True).astype(np.int32),
        )

    def targets(
        self, cell_image: np.ndarray, nuclear_image: np.ndarray, pixel_size: float | None = None
    ) -> np.ndarray:
        """Training targets of an image pair: :func:`class_targets` of :meth:`segment`."""
        result = self.segment(cell_image, nuclear_image, pixel_size)
        return class_targets(result.cells, result.nuclei)


def class_targets(cells: np.ndarray, nuclei: np.ndarray) -> np.ndarray:
    """The three target maps of the whole-cell network from cell and nucleus labels.

    Parameters
    ----------
    cells : ndarray of int, shape (Y, X)
        Whole-cell labels (0 background).
    nuclei : ndarray of int or bool, shape (Y, X)
        Nucleus labels or mask; only nucleus pixels inside a cell count as nucleus.

    Returns
    -------
    ndarray of float32, shape (3, Y, X)
        One-hot nucleus, cytoplasm, background (:data:`CLASSES` order). Cytoplasm is the cell
        minus its nucleus; the one-pixel seams between touching cells are background, so the
        network learns where cells meet.
    """
    from skimage.segmentation import find_boundaries

    cells = np.asarray(cells)
    nuclei = np.asarray(nuclei)
    if cells.shape != nuclei.shape:
        raise ValueError(f"cells {cells.shape} and nuclei {nuclei.shape} differ in shape")
    inside = cells > 0
    seams = find_boundaries(cells, mode="inner") & inside
    # only seams between two cells: a rim next to background stays cytoplasm
    seams &= ndi.grey_dilation(cells, size=3) != ndi.grey_erosion(
        np.where(inside, cells, cells.max() + 1), size=3
    )
    inside &= ~seams
    nucleus = (nuclei > 0) & inside
    out = np.zeros((3, *cells.shape), np.float32)
    out[0] = nucleus
    out[1] = inside & ~nucleus
    out[2] = ~inside
    return out
