"""Blocks with halos, and stitching of per-block instance labels into one label image.

Pure functions, numpy in and out, no I/O and no Dask (``cellscape.batch`` runs them on a
cluster). The scheme, for an image too big to segment at once:

1. :func:`block_grid` cuts the ``(Y, X)`` plane into non-overlapping *core* boxes and grows each
   by a *halo* (clipped to the image): the *outer* box that is actually segmented. A halo wider
   than the largest cell plus the model's context means every cell touching a core is seen
   whole, with the context it would have in the full image.
2. Each block keeps only its core, with block-local ids ``1..n``.
3. Two neighbouring blocks (8-neighbourhood) both segmented the overlap of their outer boxes.
   :func:`match_labels` links a cell of one core to a cell of the other when they cover the same
   pixels there: a cell cut by the border between the cores. Two different cells that merely
   touch across the border share almost no pixels and stay apart.
4. :func:`merge_labels` turns the links into a graph and gives each connected component (one
   cell, possibly spread over several cores) one globally unique id with
   :func:`scipy.sparse.csgraph.connected_components`.

Boxes are ``(y0, y1, x0, x1)`` tuples, half-open, in pixels of the full image.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

Box = tuple[int, int, int, int]


@dataclass(frozen=True)
class Block:
    """One block of a :func:`block_grid`.

    Attributes
    ----------
    index : int
        Position in the grid's list (row-major).
    row, col : int
        Grid coordinates.
    core : Box
        The pixels this block is responsible for; cores tile the image without overlap.
    outer : Box
        The core grown by the halo and clipped to the image: what is segmented.
    """

    index: int
    row: int
    col: int
    core: Box
    outer: Box


def block_grid(shape: tuple[int, int], block_size: int, halo: int) -> list[Block]:
    """Cut a ``(Y, X)`` plane into square cores of ``block_size`` pixels with a ``halo``.

    Parameters
    ----------
    shape : (int, int)
        Image size ``(Y, X)`` in pixels.
    block_size : int
        Side of a core in pixels (the last row and column of blocks may be smaller).
    halo : int
        Margin in pixels added on every side of a core (clipped at the image edge).

    Returns
    -------
    list of Block
        Row-major.
    """
    if block_size < 1 or halo < 0:
        raise ValueError("block_size must be >= 1 and halo >= 0")
    ny, nx = int(shape[0]), int(shape[1])
    blocks = []
    for r, y0 in enumerate(range(0, ny, block_size)):
        for c, x0 in enumerate(range(0, nx, block_size)):
            y1, x1 = min(y0 + block_size, ny), min(x0 + block_size, nx)
            outer = (max(0, y0 - halo), min(ny, y1 + halo), max(0, x0 - halo), min(nx, x1 + halo))
            blocks.append(Block(len(blocks), r, c, (y0, y1, x0, x1), outer))
    return blocks


def neighbour_pairs(blocks: Sequence[Block]) -> list[tuple[int, int]]:
    """Index pairs ``(i, j)``, ``i < j``, of blocks that touch by a side or a corner."""
    where = {(b.row, b.col): b.index for b in blocks}
    pairs = []
    for b in blocks:
        for dr, dc in ((0, 1), (1, -1), (1, 0), (1, 1)):
            other = where.get((b.row + dr, b.col + dc))
            if other is not None:
                pairs.append((min(b.index, other), max(b.index, other)))
    return pairs


def intersect(a: Box, b: Box) -> Box | None:
    """Intersection of two boxes, ``None`` when empty."""
    box = (max(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), min(a[3], b[3]))
    return box if box[0] < box[1] and box[2] < box[3] else None


def crop(data: np.ndarray, data_box: Box, box: Box) -> np.ndarray:
    """The part of ``data`` (covering ``data_box``) that lies in ``box`` (inside ``data_box``)."""
    y0, y1, x0, x1 = (
        box[0] - data_box[0],
        box[1] - data_box[0],
        box[2] - data_box[2],
        box[3] - data_box[2],
    )
    return data[..., y0:y1, x0:x1]


def box_mask(box: Box, inner: Box) -> np.ndarray:
    """Boolean ``(Y, X)`` mask over ``box`` that is True on the pixels inside ``inner``."""
    mask = np.zeros((box[1] - box[0], box[3] - box[2]), dtype=bool)
    part = intersect(box, inner)
    if part is not None:
        mask[part[0] - box[0] : part[1] - box[0], part[2] - box[2] : part[3] - box[2]] = True
    return mask


def overlap_strip(outer_labels: np.ndarray, block: Block, other: Block) -> np.ndarray:
    """The labels of ``block``'s outer segmentation on the overlap with ``other``'s outer box.

    Ids must be those given by :func:`relabel_like_core`.
    """
    box = intersect(block.outer, other.outer)
    if box is None:
        raise ValueError("blocks do not overlap")
    return crop(np.asarray(outer_labels), block.outer, box)


def relabel_like_core(outer_labels: np.ndarray, block: Block) -> np.ndarray:
    """Renumber an outer-box segmentation: cells reaching the core get ids ``1..n`` (in order),
    cells that stay in the halo get 0.

    Returns
    -------
    ndarray of uint32, shape of the outer box
    """
    outer_labels = np.asarray(outer_labels)
    core = crop(outer_labels, block.outer, block.core)
    ids = np.unique(core)
    ids = ids[ids > 0]
    lut = np.zeros(int(outer_labels.max()) + 1, dtype=np.uint32)
    lut[ids] = np.arange(1, ids.size + 1, dtype=np.uint32)
    return lut[outer_labels]


def match_labels(
    a_labels: np.ndarray,
    a_core: np.ndarray,
    b_labels: np.ndarray,
    b_core: np.ndarray,
    min_overlap: float = 0.5,
) -> tuple[np.ndarray, np.ndarray]:
    """Pairs of cells of two neighbouring blocks that are the same cell.

    Both blocks segmented the same overlap box; ``a_labels`` and ``b_labels`` are those two
    segmentations (ids as in each block's core, 0 for cells that never reach that core).

    Parameters
    ----------
    a_labels, b_labels : ndarray of int, shape (Y, X)
        The two segmentations of the overlap box.
    a_core, b_core : ndarray of bool, shape (Y, X)
        Pixels of the box inside block A's core, and inside block B's core.
    min_overlap : float
        A pair is linked when the pixels both call theirs cover at least this fraction of the
        smaller of the two cells (as seen in the box).

    Returns
    -------
    a_ids, b_ids : ndarray of int64
        Linked pairs (same length); a cell may be linked to several.
    """
    a = np.asarray(a_labels, dtype=np.int64).ravel()
    b = np.asarray(b_labels, dtype=np.int64).ravel()
    # only cells present in their own core matter: the rest of a halo is not kept
    a_cands = np.unique(a[np.asarray(a_core).ravel()])
    b_cands = np.unique(b[np.asarray(b_core).ravel()])
    both = (a > 0) & (b > 0)
    if not both.any():
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    top = int(b.max()) + 1
    keys, counts = np.unique(a[both] * top + b[both], return_counts=True)
    pa, pb = keys // top, keys % top
    size_a = np.bincount(a, minlength=int(a.max()) + 1)
    size_b = np.bincount(b, minlength=top)
    keep = counts >= min_overlap * np.minimum(size_a[pa], size_b[pb])
    keep &= np.isin(pa, a_cands[a_cands > 0]) & np.isin(pb, b_cands[b_cands > 0])
    return pa[keep], pb[keep]


def merge_labels(
    n_labels: Sequence[int], links: Sequence[tuple[int, np.ndarray, int, np.ndarray]]
) -> tuple[list[np.ndarray], int]:
    """Globally unique ids for the cells of all blocks, one id per linked group.

    Parameters
    ----------
    n_labels : sequence of int
        Number of cells (ids ``1..n``) in the core of each block, in block order.
    links : sequence of (block_a, ids_a, block_b, ids_b)
        Pairs from :func:`match_labels`.

    Returns
    -------
    luts : list of ndarray of uint32
        One lookup table per block: ``global = lut[local]`` (``lut[0] == 0``).
    n_cells : int
        Number of cells after merging; ids are ``1..n_cells``, numbered in block order.
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    counts = np.asarray(n_labels, dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(counts)])
    total = int(offsets[-1])
    rows, cols = [], []
    for block_a, ids_a, block_b, ids_b in links:
        rows.append(offsets[block_a] + np.asarray(ids_a, np.int64) - 1)
        cols.append(offsets[block_b] + np.asarray(ids_b, np.int64) - 1)
    r = np.concatenate(rows) if rows else np.zeros(0, np.int64)
    c = np.concatenate(cols) if cols else np.zeros(0, np.int64)
    graph = coo_matrix((np.ones(r.size, dtype=np.int8), (r, c)), shape=(total, total))
    n_cells, component = connected_components(graph, directed=False)
    # number components by their first node so that ids follow block order
    _, first = np.unique(component, return_index=True)
    order = np.empty(n_cells, dtype=np.int64)
    order[np.argsort(first)] = np.arange(n_cells)
    global_ids = (order[component] + 1).astype(np.uint32)
    luts = [
        np.concatenate([[0], global_ids[offsets[i] : offsets[i + 1]]]).astype(np.uint32)
        for i in range(len(counts))
    ]
    return luts, int(n_cells)


def segment_tiled(
    image: np.ndarray,
    segment: Callable[[np.ndarray], np.ndarray],
    block_size: int,
    halo: int,
    *,
    min_overlap: float = 0.5,
) -> np.ndarray:
    """Segment an in-memory ``(Y, X)`` (or ``(C, Y, X)``) image block by block and stitch.

    The reference, single-process version of what ``cellscape.batch.segment_large`` runs on a
    cluster for images that do not fit in memory; useful for tests and small images.

    Parameters
    ----------
    image : ndarray, shape (Y, X) or (C, Y, X)
        The image.
    segment : callable
        ``labels = segment(window)`` for a window of ``image`` (same axes).
    block_size, halo : int
        See :func:`block_grid`.

    Returns
    -------
    ndarray of uint32, shape (Y, X)
        Instance labels with globally unique consecutive ids.
    """
    image = np.asarray(image)
    blocks = block_grid(image.shape[-2:], block_size, halo)
    outer = {}
    cores = []
    for b in blocks:
        labels = segment(crop(image, (0, image.shape[-2], 0, image.shape[-1]), b.outer))
        outer[b.index] = relabel_like_core(labels, b)
        cores.append(crop(outer[b.index], b.outer, b.core))
    links = []
    for i, j in neighbour_pairs(blocks):
        box = intersect(blocks[i].outer, blocks[j].outer)
        ids_a, ids_b = match_labels(
            overlap_strip(outer[i], blocks[i], blocks[j]),
            box_mask(box, blocks[i].core),
            overlap_strip(outer[j], blocks[j], blocks[i]),
            box_mask(box, blocks[j].core),
            min_overlap,
        )
        links.append((i, ids_a, j, ids_b))
    luts, _ = merge_labels([int(c.max()) for c in cores], links)
    out = np.zeros(image.shape[-2:], dtype=np.uint32)
    for b, core, lut in zip(blocks, cores, luts, strict=True):
        out[b.core[0] : b.core[1], b.core[2] : b.core[3]] = lut[core]
    return out
