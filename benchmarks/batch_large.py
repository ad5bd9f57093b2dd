"""Block-wise segmentation of an image larger than memory: peak memory, and no seams.

1. Builds a 20000 x 20000 synthetic nuclei mosaic (a round "tissue" section on an empty slide)
   as an OME-Zarr, tile by tile on the Dask workers: the mosaic is never in memory. Tiles are
   8 simulated 1024 x 1024 fields in 8 flips/rotations each (simulation is the slow part).
2. Segments it with ``cellscape.batch.segment_large`` (classical model, diameter fixed at 16 px,
   2 worker processes, empty blocks skipped) while sampling the resident memory (RSS) of the
   whole process tree (this process, the Dask scheduler and the workers) every 0.1 s.
3. Cuts the central 8192 x 8192 crop, segments it in memory (one call to the model) and
   block-wise, and compares: cell counts and AP at IoU 0.5 of one against the other.
4. Saves docs/images/scale_mosaic.png (overview with the block grid, and a zoom on a block
   corner showing cells that cross block borders).

Usage: python benchmarks/batch_large.py [--size 20000] [--crop 8192] [--block 2560] [--out DIR]
"""

from __future__ import annotations

import argparse
import threading
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
TILE = 1024
DIAMETER = 16.0


class PeakRSS:
    """Peak summed RSS (bytes) of this process and all its descendants, sampled in a thread."""

    def __init__(self, interval: float = 0.1):
        import psutil

        self._proc = psutil.Process()
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> int:
        total = 0
        for p in [self._proc, *self._proc.children(recursive=True)]:
            try:
                total += p.memory_info().rss
            except Exception:  # a process that just ended
                pass
        return total

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self._sample())
            time.sleep(self.interval)

    def __enter__(self):
        self.peak = self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._sample())


_TILES: dict = {}
N_DISTINCT = 8  # distinct simulated tiles, each used in 8 flips/rotations (synthesis is slow)


def _tile(seed: int, empty: bool):
    from cellscape import synthetic

    key = (seed % N_DISTINCT, empty)
    if key not in _TILES:
        s = synthetic.nuclei((TILE, TILE), n_nuclei=0 if empty else 1100, seed=key[0])
        _TILES[key] = (s.image, int(s.labels.max()))
    image, n = _TILES[key]
    variant = (seed // N_DISTINCT) % 8
    image = np.rot90(image, variant % 4)
    return (image[:, ::-1] if variant >= 4 else image), n


def _make_tile(array, ty: int, tx: int, size: int, seed: int) -> int:
    """Worker task: one TILE x TILE tile of the mosaic, nuclei inside the tissue disk only."""
    y0, x0 = ty * TILE, tx * TILE
    h, w = min(TILE, size - y0), min(TILE, size - x0)
    yc, xc = y0 + h / 2 - size / 2, x0 + w / 2 - size / 2
    inside = (yc**2 + xc**2) ** 0.5 < 0.45 * size
    image, n = _tile(seed, not inside)
    array[y0 : y0 + h, x0 : x0 + w] = image[:h, :w]
    return n if inside else 0


def build_mosaic(path: Path, size: int, client) -> int:
    from cellscape import io

    with io.ome_zarr_image_writer(
        path, (size, size), np.uint16, io.ImageMeta(pixel_size=0.65), chunks=TILE
    ) as array:
        n = -(-size // TILE)
        futures = [
            client.submit(_make_tile, array, ty, tx, size, ty * n + tx, pure=False)
            for ty in range(n)
            for tx in range(n)
        ]
        return int(sum(client.gather(futures)))


def copy_crop(src: Path, dst: Path, y0: int, size: int) -> None:
    """Copy a square crop of an OME-Zarr into a new one, one tile-row at a time."""
    from cellscape import io

    image = io.LazyImage(src)
    with io.ome_zarr_image_writer(dst, (size, size), image.dtype, image.meta) as array:
        for r in range(0, size, TILE):
            array[r : r + TILE] = image.window(y0 + r, y0 + min(r + TILE, size), y0, y0 + size)


def figure(mosaic: Path, result, out_png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import zarr
    from matplotlib.patches import Rectangle
    from skimage.segmentation import find_boundaries

    from cellscape import io

    image = io.LazyImage(mosaic)
    overview, step = image.overview(1000)
    labels = zarr.open_array(str(mosaic / "labels" / result.name / "0"), mode="r")
    # a block corner near the centre of the image
    corner = next(b.core[1] for b in result.blocks if b.core[1] > image.shape[0] // 2 - 1500)
    half = 120
    box = (corner - half, corner + half, corner - half, corner + half)
    lab = np.asarray(labels[box[0] : box[1], box[2] : box[3]])
    img = image.window(*box).astype(np.float32)
    fig, axes = plt.subplots(1, 2, figsize=(10, 5))
    axes[0].imshow(overview, cmap="gray", vmax=np.percentile(overview, 99.5))
    for b in result.blocks:
        y0, y1, x0, x1 = (v / step for v in b.core)
        axes[0].add_patch(
            Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, lw=0.4, color="tab:orange")
        )
    axes[0].set_title(f"{image.shape[0]} x {image.shape[1]} mosaic, {result.n_blocks} blocks")
    rng = np.random.default_rng(0)
    colours = rng.uniform(0.2, 1.0, (int(lab.max()) + 1, 3))
    rgb = np.repeat((img / np.percentile(img, 99.8)).clip(0, 1)[..., None], 3, axis=2)
    edges = find_boundaries(lab, mode="inner")
    rgb[edges] = colours[lab[edges]]
    axes[1].imshow(rgb)
    axes[1].axhline(half - 0.5, color="white", ls="--", lw=0.8)
    axes[1].axvline(half - 0.5, color="white", ls="--", lw=0.8)
    axes[1].set_title("zoom on a block corner: one id per cell across borders")
    for ax in axes:
        ax.set_axis_off()
    fig.tight_layout()
    fig.savefig(out_png, dpi=80)
    plt.close(fig)
    from PIL import Image

    # a 128-colour palette keeps the PNG small (the docs' limit is 300 KB)
    Image.open(out_png).convert("RGB").quantize(128).save(out_png, optimize=True)


def main() -> None:
    from distributed import Client, LocalCluster

    from cellscape import batch, io, metrics
    from cellscape.models import load_model

    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=20000)
    parser.add_argument("--crop", type=int, default=8192)
    parser.add_argument("--block", type=int, default=2560)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=HERE / "out" / "batch_large")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    mosaic = args.out / "mosaic.ome.zarr"
    params = {"diameter": DIAMETER}

    with (
        LocalCluster(n_workers=args.workers, threads_per_worker=1, dashboard_address=":0") as lc,
        Client(lc) as client,
    ):
        t = time.perf_counter()
        with PeakRSS() as mem_build:
            n_true = build_mosaic(mosaic, args.size, client)
        print(f"mosaic {args.size} x {args.size} built in {time.perf_counter() - t:.0f} s "
              f"(about {n_true} nuclei), peak RSS {mem_build.peak / 2**30:.2f} GiB")  # fmt: skip
        client.restart()  # start the measurement from fresh workers
        with PeakRSS() as mem:
            result = batch.segment_large(
                mosaic, "classical", model_params=params, block_size=args.block,
                skip_empty=True, client=client,
            )  # fmt: skip
        print(
            f"segment_large {args.size} x {args.size}: {result.n_cells} cells, "
            f"{result.n_blocks} blocks ({result.n_skipped} skipped as empty), "
            f"{result.n_joined} pieces joined across borders, {result.seconds:.0f} s, "
            f"peak RSS of the process tree {mem.peak / 2**30:.2f} GiB"
        )

        crop = args.out / "crop.ome.zarr"
        y0 = (args.size - args.crop) // 2
        copy_crop(mosaic, crop, y0, args.crop)
        crop_result = batch.segment_large(
            crop, "classical", model_params=params, block_size=args.block, client=client
        )
    blockwise = io.read_ome_zarr_labels(crop)
    image, meta = io.read_image(crop)
    t = time.perf_counter()
    with PeakRSS() as mem_full:
        in_memory = load_model("classical", **params).segment(image, meta)
    seconds_full = time.perf_counter() - t
    n_a, n_b = int(in_memory.max()), len(np.unique(blockwise)) - 1
    ap = metrics.average_precision(in_memory, blockwise, 0.5)
    ap_rev = metrics.average_precision(blockwise, in_memory, 0.5)
    print(
        f"crop {args.crop} x {args.crop}: in memory {n_a} cells ({seconds_full:.0f} s, peak "
        f"{mem_full.peak / 2**30:.2f} GiB), block-wise {n_b} cells ({crop_result.seconds:.0f} s, "
        f"{crop_result.n_blocks} blocks); count difference {abs(n_a - n_b) / n_a * 100:.3f} %; "
        f"AP@0.5 block-wise vs in-memory {ap:.4f} (reverse {ap_rev:.4f})"
    )
    png = HERE.parent / "docs" / "images" / "scale_mosaic.png"
    figure(mosaic, result, png)
    print(f"figure: {png}")


if __name__ == "__main__":
    main()
