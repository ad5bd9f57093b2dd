"""Reporter quantification (nuclear / cytoplasmic intensity and ratios) and ``quantify``."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import tifffile
from typer.testing import CliRunner

from cellscape import quantify, synthetic
from cellscape.cli import app


def _cell(shape=(40, 40), nuc_r=6, cell_r=11):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    d = np.hypot(yy - 20, xx - 20)
    nuclei = (d <= nuc_r).astype(np.int32) * 3
    cells = (d <= cell_r).astype(np.int32) * 3
    return nuclei, cells, d


def test_exact_ratios_on_a_clean_cell():
    nuclei, cells, d = _cell()
    image = np.where(nuclei > 0, 200.0, np.where(cells > 0, 50.0, 10.0))
    table = quantify.reporter_table(nuclei, image, cells, background=10.0)
    assert sorted(table["method"].unique()) == ["mask", "mixture", "ring"]
    for _, row in table.iterrows():
        assert row["nucleus"] == pytest.approx(190.0)
        assert row["cytoplasm"] == pytest.approx(40.0)
        assert row["nc_ratio"] == pytest.approx(4.75)
        assert row["cn_ratio"] == pytest.approx(40 / 190)


def test_mixture_ignores_dim_pixels_of_a_loose_mask():
    # The outer half of the cell mask holds no reporter (background): the whole-mask mean is
    # diluted, the mixture's bright component is not.
    nuclei, cells, d = _cell()
    rng = np.random.default_rng(0)
    image = np.where(nuclei > 0, 200.0, np.where(d <= 8.5, 60.0, 0.0)) + rng.normal(0, 2, d.shape)
    table = quantify.reporter_table(nuclei, image, cells, background=0.0).set_index("method")
    assert table.loc["mixture", "cytoplasm"] == pytest.approx(60.0, abs=1.5)
    assert table.loc["mask", "cytoplasm"] < 45.0


def test_cytoring_stays_inside_cell_and_splits_neighbours():
    nuclei = np.zeros((20, 30), np.int32)
    nuclei[8:12, 5:9] = 1
    nuclei[8:12, 13:17] = 2
    ring = quantify.cytoring_labels(nuclei, radius=3)
    assert not np.any((ring > 0) & (nuclei > 0))
    assert set(np.unique(ring)) == {0, 1, 2}
    assert ring[10, 10] == 1 and ring[10, 11] == 2  # split halfway between the nuclei
    cells = np.zeros_like(nuclei)
    cells[6:14, 3:11] = 1
    ring_in = quantify.cytoring_labels(nuclei, radius=3, cells=cells)
    assert set(np.unique(ring_in)) == {0, 1}
    gap = quantify.cytoring_labels(nuclei, radius=2, gap=1)
    assert gap[10, 9] == 0 and gap[10, 4] == 0 and gap[10, 3] == 1


def test_synthetic_timelapse_ratios_close_to_truth():
    s = synthetic.timelapse(shape=(96, 96), n_frames=4, n_cells=6, blur=0.0, photons=None,
                            noise=0.0, texture=0.0, seed=3)  # fmt: skip
    cells = np.where(s.labels > 0, s.labels, s.cytoplasm_labels)
    table = quantify.reporter_table(s.labels, s.reporter_images, cells, methods=("mask", "ring"))
    truth = s.reporter_ratio[table["frame"].to_numpy(), table["id"].to_numpy() - 1]
    err = np.abs(table["cn_ratio"] - truth) / truth
    # no blur, no noise: the true cytoplasm mask gives the ratio to rounding
    assert err[table["method"] == "mask"].max() < 0.02
    assert np.all(np.isfinite(table["nc_ratio"]))
    fig = quantify.plot_reporter_traces(table)
    assert len(fig.axes) == 2


def test_bad_arguments():
    nuclei, cells, _ = _cell()
    with pytest.raises(ValueError, match="needs whole-cell"):
        quantify.reporter_table(nuclei, nuclei.astype(float), methods="mask")
    with pytest.raises(ValueError, match="unknown method"):
        quantify.reporter_table(nuclei, nuclei.astype(float), cells, methods="blob")
    with pytest.raises(ValueError, match="does not match"):
        quantify.reporter_table(nuclei, np.zeros((3, 3)), cells)


def test_quantify_command(tmp_path):
    s = synthetic.timelapse(shape=(64, 64), n_frames=3, n_cells=3, seed=2)
    cells = np.where(s.labels > 0, s.labels, s.cytoplasm_labels)
    # multi-page (T, Y, X) TIFFs as microscopes and Fiji write them
    tifffile.imwrite(tmp_path / "cells.tif", cells.astype(np.uint16), photometric="minisblack")
    tifffile.imwrite(tmp_path / "nuclei.tif", s.labels.astype(np.uint16), photometric="minisblack")
    tifffile.imwrite(tmp_path / "reporter.tif", s.reporter_images, photometric="minisblack")
    out = tmp_path / "table.csv"
    res = CliRunner().invoke(
        app,
        ["quantify", str(tmp_path / "cells.tif"), str(tmp_path / "reporter.tif"),
         "--nuclei", str(tmp_path / "nuclei.tif"), "--out", str(out), "--method", "ring",
         "--plot", str(tmp_path / "traces.png")],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    table = pd.read_csv(out)
    assert set(table["method"]) == {"ring"}
    assert {"nc_ratio", "cn_ratio", "frame", "id"} <= set(table.columns)
    assert (tmp_path / "traces.png").exists()
    bad = CliRunner().invoke(
        app,
        ["quantify", str(tmp_path / "cells.tif"), str(tmp_path / "reporter.tif"),
         "--nuclei", str(tmp_path / "cells.tif"), "--method", "blob", "--out", str(out)],
    )  # fmt: skip
    assert bad.exit_code == 2 and "unknown method" in bad.output
