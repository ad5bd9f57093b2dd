"""Tracking speed: frames per second with about 1000 cells per frame (synthetic).

A synthetic time-lapse (cellscape.synthetic.timelapse, 1000 nuclei of radius 5-7 px in a
1100 x 1100 px field, 10 frames, divisions on) is tracked with cellscape.track.track; the
baseline in the same run is the same tracker with division detection off. Each configuration
runs 3 times; the median is reported. The machine's 2 cores are shared with other jobs, so the
numbers are under load.

Run:  python benchmarks/tracking_speed.py
"""

from __future__ import annotations

import statistics
import time

import numpy as np

from cellscape import metrics, synthetic, track


def main() -> None:
    t0 = time.perf_counter()
    movie = synthetic.timelapse(
        shape=(1100, 1100), n_frames=10, n_cells=1000, radius=(5.0, 7.0), reporter=False, seed=7
    )
    n_cells = [len(np.unique(f)) - 1 for f in movie.labels]
    print(f"synthetic movie: {movie.labels.shape}, cells per frame {min(n_cells)}-{max(n_cells)}"
          f" (made in {time.perf_counter() - t0:.0f} s)")  # fmt: skip
    for name, kw in (("baseline: no division detection", {"divisions": False}),
                     ("cellscape.track (defaults)", {})):  # fmt: skip
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            result = track.track(movie.labels, **kw)
            times.append(time.perf_counter() - t0)
        med = statistics.median(times)
        s = metrics.ctc_tracking_scores(movie.labels, movie.tracks, result.labels, result.tracks)
        print(f"{name:<34} median {med:.2f} s for {movie.labels.shape[0]} frames = "
              f"{movie.labels.shape[0] / med:.2f} frames/s  (TRA {s.tra:.4f})")  # fmt: skip


if __name__ == "__main__":
    main()
