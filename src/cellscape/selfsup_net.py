"""The torch side of label-free marker-controlled segmentation (:mod:`cellscape.methods.selfsup`).

One patch per marker: a ``k x k`` crop of the image centred on the marker plus a Gaussian disk at
the centre, through a small U-Net, gives one probability map per patch. The loss needs no labels:

* minus the total segmented area (each patch wants its cell as large as possible);
* ``lam`` times the cross-patch term: for every pixel covered by two patches ``i != j``,
  ``-y_i log10(1 - y_j)`` (two patches claiming one pixel are penalised);
* ``beta`` times the predicted area outside the cell-area mask.

The cross-patch term is computed without forming the pairs: with ``S_y`` and ``S_L`` the sums of
``y_i`` and ``L_i = -log10(1 - y_i)`` of all patches over a canvas,
``sum_{i != j} y_i L_j = sum_p S_y(p) S_L(p) - sum_i sum_p y_i(p) L_i(p)``, two scatter-adds per
batch (linear in the number of patches, not quadratic).
"""

from __future__ import annotations

import numpy as np
import torch

EPS = 1e-4


def disk_channel(patch: int, sigma: float) -> np.ndarray:
    """The marker channel: ``exp(-r^2 / (2 sigma^2))`` around the patch centre, (k, k) float32."""
    c = patch // 2
    yy, xx = np.mgrid[:patch, :patch]
    return np.exp(-((yy - c) ** 2 + (xx - c) ** 2) / (2.0 * sigma**2)).astype(np.float32)


def extract_patches(padded: np.ndarray, corners: np.ndarray, patch: int) -> np.ndarray:
    """Crops ``padded[y:y+k, x:x+k]`` at each corner row ``(y, x)``: (N, k, k) float32."""
    n = len(corners)
    out = np.empty((n, patch, patch), np.float32)
    for i, (y, x) in enumerate(corners):
        out[i] = padded[y : y + patch, x : x + patch]
    return out


def dihedral(x: torch.Tensor, t: int) -> torch.Tensor:
    """One of the 8 flips / transposes of the last two axes (``t`` in 0..7)."""
    x = torch.rot90(x, t % 4, dims=(-2, -1))
    return torch.flip(x, dims=(-1,)) if t >= 4 else x


def undo_dihedral(x: torch.Tensor, t: int) -> torch.Tensor:
    """Inverse of :func:`dihedral`."""
    if t >= 4:
        x = torch.flip(x, dims=(-1,))
    return torch.rot90(x, -(t % 4), dims=(-2, -1))


def canvas_index(corners: np.ndarray, patch: int) -> tuple[torch.Tensor, int]:
    """Flat indices of every patch pixel in a canvas covering all patches of a batch.

    Returns
    -------
    index : LongTensor, shape (N, k, k)
    size : int
        Number of canvas pixels.
    """
    corners = np.asarray(corners, dtype=np.int64)
    y0, x0 = corners.min(0)
    height = int(corners[:, 0].max() - y0) + patch
    width = int(corners[:, 1].max() - x0) + patch
    dy, dx = np.mgrid[:patch, :patch]
    index = (corners[:, 0, None, None] - y0 + dy) * width + (corners[:, 1, None, None] - x0 + dx)
    return torch.from_numpy(index), height * width


def selfsup_loss(
    y: torch.Tensor,
    valid: torch.Tensor,
    outside: torch.Tensor,
    index: torch.Tensor,
    size: int,
    lam: float,
    beta: float,
) -> tuple[torch.Tensor, dict[str, float]]:
    """The label-free loss of one batch of patches.

    Parameters
    ----------
    y : tensor, shape (N, k, k)
        Probabilities of the patches (in the image's orientation).
    valid : tensor, shape (N, k, k)
        1 on pixels inside the image, 0 on the padding.
    outside : tensor, shape (N, k, k)
        1 on pixels outside the cell-area mask (inside the image), else 0.
    index, size
        From :func:`canvas_index`.
    lam, beta : float
        Weights of the cross-patch and outside-mask terms.

    Returns
    -------
    loss : scalar tensor
        ``(-area + lam * cross + beta * outside_area) / (N k^2)``.
    parts : dict
        The three terms, per patch pixel, as floats (for progress read-outs).
    """
    y = y.clamp(EPS, 1.0 - EPS)
    yv = y * valid
    log_term = -torch.log10(1.0 - y) * valid
    flat = index.reshape(-1)
    sum_y = torch.zeros(size, dtype=y.dtype).index_add_(0, flat, yv.reshape(-1))
    sum_l = torch.zeros(size, dtype=y.dtype).index_add_(0, flat, log_term.reshape(-1))
    cross = (sum_y * sum_l).sum() - (yv * log_term).sum()
    area = yv.sum()
    spill = (yv * outside).sum()
    norm = float(y.numel())
    loss = (-area + lam * cross + beta * spill) / norm
    parts = {
        "area": float(area.detach()) / norm,
        "cross": float(cross.detach()) / norm,
        "outside": float(spill.detach()) / norm,
    }
    return loss, parts
