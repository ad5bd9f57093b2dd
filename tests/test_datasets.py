"""Data set readers on tiny layouts built in tmp_path (never the real data: CI has none)."""

from __future__ import annotations

from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import tifffile

from cellscape import datasets as ds
from cellscape.errors import CellscapeError

# --------------------------------------------------------------------------------------------
# Cellpose-style pairs
# --------------------------------------------------------------------------------------------


def _write_pair(folder: Path, key: str, rgb: bool = False, masks: bool = True) -> None:
    rng = np.random.default_rng(len(key))
    shape = (12, 16, 3) if rgb else (12, 16)
    tifffile.imwrite(folder / f"{key}_img.tif", rng.integers(0, 255, shape, dtype=np.uint8))
    if masks:
        lab = np.zeros((12, 16), np.uint16)
        lab[2:5, 3:7] = 1
        lab[8:11, 9:14] = 2
        tifffile.imwrite(folder / f"{key}_masks.tif", lab)


def test_list_pairs_lists_complete_pairs_and_orphans(tmp_path):
    _write_pair(tmp_path, "b")
    _write_pair(tmp_path, "a", rgb=True)
    _write_pair(tmp_path, "c", masks=False)
    (tmp_path / "notes.txt").write_text("x")
    tifffile.imwrite(tmp_path / "z_masks.tif", np.zeros((4, 4), np.uint16))

    pairs = ds.list_pairs(tmp_path)
    assert [p.id for p in pairs] == ["a", "b"]
    assert pairs[1].image_path == tmp_path / "b_img.tif"
    assert pairs[1].masks_path == tmp_path / "b_masks.tif"
    assert [p.name for p in ds.list_orphans(tmp_path)] == ["c_img.tif", "z_masks.tif"]

    image, meta, labels = pairs[0].load()
    assert image.shape == (3, 12, 16) and meta.rgb
    assert labels.shape == (12, 16) and labels.dtype == np.int32 and labels.max() == 2
    image, meta, _ = pairs[1].load()
    assert image.shape == (12, 16) and not meta.rgb


def test_pair_with_wrong_mask_size_is_reported(tmp_path):
    _write_pair(tmp_path, "a")
    tifffile.imwrite(tmp_path / "a_masks.tif", np.zeros((5, 5), np.uint16))
    with pytest.raises(CellscapeError, match="a_masks.tif"):
        ds.list_pairs(tmp_path)[0].load()


def test_pair_folder_problems(tmp_path):
    with pytest.raises(CellscapeError, match="folder not found"):
        ds.list_pairs(tmp_path / "nope")
    with pytest.raises(CellscapeError, match="no <id>_img"):
        ds.list_pairs(tmp_path)
    _write_pair(tmp_path, "a")
    iio.imwrite(tmp_path / "a_img.png", np.zeros((12, 16), np.uint8))
    with pytest.raises(CellscapeError, match="two files for 'a'"):
        ds.list_pairs(tmp_path)


def test_split_is_deterministic_stable_and_disjoint():
    ids = [f"img{i:04d}" for i in range(1000)]
    train, val = ds.split_ids(ids)
    assert set(train).isdisjoint(val) and set(train) | set(val) == set(ids)
    assert 0.12 <= len(val) / len(ids) <= 0.18
    # order does not matter, and results are in input order
    train_r, val_r = ds.split_ids(ids[::-1])
    assert val_r == val[::-1] and train_r == train[::-1]
    # adding or removing other ids never moves an id across the split
    _, val_sub = ds.split_ids(ids[::3])
    assert val_sub == [i for i in val if i in set(ids[::3])]
    _, val_more = ds.split_ids(ids + [f"new{i}" for i in range(500)])
    assert set(val) <= set(val_more)
    # the salt and the fraction change the split in the expected ways
    assert ds.split_ids(ids, salt="other")[1] != val
    assert set(val) <= set(ds.split_ids(ids, fraction=0.3)[1])
    assert ds.split_ids(ids, fraction=0.0)[1] == [] and ds.split_ids(ids, fraction=1.0)[0] == []
    with pytest.raises(ValueError):
        ds.split_ids(ids, fraction=1.5)


def test_split_uses_sha256_of_salt_plus_id():
    import hashlib

    score = int.from_bytes(hashlib.sha256(b"cellscape-v1abc").digest()[:8], "big") / 2**64
    _, val = ds.split_ids(["abc"], fraction=score + 1e-9)
    assert val == ["abc"]
    _, val = ds.split_ids(["abc"], fraction=score - 1e-9)
    assert val == []


def test_dsb2018_split_returns_pairs(tmp_path):
    for i in range(20):
        _write_pair(tmp_path, f"id{i}")
    train, val = ds.dsb2018_split(tmp_path, fraction=0.5)
    assert len(train) + len(val) == 20
    expected = ds.split_ids([f"id{i}" for i in range(20)], 0.5)[1]
    assert [p.id for p in val] == sorted(expected)
    assert all(isinstance(p, ds.ImagePair) for p in train + val)


# --------------------------------------------------------------------------------------------
# DeepCell 2016
# --------------------------------------------------------------------------------------------

SHAPE = (20, 24)


def _two_cells() -> tuple[np.ndarray, np.ndarray]:
    """Edge and interior masks of two square cells side by side, edges touching."""
    edge = np.zeros(SHAPE, bool)
    interior = np.zeros(SHAPE, bool)
    for x0 in (2, 12):
        edge[3:13, x0 : x0 + 10] = True
        interior[4:12, x0 + 1 : x0 + 9] = True
    edge &= ~interior
    return edge, interior


def _deepcell_tree(root: Path) -> None:
    edge, interior = _two_cells()
    phase = np.arange(np.prod(SHAPE), dtype=np.uint16).reshape(SHAPE)
    # cell line with set folders, PNG features at 0/65535 and Micro-Manager channel names
    s = root / "RAW" / "set1"
    s.mkdir(parents=True)
    iio.imwrite(s / "phase.png", phase)
    iio.imwrite(s / "img_000000000_Far-red_000.png", phase + 1)
    iio.imwrite(s / "img_000000000_TRITC_000.png", phase + 2)
    iio.imwrite(s / "feature_0.png", edge.astype(np.uint16) * 65535)
    iio.imwrite(s / "feature_1.png", interior.astype(np.uint16) * 65535)
    (s / "RoiSet.zip").write_bytes(b"")
    # files directly in the cell-line folder, TIFF features at 0/255, both nuclear and farred
    s = root / "BMDM"
    s.mkdir()
    iio.imwrite(s / "phase.png", phase)
    iio.imwrite(s / "farred.png", phase + 5)
    iio.imwrite(s / "nuclear.png", phase + 3)
    tifffile.imwrite(s / "feature_0.tif", edge.astype(np.uint8) * 255)
    tifffile.imwrite(s / "feature_1.tif", interior.astype(np.uint8) * 255)
    # a further level with a second cell type, features at 0/1
    s = root / "semantic" / "3T3" / "set2"
    s.mkdir(parents=True)
    tifffile.imwrite(s / "nucleus.tif", phase + 7)
    iio.imwrite(s / "feature_0.png", edge.astype(np.uint8))
    iio.imwrite(s / "feature_1.png", interior.astype(np.uint8))
    tifffile.imwrite(s / "feature_2.tif", np.zeros(SHAPE, np.uint8))
    # a folder without features is not a set
    (root / "empty").mkdir()
    iio.imwrite(root / "empty" / "phase.png", phase)


def test_list_deepcell_sets_finds_all_layouts(tmp_path):
    _deepcell_tree(tmp_path)
    sets = {s.name: s for s in ds.list_deepcell_sets(tmp_path)}
    assert list(sets) == ["BMDM", "RAW/set1", "semantic/3T3/set2"]
    raw, bmdm, sem = sets["RAW/set1"], sets["BMDM"], sets["semantic/3T3/set2"]
    assert raw.cell_line == "RAW" and bmdm.cell_line == "BMDM"
    assert sem.cell_line == "semantic/3T3"
    assert raw.folder == tmp_path / "RAW" / "set1"
    assert set(raw.channels) == {"phase", "nuclear", "TRITC"}
    assert raw.channels["nuclear"].name == "img_000000000_Far-red_000.png"
    assert raw.roi_path == raw.folder / "RoiSet.zip"
    assert bmdm.roi_path is None
    # nuclear.png wins over farred.png, which keeps its own name
    assert bmdm.channels["nuclear"].name == "nuclear.png"
    assert bmdm.channels["farred"].name == "farred.png"
    assert sem.channels == {"nuclear": sem.folder / "nucleus.tif"}
    assert sorted(sem.features) == [0, 1, 2]
    # one set folder given directly
    (only,) = ds.list_deepcell_sets(tmp_path / "BMDM")
    assert only.name == "BMDM"


def test_deepcell_load_shapes_names_and_binarisation(tmp_path):
    _deepcell_tree(tmp_path)
    edge, interior = _two_cells()
    sets = {s.name: s for s in ds.list_deepcell_sets(tmp_path)}
    for name in ("RAW/set1", "BMDM", "semantic/3T3/set2"):
        s = sets[name]
        channels = ("nuclear",) if name.startswith("semantic") else ("phase", "nuclear")
        image, meta, features = s.load(channels=channels)
        assert image.shape == (len(channels), *SHAPE) and image.dtype == np.float32
        assert meta.axes == "CYX" and meta.channel_names == channels
        assert features.dtype == np.uint8 and set(np.unique(features)) <= {0, 1}
        np.testing.assert_array_equal(features[0], edge)
        np.testing.assert_array_equal(features[1], interior)
        assert meta.extra["feature_names"][:2] == ("edge", "interior")
    image, meta, features = sets["RAW/set1"].load(channels=None)
    assert meta.channel_names == ("phase", "nuclear", "TRITC")
    assert image[0, 0, 1] == 1 and image[1, 0, 1] == 2 and image[2, 0, 1] == 3
    assert sets["semantic/3T3/set2"].load(channels=("nuclear",))[2].shape == (3, *SHAPE)


def test_deepcell_problems(tmp_path):
    with pytest.raises(CellscapeError, match="folder not found"):
        ds.list_deepcell_sets(tmp_path / "missing")
    with pytest.raises(CellscapeError, match="no DeepCell"):
        ds.list_deepcell_sets(tmp_path)
    _deepcell_tree(tmp_path)
    sets = {s.name: s for s in ds.list_deepcell_sets(tmp_path)}
    with pytest.raises(CellscapeError, match="no 'phase' channel"):
        sets["semantic/3T3/set2"].load()
    tifffile.imwrite(tmp_path / "BMDM" / "nuclear.tif", np.zeros((3, 3), np.uint8))
    with pytest.raises(CellscapeError, match="two files for 'nuclear'"):
        ds.list_deepcell_sets(tmp_path)
    (tmp_path / "BMDM" / "nuclear.tif").unlink()
    iio.imwrite(tmp_path / "BMDM" / "nuclear.png", np.zeros((3, 3), np.uint16))
    with pytest.raises(CellscapeError, match="nuclear.png"):
        ds.list_deepcell_sets(tmp_path / "BMDM")[0].load()


def test_find_duplicate_sets(tmp_path):
    _deepcell_tree(tmp_path)
    sets = ds.list_deepcell_sets(tmp_path)
    # BMDM/phase.png and RAW/set1/phase.png hold the same pixels
    assert ds.find_duplicate_sets(sets) == [("BMDM", "RAW/set1")]


def test_deepcell_instances_two_cells_cover_interior_and_edge():
    edge, interior = _two_cells()
    features = np.stack([edge, interior]).astype(np.uint8)
    labels = ds.deepcell_instances(features, min_interior=1)
    assert labels.dtype == np.int32 and labels.shape == SHAPE
    assert sorted(np.unique(labels)) == [0, 1, 2]
    np.testing.assert_array_equal(labels > 0, edge | interior)
    for cell in (1, 2):
        ys, xs = np.nonzero(labels == cell)
        assert len(ys) == 100  # 8 x 8 interior + its 36-pixel ring
        assert xs.max() - xs.min() == 9
    # the interiors are split from each other, not merged
    assert labels[8, 6] != labels[8, 16]


def test_deepcell_instances_options():
    edge, interior = _two_cells()
    interior[0, 0] = True  # a one-pixel speck
    features = np.stack([edge, interior]).astype(np.uint8)
    assert ds.deepcell_instances(features, min_interior=1).max() == 3
    assert ds.deepcell_instances(features).max() == 2  # default drops specks < 10 px
    # two interior classes touching: still two cells
    second = np.zeros_like(interior)
    second[:, 12:] = interior[:, 12:]
    first = interior & ~second
    labels = ds.deepcell_instances(np.stack([edge, first, second]).astype(np.uint8))
    assert labels.max() == 2
    assert ds.deepcell_instances(np.zeros((2, 5, 5), np.uint8)).max() == 0
    with pytest.raises(ValueError):
        ds.deepcell_instances(np.zeros((5, 5)))


# --------------------------------------------------------------------------------------------
# Cell Tracking Challenge
# --------------------------------------------------------------------------------------------

TRACKS = np.array([[1, 0, 2, 0], [2, 0, 4, 0], [3, 3, 4, 1], [4, 3, 3, 1]], dtype=np.int64)


def _ctc_tree(root: Path) -> tuple[Path, Path]:
    seq = root / "01"
    seg = root / "01_GT" / "SEG"
    tra = root / "01_GT" / "TRA"
    for d in (seq, seg, tra):
        d.mkdir(parents=True)
    # t10 sorts before t2 by name but after it by time
    for t in (0, 1, 2, 3, 4, 10):
        frame = np.full((6, 7), t, np.uint16)
        tifffile.imwrite(
            seq / f"t{t:03d}.tif" if t < 10 else seq / "t10.tif", frame, compression="lzw"
        )
    (seq / "readme.txt").write_text("not a frame")
    for t in (0, 3):
        tifffile.imwrite(seg / f"man_seg{t:03d}.tif", np.full((6, 7), t + 1, np.uint16))
    for t in range(5):
        tifffile.imwrite(
            tra / f"man_track{t:03d}.tif", np.full((6, 7), t, np.uint16), compression="lzw"
        )
    (tra / "man_track.txt").write_text("".join(f"{a} {b} {c} {d}\n" for a, b, c, d in TRACKS))
    return seq, root / "01_GT"


def test_read_ctc_sequence_sorts_by_time(tmp_path):
    seq_dir, _ = _ctc_tree(tmp_path)
    seq = ds.read_ctc_sequence(seq_dir)
    assert seq.times == (0, 1, 2, 3, 4, 10) and len(seq) == 6
    assert seq.frame_paths[-1].name == "t10.tif"
    frames = seq.load_frames()
    assert frames.shape == (6, 6, 7) and frames.dtype == np.uint16
    np.testing.assert_array_equal(frames[:, 0, 0], seq.times)
    frames, meta = seq.load_frames(return_meta=True)
    assert meta.axes == "TYX"
    frame, _ = seq.load_frame(10)
    assert frame[0, 0] == 10
    with pytest.raises(CellscapeError, match="time point 7"):
        seq.load_frame(7)


def test_read_ctc_gt(tmp_path):
    _, gt_dir = _ctc_tree(tmp_path)
    gt = ds.read_ctc_gt(gt_dir)
    assert list(gt.seg_paths) == [0, 3] and list(gt.tra_paths) == [0, 1, 2, 3, 4]
    seg = gt.load_seg()
    assert seg[3].dtype == np.int32 and seg[3][0, 0] == 4
    tra = gt.load_tra()
    assert tra.shape == (5, 6, 7)
    np.testing.assert_array_equal(tra[:, 0, 0], range(5))
    np.testing.assert_array_equal(gt.tracks, TRACKS)


def test_ctc_problems(tmp_path):
    with pytest.raises(CellscapeError, match="folder not found"):
        ds.read_ctc_sequence(tmp_path / "01")
    with pytest.raises(CellscapeError, match="no t<T>.tif"):
        ds.read_ctc_sequence(tmp_path)
    with pytest.raises(CellscapeError, match="no SEG"):
        ds.read_ctc_gt(tmp_path)
    _, gt_dir = _ctc_tree(tmp_path)
    (gt_dir / "TRA" / "man_track.txt").unlink()
    with pytest.raises(CellscapeError, match="man_track.txt: file not found"):
        ds.read_ctc_gt(gt_dir)


def test_man_track_round_trip(tmp_path):
    path = ds.write_res_track(tmp_path / "out" / "res_track.txt", TRACKS)
    assert path.read_text().splitlines()[2] == "3 3 4 1"
    back = ds.read_man_track(path)
    assert back.dtype == np.int64 and back.shape == (4, 4)
    np.testing.assert_array_equal(back, TRACKS)
    assert [p.name for p in path.parent.iterdir()] == ["res_track.txt"]  # no temp left
    ds.write_res_track(tmp_path / "empty.txt", np.zeros((0, 4), int))
    assert ds.read_man_track(tmp_path / "empty.txt").shape == (0, 4)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("1 0 2 0\n2 0 3\n", "line 2: expected 4 integers"),
        ("1 0 2 0\n2 a 3 0\n", "line 2: expected 4 integers"),
        ("1 0 2 0\n\n1 3 4 0\n", "line 3: track 1 is listed twice"),
        ("1 5 2 0\n", "line 1: track 1 has begin 5 and end 2"),
        ("0 0 2 0\n", "line 1: track label must be positive"),
        ("1 0 2 0\n2 3 4 7\n", "line 2: track 2 has parent 7, which is not a track"),
        ("1 0 3 0\n2 3 4 1\n", "line 2: track 2 begins at 3, before its parent 1 ends"),
    ],
)
def test_malformed_man_track_names_file_and_line(tmp_path, text, problem):
    path = tmp_path / "man_track.txt"
    path.write_text(text)
    with pytest.raises(CellscapeError) as info:
        ds.read_man_track(path)
    message = str(info.value)
    assert "man_track.txt" in message and problem in message
    assert "\n" not in message


def test_write_res_track_refuses_bad_tables(tmp_path):
    with pytest.raises(ValueError, match="shape"):
        ds.write_res_track(tmp_path / "r.txt", np.zeros((3, 3), int))
    with pytest.raises(ValueError, match="listed twice"):
        ds.write_res_track(tmp_path / "r.txt", [[1, 0, 1, 0], [1, 2, 3, 0]])
    assert not (tmp_path / "r.txt").exists()
