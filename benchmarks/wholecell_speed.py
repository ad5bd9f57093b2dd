"""Speed of single-channel whole-cell segmentation on one 2048 x 2048 image, end to end.

Where the time goes: preprocessing (top-hat + normalisation), the network (tiled), nuclei seeds
(LoG + multi-Otsu + h-minima watershed), cells (evidence + expected-area Otsu + seeded
watershed), and writing back at the image's pixel grid. Median of ``--repeats`` runs after one
warm-up. Run on the quiet machine:

    /tmp/quiet .venv/bin/python benchmarks/wholecell_speed.py [--model FOLDER]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import torch

from cellscape import synthetic
from cellscape.methods.wholecell import WholeCell
from cellscape.models import load_model

ROOT = Path(__file__).resolve().parents[1]


def timed_segment(model: WholeCell, image: np.ndarray) -> dict[str, float]:
    from cellscape.post.seeds import cell_evidence, cells_from_nuclei, nuclei_from_map
    from cellscape.twochannel import from_working_scale

    times = {}
    t0 = time.perf_counter()
    model.preprocess(image)
    t1 = time.perf_counter()
    # the network as segment() runs it (tiles, channels-last); preprocessing is repeated inside
    # and its time (t1 - t0) is subtracted below
    maps, intensity = model.predict_working(image)
    t2 = time.perf_counter()
    wp = model.working_pixel_size
    nuclei = nuclei_from_map(
        maps[0],
        pixel_size=wp,
        nucleus_diameter=model.nucleus_diameter,
        sensitivity=model.sensitivity,
        levels=model.nucleus_levels,
        h=model.h,
        min_area=model.min_nucleus_area,
    )
    t3 = time.perf_counter()
    evidence = cell_evidence(intensity, maps[0] + maps[1], model.smoothing / wp)
    cells, _ = cells_from_nuclei(
        evidence, nuclei, cell_area=model.cell_area or model.cell_area_ or 600, pixel_size=wp
    )
    t4 = time.perf_counter()
    cells = from_working_scale(cells, image.shape, labels=True)
    t5 = time.perf_counter()
    times.update(
        preprocess=t1 - t0,
        network=(t2 - t1) - (t1 - t0),
        nuclei_seeds=t3 - t2,
        cells_watershed=t4 - t3,
        back_to_image=t5 - t4,
        total=t5 - t1,  # one preprocessing, inside predict_working
        n_cells=float(cells.max()),
    )
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(ROOT / "runs/wholecell_synthetic/model"))
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--tile", type=int, default=1024)
    parser.add_argument(
        "--paper-net",
        action="store_true",
        help="also time the network alone with the paper's 32-64-128-128-256 filters "
        "(random weights: time only)",
    )
    args = parser.parse_args()
    threads = int(os.environ.get("CELLSCAPE_THREADS", 0)) or os.cpu_count()
    torch.set_num_threads(threads)
    model = load_model(args.model)
    model.tile = args.tile
    s = synthetic.whole_cells((args.size, args.size), n_cells=args.size**2 // 2500, seed=7)
    image = s.image.astype(np.float32)
    print(
        f"model {args.model}: filters {model.filters}; {threads} torch threads; "
        f"image {image.shape}, {s.labels.max()} cells; tile {model.tile}"
    )
    timed_segment(model, image)  # warm-up
    runs = [timed_segment(model, image) for _ in range(args.repeats)]
    # the public call, as `cellscape segment` runs it
    t = time.perf_counter()
    model.segment(image)
    public = time.perf_counter() - t
    keys = [k for k in runs[0] if k != "n_cells"]
    total = float(np.median([r["total"] for r in runs]))
    for k in keys:
        med = float(np.median([r[k] for r in runs]))
        print(f"  {k:16s} {med:6.2f} s  ({100 * med / total:4.0f} %)")
    print(f"  cells found      {runs[0]['n_cells']:.0f}")
    print(f"WholeCell.segment(): {public:.2f} s (target <= 10 s)")
    if args.paper_net:
        paper = WholeCell(tile=args.tile)
        paper.net_ = paper._build().eval()
        paper.predict_working(image)  # warm-up
        t = time.perf_counter()
        paper.predict_working(image)
        print(
            f"paper network 32-64-128-128-256, preprocess + network: "
            f"{time.perf_counter() - t:.2f} s"
        )


if __name__ == "__main__":
    main()
