"""The windowed pixel classifier of DeepCell (Van Valen et al. 2016) and its dilated twin.

A :class:`WindowNet` classifies the centre pixel of a ``window`` x ``window`` patch: valid
convolutions, batch normalisation, ReLU and 2 x 2 max pooling (stride 2) shrink the patch to
``d x d``, a "dense" convolution of kernel ``d`` takes it to 1 x 1, and a 1 x 1 convolution gives
the class logits. The receptive field equals the window exactly.

:meth:`WindowNet.forward_dense` runs the *same weights* over a whole (padded) image at once: after
each pooling the kernels of the following layers become d-regularly sparse (dilated by
``d = 2, 4, 8, ...``) and pooling keeps stride 1, so output pixel ``(y, x)`` equals the windowed
classification of the patch ``padded[y : y + window, x : x + window]``, for every pixel, in one
pass (Li et al. 2014, "Highly efficient forward and backward propagation of convolutional neural
networks for pixelwise classification"). :func:`predict_dense` tiles that over large images.
"""

from __future__ import annotations

import itertools

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["WindowNet", "plan_layers", "predict_dense", "predict_windows"]


def _shrink(window: int, layers: tuple[int | str, ...]) -> int | None:
    """Patch size left after ``layers`` (None when a pooling meets an odd size)."""
    size = window
    for layer in layers:
        if layer == "p":
            if size % 2:
                return None
            size //= 2
        else:
            size -= int(layer) - 1
        if size < 1:
            return None
    return size


def plan_layers(window: int) -> tuple[int | str, ...]:
    """A layer plan whose receptive field is exactly ``window``.

    Returns the conv kernel sizes with ``"p"`` for each 2 x 2 pooling, e.g. ``(4, "p", 3, "p",
    5, "p")`` for 31 (the dense layer after it has kernel 5) and ``(4, "p", 4, "p", 4, "p")``
    for 61 (dense kernel 5). The plan with one to three poolings, the fewest layers and a dense
    kernel of 2 to 6 (closest to 4) is chosen.

    Raises
    ------
    ValueError
        No plan fits (very small or awkward windows); pass ``layers`` explicitly then.
    """
    if window < 7:
        raise ValueError(f"window must be at least 7 pixels, got {window}")
    best = None
    for n_pool in (1, 2, 3):
        for kernels in itertools.product((3, 4, 5), repeat=n_pool):
            for trailing in ((), (3,)):
                layers: list[int | str] = []
                for k in kernels:
                    layers += [k, "p"]
                layers += list(trailing)
                left = _shrink(window, tuple(layers))
                if left is None or not 2 <= left <= 6:
                    continue
                key = (len(layers), abs(left - 4), n_pool)
                if best is None or key < best[0]:
                    best = (key, tuple(layers))
    if best is None:
        raise ValueError(f"no layer plan fits a {window} x {window} window; give layers")
    return best[1]


class WindowNet(nn.Module):
    """Pixel classifier of a ``window`` x ``window`` patch (see the module docstring).

    Parameters
    ----------
    in_channels : int
        Input channels (1 for phase alone, 2 for phase + nuclear marker).
    n_classes : int
        Output classes.
    window : int
        Patch size in pixels (odd; the classified pixel is the centre).
    layers : tuple of int or "p", optional
        Conv kernel sizes and ``"p"`` for 2 x 2 max pooling; default :func:`plan_layers`.
    filters : int
        Feature maps of the first conv layer; later layers have twice as many (compact nets).
    dense : int
        Width of the dense (fully connected, as a convolution) layer.
    """

    def __init__(
        self,
        in_channels: int,
        n_classes: int,
        window: int = 31,
        layers: tuple[int | str, ...] | None = None,
        filters: int = 16,
        dense: int = 64,
    ):
        super().__init__()
        if window % 2 == 0:
            raise ValueError(f"window must be odd, got {window}")
        self.window = int(window)
        self.layers_plan = tuple(layers) if layers is not None else plan_layers(window)
        left = _shrink(window, self.layers_plan)
        if left is None:
            raise ValueError(f"layers {self.layers_plan} do not fit a {window} window")
        self.dense_kernel = left
        convs, norms = [], []
        c_in = in_channels
        n_conv = 0
        for layer in self.layers_plan:
            if layer == "p":
                continue
            c_out = filters if n_conv == 0 else 2 * filters
            convs.append(nn.Conv2d(c_in, c_out, int(layer), bias=False))
            norms.append(nn.BatchNorm2d(c_out))
            c_in = c_out
            n_conv += 1
        self.convs = nn.ModuleList(convs)
        self.norms = nn.ModuleList(norms)
        self.dense = nn.Conv2d(c_in, dense, left, bias=False)
        self.dense_norm = nn.BatchNorm2d(dense)
        self.head = nn.Conv2d(dense, n_classes, 1)

    def _run(self, x: torch.Tensor, dilated: bool) -> torch.Tensor:
        d = 1
        i = 0
        for layer in self.layers_plan:
            if layer == "p":
                if dilated:
                    x = F.max_pool2d(x, 2, stride=1, dilation=d)
                    d *= 2
                else:
                    x = F.max_pool2d(x, 2, stride=2)
                continue
            conv = self.convs[i]
            x = F.conv2d(x, conv.weight, None, dilation=d)
            x = F.relu(self.norms[i](x))
            i += 1
        x = F.conv2d(x, self.dense.weight, None, dilation=d)
        x = F.relu(self.dense_norm(x))
        return self.head(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of the centre pixel of each patch: ``(N, C, w, w)`` -> ``(N, K)``."""
        out = self._run(x, dilated=False)
        return out.flatten(1)

    def forward_dense(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of every window of a padded image: ``(N, C, H + w - 1, W + w - 1)`` ->
        ``(N, K, H, W)``."""
        return self._run(x, dilated=True)


def predict_dense(net: WindowNet, padded: np.ndarray, rows: int = 256) -> np.ndarray:
    """Softmax of every window of a padded image, in strips of ``rows`` output rows.

    Parameters
    ----------
    net : WindowNet
        In eval mode.
    padded : ndarray of float32, shape (C, H + w - 1, W + w - 1)
        The normalised image padded by ``w // 2`` on every side.
    rows : int
        Output rows per strip; memory grows with ``rows * W * filters``.

    Returns
    -------
    ndarray of float32, shape (K, H, W)
    """
    w = net.window
    height = padded.shape[1] - w + 1
    out = None
    net.eval()
    with torch.inference_mode():
        for r0 in range(0, height, rows):
            r1 = min(r0 + rows, height)
            strip = torch.from_numpy(np.ascontiguousarray(padded[:, r0 : r1 + w - 1]))[None]
            prob = torch.softmax(net.forward_dense(strip), 1)[0].numpy()
            if out is None:
                out = np.empty((prob.shape[0], height, prob.shape[2]), np.float32)
            out[:, r0:r1] = prob
    assert out is not None
    return out


def predict_windows(
    net: WindowNet, padded: np.ndarray, ys: np.ndarray, xs: np.ndarray, batch: int = 1024
) -> np.ndarray:
    """Softmax of the windows centred on pixels ``(ys, xs)``, classified one window at a time
    (in batches): the reference :func:`predict_dense` must equal.

    Parameters
    ----------
    padded : ndarray of float32, shape (C, H + w - 1, W + w - 1)
    ys, xs : ndarray of int, shape (N,)
        Pixel coordinates in the unpadded image.

    Returns
    -------
    ndarray of float32, shape (K, N)
    """
    w = net.window
    view = np.lib.stride_tricks.sliding_window_view(padded, (w, w), axis=(1, 2))
    outs = []
    net.eval()
    with torch.inference_mode():
        for i in range(0, len(ys), batch):
            patches = np.ascontiguousarray(
                view[:, ys[i : i + batch], xs[i : i + batch]].transpose(1, 0, 2, 3)
            )
            outs.append(torch.softmax(net(torch.from_numpy(patches)), 1).numpy())
    if not outs:
        return np.zeros((net.head.out_channels, 0), np.float32)
    return np.concatenate(outs).T.astype(np.float32)
