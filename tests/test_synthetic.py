"""Tests for cellscape.synthetic (simulated microscopy with ground truth)."""

from __future__ import annotations

import numpy as np
import pytest
from skimage import measure

from cellscape import synthetic

# Small, fast configurations of every generator.
FAST = {
    "nuclei": lambda seed: synthetic.nuclei(shape=(128, 128), n_nuclei=15, seed=seed),
    "whole_cells": lambda seed: synthetic.whole_cells(shape=(128, 128), n_cells=6, seed=seed),
    "bacteria_phase": lambda seed: synthetic.bacteria_phase(
        shape=(128, 128), n_cells=25, seed=seed
    ),
    "zstack": lambda seed: synthetic.brightfield_zstack(
        shape=(64, 64), n_frames=8, dz=0.5, kind="mixed", seed=seed
    ),
    "timelapse": lambda seed: synthetic.timelapse(shape=(64, 64), n_frames=6, n_cells=4, seed=seed),
}


def _arrays(result) -> dict[str, np.ndarray]:
    return {k: v for k, v in vars(result).items() if isinstance(v, np.ndarray)}


def _check_labels(labels: np.ndarray) -> int:
    """int32, ids 1..N consecutive, each id one 4-connected component; returns N."""
    assert labels.dtype == np.int32
    ids = np.unique(labels)
    ids = ids[ids > 0]
    np.testing.assert_array_equal(ids, np.arange(1, len(ids) + 1))
    comp = measure.label(labels, background=0, connectivity=1)
    assert comp.max() == len(ids), "some id is split into several components"
    return len(ids)


def _adjacent_pairs(labels: np.ndarray) -> set[tuple[int, int]]:
    pairs = set()
    for a, b in (
        (labels[:, :-1], labels[:, 1:]),
        (labels[:-1, :], labels[1:, :]),
    ):
        m = (a != b) & (a > 0) & (b > 0)
        pairs |= {tuple(sorted(p)) for p in zip(a[m].tolist(), b[m].tolist(), strict=True)}
    return pairs


# --------------------------------------------------------------------------------------
# Generic properties
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(FAST))
def test_determinism(name):
    a, b, c = FAST[name](0), FAST[name](0), FAST[name](1)
    arr_a, arr_b, arr_c = _arrays(a), _arrays(b), _arrays(c)
    assert arr_a.keys() == arr_b.keys()
    for k in arr_a:
        np.testing.assert_array_equal(arr_a[k], arr_b[k], err_msg=k)
    main = {"zstack": "stack", "timelapse": "images"}.get(name, "image")
    assert arr_a[main].shape != arr_c[main].shape or not np.array_equal(arr_a[main], arr_c[main])
    assert not np.array_equal(arr_a["labels"], arr_c["labels"])


def test_results_are_frozen():
    s = FAST["nuclei"](0)
    with pytest.raises(AttributeError):
        s.image = None


# --------------------------------------------------------------------------------------
# nuclei
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.uint16, np.float32])
def test_nuclei_shape_dtype(dtype):
    s = synthetic.nuclei(shape=(96, 128), n_nuclei=10, dtype=dtype, seed=3)
    assert s.image.shape == (96, 128) and s.image.dtype == dtype
    assert s.labels.shape == (96, 128)
    assert s.pixel_size > 0
    if dtype == np.float32:
        assert 0.0 <= s.image.min() and s.image.max() <= 1.0


def test_nuclei_labels_counts_and_brightness():
    s = synthetic.nuclei(shape=(160, 160), n_nuclei=20, seed=0)
    n = _check_labels(s.labels)
    assert n == 20  # roomy field: everything is placed
    img = s.image.astype(float)
    assert img[s.labels > 0].mean() > 3 * img[s.labels == 0].mean()
    # Crowded field: fewer than requested may fit, never more.
    c = synthetic.nuclei(shape=(48, 48), n_nuclei=50, seed=0)
    assert 0 < _check_labels(c.labels) < 50


def test_nuclei_touching_fraction():
    apart = synthetic.nuclei(shape=(160, 160), n_nuclei=15, touching=0.0, seed=2)
    assert not _adjacent_pairs(apart.labels)
    touch = synthetic.nuclei(shape=(160, 160), n_nuclei=15, touching=1.0, seed=2)
    _check_labels(touch.labels)
    assert len(_adjacent_pairs(touch.labels)) >= 5


def test_nuclei_fast_512():
    import time

    t = time.perf_counter()
    s = synthetic.nuclei(shape=(512, 512), seed=0)
    assert time.perf_counter() - t < 1.0
    _check_labels(s.labels)


# --------------------------------------------------------------------------------------
# whole cells
# --------------------------------------------------------------------------------------


def test_whole_cells():
    s = synthetic.whole_cells(shape=(160, 160), n_cells=10, seed=0)
    for a in (s.image, s.nuclear_image):
        assert a.shape == (160, 160) and a.dtype == np.uint16
    n = _check_labels(s.labels)
    assert 0 < n <= 10
    _check_labels(s.nuclei_labels)
    # every cell has exactly one nucleus, with the cell's id, inside the cell
    nl = s.nuclei_labels
    assert set(np.unique(nl[nl > 0])) == set(range(1, n + 1))
    np.testing.assert_array_equal(s.labels[nl > 0], nl[nl > 0])
    img = s.image.astype(float)
    nimg = s.nuclear_image.astype(float)
    assert img[s.labels > 0].mean() > 3 * img[s.labels == 0].mean()
    for i in range(1, n + 1):
        nuc = nl == i
        cyto = (s.labels == i) & ~nuc
        assert img[nuc].mean() < img[cyto].mean()  # dim nuclei in the cytoplasm channel
        assert nimg[nuc].mean() > nimg[cyto].mean()  # bright in the nuclear channel


def test_whole_cells_touch():
    s = synthetic.whole_cells(shape=(200, 200), n_cells=20, confluence=0.6, seed=1)
    assert _adjacent_pairs(s.labels)


# --------------------------------------------------------------------------------------
# bacteria (phase contrast)
# --------------------------------------------------------------------------------------


def test_bacteria_phase():
    s = synthetic.bacteria_phase(shape=(128, 128), n_cells=30, seed=0)
    assert s.image.shape == (128, 128) and s.image.dtype == np.float32
    n = _check_labels(s.labels)
    assert 20 <= n <= 30
    assert s.image[s.labels > 0].mean() < s.image[s.labels == 0].mean()
    assert _adjacent_pairs(s.labels)  # dense colony: touching cells
    # bright halo just outside the cells (noise-free image)
    q = synthetic.bacteria_phase(
        shape=(128, 128), n_cells=30, noise=0.0, photons=None, blur=0.0, seed=0
    )
    from scipy import ndimage as ndi

    cells = q.labels > 0
    dist = ndi.distance_transform_edt(~cells)
    ring = (dist > 0) & (dist <= 2)
    far = dist > 15
    assert q.image[ring].mean() > q.image[far].mean()
    # rod-like: elongated objects
    props = measure.regionprops(s.labels)
    assert np.median([p.axis_major_length / max(p.axis_minor_length, 1) for p in props]) > 1.8


# --------------------------------------------------------------------------------------
# bright-field z-stack
# --------------------------------------------------------------------------------------


def test_zstack_default_frames_and_metadata():
    z = synthetic.brightfield_zstack(shape=(48, 48), kind="yeast", seed=0)
    assert z.stack.shape == (100, 48, 48) and z.stack.dtype == np.float32
    assert z.z.shape == (100,)
    assert z.z[z.focus_index] == 0.0
    np.testing.assert_allclose(np.diff(z.z), 0.1)
    assert z.z[0] == pytest.approx(-5.0)
    assert z.dz == 0.1 and z.pixel_size > 0 and z.wavelength == 0.55
    assert np.isfinite(z.stack).all() and z.stack.min() >= 0
    # background is ~1 (unit incident intensity, up to drift and noise)
    assert 0.7 < np.median(z.stack[:, z.classes == 0]) < 1.3


@pytest.mark.parametrize("kind", ["ecoli", "yeast"])
def test_zstack_phase_contrast_reversal(kind):
    z = synthetic.brightfield_zstack(
        shape=(96, 96), n_frames=21, dz=0.2, kind=kind, absorption=0.0, photons=None,
        drift=0.0, seed=1,
    )  # fmt: skip
    inner, bg = z.classes == 1, z.classes == 0
    assert inner.sum() > 50 and bg.sum() > 50

    def contrast(k):
        f = z.stack[k]
        return f[inner].mean() - f[bg].mean()

    f0 = z.focus_index
    k = round(1.0 / z.dz)  # +-1 µm
    below, focus, above = contrast(f0 - k), contrast(f0), contrast(f0 + k)
    assert np.sign(below) == -np.sign(above) != 0
    assert abs(focus) < 0.25 * min(abs(below), abs(above))
    # in-focus pure phase object: weak overall contrast
    assert z.stack[f0][inner].std() < z.stack[f0 + k][inner].std() + z.stack[f0 - k][inner].std()


def test_zstack_ground_truth_classes():
    z = synthetic.brightfield_zstack(shape=(80, 80), n_frames=4, kind="ecoli", seed=0)
    n = _check_labels(z.labels)
    assert n > 5
    assert z.class_names == ("background", "interior", "contour", "halo", "wall")
    assert z.classes.dtype == np.uint8 and z.classes.max() <= 4
    cells = z.labels > 0
    assert np.all(np.isin(z.classes[cells], [1, 2]))
    assert np.all(np.isin(z.classes[~cells], [0, 3, 4]))
    assert (z.classes == 4).any()  # channel walls
    assert (z.classes == 3).any() and (z.classes == 2).any()
    assert np.all(z.cell_type[1:] == 1)


def test_zstack_mixed_cell_types():
    z = synthetic.brightfield_zstack(shape=(96, 96), n_frames=4, kind="mixed", seed=0)
    n = _check_labels(z.labels)
    assert z.cell_type.shape == (n + 1,) and z.cell_type[0] == 0
    assert set(np.unique(z.cell_type[1:])) == {1, 2}
    interior = z.classes == 1
    np.testing.assert_array_equal(z.type_classes[interior], z.cell_type[z.labels[interior]])
    assert z.type_class_names[1:3] == ("bacteria", "yeast")


def test_zstack_hela_and_bad_kind():
    z = synthetic.brightfield_zstack(shape=(64, 64), n_frames=4, kind="hela", seed=0)
    _check_labels(z.labels)
    assert np.all(z.cell_type[1:] == 3)
    with pytest.raises(ValueError):
        synthetic.brightfield_zstack(kind="plankton")


# --------------------------------------------------------------------------------------
# time-lapse
# --------------------------------------------------------------------------------------


def test_timelapse_tracks_consistent():
    s = synthetic.timelapse(shape=(96, 96), n_frames=15, n_cells=6, division_prob=0.5, seed=0)
    T = 15
    assert s.images.shape == (T, 96, 96) and s.images.dtype == np.float32
    assert s.labels.shape == (T, 96, 96) and s.labels.dtype == np.int32
    tr = s.tracks
    assert tr.ndim == 2 and tr.shape[1] == 4
    np.testing.assert_array_equal(tr[:, 0], np.arange(1, len(tr) + 1))
    assert (tr[:, 3] > 0).sum() >= 2, "expected at least one division"
    for t in range(T):
        lab = s.labels[t]
        comp = measure.label(lab, background=0, connectivity=1)
        present = set(np.unique(lab[lab > 0]).tolist())
        assert comp.max() == len(present)  # one component per id
        alive = {int(i) for i, b, e, _ in tr if b <= t <= e}
        assert present == alive, t
    by_id = {int(r[0]): r for r in tr}
    children: dict[int, list[int]] = {}
    for tid, b, e, p in tr:
        assert b <= e
        if p:
            children.setdefault(int(p), []).append(int(tid))
            assert by_id[int(p)][2] == b - 1  # parent ends the frame before
        else:
            assert b == 0
    for kids in children.values():
        assert len(kids) == 2
        assert by_id[kids[0]][1] == by_id[kids[1]][1]
    # parents that divided do not continue
    assert all(by_id[p][2] < T - 1 for p in children)
    # nuclei brighter than background
    assert s.images[s.labels > 0].mean() > 3 * s.images[s.labels == 0].mean()


def test_timelapse_small_displacements():
    s = synthetic.timelapse(shape=(96, 96), n_frames=10, n_cells=5, division_prob=0.0, seed=4)
    for t in range(1, 10):
        for r in measure.regionprops(s.labels[t]):
            prev = s.labels[t - 1] == r.label
            if prev.any():
                c0 = np.argwhere(prev).mean(axis=0)
                assert np.hypot(*(np.asarray(r.centroid) - c0)) < 5.0


def test_timelapse_reporter_ratio_exact():
    s = synthetic.timelapse(
        shape=(96, 96), n_frames=5, n_cells=5, blur=0.0, noise=0.0, photons=None,
        background=0.0, seed=2,
    )  # fmt: skip
    assert s.reporter_images.shape == s.images.shape
    assert s.reporter_ratio.shape == (5, len(s.tracks))
    for t in range(5):
        for tid in np.unique(s.labels[t][s.labels[t] > 0]):
            nuc = s.reporter_images[t][s.labels[t] == tid].mean()
            cyto_mask = s.cytoplasm_labels[t] == tid
            assert cyto_mask.any()
            cyto = s.reporter_images[t][cyto_mask].mean()
            assert cyto / nuc == pytest.approx(s.reporter_ratio[t, tid - 1], rel=1e-5)
        dead = [k for k, (_, b, e, _) in enumerate(s.tracks) if not b <= t <= e]
        assert np.all(np.isnan(s.reporter_ratio[t, dead]))
    none = synthetic.timelapse(shape=(48, 48), n_frames=2, n_cells=2, reporter=False, seed=0)
    assert none.reporter_images is None and none.reporter_ratio is None
