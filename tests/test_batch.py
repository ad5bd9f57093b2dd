"""Batch and block-wise segmentation on a real Dask LocalCluster (worker processes)."""

from __future__ import annotations

import functools
import json
import os

import numpy as np
import pandas as pd
import pytest
from scipy import ndimage as ndi
from typer.testing import CliRunner

from cellscape import batch, io, metrics, synthetic, tiling
from cellscape.cli import app
from cellscape.models import load_model

runner = CliRunner()
PARAMS = {"diameter": 14.0}


@pytest.fixture(scope="module")
def client():
    # the product's own local cluster: 2 single-threaded worker processes, its worker settings
    with batch.cluster_client(n_workers=2) as c:
        yield c


def test_local_cluster_workers_are_single_threaded_processes_without_the_profiler(client):
    import dask

    info = client.scheduler_info()["workers"]
    assert len(info) == 2 and all(w["nthreads"] == 1 for w in info.values())
    # read inside each worker process: the settings travelled with the spawn
    keys = list(batch.LOCAL_WORKER_CONFIG)
    seen = client.run(lambda: [dask.config.get(k) for k in keys])
    for values in seen.values():
        assert values == [batch.LOCAL_WORKER_CONFIG[k] for k in keys]
    pids = client.run(os.getpid)
    assert len(set(pids.values()) | {os.getpid()}) == 3  # separate processes, not threads


def _same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    """Same cells (as pixel sets), whatever the ids."""
    pairs = np.unique(np.stack([a.ravel(), b.ravel()]), axis=1)
    return (
        (pairs[0] == 0).sum() <= 1
        and len(np.unique(pairs[0])) == pairs.shape[1]
        and len(np.unique(pairs[1])) == pairs.shape[1]
    )


# --- pure stitching ---------------------------------------------------------------------------


def test_stitching_gives_one_id_per_cell_and_keeps_touching_cells_apart():
    truth = synthetic.nuclei((300, 260), n_nuclei=120, touching=0.8, seed=2).labels
    # a "model" that sees the true cells of any window: every cell cut by a block border must
    # come back whole, and touching cells on either side of a border must stay two cells
    blocks_seen = []

    def oracle(window):
        blocks_seen.append(window.shape)
        return window

    stitched = tiling.segment_tiled(truth, oracle, block_size=64, halo=30)
    assert len(blocks_seen) == 5 * 5
    assert stitched.max() == truth.max() == len(np.unique(stitched)) - 1
    assert _same_partition(stitched, truth)


def test_stitching_connected_components_equals_whole_image():
    rng = np.random.default_rng(0)
    mask = ndi.gaussian_filter(rng.random((200, 230)), 3) > 0.5
    whole, n = ndi.label(mask)
    stitched = tiling.segment_tiled(mask, lambda w: ndi.label(w)[0], block_size=50, halo=40)
    assert stitched.max() == n
    assert _same_partition(stitched, whole)


def test_merge_labels_joins_chains_and_numbers_consecutively():
    links = [(0, np.array([2]), 1, np.array([1])), (1, np.array([1]), 2, np.array([3]))]
    luts, n = tiling.merge_labels([2, 1, 3], links)
    assert n == 4  # 6 pieces, 2 links joining three of them
    assert luts[0].tolist() == [0, 1, 2]
    assert luts[1].tolist() == [0, 2]
    assert luts[2].tolist() == [0, 3, 4, 2]


def test_block_grid_cores_tile_the_image():
    blocks = tiling.block_grid((100, 70), 32, 8)
    cover = np.zeros((100, 70), int)
    for b in blocks:
        cover[b.core[0] : b.core[1], b.core[2] : b.core[3]] += 1
        assert b.outer[0] == max(0, b.core[0] - 8) and b.outer[3] == min(70, b.core[3] + 8)
    assert (cover == 1).all()
    assert (
        len(tiling.neighbour_pairs(blocks)) == 4 * 2 + 3 * 3 + 2 * 3 * 2
    )  # 4x3 grid: rows, columns, diagonals


# --- many images ------------------------------------------------------------------------------


def _write_images(folder, n=4):
    folder.mkdir()
    for i in range(n):
        s = synthetic.nuclei((96, 96), n_nuclei=8, seed=i)
        io.write_tiff(folder / f"field{i}.tif", s.image)
    return sorted(folder.glob("*.tif"))


def test_segment_many_isolates_failures_and_merges_tables(tmp_path, client):
    images = _write_images(tmp_path / "in")
    (tmp_path / "in" / "broken.tif").write_bytes(b"II*\x00 truncated")
    seen = []
    report = batch.segment_many(
        [tmp_path / "in"], "classical", tmp_path / "out", client=client, progress=seen.append
    )
    assert len(seen) == 5
    assert [o.path.name for o in report.failed] == ["broken.tif"]
    assert "broken.tif" in report.failed[0].error
    assert len(report.done) == 4
    table = pd.read_csv(report.table)
    assert sorted(table["image"].unique()) == [p.stem for p in images]
    assert len(table) == sum(o.n_cells for o in report.done) > 0
    manifest = json.loads(report.manifest.read_text())
    entry = manifest["images"]["field0"]["outputs"]["masks"]
    assert entry["size"] == (tmp_path / "out" / "field0_masks.tif").stat().st_size
    assert len(entry["sha256"]) == 64
    masks = io.read_labels(tmp_path / "out" / "field1_masks.tif")
    assert masks.max() == report.outcomes[1].n_cells


def test_pixel_size_reaches_the_tables_and_a_new_one_redoes_the_images(tmp_path, client):
    _write_images(tmp_path / "in", n=2)
    kw = {"client": client}
    opts = batch.OutputOptions(pixel_size=0.5)
    first = batch.segment_many([tmp_path / "in"], "classical", tmp_path / "out", opts, **kw)
    table = pd.read_csv(first.table)
    assert (table["area_um2"] == table["area"] * 0.25).all()
    same = batch.segment_many([tmp_path / "in"], "classical", tmp_path / "out", opts, **kw)
    assert len(same.skipped) == 2
    # another pixel size changes the outputs, so nothing done under the old one is reused
    other = batch.OutputOptions(pixel_size=0.25)
    again = batch.segment_many([tmp_path / "in"], "classical", tmp_path / "out", other, **kw)
    assert len(again.done) == 2
    table = pd.read_csv(again.table)
    assert (table["area_um2"] == table["area"] * 0.0625).all()


def test_killed_batch_resumes_without_losing_or_redoing_work(tmp_path, client):
    _write_images(tmp_path / "in", n=5)
    out = tmp_path / "out"
    first = batch.segment_many([tmp_path / "in"], "classical", out, client=client)
    assert len(first.done) == 5
    # what a run killed at various moments leaves behind:
    (out / "field1_masks.tif").write_bytes((out / "field1_masks.tif").read_bytes()[:50])
    (out / ".cellscape-batch" / "field2.json").unlink()  # outputs written, record not yet
    (out / "field2_cells.csv").unlink()
    (out / "field3_cells.csv").write_text("id,area\n1,")  # corrupted behind our back
    (out / ".field4_masks.tif.x1y2.tmp.tif").write_bytes(b"half")  # atomic writer's leftover
    (out / "cellscape-manifest.json").unlink()  # killed before the manifest was updated
    untouched = {p: p.stat().st_mtime_ns for p in out.glob("field[04]_*")}

    second = batch.segment_many([tmp_path / "in"], "classical", out, client=client)
    status = {o.path.stem: o.status for o in second.outcomes}
    assert status == {
        "field0": "skipped",
        "field1": "done",
        "field2": "done",
        "field3": "done",
        "field4": "skipped",
    }
    assert {p: p.stat().st_mtime_ns for p in untouched} == untouched  # nothing redone
    for o in first.outcomes:  # nothing lost
        assert io.read_labels(out / f"{o.path.stem}_masks.tif").max() == o.n_cells
    assert len(pd.read_csv(second.table)) == sum(o.n_cells for o in first.outcomes)

    third = batch.segment_many([tmp_path / "in"], "classical", out, client=client)
    assert all(o.status == "skipped" for o in third.outcomes)
    changed = batch.segment_many(
        [tmp_path / "in"], "classical", out, model_params={"diameter": 9.0}, client=client
    )
    assert all(o.status == "done" for o in changed.outcomes)  # other model: redo all


# --- one big image ----------------------------------------------------------------------------


def test_segment_large_matches_in_memory_and_writes_ngff_labels(tmp_path, client):
    s = synthetic.nuclei((440, 480), n_nuclei=320, seed=5)
    path = tmp_path / "big.ome.zarr"
    io.write_ome_zarr(path, s.image, io.ImageMeta(pixel_size=0.5))
    result = batch.segment_large(
        path, "classical", model_params=PARAMS, block_size=160, halo=56, client=client
    )
    labels = io.read_ome_zarr_labels(path, "masks")
    assert result.n_blocks == 9 and result.n_joined > 0
    assert labels.max() == result.n_cells == len(np.unique(labels)) - 1
    model = load_model("classical", **PARAMS)
    # the cluster gives exactly the reference block-wise result ...
    reference = tiling.segment_tiled(s.image, model.segment, 160, 56)
    assert _same_partition(labels, reference)
    # ... which matches segmenting the whole image at once
    whole = model.segment(s.image)
    assert abs(int(whole.max()) - result.n_cells) <= 0.02 * whole.max()
    assert metrics.average_precision(whole, labels, 0.5) >= 0.97

    from ome_zarr.io import parse_url
    from ome_zarr.reader import Label, Reader

    # what napari's OME-Zarr reader sees: the image, and "masks" as a label layer over it
    nodes = list(Reader(parse_url(str(path)))())
    label_nodes = [n for n in nodes if n.load(Label) is not None]
    assert [n.metadata.get("name") for n in label_nodes] == ["masks"]
    assert tuple(label_nodes[0].data[0].shape) == s.image.shape


def test_segment_large_tiff_to_new_zarr_skips_empty_blocks(tmp_path, client):
    s = synthetic.nuclei((400, 400), n_nuclei=150, seed=1)
    image = s.image.copy()
    image[:, 220:] = np.median(image[s.labels == 0])  # an empty right-hand side
    io.write_tiff(tmp_path / "slide.tif", image)
    out = tmp_path / "slide.ome.zarr"
    result = batch.segment_large(
        tmp_path / "slide.tif", "classical", out, model_params=PARAMS, block_size=128,
        halo=40, skip_empty=True, client=client,
    )  # fmt: skip
    assert result.n_skipped >= 3
    copied, _ = io.read_image(out)
    assert np.array_equal(copied, image)
    labels = io.read_ome_zarr_labels(out)
    assert labels.shape == image.shape and labels[:, 260:].max() == 0
    assert labels.max() == result.n_cells > 20
    with pytest.raises(io.CellscapeError, match="need an output OME-Zarr"):
        batch.segment_large(tmp_path / "slide.tif", client=client)


# --- command line -----------------------------------------------------------------------------


def test_cli_batch_reports_failures_and_resumes(tmp_path, client):
    _write_images(tmp_path / "in", n=3)
    (tmp_path / "in" / "bad.tif").write_bytes(b"not an image")
    args = ["batch", str(tmp_path / "in"), "--model", "classical", "--out", str(tmp_path / "o")]
    args += ["--scheduler", client.scheduler.address]  # the running cluster of the fixture
    result = runner.invoke(app, args)
    assert result.exit_code == 1, result.output
    assert "3 segmented, 0 already done (skipped), 1 failed" in result.output
    assert "bad.tif" in result.output
    assert (tmp_path / "o" / "cells.csv").exists()
    again = runner.invoke(app, args)
    assert "0 segmented, 3 already done (skipped), 1 failed" in again.output
    assert runner.invoke(app, [*args, "--workers", "2"]).exit_code == 2  # not both


def test_cli_segment_sends_big_images_block_wise(tmp_path, monkeypatch, client):
    s = synthetic.nuclei((300, 300), n_nuclei=100, seed=4)
    io.write_ome_zarr(tmp_path / "scan.ome.zarr", s.image)
    monkeypatch.setattr(batch, "LARGE_IMAGE_PIXELS", 200 * 200)
    # on the fixture's cluster rather than a new LocalCluster (saves its start-up time)
    monkeypatch.setattr(
        batch, "segment_large", functools.partial(batch.segment_large, client=client)
    )
    result = runner.invoke(
        app, ["segment", str(tmp_path / "scan.ome.zarr"), "-o", str(tmp_path / "r")]
    )
    assert result.exit_code == 0, result.output
    labels = io.read_ome_zarr_labels(tmp_path / "r" / "scan.ome.zarr")
    assert labels.max() > 50
    assert not (tmp_path / "scan.ome.zarr" / "labels").exists()  # the input is left alone


def test_merged_table_quotes_odd_names_and_aligns_differing_columns(tmp_path):
    pd.DataFrame({"label": [1, 2], "area": [10, 20]}).to_csv(tmp_path / "a_cells.csv", index=False)
    # a name with a comma and a quote must stay one CSV field
    pd.DataFrame({"label": [1], "area": [30]}).to_csv(tmp_path / 'b,"x"_cells.csv', index=False)
    # columns in another order and one missing: aligned to the first table's header
    pd.DataFrame({"area": [40], "extra": [1]}).to_csv(tmp_path / "c_cells.csv", index=False)
    pd.DataFrame({"label": [], "area": []}).to_csv(tmp_path / "d_cells.csv", index=False)  # none
    inputs = [tmp_path / f"{s}.tif" for s in ("a", 'b,"x"', "c", "d")]
    table = pd.read_csv(batch._merge_tables(tmp_path, inputs))
    assert list(table.columns) == ["image", "label", "area"]
    assert table["image"].tolist() == ["a", "a", 'b,"x"', "c"]
    assert table["area"].tolist() == [10, 20, 30, 40]
    assert table["label"].isna().tolist() == [False, False, False, True]
