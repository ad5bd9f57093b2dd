"""Instance segmentation with a U-Net predicting background / interior / boundary and a distance.

The network sees one normalised channel (colour images are reduced to their luminance and images
with a bright background are inverted, so nuclei are always bright), or several named channels
(for example phase contrast + a nuclear marker for whole cells, each normalised on its own and
never inverted: their polarity is the modality's), and predicts four maps: the
softmax of background, cell interior and cell boundary, and the distance to the cell border
normalised to 1 at each cell's centre. Cells are grown by a watershed on the distance map from
seeds where the distance is high, inside the pixels that are not background. This is the
architecture of the bundled ``nuclei`` model.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

from ..errors import CellscapeError
from ..io import ImageMeta
from ..post.watershed import maps_to_instances
from ..preprocess import (
    COLOUR_MODES,
    bright_background,
    normalize_percentile,
    to_single_channel,
)
from ..quantify import equivalent_diameters, median_diameter
from .base import CONFIG_NAME, Segmenter

WEIGHTS_NAME = "weights.safetensors"


def network_input(
    image: np.ndarray,
    meta: ImageMeta | None = None,
    channel: int | str | None = None,
    colour: str = "luminance",
    channels: tuple[str, ...] | None = None,
) -> np.ndarray:
    """The network's input: percentile-normalised planes.

    Without ``channels``: one plane with bright objects; ``channel`` and ``colour`` pick it as
    in :func:`cellscape.preprocess.to_single_channel`, and a bright background is inverted.
    With ``channels`` (names, in the model's order): those channels, matched by name or
    position as in :func:`cellscape.methods.convnet.select_channels`, each normalised to its
    own 1-99.8 percentiles and not inverted.

    Returns
    -------
    ndarray of float32, shape (C, Y, X)
        ``C`` = 1, or ``len(channels)``.
    """
    if channels:
        from .convnet import select_channels

        planes = select_channels(image, meta, tuple(channels))
        return np.stack([normalize_percentile(p, 1.0, 99.8) for p in planes]).astype(np.float32)
    plane = normalize_percentile(to_single_channel(image, meta, channel, colour), 1.0, 99.8)
    if bright_background(plane):
        plane = 1.0 - plane
    return plane[None].astype(np.float32)


def instance_targets(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Training targets of a label image.

    Returns
    -------
    classes : ndarray of int64, shape (Y, X)
        0 background, 1 interior, 2 boundary (the inner one-pixel rim of each cell, which also
        separates touching cells).
    distance : ndarray of float32, shape (Y, X)
        Euclidean distance to the cell's border divided by its maximum in that cell (1 at the
        centre, 0 on the background).
    """
    from skimage.segmentation import find_boundaries

    labels = np.asarray(labels)
    classes = (labels > 0).astype(np.int64)
    classes[find_boundaries(labels, mode="inner")] = 2
    # the distance to another cell counts as border too: pad labels' boundaries into the mask
    inside = (labels > 0) & ~find_boundaries(labels, mode="inner")
    distance = ndi.distance_transform_edt(inside).astype(np.float32)
    if labels.max() > 0:
        peak = ndi.maximum(distance, labels, index=np.arange(labels.max() + 1))
        peak = np.asarray(peak, dtype=np.float32)
        peak[peak == 0] = 1.0
        distance = distance / peak[labels]
    return classes, distance


class UNetSegmenter(Segmenter):
    """U-Net + seeded watershed instance segmenter (see the module docstring).

    Parameters
    ----------
    filters : tuple of int
        U-Net feature maps per level (width and depth).
    channel : int or str or None
        Channel to segment in multi-channel images (single-channel networks).
    channels : tuple of str or None
        Names of the channels the network sees, in order, for multi-channel networks (for
        example ``("phase", "nuclear")``: whole cells from phase contrast and a nuclear
        marker). Images are matched by channel name, or by position when unnamed. ``None``:
        one channel (``channel`` / ``colour``).
    colour : {"luminance", "hematoxylin"}
        How colour images become one plane: their luminance, or their hematoxylin stain
        density (H&E histology; grey images stored as RGB keep the luminance).
    epochs, steps_per_epoch, batch_size, patch : int
        Training length and batches of ``batch_size`` random ``patch`` x ``patch`` crops.
    learning_rate : float
        AdamW learning rate (cosine decay).
    scale_range : tuple of float
        Random zoom of training crops, to cover cells of different sizes.
    foreground_threshold, seed_threshold : float
        Post-processing cut-offs on ``1 - P(background)`` and on the predicted distance.
    min_size : int
        Smallest cell kept, in pixels.
    diameter : float or None
        Typical cell diameter of the images to segment, in pixels. When given, images are
        rescaled so that their cells match the size the network learned (``diameter_``).
        Otherwise, when the model learned the cells' size in µm (``diameter_um_``: every
        training image recorded its pixel size) and an image records its pixel size, the
        image is rescaled by the ratio of the two, as if its cells had the learned physical
        size.
    auto_diameter : bool
        When ``diameter`` is not given, estimate it: segment once at the image's own scale,
        take the median diameter of what was found, and segment again at the matching scale
        when it differs from ``diameter_`` by more than 25% (up to twice the time).
    tile : int
        Largest tile edge for inference (px); memory is bounded by it. Images up to this size
        run in one piece (no seams, the most context).
    tta : bool
        Average the predictions over the 4 flips (4x slower, a little more accurate).
    precision : {"auto", "float32", "bfloat16"}
        Arithmetic of inference: ``"auto"`` uses bfloat16 on CPUs that compute it natively
        (2-3x faster; same scores on the DSB2018 tune images) and float32 elsewhere; choose
        ``"float32"`` for results identical across machines.
    seed : int
        Random seed of training.
    """

    method = "unet"
    class_names = ("background", "interior", "boundary")

    def __init__(
        self,
        filters: tuple[int, ...] = (16, 32, 64, 128),
        channel: int | str | None = None,
        colour: str = "luminance",
        channels: tuple[str, ...] | None = None,
        epochs: int = 30,
        steps_per_epoch: int = 100,
        batch_size: int = 8,
        patch: int = 128,
        learning_rate: float = 2e-3,
        scale_range: tuple[float, float] = (0.6, 1.6),
        foreground_threshold: float = 0.5,
        seed_threshold: float = 0.5,
        min_size: int = 8,
        diameter: float | None = None,
        auto_diameter: bool = False,
        tile: int = 1024,
        tta: bool = False,
        precision: str = "auto",
        seed: int = 0,
    ):
        self.filters = tuple(filters)
        self.channel = channel
        self.colour = colour
        self.channels = tuple(channels) if channels else None
        self.epochs = epochs
        self.steps_per_epoch = steps_per_epoch
        self.batch_size = batch_size
        self.patch = patch
        self.learning_rate = learning_rate
        self.scale_range = tuple(scale_range)
        self.foreground_threshold = foreground_threshold
        self.seed_threshold = seed_threshold
        self.min_size = min_size
        self.diameter = diameter
        self.auto_diameter = auto_diameter
        self.tile = tile
        self.tta = tta
        self.precision = precision
        self.seed = seed

    # ------------------------------------------------------------------------------------------
    def _build(self):
        from ..nn.unet import UNet

        return UNet(in_channels=self.n_channels, out_channels=4, filters=self.filters)

    @property
    def n_channels(self) -> int:
        """Input channels of the network."""
        return len(self.channels) if self.channels else 1

    def fit(
        self,
        images,
        targets,
        metas=None,
        *,
        val_images=None,
        val_targets=None,
        val_metas=None,
        checkpoint_dir: str | os.PathLike | None = None,
        progress: bool = True,
        threads: int | None = None,
        warm_start: bool = False,
        precision: str = "float32",
        device: str = "cpu",
        workers: int = 0,
    ) -> UNetSegmenter:
        """Train the network on images and their instance labels.

        Parameters
        ----------
        images : sequence of ndarray
            Images as read by :func:`cellscape.io.read_image` (axes as in ``metas``).
        targets : sequence of ndarray of int, shape (Y, X)
            Instance labels of each image.
        metas : sequence of ImageMeta, optional
        val_images, val_targets, val_metas : optional
            Held-out images whose loss picks the best epoch.
        checkpoint_dir : path, optional
            Checkpoint every epoch there; an interrupted fit resumes from it.
        warm_start : bool, default False
            Start from the current weights of a fitted model (fine-tuning, for example a
            bundled model on new images or with another ``colour``) instead of new ones. The
            filters must be those of the fitted network.
        precision : {"float32", "bfloat16", "auto"}, default "float32"
            Arithmetic of training (:class:`cellscape.nn.train.TrainConfig`): ``"auto"`` trains
            about twice as fast under bfloat16 autocast on CPUs that compute it natively.
        device : str, default "cpu"
            Where to train: "cpu", "cuda" or "auto" (the GPU when there is one); the model is
            used on the CPU afterwards either way.
        workers : int, default 0
            Processes that crop and augment training batches ahead of the loop (for GPUs).
        """
        from ..nn.train import TrainConfig, train_network

        if self.colour not in COLOUR_MODES:
            raise ValueError(f"colour must be one of {COLOUR_MODES}, got {self.colour!r}")
        if warm_start:
            self._check_fitted()

        metas = metas or [None] * len(images)
        train = [
            _prepare_pair(i, t, m, self.channel, self.colour, self.channels)
            for i, t, m in zip(images, targets, metas, strict=True)
        ]
        sampler = PatchSampler(train, self.patch, self.batch_size, self.scale_range)
        val_batches = []
        if val_images:
            val_metas = val_metas or [None] * len(val_images)
            val = [
                _prepare_pair(i, t, m, self.channel, self.colour, self.channels)
                for i, t, m in zip(val_images, val_targets, val_metas, strict=True)
            ]
            val_sampler = PatchSampler(val, self.patch, self.batch_size, (1.0, 1.0), augment=False)
            vrng = np.random.default_rng(12345)
            val_batches = [val_sampler(vrng) for _ in range(max(4, len(val) // self.batch_size))]
        if not warm_start:
            self.net_ = self._build()
        config = TrainConfig(
            epochs=self.epochs,
            steps_per_epoch=self.steps_per_epoch,
            learning_rate=self.learning_rate,
            seed=self.seed,
            threads=threads,
            precision=precision,
            device=device,
            workers=workers,
        )
        history = train_network(
            self.net_,
            sampler,
            unet_loss,
            config,
            val_batches=val_batches,
            checkpoint_dir=checkpoint_dir,
            progress=progress,
        )
        self.diameter_ = median_diameter(labels for _, labels in train)
        # the physical size of the cells, only when every training image says its pixel size
        sizes = [getattr(m, "pixel_size", None) for m in metas]
        self.diameter_um_ = None
        if sizes and all(sizes):
            # the same pooled median as diameter_, each cell scaled by its image's pixel size
            um = np.concatenate(
                [equivalent_diameters(lab) * s for (_, lab), s in zip(train, sizes, strict=True)]
            )
            self.diameter_um_ = float(np.median(um)) if um.size else None
        self.info_ = {
            "history": history.to_dict(),
            "n_train_images": len(train),
            "n_val_images": len(val_images or []),
        }
        return self

    # ------------------------------------------------------------------------------------------
    def _check_fitted(self):
        if not hasattr(self, "net_"):
            raise CellscapeError(None, "this U-Net model has not been trained or loaded")

    def predict_maps(self, image: np.ndarray, meta: ImageMeta | None = None) -> np.ndarray:
        """Network output at the image's own size.

        Returns
        -------
        ndarray of float32, shape (4, Y, X)
            P(background), P(interior), P(boundary), normalised distance.
        """
        return self._maps_and_labels(image, meta, want_labels=False)[0]

    def predict_proba(self, image: np.ndarray, meta: ImageMeta | None = None) -> np.ndarray:
        """Per-pixel probabilities of background, interior and boundary, shape (3, Y, X)."""
        return self.predict_maps(image, meta)[:3]

    def segment(self, image: np.ndarray, meta: ImageMeta | None = None) -> np.ndarray:
        """Instance labels, shape (Y, X), int32, 0 = background."""
        return self._maps_and_labels(image, meta, want_labels=True)[1]

    @property
    def uses_pixel_size(self) -> bool:
        return bool(getattr(self, "diameter_um_", None))

    def expected_diameter(self, meta: ImageMeta | None) -> float | None:
        """Cell diameter (pixels) to assume for an image: ``diameter`` when given, else the
        learned physical size at the image's pixel size when both are known, else ``None``."""
        if self.diameter:
            return float(self.diameter)
        pixel_size = getattr(meta, "pixel_size", None)
        learned_um = getattr(self, "diameter_um_", None)
        if pixel_size and learned_um:
            return float(learned_um) / float(pixel_size)
        return None

    def scale_for(self, diameter: float | None) -> float:
        """Zoom factor that brings cells of ``diameter`` pixels to the learned size."""
        learned = getattr(self, "diameter_", None)
        if not diameter or not learned:
            return 1.0
        return float(learned) / float(diameter)

    def _maps_and_labels(self, image, meta, want_labels: bool):
        self._check_fitted()
        x = network_input(image, meta, self.channel, self.colour, self.channels)
        shape = np.asarray(image).shape[-2:]
        expected = self.expected_diameter(meta)
        if expected or not self.auto_diameter:
            maps = self._maps_at(x, self.scale_for(expected), shape)
            return maps, self.labels_from_maps(maps) if want_labels else None
        # first pass at the image's own scale; a second one only when its cells are far from
        # the size the network learned (it saw 0.6-1.6x zooms in training, so +-25% is safe)
        maps = self._maps_at(x, 1.0, shape)
        labels = self.labels_from_maps(maps)
        # the size is read off the predicted foreground, not the instances: cells much larger
        # than the learned size come out in fragments, whose size would hide the mismatch;
        # pieces below min_size are specks (around large cells they outnumber the cells)
        foreground, _ = ndi.label(1.0 - maps[0] > self.foreground_threshold)
        scale = self.scale_for(median_diameter([foreground], min_area=self.min_size))
        if not 0.8 <= scale <= 1.25:
            maps = self._maps_at(x, scale, shape)
            labels = self.labels_from_maps(maps) if want_labels else None
        return maps, labels

    def _maps_at(self, x: np.ndarray, scale: float, shape) -> np.ndarray:
        import torch

        from ..nn.infer import predict_tiled

        # very small or huge zooms come from a handful of odd objects, not a real size change
        scale = float(np.clip(scale, 0.25, 4.0))
        if abs(scale - 1.0) > 0.05:
            x = ndi.zoom(x, (1, scale, scale), order=1)

        def transform(logits: torch.Tensor) -> torch.Tensor:
            return torch.cat([torch.softmax(logits[:, :3], 1), torch.sigmoid(logits[:, 3:])], 1)

        net = self._inference_net()
        kw = {"tile": self.tile, "divisor": net.divisor, "transform": transform}
        kw["precision"] = self.precision
        maps = predict_tiled(net, x, **kw)
        if self.tta:
            for axes in ((2,), (1,), (1, 2)):
                flipped = np.flip(x, axis=axes).copy()
                m = predict_tiled(net, flipped, **kw)
                maps += np.flip(m, axis=axes)
            maps /= 4
        if abs(scale - 1.0) > 0.05:
            maps = np.stack([_resize(m, shape) for m in maps])
        return maps

    def _inference_net(self):
        """The network with its batch normalisation folded into the convolutions, rebuilt
        whenever the weights change (a new network, or training in place: every in-place
        update bumps a tensor's version counter)."""
        from ..nn.unet import fuse_batchnorm

        tensors = [*self.net_.parameters(), *self.net_.buffers()]
        key = (id(self.net_), sum(t._version for t in tensors))
        cached = getattr(self, "_fused_net", None)
        if cached is None or cached[0] != key:
            self._fused_net = (key, fuse_batchnorm(self.net_))
        return self._fused_net[1]

    def tune_thresholds(
        self,
        images,
        targets,
        metas=None,
        foreground=(0.4, 0.5, 0.6, 0.7),
        seeds=(0.2, 0.3, 0.4, 0.5, 0.6, 0.7),
    ) -> list[dict]:
        """Pick ``foreground_threshold`` and ``seed_threshold`` on held-out images.

        The network runs once per image; only the watershed is repeated for every pair of
        thresholds. The pair with the best DSB2018 score (mean over IoU 0.50:0.05:0.95 of the
        per-image AP) is set on the model. Tune on images the model did not learn from, and
        never on the images you report scores on.

        Parameters
        ----------
        images, targets, metas : sequences
            Images, their instance labels (Y, X), and optionally their metadata.
        foreground, seeds : sequences of float
            The thresholds to try (grid of every pair).

        Returns
        -------
        list of dict
            One row per pair: ``foreground``, ``seed``, ``dsb2018``, ``ap_pooled@0.5``.
        """
        from .. import metrics

        metas = metas or [None] * len(images)
        maps = [self.predict_maps(x, m) for x, m in zip(images, metas, strict=True)]
        rows = []
        for fg in foreground:
            for seed in seeds:
                self.set_params(foreground_threshold=fg, seed_threshold=seed)
                scores = metrics.summarize(
                    [
                        metrics.image_scores(y, self.labels_from_maps(m))
                        for y, m in zip(targets, maps, strict=True)
                    ]
                )
                rows.append(
                    {
                        "foreground": fg,
                        "seed": seed,
                        "dsb2018": scores["dsb2018"],
                        "ap_pooled@0.5": scores["ap_pooled@0.5"],
                    }
                )
        best = max(rows, key=lambda r: r["dsb2018"])
        self.set_params(foreground_threshold=best["foreground"], seed_threshold=best["seed"])
        return rows

    def labels_from_maps(self, maps: np.ndarray) -> np.ndarray:
        """Instance labels from the output of :meth:`predict_maps` (the post-processing alone)."""
        return maps_to_instances(
            1.0 - maps[0],
            maps[3],
            maps[3],
            foreground_threshold=self.foreground_threshold,
            seed_threshold=self.seed_threshold,
            min_size=self.min_size,
        )

    # ------------------------------------------------------------------------------------------
    def _state(self) -> dict:
        return {
            "diameter_": getattr(self, "diameter_", None),
            "diameter_um_": getattr(self, "diameter_um_", None),
        }

    def _set_state(self, state: dict) -> None:
        self.diameter_ = state.get("diameter_")
        self.diameter_um_ = state.get("diameter_um_")

    def save(self, path: str | os.PathLike) -> Path:
        """Write ``config.json`` and ``weights.safetensors`` into the folder ``path``."""
        from ..nn.train import save_weights

        self._check_fitted()
        folder = Path(path)
        # float16 halves the file (bundled models stay a few MB); inference runs in float32
        save_weights(self.net_, folder / WEIGHTS_NAME)
        return super().save(folder)

    @classmethod
    def load(cls, path: str | os.PathLike) -> UNetSegmenter:
        from ..nn.train import load_weights

        folder = Path(path)
        folder = folder.parent if folder.name == CONFIG_NAME else folder
        model = super().load(folder)
        model.filters = tuple(model.filters)
        model.scale_range = tuple(model.scale_range)
        model.channels = tuple(model.channels) if model.channels else None
        model.net_ = model._build()
        load_weights(model.net_, folder / WEIGHTS_NAME)
        model.net_.eval()
        return model


# ----------------------------------------------------------------------------------------------
# training data
# ----------------------------------------------------------------------------------------------


def _prepare_pair(image, labels, meta, channel, colour: str = "luminance", channels=None):
    """(input (C, Y, X), labels (Y, X)) of one training image."""
    x = network_input(image, meta, channel, colour, channels)
    labels = np.asarray(labels)
    if labels.shape != x.shape[1:]:
        raise ValueError(f"labels {labels.shape} do not match image {x.shape}")
    return x, labels.astype(np.int32)


def _resize(plane: np.ndarray, shape) -> np.ndarray:
    factors = (shape[0] / plane.shape[0], shape[1] / plane.shape[1])
    out = ndi.zoom(plane, factors, order=1)
    return out[: shape[0], : shape[1]]


class PatchSampler:
    """Random training batches: crops with zoom, flips, 90-degree rotations and intensity jitter.

    ``pairs`` hold inputs of shape (C, Y, X), or (Y, X) for one channel. Calling the sampler
    with a random generator returns ``(inputs (N, C, P, P), targets (N, 2, P, P))`` tensors,
    the targets holding the class index and the normalised distance.
    """

    def __init__(self, pairs, patch: int, batch_size: int, scale_range, augment: bool = True):
        self.pairs = [(x if x.ndim == 3 else x[None], lab) for x, lab in pairs]
        self.patch = patch
        self.batch_size = batch_size
        self.scale_range = scale_range
        self.augment = augment
        # sample images in proportion to the square root of their area: large images give more
        # crops, but small ones (most of the variety) are not drowned out
        areas = np.array([p[1].size for p in self.pairs], dtype=float)
        self.weights = np.sqrt(areas) / np.sqrt(areas).sum()

    def __call__(self, rng: np.random.Generator):
        import torch

        xs, ys = [], []
        for _ in range(self.batch_size):
            x, lab = self.pairs[rng.choice(len(self.pairs), p=self.weights)]
            x, lab = self._crop(x, lab, rng)
            cls, dist = instance_targets(lab)
            xs.append(x)
            ys.append(np.stack([cls.astype(np.float32), dist]))
        return torch.from_numpy(np.stack(xs)), torch.from_numpy(np.stack(ys))

    def _crop(self, x, lab, rng):
        p = self.patch
        lo, hi = self.scale_range
        scale = float(np.exp(rng.uniform(np.log(lo), np.log(hi)))) if self.augment else 1.0
        size = int(round(p / scale))
        h, w = lab.shape
        # a zoomed-out crop never reaches past an image that is at least a patch wide: the
        # padding would show the network made-up pixels labelled background
        size = min(size, max(min(h, w), p))
        if h < size or w < size:
            ph, pw = max(size - h, 0), max(size - w, 0)
            x = np.pad(x, ((0, 0), (0, ph), (0, pw)), mode="reflect")
            lab = np.pad(lab, ((0, ph), (0, pw)), mode="constant")
            h, w = lab.shape
        y0 = rng.integers(0, h - size + 1)
        x0 = rng.integers(0, w - size + 1)
        xc = x[:, y0 : y0 + size, x0 : x0 + size]
        lc = lab[y0 : y0 + size, x0 : x0 + size]
        if size != p:
            f = p / size
            xc = ndi.zoom(xc, (1, f, f), order=1)[:, :p, :p]
            lc = ndi.zoom(lc, f, order=0)[:p, :p]
            if lc.shape != (p, p):
                pad = ((0, p - lc.shape[0]), (0, p - lc.shape[1]))
                xc = np.pad(xc, ((0, 0), *pad), mode="edge")
                lc = np.pad(lc, pad)
        if self.augment:
            k = int(rng.integers(4))
            xc, lc = np.rot90(xc, k, axes=(1, 2)), np.rot90(lc, k)
            if rng.random() < 0.5:
                xc, lc = xc[:, :, ::-1], lc[:, ::-1]
            # gain and offset per channel: the channels' brightness varies independently
            n = xc.shape[0]
            gain = np.exp(rng.normal(0, 0.25, (n, 1, 1)))
            xc = xc * gain + rng.normal(0, 0.05, (n, 1, 1))
            if rng.random() < 0.3:
                xc = xc + rng.normal(0, rng.uniform(0.01, 0.08), xc.shape)
        return np.ascontiguousarray(xc, dtype=np.float32), np.ascontiguousarray(lc)


def unet_loss(output, targets):
    """Cross-entropy on background / interior / boundary (boundary weighted x2) plus the mean
    squared error of the sigmoid distance map."""
    import torch
    import torch.nn.functional as F

    classes = targets[:, 0].long()
    weights = torch.tensor([1.0, 1.0, 2.0], dtype=output.dtype, device=output.device)
    ce = F.cross_entropy(output[:, :3], classes, weight=weights)
    mse = F.mse_loss(torch.sigmoid(output[:, 3]), targets[:, 1])
    return ce + 5.0 * mse
