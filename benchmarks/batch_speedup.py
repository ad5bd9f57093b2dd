"""Speed-up of ``cellscape.batch.segment_many`` with 2 worker processes over 1.

Writes N synthetic nuclei fields (512 x 512, uint16 TIFF) once, then segments all of them with
the classical model on a LocalCluster of 1 worker and of 2 workers (fresh output folder each
time, so nothing is skipped), ``--repeats`` times alternately. Times are from submitting the
batch to the merged table being written, the cluster start-up excluded (it is paid once per
run, not per image); medians are reported with their ratio.

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
    from distributed import Client, LocalCluster

    from cellscape import batch

    shutil.rmtree(out, ignore_errors=True)
    with (
        LocalCluster(n_workers=n_workers, threads_per_worker=1, dashboard_address=":0") as lc,
        Client(lc) as client,
    ):
        client.run(lambda: __import__("cellscape.methods.classical"))  # warm the workers
        start = time.perf_counter()
        report = batch.segment_many(paths, "classical", out, client=client)
        seconds = time.perf_counter() - start
    assert not report.failed, report.failed[0].error
    return seconds, sum(o.n_cells for o in report.done)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=HERE / "out" / "batch_speedup")
    args = parser.parse_args()
    paths = make_images(args.out / "images", args.n)
    times: dict[int, list[float]] = {1: [], 2: []}
    for _ in range(args.repeats):
        for workers in (1, 2):
            seconds, cells = run(paths, args.out / f"masks_{workers}", workers)
            times[workers].append(seconds)
            print(f"{workers} worker(s): {seconds:.1f} s for {args.n} images ({cells} cells)")
    one, two = statistics.median(times[1]), statistics.median(times[2])
    print(
        f"median over {args.repeats} run(s): 1 worker {one:.1f} s ({one / args.n * 1000:.0f} ms "
        f"per image), 2 workers {two:.1f} s; speed-up {one / two:.2f}x"
    )


if __name__ == "__main__":
    main()
