"""Cell-area masks by a binary graph cut (PyMaxflow), and the foreground maps it cuts.

The energy is the one of the label-free marker-controlled segmentation paper (Sci Rep 2021):
for a foreground probability ``x`` of each pixel and the expected foreground area fraction
``alpha``, labelling a pixel foreground costs ``-log(alpha * x)`` and background
``-log((1 - alpha) * (1 - x))``; every pair of 4-neighbours with different labels costs a constant
``kappa``. The minimum is found exactly by a max-flow / min-cut.

Foreground maps: the normalised intensity (fluorescence), the normalised local standard deviation
(texture: phase contrast and bright field, where cells are textured and the background is flat),
or the probabilities of a random forest trained on a few user scribbles (bright field).

Pure functions, numpy in and out, no I/O.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from ..preprocess import normalize_percentile

EPS = 1e-6


def calibrate(score: np.ndarray, softness: float = 0.25) -> np.ndarray:
    """Turn a foreground score (intensity, texture) into a probability-like map.

    A logistic centred on the Otsu threshold of ``score``, of width ``softness`` times the
    standard deviation of ``score``: the Otsu threshold maps to 0.5, so that the graph cut with
    ``alpha = 0.5`` (no prior) puts its boundary there and other ``alpha`` move it.

    Returns
    -------
    ndarray of float32, same shape, values in (0, 1)
    """
    from skimage.filters import threshold_otsu

    score = np.asarray(score, dtype=np.float32)
    if np.ptp(score) == 0:
        return np.full(score.shape, 0.5, np.float32)
    t = threshold_otsu(score)
    spread = max(float(score.std()) * softness, 1e-6)
    return (1.0 / (1.0 + np.exp(-(score - t) / spread))).astype(np.float32)


def foreground_probability(
    image: np.ndarray, kind: str = "intensity", scribbles: np.ndarray | None = None
) -> np.ndarray:
    """The foreground map ``x`` of the graph cut for a cell image ``(Y, X)``.

    Parameters
    ----------
    kind : {"intensity", "texture", "scribbles"}
        Bright cells (fluorescence), textured cells on a flat background (phase contrast,
        bright field), or a random forest on user ``scribbles`` (see :func:`scribble_map`).

    Returns
    -------
    ndarray of float32, shape (Y, X), values in [0, 1]
    """
    if kind == "intensity":
        return calibrate(intensity_map(image))
    if kind == "texture":
        return calibrate(texture_map(image))
    if kind == "scribbles":
        if scribbles is None:
            raise ValueError("kind='scribbles' needs a scribble image")
        return scribble_map(image, scribbles)
    raise ValueError(f"unknown foreground kind {kind!r} (intensity, texture or scribbles)")


def graphcut_mask(
    x: np.ndarray, alpha: float | None = None, kappa: float = 1.0, eps: float = EPS
) -> np.ndarray:
    """Minimise the paper's two-label energy on the 4-connected pixel grid.

    Parameters
    ----------
    x : ndarray of float, shape (Y, X)
        Foreground probability of each pixel, in [0, 1] (values outside are clipped).
    alpha : float or None
        Expected fraction of the image covered by cells, in (0, 1). A pixel alone is labelled
        foreground when ``alpha * x > (1 - alpha) * (1 - x)``, i.e. ``x > 1 - alpha``: a larger
        ``alpha`` gives a larger mask. ``None`` is 0.5 (no prior: the boundary at ``x = 0.5``).
    kappa : float
        Cost of a label change between two 4-neighbours (smoothness; larger values give rounder
        masks without small islands). 0 reduces the cut to a per-pixel decision.
    eps : float
        Probabilities are clipped to ``[eps, 1 - eps]`` before the logarithms.

    Returns
    -------
    mask : ndarray of bool, shape (Y, X)
        True on the cell area.
    """
    import maxflow

    x = np.clip(np.asarray(x, dtype=np.float64), eps, 1.0 - eps)
    if x.ndim != 2:
        raise ValueError(f"x must be a 2-D map (Y, X), got shape {x.shape}")
    if alpha is None:
        alpha = 0.5
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    if kappa < 0:
        raise ValueError(f"kappa must be >= 0, got {kappa}")
    cost_fg = -np.log(alpha * x)
    cost_bg = -np.log((1.0 - alpha) * (1.0 - x))
    # only the difference of the unary costs matters; keep the capacities non-negative
    low = np.minimum(cost_fg, cost_bg)
    cost_fg, cost_bg = cost_fg - low, cost_bg - low
    graph = maxflow.Graph[float]()
    nodes = graph.add_grid_nodes(x.shape)
    if kappa > 0:
        graph.add_grid_edges(nodes, kappa)  # default structure: 4-neighbours, symmetric
    # a node in the sink segment (True) pays its source capacity: the foreground cost
    graph.add_grid_tedges(nodes, cost_fg, cost_bg)
    graph.maxflow()
    return np.asarray(graph.get_grid_segments(nodes), dtype=bool)


def intensity_map(image: np.ndarray, smoothing: float = 1.0) -> np.ndarray:
    """Foreground score of bright cells: the smoothed image scaled to [0, 1] (1-99.8
    percentiles). Pass it through :func:`calibrate` before the graph cut.

    Parameters
    ----------
    image : ndarray, shape (Y, X)
    smoothing : float
        Gaussian sigma in pixels (0 for none).

    Returns
    -------
    ndarray of float32, shape (Y, X), values in [0, 1]
    """
    plane = np.asarray(image, dtype=np.float32)
    if smoothing > 0:
        plane = ndi.gaussian_filter(plane, smoothing)
    return normalize_percentile(plane, 1.0, 99.8, clip=True)


def texture_map(image: np.ndarray, sigma: float = 3.0) -> np.ndarray:
    """Foreground score of textured cells on a flat background (phase contrast, bright field).
    Pass it through :func:`calibrate` before the graph cut.

    The local standard deviation in a Gaussian window of ``sigma`` pixels, smoothed once more by
    ``sigma`` and scaled to [0, 1] (1-99.5 percentiles).

    Returns
    -------
    ndarray of float32, shape (Y, X), values in [0, 1]
    """
    plane = normalize_percentile(np.asarray(image, dtype=np.float32), 0.5, 99.5)
    mean = ndi.gaussian_filter(plane, sigma)
    var = np.clip(ndi.gaussian_filter(plane * plane, sigma) - mean * mean, 0, None)
    std = ndi.gaussian_filter(np.sqrt(var), sigma)
    return normalize_percentile(std, 1.0, 99.5, clip=True)


def scribble_features(image: np.ndarray, sigmas=(1.0, 2.0, 4.0, 8.0)) -> np.ndarray:
    """Per-pixel features for the scribble classifier: Gaussian, local variance and Laplacian of
    Gaussian of the normalised image at each scale in ``sigmas`` (pixels).

    Returns
    -------
    ndarray of float32, shape (Y, X, 3 * len(sigmas))
    """
    plane = normalize_percentile(np.asarray(image, dtype=np.float32), 1.0, 99.8)
    feats = []
    for s in sigmas:
        g = ndi.gaussian_filter(plane, s)
        feats.append(g)
        feats.append(np.clip(ndi.gaussian_filter(plane * plane, s) - g * g, 0, None))
        feats.append(ndi.gaussian_laplace(plane, s) * s * s)
    return np.stack(feats, axis=-1).astype(np.float32)


def scribble_map(
    image: np.ndarray,
    scribbles: np.ndarray,
    sigmas=(1.0, 2.0, 4.0, 8.0),
    n_estimators: int = 50,
    seed: int = 0,
) -> np.ndarray:
    """Foreground map from a few user scribbles (bright field): a random forest on
    :func:`scribble_features`, trained on the scribbled pixels.

    Parameters
    ----------
    image : ndarray, shape (Y, X)
    scribbles : ndarray of int, shape (Y, X)
        0 = not scribbled, 1 = background, 2 = cell.
    sigmas : sequence of float
        Feature scales in pixels.
    n_estimators : int
        Trees of the forest.

    Returns
    -------
    ndarray of float32, shape (Y, X)
        Probability of the cell class.

    Raises
    ------
    ValueError
        Shapes differ, or the scribbles do not hold both classes.
    """
    from sklearn.ensemble import RandomForestClassifier

    scribbles = np.asarray(scribbles)
    if scribbles.shape != np.shape(image):
        raise ValueError(f"scribbles {scribbles.shape} do not match the image {np.shape(image)}")
    if not ((scribbles == 1).any() and (scribbles == 2).any()):
        raise ValueError("scribbles need both background (1) and cell (2) pixels")
    feats = scribble_features(image, sigmas)
    marked = scribbles > 0
    xs, ys = feats[marked], scribbles[marked]
    rng = np.random.default_rng(seed)
    if len(ys) > 50_000:
        keep = rng.choice(len(ys), 50_000, replace=False)
        xs, ys = xs[keep], ys[keep]
    forest = RandomForestClassifier(
        n_estimators=n_estimators, max_depth=12, n_jobs=1, random_state=seed
    )
    forest.fit(xs, ys)
    flat = feats.reshape(-1, feats.shape[-1])
    proba = forest.predict_proba(flat)[:, list(forest.classes_).index(2)]
    return proba.reshape(np.shape(image)).astype(np.float32)
