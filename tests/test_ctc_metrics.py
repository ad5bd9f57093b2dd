"""Cell Tracking Challenge DET and TRA on small hand-made cases worked out by hand.

Weights (challenge defaults): NS 5, FN 10, FP 1, ED 1, EA 1.5, EC 1.
AOGM0 = 10 * (reference vertices) + 1.5 * (reference edges); AOGM-D0 = 10 * vertices.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from cellscape import metrics

LEFT = (slice(1, 5), slice(1, 5))  # a 4x4 square, 16 pixels
RIGHT = (slice(1, 5), slice(10, 14))
BIG = (slice(1, 5), slice(1, 14))  # covers LEFT and RIGHT


def frames(*specs, shape=(6, 16)):
    """specs: per frame a dict {label: region}."""
    out = np.zeros((len(specs), *shape), dtype=np.int32)
    for t, spec in enumerate(specs):
        for label, region in spec.items():
            out[t][region] = label
    return out


def test_perfect_result_scores_one_whatever_its_labels():
    # One cell over 3 frames: 3 vertices, 2 track edges. AOGM = 0 -> TRA = DET = 1.
    gt = frames({1: LEFT}, {1: LEFT}, {1: LEFT})
    res = frames({7: LEFT}, {7: LEFT}, {7: LEFT})
    s = metrics.ctc_tracking_scores(gt, [[1, 0, 2, 0]], res, [[7, 0, 2, 0]])
    assert (s.ns, s.fn, s.fp, s.ed, s.ea, s.ec) == (0, 0, 0, 0, 0, 0)
    assert s.aogm0 == 10 * 3 + 1.5 * 2 == 33
    assert s.tra == 1.0 and s.det == 1.0


def test_missed_detection_costs_a_vertex_and_two_edges():
    # The result misses the cell in frame 1 and restarts it as a new track in frame 2.
    # FN = 1 (frame 1); both reference edges touch the missing vertex -> EA = 2.
    # AOGM = 10 + 2 * 1.5 = 13, AOGM0 = 33 -> TRA = 20/33.  DET = 1 - 10/30 = 2/3.
    gt = frames({1: LEFT}, {1: LEFT}, {1: LEFT})
    res = frames({5: LEFT}, {}, {6: LEFT})
    s = metrics.ctc_tracking_scores(gt, [[1, 0, 2, 0]], res, [[5, 0, 0, 0], [6, 2, 2, 0]])
    assert (s.fn, s.ea, s.ed, s.ec, s.fp, s.ns) == (1, 2, 0, 0, 0, 0)
    assert s.tra == pytest.approx(20 / 33)
    assert s.det == pytest.approx(2 / 3)
    assert metrics.ctc_det(gt, res) == pytest.approx(2 / 3)


def test_merged_cells_need_one_split():
    # One frame, two reference cells, one result object covering both: each reference cell
    # is > half covered, so the result vertex matches two -> NS = 1.
    # AOGM-D = 5, AOGM-D0 = 20 -> DET = 0.75; no edges, so TRA = 0.75 too.
    gt = frames({1: LEFT, 2: RIGHT})
    res = frames({1: BIG})
    s = metrics.ctc_tracking_scores(gt, [[1, 0, 0, 0], [2, 0, 0, 0]], res, [[1, 0, 0, 0]])
    assert (s.ns, s.fn, s.fp) == (1, 0, 0)
    assert s.det == pytest.approx(0.75)
    assert s.tra == pytest.approx(0.75)


def test_false_positive_and_exactly_half_is_not_a_match():
    # Reference: LEFT (16 px). Result: the top half of LEFT (8 px, exactly half: no match) and
    # an object far away. FN = 1, FP = 2 -> AOGM-D = 10 + 2 = 12 >= AOGM-D0 = 10 -> DET = 0.
    gt = frames({1: LEFT})
    res = frames({1: (slice(1, 3), slice(1, 5)), 2: RIGHT})
    s = metrics.ctc_tracking_scores(gt, [[1, 0, 0, 0]], res, [[1, 0, 0, 0], [2, 0, 0, 0]])
    assert (s.fn, s.fp) == (1, 2)
    assert s.det == 0.0
    # Just over half (9 of 16 pixels) matches: only the far object is a false positive.
    res2 = res.copy()
    res2[0, 3, 1] = 1
    assert metrics.ctc_det(gt, res2) == pytest.approx(1 - 1 / 10)


def test_division_continued_as_mother_changes_semantics_and_misses_an_edge():
    # Reference: mother 1 in frames 0-1 (LEFT), daughters 2 (LEFT) and 3 (RIGHT) in frame 2,
    # parent 1. Vertices 4; edges: 1 track link + 2 parent links = 3 -> AOGM0 = 40 + 4.5.
    # Result: track 1 continues into daughter 2 (a track link where the reference has a
    # parent link: EC = 1) and track 3 starts without parent (parent link missing: EA = 1).
    # AOGM = 1 + 1.5 = 2.5 -> TRA = 1 - 2.5 / 44.5.
    gt = frames({1: LEFT}, {1: LEFT}, {2: LEFT, 3: RIGHT})
    gt_tracks = [[1, 0, 1, 0], [2, 2, 2, 1], [3, 2, 2, 1]]
    res = frames({1: LEFT}, {1: LEFT}, {1: LEFT, 3: RIGHT})
    s = metrics.ctc_tracking_scores(gt, gt_tracks, res, [[1, 0, 2, 0], [3, 2, 2, 0]])
    assert (s.ec, s.ea, s.ed, s.fn, s.fp, s.ns) == (1, 1, 0, 0, 0, 0)
    assert (s.n_gt_vertices, s.n_gt_edges) == (4, 3)
    assert s.tra == pytest.approx(1 - 2.5 / 44.5)
    assert s.det == 1.0
    # The same result with the division written correctly scores 1.
    res_ok = frames({1: LEFT}, {1: LEFT}, {2: LEFT, 3: RIGHT})
    assert metrics.ctc_tra(gt, gt_tracks, res_ok, gt_tracks) == 1.0


def test_swapped_identities_cost_two_redundant_and_two_missing_edges():
    # Two cells that stay put; the result swaps their labels between frames 0 and 1.
    # Each result edge joins two different reference tracks: ED = 2; each reference edge has
    # no result edge: EA = 2. AOGM = 2 + 3 = 5, AOGM0 = 40 + 3 = 43 -> TRA = 38/43.
    gt = frames({1: LEFT, 2: RIGHT}, {1: LEFT, 2: RIGHT})
    res = frames({1: LEFT, 2: RIGHT}, {2: LEFT, 1: RIGHT})
    tracks = [[1, 0, 1, 0], [2, 0, 1, 0]]
    s = metrics.ctc_tracking_scores(gt, tracks, res, tracks)
    assert (s.ed, s.ea, s.ec) == (2, 2, 0)
    assert s.aogm == 5.0 and s.aogm0 == 43.0
    assert s.tra == pytest.approx(38 / 43)


def test_empty_reference_is_nan_and_bad_input_is_rejected():
    empty = np.zeros((2, 6, 16), dtype=np.int32)
    assert math.isnan(metrics.ctc_det(empty, empty))
    with pytest.raises(ValueError):
        metrics.ctc_det(empty, empty[:1])
    with pytest.raises(ValueError):
        metrics.ctc_det(empty, np.zeros((2, 5, 16), dtype=np.int32))
