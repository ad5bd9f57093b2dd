"""Tests for cellscape.metrics on small label images worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cellscape import metrics as M

APPROX = {"rel": 1e-12, "abs": 1e-12}


def approx(x):
    return pytest.approx(x, **APPROX)


# --------------------------------------------------------------------------------------------
# Main hand-worked example (6x6), non-consecutive predicted ids.
#
# GT: cell 1 = 2x2 square top-left (4 px), cell 2 = 2x2 top-right (4 px),
#     cell 3 = 2x3 block rows 3-4, cols 0-2 (6 px).
# Pred: 7 = (0,0),(0,1),(1,0),(2,0) (4 px)  -> covers 3 px of GT1 + 1 extra
#       5 = rows 1-2, cols 4-5 (4 px)       -> covers 2 px of GT2 (rows 1 only) + 2 extra
#       9 = rows 3-4, cols 0-1 (4 px)       -> inside GT3
#       4 = (5,5) (1 px)                    -> touches nothing
# --------------------------------------------------------------------------------------------
GT_A = np.array(
    [
        [1, 1, 0, 0, 2, 2],
        [1, 1, 0, 0, 2, 2],
        [0, 0, 0, 0, 0, 0],
        [3, 3, 3, 0, 0, 0],
        [3, 3, 3, 0, 0, 0],
        [0, 0, 0, 0, 0, 0],
    ]
)
PRED_A = np.array(
    [
        [7, 7, 0, 0, 0, 0],
        [7, 0, 0, 0, 5, 5],
        [7, 0, 0, 0, 5, 5],
        [9, 9, 0, 0, 0, 0],
        [9, 9, 0, 0, 0, 0],
        [0, 0, 0, 0, 0, 4],
    ]
)
# IoUs: GT1-P7: I=3, U=4+4-3=5 -> 3/5 = 0.6
#       GT2-P5: I=2, U=4+4-2=6 -> 1/3
#       GT3-P9: I=4, U=6+4-4=6 -> 2/3
#       everything else 0.


def test_overlap_matrix_hand_example():
    ious, gt_ids, pred_ids = M.overlap_matrix(GT_A, PRED_A)
    assert gt_ids.tolist() == [1, 2, 3]
    assert pred_ids.tolist() == [4, 5, 7, 9]
    expected = np.array(
        [
            [0, 0, 3 / 5, 0],
            [0, 1 / 3, 0, 0],
            [0, 0, 0, 2 / 3],
        ]
    )
    assert ious.dtype == np.float64
    assert ious.shape == (3, 4)
    np.testing.assert_allclose(ious, expected, rtol=0, atol=1e-15)


def test_overlap_table_counts_and_areas():
    t = M.overlap_table(GT_A, PRED_A)
    assert t.gt_areas.tolist() == [4, 4, 6]
    assert t.pred_areas.tolist() == [1, 4, 4, 4]  # ids 4, 5, 7, 9
    inter = t.intersection_matrix()
    assert inter.tolist() == [[0, 0, 3, 0], [0, 2, 0, 0], [0, 0, 0, 4]]
    assert t.union.tolist() == [5, 6, 6]  # pairs sorted by gt: (1,7), (2,5), (3,9)


def test_shape_mismatch_raises():
    with pytest.raises(ValueError, match="same shape"):
        M.overlap_matrix(np.zeros((4, 4), int), np.zeros((4, 5), int))
    with pytest.raises(ValueError, match="same shape"):
        M.average_precision(np.zeros((2, 4, 4), int), np.zeros((4, 4), int))


def test_bad_labels_raise():
    with pytest.raises(TypeError):
        M.overlap_table(np.zeros((3, 3), float), np.zeros((3, 3), int))
    with pytest.raises(ValueError, match="negative"):
        M.overlap_table(np.full((3, 3), -1), np.zeros((3, 3), int))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        M.match(GT_A, PRED_A, 1.5)


def test_match_hand_example():
    m = M.match(GT_A, PRED_A, 0.5)
    # GT1-P7 (0.6) and GT3-P9 (2/3) pass 0.5; GT2-P5 (1/3) does not.
    assert m.gt_ids.tolist() == [1, 3]
    assert m.pred_ids.tolist() == [7, 9]
    assert m.iou.tolist() == approx([0.6, 2 / 3])
    # Dice: 2*3/(4+4) = 0.75 ; 2*4/(6+4) = 0.8
    assert m.dice.tolist() == approx([0.75, 0.8])
    assert (m.tp, m.fp, m.fn) == (2, 2, 1)
    assert m.precision == approx(2 / 4)
    assert m.recall == approx(2 / 3)
    assert m.f1 == approx(4 / 7)  # 2*2 / (2*2 + 2 + 1)
    assert m.average_precision == approx(2 / 5)  # 2 / (2 + 2 + 1)


def test_threshold_is_inclusive():
    # GT1-P7 has IoU exactly 3/5 = 0.6: a match at 0.6 (>=), not above it.
    m06 = M.match(GT_A, PRED_A, 0.6)
    assert m06.gt_ids.tolist() == [1, 3]
    m061 = M.match(GT_A, PRED_A, 0.61)
    assert m061.gt_ids.tolist() == [3]  # only GT3-P9 (2/3)
    # 0.667 > 2/3 -> nothing
    assert M.match(GT_A, PRED_A, 0.667).tp == 0


def test_average_precision_hand_example():
    ap = M.average_precision(GT_A, PRED_A)
    # t=0.5: 2/(2+2+1)=0.4 ; t=0.6: same (0.6 >= 0.6) ; t>=0.7: TP=0 -> 0
    assert ap.shape == (5,)
    assert ap.tolist() == approx([0.4, 0.4, 0.0, 0.0, 0.0])
    assert M.average_precision(GT_A, PRED_A, 0.65) == approx(1 / 6)  # 1/(1+3+2)
    assert isinstance(M.average_precision(GT_A, PRED_A, 0.65), float)


def test_precision_recall_f1_hand_example():
    p, r, f = M.precision_recall_f1(GT_A, PRED_A, (0.5, 0.65, 0.7))
    # 0.5: TP2 FP2 FN1 ; 0.65: TP1 FP3 FN2 ; 0.7: TP0 FP4 FN3
    assert p.tolist() == approx([2 / 4, 1 / 4, 0.0])
    assert r.tolist() == approx([2 / 3, 1 / 3, 0.0])
    assert f.tolist() == approx([4 / 7, 2 / 7, 0.0])  # 2TP/(2TP+FP+FN): 4/7, 2/7, 0


def test_dsb2018_hand_example():
    # thresholds 0.50 0.55 0.60: TP=2 -> 0.4 each; 0.65: only 2/3 passes -> 1/(1+3+2) = 1/6;
    # 0.70 ... 0.95: 0.  Score = (3*0.4 + 1/6) / 10 = 41/300
    assert M.dsb2018_score(GT_A, PRED_A) == approx(41 / 300)


def test_matched_jaccard_dice_hand_example():
    j, d = M.matched_jaccard_dice(GT_A, PRED_A)
    assert j.tolist() == approx([0.6, 2 / 3])
    assert d.tolist() == approx([0.75, 0.8])
    # Dice = 2J/(1+J)
    np.testing.assert_allclose(d, 2 * j / (1 + j), rtol=1e-14)


def test_sm_similarity_hand_example():
    sm = M.sm_similarity(GT_A, PRED_A)
    # GT1: best overlap P7 (3 px): S = 2*3/(4+4) = 0.75
    # GT2: best overlap P5 (2 px): S = 2*2/(4+4) = 0.5
    # GT3: best overlap P9 (4 px): S = 2*4/(6+4) = 0.8
    assert sm.gt_ids.tolist() == [1, 2, 3]
    assert sm.pred_ids.tolist() == [7, 5, 9]
    assert sm.scores.tolist() == approx([0.75, 0.5, 0.8])
    assert sm.mean == approx((0.75 + 0.5 + 0.8) / 3)
    assert sm.fraction == approx(2 / 3)  # 0.75 and 0.8 >= 0.6
    # k is inclusive: S = 0.75 exactly counts at k=0.75, not at 0.76
    assert M.sm_similarity(GT_A, PRED_A, k=0.75).fraction == approx(2 / 3)
    assert M.sm_similarity(GT_A, PRED_A, k=0.76).fraction == approx(1 / 3)
    assert M.sm_similarity(GT_A, PRED_A, k=0.5).fraction == approx(1.0)


def test_sm_uses_largest_overlap_not_best_similarity():
    # One row. GT 1 = cols 0-5 (6 px). Pred 2 = cols 0-3 and 6-13 (12 px), pred 3 = cols 4-5.
    gt = np.array([[1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0]])
    pred = np.array([[2, 2, 2, 2, 3, 3, 2, 2, 2, 2, 2, 2, 2, 2]])
    # pred 2: 12 px, overlap 4 -> S = 8/(6+12) = 4/9 ; pred 3: 2 px, overlap 2 -> S = 4/8 = 0.5
    sm = M.sm_similarity(gt, pred)
    assert sm.pred_ids.tolist() == [2]
    assert sm.scores.tolist() == approx([4 / 9])


def test_aji_hand_example_with_unused_pred():
    res = M.aji_components(GT_A, PRED_A)
    # GT1 -> P7: C+=3, U+=5 ; GT2 -> P5: C+=2, U+=6 ; GT3 -> P9: C+=4, U+=6
    # P4 (1 px) never used: U += 1.   C = 9, U = 18 -> 0.5
    assert (res.intersection, res.union) == (9, 18)
    assert res.pred_ids.tolist() == [7, 5, 9]
    assert M.aggregated_jaccard_index(GT_A, PRED_A) == approx(0.5)


def test_ctc_seg_hand_example_half_is_not_a_match():
    seg = M.ctc_seg(GT_A, PRED_A)
    # GT1: |∩|=3 > 0.5*4=2 -> J = 3/5
    # GT2: |∩|=2, not > 2 (exactly half) -> J = 0
    # GT3: |∩|=4 > 3 -> J = 4/6
    assert seg.pred_ids.tolist() == [7, 0, 9]
    assert seg.scores.tolist() == approx([0.6, 0.0, 2 / 3])
    assert seg.mean == approx((0.6 + 2 / 3) / 3)  # = 19/45


# --------------------------------------------------------------------------------------------
# Perfect match, non-consecutive ids on both sides.
# --------------------------------------------------------------------------------------------
GT_P = np.array(
    [
        [10, 10, 0, 0],
        [10, 10, 0, 3],
        [0, 0, 0, 3],
        [0, 0, 0, 3],
    ]
)
PRED_P = np.where(GT_P == 10, 2, np.where(GT_P == 3, 40, 0))


def test_perfect_match():
    m = M.match(GT_P, PRED_P)
    assert (m.tp, m.fp, m.fn) == (2, 0, 0)
    assert m.gt_ids.tolist() == [3, 10]
    assert m.pred_ids.tolist() == [40, 2]
    assert M.average_precision(GT_P, PRED_P).tolist() == approx([1.0] * 5)
    assert M.dsb2018_score(GT_P, PRED_P) == approx(1.0)
    assert M.aggregated_jaccard_index(GT_P, PRED_P) == approx(1.0)
    assert M.ctc_seg(GT_P, PRED_P).mean == approx(1.0)
    sm = M.sm_similarity(GT_P, PRED_P)
    assert (sm.mean, sm.fraction) == (approx(1.0), approx(1.0))
    p, r, f = M.precision_recall_f1(GT_P, PRED_P, 0.9)
    assert (p.tolist(), r.tolist(), f.tolist()) == ([1.0], [1.0], [1.0])


def test_large_ids_and_dtypes():
    # Huge ids take the np.unique path; results must not depend on the id values.
    gt = GT_A.astype(np.uint64) * np.uint64(10**15)
    pred = PRED_A.astype(np.int64) + 7 * 10**12 * (PRED_A > 0)
    ious, gt_ids, pred_ids = M.overlap_matrix(gt, pred)
    ref, _, _ = M.overlap_matrix(GT_A, PRED_A)
    np.testing.assert_array_equal(ious, ref)
    assert gt_ids.tolist() == [10**15, 2 * 10**15, 3 * 10**15]
    assert M.aggregated_jaccard_index(gt, pred) == approx(0.5)
    # Boolean masks are one object each: GT has 14 px, pred 13 px, intersection 9
    # (3 + 2 + 4 px of the cell overlaps) -> IoU = 9 / (14 + 13 - 9) = 9/18
    ious_b, _, _ = M.overlap_matrix(GT_A > 0, PRED_A > 0)
    assert ious_b.shape == (1, 1) and ious_b[0, 0] == approx(0.5)


# --------------------------------------------------------------------------------------------
# Empty images.
# --------------------------------------------------------------------------------------------
EMPTY = np.zeros((4, 4), dtype=np.int32)
ONE = np.zeros((4, 4), dtype=np.int32)
ONE[1:3, 1:3] = 5  # 4 px


def test_both_empty_is_perfect():
    m = M.match(EMPTY, EMPTY)
    assert (m.tp, m.fp, m.fn) == (0, 0, 0)
    assert M.average_precision(EMPTY, EMPTY).tolist() == [1.0] * 5
    assert M.dsb2018_score(EMPTY, EMPTY) == 1.0
    p, r, f = M.precision_recall_f1(EMPTY, EMPTY)
    assert p.tolist() == r.tolist() == f.tolist() == [1.0] * 5
    assert M.aggregated_jaccard_index(EMPTY, EMPTY) == 1.0
    seg = M.ctc_seg(EMPTY, EMPTY)
    assert math.isnan(seg.mean) and seg.scores.size == 0
    sm = M.sm_similarity(EMPTY, EMPTY)
    assert math.isnan(sm.mean) and math.isnan(sm.fraction)
    j, d = M.matched_jaccard_dice(EMPTY, EMPTY)
    assert j.size == d.size == 0
    ious, g, p_ = M.overlap_matrix(EMPTY, EMPTY)
    assert ious.shape == (0, 0) and g.size == 0 and p_.size == 0


def test_empty_gt_with_prediction():
    m = M.match(EMPTY, ONE)
    assert (m.tp, m.fp, m.fn) == (0, 1, 0)
    assert m.average_precision == 0.0  # 0/(0+1+0)
    assert m.precision == 0.0  # 0/1
    assert m.recall == 1.0  # 0/0: nothing to find
    assert m.f1 == 0.0  # 0/(0+1+0)
    assert M.aggregated_jaccard_index(EMPTY, ONE) == 0.0  # C=0, U=4 (unused pred)
    assert math.isnan(M.ctc_seg(EMPTY, ONE).mean)
    ious, _, _ = M.overlap_matrix(EMPTY, ONE)
    assert ious.shape == (0, 1)


def test_empty_prediction():
    m = M.match(ONE, EMPTY)
    assert (m.tp, m.fp, m.fn) == (0, 0, 1)
    assert m.average_precision == 0.0
    assert m.precision == 1.0  # 0/0: nothing wrongly predicted
    assert m.recall == 0.0
    assert m.f1 == 0.0
    assert M.dsb2018_score(ONE, EMPTY) == 0.0
    assert M.aggregated_jaccard_index(ONE, EMPTY) == 0.0  # C=0, U=|G|=4
    assert M.aji_components(ONE, EMPTY).union == 4
    seg = M.ctc_seg(ONE, EMPTY)
    assert seg.scores.tolist() == [0.0] and seg.mean == 0.0
    sm = M.sm_similarity(ONE, EMPTY)
    assert sm.scores.tolist() == [0.0] and sm.pred_ids.tolist() == [0]
    assert (sm.mean, sm.fraction) == (0.0, 0.0)


# --------------------------------------------------------------------------------------------
# Split: one GT covered by two predictions.
# --------------------------------------------------------------------------------------------
def test_split_exactly_half():
    gt = np.array([[1, 1, 1, 1], [1, 1, 1, 1], [0, 0, 0, 0]])
    pred = np.array([[1, 1, 2, 2], [1, 1, 2, 2], [0, 0, 0, 0]])
    # GT (8 px) vs each half (4 px): I=4, U=8 -> IoU 0.5 for both.
    ious, _, _ = M.overlap_matrix(gt, pred)
    assert ious.tolist() == [[0.5, 0.5]]
    # Both are candidates at 0.5 but the matching is one-to-one: TP=1, FP=1, FN=0.
    m = M.match(gt, pred, 0.5)
    assert (m.tp, m.fp, m.fn) == (1, 1, 0)
    assert m.average_precision == approx(0.5)  # 1/(1+1+0)
    assert M.match(gt, pred, 0.51).tp == 0
    # AJI: tie -> smaller pred id 1: C=4, U=8; pred 2 unused: U += 4 -> 4/12
    res = M.aji_components(gt, pred)
    assert (res.intersection, res.union) == (4, 12)
    assert res.pred_ids.tolist() == [1]
    # SEG: |∩| = 4 is exactly half of 8 -> no match -> 0
    assert M.ctc_seg(gt, pred).mean == 0.0
    # SM: either half, S = 2*4/(8+4) = 2/3 >= 0.6
    sm = M.sm_similarity(gt, pred)
    assert sm.scores.tolist() == approx([2 / 3])
    assert sm.fraction == 1.0


def test_split_unequal():
    gt = np.array([[1, 1, 1, 1], [1, 1, 1, 1]])
    pred = np.array([[3, 3, 3, 8], [3, 3, 3, 8]])
    # GT 8 px; pred 3: 6 px inside -> IoU 6/8 ; pred 8: 2 px inside -> IoU 2/8
    m = M.match(gt, pred)
    assert m.pred_ids.tolist() == [3]
    assert (m.tp, m.fp, m.fn) == (1, 1, 0)
    # AJI: C=6, U=8, + unused pred 8 (2 px) -> 6/10
    assert M.aggregated_jaccard_index(gt, pred) == approx(0.6)
    # SEG: 6 > 4 -> J = 6/8
    assert M.ctc_seg(gt, pred).mean == approx(0.75)
    # SM: S = 2*6/(8+6) = 6/7
    assert M.sm_similarity(gt, pred).mean == approx(6 / 7)


# --------------------------------------------------------------------------------------------
# Merge: two GT covered by one prediction; AJI counts the prediction twice.
# --------------------------------------------------------------------------------------------
def test_merge_aji_pred_picked_twice():
    gt = np.array(
        [
            [1, 1, 2, 0],
            [1, 1, 2, 0],
            [0, 0, 0, 0],
        ]
    )
    pred = np.array(
        [
            [5, 5, 5, 5],
            [5, 5, 5, 0],
            [0, 0, 0, 0],
        ]
    )
    # GT1 4 px, GT2 2 px, pred 5 has 7 px.
    # GT1-P5: I=4, U=7 (IoU 4/7) ; GT2-P5: I=2, U=7 (IoU 2/7). Both GT pick P5.
    res = M.aji_components(gt, pred)
    # Kumar AJI: C = 4 + 2 = 6 ; U = 7 + 7 = 14 (pred area counted once per GT) -> 3/7
    # (counting P5 once would give 6/7)
    assert (res.intersection, res.union) == (6, 14)
    assert res.pred_ids.tolist() == [5, 5]
    assert M.aggregated_jaccard_index(gt, pred) == approx(3 / 7)
    # Matching at 0.5: GT1-P5 (4/7 >= 0.5) only -> TP1 FP0 FN1 -> AP 1/2
    m = M.match(gt, pred)
    assert (m.tp, m.fp, m.fn) == (1, 0, 1)
    assert m.average_precision == approx(0.5)
    # SEG: GT1 4 > 2 -> 4/7 ; GT2 2 > 1 -> 2/7 ; mean 3/7
    seg = M.ctc_seg(gt, pred)
    assert seg.scores.tolist() == approx([4 / 7, 2 / 7])
    assert seg.mean == approx(3 / 7)
    # SM: GT1 S = 8/11 ; GT2 S = 4/9 ; fraction at k=0.6: 1/2
    sm = M.sm_similarity(gt, pred)
    assert sm.scores.tolist() == approx([8 / 11, 4 / 9])
    assert sm.fraction == approx(0.5)


def test_aji_gt_without_overlap_adds_area_only():
    gt = np.array([[1, 1, 0, 2, 2, 2]])
    pred = np.array([[4, 4, 0, 0, 0, 0]])
    # GT1-P4 perfect: C=2, U=2 ; GT2 (3 px) no overlap: U += 3 -> 2/5
    res = M.aji_components(gt, pred)
    assert (res.intersection, res.union) == (2, 5)
    assert res.pred_ids.tolist() == [4, 0]
    assert res.aji == approx(0.4)


def test_aji_picks_max_iou_not_max_intersection():
    gt = np.array([[1, 1, 1, 1, 0, 0, 0, 0, 0, 0]])
    pred = np.array([[2, 2, 3, 3, 3, 3, 3, 3, 3, 3]])
    # GT1 (4 px): P2 I=2, U=4 -> 0.5 ; P3 (8 px) I=2, U=10 -> 0.2 -> picks P2.
    # C = 2, U = 4 + unused P3 (8) = 12 -> 1/6
    res = M.aji_components(gt, pred)
    assert res.pred_ids.tolist() == [2]
    assert (res.intersection, res.union) == (2, 12)


def test_matching_maximises_number_of_matches_then_iou():
    gt = np.array([[1, 1, 1, 1, 2, 2]])
    pred = np.array([[8, 9, 9, 9, 9, 0]])
    # G1 (4 px) - P9 (4 px): I=3, U=5 -> 0.6
    # G1 - P8 (1 px):        I=1, U=4 -> 0.25
    # G2 (2 px) - P9:        I=1, U=5 -> 0.2
    # At 0.2 the maximum matching has 2 pairs (G1-P8, G2-P9), chosen over the single higher
    # IoU pair G1-P9 (IoU sum 0.6 > 0.45).
    m = M.match(gt, pred, 0.2)
    assert list(zip(m.gt_ids.tolist(), m.pred_ids.tolist(), strict=True)) == [(1, 8), (2, 9)]
    assert m.iou.tolist() == approx([0.25, 0.2])
    # Above 0.2, G2-P9 is not a candidate: G1 takes its best partner P9.
    m = M.match(gt, pred, 0.21)
    assert list(zip(m.gt_ids.tolist(), m.pred_ids.tolist(), strict=True)) == [(1, 9)]


# --------------------------------------------------------------------------------------------
# 3-D
# --------------------------------------------------------------------------------------------
def test_3d():
    gt = np.array(
        [
            [[1, 1, 0], [1, 1, 0], [0, 0, 2]],
            [[1, 1, 0], [1, 1, 0], [0, 0, 2]],
        ]
    )
    pred = np.array(
        [
            [[4, 4, 0], [4, 4, 0], [0, 0, 0]],
            [[4, 4, 0], [0, 0, 0], [0, 0, 6]],
        ]
    )
    # GT1 = 8 voxels, pred 4 = 6 voxels all inside GT1 -> IoU 6/8, Dice 12/14
    # GT2 = 2 voxels (z=0,1), pred 6 = 1 voxel inside -> IoU 1/2, Dice 2/3
    ious, gt_ids, pred_ids = M.overlap_matrix(gt, pred)
    np.testing.assert_allclose(ious, [[0.75, 0.0], [0.0, 0.5]], rtol=1e-14, atol=0)
    m = M.match(gt, pred, 0.5)
    assert m.tp == 2
    assert m.dice.tolist() == approx([12 / 14, 2 / 3])
    # AJI: C = 6 + 1 = 7, U = 8 + 2 = 10
    assert M.aggregated_jaccard_index(gt, pred) == approx(0.7)
    # SEG: GT1 6 > 4 -> 0.75 ; GT2 1 not > 1 -> 0
    assert M.ctc_seg(gt, pred).scores.tolist() == approx([0.75, 0.0])


# --------------------------------------------------------------------------------------------
# Randomised check against a brute-force loop
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(5))
def test_overlap_matrix_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    shape = (12, 15) if seed % 2 else (3, 7, 9)
    gt_pool = np.concatenate([[0, 0, 0], rng.choice(1000, size=6, replace=False) + 1])
    pred_pool = np.concatenate([[0, 0], rng.choice(50, size=8, replace=False) + 1])
    gt = rng.choice(gt_pool, size=shape)
    pred = rng.choice(pred_pool, size=shape)
    ious, gt_ids, pred_ids = M.overlap_matrix(gt, pred)
    ref_g = sorted(set(gt.ravel().tolist()) - {0})
    ref_p = sorted(set(pred.ravel().tolist()) - {0})
    assert gt_ids.tolist() == ref_g
    assert pred_ids.tolist() == ref_p
    ref = np.zeros((len(ref_g), len(ref_p)))
    for i, g in enumerate(ref_g):
        for j, p in enumerate(ref_p):
            a, b = gt == g, pred == p
            ref[i, j] = (a & b).sum() / (a | b).sum()
    np.testing.assert_allclose(ious, ref, rtol=1e-14, atol=0)
    # Also the np.unique pair path (forced by a tiny dense limit) must agree.
    old = M._DENSE_PAIR_LIMIT
    try:
        M._DENSE_PAIR_LIMIT = 0
        ious2, _, _ = M.overlap_matrix(gt, pred)
    finally:
        M._DENSE_PAIR_LIMIT = old
    np.testing.assert_array_equal(ious2, ious)


@pytest.mark.parametrize("seed", range(5))
def test_match_is_optimal_against_brute_force(seed):
    from itertools import permutations

    rng = np.random.default_rng(100 + seed)
    gt = rng.choice([0, 1, 2, 3, 4], size=(6, 6))
    pred = rng.choice([0, 5, 6, 7], size=(6, 6))
    ious, _, _ = M.overlap_matrix(gt, pred)
    thr = 0.1
    best = (0, 0.0)
    n_g, n_p = ious.shape
    # enumerate assignments of GT rows to distinct pred columns (or none)
    cols = list(range(n_p)) + [None] * n_g
    for perm in set(permutations(cols, n_g)):
        pairs = [(i, j) for i, j in enumerate(perm) if j is not None and ious[i, j] >= thr]
        key = (len(pairs), sum(ious[i, j] for i, j in pairs))
        if key[0] > best[0] or (key[0] == best[0] and key[1] > best[1] + 1e-12):
            best = key
    m = M.match(gt, pred, thr)
    assert m.tp == best[0]
    assert float(m.iou.sum()) == approx(best[1])
    assert len(set(m.gt_ids.tolist())) == m.tp == len(set(m.pred_ids.tolist()))


def test_many_objects_grid():
    # 64 x 64 grid of 16x16 squares (4096 objects); prediction shifted down by one row
    # (wrapping): every square keeps 15 of its 16 rows -> I = 240, U = 256 + 256 - 240 = 272.
    yy, xx = np.mgrid[:1024, :1024]
    gt = (yy // 16) * 64 + (xx // 16) + 1
    pred = np.roll(gt, 1, axis=0) * 3 + 1000  # different ids
    s = M.image_scores(gt, pred, thresholds=(0.85, 0.9))
    assert s["n_gt"] == s["n_pred"] == 4096
    assert s["tp@0.85"] == 4096  # 240/272 = 0.882
    assert s["tp@0.9"] == 0
    assert s["jaccard_mean"] == approx(240 / 272)
    assert s["aji"] == approx(240 / 272)
    assert s["seg"] == approx(240 / 272)


# --------------------------------------------------------------------------------------------
# Per-image dict and dataset aggregation
# --------------------------------------------------------------------------------------------
EXPECTED_KEYS = (
    ["n_gt", "n_pred"]
    + [f"{n}@{t}" for n in ("tp", "fp", "fn") for t in ("0.5", "0.6", "0.7", "0.8", "0.9")]
    + [
        f"{n}@{t}"
        for n in ("ap", "precision", "recall", "f1")
        for t in ("0.5", "0.6", "0.7", "0.8", "0.9")
    ]
    + [
        "dsb2018",
        "n_matched",
        "jaccard_sum",
        "dice_sum",
        "jaccard_mean",
        "dice_mean",
        "sm_mean",
        "sm_fraction",
        "sm_sum",
        "sm_n_correct",
        "aji",
        "aji_intersection",
        "aji_union",
        "seg",
        "seg_sum",
    ]
)


def test_image_scores_keys_and_values():
    s = M.image_scores(GT_A, PRED_A)
    assert list(s) == EXPECTED_KEYS
    assert (s["n_gt"], s["n_pred"]) == (3, 4)
    assert (s["tp@0.5"], s["fp@0.5"], s["fn@0.5"]) == (2, 2, 1)
    assert (s["tp@0.7"], s["fp@0.7"], s["fn@0.7"]) == (0, 4, 3)
    assert s["ap@0.6"] == approx(0.4)
    assert s["f1@0.5"] == approx(4 / 7)
    assert s["dsb2018"] == approx(41 / 300)
    assert s["n_matched"] == 2
    assert s["jaccard_mean"] == approx((0.6 + 2 / 3) / 2)
    assert s["dice_mean"] == approx((0.75 + 0.8) / 2)
    assert s["sm_mean"] == approx(2.05 / 3)
    assert s["sm_n_correct"] == 2
    assert s["aji"] == approx(0.5)
    assert (s["aji_intersection"], s["aji_union"]) == (9, 18)
    assert s["seg"] == approx(19 / 45)
    assert all(type(s[k]) is int for k in ("n_gt", "tp@0.5", "aji_union", "sm_n_correct"))
    assert all(type(v) in (int, float) for v in s.values())
    # DSB thresholds keys
    s2 = M.image_scores(GT_A, PRED_A, thresholds=(0.55, 0.65))
    assert s2["ap@0.55"] == approx(0.4)
    assert s2["ap@0.65"] == approx(1 / 6)


def test_summarize_pooled_vs_per_image():
    # Image A: the hand example (TP2 FP2 FN1 at 0.5). Image B: one perfect 2x2 cell.
    gt_b = np.zeros((3, 3), int)
    gt_b[:2, :2] = 1
    pred_b = gt_b * 6
    rows = [M.image_scores(GT_A, PRED_A), M.image_scores(gt_b, pred_b)]
    s = M.summarize(rows)
    assert s["n_images"] == 2
    assert (s["n_gt"], s["n_pred"]) == (4, 5)
    assert (s["tp@0.5"], s["fp@0.5"], s["fn@0.5"]) == (3, 2, 1)
    # AP@0.5: per-image mean (0.4 + 1) / 2 = 0.7 ; pooled 3 / (3 + 2 + 1) = 0.5
    assert s["ap@0.5"] == approx(0.7)
    assert s["ap_pooled@0.5"] == approx(0.5)
    # AP@0.7: mean (0 + 1)/2 = 0.5 ; pooled TP1 FP4 FN3 -> 1/8
    assert s["ap@0.7"] == approx(0.5)
    assert s["ap_pooled@0.7"] == approx(1 / 8)
    assert s["precision_pooled@0.5"] == approx(3 / 5)
    assert s["recall_pooled@0.5"] == approx(3 / 4)
    assert s["f1_pooled@0.5"] == approx(6 / 9)  # 2*3/(2*3 + 2 + 1)
    # DSB: mean of 41/300 and 1
    assert s["dsb2018"] == approx((41 / 300 + 1) / 2)
    # Jaccard over all matched cells: (0.6 + 2/3 + 1) / 3 = 34/45 ; per image mean 49/60
    assert s["jaccard_mean_pooled"] == approx(34 / 45)
    assert s["jaccard_mean"] == approx(((0.6 + 2 / 3) / 2 + 1) / 2)
    assert s["dice_mean_pooled"] == approx((0.75 + 0.8 + 1) / 3)
    # AJI: mean (0.5 + 1)/2 = 0.75 ; pooled (9 + 4) / (18 + 4) = 13/22
    assert s["aji"] == approx(0.75)
    assert s["aji_pooled"] == approx(13 / 22)
    # SEG: mean (19/45 + 1)/2 = 32/45 ; pooled (0.6 + 0 + 2/3 + 1) / 4 = 17/30
    assert s["seg"] == approx(32 / 45)
    assert s["seg_pooled"] == approx(17 / 30)
    # SM: mean (2.05/3 + 1)/2 ; pooled (0.75 + 0.5 + 0.8 + 1) / 4 ; fraction pooled 3/4
    assert s["sm_mean"] == approx((2.05 / 3 + 1) / 2)
    assert s["sm_mean_pooled"] == approx(3.05 / 4)
    assert s["sm_fraction_pooled"] == approx(3 / 4)
    assert s["sm_fraction"] == approx((2 / 3 + 1) / 2)


def test_summarize_skips_nan_and_evaluate():
    # Image 1 has no GT (SEG/SM nan) and no pred: AP 1. Image 2: the perfect example.
    ev = M.evaluate([(EMPTY, EMPTY), (GT_P, PRED_P)])
    assert len(ev.images) == 2
    assert math.isnan(ev.images[0]["seg"])
    assert ev.summary["seg"] == approx(1.0)  # nan skipped
    assert ev.summary["seg_pooled"] == approx(1.0)
    assert ev.summary["ap@0.9"] == approx(1.0)
    assert ev.summary["aji_pooled"] == approx(1.0)
    assert ev.summary == M.summarize(ev.images)
    only_empty = M.summarize([M.image_scores(EMPTY, EMPTY)])
    assert math.isnan(only_empty["seg"]) and math.isnan(only_empty["seg_pooled"])
    assert math.isnan(only_empty["jaccard_mean_pooled"])
    assert only_empty["ap_pooled@0.5"] == 1.0


def test_summarize_errors():
    with pytest.raises(ValueError):
        M.summarize([])
    a = M.image_scores(GT_A, PRED_A)
    b = M.image_scores(GT_A, PRED_A, thresholds=(0.5,))
    with pytest.raises(ValueError, match="different keys"):
        M.summarize([a, b])
