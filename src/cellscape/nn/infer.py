"""Fully convolutional inference over images of any size, in overlapping tiles.

Tiles are blended with a weight that falls to almost zero at tile borders, where a network sees
the least context, so seams do not show in the output maps; memory is bounded by the tile size.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path

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
    batch_size: int | None = None,
    transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
    precision: str = "float32",
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
    batch_size : int, optional
        Tiles per forward pass (default: as many as make about a million pixels, which bounds
        the memory of the activations whatever the tile size).
    transform : callable, optional
        Applied to the network output of each batch (e.g. a softmax) before blending.
    precision : {"float32", "bfloat16", "auto"}
        Arithmetic of the network: ``"bfloat16"`` runs it under CPU autocast (2-3x faster on
        processors with native bfloat16, such as AVX512-BF16 / AMX; the maps change in the third
        digit), ``"auto"`` picks it only on such processors (:func:`fast_bfloat16`).

    Returns
    -------
    ndarray of float32, shape (K, Y, X)
    """
    image = np.asarray(image, dtype=np.float32)
    _, height, width = image.shape
    tile = int(np.ceil(tile / divisor) * divisor)
    # as few tiles as cover each axis, shrunk to share the length evenly: a 1024-px side in
    # 512-px tiles becomes 3 tiles of 368 px, not 3 of 512 (2.25x the pixels to compute)
    th = _balanced_tile(height, tile, overlap, divisor)
    tw = _balanced_tile(width, tile, overlap, divisor)
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
    if batch_size is None:
        batch_size = max(1, (1 << 20) // (th * tw))
    low = use_bfloat16(precision)
    if isinstance(net, torch.nn.Module):
        # channels-last convolutions are 1.5-2x faster on CPU (oneDNN); same numbers
        net = net.to(memory_format=torch.channels_last)
    with torch.inference_mode():
        for i in range(0, len(corners), batch_size):
            chunk = corners[i : i + batch_size]
            batch = np.stack([padded[:, y : y + th, x : x + tw] for y, x in chunk])
            batch_t = torch.from_numpy(batch).contiguous(memory_format=torch.channels_last)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=low):
                pred = net(batch_t)
            pred = pred.float()  # the transform (a softmax: sums to 1) in float32
            if transform is not None:
                pred = transform(pred)
            pred = pred.numpy()
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


@functools.cache
def use_bfloat16(precision: str, device_type: str = "cpu") -> bool:
    """Whether ``precision`` ("float32", "bfloat16" or "auto") means bfloat16 autocast on
    ``device_type`` ("cpu" or "cuda"): "auto" where the processor computes it natively."""
    if precision not in ("float32", "bfloat16", "auto"):
        raise ValueError(f"precision must be float32, bfloat16 or auto, got {precision!r}")
    if precision != "auto":
        return precision == "bfloat16"
    if device_type == "cuda":
        return torch.cuda.is_bf16_supported()
    return fast_bfloat16()


def fast_bfloat16() -> bool:
    """True when this CPU computes bfloat16 natively (Linux flags avx512_bf16 or amx_bf16) and
    torch can use it (oneDNN); elsewhere bfloat16 autocast would be slower than float32."""
    if not torch.backends.mkldnn.is_available():
        return False
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def _balanced_tile(length: int, tile: int, overlap: int, divisor: int) -> int:
    """Edge of the tiles along an axis of ``length`` px: the fewest tiles of at most ``tile``
    px that cover it with ``overlap`` shared px, made equal (a multiple of ``divisor``)."""
    whole = int(np.ceil(length / divisor) * divisor)
    if whole <= tile:
        return whole  # one tile of the padded size
    n = int(np.ceil((length - overlap) / (tile - overlap)))
    edge = int(np.ceil(((length - overlap) / n + overlap) / divisor) * divisor)
    return min(tile, max(edge, 2 * overlap))


def _starts(length: int, tile: int, overlap: int) -> list[int]:
    """Tile origins covering ``length`` with at least ``overlap`` shared pixels."""
    if length <= tile:
        return [0]
    step = tile - overlap
    n = int(np.ceil((length - tile) / step)) + 1
    return [int(round(v)) for v in np.linspace(0, length - tile, n)]
