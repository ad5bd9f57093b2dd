"""Single-channel whole-cell segmentation (Al-Kofahi et al., BMC Bioinformatics 2018).

One channel in which the cytoplasm is bright and nuclei are dim (a cytoplasm marker) is enough:
a U-Net predicts nucleus, cytoplasm and background; nuclei found in the nucleus map become seeds
(:func:`cellscape.post.seeds.nuclei_from_map`), and a seeded watershed on the marker intensity
times the cell map gives one whole cell per nucleus
(:func:`cellscape.post.seeds.cells_from_nuclei`).

Preprocessing: top-hat background suppression (kernel in µm) and rescaling to a working pixel
size (0.65 µm, the paper's 10x), undone on output. Training targets come from
:class:`cellscape.twochannel.TwoChannelSegmenter` (a marker + nuclear image pair, as in the
paper) or from drawn masks (:func:`cellscape.twochannel.class_targets`).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import CellscapeError
from ..io import ImageMeta
from ..preprocess import to_single_channel
from ..twochannel import (
    CLASSES,
    WORKING_PIXEL_SIZE,
    class_targets,
    from_working_scale,
    normalize,
    to_working_scale,
    tophat,
)
from .base import CONFIG_NAME, Segmenter

WEIGHTS_NAME = "weights.safetensors"

__all__ = ["WholeCell", "wholecell_loss", "class_targets", "cross_validate"]


class WholeCell(Segmenter):
    """Whole cells and nuclei from one cytoplasm-marker channel (see the module docstring).

    Parameters
    ----------
    filters : tuple of int
        U-Net feature maps per level. The default is the paper's asymmetric network
        (32-64-128-128-256, 3x3 convolutions, transposed convolutions up); smaller ones such as
        ``(8, 16, 32, 32, 64)`` train and run much faster on a CPU.
    dropout : float
        Dropout after the three deepest encoder levels (three dropout layers).
    loss : {"rmsd", "cross_entropy"}
        ``"rmsd"``: the paper's weighted root-mean-square deviation per class on sigmoid
        outputs, plus a term keeping the three maps summing to one. ``"cross_entropy"``:
        softmax cross-entropy with the same class weights.
    class_weights : tuple of float
        Weights of nucleus, cytoplasm, background in the loss.
    sum_weight : float
        Weight of the sum-to-one term (``"rmsd"`` only).
    epochs, steps_per_epoch, batch_size : int
        Training length: batches of ``batch_size`` patches.
    patch, margin : int
        Training patch edge in working pixels and the rim left out of the loss (the paper:
        176-px patches of which the inner 160 px count). ``patch=0`` trains on whole images.
    learning_rate : float
        AdamW learning rate (cosine decay).
    pixel_size : float or None
        Pixel size of the images in µm when their metadata has none; ``None`` assumes the
        working pixel size.
    working_pixel_size : float
        Pixel size the network works at, µm.
    tophat_um : float or None
        Top-hat kernel edge in µm (the paper: 200 px at 0.65 µm = 130 µm); ``None`` skips it
        (phase contrast, where the background is not an additive offset).
    nucleus_diameter, h, min_nucleus_area, sensitivity
        Nuclei seeds: typical diameter (µm), extended h-minima depth (µm, the paper's 3 µm),
        smallest nucleus (µm²), multi-level Otsu sensitivity (0..1).
    nucleus_levels : int
        Classes of the multi-level Otsu on the blob-enhanced nucleus map; ``sensitivity`` picks
        one of its ``nucleus_levels - 1`` thresholds. A trained nucleus map is nearly binary,
        and plain Otsu (2) was best on the synthetic validation images (3 levels with
        sensitivity 0 came second); raise both for dim, uneven nuclei.
    cell_area : float or None
        Expected cell area in µm² for choosing the cell threshold; ``None`` uses the value
        learned from the training targets (``cell_area_``).
    use_intensity : bool
        Multiply the cell map by the log marker intensity, as in the paper (True); False uses
        the predicted cell map alone (for channels such as phase contrast that do not mark
        the cytoplasm).
    smoothing : float
        Gaussian denoising of the intensity before the log, µm.
    channel : int or str or None
        Channel holding the cytoplasm marker in multi-channel images.
    tile : int
        Inference tile edge in working pixels (memory is bounded by it).
    seed : int
        Random seed of training.
    """

    method = "wholecell"
    class_names = CLASSES

    def __init__(
        self,
        filters: tuple[int, ...] = (32, 64, 128, 128, 256),
        dropout: float = 0.2,
        loss: str = "rmsd",
        class_weights: tuple[float, float, float] = (1.0, 1.0, 1.0),
        sum_weight: float = 1.0,
        epochs: int = 20,
        steps_per_epoch: int = 100,
        batch_size: int = 8,
        patch: int = 176,
        margin: int = 8,
        learning_rate: float = 1e-3,
        pixel_size: float | None = None,
        working_pixel_size: float = WORKING_PIXEL_SIZE,
        tophat_um: float | None = 130.0,
        nucleus_diameter: float = 10.0,
        h: float = 3.0,
        min_nucleus_area: float = 12.0,
        sensitivity: float = 0.5,
        nucleus_levels: int = 2,
        cell_area: float | None = None,
        use_intensity: bool = True,
        smoothing: float = 0.2,
        channel: int | str | None = None,
        tile: int = 1024,
        seed: int = 0,
    ):
        self.filters = tuple(filters)
        self.dropout = dropout
        self.loss = loss
        self.class_weights = tuple(class_weights)
        self.sum_weight = sum_weight
        self.epochs = epochs
        self.steps_per_epoch = steps_per_epoch
        self.batch_size = batch_size
        self.patch = patch
        self.margin = margin
        self.learning_rate = learning_rate
        self.pixel_size = pixel_size
        self.working_pixel_size = working_pixel_size
        self.tophat_um = tophat_um
        self.nucleus_diameter = nucleus_diameter
        self.h = h
        self.min_nucleus_area = min_nucleus_area
        self.sensitivity = sensitivity
        self.nucleus_levels = nucleus_levels
        self.cell_area = cell_area
        self.use_intensity = use_intensity
        self.smoothing = smoothing
        self.channel = channel
        self.tile = tile
        self.seed = seed

    # -- preprocessing --------------------------------------------------------------------------
    def _pixel_size(self, meta: ImageMeta | None) -> float:
        if meta is not None and meta.pixel_size:
            return float(meta.pixel_size)
        return float(self.pixel_size or self.working_pixel_size)

    def preprocess(
        self, image: np.ndarray, meta: ImageMeta | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-hat, rescale to the working pixel size, normalise.

        Parameters
        ----------
        image : ndarray
            ``(Y, X)`` or ``(C, Y, X)`` (the marker channel is picked by ``channel``).
        meta : ImageMeta, optional
            Axes, channel names and pixel size of ``image``.

        Returns
        -------
        network_input : ndarray of float32, shape (Y', X')
            Normalised (1st / 99.8th percentile -> 0 / 1) plane at the working pixel size.
        intensity : ndarray of float32, shape (Y', X')
            The top-hat filtered intensity at the working pixel size (for the cell step).
        """
        plane = to_single_channel(image, meta, self.channel)
        px = self._pixel_size(meta)
        plane = tophat(plane, self.tophat_um, px)
        plane = to_working_scale(plane, px, self.working_pixel_size)
        return normalize(plane).astype(np.float32), plane

    # -- the network ----------------------------------------------------------------------------
    def _build(self):
        from ..nn.unet import UNet

        return UNet(
            in_channels=1,
            out_channels=3,
            filters=self.filters,
            dropout=self.dropout,
            upsampling="transpose",
        )

    def _check_fitted(self):
        if not hasattr(self, "net_"):
            raise CellscapeError(None, "this whole-cell model has not been trained or loaded")

    def _prepare_training(self, images, targets, metas):
        metas = metas or [None] * len(images)
        pairs = []
        for image, target, meta in zip(images, targets, metas, strict=True):
            x, _ = self.preprocess(image, meta)
            t = np.asarray(target, dtype=np.float32)
            if t.ndim != 3 or t.shape[0] != 3:
                raise ValueError(f"targets must be (3, Y, X) class maps, got shape {t.shape}")
            t = np.stack(
                [to_working_scale(c, self._pixel_size(meta), self.working_pixel_size) for c in t]
            )
            if t.shape[1:] != x.shape:
                raise ValueError(f"targets {t.shape[1:]} do not match the image {x.shape}")
            t /= np.maximum(t.sum(0, keepdims=True), 1e-6)
            pairs.append((x, t))
        return pairs

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
    ) -> WholeCell:
        """Train the network on images and their class maps.

        Parameters
        ----------
        images : sequence of ndarray
            Cytoplasm-marker images (``(Y, X)`` or ``(C, Y, X)``, axes as in ``metas``).
        targets : sequence of ndarray of float, shape (3, Y, X)
            Nucleus / cytoplasm / background maps at each image's own pixel grid, from
            :meth:`cellscape.twochannel.TwoChannelSegmenter.targets` or
            :func:`cellscape.twochannel.class_targets`.
        metas : sequence of ImageMeta, optional
        val_images, val_targets, val_metas : optional
            Validation images; their loss picks the best epoch.
        checkpoint_dir : path, optional
            Checkpoint every epoch there; an interrupted fit resumes from it.
        progress : bool
            Show a progress bar.
        threads : int, optional
            torch CPU threads.
        """
        from ..nn.train import TrainConfig, train_network

        if self.loss not in ("rmsd", "cross_entropy"):
            raise ValueError(f"loss must be 'rmsd' or 'cross_entropy', got {self.loss!r}")
        train = self._prepare_training(images, targets, metas)
        sampler = PatchSampler(train, self.patch, self.batch_size)
        val_batches = []
        if val_images:
            val = self._prepare_training(val_images, val_targets, val_metas)
            vs = PatchSampler(val, self.patch, self.batch_size, augment=False)
            vrng = np.random.default_rng(12345)
            val_batches = [vs(vrng) for _ in range(max(4, len(val)))]
        self.net_ = self._build()
        config = TrainConfig(
            epochs=self.epochs,
            steps_per_epoch=self.steps_per_epoch,
            learning_rate=self.learning_rate,
            seed=self.seed,
            threads=threads,
        )
        history = train_network(
            self.net_,
            sampler,
            self.loss_function(),
            config,
            val_batches=val_batches,
            checkpoint_dir=checkpoint_dir,
            progress=progress,
        )
        self.cell_area_ = _cell_area_from_targets(train, self.working_pixel_size)
        self.info_ = {
            "history": history.to_dict(),
            "n_train_images": len(train),
            "n_val_images": len(val_images or []),
        }
        return self

    def loss_function(self):
        """The training loss ``f(logits, targets)`` chosen by ``loss``."""
        return _Loss(self.loss, self.class_weights, self.sum_weight, self.margin)

    # -- inference ------------------------------------------------------------------------------
    def _transform(self):
        import torch

        if self.loss == "cross_entropy":
            return lambda logits: torch.softmax(logits, 1)

        def normalised_sigmoid(logits):
            p = torch.sigmoid(logits)
            return p / p.sum(1, keepdim=True).clamp_min(1e-6)

        return normalised_sigmoid

    def predict_working(
        self, image: np.ndarray, meta: ImageMeta | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Class maps at the working pixel size, with the intensity they were computed from.

        Returns
        -------
        maps : ndarray of float32, shape (3, Y', X')
            P(nucleus), P(cytoplasm), P(background), summing to one.
        intensity : ndarray of float32, shape (Y', X')
            Top-hat filtered marker intensity at the working pixel size.
        """
        import torch

        from ..nn.infer import predict_tiled

        self._check_fitted()
        x, intensity = self.preprocess(image, meta)
        # channels-last convolutions are about 25% faster on CPUs; one tile per call keeps
        # the activations in cache (faster per pixel than batches of tiles)
        net = self.net_.eval().to(memory_format=torch.channels_last)

        def run(batch):
            return net(batch.contiguous(memory_format=torch.channels_last))

        maps = predict_tiled(
            run,
            x[None],
            tile=_even_tile(x.shape, self.tile, 32, net.divisor),
            overlap=32,
            divisor=net.divisor,
            batch_size=1,
            transform=self._transform(),
        )
        return maps, intensity

    def predict_proba(self, image: np.ndarray, meta: ImageMeta | None = None) -> np.ndarray:
        """Per-pixel probabilities of nucleus, cytoplasm and background.

        Returns
        -------
        ndarray of float32, shape (3, Y, X)
            At the image's own pixel grid; the three maps sum to one.
        """
        maps, _ = self.predict_working(image, meta)
        shape = np.asarray(image).shape[-2:]
        return np.stack([from_working_scale(m, shape) for m in maps]).astype(np.float32)

    @property
    def uses_pixel_size(self) -> bool:
        return True  # every image is brought to the working pixel size first

    def segment(self, image: np.ndarray, meta: ImageMeta | None = None) -> np.ndarray:
        """Whole-cell labels, shape (Y, X), int32, 0 = background (one cell per nucleus)."""
        return self.segment_with_nuclei(image, meta)[0]

    def segment_with_nuclei(
        self, image: np.ndarray, meta: ImageMeta | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Whole cells and their nuclei, (Y, X) int32; a cell and its nucleus share an id."""
        maps, intensity = self.predict_working(image, meta)
        cells, nuclei = self.labels_from_maps(maps, intensity)
        shape = np.asarray(image).shape[-2:]
        return (
            from_working_scale(cells, shape, labels=True).astype(np.int32),
            from_working_scale(nuclei, shape, labels=True).astype(np.int32),
        )

    def labels_from_maps(
        self, maps: np.ndarray, intensity: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The post-processing alone, at the working pixel size.

        Parameters
        ----------
        maps : ndarray of float, shape (3, Y, X)
            Output of :meth:`predict_working`.
        intensity : ndarray of float, shape (Y, X), optional
            Marker intensity (needed when ``use_intensity``).

        Returns
        -------
        cells, nuclei : ndarray of int32, shape (Y, X)
        """
        from ..post.seeds import cell_evidence, cells_from_nuclei, nuclei_from_map

        wp = self.working_pixel_size
        nuclei = nuclei_from_map(
            maps[0],
            pixel_size=wp,
            nucleus_diameter=self.nucleus_diameter,
            sensitivity=self.sensitivity,
            levels=self.nucleus_levels,
            h=self.h,
            min_area=self.min_nucleus_area,
            foreground=maps[2] < 0.5,
        )
        cell_map = maps[0] + maps[1]
        use = intensity if (self.use_intensity and intensity is not None) else None
        evidence = cell_evidence(use, cell_map, self.smoothing / wp)
        area = self.cell_area or getattr(self, "cell_area_", None) or 600.0
        cells, _ = cells_from_nuclei(evidence, nuclei, cell_area=float(area), pixel_size=wp)
        return cells, nuclei

    # -- persistence ----------------------------------------------------------------------------
    def _state(self) -> dict:
        return {"cell_area_": getattr(self, "cell_area_", None)}

    def _set_state(self, state: dict) -> None:
        self.cell_area_ = state.get("cell_area_")

    def save(self, path: str | os.PathLike) -> Path:
        """Write ``config.json`` and float16 ``weights.safetensors`` into the folder ``path``."""
        from ..nn.train import save_weights

        self._check_fitted()
        folder = Path(path)
        save_weights(self.net_, folder / WEIGHTS_NAME)
        return super().save(folder)

    @classmethod
    def load(cls, path: str | os.PathLike) -> WholeCell:
        """Load a model folder written by :meth:`save` (never unpickles anything)."""
        from ..nn.train import load_weights

        folder = Path(path)
        folder = folder.parent if folder.name == CONFIG_NAME else folder
        model = super().load(folder)
        model.filters = tuple(model.filters)
        model.class_weights = tuple(model.class_weights)
        model.net_ = model._build()
        load_weights(model.net_, folder / WEIGHTS_NAME)
        model.net_.eval()
        return model


def _even_tile(shape, tile: int, overlap: int, divisor: int) -> int:
    """The smallest tile edge (<= about ``tile``) covering ``shape`` with as few tiles as
    ``tile`` needs: a 2048-px image and ``tile=1024`` get 2 x 2 tiles of 1040 px, not 3 x 3."""
    edge = 0
    for length in shape:
        if length <= tile:
            need = length
        else:
            n = int(np.ceil((length - overlap) / (tile - overlap)))
            need = int(np.ceil((length + (n - 1) * overlap) / n))
        edge = max(edge, need)
    return int(np.ceil(edge / divisor) * divisor)


# ----------------------------------------------------------------------------------------------
# training
# ----------------------------------------------------------------------------------------------


def _cell_area_from_targets(pairs, pixel_size: float) -> float | None:
    """Median cell area (µm²): cell pixels over the number of nucleus pieces, per image."""
    from scipy import ndimage as ndi

    values = []
    for _, t in pairs:
        nuclei = t[0] > 0.5
        n = ndi.label(nuclei)[1]
        if n:
            values.append(float((t[2] < 0.5).sum()) / n * pixel_size**2)
    return float(np.median(values)) if values else None


class PatchSampler:
    """Random training batches of ``patch`` x ``patch`` crops with 90-degree rotations and flips.

    Calling it with a random generator returns ``(inputs (N, 1, P, P), targets (N, 3, P, P))``
    float32 tensors. ``patch=0`` uses whole images (batch size 1, cropped to a multiple of 16).
    """

    def __init__(self, pairs, patch: int, batch_size: int, augment: bool = True):
        self.pairs = pairs
        self.patch = patch
        self.batch_size = batch_size if patch else 1
        self.augment = augment
        areas = np.array([p[0].size for p in pairs], dtype=float)
        self.weights = areas / areas.sum()

    def __call__(self, rng: np.random.Generator):
        import torch

        xs, ts = [], []
        for _ in range(self.batch_size):
            x, t = self.pairs[rng.choice(len(self.pairs), p=self.weights)]
            x, t = self._crop(x, t, rng)
            xs.append(x[None])
            ts.append(t)
        return torch.from_numpy(np.stack(xs)), torch.from_numpy(np.stack(ts))

    def _crop(self, x, t, rng):
        if self.patch:
            p = self.patch
            h, w = x.shape
            if h < p or w < p:
                ph, pw = max(p - h, 0), max(p - w, 0)
                x = np.pad(x, ((0, ph), (0, pw)), mode="reflect")
                bg = np.zeros((3, 1, 1), np.float32)
                bg[2] = 1
                t = np.pad(t, ((0, 0), (0, ph), (0, pw)))
                t[:, h:, :] = bg
                t[:, :, w:] = bg
                h, w = x.shape
            y0 = int(rng.integers(0, h - p + 1))
            x0 = int(rng.integers(0, w - p + 1))
            x = x[y0 : y0 + p, x0 : x0 + p]
            t = t[:, y0 : y0 + p, x0 : x0 + p]
        else:
            h, w = (s // 16 * 16 for s in x.shape)
            x, t = x[:h, :w], t[:, :h, :w]
        if self.augment:
            k = int(rng.integers(4))
            x, t = np.rot90(x, k), np.rot90(t, k, axes=(1, 2))
            if rng.random() < 0.5:
                x, t = x[:, ::-1], t[:, :, ::-1]
            x = x * float(np.exp(rng.normal(0, 0.2))) + float(rng.normal(0, 0.03))
        return np.ascontiguousarray(x, np.float32), np.ascontiguousarray(t, np.float32)


class _Loss:
    """Callable loss (a class, so that it is named in tracebacks and can be compared)."""

    def __init__(self, kind: str, class_weights, sum_weight: float, margin: int):
        self.kind = kind
        self.class_weights = tuple(float(w) for w in class_weights)
        self.sum_weight = float(sum_weight)
        self.margin = int(margin)

    def __call__(self, output, targets):
        return wholecell_loss(
            output, targets, self.kind, self.class_weights, self.sum_weight, self.margin
        )


def wholecell_loss(
    output,
    targets,
    kind: str = "rmsd",
    class_weights=(1.0, 1.0, 1.0),
    sum_weight: float = 1.0,
    margin: int = 8,
):
    """Loss of the whole-cell network on the inner part of the patches.

    Parameters
    ----------
    output : torch.Tensor, shape (N, 3, P, P)
        Network logits.
    targets : torch.Tensor, shape (N, 3, P, P)
        Target class maps (nucleus, cytoplasm, background), summing to one.
    kind : {"rmsd", "cross_entropy"}
        ``"rmsd"``: ``sum_c w_c sqrt(mean((sigmoid(o_c) - t_c)^2)) / sum_c w_c`` plus
        ``sum_weight * mean((sum_c sigmoid(o_c) - 1)^2)`` (the paper's loss). ``"cross_entropy"``:
        softmax cross-entropy with soft targets, pixels weighted by their class weight.
    class_weights : sequence of 3 float
    sum_weight : float
    margin : int
        Pixels at each patch border left out (the paper counts the inner 160 of 176 px).
    """
    import torch
    import torch.nn.functional as F

    if margin > 0 and output.shape[-1] > 4 * margin and output.shape[-2] > 4 * margin:
        output = output[..., margin:-margin, margin:-margin]
        targets = targets[..., margin:-margin, margin:-margin]
    w = torch.tensor(class_weights, dtype=output.dtype)
    if kind == "cross_entropy":
        logp = F.log_softmax(output, 1)
        pixel_w = (targets * w[None, :, None, None]).sum(1)
        return -((targets * logp).sum(1) * pixel_w).sum() / pixel_w.sum().clamp_min(1e-6)
    p = torch.sigmoid(output)
    rmsd = torch.sqrt(((p - targets) ** 2).mean(dim=(0, 2, 3)) + 1e-8)
    loss = (w * rmsd).sum() / w.sum()
    return loss + sum_weight * ((p.sum(1) - 1.0) ** 2).mean()


# ----------------------------------------------------------------------------------------------
# cross-validation
# ----------------------------------------------------------------------------------------------


def cross_validate(
    make_model,
    images,
    targets,
    k: int = 3,
    *,
    metas=None,
    cell_labels=None,
    progress: bool = True,
    threads: int | None = None,
    checkpoint_root: str | os.PathLike | None = None,
) -> dict:
    """k-fold cross-validation: in fold ``i`` the ``i``-th part is the test set, the next part
    the validation set (best epoch), the rest the training set.

    Parameters
    ----------
    make_model : callable
        ``make_model() -> WholeCell`` (a fresh, unfitted model per fold).
    images, targets : sequences
        As for :meth:`WholeCell.fit`; at least ``k`` images (``k >= 3``).
    metas : sequence of ImageMeta, optional
    cell_labels : sequence of ndarray, optional
        Whole-cell labels of each image; when given, the SM similarity (k = 0.6) of the
        segmented cells is reported per test image.
    checkpoint_root : path, optional
        Fold ``i`` checkpoints into ``checkpoint_root/fold<i>`` (resumable).

    Returns
    -------
    dict
        ``folds``: per fold the test indices, pixel ROC curves and AUC / accuracy at 0.5 of
        ``nucleus`` and ``cell`` (nucleus + cytoplasm against background), and the SM scores;
        ``summary``: the mean over folds; ``roc``: pooled test-pixel ROC curves.
    """
    from ..metrics import sm_similarity
    from ..roc import pixel_roc

    n = len(images)
    if k < 3 or n < k:
        raise ValueError(f"need k >= 3 and at least k images (k={k}, {n} images)")
    metas = metas or [None] * n
    order = np.random.default_rng(0).permutation(n)
    parts = [order[i::k] for i in range(k)]
    folds = []
    pooled: dict[str, list] = {"nucleus": [[], []], "cell": [[], []]}
    for i in range(k):
        test, val = parts[i], parts[(i + 1) % k]
        train = np.concatenate([parts[j] for j in range(k) if j not in (i, (i + 1) % k)])
        model = make_model()
        model.fit(
            [images[j] for j in train],
            [targets[j] for j in train],
            [metas[j] for j in train],
            val_images=[images[j] for j in val],
            val_targets=[targets[j] for j in val],
            val_metas=[metas[j] for j in val],
            checkpoint_dir=None if checkpoint_root is None else Path(checkpoint_root) / f"fold{i}",
            progress=progress,
            threads=threads,
        )
        fold: dict = {"test": [int(j) for j in test], "sm": []}
        scores = {"nucleus": [[], []], "cell": [[], []]}
        for j in test:
            maps, intensity = model.predict_working(images[j], metas[j])
            shape = np.asarray(images[j]).shape[-2:]
            prob = np.stack([from_working_scale(m, shape) for m in maps])
            t = np.asarray(targets[j])
            for name, p, y in (
                ("nucleus", prob[0], t[0] > 0.5),
                ("cell", prob[0] + prob[1], t[2] < 0.5),
            ):
                step = max(1, int(np.sqrt(p.size / 200_000)))
                scores[name][0].append(p[::step, ::step].ravel())
                scores[name][1].append(y[::step, ::step].ravel())
            if cell_labels is not None:
                cells, _ = model.labels_from_maps(maps, intensity)
                cells = from_working_scale(cells, shape, labels=True)
                fold["sm"].append(float(sm_similarity(cell_labels[j], cells).mean))
        for name in scores:
            p = np.concatenate(scores[name][0])
            y = np.concatenate(scores[name][1])
            fold[name] = pixel_roc(y, p).summary()
            pooled[name][0].append(p)
            pooled[name][1].append(y)
        folds.append(fold)
    roc = {
        name: pixel_roc(np.concatenate(v[1]), np.concatenate(v[0])) for name, v in pooled.items()
    }
    summary = {
        f"{name}_{key}": float(np.mean([f[name][key] for f in folds]))
        for name in ("nucleus", "cell")
        for key in ("auc", "accuracy")
    }
    if cell_labels is not None:
        summary["sm_mean"] = float(np.mean([s for f in folds for s in f["sm"]]))
    return {"folds": folds, "summary": summary, "roc": roc}
