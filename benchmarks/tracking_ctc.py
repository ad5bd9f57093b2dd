"""Tracking accuracy on the Cell Tracking Challenge set Fluo-N2DH-SIM+ sequence 01.

Two runs, scored with cellscape.metrics (the challenge's DET/TRA/SEG definitions):

1. the tracker alone: tracking the ground-truth masks (01_GT/TRA/man_track<T>.tif);
2. the whole pipeline: segmenting the raw frames (01/t<T>.tif) with the bundled "classical"
   segmenter, then tracking; SEG against 01_GT/SEG (all 65 frames have full masks).

Baseline in the same run: nearest-centroid linking without divisions (``divisions=False``,
``overlap_weight=area_weight=0``). Results (res_track.txt + mask<T>.tif) go to
benchmarks/out/tracking_ctc/01_RES_{gt,classical} so the challenge's own software can rescore
them; pictures of the tracks and of growth rates go to docs/images/tracking_*.png.

Run:  python benchmarks/tracking_ctc.py
"""

from __future__ import annotations

import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402

from cellscape import datasets, metrics, track  # noqa: E402
from cellscape.models import load_model  # noqa: E402

ROOT = Path(__file__).resolve().parents[2] / "shared" / "data" / "ctc" / "Fluo-N2DH-SIM+"
OUT = Path(__file__).resolve().parent / "out" / "tracking_ctc"
IMAGES = Path(__file__).resolve().parents[1] / "docs" / "images"


def score(name, gt_tra, gt_tracks, result, seconds):
    s = metrics.ctc_tracking_scores(gt_tra, gt_tracks, result.labels, result.tracks)
    print(
        f"{name:<44} TRA {s.tra:.4f}  DET {s.det:.4f}  | NS {s.ns} FN {s.fn} FP {s.fp} "
        f"ED {s.ed} EA {s.ea} EC {s.ec} | tracks {result.n_tracks}, divisions "
        f"{result.n_divisions} | {seconds:.1f} s"
    )
    return s


def run_tracker(labels, **kw):
    t0 = time.perf_counter()
    result = track.track(labels, **kw)
    return result, time.perf_counter() - t0


BASELINE = dict(divisions=False, overlap_weight=0.0, area_weight=0.0)


def compare_trackers(masks, gt_tra, gt_tracks):
    """Track ``masks`` with the baseline, the defaults and gap closing; print the scores of
    each; return the default result."""
    base, sec = run_tracker(masks, **BASELINE)
    score("baseline: nearest centroid, no divisions", gt_tra, gt_tracks, base, sec)
    ours, sec = run_tracker(masks)
    score("cellscape.track (defaults)", gt_tra, gt_tracks, ours, sec)
    gap, sec = run_tracker(masks, gap_closing=True)
    score("cellscape.track (gap closing on)", gt_tra, gt_tracks, gap, sec)
    return ours


def main() -> None:
    gt = datasets.read_ctc_gt(ROOT / "01_GT")
    gt_tra = gt.load_tra()
    n_div = int((np.bincount(gt.tracks[:, 3])[1:] >= 2).sum())
    print(f"Fluo-N2DH-SIM+ 01: {gt_tra.shape[0]} frames {gt_tra.shape[1:]}, "
          f"{len(gt.tracks)} GT tracks, {n_div} divisions, "
          f"{int(sum(len(np.unique(f)) - 1 for f in gt_tra))} GT markers")  # fmt: skip

    print("\n1) tracking the ground-truth masks (the tracker alone)")
    ours = compare_trackers(gt_tra, gt_tra, gt.tracks)
    track.write_ctc_result(OUT / "01_RES_gt", ours.labels, ours.tracks)
    growth_pictures(ours)

    print("\n2) segmenting the raw frames with the 'classical' model, then tracking")
    seq = datasets.read_ctc_sequence(ROOT / "01")
    segmenter = load_model("classical")
    t0 = time.perf_counter()
    seg = np.stack([segmenter.segment(seq.load_frame(t)[0]) for t in seq.times]).astype(np.int32)
    print(f"segmentation: {time.perf_counter() - t0:.1f} s for {len(seq)} frames")
    gt_seg = gt.load_seg()
    tables = [metrics.ctc_seg(gt_seg[t], seg[i]) for i, t in enumerate(seq.times) if t in gt_seg]
    n_obj = sum(len(tb.scores) for tb in tables)
    seg_score = sum(float(tb.scores.sum()) for tb in tables) / n_obj
    print(f"SEG (pooled over {n_obj} GT objects in {len(tables)} frames): {seg_score:.4f}")
    ours = compare_trackers(seg, gt_tra, gt.tracks)
    track.write_ctc_result(OUT / "01_RES_classical", ours.labels, ours.tracks)
    growth = track.growth_table(ours.labels, ours.tracks)
    _, rates = track.area_jump_flags(growth)
    print(f"area-jump flags (>=30%): {rates['n_flagged']} of {rates['n_cells']} cells, "
          f"{rates['step_error_rate']:.2%} of {rates['n_steps']} steps")  # fmt: skip
    gt_growth = track.growth_table(gt_tra, gt.tracks)
    _, gt_rates = track.area_jump_flags(gt_growth)
    print(f"  same flags on the GT masks: {gt_rates['n_flagged']} of {gt_rates['n_cells']} "
          f"cells, {gt_rates['step_error_rate']:.2%} of steps")  # fmt: skip
    picture(seq.load_frame(seq.times[-1])[0], ours)


def growth_pictures(result) -> None:
    """Growth-rate histogram and colony map of the tracked ground-truth masks."""
    growth = track.growth_table(result.labels, result.tracks)
    IMAGES.mkdir(parents=True, exist_ok=True)
    track.save_figure(
        track.plot_growth_histogram(growth), IMAGES / "tracking_growth_histogram.png", dpi=80
    )
    track.save_figure(
        track.plot_colony_growth(result.labels, growth),
        IMAGES / "tracking_colony_growth.png",
        dpi=80,
    )


def picture(last_frame, result) -> None:
    """Trajectories of the tracked classical segmentation over the last raw frame."""
    from matplotlib.figure import Figure

    growth = track.growth_table(result.labels, result.tracks)
    fig = Figure(figsize=(5.5, 6), dpi=80)
    ax = fig.add_subplot()
    lo, hi = np.percentile(last_frame, [1, 99.5])
    ax.imshow(last_frame, cmap="gray", vmin=lo, vmax=hi)
    cmap = matplotlib.colormaps["tab20"]
    parent = {int(r[0]): int(r[3]) for r in result.tracks}
    for tid, g in growth.groupby("track_id"):
        ax.plot(g["centroid_x"], g["centroid_y"], lw=1.2, color=cmap(tid % 20))
        if parent.get(tid):
            ax.plot(g["centroid_x"].iloc[0], g["centroid_y"].iloc[0], "o", ms=3, color="w")
    ax.set_axis_off()
    ax.set_title("Fluo-N2DH-SIM+ 01: tracks (white dots: daughters)", fontsize=10)
    fig.tight_layout()
    IMAGES.mkdir(parents=True, exist_ok=True)
    track.save_figure(fig, IMAGES / "tracking_ctc_tracks.png", dpi=80)


if __name__ == "__main__":
    main()
