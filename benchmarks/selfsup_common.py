"""Shared helpers of the self-supervised benchmarks: data loading and scores.

Scores of one image (ground truth used ONLY here, never to fit or tune anything):

* ``miou``: mean IoU of the matched cells (pairs at IoU >= 0.5, the paper's "matched cells");
* ``mean_best_iou``: mean over ALL true cells of the IoU with their best-overlapping predicted
  cell (0 for a cell nothing overlaps) -- stricter, missed cells count;
* ``ap50``: average precision at IoU 0.5, TP / (TP + FP + FN).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cellscape.metrics import average_precision, match, overlap_table

HERE = Path(__file__).resolve().parent
DEFAULT_DATA = HERE.parent.parent / "shared" / "data" / "deepcell2016" / "training_data"
#: the phase + nuclear collections of the issue
LINES = ("HeLa_joint", "3T3", "MCF10A", "RAW40X")


def scores(gt: np.ndarray, pred: np.ndarray) -> dict:
    """Matched mIoU, mean best IoU over true cells, AP@0.5 and counts of one image."""
    m = match(gt, pred, 0.5)
    table = overlap_table(gt, pred)
    best = np.zeros(table.n_gt)
    if table.n_gt and table.n_pred:
        best = table.iou_matrix().max(axis=1)
    return {
        "miou": float(np.mean(m.iou)) if len(m.iou) else 0.0,
        "mean_best_iou": float(np.mean(best)) if len(best) else float("nan"),
        "ap50": float(average_precision(gt, pred, 0.5)),
        "n_gt": int(table.n_gt),
        "n_pred": int(table.n_pred),
    }


def deepcell_images(root: Path = DEFAULT_DATA, lines=LINES):
    """(name, cell_line, image (2, Y, X) phase + nuclear, meta, true labels) of every set."""
    from cellscape.datasets import deepcell_instances, list_deepcell_sets

    for s in list_deepcell_sets(root):
        if s.cell_line in lines:
            image, meta, features = s.load(("phase", "nuclear"))
            yield s.name, s.cell_line, image, meta, deepcell_instances(features)


def seeded_watershed(
    cell: np.ndarray,
    markers: np.ndarray,
    mask: np.ndarray,
    nuclei: np.ndarray | None = None,
    smoothing: float = 1.0,
    compactness: float = 0.1,
) -> np.ndarray:
    """The classical baseline of marker-controlled segmentation, as CellProfiler does it.

    Primary objects: each marker grown by a watershed on the (inverted, smoothed) nucleus image
    inside its Otsu mask (the nucleus region; the marker alone when there is no nucleus image).
    Secondary objects: a compact watershed (``compactness``; the distance regularisation of
    CellProfiler's "Propagation") on the gradient magnitude of the smoothed cell image from
    those nuclei, limited to the cell-area mask. A plain gradient or intensity watershed
    (compactness 0) leaked from one nucleus over its neighbours on the synthetic cells, whose
    nuclei are dim in the cell channel and whose brightness differs from cell to cell.
    """
    from scipy import ndimage as ndi
    from skimage.filters import sobel, threshold_otsu
    from skimage.segmentation import watershed

    from cellscape.markers import marker_labels
    from cellscape.preprocess import normalize_percentile

    seeds = marker_labels(markers, np.shape(cell))
    if nuclei is not None:
        nuc = ndi.gaussian_filter(normalize_percentile(nuclei, 1.0, 99.8), 1.0)
        inside = nuc > threshold_otsu(nuc) if np.ptp(nuc) > 0 else np.zeros(nuc.shape, bool)
        inside |= seeds > 0
        seeds = watershed(-nuc, seeds, mask=inside)
    mask = mask | (seeds > 0)
    plane = ndi.gaussian_filter(normalize_percentile(cell, 1.0, 99.8), smoothing)
    return watershed(sobel(plane), seeds, mask=mask, compactness=compactness).astype(np.int32)


def cell_marker_rates(markers: np.ndarray, gt: np.ndarray) -> dict:
    """Markers against true cells: FN = true cells holding no marker; FP = markers in the
    background or second markers of a cell (a cell can be seeded once)."""
    from cellscape.markers import marker_labels

    spots = marker_labels(markers, gt.shape)
    hit = gt[spots > 0]
    n_cells = int(len(np.unique(gt)) - 1)
    counts = np.bincount(hit, minlength=int(gt.max()) + 1)[1:]
    held = int((counts > 0).sum())
    n = int(len(hit))
    return {
        "cell_fn_rate": 1 - held / n_cells if n_cells else float("nan"),
        "cell_fp_rate": (n - held) / n if n else float("nan"),
        "n_markers": n,
        "n_cells": n_cells,
    }
