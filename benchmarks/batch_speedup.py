"""Speed-up of ``cellscape.batch.segment_many`` with 2 worker processes over 1.

Writes N synthetic nuclei fields (512 x 512, uint16 TIFF) once, then segments all of them with
the classical model on a LocalCluster of 1 worker and of 2 workers (fresh output folder each
time, so nothing is skipped), ``--repeats`` times alternately. Times are from submitting the
batch to the merged table being written, the cluster start-up excluded (it is paid once per
run, not per image); medians are reported with their ratio.

In the same run, the ceiling of the machine: the same images segmented by a plain process pool
of 1 and of 2 processes (no Dask, no manifest, no merged table), so the Dask figure can be read
against what two cores give this workload at all (memory bandwidth and caches are shared).

Usage: python benchmarks/batch_speedup.py [--n 200] [--repeats 3] [--out DIR]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def make_images(folder: Path, n: int) -> list[Path]:
    from cellscape import io, synthetic

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        p = folder / f"field{i:04d}.tif"
        if not p.exists():
            io.write_tiff(p, synthetic.nuclei((512, 512), n_nuclei=250, seed=i).image)
        paths.append(p)
    return paths


def run(paths: list[Path], out: Path, n_workers: int) -> tuple[float, int]:
    from cellscape import batch

    shutil.rmtree(out, ignore_errors=True)
    # the product's own local cluster (its worker settings included)
    with batch.cluster_client(n_workers=n_workers) as client:
        client.run(lambda: __import__("cellscape.methods.classical"))  # warm the workers
        start = time.perf_counter()
        report = batch.segment_many(paths, "classical", out, client=client)
        seconds = time.perf_counter() - start
    assert not report.failed, report.failed[0].error
    return seconds, sum(o.n_cells for o in report.done)


def _segment_chunk(args: tuple[list[str], str]) -> int:
    from cellscape.models import load_model
    from cellscape.pipeline import OutputOptions, segment_file

    paths, out = args
    model = load_model("classical")
    return sum(
        segment_file(Path(p), model, Path(out), OutputOptions(save_csv=True)).n_cells for p in paths
    )


def run_pool(paths: list[Path], out: Path, n_workers: int) -> float:
    """Seconds to segment ``paths`` with ``n_workers`` plain processes (each takes an equal
    share; process start-up and imports excluded by a warm-up task)."""
    from concurrent.futures import ProcessPoolExecutor

    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    shares = [[str(p) for p in paths[i::n_workers]] for i in range(n_workers)]
    with ProcessPoolExecutor(n_workers) as pool:
        list(pool.map(_segment_chunk, [([], str(out))] * n_workers))  # warm the processes
        start = time.perf_counter()
        list(pool.map(_segment_chunk, [(share, str(out)) for share in shares]))
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=HERE / "out" / "batch_speedup")
    args = parser.parse_args()
    paths = make_images(args.out / "images", args.n)
    times: dict[int, list[float]] = {1: [], 2: []}
    pool_times: dict[int, list[float]] = {1: [], 2: []}
    for _ in range(args.repeats):
        for workers in (1, 2):
            seconds, cells = run(paths, args.out / f"masks_{workers}", workers)
            times[workers].append(seconds)
            print(f"dask, {workers} worker(s): {seconds:.1f} s for {args.n} images ({cells} cells)")
            seconds = run_pool(paths, args.out / f"pool_{workers}", workers)
            pool_times[workers].append(seconds)
            print(f"process pool, {workers} process(es): {seconds:.1f} s", flush=True)
    one, two = statistics.median(times[1]), statistics.median(times[2])
    print(
        f"median over {args.repeats} run(s): 1 worker {one:.1f} s ({one / args.n * 1000:.0f} ms "
        f"per image), 2 workers {two:.1f} s; speed-up {one / two:.2f}x"
    )
    one, two = statistics.median(pool_times[1]), statistics.median(pool_times[2])
    print(
        f"ceiling (plain process pool): 1 process {one:.1f} s, 2 processes {two:.1f} s; "
        f"speed-up {one / two:.2f}x"
    )


if __name__ == "__main__":
    main()
