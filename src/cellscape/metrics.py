"""Instance-segmentation metrics for label images.

All functions take a ground-truth and a predicted *label image*: integer (or boolean) arrays of
identical shape, 2-D ``(Y, X)`` or 3-D ``(Z, Y, X)`` (any dimensionality works), where ``0`` is
background and every object carries one positive id. Ids need not be consecutive and the ids of
the two images are unrelated.

Everything is built on one sparse contingency table (:func:`overlap_table`), computed with
``np.bincount`` / ``np.unique`` on paired flat labels, so the cost is ``O(n_pixels)`` plus a term
in the number of *overlapping* object pairs, never in ``n_gt * n_pred``. Only
:func:`overlap_matrix` materialises a dense ``(n_gt, n_pred)`` array.

Metrics
-------
* Detection at IoU thresholds (:func:`match`, :func:`average_precision`,
  :func:`precision_recall_f1`, :func:`dsb2018_score`), following the DSB2018 / StarDist
  ``matching.py`` conventions: ``AP = TP / (TP + FP + FN)``.
* Per matched pair Jaccard and Dice (:func:`matched_jaccard_dice`).
* SM similarity of Al-Kofahi et al. 2018 (:func:`sm_similarity`).
* Aggregated Jaccard Index of Kumar et al. 2017 (:func:`aggregated_jaccard_index`).
* Cell Tracking Challenge SEG (:func:`ctc_seg`), and DET / TRA of tracking results
  (:func:`ctc_det`, :func:`ctc_tra`, :func:`ctc_tracking_scores`; AOGM of Matula et al. 2015).
* Per-image flat score dictionaries and dataset aggregation (:func:`image_scores`,
  :func:`summarize`, :func:`evaluate`).

Conventions for empty images
----------------------------
A ratio whose denominator is zero because there was nothing to count (``0 / 0``) is ``1.0`` for
AP, precision, recall, F1 and AJI ("nothing to find and nothing wrongly found"), so two empty
images score a perfect 1.0. Ground-truth-centred means that are averages *over GT objects*
(SM similarity, CTC SEG, mean Jaccard/Dice over matched pairs) are ``nan`` when there is no GT
object (or no matched pair); :func:`summarize` skips ``nan`` when averaging over images.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "CTC_AOGM_WEIGHTS",
    "DEFAULT_THRESHOLDS",
    "DSB2018_THRESHOLDS",
    "AJIResult",
    "Evaluation",
    "Matching",
    "OverlapTable",
    "PerObjectScores",
    "aggregated_jaccard_index",
    "aji_components",
    "average_precision",
    "ctc_det",
    "ctc_seg",
    "ctc_tra",
    "ctc_tracking_scores",
    "dsb2018_score",
    "evaluate",
    "image_scores",
    "match",
    "matched_jaccard_dice",
    "overlap_matrix",
    "overlap_table",
    "precision_recall_f1",
    "sm_similarity",
    "summarize",
    "TrackingScores",
]

#: IoU thresholds used by default for AP / precision / recall / F1.
DEFAULT_THRESHOLDS: tuple[float, ...] = (0.5, 0.6, 0.7, 0.8, 0.9)
#: The ten IoU thresholds 0.50:0.05:0.95 of the 2018 Data Science Bowl metric.
DSB2018_THRESHOLDS: tuple[float, ...] = (0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95)

# Above this many cells a dense (n_gt, n_pred) bincount is replaced by np.unique on pair codes.
_DENSE_PAIR_LIMIT = 1 << 22


# --------------------------------------------------------------------------------------------
# Contingency table
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OverlapTable:
    """Sparse contingency table between two label images.

    Only pairs of objects that share at least one pixel are listed.

    Attributes
    ----------
    gt_ids : ndarray, shape (n_gt,)
        Sorted positive ids present in the ground truth (dtype of the input).
    pred_ids : ndarray, shape (n_pred,)
        Sorted positive ids present in the prediction (dtype of the input).
    gt_areas : ndarray of int64, shape (n_gt,)
        Pixel (voxel) count of each GT object, aligned with ``gt_ids``.
    pred_areas : ndarray of int64, shape (n_pred,)
        Pixel count of each predicted object, aligned with ``pred_ids``.
    gt_index : ndarray of intp, shape (n_pairs,)
        Row index (into ``gt_ids``) of each overlapping pair, sorted by ``(gt_index,
        pred_index)``.
    pred_index : ndarray of intp, shape (n_pairs,)
        Column index (into ``pred_ids``) of each overlapping pair.
    intersection : ndarray of int64, shape (n_pairs,)
        ``|G ∩ P|`` for each pair (always > 0).
    """

    gt_ids: NDArray
    pred_ids: NDArray
    gt_areas: NDArray[np.int64]
    pred_areas: NDArray[np.int64]
    gt_index: NDArray[np.intp]
    pred_index: NDArray[np.intp]
    intersection: NDArray[np.int64]

    @property
    def n_gt(self) -> int:
        """Number of ground-truth objects."""
        return int(self.gt_ids.size)

    @property
    def n_pred(self) -> int:
        """Number of predicted objects."""
        return int(self.pred_ids.size)

    @property
    def union(self) -> NDArray[np.int64]:
        """``|G ∪ P| = |G| + |P| - |G ∩ P|`` per pair, int64, shape (n_pairs,)."""
        return self.gt_areas[self.gt_index] + self.pred_areas[self.pred_index] - self.intersection

    @property
    def iou(self) -> NDArray[np.float64]:
        """Intersection over union per pair, float64, shape (n_pairs,)."""
        return self.intersection / self.union

    def intersection_matrix(self) -> NDArray[np.int64]:
        """Dense intersection counts, int64, shape (n_gt, n_pred) (zeros for disjoint pairs)."""
        out = np.zeros((self.n_gt, self.n_pred), dtype=np.int64)
        out[self.gt_index, self.pred_index] = self.intersection
        return out

    def iou_matrix(self) -> NDArray[np.float64]:
        """Dense IoU matrix, float64, shape (n_gt, n_pred) (zeros for disjoint pairs)."""
        out = np.zeros((self.n_gt, self.n_pred), dtype=np.float64)
        out[self.gt_index, self.pred_index] = self.iou
        return out


def _check_labels(x: ArrayLike, name: str) -> NDArray:
    arr = np.asarray(x)
    if arr.dtype == bool:
        return arr.astype(np.uint8)
    if not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"{name} must be an integer label image, got dtype {arr.dtype}")
    if arr.size and np.issubdtype(arr.dtype, np.signedinteger) and arr.min() < 0:
        raise ValueError(f"{name} contains negative labels; labels must be >= 0 (0 = background)")
    return arr


def _relabel(flat: NDArray) -> tuple[NDArray, NDArray[np.intp], NDArray[np.int64]]:
    """Map a flat label array to indices 0 (background), 1..n; return ids, index, areas."""
    if flat.size == 0:
        return flat[:0].copy(), np.zeros(0, dtype=np.intp), np.zeros(0, dtype=np.int64)
    top = int(flat.max())
    if top <= 2 * flat.size + 65536:
        as_int = flat.astype(np.intp, copy=False)
        counts = np.bincount(as_int, minlength=1)
        ids = np.flatnonzero(counts[1:]) + 1
        lut = np.zeros(top + 1, dtype=np.intp)
        lut[ids] = np.arange(1, ids.size + 1)
        return ids.astype(flat.dtype), lut[as_int], counts[ids].astype(np.int64)
    ids, inverse, counts = np.unique(flat, return_inverse=True, return_counts=True)
    inverse = inverse.reshape(-1).astype(np.intp)
    if ids[0] == 0:
        return ids[1:], inverse, counts[1:].astype(np.int64)
    return ids, inverse + 1, counts.astype(np.int64)


def overlap_table(gt: ArrayLike, pred: ArrayLike) -> OverlapTable:
    """Sparse contingency table (intersections and areas) of two label images.

    Parameters
    ----------
    gt, pred : array_like of int or bool, shape (Y, X) or (Z, Y, X) (any ndim, equal shapes)
        Label images; 0 is background, each positive id one object.

    Returns
    -------
    OverlapTable
        Ids, areas and the intersection of every overlapping (GT, pred) pair.

    Raises
    ------
    ValueError
        If the shapes differ or a label is negative.
    TypeError
        If an image is not of integer or boolean dtype.
    """
    g = _check_labels(gt, "gt")
    p = _check_labels(pred, "pred")
    if g.shape != p.shape:
        raise ValueError(f"gt and pred must have the same shape, got {g.shape} and {p.shape}")
    gt_ids, gi, gt_areas = _relabel(g.reshape(-1))
    pred_ids, pj, pred_areas = _relabel(p.reshape(-1))
    n_gt, n_pred = gt_ids.size, pred_ids.size
    both = (gi > 0) & (pj > 0)
    code = (gi[both] - 1).astype(np.int64) * n_pred + (pj[both] - 1)
    if n_gt * n_pred <= _DENSE_PAIR_LIMIT:
        counts = np.bincount(code, minlength=n_gt * n_pred)
        pairs = np.flatnonzero(counts)
        inter = counts[pairs]
    else:
        pairs, inter = np.unique(code, return_counts=True)
    return OverlapTable(
        gt_ids=gt_ids,
        pred_ids=pred_ids,
        gt_areas=gt_areas,
        pred_areas=pred_areas,
        gt_index=(pairs // max(n_pred, 1)).astype(np.intp),
        pred_index=(pairs % max(n_pred, 1)).astype(np.intp),
        intersection=inter.astype(np.int64),
    )


def overlap_matrix(gt: ArrayLike, pred: ArrayLike) -> tuple[NDArray[np.float64], NDArray, NDArray]:
    """Dense IoU matrix between all GT and predicted objects.

    Parameters
    ----------
    gt, pred : array_like of int or bool, same shape (2-D or 3-D)
        Label images (0 = background).

    Returns
    -------
    ious : ndarray of float64, shape (n_gt, n_pred)
        ``ious[i, j] = |G_i ∩ P_j| / |G_i ∪ P_j|``; 0 for disjoint pairs.
    gt_ids : ndarray, shape (n_gt,)
        Sorted GT ids labelling the rows.
    pred_ids : ndarray, shape (n_pred,)
        Sorted predicted ids labelling the columns.

    Notes
    -----
    Memory is ``8 * n_gt * n_pred`` bytes; for intersections and areas, or for very many
    objects, use the sparse :func:`overlap_table`.
    """
    table = overlap_table(gt, pred)
    return table.iou_matrix(), table.gt_ids, table.pred_ids


# --------------------------------------------------------------------------------------------
# One-to-one matching and detection scores
# --------------------------------------------------------------------------------------------


def _ratio(num: float, den: float) -> float:
    """``num / den`` with ``0 / 0 -> 1.0`` (nothing to count means nothing went wrong)."""
    return 1.0 if den == 0 else float(num) / float(den)


def _nan_ratio(num: float, den: float) -> float:
    """``num / den`` with ``x / 0 -> nan``."""
    return math.nan if den == 0 else float(num) / float(den)


@dataclass(frozen=True)
class Matching:
    """One-to-one matching between GT and predicted objects at one IoU threshold.

    Attributes
    ----------
    threshold : float
        IoU threshold; a pair can match only if ``IoU >= threshold``.
    gt_ids, pred_ids : ndarray, shape (tp,)
        Ids of the matched pairs, sorted by GT id.
    iou : ndarray of float64, shape (tp,)
        IoU (Jaccard index) of each matched pair.
    dice : ndarray of float64, shape (tp,)
        Dice coefficient ``2|G ∩ P| / (|G| + |P|)`` of each matched pair.
    intersection : ndarray of int64, shape (tp,)
        ``|G ∩ P|`` of each matched pair.
    n_gt, n_pred : int
        Number of objects in each image.
    """

    threshold: float
    gt_ids: NDArray
    pred_ids: NDArray
    iou: NDArray[np.float64]
    dice: NDArray[np.float64]
    intersection: NDArray[np.int64]
    n_gt: int
    n_pred: int

    @property
    def tp(self) -> int:
        """True positives: number of matched pairs."""
        return int(self.gt_ids.size)

    @property
    def fp(self) -> int:
        """False positives: unmatched predicted objects."""
        return self.n_pred - self.tp

    @property
    def fn(self) -> int:
        """False negatives: unmatched GT objects."""
        return self.n_gt - self.tp

    @property
    def precision(self) -> float:
        """``TP / (TP + FP)``; 1.0 when there is no prediction."""
        return _ratio(self.tp, self.tp + self.fp)

    @property
    def recall(self) -> float:
        """``TP / (TP + FN)``; 1.0 when there is no GT object."""
        return _ratio(self.tp, self.tp + self.fn)

    @property
    def f1(self) -> float:
        """``2TP / (2TP + FP + FN)``; 1.0 when both images are empty."""
        return _ratio(2 * self.tp, 2 * self.tp + self.fp + self.fn)

    @property
    def average_precision(self) -> float:
        """``TP / (TP + FP + FN)`` (DSB2018 / StarDist "accuracy"); 1.0 if both are empty."""
        return _ratio(self.tp, self.tp + self.fp + self.fn)


def _check_threshold(t: float) -> float:
    t = float(t)
    if not 0.0 <= t <= 1.0:
        raise ValueError(f"IoU thresholds must lie in [0, 1], got {t}")
    return t


def _assign(
    gi: NDArray[np.intp], pj: NDArray[np.intp], iou: NDArray[np.float64], n_gt: int, n_pred: int
) -> NDArray[np.intp]:
    """Indices (into the candidate arrays) of an optimal one-to-one subset of candidate edges."""
    if gi.size == 0:
        return np.zeros(0, dtype=np.intp)
    deg_g = np.bincount(gi, minlength=n_gt)
    deg_p = np.bincount(pj, minlength=n_pred)
    simple = (deg_g[gi] == 1) & (deg_p[pj] == 1)
    if simple.all():
        return np.arange(gi.size, dtype=np.intp)

    from scipy.optimize import linear_sum_assignment
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    chosen = [np.flatnonzero(simple)]
    hard = np.flatnonzero(~simple)
    # Connected components of the bipartite candidate graph (GT nodes 0..n_gt-1, pred nodes
    # n_gt..n_gt+n_pred-1); each component is an independent assignment problem.
    n_nodes = n_gt + n_pred
    graph = coo_matrix(
        (np.ones(hard.size), (gi[hard], pj[hard] + n_gt)), shape=(n_nodes, n_nodes)
    ).tocsr()
    _, comp = connected_components(graph, directed=False)
    edge_comp = comp[gi[hard]]
    order = np.argsort(edge_comp, kind="stable")
    hard = hard[order]
    bounds = np.flatnonzero(np.diff(edge_comp[order])) + 1
    for edges in np.split(hard, bounds):
        rows, r_inv = np.unique(gi[edges], return_inverse=True)
        cols, c_inv = np.unique(pj[edges], return_inverse=True)
        # Lexicographic objective: maximise the number of matches first, then the IoU sum
        # (the IoU term sums to at most 0.5 < 1, so it only breaks ties in cardinality).
        weight = np.zeros((rows.size, cols.size))
        weight[r_inv, c_inv] = 1.0 + iou[edges] / (2.0 * min(rows.size, cols.size))
        r, c = linear_sum_assignment(weight, maximize=True)
        keep = weight[r, c] > 0
        lookup = np.full((rows.size, cols.size), -1, dtype=np.intp)
        lookup[r_inv, c_inv] = edges
        chosen.append(lookup[r[keep], c[keep]])
    out = np.concatenate(chosen)
    return out[np.argsort(gi[out], kind="stable")]


def _match_table(table: OverlapTable, threshold: float) -> Matching:
    threshold = _check_threshold(threshold)
    iou = table.iou
    cand = np.flatnonzero(iou >= threshold)
    sel = cand[
        _assign(table.gt_index[cand], table.pred_index[cand], iou[cand], table.n_gt, table.n_pred)
    ]
    gi, pj = table.gt_index[sel], table.pred_index[sel]
    inter = table.intersection[sel]
    return Matching(
        threshold=threshold,
        gt_ids=table.gt_ids[gi],
        pred_ids=table.pred_ids[pj],
        iou=iou[sel],
        dice=2.0 * inter / (table.gt_areas[gi] + table.pred_areas[pj]),
        intersection=inter,
        n_gt=table.n_gt,
        n_pred=table.n_pred,
    )


def match(gt: ArrayLike, pred: ArrayLike, iou_threshold: float = 0.5) -> Matching:
    """Optimal one-to-one matching of GT and predicted objects at an IoU threshold.

    A (GT, pred) pair is a *candidate* iff ``IoU >= iou_threshold`` (inclusive) and the two
    objects overlap. Among all one-to-one selections of candidates the matching maximises the
    number of matched pairs and, among those, the sum of IoUs (as StarDist's ``matching.py``;
    solved exactly with ``scipy.optimize.linear_sum_assignment`` on each connected component of
    the candidate graph). For ``iou_threshold > 0.5`` candidates are automatically unique, since
    an object cannot have IoU > 0.5 with two disjoint objects; at exactly 0.5 an object split
    into two equal halves has two candidates and only one is matched.

    Parameters
    ----------
    gt, pred : array_like of int or bool, same shape (2-D or 3-D)
        Label images (0 = background).
    iou_threshold : float, default 0.5
        Threshold in ``[0, 1]``.

    Returns
    -------
    Matching
        Matched pairs (ids, IoU, Dice) and ``tp``, ``fp``, ``fn``, ``precision``, ``recall``,
        ``f1``, ``average_precision``.
    """
    return _match_table(overlap_table(gt, pred), iou_threshold)


def _thresholds(thresholds: float | Iterable[float]) -> tuple[list[float], bool]:
    if np.ndim(thresholds) == 0:
        return [_check_threshold(thresholds)], True  # type: ignore[arg-type]
    return [_check_threshold(t) for t in thresholds], False  # type: ignore[union-attr]


def average_precision(
    gt: ArrayLike, pred: ArrayLike, thresholds: float | Sequence[float] = DEFAULT_THRESHOLDS
) -> NDArray[np.float64] | float:
    """Average precision ``AP = TP / (TP + FP + FN)`` at each IoU threshold.

    This is the per-image "accuracy" of the 2018 Data Science Bowl and StarDist, with TP/FP/FN
    from :func:`match` (``IoU >= threshold``).

    Parameters
    ----------
    gt, pred : array_like of int or bool, same shape (2-D or 3-D)
        Label images (0 = background).
    thresholds : float or sequence of float, default (0.5, 0.6, 0.7, 0.8, 0.9)
        IoU thresholds in ``[0, 1]``.

    Returns
    -------
    ndarray of float64, shape (n_thresholds,), or float
        AP per threshold (a float if ``thresholds`` is a scalar). Both images empty
        (``TP + FP + FN = 0``) gives 1.0; exactly one empty gives 0.0.
    """
    ts, scalar = _thresholds(thresholds)
    table = overlap_table(gt, pred)
    out = np.array([_match_table(table, t).average_precision for t in ts], dtype=np.float64)
    return float(out[0]) if scalar else out


def precision_recall_f1(
    gt: ArrayLike, pred: ArrayLike, thresholds: float | Sequence[float] = DEFAULT_THRESHOLDS
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """Precision, recall and F1 of the one-to-one matching at each IoU threshold.

    ``precision = TP / (TP + FP)``, ``recall = TP / (TP + FN)``,
    ``F1 = 2TP / (2TP + FP + FN)``, with TP/FP/FN from :func:`match`. A zero denominator
    (``0 / 0``) gives 1.0: precision is 1.0 when there is no prediction, recall is 1.0 when
    there is no GT object, F1 is 1.0 only when both are empty.

    Parameters
    ----------
    gt, pred : array_like of int or bool, same shape (2-D or 3-D)
        Label images (0 = background).
    thresholds : float or sequence of float, default (0.5, 0.6, 0.7, 0.8, 0.9)
        IoU thresholds in ``[0, 1]``.

    Returns
    -------
    precision, recall, f1 : ndarray of float64, shape (n_thresholds,)
        One value per threshold (length 1 for a scalar threshold).
    """
    ts, _ = _thresholds(thresholds)
    table = overlap_table(gt, pred)
    ms = [_match_table(table, t) for t in ts]
    return (
        np.array([m.precision for m in ms], dtype=np.float64),
        np.array([m.recall for m in ms], dtype=np.float64),
        np.array([m.f1 for m in ms], dtype=np.float64),
    )


def dsb2018_score(gt: ArrayLike, pred: ArrayLike) -> float:
    """2018 Data Science Bowl score of one image.

    Mean of :func:`average_precision` over the ten IoU thresholds 0.50, 0.55, ..., 0.95
    (:data:`DSB2018_THRESHOLDS`). Both images empty gives 1.0.

    Parameters
    ----------
    gt, pred : array_like of int or bool, same shape (2-D or 3-D)
        Label images (0 = background).

    Returns
    -------
    float
        Score in ``[0, 1]``.
    """
    return float(np.mean(average_precision(gt, pred, DSB2018_THRESHOLDS)))


def matched_jaccard_dice(
    gt: ArrayLike, pred: ArrayLike, iou_threshold: float = 0.5
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Jaccard index (IoU) and Dice coefficient of every matched pair.

    Pairs come from :func:`match` at ``iou_threshold`` (default 0.5), sorted by GT id.
    ``Jaccard = |G ∩ P| / |G ∪ P|`` and ``Dice = 2|G ∩ P| / (|G| + |P|) = 2J / (1 + J)``.

    Parameters
    ----------
    gt, pred : array_like of int or bool, same shape (2-D or 3-D)
        Label images (0 = background).
    iou_threshold : float, default 0.5
        Matching threshold.

    Returns
    -------
    jaccard, dice : ndarray of float64, shape (n_matched,)
        Per-pair values (empty arrays when nothing matches).
    """
    m = match(gt, pred, iou_threshold)
    return m.iou, m.dice


# --------------------------------------------------------------------------------------------
# GT-centred object scores: SM similarity, AJI, CTC SEG
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PerObjectScores:
    """A score for every ground-truth object.

    Attributes
    ----------
    gt_ids : ndarray, shape (n_gt,)
        Sorted GT ids.
    pred_ids : ndarray, shape (n_gt,)
        Predicted object chosen for each GT object (0 = none).
    scores : ndarray of float64, shape (n_gt,)
        Score of each GT object (0.0 when no predicted object was chosen).
    mean : float
        Mean of ``scores``; ``nan`` when there is no GT object.
    fraction : float
        For :func:`sm_similarity`, fraction of GT objects with ``score >= k`` (``nan`` without GT
        objects); ``nan`` for other metrics.
    """

    gt_ids: NDArray
    pred_ids: NDArray
    scores: NDArray[np.float64]
    mean: float
    fraction: float = math.nan


def _best_per_gt(table: OverlapTable, *keys: NDArray) -> NDArray[np.intp]:
    """Pair index of the best pair per GT row: lexicographically smallest ``keys``."""
    if table.intersection.size == 0:
        return np.zeros(0, dtype=np.intp)
    order = np.lexsort((table.pred_index, *reversed(keys), table.gt_index))
    g = table.gt_index[order]
    first = np.ones(g.size, dtype=bool)
    first[1:] = g[1:] != g[:-1]
    return order[first]


def _sm_table(table: OverlapTable, k: float) -> PerObjectScores:
    # Largest intersection first; ties -> smallest predicted area (= largest S) -> smallest id.
    best = _best_per_gt(table, -table.intersection, table.pred_areas[table.pred_index])
    gi, pj = table.gt_index[best], table.pred_index[best]
    s = np.zeros(table.n_gt, dtype=np.float64)
    s[gi] = 2.0 * table.intersection[best] / (table.gt_areas[gi] + table.pred_areas[pj])
    chosen = np.zeros(table.n_gt, dtype=table.pred_ids.dtype)
    chosen[gi] = table.pred_ids[pj]
    n = table.n_gt
    return PerObjectScores(
        gt_ids=table.gt_ids,
        pred_ids=chosen,
        scores=s,
        mean=_nan_ratio(float(s.sum()), n),
        fraction=_nan_ratio(int(np.count_nonzero(s >= k)), n),
    )


def sm_similarity(gt: ArrayLike, pred: ArrayLike, k: float = 0.6) -> PerObjectScores:
    """Cell-level similarity of Al-Kofahi et al. (BMC Bioinformatics 2018).

    Reading of the definition (Al-Kofahi, Zaltsman, Graves, Marshall, Rusu, "A deep
    learning-based algorithm for 2-D cell segmentation in microscopy images"): for every
    ground-truth cell ``A`` take the predicted (automatic) cell ``B`` with the **largest
    overlap** ``|A ∩ B|`` (pixel count, not IoU), and score it with the Dice-like similarity
    ``S = 2|A ∩ B| / (|A| + |B|)``. A GT cell with no overlapping prediction has ``S = 0``.
    Ties in overlap are broken towards the higher ``S`` (smaller predicted cell), then the
    smaller predicted id. A GT cell is *correctly segmented* if ``S >= k`` (inclusive). A
    predicted cell may be chosen by several GT cells; predictions touching no GT cell are
    ignored (the measure is GT-centred and does not penalise false positives).

    Parameters
    ----------
    gt, pred : array_like of int or bool, same shape (2-D or 3-D)
        Label images (0 = background).
    k : float, default 0.6
        Similarity needed for a cell to count as correctly segmented.

    Returns
    -------
    PerObjectScores
        ``scores`` = S per GT cell (float64, shape (n_gt,)), ``pred_ids`` the chosen predicted
        cell (0 = none), ``mean`` = mean S over GT cells, ``fraction`` = fraction of GT cells
        with ``S >= k``. ``mean`` and ``fraction`` are ``nan`` when the GT is empty.
    """
    return _sm_table(overlap_table(gt, pred), float(k))


@dataclass(frozen=True)
class AJIResult:
    """Aggregated Jaccard Index with its parts.

    Attributes
    ----------
    aji : float
        ``intersection / union`` (1.0 when both are 0, i.e. both images empty).
    intersection : int
        Accumulated ``C`` (pixels).
    union : int
        Accumulated ``U`` (pixels).
    gt_ids, pred_ids : ndarray, shape (n_gt,)
        GT ids and the predicted id each one picked (0 = none).
    """

    aji: float
    intersection: int
    union: int
    gt_ids: NDArray
    pred_ids: NDArray


def _aji_table(table: OverlapTable) -> AJIResult:
    # Largest IoU first; exact ties -> smallest predicted id.
    best = _best_per_gt(table, -table.iou)
    gi, pj = table.gt_index[best], table.pred_index[best]
    inter = table.intersection[best]
    c = int(inter.sum())
    u = int((table.gt_areas[gi] + table.pred_areas[pj] - inter).sum())
    picked = np.zeros(table.n_gt, dtype=bool)
    picked[gi] = True
    u += int(table.gt_areas[~picked].sum())  # GT objects without any overlapping prediction
    used = np.zeros(table.n_pred, dtype=bool)
    used[pj] = True
    u += int(table.pred_areas[~used].sum())  # predictions never picked
    chosen = np.zeros(table.n_gt, dtype=table.pred_ids.dtype)
    chosen[gi] = table.pred_ids[pj]
    return AJIResult(
        aji=_ratio(c, u), intersection=c, union=u, gt_ids=table.gt_ids, pred_ids=chosen
    )


def aji_components(gt: ArrayLike, pred: ArrayLike) -> AJIResult:
    """Aggregated Jaccard Index with its accumulated intersection ``C`` and union ``U``.

    See :func:`aggregated_jaccard_index` for the definition. ``C`` and ``U`` can be summed over
    images for a pooled (dataset-level) AJI ``sum(C) / sum(U)``.
    """
    return _aji_table(overlap_table(gt, pred))


def aggregated_jaccard_index(gt: ArrayLike, pred: ArrayLike) -> float:
    """Aggregated Jaccard Index (AJI) of Kumar et al., IEEE TMI 2017.

    For each GT object ``G_i``: pick the predicted object ``S_j`` with the largest
    ``IoU(G_i, S_j)`` (exact ties: smallest predicted id); add ``|G_i ∩ S_j|`` to ``C`` and
    ``|G_i ∪ S_j|`` to ``U`` and mark ``S_j`` used. If no prediction overlaps ``G_i``, add only
    ``|G_i|`` to ``U``. Finally add to ``U`` the area of every predicted object never used.
    ``AJI = C / U``.

    As in Kumar et al.'s definition (and unlike the "AJI+" variant), a predicted object may be
    picked by several GT objects; its pixels are then counted in ``U`` once per picking GT
    object (so under-segmentation by merging is penalised twice).

    Parameters
    ----------
    gt, pred : array_like of int or bool, same shape (2-D or 3-D)
        Label images (0 = background).

    Returns
    -------
    float
        AJI in ``[0, 1]``; 1.0 when both images are empty, 0.0 when exactly one is.
    """
    return _aji_table(overlap_table(gt, pred)).aji


def _seg_table(table: OverlapTable) -> PerObjectScores:
    # |R ∩ S| > 0.5 |R|, in integers: 2|R ∩ S| > |R|. At most one S can satisfy it.
    ok = 2 * table.intersection > table.gt_areas[table.gt_index]
    gi, pj = table.gt_index[ok], table.pred_index[ok]
    j = np.zeros(table.n_gt, dtype=np.float64)
    j[gi] = table.iou[ok]
    chosen = np.zeros(table.n_gt, dtype=table.pred_ids.dtype)
    chosen[gi] = table.pred_ids[pj]
    return PerObjectScores(
        gt_ids=table.gt_ids, pred_ids=chosen, scores=j, mean=_nan_ratio(float(j.sum()), table.n_gt)
    )


def ctc_seg(gt: ArrayLike, pred: ArrayLike) -> PerObjectScores:
    """Cell Tracking Challenge SEG measure of one image.

    For each GT object ``R`` the predicted object ``S`` is its match iff
    ``|R ∩ S| > 0.5 |R|`` (strictly; exactly half is *not* a match), which makes the match
    unique. ``J(R) = |R ∩ S| / |R ∪ S|`` for the match, else 0. ``SEG = mean J`` over GT objects.
    Predicted objects matching no GT object are ignored (SEG does not penalise false positives).

    Parameters
    ----------
    gt, pred : array_like of int or bool, same shape (2-D or 3-D)
        Label images (0 = background).

    Returns
    -------
    PerObjectScores
        ``scores`` = J per GT object (float64, shape (n_gt,)), ``pred_ids`` the match (0 = none),
        ``mean`` = SEG; ``nan`` when the GT image has no object.
    """
    return _seg_table(overlap_table(gt, pred))


# --------------------------------------------------------------------------------------------
# Per-image dictionaries and dataset aggregation
# --------------------------------------------------------------------------------------------


def _tkey(name: str, t: float) -> str:
    return f"{name}@{t:g}"


# Per-image keys that are counts/sums (added up by summarize); everything else is averaged.
_SUM_KEYS = frozenset(
    {
        "n_gt",
        "n_pred",
        "n_matched",
        "jaccard_sum",
        "dice_sum",
        "sm_sum",
        "sm_n_correct",
        "aji_intersection",
        "aji_union",
        "seg_sum",
    }
)
_SUM_PREFIXES = ("tp@", "fp@", "fn@")


def image_scores(
    gt: ArrayLike,
    pred: ArrayLike,
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
    sm_k: float = 0.6,
) -> dict[str, float | int]:
    """All metrics of one image as one flat ``dict`` (one CSV row).

    Parameters
    ----------
    gt, pred : array_like of int or bool, same shape (2-D or 3-D)
        Label images (0 = background).
    thresholds : sequence of float, default (0.5, 0.6, 0.7, 0.8, 0.9)
        IoU thresholds for the ``@t`` keys; ``t`` is written with ``format(t, "g")``
        (``0.5 -> "0.5"``, ``0.55 -> "0.55"``).
    sm_k : float, default 0.6
        ``k`` of :func:`sm_similarity`.

    Returns
    -------
    dict
        Keys, in this order (ints are Python ``int``, scores Python ``float``):

        ``n_gt``, ``n_pred``
            Object counts.
        ``tp@t``, ``fp@t``, ``fn@t`` (int, per threshold)
            Counts of the :func:`match` at ``t``.
        ``ap@t``, ``precision@t``, ``recall@t``, ``f1@t`` (per threshold)
            As in :func:`average_precision` and :func:`precision_recall_f1`.
        ``dsb2018``
            :func:`dsb2018_score` (always over 0.50:0.05:0.95, whatever ``thresholds``).
        ``n_matched``, ``jaccard_sum``, ``dice_sum``, ``jaccard_mean``, ``dice_mean``
            Pairs matched at IoU 0.5 and the sum / mean of their Jaccard and Dice
            (means ``nan`` when nothing matched).
        ``sm_mean``, ``sm_fraction``, ``sm_sum``, ``sm_n_correct``
            :func:`sm_similarity`: mean S, fraction with ``S >= sm_k``, sum of S and number
            with ``S >= sm_k`` (mean and fraction ``nan`` when the GT is empty).
        ``aji``, ``aji_intersection``, ``aji_union``
            :func:`aggregated_jaccard_index` and its ``C`` and ``U``.
        ``seg``, ``seg_sum``
            :func:`ctc_seg` and the sum of per-object J (``seg`` ``nan`` for an empty GT).
    """
    table = overlap_table(gt, pred)
    ts = [_check_threshold(t) for t in thresholds]
    cache: dict[float, Matching] = {}

    def get(t: float) -> Matching:
        if t not in cache:
            cache[t] = _match_table(table, t)
        return cache[t]

    out: dict[str, float | int] = {"n_gt": table.n_gt, "n_pred": table.n_pred}
    for name in ("tp", "fp", "fn"):
        for t in ts:
            out[_tkey(name, t)] = int(getattr(get(t), name))
    for name, attr in (
        ("ap", "average_precision"),
        ("precision", "precision"),
        ("recall", "recall"),
        ("f1", "f1"),
    ):
        for t in ts:
            out[_tkey(name, t)] = float(getattr(get(t), attr))
    out["dsb2018"] = float(np.mean([get(t).average_precision for t in DSB2018_THRESHOLDS]))
    m = get(0.5)
    out["n_matched"] = m.tp
    out["jaccard_sum"] = float(m.iou.sum())
    out["dice_sum"] = float(m.dice.sum())
    out["jaccard_mean"] = _nan_ratio(out["jaccard_sum"], m.tp)
    out["dice_mean"] = _nan_ratio(out["dice_sum"], m.tp)
    sm = _sm_table(table, float(sm_k))
    out["sm_mean"] = sm.mean
    out["sm_fraction"] = sm.fraction
    out["sm_sum"] = float(sm.scores.sum())
    out["sm_n_correct"] = int(np.count_nonzero(sm.scores >= sm_k))
    aji = _aji_table(table)
    out["aji"] = aji.aji
    out["aji_intersection"] = aji.intersection
    out["aji_union"] = aji.union
    seg = _seg_table(table)
    out["seg"] = seg.mean
    out["seg_sum"] = float(seg.scores.sum())
    return out


def _nanmean(values: Sequence[float]) -> float:
    arr = np.asarray(values, dtype=np.float64)
    if arr.size == 0 or np.isnan(arr).all():
        return math.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(np.nanmean(arr))


def summarize(rows: Sequence[Mapping[str, float | int]]) -> dict[str, float | int]:
    """Dataset-level aggregates of per-image :func:`image_scores` dictionaries.

    Parameters
    ----------
    rows : sequence of dict
        Outputs of :func:`image_scores`, all with the same keys (same thresholds).

    Returns
    -------
    dict
        ``n_images`` followed by, for every per-image key:

        * count keys (``n_gt``, ``n_pred``, ``tp@t``, ``fp@t``, ``fn@t``, ``n_matched``,
          ``*_sum``, ``sm_n_correct``, ``aji_intersection``, ``aji_union``): the **sum** over
          images;
        * score keys (``ap@t``, ``precision@t``, ``recall@t``, ``f1@t``, ``dsb2018``,
          ``jaccard_mean``, ``dice_mean``, ``sm_mean``, ``sm_fraction``, ``aji``, ``seg``):
          the **mean over images**, skipping ``nan`` (``nan`` if all are ``nan``).

        and the pooled scores, computed from the summed counts:

        * ``ap_pooled@t = ΣTP / (ΣTP + ΣFP + ΣFN)``, ``precision_pooled@t``,
          ``recall_pooled@t``, ``f1_pooled@t`` (``0/0 -> 1.0``);
        * ``jaccard_mean_pooled``, ``dice_mean_pooled``: mean over all matched pairs (IoU 0.5)
          of the dataset (``nan`` if none);
        * ``sm_mean_pooled``, ``sm_fraction_pooled``: over all GT cells (``nan`` if none);
        * ``aji_pooled = ΣC / ΣU`` (``0/0 -> 1.0``);
        * ``seg_pooled``: mean J over all GT objects of the dataset, the CTC convention for a
          sequence (``nan`` if none).

    Raises
    ------
    ValueError
        If ``rows`` is empty or the rows have different keys.
    """
    if len(rows) == 0:
        raise ValueError("summarize needs at least one per-image score dict")
    keys = list(rows[0].keys())
    for i, row in enumerate(rows):
        if set(row.keys()) != set(keys):
            raise ValueError(f"row {i} has different keys than row 0 (different thresholds?)")
    out: dict[str, float | int] = {"n_images": len(rows)}
    for key in keys:
        values = [row[key] for row in rows]
        if key in _SUM_KEYS or key.startswith(_SUM_PREFIXES):
            total = sum(values)
            out[key] = (
                int(total)
                if all(isinstance(v, int | np.integer) for v in values)
                else (float(total))
            )
        else:
            out[key] = _nanmean(values)  # type: ignore[arg-type]
    for key in keys:
        if key.startswith("tp@"):
            t = key[3:]
            tp, fp, fn = out[f"tp@{t}"], out[f"fp@{t}"], out[f"fn@{t}"]
            out[f"ap_pooled@{t}"] = _ratio(tp, tp + fp + fn)
            out[f"precision_pooled@{t}"] = _ratio(tp, tp + fp)
            out[f"recall_pooled@{t}"] = _ratio(tp, tp + fn)
            out[f"f1_pooled@{t}"] = _ratio(2 * tp, 2 * tp + fp + fn)
    if "n_matched" in out:
        out["jaccard_mean_pooled"] = _nan_ratio(out["jaccard_sum"], out["n_matched"])
        out["dice_mean_pooled"] = _nan_ratio(out["dice_sum"], out["n_matched"])
    if "n_gt" in out and "sm_sum" in out:
        out["sm_mean_pooled"] = _nan_ratio(out["sm_sum"], out["n_gt"])
        out["sm_fraction_pooled"] = _nan_ratio(out["sm_n_correct"], out["n_gt"])
    if "aji_union" in out:
        out["aji_pooled"] = _ratio(out["aji_intersection"], out["aji_union"])
    if "n_gt" in out and "seg_sum" in out:
        out["seg_pooled"] = _nan_ratio(out["seg_sum"], out["n_gt"])
    return out


@dataclass(frozen=True)
class Evaluation:
    """Result of :func:`evaluate`.

    Attributes
    ----------
    images : list of dict
        One :func:`image_scores` dict per (gt, pred) pair, in input order.
    summary : dict
        :func:`summarize` of ``images``.
    """

    images: list[dict[str, float | int]]
    summary: dict[str, float | int]


def evaluate(
    pairs: Iterable[tuple[ArrayLike, ArrayLike]],
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
    sm_k: float = 0.6,
) -> Evaluation:
    """Score a dataset of ``(gt, pred)`` label-image pairs.

    Parameters
    ----------
    pairs : iterable of (gt, pred)
        Label images; each pair must share a shape (pairs may differ from each other).
    thresholds : sequence of float, default (0.5, 0.6, 0.7, 0.8, 0.9)
        IoU thresholds for the per-threshold keys.
    sm_k : float, default 0.6
        ``k`` of :func:`sm_similarity`.

    Returns
    -------
    Evaluation
        Per-image dicts (:func:`image_scores`) and the dataset summary (:func:`summarize`),
        which holds both mean-per-image and pooled scores.
    """
    images = [image_scores(g, p, thresholds, sm_k) for g, p in pairs]
    return Evaluation(images=images, summary=summarize(images))


# --------------------------------------------------------------------------------------------
# Cell Tracking Challenge DET and TRA (AOGM)
# --------------------------------------------------------------------------------------------

#: AOGM weights of the Cell Tracking Challenge TRA measure (Matula et al. 2015, PLoS ONE
#: 10:e0144959): vertex split NS, false negative FN, false positive FP, edge to delete ED,
#: edge to add EA, edge with the wrong semantics EC. DET uses the first three only.
CTC_AOGM_WEIGHTS: dict[str, float] = {
    "ns": 5.0,
    "fn": 10.0,
    "fp": 1.0,
    "ed": 1.0,
    "ea": 1.5,
    "ec": 1.0,
}


@dataclass(frozen=True)
class TrackingScores:
    """Cell Tracking Challenge DET and TRA of one sequence, with the AOGM error counts.

    Attributes
    ----------
    ns, fn, fp, ed, ea, ec : int
        Vertex splits needed, false negative and false positive vertices, redundant edges,
        missing edges and edges with the wrong semantics (track link vs parent link).
    n_gt_vertices, n_gt_edges : int
        Size of the reference graph (markers, and track plus parent links).
    aogm, aogm0 : float
        Weighted cost to correct the result, and to build the reference from scratch.
    aogm_d, aogm_d0 : float
        The same for detection only (NS, FN, FP).
    tra, det : float
        ``1 - min(AOGM, AOGM0) / AOGM0`` and ``1 - min(AOGM-D, AOGM-D0) / AOGM-D0``; ``nan``
        for an empty reference.
    """

    ns: int
    fn: int
    fp: int
    ed: int
    ea: int
    ec: int
    n_gt_vertices: int
    n_gt_edges: int
    aogm: float
    aogm0: float
    aogm_d: float
    aogm_d0: float
    tra: float
    det: float

    def as_dict(self) -> dict[str, float | int]:
        """Flat dictionary of all fields."""
        return dict(self.__dict__)


def _frame_stack(x: ArrayLike | Sequence[ArrayLike], name: str) -> list[NDArray]:
    frames = [_check_labels(f, name) for f in x]
    if not frames:
        raise ValueError(f"{name} holds no frames")
    return frames


def _ctc_matches(gt_frames: Sequence[NDArray], res_frames: Sequence[NDArray]):
    """Per frame: GT vertex -> RES vertex (covering > half the GT object), RES -> GT set."""
    gt_match: dict[tuple[int, int], int] = {}
    res_match: dict[tuple[int, int], list[int]] = {}
    gt_vertices: list[tuple[int, int]] = []
    for t, (g, r) in enumerate(zip(gt_frames, res_frames, strict=True)):
        if g.shape != r.shape:
            raise ValueError(f"frame {t}: reference {g.shape} and result {r.shape} differ in shape")
        table = overlap_table(g, r)
        gt_vertices += [(t, int(i)) for i in table.gt_ids]
        for j in table.pred_ids:
            res_match[(t, int(j))] = []
        ok = 2 * table.intersection > table.gt_areas[table.gt_index]
        for gi, pj in zip(table.gt_index[ok], table.pred_index[ok], strict=True):
            gid, rid = int(table.gt_ids[gi]), int(table.pred_ids[pj])
            gt_match[(t, gid)] = rid
            res_match[(t, rid)].append(gid)
    return gt_vertices, gt_match, res_match


def _track_edges(tracks: ArrayLike) -> dict[tuple[int, int, int, int], bool]:
    """Edges ``(t1, label1, t2, label2) -> is_parent_link`` of a CTC track table."""
    arr = np.asarray(tracks, dtype=np.int64).reshape(-1, 4)
    end = {int(r[0]): int(r[2]) for r in arr}
    edges: dict[tuple[int, int, int, int], bool] = {}
    for label, begin, stop, parent in arr.tolist():
        for t in range(begin, stop):
            edges[(t, label, t + 1, label)] = False
        if parent and parent in end:
            edges[(end[parent], parent, begin, label)] = True
    return edges


def ctc_tracking_scores(
    gt_frames: ArrayLike | Sequence[ArrayLike],
    gt_tracks: ArrayLike,
    res_frames: ArrayLike | Sequence[ArrayLike],
    res_tracks: ArrayLike,
    weights: Mapping[str, float] | None = None,
) -> TrackingScores:
    """Cell Tracking Challenge DET and TRA (AOGM) of a tracking result.

    Follows Matula et al. 2015 and the challenge's evaluation software: a reference marker
    (vertex) is matched by the result object that covers more than half of it. Result objects
    matching no marker are false positives (FP); markers matched by none are false negatives
    (FN); a result object matching ``k > 1`` markers costs ``k - 1`` splits (NS). Edges are the
    links between consecutive frames of one track and the parent links (parent's last frame ->
    child's first frame) of the track tables. Only edges between result objects that match
    exactly one marker are compared: a result edge with no reference edge between the matched
    markers is to be deleted (ED), one whose reference counterpart has the other kind (track
    vs parent link) changes semantics (EC); a reference edge without a result edge between
    one-to-one matched objects is to be added (EA).

    Parameters
    ----------
    gt_frames : array_like of int, shape (T, Y, X) (or a sequence of T label images)
        Reference markers (``01_GT/TRA/man_track<T>.tif``); the label is the track id.
    gt_tracks : array_like of int, shape (N, 4)
        Reference track table (``man_track.txt``): ``(label, begin, end, parent)``.
    res_frames : array_like of int, shape (T, Y, X) (or a sequence)
        Result masks (``mask<T>.tif``), label = result track id.
    res_tracks : array_like of int, shape (M, 4)
        Result track table (``res_track.txt``).
    weights : mapping, optional
        AOGM weights ``ns, fn, fp, ed, ea, ec``; default :data:`CTC_AOGM_WEIGHTS`.

    Returns
    -------
    TrackingScores
        Error counts, AOGM, AOGM0, TRA and DET.

    Notes
    -----
    ``AOGM0 = w_fn * n_gt_vertices + w_ea * n_gt_edges`` (building the reference from
    scratch) and ``AOGM-D0 = w_fn * n_gt_vertices``; the vertex count is taken from the
    reference frames and the edge count from the reference track table.
    """
    w = dict(CTC_AOGM_WEIGHTS)
    if weights is not None:
        w.update(weights)
    gt_list = _frame_stack(gt_frames, "gt_frames")
    res_list = _frame_stack(res_frames, "res_frames")
    if len(gt_list) != len(res_list):
        raise ValueError(f"{len(gt_list)} reference frames but {len(res_list)} result frames")
    gt_vertices, gt_match, res_match = _ctc_matches(gt_list, res_list)
    fn = sum(1 for v in gt_vertices if v not in gt_match)
    fp = sum(1 for m in res_match.values() if not m)
    ns = sum(len(m) - 1 for m in res_match.values() if len(m) > 1)

    gt_edges = _track_edges(gt_tracks)
    res_edges = _track_edges(res_tracks)

    def unique_gt(t: int, rid: int) -> int | None:
        m = res_match.get((t, rid), [])
        return m[0] if len(m) == 1 else None

    ed = ec = 0
    for (t1, r1, t2, r2), is_parent in res_edges.items():
        g1, g2 = unique_gt(t1, r1), unique_gt(t2, r2)
        if g1 is None or g2 is None:
            continue  # edges at FP or split vertices go with those vertex operations
        ref = gt_edges.get((t1, g1, t2, g2))
        if ref is None:
            ed += 1
        elif ref != is_parent:
            ec += 1
    ea = 0
    for t1, g1, t2, g2 in gt_edges:
        r1, r2 = gt_match.get((t1, g1)), gt_match.get((t2, g2))
        ok = (
            r1 is not None
            and r2 is not None
            and unique_gt(t1, r1) is not None
            and unique_gt(t2, r2) is not None
            and (t1, r1, t2, r2) in res_edges
        )
        ea += not ok

    n_v, n_e = len(gt_vertices), len(gt_edges)
    aogm_d = w["ns"] * ns + w["fn"] * fn + w["fp"] * fp
    aogm = aogm_d + w["ed"] * ed + w["ea"] * ea + w["ec"] * ec
    aogm_d0 = w["fn"] * n_v
    aogm0 = aogm_d0 + w["ea"] * n_e
    return TrackingScores(
        ns=ns,
        fn=fn,
        fp=fp,
        ed=ed,
        ea=ea,
        ec=ec,
        n_gt_vertices=n_v,
        n_gt_edges=n_e,
        aogm=float(aogm),
        aogm0=float(aogm0),
        aogm_d=float(aogm_d),
        aogm_d0=float(aogm_d0),
        tra=1.0 - min(aogm, aogm0) / aogm0 if aogm0 else math.nan,
        det=1.0 - min(aogm_d, aogm_d0) / aogm_d0 if aogm_d0 else math.nan,
    )


def ctc_det(
    gt_frames: ArrayLike | Sequence[ArrayLike], res_frames: ArrayLike | Sequence[ArrayLike]
) -> float:
    """Cell Tracking Challenge DET: ``1 - min(AOGM-D, AOGM-D0) / AOGM-D0``.

    ``AOGM-D = 5 NS + 10 FN + 1 FP`` with vertices matched as in :func:`ctc_tracking_scores`
    (no track tables needed); ``AOGM-D0 = 10 * number of reference markers``.

    Parameters
    ----------
    gt_frames, res_frames : array_like of int, shape (T, Y, X) (or sequences of label images)
        Reference markers and result masks.

    Returns
    -------
    float
        DET in ``[0, 1]``; ``nan`` for an empty reference.
    """
    gt_list = _frame_stack(gt_frames, "gt_frames")
    res_list = _frame_stack(res_frames, "res_frames")
    if len(gt_list) != len(res_list):
        raise ValueError(f"{len(gt_list)} reference frames but {len(res_list)} result frames")
    empty = np.zeros((0, 4), dtype=np.int64)
    return ctc_tracking_scores(gt_list, empty, res_list, empty).det


def ctc_tra(
    gt_frames: ArrayLike | Sequence[ArrayLike],
    gt_tracks: ArrayLike,
    res_frames: ArrayLike | Sequence[ArrayLike],
    res_tracks: ArrayLike,
) -> float:
    """Cell Tracking Challenge TRA: ``1 - min(AOGM, AOGM0) / AOGM0``.

    See :func:`ctc_tracking_scores` for the matching, the error counts and the weights
    (NS 5, FN 10, FP 1, ED 1, EA 1.5, EC 1).

    Returns
    -------
    float
        TRA in ``[0, 1]``; ``nan`` for an empty reference.
    """
    return ctc_tracking_scores(gt_frames, gt_tracks, res_frames, res_tracks).tra
