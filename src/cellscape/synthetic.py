"""Simulated microscopy images with exact ground truth.

Deterministic generators (seeded through :func:`numpy.random.default_rng`) for tests,
demos and benchmarks. Every generator is a pure function that returns a small frozen
dataclass holding numpy arrays, e.g.::

    from cellscape import synthetic

    s = synthetic.nuclei(seed=0)
    s.image, s.labels

Conventions
-----------
* Axis order is (Y, X) for images, (Z, Y, X) for z-stacks and (T, Y, X) for time-lapses.
* Label images are ``int32`` with 0 for background and instance ids ``1..N`` that are
  consecutive. Every id is a single 4-connected component (per frame for time-lapses).
* Image intensities are normalised so that the brightest structures are around 1.0
  (``float32``) or scaled so that 1.0 maps to 65535 (``uint16``).
* Lengths (``pixel_size``, ``dz``, ``wavelength``) are in micrometres (µm).

The number of objects actually placed can be lower than requested when the field is too
crowded (placement is rejection sampling with a bounded number of attempts); the real
count is always ``labels.max()``.

Only numpy, scipy and scikit-image are used.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import fft as sfft
from scipy import ndimage as ndi
from skimage import measure
from skimage.segmentation import find_boundaries, relabel_sequential

__all__ = [
    "SyntheticImage",
    "SyntheticTimelapse",
    "SyntheticWholeCells",
    "SyntheticZStack",
    "bacteria_phase",
    "brightfield_zstack",
    "nuclei",
    "timelapse",
    "whole_cells",
]

SeedLike = int | np.random.Generator | None


# --------------------------------------------------------------------------------------
# Result containers
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class SyntheticImage:
    """A single 2D synthetic image with instance ground truth.

    Attributes
    ----------
    image : ndarray, shape (Y, X), float32 or uint16
        The simulated image.
    labels : ndarray, shape (Y, X), int32
        Instance labels, 0 background, ids 1..N consecutive.
    pixel_size : float
        Pixel size in µm.
    """

    image: np.ndarray
    labels: np.ndarray
    pixel_size: float


@dataclass(frozen=True, eq=False)
class SyntheticWholeCells:
    """Two-channel whole-cell image with cell and nucleus ground truth.

    Attributes
    ----------
    image : ndarray, shape (Y, X), float32 or uint16
        Cytoplasm-marker channel: bright cytoplasm, dim nuclei.
    nuclear_image : ndarray, shape (Y, X), float32 or uint16
        Nuclear-stain channel: bright nuclei, almost dark cytoplasm.
    labels : ndarray, shape (Y, X), int32
        Whole-cell instance labels, ids 1..N consecutive.
    nuclei_labels : ndarray, shape (Y, X), int32
        Nucleus labels; each nucleus carries the id of the cell that contains it.
    pixel_size : float
        Pixel size in µm.
    """

    image: np.ndarray
    nuclear_image: np.ndarray
    labels: np.ndarray
    nuclei_labels: np.ndarray
    pixel_size: float


@dataclass(frozen=True, eq=False)
class SyntheticZStack:
    """Bright-field defocus z-stack with instance and semantic ground truth.

    Attributes
    ----------
    stack : ndarray, shape (Z, Y, X), float32
        Intensity stack; the background of a noise-free, drift-free stack is ~1.0.
    labels : ndarray, shape (Y, X), int32
        Instance labels of the cells (ids 1..N consecutive).
    classes : ndarray, shape (Y, X), uint8
        Semantic classes, names in ``class_names``: 0 background, 1 interior,
        2 contour (inner border ring), 3 halo (ring just outside cells), 4 wall.
    class_names : tuple of str
        Names of the values of ``classes``.
    type_classes : ndarray, shape (Y, X), uint8
        Like ``classes`` but with the interior split by cell type, names in
        ``type_class_names``: 0 background, 1 bacteria, 2 yeast, 3 mammalian,
        4 contour, 5 halo, 6 wall.
    type_class_names : tuple of str
        Names of the values of ``type_classes``.
    cell_type : ndarray, shape (N + 1,), uint8
        ``cell_type[i]`` is the type of instance ``i`` (index 0 is background = 0), with
        names in ``cell_type_names``: 1 bacteria, 2 yeast, 3 mammalian.
    cell_type_names : tuple of str
        Names of the values of ``cell_type``.
    phase : ndarray, shape (Y, X), float32
        Phase delay of the thin object in radians (cells and walls).
    z : ndarray, shape (Z,), float64
        Defocus of each frame in µm (0 is the focal plane of the object; positive z is
        the image plane moved away from the object along the propagation direction).
    dz : float
        Step between frames in µm.
    pixel_size : float
        Pixel size in µm (object space).
    wavelength : float
        Vacuum wavelength in µm.
    focus_index : int
        Index of the in-focus frame (``z[focus_index] == 0``).
    kind : str
        The simulated sample kind.
    """

    stack: np.ndarray
    labels: np.ndarray
    classes: np.ndarray
    class_names: tuple[str, ...]
    type_classes: np.ndarray
    type_class_names: tuple[str, ...]
    cell_type: np.ndarray
    cell_type_names: tuple[str, ...]
    phase: np.ndarray
    z: np.ndarray
    dz: float
    pixel_size: float
    wavelength: float
    focus_index: int
    kind: str


@dataclass(frozen=True, eq=False)
class SyntheticTimelapse:
    """Time-lapse of moving, growing and dividing nuclei with tracking ground truth.

    Attributes
    ----------
    images : ndarray, shape (T, Y, X), float32
        Nuclear-marker images.
    labels : ndarray, shape (T, Y, X), int32
        Nucleus labels; the label value is the track id, constant over time.
    tracks : ndarray, shape (n_tracks, 4), int64
        Rows ``(track_id, start_frame, end_frame, parent_id)`` exactly like the Cell
        Tracking Challenge ``man_track.txt`` (``parent_id`` 0 for none; frames inclusive).
        Row ``k`` describes track id ``k + 1``.
    reporter_images : ndarray, shape (T, Y, X), float32, or None
        Kinase-translocation-reporter channel (present nucleus and a cytoplasm ring
        around it), or None when ``reporter=False``.
    reporter_ratio : ndarray, shape (T, n_tracks), float64, or None
        True cytoplasm-to-nucleus (C/N) reporter concentration ratio of track id
        ``k + 1`` at frame ``t`` in column ``k``; NaN where the track does not exist.
        This is the ratio of the noise-free, unblurred pixel values, i.e. the mean of
        ``reporter`` over ``cytoplasm_labels == id`` divided by the mean over
        ``labels == id`` before blur and noise.
    cytoplasm_labels : ndarray, shape (T, Y, X), int32, or None
        Cytoplasm ring of each cell, labelled with the track id.
    pixel_size : float
        Pixel size in µm.
    """

    images: np.ndarray
    labels: np.ndarray
    tracks: np.ndarray
    reporter_images: np.ndarray | None = None
    reporter_ratio: np.ndarray | None = None
    cytoplasm_labels: np.ndarray | None = None
    pixel_size: float = 0.65


# --------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------


def _smooth_noise(
    shape: tuple[int, ...], sigma: float, rng: np.random.Generator, mode: str = "wrap"
) -> np.ndarray:
    """Zero-mean, unit-std Gaussian-filtered white noise."""
    f = ndi.gaussian_filter(rng.standard_normal(shape), sigma, mode=mode)
    s = f.std()
    return (f - f.mean()) / (s if s > 0 else 1.0)


def _bbox(center, radius, shape):
    cy, cx = center
    y0 = max(int(np.floor(cy - radius)), 0)
    y1 = min(int(np.ceil(cy + radius)) + 1, shape[0])
    x0 = max(int(np.floor(cx - radius)), 0)
    x1 = min(int(np.ceil(cx + radius)) + 1, shape[1])
    if y0 >= y1 or x0 >= x1:
        return None
    return (slice(y0, y1), slice(x0, x1))


def _ellipse_d2(center, a: float, b: float, theta: float, shape):
    """Normalised squared ellipse distance on the bounding box (<= 1 inside)."""
    sl = _bbox(center, max(a, b) + 1, shape)
    if sl is None:
        return None
    yy, xx = np.ogrid[sl[0], sl[1]]
    dy = yy - center[0]
    dx = xx - center[1]
    c, s = np.cos(theta), np.sin(theta)
    u = dx * c + dy * s
    v = -dx * s + dy * c
    return sl, (u / a) ** 2 + (v / b) ** 2


def _capsule_d(center, length: float, width: float, theta: float, shape):
    """Distance to the axis of a spherocylinder divided by its radius (<= 1 inside)."""
    r = width / 2.0
    half = max(length / 2.0 - r, 0.0)
    sl = _bbox(center, half + r + 1, shape)
    if sl is None:
        return None
    yy, xx = np.ogrid[sl[0], sl[1]]
    dy = yy - center[0]
    dx = xx - center[1]
    ux, uy = np.cos(theta), np.sin(theta)
    t = np.clip(dx * ux + dy * uy, -half, half)
    px = dx - t * ux
    py = dy - t * uy
    return sl, np.sqrt(px * px + py * py) / r


def _keep_largest_fragment(labels: np.ndarray) -> np.ndarray:
    """Keep only the largest 4-connected component of every id (others set to 0)."""
    comp = measure.label(labels, background=0, connectivity=1)
    n = int(comp.max())
    if n == 0:
        return labels
    owner = np.zeros(n + 1, dtype=labels.dtype)
    owner[comp.ravel()] = labels.ravel()
    sizes = np.bincount(comp.ravel(), minlength=n + 1)
    best = {}
    for k in range(1, n + 1):
        o = int(owner[k])
        if o not in best or sizes[k] > sizes[best[o]]:
            best[o] = k
    keep = np.zeros(n + 1, dtype=bool)
    keep[list(best.values())] = True
    out = labels.copy()
    out[~keep[comp]] = 0
    return out


def _split_fragments(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Give each 4-connected fragment its own consecutive id.

    Returns the new labels and ``old_of_new`` (old id of every new id, index 0 -> 0).
    """
    new = measure.label(labels, background=0, connectivity=1).astype(np.int32)
    old_of_new = np.zeros(int(new.max()) + 1, dtype=np.int64)
    old_of_new[new.ravel()] = labels.ravel()
    return new, old_of_new


def _consecutive(labels: np.ndarray) -> np.ndarray:
    out, _, _ = relabel_sequential(labels)
    return out.astype(np.int32)


def _noise(
    img: np.ndarray, rng: np.random.Generator, photons: float | None, sigma: float
) -> np.ndarray:
    """Poisson (shot) noise with ``photons`` counts per unit intensity + Gaussian noise."""
    if photons is not None and photons > 0:
        img = rng.poisson(np.clip(img, 0, None) * photons) / photons
    if sigma > 0:
        img = img + rng.normal(0.0, sigma, img.shape)
    return img


def _to_dtype(img: np.ndarray, dtype: npt.DTypeLike) -> np.ndarray:
    dt = np.dtype(dtype)
    img = np.clip(img, 0.0, 1.0)
    if dt == np.uint16:
        return np.round(img * 65535.0).astype(np.uint16)
    if dt.kind == "f":
        return img.astype(dt)
    raise ValueError(f"dtype must be uint16 or a float type, got {dt}")


def _uniform(rng: np.random.Generator, rng_range, size=None):
    lo, hi = (rng_range, rng_range) if np.isscalar(rng_range) else rng_range
    return rng.uniform(lo, hi, size)


def _voronoi_cells(
    shape: tuple[int, int],
    n: int,
    radius: tuple[float, float],
    rng: np.random.Generator,
    region: np.ndarray | None = None,
    min_dist: float | None = None,
    irregularity: float = 0.15,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Touching cells: Voronoi tessellation of seeds limited to a noisy radius.

    Returns ``labels`` (ids 1..N, single components), ``seeds`` (N, 2) int pixel
    coordinates (seed of cell i at row i - 1) and ``radii`` (N,).
    """
    if min_dist is None:
        min_dist = 1.4 * radius[0]
    cand = np.argwhere(region) if region is not None else None
    seeds: list[tuple[int, int]] = []
    for attempt in range(60 * n):
        if len(seeds) >= n:
            break
        if cand is not None and len(cand) and attempt < 40 * n:
            p = cand[rng.integers(len(cand))]
        else:
            p = (rng.integers(shape[0]), rng.integers(shape[1]))
        p = (int(p[0]), int(p[1]))
        if seeds:
            d = np.hypot(*(np.asarray(seeds) - p).T)
            if d.min() < min_dist:
                continue
        seeds.append(p)
    seeds_arr = np.asarray(seeds, dtype=np.int64).reshape(-1, 2)
    radii = _uniform(rng, radius, len(seeds_arr))
    if len(seeds_arr) == 0:
        return np.zeros(shape, np.int32), seeds_arr, radii
    marker = np.zeros(shape, np.int32)
    marker[seeds_arr[:, 0], seeds_arr[:, 1]] = np.arange(1, len(seeds_arr) + 1)
    dist, (iy, ix) = ndi.distance_transform_edt(marker == 0, return_indices=True)
    nearest = marker[iy, ix]
    rmap = np.concatenate([[0.0], radii])[nearest]
    rmap = rmap * (1.0 + irregularity * _smooth_noise(shape, 4.0, rng, mode="reflect"))
    labels = np.where(dist <= rmap, nearest, 0).astype(np.int32)
    labels = _keep_largest_fragment(labels)
    return labels, seeds_arr, radii


def _inscribed_radius(labels: np.ndarray) -> np.ndarray:
    """Distance of every cell pixel to the border of its own cell."""
    interior = (labels > 0) & ~find_boundaries(labels, mode="inner", background=0)
    return ndi.distance_transform_edt(interior)


def _pack_rods(
    shape: tuple[int, int],
    n: int,
    length: tuple[float, float],
    width: tuple[float, float],
    rng: np.random.Generator,
    region: np.ndarray,
    angle: np.ndarray | float,
    labels: np.ndarray | None = None,
    profile: np.ndarray | None = None,
    inside: bool = False,
    angle_jitter: float = 0.12,
    gap: tuple[float, float] = (0.0, 1.0),
    max_attempts: int | None = None,
) -> tuple[np.ndarray, np.ndarray, int]:
    """Densely pack non-overlapping spherocylinders, growing aligned patches.

    Cells are proposed next to already placed ones (side by side or end to end, in
    breadth-first order) so that they form touching, roughly aligned patches; when no
    proposal is left a new patch is started at a random free pixel of ``region``.
    ``labels`` and ``profile`` (normalised thickness sqrt(1 - d^2)) are filled in place.
    Returns ``labels, profile, number_placed``.
    """
    if labels is None:
        labels = np.zeros(shape, np.int32)
    if profile is None:
        profile = np.zeros(shape, np.float64)
    next_id = int(labels.max()) + 1
    placed = 0
    max_attempts = max_attempts or 40 * n + 200
    cand = np.argwhere(region)
    if len(cand) == 0:
        return labels, profile, 0
    angle_arr = np.broadcast_to(np.asarray(angle, dtype=np.float64), shape)
    queue: deque = deque()
    for _ in range(max_attempts):
        if placed >= n:
            break
        if queue:
            cy, cx, L, W, th = queue.popleft()
        else:
            p = cand[rng.integers(len(cand))]
            if labels[p[0], p[1]]:
                continue
            cy, cx = float(p[0]) + rng.uniform(-0.5, 0.5), float(p[1]) + rng.uniform(-0.5, 0.5)
            L, W = _uniform(rng, length), _uniform(rng, width)
            th = angle_arr[p[0], p[1]] + rng.normal(0, angle_jitter)
        iy, ix = int(round(cy)), int(round(cx))
        if not (0 <= iy < shape[0] and 0 <= ix < shape[1]) or not region[iy, ix]:
            continue
        res = _capsule_d((cy, cx), L, W, th, shape)
        if res is None:
            continue
        sl, d = res
        m = d <= 1.0
        area = np.pi * (W / 2) ** 2 + (L - W) * W
        if m.sum() < 0.6 * area:
            continue
        sub = labels[sl]
        if (sub[m] > 0).any():
            continue
        if inside and not region[sl][m].all():
            continue
        sub[m] = next_id
        profile[sl][m] = np.sqrt(np.clip(1.0 - d[m] ** 2, 0.0, 1.0))
        next_id += 1
        placed += 1
        ux, uy = np.cos(th), np.sin(th)
        nx, ny = -uy, ux
        props = []
        for side in (1.0, -1.0):
            W2 = _uniform(rng, width)
            s = side * (W / 2 + W2 / 2 + _uniform(rng, gap))
            t = rng.normal(0, L / 4)
            props.append(
                (cy + s * ny + t * uy, cx + s * nx + t * ux, _uniform(rng, length), W2,
                 th + rng.normal(0, angle_jitter))
            )  # fmt: skip
            L2 = _uniform(rng, length)
            s = side * (L / 2 + L2 / 2 + _uniform(rng, gap))
            t = rng.normal(0, 0.5)
            props.append(
                (cy + s * uy + t * ny, cx + s * ux + t * nx, L2, _uniform(rng, width),
                 th + rng.normal(0, angle_jitter))
            )  # fmt: skip
        for k in rng.permutation(len(props)):
            queue.append(props[k])
    return labels, profile, placed


# --------------------------------------------------------------------------------------
# 1. Fluorescent nuclei
# --------------------------------------------------------------------------------------


def nuclei(
    shape: tuple[int, int] = (256, 256),
    n_nuclei: int = 40,
    radius: tuple[float, float] = (6.0, 12.0),
    touching: float = 0.3,
    brightness: tuple[float, float] = (0.4, 1.0),
    noise: float = 0.03,
    background: float = 0.05,
    blur: float = 1.0,
    photons: float | None = 300.0,
    texture: float = 0.12,
    pixel_size: float = 0.65,
    dtype: npt.DTypeLike = np.uint16,
    seed: SeedLike = 0,
) -> SyntheticImage:
    """Fluorescent nuclei (e.g. DAPI/Hoechst) on a dark background.

    Nuclei are ellipses with random orientation and eccentricity, a mild chromatin
    texture, a soft intensity fall-off towards their border and varied brightness.
    A fraction ``touching`` of them is placed in contact with an earlier nucleus;
    touching nuclei never overlap (a new nucleus only takes free pixels, so the labels
    are exact for the rendered image). The image is blurred with a Gaussian PSF and
    corrupted with Poisson (shot) and Gaussian (read) noise.

    Parameters
    ----------
    shape : tuple of int
        Image shape (Y, X) in pixels.
    n_nuclei : int
        Requested number of nuclei. Fewer are returned when they do not fit
        (rejection sampling, at most 50 attempts per nucleus); see ``labels.max()``.
    radius : (float, float)
        Range of the semi-major axis in pixels; the semi-minor axis is 0.6-1.0 times it.
    touching : float
        Probability, in [0, 1], that a nucleus is placed touching an existing one.
        Isolated nuclei keep a gap of at least 2 pixels.
    brightness : (float, float)
        Range of the mean nucleus intensity (image units, before noise).
    noise : float
        Standard deviation of the additive Gaussian noise (image units).
    background : float
        Background level (image units).
    blur : float
        Sigma of the Gaussian PSF in pixels (0 for none).
    photons : float or None
        Photon counts per unit intensity for the Poisson noise (None for none).
    texture : float
        Relative amplitude of the chromatin texture.
    pixel_size : float
        Pixel size in µm (metadata only).
    dtype : {numpy.uint16, numpy.float32}
        Output dtype. ``float32`` is clipped to [0, 1]; ``uint16`` maps [0, 1] to
        [0, 65535].
    seed : int, numpy.random.Generator or None
        Seed for :func:`numpy.random.default_rng`.

    Returns
    -------
    SyntheticImage
        ``image`` (Y, X) of ``dtype``, ``labels`` (Y, X) int32 (ids 1..N), and
        ``pixel_size`` in µm.
    """
    rng = np.random.default_rng(seed)
    shape = (int(shape[0]), int(shape[1]))
    labels = np.zeros(shape, np.int32)
    d2map = np.zeros(shape, np.float64)
    level = [0.0]
    geoms: list[tuple[float, float, float, float, float]] = []  # cy, cx, a, b, theta

    def radius_along(g, phi):
        _, _, a, b, th = g
        return a * b / np.hypot(b * np.cos(phi - th), a * np.sin(phi - th))

    occupied_dil = np.zeros(shape, bool)
    for _ in range(n_nuclei):
        for _attempt in range(50):
            a = _uniform(rng, radius)
            b = a * rng.uniform(0.6, 1.0)
            th = rng.uniform(0, np.pi)
            touch = bool(geoms) and rng.random() < touching
            if touch:
                j = int(rng.integers(len(geoms)))
                phi = rng.uniform(0, 2 * np.pi)
                g_new = (0.0, 0.0, a, b, th)
                dist = (radius_along(geoms[j], phi) + radius_along(g_new, phi + np.pi)) * (
                    rng.uniform(0.85, 1.0)
                )
                cy = geoms[j][0] + dist * np.sin(phi)
                cx = geoms[j][1] + dist * np.cos(phi)
            else:
                cy = rng.uniform(0, shape[0] - 1)
                cx = rng.uniform(0, shape[1] - 1)
            res = _ellipse_d2((cy, cx), a, b, th, shape)
            if res is None:
                continue
            sl, d2 = res
            m = d2 <= 1.0
            full = np.pi * a * b
            if m.sum() < 0.6 * full:  # mostly outside the image
                continue
            sub = labels[sl]
            if touch:
                others = sub[m]
                others = others[others > 0]
                if np.any(others != j + 1) or others.size > 0.2 * full:
                    continue
                # do not let it come closer than 2 px to nuclei other than j
                near = occupied_dil[sl][m] & (sub[m] == 0)
                if near.any():
                    nb = ndi.grey_dilation(labels[sl], size=5)[m]
                    if np.any((nb > 0) & (nb != j + 1)):
                        continue
                m = m & (sub == 0)
                comp, nc = ndi.label(m)
                if nc > 1:
                    sizes = np.bincount(comp.ravel())
                    sizes[0] = 0
                    m = comp == int(np.argmax(sizes))
                if m.sum() < 0.7 * full:
                    continue
            elif occupied_dil[sl][m].any():
                continue
            new_id = len(geoms) + 1
            sub[m] = new_id
            d2map[sl][m] = d2[m]
            occupied_dil[sl] |= ndi.binary_dilation(sub == new_id, iterations=2)
            geoms.append((cy, cx, a, b, th))
            level.append(_uniform(rng, brightness))
            break
    labels = _consecutive(labels)  # no-op unless something was dropped
    tex = _smooth_noise(shape, 1.5, rng)
    img = np.asarray(level)[labels] * (1.0 - 0.3 * d2map) * (1.0 + texture * tex)
    img = np.where(labels > 0, img, 0.0) + background
    if blur > 0:
        img = ndi.gaussian_filter(img, blur)
    img = _noise(img, rng, photons, noise)
    return SyntheticImage(image=_to_dtype(img, dtype), labels=labels, pixel_size=pixel_size)


# --------------------------------------------------------------------------------------
# 2. Whole cells (cytoplasm marker + nuclear stain)
# --------------------------------------------------------------------------------------


def whole_cells(
    shape: tuple[int, int] = (256, 256),
    n_cells: int = 20,
    cell_radius: tuple[float, float] = (18.0, 28.0),
    nucleus_radius: tuple[float, float] = (6.0, 10.0),
    confluence: float = 0.5,
    brightness: tuple[float, float] = (0.5, 1.0),
    nuclear_dim: float = 0.35,
    noise: float = 0.02,
    background: float = 0.05,
    blur: float = 1.0,
    photons: float | None = 300.0,
    texture: float = 0.12,
    pixel_size: float = 0.65,
    dtype: npt.DTypeLike = np.uint16,
    seed: SeedLike = 0,
) -> SyntheticWholeCells:
    """Touching cells stained with a cytoplasm marker, plus a nuclear-stain channel.

    Cell centres are drawn inside a random smooth foreground region (covering about
    ``confluence`` of the field) with a minimum spacing; cells are the Voronoi
    regions of the centres limited to a noisy radius, so neighbouring cells touch and
    isolated ones are rounded. A nucleus (ellipse) sits at each centre, well inside its
    cell. In ``image`` (cytoplasm marker) the nucleus is *dimmer* than the cytoplasm
    (factor ``nuclear_dim``) and cell-cell borders are slightly darker; in
    ``nuclear_image`` the nuclei are bright.

    Parameters
    ----------
    shape : tuple of int
        Image shape (Y, X) in pixels.
    n_cells : int
        Requested number of cells; fewer are returned if the centres do not fit with the
        minimum spacing (see ``labels.max()``).
    cell_radius : (float, float)
        Range of the cell radius in pixels (before Voronoi clipping).
    nucleus_radius : (float, float)
        Range of the nucleus semi-major axis in pixels (reduced when the cell is small).
    confluence : float
        Fraction of the field covered by the region where cell centres are drawn.
    brightness : (float, float)
        Range of the cytoplasm intensity in ``image``.
    nuclear_dim : float
        Nucleus intensity relative to the cytoplasm in ``image`` (< 1).
    noise, background, blur, photons, texture, pixel_size, dtype, seed
        As in :func:`nuclei`.

    Returns
    -------
    SyntheticWholeCells
        ``image`` and ``nuclear_image`` (Y, X) of ``dtype``; ``labels`` and
        ``nuclei_labels`` (Y, X) int32 sharing ids; ``pixel_size`` in µm.
    """
    rng = np.random.default_rng(seed)
    shape = (int(shape[0]), int(shape[1]))
    fg_field = _smooth_noise(shape, max(shape) / 8.0, rng, mode="reflect")
    region = fg_field >= np.quantile(fg_field, 1.0 - np.clip(confluence, 0.05, 1.0))
    min_dist = max(1.4 * cell_radius[0], 2.4 * nucleus_radius[0])
    labels, seeds, _ = _voronoi_cells(shape, n_cells, cell_radius, rng, region, min_dist)
    n = len(seeds)
    rin = _inscribed_radius(labels)
    nuclei_labels = np.zeros(shape, np.int32)
    nd2 = np.zeros(shape, np.float64)
    for i in range(n):
        cy, cx = seeds[i]
        r_avail = max(rin[cy, cx] - 1.0, 1.5)
        a = min(_uniform(rng, nucleus_radius), 0.8 * r_avail)
        b = a * rng.uniform(0.7, 1.0)
        sl, d2 = _ellipse_d2((cy + rng.uniform(-0.3, 0.3), cx), a, b, rng.uniform(0, np.pi), shape)
        m = (d2 <= 1.0) & (labels[sl] == i + 1)
        m[cy - sl[0].start, cx - sl[1].start] = True
        nuclei_labels[sl][m] = i + 1
        nd2[sl][m] = d2[m]
    nuclei_labels = _keep_largest_fragment(nuclei_labels)
    level = np.concatenate([[0.0], _uniform(rng, brightness, n)])
    nlevel = np.concatenate([[0.0], _uniform(rng, (0.5, 1.0), n)])
    seam = find_boundaries(labels, mode="inner", background=0) & (labels > 0)
    seam &= ndi.grey_dilation(labels, size=3) != ndi.grey_erosion(
        np.where(labels > 0, labels, labels.max() + 1), size=3
    )
    tex = _smooth_noise(shape, 2.0, rng)
    cyto = level[labels] * (1.0 + texture * tex)
    cyto = np.where(nuclei_labels > 0, cyto * nuclear_dim, cyto)
    cyto = np.where(seam, cyto * 0.7, cyto)
    img = cyto + background
    tex2 = _smooth_noise(shape, 1.5, rng)
    nuc = nlevel[nuclei_labels] * (1.0 - 0.3 * nd2) * (1.0 + texture * tex2)
    nimg = np.where(labels > 0, 0.04, 0.0) + nuc + background
    if blur > 0:
        img = ndi.gaussian_filter(img, blur)
        nimg = ndi.gaussian_filter(nimg, blur)
    img = _noise(img, rng, photons, noise)
    nimg = _noise(nimg, rng, photons, noise)
    return SyntheticWholeCells(
        image=_to_dtype(img, dtype),
        nuclear_image=_to_dtype(nimg, dtype),
        labels=labels,
        nuclei_labels=nuclei_labels.astype(np.int32),
        pixel_size=pixel_size,
    )


# --------------------------------------------------------------------------------------
# 3. Phase-contrast bacteria
# --------------------------------------------------------------------------------------


def bacteria_phase(
    shape: tuple[int, int] = (256, 256),
    n_cells: int = 60,
    length: tuple[float, float] = (12.0, 30.0),
    width: tuple[float, float] = (5.0, 7.0),
    darkness: float = 0.6,
    halo: float = 0.5,
    halo_width: float = 3.0,
    background: float = 0.6,
    blur: float = 0.8,
    noise: float = 0.02,
    photons: float | None = 500.0,
    pixel_size: float = 0.065,
    dtype: npt.DTypeLike = np.float32,
    seed: SeedLike = 0,
) -> SyntheticImage:
    """Phase-contrast-like rod-shaped bacteria in a dense colony.

    Bacteria are spherocylinders (capsules) packed without overlap into touching,
    roughly aligned patches (orientations follow a smooth random nematic field) inside
    a random colony region. The image mimics positive phase contrast: with
    ``p`` the normalised cell thickness, ``I = background * (1 - darkness * G_b(p)
    - halo * (G_b(p) - G_h(p)))`` where ``G_s`` is a Gaussian blur of sigma ``s``
    (``b = blur``, ``h = halo_width``). Cells are dark on a bright background and
    surrounded by a bright halo; Poisson and Gaussian noise are added.

    Parameters
    ----------
    shape : tuple of int
        Image shape (Y, X) in pixels.
    n_cells : int
        Requested number of bacteria; fewer are returned if they do not fit.
    length, width : (float, float)
        Ranges of the tip-to-tip length and of the width of the rods, in pixels.
    darkness : float
        Depth of the dark cell signal (fraction of the background).
    halo : float
        Strength of the halo / high-pass term.
    halo_width : float
        Sigma (pixels) of the low-pass that creates the halo.
    background : float
        Background intensity (image units).
    blur, noise, photons, pixel_size, dtype, seed
        As in :func:`nuclei` (``dtype`` defaults to float32 here).

    Returns
    -------
    SyntheticImage
        ``image`` (Y, X) of ``dtype``, ``labels`` (Y, X) int32, ``pixel_size`` in µm.
    """
    rng = np.random.default_rng(seed)
    shape = (int(shape[0]), int(shape[1]))
    mean_area = np.mean(length) * np.mean(width)
    target = min(n_cells * mean_area / 0.7, 0.95 * shape[0] * shape[1])
    cy, cx = rng.uniform(0.3, 0.7) * shape[0], rng.uniform(0.3, 0.7) * shape[1]
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    rad = np.hypot(yy - cy, xx - cx) / np.sqrt(target / np.pi)
    score = -rad + 0.35 * _smooth_noise(shape, np.mean(length), rng, mode="reflect")
    region = score >= np.quantile(score, 1.0 - target / (shape[0] * shape[1]))
    sig = 2.0 * np.mean(length)
    gx = _smooth_noise(shape, sig, rng, mode="reflect")
    gy = _smooth_noise(shape, sig, rng, mode="reflect")
    angle = 0.5 * np.arctan2(gy, gx)
    labels, prof, _ = _pack_rods(shape, n_cells, length, width, rng, region, angle)
    labels = _keep_largest_fragment(labels)
    prof = np.where(labels > 0, prof, 0.0)
    labels = _consecutive(labels)
    pb = ndi.gaussian_filter(prof, blur) if blur > 0 else prof
    ph = ndi.gaussian_filter(prof, halo_width)
    img = background * (1.0 - darkness * pb - halo * (pb - ph))
    img = _noise(img, rng, photons, noise)
    return SyntheticImage(image=_to_dtype(img, dtype), labels=labels, pixel_size=pixel_size)


# --------------------------------------------------------------------------------------
# 4. Bright-field z-stack (angular-spectrum propagation)
# --------------------------------------------------------------------------------------

_CLASS_NAMES = ("background", "interior", "contour", "halo", "wall")
_TYPE_CLASS_NAMES = ("background", "bacteria", "yeast", "mammalian", "contour", "halo", "wall")
_CELL_TYPE_NAMES = ("background", "bacteria", "yeast", "mammalian")
_DEFAULT_PIXEL = {"ecoli": 0.1, "yeast": 0.1, "mixed": 0.1, "hela": 0.3}


def _place_yeast(
    shape, n, radius_px, rng, labels, thick, bud_prob=0.4, cluster=0.5, max_attempts=None
):
    """Spherical yeast cells, some with a bud (same id), no overlap; fills in place."""
    next_id = int(labels.max()) + 1
    placed = []
    max_attempts = max_attempts or 60 * n + 100
    for _ in range(max_attempts):
        if len(placed) >= n:
            break
        R = _uniform(rng, radius_px)
        if placed and rng.random() < cluster:
            py, px, pr = placed[int(rng.integers(len(placed)))]
            phi = rng.uniform(0, 2 * np.pi)
            dist = pr + R + rng.uniform(0.5, 2.0)
            cy, cx = py + dist * np.sin(phi), px + dist * np.cos(phi)
        else:
            cy, cx = rng.uniform(0, shape[0] - 1), rng.uniform(0, shape[1] - 1)
        parts = [(cy, cx, R)]
        if rng.random() < bud_prob:
            rb = R * rng.uniform(0.35, 0.55)
            phi = rng.uniform(0, 2 * np.pi)
            db = R + 0.6 * rb
            parts.append((cy + db * np.sin(phi), cx + db * np.cos(phi), rb))
        ok = True
        masks = []
        for py, px, pr in parts:
            res = _ellipse_d2((py, px), pr, pr, 0.0, shape)
            if res is None:
                ok = False
                break
            sl, d2 = res
            m = d2 <= 1.0
            if m.sum() < 0.8 * np.pi * pr * pr or (labels[sl][m] > 0).any():
                ok = False
                break
            masks.append((sl, m, d2, pr))
        if not ok:
            continue
        for sl, m, d2, pr in masks:
            labels[sl][m] = next_id
            t = 2.0 * pr * np.sqrt(np.clip(1.0 - d2, 0.0, 1.0))  # sphere thickness, px
            thick[sl] = np.maximum(thick[sl], np.where(m, t, 0.0))
        next_id += 1
        placed.append((cy, cx, R))
    return len(placed)


def _angular_spectrum_stack(
    transmittance: np.ndarray,
    z: np.ndarray,
    pixel_size: float,
    wavelength: float,
    n_medium: float,
    na: float,
    condenser_na: float,
    n_source: int,
) -> np.ndarray:
    """Intensity ``|field|^2`` at each defocus ``z`` (partially coherent Köhler sum)."""
    ny, nx = transmittance.shape
    fy = sfft.fftfreq(ny, d=pixel_size)
    fx = sfft.fftfreq(nx, d=pixel_size)
    f2 = fy[:, None] ** 2 + fx[None, :] ** 2
    k = n_medium / wavelength  # spatial frequency of the wave in the medium, 1/µm
    pupil = f2 <= (min(na, n_medium) / wavelength) ** 2
    kz = np.sqrt(np.clip(k * k - f2, 0.0, None))
    spec = sfft.fft2(transmittance.astype(np.complex128))
    # Source points of the Köhler condenser, on the FFT frequency grid (integer bins).
    rc_y = condenser_na / wavelength * ny * pixel_size
    rc_x = condenser_na / wavelength * nx * pixel_size
    shifts = [(0, 0)]
    if n_source > 1 and min(rc_y, rc_x) >= 1.0:
        ang = np.arange(n_source - 1) * 2 * np.pi / (n_source - 1)
        for a in ang:
            shifts.append((int(round(0.7 * rc_y * np.sin(a))), int(round(0.7 * rc_x * np.cos(a)))))
    a_specs = [(np.roll(spec, sh, axis=(0, 1)) * pupil).astype(np.complex64) for sh in shifts]
    out = np.zeros((len(z), ny, nx), np.float32)
    chunk = max(1, int(2**22 // (ny * nx)))
    for i0 in range(0, len(z), chunk):
        zc = z[i0 : i0 + chunk]
        # exp(i 2 pi z (kz - k)): the constant k drops out of the intensity
        h = np.exp((2j * np.pi) * zc[:, None, None] * (kz - k)[None]).astype(np.complex64)
        h *= pupil[None]
        tmp = np.empty_like(h)
        acc = out[i0 : i0 + chunk]
        for a_spec in a_specs:
            np.multiply(h, a_spec[None], out=tmp)
            fld = sfft.ifft2(tmp, axes=(-2, -1), workers=-1, overwrite_x=True)
            acc += fld.real**2
            acc += fld.imag**2
    return out / np.float32(len(shifts))


def brightfield_zstack(
    shape: tuple[int, int] = (256, 256),
    n_frames: int = 100,
    dz: float = 0.1,
    kind: str = "ecoli",
    n_cells: int | None = None,
    wavelength: float = 0.55,
    pixel_size: float | None = None,
    na: float = 0.9,
    condenser_na: float = 0.3,
    n_source: int = 9,
    n_medium: float = 1.333,
    absorption: float = 0.02,
    walls: bool | None = None,
    drift: float = 0.05,
    photons: float | None = 2000.0,
    contour_width: int = 2,
    halo_width: int = 3,
    pad: int = 32,
    seed: SeedLike = 0,
) -> SyntheticZStack:
    """Physically simulated bright-field defocus z-stack of unstained cells.

    Physics (scalar, thin-object, Köhler illumination):

    1. Cells are thin objects with complex transmittance
       ``t(x, y) = exp(-mu h / 2) * exp(i phi)``, where ``h`` is the local thickness
       (µm), ``phi = 2 pi / lambda * dn * h`` the phase delay for a refractive-index
       difference ``dn`` to the medium (bacteria 0.05, yeast 0.05, mammalian 0.025) and
       ``mu = absorption`` (1/µm) a weak intensity absorption. Microfluidic PDMS walls
       (``kind="ecoli"``) add a phase step of ``2 pi / lambda * 0.077 * 1 µm``.
    2. For each source point ``s`` of the condenser aperture (``n_source`` points within
       ``condenser_na / lambda``; one point, i.e. coherent light, when
       ``condenser_na == 0``) the field spectrum ``T(f - s)`` is propagated to defocus
       ``z`` with the angular-spectrum transfer function
       ``H = exp(i 2 pi z sqrt((n_medium / lambda)^2 - |f|^2))``, cut by the objective
       pupil ``|f| <= NA / lambda`` (which also removes evanescent waves).
    3. The intensity is ``|IFFT(T(f - s) H P)|^2`` averaged over the source points
       (partially coherent illumination as an incoherent sum of plane waves).
    4. A slow multiplicative illumination drift along z and shot noise are added.

    For a pure phase object the in-focus frame has little contrast and defocused
    frames show contrast of opposite sign on either side of focus (transport of
    intensity: ``dI/dz ~ -lambda / (2 pi) * laplacian(phi)``); cells look dark on one
    side and bright on the other. Geometry is generated on a canvas padded by ``pad``
    pixels (the cells continue beyond the field) to limit FFT wrap-around.

    Parameters
    ----------
    shape : tuple of int
        Frame shape (Y, X) in pixels.
    n_frames : int
        Number of z planes.
    dz : float
        Step between planes in µm. Planes are at ``z = (k - n_frames // 2) * dz``, i.e.
        from ``-n_frames / 2 * dz`` to ``(n_frames / 2 - 1) * dz``, focus at
        ``focus_index = n_frames // 2``.
    kind : {"ecoli", "yeast", "hela", "mixed"}
        ``"ecoli"``: dense monolayer of rods (1 µm wide, 2-4 µm long) in a horizontal
        microfluidic channel whose PDMS walls are class "wall". ``"yeast"``: round cells
        (radius 1.8-2.6 µm), some with a bud (same id as its mother). ``"hela"``: flat,
        confluent, irregular mammalian cells (thin lamella, thicker nucleus, low phase).
        ``"mixed"``: yeast and bacteria together (see ``cell_type``).
    n_cells : int or None
        Approximate number of cells in the field (None: a dense default per kind).
    wavelength : float
        Vacuum wavelength in µm.
    pixel_size : float or None
        Pixel size in µm (None: 0.1 for ecoli/yeast/mixed, 0.3 for hela).
    na, condenser_na : float
        Objective and condenser numerical apertures.
    n_source : int
        Number of condenser source points (1 = coherent).
    n_medium : float
        Refractive index of the medium.
    absorption : float
        Intensity absorption coefficient of cells in 1/µm (0 for a pure phase object).
    walls : bool or None
        Include channel walls (None: only for ``kind="ecoli"``).
    drift : float
        Amplitude of the multiplicative illumination drift along z.
    photons : float or None
        Photon counts at background intensity for shot noise (None for no noise).
    contour_width, halo_width : int
        Widths in pixels of the "contour" ring (inside cells) and "halo" ring (outside).
    pad : int
        Padding in pixels of the simulation canvas on each side.
    seed : int, numpy.random.Generator or None
        Seed for :func:`numpy.random.default_rng`.

    Returns
    -------
    SyntheticZStack
        ``stack`` (Z, Y, X) float32, ``labels`` (Y, X) int32, ``classes`` and
        ``type_classes`` (Y, X) uint8, ``cell_type`` (N + 1,) uint8, ``phase`` (Y, X)
        float32 rad, ``z`` (Z,) µm and metadata.
    """
    if kind not in _DEFAULT_PIXEL:
        raise ValueError(f"kind must be one of {sorted(_DEFAULT_PIXEL)}, got {kind!r}")
    rng = np.random.default_rng(seed)
    px = float(pixel_size) if pixel_size is not None else _DEFAULT_PIXEL[kind]
    shape = (int(shape[0]), int(shape[1]))
    canvas = (
        sfft.next_fast_len(shape[0] + 2 * pad),
        sfft.next_fast_len(shape[1] + 2 * pad),
    )
    oy = (canvas[0] - shape[0]) // 2
    ox = (canvas[1] - shape[1]) // 2
    crop = (slice(oy, oy + shape[0]), slice(ox, ox + shape[1]))
    scale = canvas[0] * canvas[1] / (shape[0] * shape[1])
    fov_um2 = shape[0] * shape[1] * px * px

    labels = np.zeros(canvas, np.int32)
    opd = np.zeros(canvas, np.float64)  # optical path difference dn * h, µm
    thick = np.zeros(canvas, np.float64)  # thickness h, µm
    ctype = [0]
    wall = np.zeros(canvas, bool)
    if walls is None:
        walls = kind == "ecoli"

    def add_rods(n, region, angle, jitter):
        prof = np.zeros(canvas)
        before = int(labels.max())
        _, prof, k = _pack_rods(
            canvas, n, (2.0 / px, 4.0 / px), (0.8 / px, 1.0 / px), rng, region, angle,
            labels=labels, profile=prof, inside=True, angle_jitter=jitter,
            gap=(0.0, 0.05 / px),
        )  # fmt: skip
        # profile = sqrt(1 - d^2); cylinder thickness = width * profile
        w_um = 0.9
        h = w_um * prof
        opd[:] = np.where(labels > before, 0.05 * h, opd)
        thick[:] = np.where(labels > before, h, thick)
        ctype.extend([1] * k)

    def add_yeast(n):
        t_px = np.zeros(canvas)
        before = int(labels.max())
        k = _place_yeast(canvas, n, (1.8 / px, 2.6 / px), rng, labels, t_px)
        h = t_px * px
        opd[:] = np.where(labels > before, 0.05 * h, opd)
        thick[:] = np.where(labels > before, h, thick)
        ctype.extend([2] * k)

    if kind in ("ecoli", "mixed"):
        region = np.ones(canvas, bool)
        if walls:
            ch = int(round(rng.uniform(0.45, 0.6) * shape[0]))
            y0 = oy + int(rng.integers(0, max(shape[0] - ch, 1)))
            wall[:y0] = True
            wall[y0 + ch :] = True
            region = ~ndi.binary_dilation(wall, iterations=1)
        if kind == "mixed":
            ny_ = n_cells // 4 if n_cells is not None else int(fov_um2 * 0.15 / 15.0)
            add_yeast(int(round(max(ny_, 1) * scale)))
            nb = (n_cells - n_cells // 4) if n_cells is not None else int(fov_um2 * 0.35 / 2.7)
            angle = 0.5 * np.arctan2(
                _smooth_noise(canvas, 4.0 / px, rng), _smooth_noise(canvas, 4.0 / px, rng)
            )
            add_rods(int(round(nb * scale)), region & (labels == 0), angle, 0.15)
        else:
            frac = region[crop].mean()
            nb = n_cells if n_cells is not None else int(fov_um2 * frac * 0.8 / 2.7)
            add_rods(int(round(nb * scale)), region, 0.0, 0.08)
    elif kind == "yeast":
        n = n_cells if n_cells is not None else int(fov_um2 * 0.4 / 15.0)
        add_yeast(int(round(max(n, 1) * scale)))
    else:  # hela
        r_um = (9.0, 13.0)
        n = n_cells if n_cells is not None else int(fov_um2 / (np.pi * 11.0**2) * 1.1)
        n_c = max(int(round(n * scale)), 1)
        lab, seeds, _ = _voronoi_cells(
            canvas, n_c, (r_um[0] / px, r_um[1] / px), rng, None, 1.5 * r_um[0] / px, 0.12
        )
        labels[:] = lab
        rin = _inscribed_radius(lab) * px  # µm to own border
        lam = np.concatenate([[0.0], rng.uniform(0.4, 0.8, len(seeds))])
        h = lam[lab] * np.clip(rin / 3.0, 0, 1) ** 0.5  # lamella tapering at the edge
        for i, (cy, cx) in enumerate(seeds):
            a = min(rng.uniform(4.5, 6.5), 0.8 * max(rin[cy, cx], 1.0)) / px
            res = _ellipse_d2((cy, cx), a, a * rng.uniform(0.7, 1.0), rng.uniform(0, np.pi), canvas)
            sl, d2 = res
            dome = rng.uniform(2.0, 3.5) * np.sqrt(np.clip(1.0 - d2, 0.0, 1.0))
            h[sl] = np.where(lab[sl] == i + 1, np.maximum(h[sl], dome), h[sl])
        h = np.where(lab > 0, h, 0.0)
        thick[:] = h
        opd[:] = 0.025 * h
        ctype.extend([3] * len(seeds))

    # Anti-aliasing and a smooth taper of the objects towards the canvas border (the
    # canvas is periodic for the FFT; walls are bands that are periodic by design).
    taper = np.ones(canvas)
    for ax, n_ax in enumerate(canvas):
        w = np.clip(
            np.minimum(np.arange(n_ax), n_ax - 1 - np.arange(n_ax)) / (pad / 2 + 1e-9), 0, 1
        )
        w = np.sin(0.5 * np.pi * w) ** 2
        taper *= w[:, None] if ax == 0 else w[None, :]
    opd = ndi.gaussian_filter(opd, 0.5, mode="wrap") * taper
    thick = ndi.gaussian_filter(thick, 0.5, mode="wrap") * taper
    if walls:
        opd = opd + ndi.gaussian_filter(wall.astype(float) * 0.077 * 1.0, 1.0, mode="wrap")
    phase = 2.0 * np.pi / wavelength * opd
    trans = np.exp(-0.5 * absorption * thick) * np.exp(1j * phase)

    focus_index = n_frames // 2
    z = (np.arange(n_frames) - focus_index) * float(dz)
    inten = _angular_spectrum_stack(trans, z, px, wavelength, n_medium, na, condenser_na, n_source)[
        :, crop[0], crop[1]
    ]
    if drift > 0 and n_frames > 1:
        zn = np.linspace(-1.0, 1.0, n_frames)
        f = 1.0 + drift * (
            rng.uniform(-1, 1) * zn
            + 0.5 * np.sin(2 * np.pi * rng.uniform(0.3, 1.0) * zn + rng.uniform(0, 2 * np.pi))
        )
        inten = inten * f[:, None, None]
    if photons is not None and photons > 0:
        inten = rng.poisson(np.clip(inten, 0, None) * photons) / photons

    # Ground truth on the visible field.
    vis, old_of_new = _split_fragments(labels[crop])
    ctype_arr = np.asarray(ctype, dtype=np.uint8)
    cell_type = ctype_arr[old_of_new].astype(np.uint8)
    cell_type[0] = 0
    wall_v = wall[crop]
    cells = vis > 0
    b1 = find_boundaries(vis, mode="inner", background=0) & cells
    contour = cells & (ndi.distance_transform_edt(~b1) < contour_width)
    halo = (
        ~cells & ~wall_v & (ndi.distance_transform_edt(~cells) <= halo_width) if cells.any() else
        np.zeros(shape, bool)
    )  # fmt: skip
    classes = np.zeros(shape, np.uint8)
    classes[cells] = 1
    classes[contour] = 2
    classes[halo] = 3
    classes[wall_v & ~cells] = 4
    type_classes = np.zeros(shape, np.uint8)
    type_classes[cells] = cell_type[vis[cells]]
    type_classes[contour] = 4
    type_classes[halo] = 5
    type_classes[wall_v & ~cells] = 6
    return SyntheticZStack(
        stack=inten.astype(np.float32),
        labels=vis,
        classes=classes,
        class_names=_CLASS_NAMES,
        type_classes=type_classes,
        type_class_names=_TYPE_CLASS_NAMES,
        cell_type=cell_type,
        cell_type_names=_CELL_TYPE_NAMES,
        phase=phase[crop].astype(np.float32),
        z=z,
        dz=float(dz),
        pixel_size=px,
        wavelength=float(wavelength),
        focus_index=int(focus_index),
        kind=kind,
    )


# --------------------------------------------------------------------------------------
# 5. Time-lapse with divisions (+ kinase translocation reporter)
# --------------------------------------------------------------------------------------


def timelapse(
    shape: tuple[int, int] = (128, 128),
    n_frames: int = 20,
    n_cells: int = 10,
    radius: tuple[float, float] = (5.0, 7.0),
    division_prob: float = 0.3,
    growth_rate: float = 0.05,
    speed: float = 0.6,
    drift: tuple[float, float] = (0.15, 0.1),
    brightness: tuple[float, float] = (0.5, 1.0),
    noise: float = 0.02,
    background: float = 0.05,
    blur: float = 1.0,
    photons: float | None = 300.0,
    texture: float = 0.1,
    reporter: bool = True,
    cytoplasm_width: int = 4,
    pixel_size: float = 0.65,
    seed: SeedLike = 0,
) -> SyntheticTimelapse:
    """Time-lapse of fluorescent nuclei that move, grow and divide, with track truth.

    Each nucleus is an ellipse whose area grows exponentially (``growth_rate`` per
    frame) from its birth area. Once it has doubled it divides with probability
    ``division_prob`` per frame (growth stops at 2.5x the birth area): the parent track
    ends and two daughters, each with half the area and a new id, appear side by side
    in the next frame. Centres follow a random walk (``speed`` px/frame standard
    deviation per axis) with a common ``drift`` (px/frame, (dy, dx)), are kept inside
    the field, and overlapping nuclei are pushed apart; residual overlaps go to the
    nearest nucleus so each id is always one connected region.

    The optional kinase-translocation reporter channel has, for each cell, a nuclear
    level ``N`` and a cytoplasm ring (``cytoplasm_width`` px around the nucleus, split
    between neighbours by proximity) at level ``N * reporter_ratio`` (C/N ratio, a
    smooth random walk in log space, inherited by daughters).

    Parameters
    ----------
    shape : tuple of int
        Frame shape (Y, X) in pixels.
    n_frames : int
        Number of frames T.
    n_cells : int
        Number of nuclei in the first frame.
    radius : (float, float)
        Range of the equivalent radius at birth, in pixels.
    division_prob : float
        Per-frame division probability of a nucleus that has doubled its area.
    growth_rate : float
        Relative area growth per frame.
    speed : float
        Random-walk step standard deviation per axis, pixels per frame.
    drift : (float, float)
        Common drift (dy, dx) in pixels per frame.
    brightness, noise, background, blur, photons, texture, pixel_size, seed
        As in :func:`nuclei`.
    reporter : bool
        Also simulate the reporter channel.
    cytoplasm_width : int
        Width in pixels of the cytoplasm ring of the reporter.

    Returns
    -------
    SyntheticTimelapse
        ``images`` (T, Y, X) float32, ``labels`` (T, Y, X) int32 (track ids),
        ``tracks`` (n_tracks, 4) int64 rows ``(id, start, end, parent)``,
        ``reporter_images`` (T, Y, X) float32, ``reporter_ratio`` (T, n_tracks),
        ``cytoplasm_labels`` (T, Y, X) int32 and ``pixel_size``.
    """
    rng = np.random.default_rng(seed)
    shape = (int(shape[0]), int(shape[1]))
    H, W = shape
    # Per-track attributes, indexed by id - 1.
    tracks: list[list[int]] = []
    birth_area: list[float] = []
    level: list[float] = []
    rep_level: list[float] = []
    # Alive-cell state: dict id -> [cy, cx, area, aspect, theta, log_ratio]
    alive: dict[int, list[float]] = {}

    def new_track(start, parent, cy, cx, area, a0, aspect, theta, logr, lev, rlev):
        tid = len(tracks) + 1
        tracks.append([tid, start, start, parent])
        birth_area.append(a0)
        level.append(lev)
        rep_level.append(rlev)
        alive[tid] = [cy, cx, area, aspect, theta, logr]
        return tid

    def axes(st):
        a = np.sqrt(st[2] / (np.pi * st[3]))
        return a, a * st[3]

    # Initial cells: non-overlapping placement.
    for _ in range(n_cells):
        for _attempt in range(100):
            r0 = _uniform(rng, radius)
            a0 = np.pi * r0 * r0
            area = a0 * rng.uniform(1.0, 2.0)
            req = np.sqrt(area / np.pi)
            cy = rng.uniform(req + 1, H - req - 2)
            cx = rng.uniform(req + 1, W - req - 2)
            ok = all(
                np.hypot(cy - s[0], cx - s[1]) > req + np.sqrt(s[2] / np.pi) + 2
                for s in alive.values()
            )
            if ok:
                new_track(
                    0, 0, cy, cx, area, a0, rng.uniform(0.7, 1.0), rng.uniform(0, np.pi),
                    rng.normal(0, 0.3), _uniform(rng, brightness), rng.uniform(0.5, 1.0),
                )  # fmt: skip
                break

    def relax(state):
        ids = list(state)
        if not ids:
            return
        pos = np.array([[state[i][0], state[i][1]] for i in ids])
        req = np.array([np.sqrt(state[i][2] / np.pi) for i in ids])
        for _ in range(10):
            d = pos[:, None, :] - pos[None, :, :]
            dist = np.hypot(d[..., 0], d[..., 1]) + np.eye(len(ids))
            target = req[:, None] + req[None, :] + 1.0
            over = np.clip(target - dist, 0, None)
            np.fill_diagonal(over, 0.0)
            if over.max() < 0.2:
                break
            push = (d / dist[..., None]) * (0.5 * over)[..., None]
            pos += push.sum(axis=1)
            pos[:, 0] = np.clip(pos[:, 0], req + 1, H - req - 2)
            pos[:, 1] = np.clip(pos[:, 1], req + 1, W - req - 2)
        for k, i in enumerate(ids):
            state[i][0], state[i][1] = pos[k]

    labels = np.zeros((n_frames, H, W), np.int32)
    d2maps = np.zeros((n_frames, H, W), np.float32)
    ratio_hist: dict[tuple[int, int], float] = {}
    for t in range(n_frames):
        if t > 0:
            # divisions
            for tid in list(alive):
                st = alive[tid]
                if st[2] >= 2.0 * birth_area[tid - 1] and rng.random() < division_prob:
                    del alive[tid]
                    area_d = st[2] / 2.0
                    phi = rng.uniform(0, np.pi)
                    aspect = rng.uniform(0.75, 1.0)
                    a = np.sqrt(area_d / (np.pi * aspect))
                    b = a * aspect
                    for side in (1.0, -1.0):
                        cy = st[0] + side * (b + 0.5) * np.sin(phi)
                        cx = st[1] + side * (b + 0.5) * np.cos(phi)
                        cy = float(np.clip(cy, b + 1, H - b - 2))
                        cx = float(np.clip(cx, b + 1, W - b - 2))
                        new_track(
                            t, tid, cy, cx, area_d, birth_area[tid - 1], aspect,
                            phi + np.pi / 2, st[5] + rng.normal(0, 0.05),
                            level[tid - 1] * rng.uniform(0.9, 1.1),
                            rep_level[tid - 1] * rng.uniform(0.9, 1.1),
                        )  # fmt: skip
            # motion, growth, reporter dynamics
            for tid, st in alive.items():
                if tracks[tid - 1][1] == t:
                    continue  # newborn daughters stay where they were placed
                st[0] += drift[0] + rng.normal(0, speed)
                st[1] += drift[1] + rng.normal(0, speed)
                st[2] = min(st[2] * (1.0 + growth_rate), 2.5 * birth_area[tid - 1])
                st[4] += rng.normal(0, 0.05)
                st[5] = 0.9 * st[5] + rng.normal(0, 0.15)
            relax(alive)
        # render: each pixel goes to the nucleus with the smallest normalised distance
        best = np.full((H, W), np.inf)
        lab = labels[t]
        for tid, st in alive.items():
            tracks[tid - 1][2] = t
            a, b = axes(st)
            sl, d2 = _ellipse_d2((st[0], st[1]), a, b, st[4], shape)
            m = (d2 <= 1.0) & (d2 < best[sl])
            best[sl][m] = d2[m]
            lab[sl][m] = tid
            iy = int(np.clip(round(st[0]), 0, H - 1))
            ix = int(np.clip(round(st[1]), 0, W - 1))
            if lab[iy, ix] == 0:
                lab[iy, ix] = tid
                best[iy, ix] = 0.0
            ratio_hist[(t, tid)] = float(np.exp(st[5]))
        labels[t] = _keep_largest_fragment(lab)
        d2maps[t] = np.where(labels[t] > 0, np.minimum(best, 1.0), 0.0)

    n_tracks = len(tracks)
    lev = np.concatenate([[0.0], level])
    images = np.empty((n_frames, H, W), np.float32)
    for t in range(n_frames):
        tex = _smooth_noise(shape, 1.5, rng)
        img = lev[labels[t]] * (1.0 - 0.3 * d2maps[t]) * (1.0 + texture * tex)
        img = np.where(labels[t] > 0, img, 0.0) + background
        if blur > 0:
            img = ndi.gaussian_filter(img, blur)
        images[t] = np.clip(_noise(img, rng, photons, noise), 0.0, 1.0)

    rep_images = ratio = cyto_labels = None
    if reporter:
        ratio = np.full((n_frames, n_tracks), np.nan)
        for (t, tid), r in ratio_hist.items():
            ratio[t, tid - 1] = r
        rlev = np.concatenate([[0.0], rep_level])
        rep_images = np.empty((n_frames, H, W), np.float32)
        cyto_labels = np.zeros((n_frames, H, W), np.int32)
        for t in range(n_frames):
            lab = labels[t]
            if lab.any():
                dist, (iy, ix) = ndi.distance_transform_edt(lab == 0, return_indices=True)
                cyto_labels[t] = np.where((lab == 0) & (dist <= cytoplasm_width), lab[iy, ix], 0)
            rt = np.concatenate([[0.0], np.nan_to_num(ratio[t], nan=0.0)])
            img = rlev[lab] + rlev[cyto_labels[t]] * rt[cyto_labels[t]]
            img = img + background
            if blur > 0:
                img = ndi.gaussian_filter(img, blur)
            rep_images[t] = _noise(img, rng, photons, noise).astype(np.float32)
    return SyntheticTimelapse(
        images=images,
        labels=labels,
        tracks=np.asarray(tracks, dtype=np.int64).reshape(-1, 4),
        reporter_images=rep_images,
        reporter_ratio=ratio,
        cytoplasm_labels=cyto_labels,
        pixel_size=pixel_size,
    )
