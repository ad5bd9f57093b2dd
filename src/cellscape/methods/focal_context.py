"""The ``"cnn"`` classifier of the focal signature: the z-profiles of a pixel's neighbourhood.

The other classifiers of :class:`~cellscape.methods.focal.FocalSignature` decide each pixel from
its own z-profile. On thin structures that is not enough: the contour and halo rings of a
bacterium (0.2-0.3 µm) are narrower than the optical resolution (about 0.4 µm), so one pixel's
profile cannot say on which side of the cell edge it lies. This classifier keeps the focal
signature as its input (each pixel's normalised z-profile projected by the model's PCA) and
reads it over a neighbourhood with a small fully convolutional network: a 1 x 1 layer, seven
3 x 3 layers whose dilation grows and shrinks again (1, 2, 4, 8, 4, 2, 1: a receptive field of
``1 + 2 * sum(dilations)`` = 45 pixels), and a 1 x 1 layer to the classes. It learns from the
same sparse painted pixels as the others: the loss is taken on labelled pixels only, on random
crops that hold some, each rotated and flipped at random.

Weights are kept as plain arrays with the batch normalisation folded into the convolutions, so
a saved model stays ``config.json`` + ``weights.safetensors`` and prediction is a handful of
``conv2d`` calls, run tile by tile so that memory stays bounded on large fields.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

#: Side in pixels of the square training crops (smaller stacks use their own size).
PATCH = 96
#: Side in pixels of the tiles the network is applied to at prediction time.
TILE = 512


def receptive_radius(dilations: Sequence[int]) -> int:
    """Pixels on each side that one output pixel of the network sees."""
    return int(sum(int(d) for d in dilations))


def _build(c_in: int, k: int, width: int, dilations: Sequence[int]):
    from torch import nn

    layers: list = [nn.Conv2d(c_in, width, 1), nn.BatchNorm2d(width), nn.ReLU()]
    for d in dilations:
        layers += [
            nn.Conv2d(width, width, 3, padding=int(d), dilation=int(d), padding_mode="replicate"),
            nn.BatchNorm2d(width),
            nn.ReLU(),
        ]
    layers.append(nn.Conv2d(width, k, 1))
    return nn.Sequential(*layers)


def _folded_arrays(net) -> dict[str, np.ndarray]:
    """Convolution weights with each following batch norm folded in, as float32 arrays."""
    from torch import nn

    arrays: dict[str, np.ndarray] = {}
    mods = list(net)
    i = layer = 0
    while i < len(mods):
        conv = mods[i]
        if not isinstance(conv, nn.Conv2d):
            i += 1
            continue
        w = conv.weight.detach().double().numpy()
        b = conv.bias.detach().double().numpy()
        if i + 1 < len(mods) and isinstance(mods[i + 1], nn.BatchNorm2d):
            bn = mods[i + 1]
            g = bn.weight.detach().double().numpy() / np.sqrt(
                bn.running_var.detach().double().numpy() + bn.eps
            )
            w = w * g[:, None, None, None]
            b = (
                b - bn.running_mean.detach().double().numpy()
            ) * g + bn.bias.detach().double().numpy()
        arrays[f"conv{layer}.w"] = w.astype(np.float32)
        arrays[f"conv{layer}.b"] = b.astype(np.float32)
        layer += 1
        i += 1
    return arrays


def _crop_batch(feats, targets, where, patch: int, batch: int, rng: np.random.Generator):
    """``batch`` random crops holding labelled pixels, each rotated / flipped at random.

    Crops are placed uniformly over the field (a crop centred on a random labelled pixel would
    follow the painting: a large painted wall would then take most of the steps); a crop
    without any label is drawn again, and after 10 misses (sparse strokes on a large field)
    one is centred on a labelled pixel.
    """
    xs, ys = [], []
    for _ in range(batch):
        s = int(rng.integers(len(feats)))
        f, t = feats[s], targets[s]
        ny, nx = t.shape
        for _try in range(10):
            i = int(rng.integers(ny - patch + 1))
            j = int(rng.integers(nx - patch + 1))
            if (t[i : i + patch, j : j + patch] >= 0).any():
                break
        else:
            y0, x0 = where[s][:, int(rng.integers(where[s].shape[1]))]
            i = int(np.clip(y0 - patch // 2, 0, ny - patch))
            j = int(np.clip(x0 - patch // 2, 0, nx - patch))
        x = f[:, i : i + patch, j : j + patch]
        y = t[i : i + patch, j : j + patch]
        r = int(rng.integers(4))
        x, y = np.rot90(x, r, axes=(1, 2)), np.rot90(y, r)
        if rng.random() < 0.5:
            x, y = x[:, ::-1], y[::-1]
        xs.append(np.ascontiguousarray(x))
        ys.append(np.ascontiguousarray(y))
    return np.stack(xs), np.stack(ys)


def train_context_net(
    feats: Sequence[np.ndarray],
    targets: Sequence[np.ndarray],
    n_classes: int,
    width: int = 32,
    dilations: Sequence[int] = (1, 2, 4, 8, 4, 2, 1),
    steps: int = 1500,
    batch: int = 8,
    lr: float = 2e-3,
    seed: int = 0,
    progress: Callable[[int, int, float], None] | None = None,
) -> dict[str, np.ndarray]:
    """Train the network on PCA feature maps with sparse labels.

    Parameters
    ----------
    feats : sequence of ndarray, shape (C, Y, X), float32
        Focal-signature features of each training stack (PCA components of the normalised
        z-profiles).
    targets : sequence of ndarray, shape (Y, X), int64
        Class index 0..K-1 of each labelled pixel, -1 where unlabelled (no loss there).
    n_classes : int
        K.
    width : int
        Channels of the hidden layers.
    dilations : sequence of int
        Dilation of each 3 x 3 layer, in pixels.
    steps : int
        Optimiser steps (one-cycle learning-rate schedule).
    batch : int
        Crops per step.
    lr : float
        Peak learning rate of Adam.
    seed : int
        Seed of the initial weights and the crop sampler.
    progress : callable, optional
        Called as ``progress(step, steps, loss)`` every 50 steps and at the end.

    Returns
    -------
    dict of str to ndarray
        ``conv{i}.w`` / ``conv{i}.b`` float32 arrays, batch norm folded in.
    """
    import torch
    import torch.nn.functional as F

    feats = [np.ascontiguousarray(f, dtype=np.float32) for f in feats]
    targets = [np.ascontiguousarray(t, dtype=np.int64) for t in targets]
    where = [np.stack(np.nonzero(t >= 0)) for t in targets]
    keep = [i for i, w in enumerate(where) if w.shape[1]]
    if not keep:
        raise ValueError("no labelled pixel to train the network on")
    feats = [feats[i] for i in keep]
    targets = [targets[i] for i in keep]
    where = [where[i] for i in keep]
    patch = int(min(PATCH, *(min(t.shape) for t in targets)))
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    net = _build(feats[0].shape[0], n_classes, width, dilations)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=max(int(steps), 1))
    net.train()
    loss_value = float("nan")
    for step in range(int(steps)):
        x, y = _crop_batch(feats, targets, where, patch, batch, rng)
        loss = F.cross_entropy(net(torch.from_numpy(x)), torch.from_numpy(y), ignore_index=-1)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        loss_value = float(loss.detach())
        if progress is not None and ((step + 1) % 50 == 0 or step + 1 == steps):
            progress(step + 1, int(steps), loss_value)
    net.eval()
    return _folded_arrays(net)


def apply_context_net(
    arrays: dict, dilations: Sequence[int], feats, augment: bool = False
) -> np.ndarray:
    """Class probabilities ``(K, Y, X)`` float32 of a feature map ``(C, Y, X)`` (torch tensor).

    Applied tile by tile with a margin of the receptive radius, so every output pixel sees the
    same neighbourhood as in one pass over the whole field (the field's own border is padded by
    repeating its edge pixels, as in training). ``augment``: average the probabilities of the
    eight rotations and flips of the field (the symmetries the network was trained with), which
    costs eight passes.
    """
    from ..selfsup_net import dihedral, undo_dihedral

    if not augment:
        return _apply_once(arrays, dilations, feats).numpy()
    total = _apply_once(arrays, dilations, feats)
    for t in range(1, 8):
        total += undo_dihedral(_apply_once(arrays, dilations, dihedral(feats, t)), t)
    return total.div_(8.0).numpy()


def _apply_once(arrays: dict, dilations: Sequence[int], feats):
    """One pass of the network over the field, tile by tile; a ``(K, Y, X)`` torch tensor.

    Not :func:`cellscape.nn.infer.predict_tiled`: that one blends overlapping tiles, while
    here each tile gets a margin of the receptive radius, so the result is exactly that of one
    pass over the whole field.
    """
    import torch
    import torch.nn.functional as F

    n_layers = 2 + len(dilations)
    ws = [torch.from_numpy(np.ascontiguousarray(arrays[f"conv{i}.w"])) for i in range(n_layers)]
    bs = [torch.from_numpy(np.ascontiguousarray(arrays[f"conv{i}.b"])) for i in range(n_layers)]
    _, ny, nx = feats.shape
    k = ws[-1].shape[0]
    out = torch.empty((k, ny, nx), dtype=torch.float32)
    margin = receptive_radius(dilations)

    def run(x):
        h = F.relu(F.conv2d(x, ws[0], bs[0]))
        for i, d in enumerate(dilations, start=1):
            h = F.pad(h, (d, d, d, d), mode="replicate")
            h = F.relu(F.conv2d(h, ws[i], bs[i], dilation=int(d)))
        return torch.softmax(F.conv2d(h, ws[-1], bs[-1]), dim=1)[0]

    with torch.inference_mode():
        for y0 in range(0, ny, TILE):
            for x0 in range(0, nx, TILE):
                y1, x1 = min(ny, y0 + TILE), min(nx, x0 + TILE)
                ya, xa = max(0, y0 - margin), max(0, x0 - margin)
                yb, xb = min(ny, y1 + margin), min(nx, x1 + margin)
                p = run(feats[None, :, ya:yb, xa:xb].contiguous())
                out[:, y0:y1, x0:x1] = p[:, y0 - ya : y1 - ya, x0 - xa : x1 - xa]
    return out
