"""Follow cells through a time-lapse: linking, divisions, lineages, growth and quality flags.

The tracker links the objects of consecutive label frames by a linear assignment problem
(``scipy.optimize.linear_sum_assignment``) in the formulation of Jaqaman et al. 2008 (Nat.
Methods 5:695): an ``(n + m, m + n)`` cost matrix whose top-left block holds the link costs of
the ``n`` objects of frame ``t`` to the ``m`` objects of frame ``t + 1``, whose diagonal
"non-link" blocks let an object end (death) or start (birth) at a fixed cost, and whose
bottom-right block closes the square. The link cost of a pair is

    (distance / max_distance) ** 2 + overlap_weight * (1 - IoU) + area_weight * |ln(a1 / a0)|

with the centroid distance in pixels, the IoU of the two masks in pixels and the areas ``a0``,
``a1``; pairs further apart than ``max_distance`` that do not overlap cannot link. A link is
chosen over a death plus a birth when its cost is below ``2 * non_link_cost``.

Divisions are found in a second assignment that gives every newborn object of frame ``t + 1``
a mother in frame ``t`` (one parent, two daughters), gap closing in a third one that joins a
track ending at ``t`` to a track starting at ``t + 2`` (one missing frame). The result follows
the Cell Tracking Challenge (CTC) conventions: relabelled masks whose label is the track id and
a track table with rows ``(id, start, end, parent)`` like ``res_track.txt`` (a track continued
across a gap is a new track whose parent is the earlier one, as in the CTC format).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import CellscapeError

__all__ = [
    "FrameObjects",
    "TrackingResult",
    "area_jump_flags",
    "frame_objects",
    "growth_table",
    "lineage_table",
    "link_frames",
    "plot_colony_growth",
    "plot_growth_histogram",
    "read_ctc_result",
    "read_label_frames",
    "save_figure",
    "track",
    "typical_diameter",
    "write_ctc_result",
]


# --------------------------------------------------------------------------------------------
# Per-frame objects
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FrameObjects:
    """The objects of one label frame.

    Attributes
    ----------
    ids : ndarray of int64, shape (n,)
        Sorted positive label ids.
    centroids : ndarray of float64, shape (n, 2)
        ``(y, x)`` centroids in pixels.
    areas : ndarray of int64, shape (n,)
        Areas in pixels.
    """

    ids: np.ndarray
    centroids: np.ndarray
    areas: np.ndarray

    def __len__(self) -> int:
        return int(self.ids.size)


def frame_objects(labels: np.ndarray) -> FrameObjects:
    """Ids, centroids and areas of the objects of a ``(Y, X)`` label image (0 = background)."""
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise ValueError(f"expected a (Y, X) label frame, got shape {labels.shape}")
    flat = labels.reshape(-1)
    yy, xx = np.divmod(np.arange(flat.size), labels.shape[1])
    top = int(flat.max()) if flat.size else 0
    if top <= 2 * flat.size + 65536:
        # bincount on the labels themselves: no sort, O(pixels)
        index = flat.astype(np.intp, copy=False)
        counts = np.bincount(index, minlength=top + 1)
        ids = np.arange(counts.size)
    else:
        ids, index, counts = np.unique(flat, return_inverse=True, return_counts=True)
        index = index.reshape(-1)
    sy = np.bincount(index, weights=yy, minlength=ids.size)
    sx = np.bincount(index, weights=xx, minlength=ids.size)
    keep = (ids > 0) & (counts > 0)
    cent = np.stack([sy[keep] / counts[keep], sx[keep] / counts[keep]], axis=1)
    return FrameObjects(
        ids[keep].astype(np.int64), cent.reshape(-1, 2), counts[keep].astype(np.int64)
    )


# --------------------------------------------------------------------------------------------
# Frame-to-frame linking
# --------------------------------------------------------------------------------------------


def _pair_iou(prev: np.ndarray, curr: np.ndarray, a: FrameObjects, b: FrameObjects):
    """Sparse IoU of overlapping pairs as (row index into a, col index into b, iou)."""
    from .metrics import overlap_table

    table = overlap_table(prev, curr)
    rows = np.searchsorted(a.ids, table.gt_ids[table.gt_index])
    cols = np.searchsorted(b.ids, table.pred_ids[table.pred_index])
    return rows, cols, table.iou


def _link_costs(
    a: FrameObjects,
    b: FrameObjects,
    iou: tuple[np.ndarray, np.ndarray, np.ndarray] | None,
    max_distance: float,
    overlap_weight: float,
    area_weight: float,
) -> np.ndarray:
    """Dense ``(n, m)`` link costs, ``inf`` where a link is not allowed."""
    from scipy.spatial import cKDTree

    cost = np.full((len(a), len(b)), np.inf)
    if len(a) == 0 or len(b) == 0:
        return cost
    # Candidate pairs: within max_distance, or overlapping (a large cell can move its centroid
    # far while still overlapping itself).
    sparse = cKDTree(a.centroids).sparse_distance_matrix(
        cKDTree(b.centroids), max_distance, output_type="coo_matrix"
    )
    rows, cols = sparse.row, sparse.col
    ov = np.zeros(rows.size)
    if iou is not None and iou[0].size:
        code = rows.astype(np.int64) * len(b) + cols
        icode = iou[0].astype(np.int64) * len(b) + iou[1]
        rows = np.concatenate([rows, iou[0]])
        cols = np.concatenate([cols, iou[1]])
        code, first = np.unique(np.concatenate([code, icode]), return_index=True)
        rows, cols = rows[first], cols[first]
        ov = np.zeros(rows.size)
        ov[np.searchsorted(code, icode)] = iou[2]
    dist = np.hypot(*(a.centroids[rows] - b.centroids[cols]).T)
    area = np.abs(np.log(b.areas[cols] / a.areas[rows]))
    cost[rows, cols] = (dist / max_distance) ** 2 + overlap_weight * (1.0 - ov) + area_weight * area
    return cost


def _solve_lap(link: np.ndarray, death: float, birth: float) -> np.ndarray:
    """Jaqaman LAP: return ``match`` of shape (n,), the linked column or -1 (death)."""
    from scipy.optimize import linear_sum_assignment

    n, m = link.shape
    match = np.full(n, -1, dtype=np.intp)
    if n == 0 or m == 0:
        return match
    # Only rows / columns with at least one allowed link take part; the rest are deaths and
    # births without any choice (this keeps the matrices small for sparse problems).
    live_r = np.flatnonzero(np.isfinite(link).any(axis=1))
    live_c = np.flatnonzero(np.isfinite(link).any(axis=0))
    if live_r.size == 0:
        return match
    sub = link[np.ix_(live_r, live_c)]
    nr, nc = sub.shape
    big = np.full((nr + nc, nc + nr), np.inf)
    big[:nr, :nc] = sub
    big[:nr, nc:][np.diag_indices(nr)] = death
    big[nr:, :nc][np.diag_indices(nc)] = birth
    # Bottom-right block: the transposed pattern of allowed links at cost 0 (Jaqaman et al.),
    # so that every chosen link frees one (birth row, death column) pair to pair up.
    big[nr:, nc:] = np.where(np.isfinite(sub.T), 0.0, np.inf)
    r, c = linear_sum_assignment(big)
    linked = (r < nr) & (c < nc)
    match[live_r[r[linked]]] = live_c[c[linked]]
    return match


def link_frames(
    prev: np.ndarray,
    curr: np.ndarray,
    *,
    max_distance: float = 20.0,
    overlap_weight: float = 0.5,
    area_weight: float = 0.5,
    non_link_cost: float = 1.0,
) -> np.ndarray:
    """Link the objects of two consecutive ``(Y, X)`` label frames.

    Parameters
    ----------
    prev, curr : ndarray of int, shape (Y, X)
        Label frames ``t`` and ``t + 1`` (0 = background; ids unrelated between frames).
    max_distance : float
        Largest centroid displacement in pixels per frame for non-overlapping objects.
    overlap_weight, area_weight : float
        Weights of ``1 - IoU`` and of ``|ln(area ratio)|`` in the link cost.
    non_link_cost : float
        Cost of a death and of a birth; a link is chosen when it costs less than both together.

    Returns
    -------
    ndarray of int64, shape (k, 2)
        Linked ``(id in prev, id in curr)`` pairs.
    """
    a, b = frame_objects(prev), frame_objects(curr)
    cost = _link_costs(a, b, _pair_iou(prev, curr, a, b), max_distance, overlap_weight, area_weight)
    match = _solve_lap(cost, non_link_cost, non_link_cost)
    keep = match >= 0
    return np.stack([a.ids[keep], b.ids[match[keep]]], axis=1).astype(np.int64)


# --------------------------------------------------------------------------------------------
# The tracker
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class TrackingResult:
    """Tracks of a time-lapse in Cell Tracking Challenge form.

    Attributes
    ----------
    labels : ndarray of int32, shape (T, Y, X)
        The input masks relabelled so that every object carries its track id.
    tracks : ndarray of int64, shape (N, 4)
        Rows ``(track_id, start, end, parent)`` (frames inclusive, parent 0 for none), like
        ``res_track.txt``; sorted by track id.
    link_kind : dict of int to str
        For tracks with a parent: ``"division"`` or ``"gap"`` (continued over a missing frame).
    """

    labels: np.ndarray
    tracks: np.ndarray
    link_kind: dict

    @property
    def n_tracks(self) -> int:
        """Number of tracks."""
        return int(self.tracks.shape[0])

    @property
    def n_divisions(self) -> int:
        """Number of divisions (mothers with two daughters)."""
        return sum(1 for k in self.link_kind.values() if k == "division") // 2


def _check_stack(labels: np.ndarray) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.ndim != 3:
        raise ValueError(f"expected label frames of shape (T, Y, X), got {labels.shape}")
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"label frames must be integers, got {labels.dtype}")
    if labels.size and labels.min() < 0:
        raise ValueError("label frames contain negative ids")
    return labels


def _divisions(
    a: FrameObjects,
    b: FrameObjects,
    match: np.ndarray,
    max_distance: float,
    area_weight: float,
    division_cost: float,
) -> tuple[dict[int, list[int]], dict[int, int]]:
    """Mothers for newborn objects of frame t + 1.

    Returns ``divisions`` (mother row -> two daughter columns) and ``rescued`` (dead row ->
    newborn column, a plain link missed by the first assignment).
    """
    from scipy.optimize import linear_sum_assignment

    births = np.setdiff1d(np.arange(len(b)), match[match >= 0])
    if births.size == 0 or len(a) == 0:
        return {}, {}
    # Mother columns: a linked mother once (its linked object is the other daughter), a dead
    # one twice (both daughters are newborn).
    cols = [(i, int(match[i])) for i in range(len(a)) if match[i] >= 0]
    cols += [(i, -1) for i in range(len(a)) if match[i] < 0 for _ in range(2)]
    mother = np.array([c[0] for c in cols], dtype=np.intp)
    sister = np.array([c[1] for c in cols], dtype=np.intp)
    d = np.hypot(
        *(b.centroids[births][:, None, :] - a.centroids[mother][None, :, :]).transpose(2, 0, 1)
    )
    ab = b.areas[births][:, None].astype(float)
    sister_area = np.where(sister >= 0, b.areas[np.maximum(sister, 0)], ab)
    total = ab + sister_area  # a dead mother's pair is estimated as twice this daughter
    cost = (d / max_distance) ** 2 + area_weight * np.abs(np.log(total / a.areas[mother]))
    # Daughters are similar in size and each smaller than the mother.
    ok = (d <= max_distance) & (np.abs(np.log(ab / sister_area)) < np.log(2.5))
    ok &= ab < a.areas[mother]
    cost = np.where(ok & (cost < division_cost), cost, np.inf)
    full = np.full((births.size, len(cols) + births.size), np.inf)
    full[:, : len(cols)] = cost
    full[:, len(cols) :][np.diag_indices(births.size)] = division_cost
    r, c = linear_sum_assignment(full)
    chosen = c < len(cols)
    per_mother: dict[int, list[int]] = {}
    for row, col in zip(r[chosen], c[chosen], strict=True):
        per_mother.setdefault(int(mother[col]), []).append(int(births[row]))
    divisions, rescued = {}, {}
    for i, kids in per_mother.items():
        if match[i] >= 0:
            divisions[i] = [int(match[i]), kids[0]]
        elif len(kids) == 2:
            divisions[i] = kids
        else:
            rescued[i] = kids[0]
    return divisions, rescued


def typical_diameter(labels: np.ndarray) -> float:
    """Median equivalent diameter ``2 sqrt(area / pi)`` in pixels of the objects of a stack.

    Looks at up to 5 frames spread over the stack; 10.0 when there is no object.
    """
    labels = _check_stack(labels)
    picks = np.unique(np.linspace(0, labels.shape[0] - 1, 5).round().astype(int))
    areas = np.concatenate([frame_objects(labels[t]).areas for t in picks])
    return float(2.0 * np.sqrt(np.median(areas) / np.pi)) if areas.size else 10.0


def track(
    labels: np.ndarray,
    *,
    max_distance: float | None = None,
    overlap_weight: float = 0.5,
    area_weight: float = 0.5,
    non_link_cost: float = 1.0,
    divisions: bool = True,
    division_cost: float = 1.5,
    gap_closing: bool = False,
    progress: Callable[[int], None] | None = None,
) -> TrackingResult:
    """Track the objects of a time-lapse of label frames.

    Parameters
    ----------
    labels : ndarray of int, shape (T, Y, X)
        One instance label image per frame (0 = background); ids need not agree across frames.
    max_distance : float, optional
        Largest centroid displacement per frame in pixels (objects that overlap may link
        from further away). Also the largest mother-daughter distance of a division.
        Default: the typical object diameter (:func:`typical_diameter`).
    overlap_weight, area_weight : float
        Weights of ``1 - IoU`` and of ``|ln(area ratio)|`` in the link cost (see module notes).
    non_link_cost : float
        Cost of a track ending or starting between two frames.
    divisions : bool
        Detect divisions (one mother at ``t``, two daughters at ``t + 1``).
    division_cost : float
        Largest accepted cost ``(d / max_distance) ** 2 + area_weight * |ln((a1 + a2) / a0)|``
        of a division (``d`` the mother-daughter distance, ``a1 + a2`` the daughters' area).
    gap_closing : bool, default False
        Join a track ending at ``t`` to one starting at ``t + 2`` (one missed frame) when their
        end and start lie within ``1.5 * max_distance``.
    progress : callable, optional
        Called with 1 after each frame (for a progress bar).

    Returns
    -------
    TrackingResult
        Relabelled masks ``(T, Y, X)`` int32 and the CTC track table.
    """
    labels = _check_stack(labels)
    n_frames = labels.shape[0]
    if max_distance is None:
        max_distance = typical_diameter(labels)
    objects: list[FrameObjects] = []
    tids: list[np.ndarray] = []  # track id of each object, per frame
    rows: dict[int, list[int]] = {}  # track id -> [start, end, parent]
    kind: dict[int, str] = {}
    next_id = 1

    def new_track(t: int, parent: int, how: str = "") -> int:
        nonlocal next_id
        tid = next_id
        next_id += 1
        rows[tid] = [t, t, parent]
        if parent:
            kind[tid] = how
        return tid

    for t in range(n_frames):
        b = frame_objects(labels[t])
        ids = np.zeros(len(b), dtype=np.int64)
        if t == 0 or len(objects[-1]) == 0:
            for j in range(len(b)):
                ids[j] = new_track(t, 0)
        else:
            a, prev_ids = objects[-1], tids[-1]
            cost = _link_costs(
                a,
                b,
                _pair_iou(labels[t - 1], labels[t], a, b),
                max_distance,
                overlap_weight,
                area_weight,
            )
            match = _solve_lap(cost, non_link_cost, non_link_cost)
            div, rescued = ({}, {})
            if divisions:
                div, rescued = _divisions(a, b, match, max_distance, area_weight, division_cost)
            for i, j in rescued.items():
                match[i] = j
            taken = np.zeros(len(b), dtype=bool)
            for i, kids in div.items():
                for j in kids:
                    ids[j] = new_track(t, int(prev_ids[i]), "division")
                    taken[j] = True
            for i in np.flatnonzero(match >= 0):
                j = match[i]
                if i in div or taken[j]:
                    continue
                ids[j] = prev_ids[i]
                rows[int(prev_ids[i])][1] = t
                taken[j] = True
            for j in np.flatnonzero(~taken):
                ids[j] = new_track(t, 0)
        objects.append(b)
        tids.append(ids)
        if progress is not None:
            progress(1)

    if gap_closing and n_frames > 2:
        _close_gaps(objects, tids, rows, kind, max_distance, area_weight, non_link_cost)

    out = np.zeros(labels.shape, dtype=np.int32)
    from skimage.util import map_array

    for t in range(n_frames):
        if len(objects[t]):
            out[t] = map_array(labels[t], objects[t].ids, tids[t].astype(np.int64))
    table = np.array([[tid, *rows[tid]] for tid in sorted(rows)], dtype=np.int64).reshape(-1, 4)
    return TrackingResult(labels=out, tracks=table, link_kind=kind)


def _close_gaps(objects, tids, rows, kind, max_distance, area_weight, non_link_cost) -> None:
    """Join tracks ending at t (without daughters) to parentless tracks starting at t + 2."""
    from scipy.optimize import linear_sum_assignment

    has_child = {r[2] for r in rows.values() if r[2]}
    n_frames = len(objects)
    where = [
        {int(tid): k for k, tid in enumerate(tids[t])} for t in range(n_frames)
    ]  # track id -> object index, per frame
    gate = 1.5 * max_distance
    for t in range(n_frames - 2):
        ends = [tid for tid in tids[t].tolist() if rows[tid][1] == t and tid not in has_child]
        starts = [tid for tid in tids[t + 2].tolist() if rows[tid][0] == t + 2 and not rows[tid][2]]
        if not ends or not starts:
            continue
        pa = np.array([objects[t].centroids[where[t][e]] for e in ends])
        pb = np.array([objects[t + 2].centroids[where[t + 2][s]] for s in starts])
        aa = np.array([objects[t].areas[where[t][e]] for e in ends], dtype=float)
        ab = np.array([objects[t + 2].areas[where[t + 2][s]] for s in starts], dtype=float)
        d = np.hypot(*(pa[:, None, :] - pb[None, :, :]).transpose(2, 0, 1))
        cost = (d / gate) ** 2 + area_weight * np.abs(np.log(ab[None, :] / aa[:, None]))
        cost = np.where(d <= gate, cost, np.inf)
        full = np.full((len(ends), len(starts) + len(ends)), np.inf)
        full[:, : len(starts)] = cost
        full[:, len(starts) :][np.diag_indices(len(ends))] = non_link_cost
        r, c = linear_sum_assignment(full)
        for i, j in zip(r, c, strict=True):
            if j < len(starts):
                rows[starts[j]][2] = ends[i]
                kind[starts[j]] = "gap"
                has_child.add(ends[i])


# --------------------------------------------------------------------------------------------
# Lineages, growth and quality flags
# --------------------------------------------------------------------------------------------


def lineage_table(tracks: np.ndarray, link_kind: dict | None = None):
    """One row per track with its place in the lineage.

    Parameters
    ----------
    tracks : array_like of int, shape (N, 4)
        Rows ``(track_id, start, end, parent)`` (CTC ``res_track.txt`` / ``man_track.txt``).
    link_kind : dict, optional
        Track id -> ``"division"`` / ``"gap"`` (from :class:`TrackingResult`); without it a
        parent with two or more children is a division and one with a single child a gap.

    Returns
    -------
    pandas.DataFrame
        Columns ``track_id, start, end, parent, n_frames, link`` (``""``, ``"division"`` or
        ``"gap"``), ``cell_id`` (the first track of a chain of gap links: one cell), ``root``
        (the founding track), ``generation`` (0 for founders, +1 per division) and
        ``n_daughters``.
    """
    import pandas as pd

    arr = np.asarray(tracks, dtype=np.int64).reshape(-1, 4)
    parent = {int(r[0]): int(r[3]) for r in arr}
    children: dict[int, list[int]] = {}
    for tid, p in parent.items():
        if p:
            children.setdefault(p, []).append(tid)
    if link_kind is None:
        link_kind = {
            tid: ("division" if len(children.get(p, [])) >= 2 else "gap")
            for tid, p in parent.items()
            if p
        }
    cell, root, gen = {}, {}, {}
    for tid in sorted(parent, key=lambda k: arr[arr[:, 0] == k, 1][0]):
        p = parent[tid]
        if not p or p not in parent:
            cell[tid], root[tid], gen[tid] = tid, tid, 0
            continue
        root[tid] = root.get(p, p)
        if link_kind.get(tid) == "gap":
            cell[tid], gen[tid] = cell.get(p, p), gen.get(p, 0)
        else:
            cell[tid], gen[tid] = tid, gen.get(p, 0) + 1
    return pd.DataFrame(
        {
            "track_id": arr[:, 0],
            "start": arr[:, 1],
            "end": arr[:, 2],
            "parent": arr[:, 3],
            "n_frames": arr[:, 2] - arr[:, 1] + 1,
            "link": [link_kind.get(int(t), "") for t in arr[:, 0]],
            "cell_id": [cell[int(t)] for t in arr[:, 0]],
            "root": [root[int(t)] for t in arr[:, 0]],
            "generation": [gen[int(t)] for t in arr[:, 0]],
            "n_daughters": [
                sum(1 for c in children.get(int(t), []) if link_kind.get(c) == "division")
                for t in arr[:, 0]
            ],
        }
    )


def growth_table(
    labels: np.ndarray, tracks: np.ndarray | None = None, *, frame_interval: float = 1.0
):
    """Per-cell area over time and the instantaneous growth rate.

    Parameters
    ----------
    labels : ndarray of int, shape (T, Y, X)
        Tracked masks: the label of an object is its track id (as :func:`track` returns).
    tracks : array_like, shape (N, 4), optional
        Track table; gap links join the areas of one cell (``cell_id`` column).
    frame_interval : float
        Time between frames in the unit the growth rate should use (1.0: per frame).

    Returns
    -------
    pandas.DataFrame
        One row per (frame, track): ``frame, track_id, cell_id, area`` (pixels),
        ``centroid_y, centroid_x`` (pixels) and ``growth_rate`` =
        ``(ln a(t+1) - ln a(t)) / (frame_interval * frames between)``, the relative area
        growth rate to the cell's next observation (NaN at a cell's last frame).
    """
    import pandas as pd

    labels = _check_stack(labels)
    parts = []
    for t in range(labels.shape[0]):
        objs = frame_objects(labels[t])
        parts.append(
            pd.DataFrame(
                {
                    "frame": t,
                    "track_id": objs.ids,
                    "area": objs.areas,
                    "centroid_y": objs.centroids[:, 0],
                    "centroid_x": objs.centroids[:, 1],
                }
            )
        )
    table = pd.concat(parts, ignore_index=True)
    cell = {}
    if tracks is not None:
        lin = lineage_table(tracks)
        cell = dict(zip(lin["track_id"].tolist(), lin["cell_id"].tolist(), strict=True))
    table.insert(2, "cell_id", [cell.get(int(t), int(t)) for t in table["track_id"]])
    table = table.sort_values(["cell_id", "frame"], kind="stable").reset_index(drop=True)
    nxt = table.groupby("cell_id")[["area", "frame"]].shift(-1)
    log_step = np.log(nxt["area"].to_numpy(float)) - np.log(table["area"].to_numpy(float))
    table["growth_rate"] = log_step / (
        frame_interval * (nxt["frame"].to_numpy(float) - table["frame"])
    )
    return table.sort_values(["frame", "track_id"], kind="stable").reset_index(drop=True)


def area_jump_flags(growth, threshold: float = 0.3):
    """Flag cells whose area jumps between consecutive observations (a sign of merge errors).

    A step is flagged when ``|a(t+1) - a(t)| / a(t) >= threshold`` (relative to the earlier
    area; with 0.3: a 30% jump either way).

    Parameters
    ----------
    growth : pandas.DataFrame
        The output of :func:`growth_table`.
    threshold : float
        Relative area change that counts as a jump.

    Returns
    -------
    per_cell : pandas.DataFrame
        ``cell_id, n_steps, n_jumps, max_jump, flagged`` per cell.
    error_rate : dict
        ``step_error_rate`` (flagged steps / all steps), ``cell_error_rate`` (flagged cells /
        cells with at least one step), ``n_steps``, ``n_jumps``, ``n_cells``, ``n_flagged``.
    """
    import pandas as pd

    g = growth.sort_values(["cell_id", "frame"], kind="stable")
    nxt = g.groupby("cell_id")["area"].shift(-1)
    rel = (nxt - g["area"]).abs() / g["area"]
    steps = pd.DataFrame({"cell_id": g["cell_id"], "jump": rel}).dropna()
    steps["flag"] = steps["jump"] >= threshold
    per = steps.groupby("cell_id").agg(
        n_steps=("jump", "size"), n_jumps=("flag", "sum"), max_jump=("jump", "max")
    )
    per["flagged"] = per["n_jumps"] > 0
    per = per.reset_index()
    n_steps, n_jumps = int(len(steps)), int(steps["flag"].sum())
    rates = {
        "n_steps": n_steps,
        "n_jumps": n_jumps,
        "step_error_rate": n_jumps / n_steps if n_steps else 0.0,
        "n_cells": int(len(per)),
        "n_flagged": int(per["flagged"].sum()),
        "cell_error_rate": float(per["flagged"].mean()) if len(per) else 0.0,
    }
    return per, rates


def plot_growth_histogram(growth, *, unit: str = "1/frame"):
    """Histogram of instantaneous growth rates; returns a matplotlib Figure (Agg)."""
    from matplotlib.figure import Figure

    rates = growth["growth_rate"].to_numpy(float)
    rates = rates[np.isfinite(rates)]
    fig = Figure(figsize=(5, 3.5), dpi=100)
    ax = fig.add_subplot()
    ax.hist(rates, bins=40, color="#4c72b0")
    if rates.size:
        med = float(np.median(rates))
        ax.axvline(med, color="k", ls="--", lw=1, label=f"median {med:.3f}")
        ax.legend(frameon=False)
    ax.set_xlabel(f"growth rate d ln(area)/dt ({unit})")
    ax.set_ylabel("cell-frames")
    ax.set_title(f"Instantaneous growth rate ({rates.size} steps)")
    fig.tight_layout()
    return fig


def plot_colony_growth(labels: np.ndarray, growth, frame: int = -1, *, unit: str = "1/frame"):
    """Map of one frame, each cell coloured by its mean growth rate over its life.

    Parameters
    ----------
    labels : ndarray of int, shape (T, Y, X)
        Tracked masks (label = track id).
    growth : pandas.DataFrame
        :func:`growth_table` of the same masks.
    frame : int
        Frame to draw (default: last).

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.figure import Figure

    labels = _check_stack(labels)
    lab = labels[frame]
    mean_rate = growth.groupby("cell_id")["growth_rate"].mean()
    cell_of = dict(zip(growth["track_id"].tolist(), growth["cell_id"].tolist(), strict=False))
    ids = np.unique(lab[lab > 0])
    values = np.array([mean_rate.get(cell_of.get(int(i), int(i)), np.nan) for i in ids])
    img = np.full(lab.shape, np.nan)
    if ids.size:
        lut_pos = np.searchsorted(ids, lab)
        inside = lab > 0
        img[inside] = values[lut_pos[inside]]
    finite = values[np.isfinite(values)]
    lim = float(np.percentile(np.abs(finite), 98)) if finite.size else 1.0
    fig = Figure(figsize=(5.5, 5), dpi=100)
    ax = fig.add_subplot()
    im = ax.imshow(img, cmap="coolwarm", vmin=-lim, vmax=lim, interpolation="nearest")
    ax.set_facecolor("#202020")
    ax.set_xticks([])
    ax.set_yticks([])
    n = labels.shape[0]
    ax.set_title(f"Mean growth rate per cell, frame {frame % n}")
    fig.colorbar(im, ax=ax, shrink=0.8, label=f"d ln(area)/dt ({unit})")
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------------------------
# Files: label frames in, CTC result out
# --------------------------------------------------------------------------------------------

_NUMBER = re.compile(r"(\d+)(?!.*\d)")


def read_label_frames(source: str | os.PathLike) -> np.ndarray:
    """Read label frames from a folder of TIFFs or from one multi-page TIFF.

    Parameters
    ----------
    source : str or PathLike
        A folder whose ``*.tif`` / ``*.tiff`` files are frames, ordered by the last number in
        their names (``mask000.tif``, ``man_track012.tif``, ``t7_masks.tif``); or one TIFF of
        shape ``(T, Y, X)``.

    Returns
    -------
    ndarray of int32, shape (T, Y, X)

    Raises
    ------
    CellscapeError
        Missing input, no frames, frames of differing shapes, or non-integer data.
    """
    from . import io

    src = Path(source)
    if not src.exists():
        raise CellscapeError(src, "not found")
    if src.is_file():
        stack = io.read_labels(src)
        if stack.ndim == 2:
            stack = stack[None]
        if stack.ndim != 3:
            raise CellscapeError(src, f"expected label frames (T, Y, X), got shape {stack.shape}")
        return stack
    files = [p for p in src.iterdir() if p.suffix.lower() in (".tif", ".tiff") and p.is_file()]
    if not files:
        raise CellscapeError(src, "no .tif label frames in this folder")

    def key(p: Path):
        m = _NUMBER.search(p.stem)
        return (int(m.group(1)) if m else -1, p.name)

    frames = []
    for p in sorted(files, key=key):
        lab = io.read_labels(p)
        if lab.ndim != 2:
            raise CellscapeError(p, f"expected one (Y, X) label frame, got shape {lab.shape}")
        if frames and lab.shape != frames[0].shape:
            raise CellscapeError(
                p, f"frame is {lab.shape} but earlier frames are {frames[0].shape}"
            )
        frames.append(lab)
    return np.stack(frames)


def write_ctc_result(
    folder: str | os.PathLike,
    labels: np.ndarray,
    tracks: np.ndarray,
    *,
    digits: int = 3,
) -> Path:
    """Write a tracking result in the Cell Tracking Challenge ``<seq>_RES`` layout.

    Writes ``mask000.tif`` ... (uint16 labels = track ids) and ``res_track.txt``, each
    atomically, so the challenge's own evaluation software can score the folder.

    Parameters
    ----------
    folder : str or PathLike
        Output folder (created).
    labels : ndarray of int, shape (T, Y, X)
        Tracked masks.
    tracks : array_like, shape (N, 4)
        Rows ``(track_id, start, end, parent)``.
    digits : int
        Digits of the frame number in the file names (3 for most CTC sets, 4 for long ones).
    """
    from . import io
    from .datasets import write_res_track

    folder = Path(folder)
    labels = _check_stack(labels)
    digits = max(digits, len(str(labels.shape[0] - 1)))
    for t in range(labels.shape[0]):
        io.write_labels(folder / f"mask{t:0{digits}d}.tif", labels[t])
    write_res_track(folder / "res_track.txt", tracks)
    return folder


def read_ctc_result(folder: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Read a ``<seq>_RES`` folder: ``mask<T>.tif`` frames and ``res_track.txt``.

    Returns
    -------
    labels : ndarray of int32, shape (T, Y, X)
    tracks : ndarray of int64, shape (N, 4)
    """
    from . import io
    from .datasets import read_man_track

    folder = Path(folder)
    if not folder.is_dir():
        raise CellscapeError(folder, "folder not found")
    masks = {}
    for p in folder.iterdir():
        m = re.fullmatch(r"mask(\d+)\.tiff?", p.name, flags=re.IGNORECASE)
        if m:
            masks[int(m.group(1))] = p
    if not masks:
        raise CellscapeError(folder, "no mask<T>.tif frames")
    labels = np.stack([io.read_labels(masks[t]) for t in sorted(masks)])
    return labels, read_man_track(folder / "res_track.txt")


def save_figure(fig, path: str | os.PathLike, dpi: int = 100) -> Path:
    """Save a matplotlib figure atomically (PNG by the file suffix)."""
    from .io import atomic_path

    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi)
    return Path(path)
