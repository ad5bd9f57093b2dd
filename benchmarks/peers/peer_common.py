"""Shared helpers for the peer training scripts (StarDist, Cellpose).

Runs inside each peer's own virtual environment, so it must not import cellscape: it needs only
numpy and tifffile, which both peer environments have. Run it as a script to write the split file:

    python benchmarks/peers/peer_common.py split --out benchmarks/out/peers/split.json

The split reproduces ``cellscape.datasets.split_ids`` exactly: an id goes to validation when the
first 8 bytes of ``sha256(("cellscape-v1" + id).encode())`` read as a big-endian integer, divided
by 2**64, fall below 0.15; of the rest, those below 0.1 with salt "cellscape-tune" are the tune
images (thresholds, checkpoint choice) and the remainder are the fit images (learned from).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import tifffile

DEFAULT_DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "dsb2018" / "train"


def _unit(salt: str, item: str) -> float:
    digest = hashlib.sha256((salt + item).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def list_ids(data: Path) -> list[str]:
    """Ids of the image/mask pairs ``<id>_img.tif`` + ``<id>_masks.tif`` in ``data``, sorted."""
    ids = sorted(p.name.removesuffix("_img.tif") for p in data.glob("*_img.tif"))
    return [i for i in ids if (data / f"{i}_masks.tif").exists()]


def make_split(ids: list[str]) -> dict[str, list[str]]:
    """The project's fit / tune / val split of ``ids`` (see module docstring)."""
    val = [i for i in ids if _unit("cellscape-v1", i) < 0.15]
    rest = [i for i in ids if _unit("cellscape-v1", i) >= 0.15]
    tune = [i for i in rest if _unit("cellscape-tune", i) < 0.1]
    fit = [i for i in rest if _unit("cellscape-tune", i) >= 0.1]
    return {"fit": fit, "tune": tune, "val": val}


def common_args(description: str) -> argparse.ArgumentParser:
    """The command-line options both peer scripts share."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder of <id>_img.tif")
    p.add_argument(
        "--split-file", type=Path, required=True, help="JSON with id lists fit, tune, val"
    )
    p.add_argument("--seconds", type=float, required=True, help="wall-clock training budget")
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument("--threads", type=int, default=2, help="CPU threads for training/prediction")
    p.add_argument(
        "--limit", type=int, default=0, help="use at most N images per subset (smoke tests only)"
    )
    p.add_argument("--seed", type=int, default=0)
    return p


def load_split(path: Path, limit: int = 0) -> dict[str, list[str]]:
    """Read the split file; with ``limit`` > 0 keep the first ``limit`` ids of each subset."""
    split = json.loads(Path(path).read_text())
    for key in ("fit", "tune", "val"):
        if key not in split or not isinstance(split[key], list):
            raise SystemExit(f"{path}: missing list '{key}'")
    if limit > 0:
        split = {k: v[:limit] for k, v in split.items()}
    return split


def to_grey(image: np.ndarray) -> np.ndarray:
    """(Y, X) or (Y, X, C) image -> (Y, X) float32: mean over colour channels (alpha dropped).

    The same rule for every peer (and independent of which peer reads it), so that both see the
    same input. The H&E images of DSB2018 stay dark-nuclei-on-bright after this; the networks
    have to learn both polarities, as they do from the training images.
    """
    image = np.asarray(image)
    if image.ndim == 3:
        if image.shape[-1] == 4:
            image = image[..., :3]
        image = image.mean(axis=-1)
    if image.ndim != 2:
        raise SystemExit(f"unsupported image shape {image.shape}")
    return image.astype(np.float32)


def read_pair(data: Path, item: str) -> tuple[np.ndarray, np.ndarray]:
    """(grey image float32, labels int32) for one id."""
    image = to_grey(tifffile.imread(data / f"{item}_img.tif"))
    labels = tifffile.imread(data / f"{item}_masks.tif").astype(np.int32)
    return image, labels


def read_pairs(data: Path, ids) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Images and labels of several ids, as two lists."""
    pairs = [read_pair(data, item) for item in ids]
    return [p[0] for p in pairs], [p[1] for p in pairs]


def read_image(data: Path, item: str) -> np.ndarray:
    return to_grey(tifffile.imread(data / f"{item}_img.tif"))


def write_mask(folder: Path, item: str, labels: np.ndarray) -> None:
    """Write ``<item>_masks.tif`` (uint16) atomically: temp file in the folder, then rename."""
    folder.mkdir(parents=True, exist_ok=True)
    labels = np.asarray(labels)
    if labels.max(initial=0) > np.iinfo(np.uint16).max:
        raise SystemExit(f"{item}: more than 65535 objects, cannot write uint16")
    fd, tmp = tempfile.mkstemp(dir=folder, suffix=".tif.tmp")
    os.close(fd)
    try:
        tifffile.imwrite(tmp, labels.astype(np.uint16), compression="zlib")
        os.replace(tmp, folder / f"{item}_masks.tif")
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def read_json(path: Path) -> dict:
    """A JSON file written by :func:`write_json`."""
    return json.loads(Path(path).read_text())


def write_json(path: Path, obj: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2) + "\n")
    os.replace(tmp, path)


def image_1024(data: Path, val_ids: list[str]) -> tuple[str, np.ndarray]:
    """A 1024x1024 grey test image: a val image of that size if any, else one tiled to it.

    Tiling (``np.tile`` of the largest val image, then a crop) keeps real image content and the
    real object density, which is what the prediction time depends on.
    """
    largest, best = None, -1
    for item in val_ids:
        image = read_image(data, item)
        if image.shape == (1024, 1024):
            return item, image
        if image.size > best:
            largest, best = (item, image), image.size
    item, image = largest
    reps = (-(-1024 // image.shape[0]), -(-1024 // image.shape[1]))
    return f"{item} (tiled)", np.tile(image, reps)[:1024, :1024]


def median(values: list[float]) -> float:
    return float(np.median(values)) if values else float("nan")


class Budget:
    """Wall-clock training budget: ``spent()`` once ``seconds`` have passed since creation."""

    def __init__(self, seconds: float) -> None:
        self.seconds = float(seconds)
        self.t0 = time.perf_counter()
        self.cpu0 = time.process_time()

    def elapsed(self) -> float:
        return time.perf_counter() - self.t0

    def cpu(self) -> float:
        return time.process_time() - self.cpu0

    def spent(self) -> bool:
        return self.elapsed() >= self.seconds


def _main() -> None:
    p = argparse.ArgumentParser(description="write the fit/tune/val split file")
    p.add_argument("command", choices=["split"])
    p.add_argument("--data", type=Path, default=DEFAULT_DATA)
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args()
    split = make_split(list_ids(args.data))
    write_json(args.out, split)
    print({k: len(v) for k, v in split.items()}, "->", args.out)


if __name__ == "__main__":
    _main()
