"""Tracking, lineages, growth, quality flags, CTC files and the ``track`` command."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import tifffile
from typer.testing import CliRunner

from cellscape import datasets, io, metrics, synthetic, track
from cellscape.cli import app
from cellscape.errors import CellscapeError


@pytest.fixture(scope="module")
def movie():
    return synthetic.timelapse(shape=(128, 128), n_frames=16, n_cells=10, seed=1)


def _write_stack(path, stack):
    """A multi-page (T, Y, X) TIFF as microscopes and Fiji write them."""
    tifffile.imwrite(path, stack, photometric="minisblack")


def _shuffle_ids(labels: np.ndarray, seed: int = 0) -> np.ndarray:
    """Give every frame unrelated random ids, so the tracker cannot cheat on them."""
    rng = np.random.default_rng(seed)
    out = np.zeros_like(labels)
    for t in range(labels.shape[0]):
        ids = np.unique(labels[t][labels[t] > 0])
        new = rng.permutation(np.arange(1000, 1000 + ids.size))
        lut = np.zeros(labels.max() + 1, dtype=labels.dtype)
        lut[ids] = new
        out[t] = lut[labels[t]]
    return out


def test_recovers_synthetic_tracks_and_divisions(movie):
    result = track.track(_shuffle_ids(movie.labels))
    n_true_div = int((np.bincount(movie.tracks[:, 3])[1:] == 2).sum())
    assert n_true_div >= 3
    assert result.n_divisions == n_true_div
    scores = metrics.ctc_tracking_scores(movie.labels, movie.tracks, result.labels, result.tracks)
    assert scores.tra == 1.0 and scores.det == 1.0
    # each object keeps its pixels, only the ids change
    assert np.array_equal(result.labels > 0, movie.labels > 0)


def test_without_division_detection_daughters_start_new_tracks(movie):
    result = track.track(movie.labels, divisions=False)
    assert result.n_divisions == 0
    scores = metrics.ctc_tracking_scores(movie.labels, movie.tracks, result.labels, result.tracks)
    assert scores.tra < 1.0 and scores.det == 1.0


def test_link_frames_follows_moving_disks():
    prev = np.zeros((40, 60), np.int32)
    curr = np.zeros_like(prev)
    yy, xx = np.mgrid[:40, :60]
    for label, (cy, cx) in zip((3, 9), ((10, 10), (30, 45)), strict=True):
        prev[(yy - cy) ** 2 + (xx - cx) ** 2 <= 16] = label
    for label, (cy, cx) in zip((5, 2), ((12, 13), (29, 41)), strict=True):
        curr[(yy - cy) ** 2 + (xx - cx) ** 2 <= 16] = label
    pairs = track.link_frames(prev, curr, max_distance=10)
    assert sorted(map(tuple, pairs.tolist())) == [(3, 5), (9, 2)]
    # too far: no link (a death and a birth instead)
    assert track.link_frames(prev, np.roll(curr, 30, axis=1), max_distance=5).shape == (0, 2)


def test_gap_closing_bridges_one_missing_frame(movie):
    labels = movie.labels.copy()
    tid = int(movie.tracks[np.argmax(movie.tracks[:, 2] - movie.tracks[:, 1]), 0])
    assert movie.tracks[tid - 1, 1] <= 4 and movie.tracks[tid - 1, 2] >= 7
    labels[5][labels[5] == tid] = 0
    plain = track.track(labels)
    closed = track.track(labels, gap_closing=True)
    assert closed.n_tracks == plain.n_tracks  # the continuation is a new CTC track either way
    gaps = [k for k, v in closed.link_kind.items() if v == "gap"]
    assert len(gaps) == 1
    lin = track.lineage_table(closed.tracks, closed.link_kind)
    row = lin.set_index("track_id").loc[gaps[0]]
    assert row["link"] == "gap" and row["start"] == 6
    assert row["cell_id"] == row["parent"]  # one cell across the gap
    s_plain = metrics.ctc_tracking_scores(labels, _ctc_gt(labels), plain.labels, plain.tracks)
    assert s_plain.fn == 0


def _ctc_gt(labels):
    rows = []
    for tid in np.unique(labels[labels > 0]):
        ts = np.flatnonzero((labels == tid).any(axis=(1, 2)))
        rows.append([tid, ts.min(), ts.max(), 0])
    return np.array(rows)


def test_lineage_generations(movie):
    lin = track.lineage_table(movie.tracks)
    assert set(lin.columns) >= {"track_id", "parent", "generation", "root", "n_daughters"}
    founders = lin[lin["parent"] == 0]
    assert (founders["generation"] == 0).all()
    kids = lin[lin["parent"] > 0]
    par_gen = lin.set_index("track_id")["generation"]
    assert (kids["generation"].values == par_gen.loc[kids["parent"]].values + 1).all()
    assert (lin.set_index("track_id").loc[kids["parent"].unique(), "n_daughters"] == 2).all()


def test_growth_rate_and_area_jump_flags():
    # One square that grows 10x10 -> 11x11 (ln 1.21) then jumps to 14x14 (+62%).
    labels = np.zeros((3, 30, 30), np.int32)
    labels[0, 5:15, 5:15] = 1
    labels[1, 5:16, 5:16] = 4
    labels[2, 5:19, 5:19] = 2
    result = track.track(labels, area_weight=0.1)
    assert result.n_tracks == 1
    growth = track.growth_table(result.labels, result.tracks, frame_interval=0.5)
    assert growth["area"].tolist() == [100, 121, 196]
    assert growth["growth_rate"].iloc[0] == pytest.approx(np.log(1.21) / 0.5)
    assert np.isnan(growth["growth_rate"].iloc[2])
    per_cell, rates = track.area_jump_flags(growth, 0.3)
    assert per_cell["n_jumps"].tolist() == [1] and per_cell["flagged"].tolist() == [True]
    assert rates["step_error_rate"] == 0.5 and rates["cell_error_rate"] == 1.0


def test_growth_plots_are_figures(movie):
    result = track.track(movie.labels)
    growth = track.growth_table(result.labels, result.tracks)
    for fig in (
        track.plot_growth_histogram(growth),
        track.plot_colony_growth(result.labels, growth),
    ):
        assert len(fig.axes) >= 1


def test_ctc_files_round_trip(tmp_path, movie):
    result = track.track(movie.labels)
    track.write_ctc_result(tmp_path / "01_RES", result.labels, result.tracks)
    names = sorted(p.name for p in (tmp_path / "01_RES").iterdir())
    assert names[0] == "mask000.tif" and "res_track.txt" in names
    labels, tracks = track.read_ctc_result(tmp_path / "01_RES")
    assert np.array_equal(labels, result.labels)
    assert np.array_equal(tracks, result.tracks)
    assert np.array_equal(datasets.read_man_track(tmp_path / "01_RES" / "res_track.txt"), tracks)


def test_read_label_frames_folder_stack_and_errors(tmp_path, movie):
    folder = tmp_path / "frames"
    for t in (0, 1, 10):  # numeric order, not name order
        io.write_labels(folder / f"t{t}_masks.tif", movie.labels[t])
    stack = track.read_label_frames(folder)
    assert np.array_equal(stack, movie.labels[[0, 1, 10]])
    _write_stack(tmp_path / "stack.tif", movie.labels[:4])
    assert track.read_label_frames(tmp_path / "stack.tif").shape == (4, 128, 128)
    with pytest.raises(CellscapeError, match="not found"):
        track.read_label_frames(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CellscapeError, match="no .tif"):
        track.read_label_frames(tmp_path / "empty")
    io.write_labels(folder / "t11_masks.tif", movie.labels[0][:64])
    with pytest.raises(CellscapeError, match="earlier frames"):
        track.read_label_frames(folder)
    with pytest.raises(ValueError):
        track.track(movie.labels[0])


def test_track_command(tmp_path, movie):
    _write_stack(tmp_path / "movie.tif", movie.labels)
    out = tmp_path / "out"
    res = CliRunner().invoke(
        app, ["track", str(tmp_path / "movie.tif"), "--out", str(out), "--plots"]
    )
    assert res.exit_code == 0, res.output
    assert "divisions" in res.output
    for name in ("res_track.txt", "mask000.tif", "lineage.csv", "growth.csv", "quality.csv",
                 "growth_histogram.png", "colony_growth.png"):  # fmt: skip
        assert (out / name).exists(), name
    lineage = pd.read_csv(out / "lineage.csv")
    assert len(lineage) == len(movie.tracks)
    bad = CliRunner().invoke(app, ["track", str(tmp_path / "missing"), "--out", str(out)])
    assert bad.exit_code == 2 and "not found" in bad.output
