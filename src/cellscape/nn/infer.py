"""Fully convolutional inference over images of any size, in overlapping tiles.

Tiles are blended with a weight that falls to almost zero at tile borders, where a network sees
the least context, so seams do not show in the output maps; memory is bounded by the tile size.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch


def _blend_window(size: int, overlap: int, first: bool, last: bool) -> np.ndarray:
    """1-D tile weights: 1 in the middle, a raised-cosine ramp over the ``overlap`` on inner sides.

    The outermost quarter of the overlap gets weight 0 (the network saw too little context
    there); sides on the image border (``first`` / ``last``) keep weight 1, as no other tile
    covers them.
    """
    w = np.ones(size, dtype=np.float32)
    if overlap > 0:
        dead = overlap // 4
        ramp = np.zeros(overlap, dtype=np.float32)
        live = overlap - dead
        ramp[dead:] = 0.5 - 0.5 * np.cos(np.pi * (np.arange(live) + 0.5) / live)
        if not first:
            w[:overlap] = ramp
        if not last:
            w[-overlap:] = ramp[::-1]
    return w


def predict_tiled(
    net: torch.nn.Module | Callable[[torch.Tensor], torch.Tensor],
    image: np.ndarray,
    *,
    tile: int = 512,
    overlap: int = 32,
    divisor: int = 16,
    batch_size: int = 4,
    transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> np.ndarray:
    """Run ``net`` over ``image`` tile by tile and blend the outputs.

    Parameters
    ----------
    net : callable
        Maps ``(N, C, h, w)`` float32 tensors to ``(N, K, h, w)``.
    image : ndarray of float32, shape (C, Y, X)
        Network input (already normalised).
    tile : int
        Tile edge in pixels (rounded up to a multiple of ``divisor``). Images smaller than a tile
        are run in one piece.
    overlap : int
        Pixels shared by neighbouring tiles; should be at least the network's useful context.
    divisor : int
        The network's input size must be a multiple of this (``2 ** (levels - 1)`` for a U-Net).
    transform : callable, optional
        Applied to the network output of each batch (e.g. a softmax) before blending.

    Returns
    -------
    ndarray of float32, shape (K, Y, X)
    """
    image = np.asarray(image, dtype=np.float32)
    _, height, width = image.shape
    tile = int(np.ceil(tile / divisor) * divisor)
    # small images: one tile of the padded size
    th = min(tile, int(np.ceil(height / divisor) * divisor))
    tw = min(tile, int(np.ceil(width / divisor) * divisor))
    pad_h, pad_w = max(th - height, 0), max(tw - width, 0)
    padded = np.pad(
        image,
        ((0, 0), (0, pad_h), (0, pad_w)),
        mode="reflect" if min(height, width) > 1 else "edge",
    )
    ph, pw = padded.shape[1:]
    ys = _starts(ph, th, overlap)
    xs = _starts(pw, tw, overlap)
    if len(ys) > 1 or len(xs) > 1:
        overlap = min(overlap, th // 2, tw // 2)
    out: np.ndarray | None = None
    norm = np.zeros((ph, pw), dtype=np.float32)
    corners = [(y, x) for y in ys for x in xs]
    with torch.inference_mode():
        for i in range(0, len(corners), batch_size):
            chunk = corners[i : i + batch_size]
            batch = np.stack([padded[:, y : y + th, x : x + tw] for y, x in chunk])
            pred = net(torch.from_numpy(batch))
            if transform is not None:
                pred = transform(pred)
            pred = pred.float().numpy()
            if out is None:
                out = np.zeros((pred.shape[1], ph, pw), dtype=np.float32)
            for (y, x), p in zip(chunk, pred, strict=True):
                weight = np.outer(
                    _blend_window(th, overlap, y == ys[0], y == ys[-1]),
                    _blend_window(tw, overlap, x == xs[0], x == xs[-1]),
                )
                out[:, y : y + th, x : x + tw] += p * weight
                norm[y : y + th, x : x + tw] += weight
    assert out is not None
    out /= norm
    return out[:, :height, :width]


def _starts(length: int, tile: int, overlap: int) -> list[int]:
    """Tile origins covering ``length`` with at least ``overlap`` shared pixels."""
    if length <= tile:
        return [0]
    step = tile - overlap
    n = int(np.ceil((length - tile) / step)) + 1
    return [int(round(v)) for v in np.linspace(0, length - tile, n)]
