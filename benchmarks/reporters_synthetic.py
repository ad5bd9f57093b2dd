"""Kinase-reporter ratios recovered on synthetic time-lapses with known truth.

cellscape.synthetic.timelapse simulates a reporter channel whose true cytoplasm / nucleus
(C/N) ratio per cell and frame is known. We measure C/N with the three cytoplasm estimates of
cellscape.quantify.reporter_table (whole cytoplasm mask, cytoring, Gaussian mixture) and report
the median and 90th-percentile relative error |C/N - truth| / truth over all cell-frames, in
two settings:

* exact masks: the cell mask is exactly nucleus + the simulated cytoplasm ring (4 px);
* loose masks: the cell mask is 3 px wider than the cytoplasm, so it also holds background,
  as a generous whole-cell segmentation would.

Seeds 100-104 (never used while writing the code; tests use seeds 0-3). Images are blurred
(sigma 1 px) with Poisson + Gaussian noise, as synthetic.timelapse makes them by default.
A figure of C/N traces (truth vs. the three estimates) goes to
docs/images/tracking_reporter_traces.png.

Run:  python benchmarks/reporters_synthetic.py
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from skimage.segmentation import expand_labels  # noqa: E402

from cellscape import quantify, synthetic, track  # noqa: E402

IMAGES = Path(__file__).resolve().parents[1] / "docs" / "images"
SEEDS = range(100, 105)


def one(seed: int, loose: int):
    s = synthetic.timelapse(shape=(160, 160), n_frames=12, n_cells=12, seed=seed)
    cells = np.where(s.labels > 0, s.labels, s.cytoplasm_labels)
    if loose:
        cells = np.stack([expand_labels(c, loose) for c in cells])
    table = quantify.reporter_table(s.labels, s.reporter_images, cells, ring_radius=3, ring_gap=1)
    truth = s.reporter_ratio[table["frame"].to_numpy(), table["id"].to_numpy() - 1]
    table["truth"] = truth
    table["rel_error"] = np.abs(table["cn_ratio"] - truth) / truth
    table["seed"] = seed
    return table


def main() -> None:
    rows = []
    for loose, name in ((0, "exact masks"), (3, "loose masks (+3 px)")):
        table = pd.concat([one(seed, loose) for seed in SEEDS], ignore_index=True)
        print(f"\n{name}: {len(table) // 3} cell-frames over seeds {SEEDS.start}-{SEEDS.stop - 1}")
        print(f"{'method':<10} {'median rel. error':>18} {'90th pct':>10} {'bias (median)':>14}")
        for method, g in table.groupby("method"):
            bias = float(np.median((g["cn_ratio"] - g["truth"]) / g["truth"]))
            print(f"{method:<10} {g['rel_error'].median():>18.3%} "
                  f"{g['rel_error'].quantile(0.9):>10.3%} {bias:>+14.3%}")  # fmt: skip
            rows.append((name, method, g["rel_error"].median()))
        if loose:
            picture(table[table["seed"] == SEEDS.start])


def picture(table) -> None:
    from matplotlib.figure import Figure

    life = table.groupby("id")["frame"].nunique().sort_values(ascending=False)
    ids = life.index[:3].tolist()
    fig = Figure(figsize=(9, 3), dpi=80)
    axes = fig.subplots(1, 3, sharey=True)
    colors = {"mask": "#dd8452", "ring": "#55a868", "mixture": "#c44e52"}
    for ax, cid in zip(axes, ids, strict=False):
        g = table[table["id"] == cid]
        truth = g[g["method"] == "mask"].sort_values("frame")
        ax.plot(truth["frame"], truth["truth"], "k-", lw=2, label="truth")
        for method, gm in g.groupby("method"):
            gm = gm.sort_values("frame")
            ax.plot(gm["frame"], gm["cn_ratio"], "o-", ms=3, lw=1, color=colors[method],
                    label=method)  # fmt: skip
        ax.set_title(f"cell {cid} (loose mask)", fontsize=9)
        ax.set_xlabel("frame")
    axes[0].set_ylabel("C/N ratio")
    axes[0].legend(fontsize=7, frameon=False)
    fig.tight_layout()
    IMAGES.mkdir(parents=True, exist_ok=True)
    track.save_figure(fig, IMAGES / "tracking_reporter_traces.png", dpi=80)


if __name__ == "__main__":
    main()
