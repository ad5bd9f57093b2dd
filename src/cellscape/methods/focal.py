"""Focal signature: classify every pixel of a bright-field z-stack by its intensity profile in z.

The method of Lugagne, Jain, Ducret & Hersen (Sci Rep 2018). A pixel's *focal signature* is the
vector of its intensities across a z-stack taken around focus: an unstained cell's interior,
its contour, the halo outside it, the background and the walls of a microfluidic device each go
dark and bright in a different way as the focus moves through them, so the signature tells them
apart without any perfectly focused frame. The user paints a few pixels of each class on one
stack; the model learns

    stack (Z, Y, X) -> chosen frames -> (optional slight Y, X smoothing of each frame) ->
    normalisation (1%-saturated histogram equalisation learned on the training stacks) ->
    PCA to a few components -> classifier
    -> class probabilities (K, Y, X) -> topological rules + watershed -> cells (Y, X)

Classifiers: ``"svm"`` (RBF kernel, one-vs-rest, winner takes all, C and gamma searched by
cross-validation), ``"rf"`` (random forest), ``"mlp"`` (small neural network) and ``"linear"``
(multinomial logistic regression: the fastest; with the PCA it folds into one small matrix).
These four are trained with scikit-learn and then kept as plain arrays, so a saved model is a
``config.json`` plus a ``weights.safetensors`` (nothing is pickled) and prediction runs in
chunked float32 torch code that never copies the whole stack. A fifth, ``"cnn"`` (an addition
to the paper, :mod:`cellscape.methods.focal_context`), reads the same PCA features of the
z-profiles over a neighbourhood of each pixel with a small convolutional network trained in
torch: the most accurate on rings narrower than the optical resolution, and the slowest.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import CellscapeError
from ..io import ImageMeta, atomic_path
from .base import Segmenter

WEIGHTS_NAME = "weights.safetensors"
CLASSIFIERS = ("svm", "rf", "mlp", "linear", "cnn")
NORMALIZATIONS = ("auto", "equalize", "stretch")
SPACINGS = ("even", "log")
#: class names with a role in the topological rules; every other class is a cell interior
ROLE_NAMES = {"background", "contour", "halo", "wall"}
_LUT_BINS = 1024
_RANGE_SAMPLES = 500_000  # values used to estimate a stack's intensity range


# ------------------------------------------------------------------------------------------
# frame selection
# ------------------------------------------------------------------------------------------
def select_frames(
    n_total: int,
    n_frames: int | None = None,
    spacing: str = "even",
    focus: int | None = None,
) -> np.ndarray:
    """Indices of the frames of a stack the model uses.

    Parameters
    ----------
    n_total : int
        Number of frames in the stack.
    n_frames : int or None
        How many frames to keep (None: all).
    spacing : {"even", "log"}
        ``"even"``: evenly spaced over the whole stack. ``"log"``: dense around the focus and
        sparser away from it (offsets from ``focus`` on a geometric progression, both sides).
    focus : int or None
        Index of the in-focus frame (None: the middle frame, ``n_total // 2``).

    Returns
    -------
    ndarray of int64, shape (n_frames,)
        Sorted, distinct frame indices in ``0..n_total-1``.
    """
    if n_frames is None or n_frames >= n_total:
        return np.arange(n_total)
    if n_frames < 1:
        raise ValueError("n_frames must be at least 1")
    if spacing == "even":
        return np.unique(np.round(np.linspace(0, n_total - 1, n_frames)).astype(np.int64))
    if spacing != "log":
        raise ValueError(f"spacing must be one of {SPACINGS}, got {spacing!r}")
    focus = n_total // 2 if focus is None else int(focus)
    below, above = focus, n_total - 1 - focus  # frames available on each side
    m_above = min(above, (n_frames - 1 + 1) // 2)
    m_below = min(below, n_frames - 1 - m_above)
    m_above = min(above, n_frames - 1 - m_below)
    return np.sort(
        np.concatenate(
            [[focus], focus - _log_offsets(m_below, below), focus + _log_offsets(m_above, above)]
        )
    ).astype(np.int64)


def _log_offsets(m: int, reach: int) -> np.ndarray:
    """``m`` distinct integer offsets in 1..reach on a geometric progression ending at reach."""
    if m <= 0:
        return np.zeros(0, np.int64)
    if m == 1:
        return np.array([reach], np.int64)
    off = np.round(np.geomspace(1, reach, m)).astype(np.int64)
    for i in range(1, m):  # rounding may collide near the focus: push outwards
        off[i] = max(off[i], off[i - 1] + 1)
    for i in range(m - 1, -1, -1):  # ... and pull back within reach
        off[i] = min(off[i], reach - (m - 1 - i))
    return off


# ------------------------------------------------------------------------------------------
# results
# ------------------------------------------------------------------------------------------
@dataclass
class FocalResult:
    """Everything :meth:`FocalSignature.analyze` computes for one stack.

    Attributes
    ----------
    probabilities : ndarray of float32, shape (K, Y, X)
        Class probabilities (sum to 1 over K).
    class_map : ndarray of uint8, shape (Y, X)
        Winning class per pixel after the topological rules.
    confidence : ndarray of float32, shape (Y, X)
        Probability of the winning class before the rules (0..1).
    labels : ndarray of int32, shape (Y, X)
        Cell instances, 0 = background.
    cell_types : ndarray of int32, shape (N + 1,)
        Index into ``type_names`` of each cell (``-1`` for index 0, the background).
    class_names, type_names : tuple of str
        Names of the classes and of the cell types (the interior classes).
    """

    probabilities: np.ndarray
    class_map: np.ndarray
    confidence: np.ndarray
    labels: np.ndarray
    cell_types: np.ndarray
    class_names: tuple[str, ...]
    type_names: tuple[str, ...]


# ------------------------------------------------------------------------------------------
# the estimator
# ------------------------------------------------------------------------------------------
class FocalSignature(Segmenter):
    """Pixel classification of bright-field z-stacks by focal signature (Lugagne et al. 2018).

    Parameters
    ----------
    classes : sequence of str or None
        Names of the label values 1..K of the training label images (0 = unlabelled). Names
        ``background``, ``contour``, ``halo`` and ``wall`` have a role in the topological rules;
        every other name is a cell interior (one per cell type, e.g. ``bacteria,yeast``).
        None: ``class1..classK``, all interiors.
    classifier : {"svm", "rf", "mlp", "linear", "cnn"}
        RBF-kernel SVM (one-vs-rest, winner takes all, C and gamma by 3-fold grid search),
        random forest, small neural network (one hidden layer of ``hidden`` ReLU units),
        multinomial logistic regression (fastest), or a small convolutional network over the
        focal signatures of each pixel's neighbourhood (most accurate where classes are thinner
        than the optical resolution; see :mod:`cellscape.methods.focal_context`).
    n_components : int or float
        PCA components kept: an int (5-20 is typical), or a fraction in (0, 1) of the variance
        to explain.
    n_frames : int or None
        Number of frames to use (None: all frames of the training stacks).
    spacing : {"even", "log"}
        How ``n_frames`` frames are chosen (see :func:`select_frames`).
    frames : sequence of int or None
        Explicit frame indices (of the training stacks); overrides ``n_frames`` / ``spacing``.
    normalization : {"auto", "equalize", "stretch"}
        ``"auto"``: ``"equalize"``, or ``"stretch"`` for the ``"cnn"`` classifier (which did
        better with it on the tuning stacks: 1.4% against 1.6% pixel error).
        ``"equalize"``: histogram equalisation learned on the training stacks, 1% of the values
        saturated at each end (the paper's). ``"stretch"``: linear stretch of the same 1%-99%
        range to 0..1 (cheaper). Every stack is first scaled to the training range by matching
        its own 1% and 99% percentiles.
    saturation : float
        Fraction of the values saturated at each end of the range.
    frame_normalization : bool
        Divide each frame by its median first, which removes slow illumination drift along z
        (an addition to the paper; it makes models transfer better between stacks).
    xy_sigma : float
        Standard deviation in pixels of a Gaussian smoothing in Y and X applied to each used
        frame before the profiles are read (0: none; an addition to the paper). It averages
        the shot noise of neighbouring pixels (sigma = 1 px averages about 12 pixels) at the
        cost of some sharpness across class boundaries; the classifier still sees one pixel's
        z-profile. Worth it on noisy stacks and with few frames; it costs one 2-D filter per
        used frame at prediction time.
    max_train_pixels : int
        Labelled pixels used to train (class-balanced random subsample of the 90% split).
    svm_max_pixels : int
        Labelled pixels used to train the SVM (its cost grows quadratically).
    n_estimators : int
        Trees of the random forest.
    max_depth : int
        Depth limit of the random forest's trees (keeps prediction fast).
    hidden : int
        Hidden units of the neural network.
    cnn_width : int
        Channels of the hidden layers of the ``"cnn"`` classifier.
    cnn_dilations : sequence of int
        Dilations in pixels of its 3 x 3 layers; it sees ``sum(cnn_dilations)`` pixels on each
        side of a pixel (22 px = 2.2 µm at 0.1 µm pixels by default).
    cnn_steps : int
        Training steps of the ``"cnn"`` classifier (8 crops of 96 x 96 each; about 0.1 s a
        step on 2 CPU cores).
    cnn_augment : bool
        Average the ``"cnn"`` classifier's probabilities over the eight rotations and flips of
        the field (eight times its prediction cost; fewer errors on thin rings).
    min_size : int
        Smallest cell in pixels.
    random_state : int
        Seed of the subsampling, split and classifiers.
    """

    method = "focal"

    def __init__(
        self,
        classes: Sequence[str] | None = None,
        classifier: str = "mlp",
        n_components: int | float = 10,
        n_frames: int | None = None,
        spacing: str = "even",
        frames: Sequence[int] | None = None,
        normalization: str = "auto",
        saturation: float = 0.01,
        frame_normalization: bool = True,
        xy_sigma: float = 0.0,
        max_train_pixels: int = 30000,
        svm_max_pixels: int = 3000,
        n_estimators: int = 50,
        max_depth: int = 14,
        hidden: int = 32,
        cnn_width: int = 32,
        cnn_dilations: Sequence[int] = (1, 2, 4, 8, 4, 2, 1),
        cnn_steps: int = 1500,
        cnn_augment: bool = True,
        min_size: int = 20,
        random_state: int = 0,
    ):
        self.classes = classes
        self.classifier = classifier
        self.n_components = n_components
        self.n_frames = n_frames
        self.spacing = spacing
        self.frames = frames
        self.normalization = normalization
        self.saturation = saturation
        self.frame_normalization = frame_normalization
        self.xy_sigma = xy_sigma
        self.max_train_pixels = max_train_pixels
        self.svm_max_pixels = svm_max_pixels
        self.n_estimators = n_estimators
        self.max_depth = max_depth
        self.hidden = hidden
        self.cnn_width = cnn_width
        self.cnn_dilations = cnn_dilations
        self.cnn_steps = cnn_steps
        self.cnn_augment = cnn_augment
        self.min_size = min_size
        self.random_state = random_state

    # -- class roles ---------------------------------------------------------------------------
    @property
    def class_names(self) -> tuple[str, ...]:  # type: ignore[override]
        return tuple(getattr(self, "class_names_", ()))

    def _role(self, name: str) -> int | None:
        names = [n.lower() for n in self.class_names]
        return names.index(name) if name in names else None

    @property
    def interior_classes(self) -> list[int]:
        """Indices of the interior (cell type) classes."""
        return [i for i, n in enumerate(self.class_names) if n.lower() not in ROLE_NAMES]

    # -- fitting ---------------------------------------------------------------------------------
    def _check_params(self) -> None:
        if self.classifier not in CLASSIFIERS:
            raise ValueError(f"classifier must be one of {CLASSIFIERS}, got {self.classifier!r}")
        if self.normalization not in NORMALIZATIONS:
            raise ValueError(
                f"normalization must be one of {NORMALIZATIONS}, got {self.normalization!r}"
            )
        if self.spacing not in SPACINGS:
            raise ValueError(f"spacing must be one of {SPACINGS}, got {self.spacing!r}")
        if not 0 <= self.saturation < 0.5:
            raise ValueError("saturation must be in [0, 0.5)")
        if not 0 <= float(self.xy_sigma) <= 10:
            raise ValueError("xy_sigma must be in [0, 10] pixels")
        if self.classifier == "cnn":
            dil = list(self.cnn_dilations)
            if not dil or any(int(d) != d or d < 1 for d in dil):
                raise ValueError("cnn_dilations must be positive integers, e.g. 1,2,4,8,4,2,1")
            if int(self.cnn_steps) < 1 or int(self.cnn_width) < 1:
                raise ValueError("cnn_steps and cnn_width must be at least 1")

    def fit(self, images, targets, metas=None, progress=None) -> FocalSignature:
        """Learn the normalisation, the PCA and the classifier from painted stacks.

        Parameters
        ----------
        images : ndarray (Z, Y, X) or sequence of them
            Training z-stacks (any real dtype); all must have at least as many frames as the
            shortest, whose frame count the model remembers.
        targets : ndarray (Y, X) of int or sequence of them
            Sparse labels, one image per stack: 0 = unlabelled, 1..K = class ``classes[k-1]``.
        metas : ignored
            Accepted for a uniform interface.
        progress : callable, optional
            For the ``"cnn"`` classifier, called as ``progress(step, steps, loss)`` while it
            trains (the others train in seconds and do not call it).

        Returns
        -------
        self
            With ``info_["validation"]`` holding the accuracy and confusion matrix on a held-out
            10% of the labelled pixels (never used for training).
        """
        from sklearn.decomposition import PCA
        from sklearn.model_selection import train_test_split

        self._check_params()
        start = time.perf_counter()
        stacks = [images] if isinstance(images, np.ndarray) and images.ndim == 3 else list(images)
        labels = [targets] if isinstance(targets, np.ndarray) and targets.ndim == 2 else targets
        labels = [np.asarray(t) for t in labels]
        if len(stacks) != len(labels) or not stacks:
            raise ValueError("give one label image per stack (and at least one stack)")
        for s, t in zip(stacks, labels, strict=True):
            if np.ndim(s) != 3:
                raise ValueError(f"stacks must be (Z, Y, X), got shape {np.shape(s)}")
            if t.shape != np.shape(s)[1:]:
                raise ValueError(f"labels {t.shape} do not match the stack frames {s.shape[1:]}")
        k = int(max(t.max() for t in labels))
        if k < 2:
            raise ValueError("label at least two classes (values 1 and 2)")
        names = list(self.classes) if self.classes is not None else []
        if not names:
            names = [f"class{i}" for i in range(1, k + 1)]
        if len(names) < k:
            raise ValueError(f"labels go up to {k} but only {len(names)} class names were given")
        counts = np.bincount(np.concatenate([t.ravel() for t in labels]).astype(np.int64))
        empty = [
            names[i - 1] for i in range(1, len(names) + 1) if i >= counts.size or not counts[i]
        ]
        if empty:
            raise ValueError(f"classes without any labelled pixel: {', '.join(empty)}")
        self.class_names_ = tuple(str(n) for n in names)

        # frames
        self.n_frames_in_ = int(min(np.shape(s)[0] for s in stacks))
        if self.frames is not None:
            fr = np.unique(np.asarray(list(self.frames), dtype=np.int64))
            if fr.size == 0 or fr.min() < 0 or fr.max() >= self.n_frames_in_:
                raise ValueError(f"frames must lie in 0..{self.n_frames_in_ - 1}")
            self.frames_ = fr
        else:
            self.frames_ = select_frames(self.n_frames_in_, self.n_frames, self.spacing)

        # per-stack ranges, the reference range and the equalisation table
        rng = np.random.default_rng(self.random_state)
        chosen = [self._smooth(self._frames_of(np.asarray(s))) for s in stacks]
        ranges = [self._stack_range(c, selected=True) for c in chosen]
        self.ref_range_ = np.mean([r[1:] for r in ranges], axis=0).astype(np.float64)
        self.lut_ = np.linspace(0.0, 1.0, _LUT_BINS, dtype=np.float32)
        if self._normalization() == "equalize":
            sample = np.concatenate(
                [
                    self._normalize_np(
                        _sample_profiles(c, 20_000, rng), r, stretch_only=True
                    ).ravel()
                    for c, r in zip(chosen, ranges, strict=True)
                ]
            )
            hist = np.bincount(
                np.minimum((sample * _LUT_BINS).astype(np.int64), _LUT_BINS - 1),
                minlength=_LUT_BINS,
            )
            cdf = np.cumsum(hist).astype(np.float64)
            # value of a bin = fraction of values below its centre, so the table is monotone
            # and spans 0..1 between the saturated ends
            mid = (cdf - 0.5 * hist) / max(cdf[-1], 1)
            self.lut_ = ((mid - mid[0]) / max(mid[-1] - mid[0], 1e-12)).astype(np.float32)

        # normalised profiles: all labelled pixels, and a random sample for the PCA
        xs, ys, pca_x, labelled = [], [], [], []
        for c, r, t in zip(chosen, ranges, labels, strict=True):
            flat = c.reshape(c.shape[0], -1)
            lab = np.flatnonzero(t.ravel() > 0)
            labelled.append(lab)
            xs.append(self._normalize_np(flat[:, lab].T, r))
            ys.append(t.ravel()[lab].astype(np.int64) - 1)
            pick = rng.choice(flat.shape[1], size=min(flat.shape[1], 40_000), replace=False)
            pca_x.append(self._normalize_np(flat[:, np.sort(pick)].T, r))
        x_all = np.concatenate(xs)
        y_all = np.concatenate(ys)
        pca_in = np.concatenate(pca_x)
        n_comp = self.n_components
        n_comp = min(int(n_comp), *pca_in.shape) if n_comp >= 1 else float(n_comp)
        pca = PCA(n_components=n_comp, svd_solver="full", random_state=self.random_state)
        pca.fit(pca_in)
        scale = np.sqrt(np.maximum(pca.explained_variance_, 1e-12))
        if self.classifier == "cnn":
            # one scale for all components: whitening would blow the noise-dominated last
            # components up to the size of the first, and the network mixes them over its
            # whole neighbourhood (tuning stacks: 1.6% pixel error without, 1.8% with)
            scale = np.full_like(scale, scale[0])
        # projection (whitened for the per-pixel classifiers): feature = proj @ profile + bias
        self.proj_ = (pca.components_ / scale[:, None]).astype(np.float32)
        self.proj_bias_ = (-(pca.components_ @ pca.mean_) / scale).astype(np.float32)
        self.explained_variance_ratio_ = float(pca.explained_variance_ratio_.sum())

        # 90/10 split of the labelled pixels, class-balanced subsample of the 90%
        idx_tr, idx_va = train_test_split(
            np.arange(y_all.size),
            test_size=0.1,
            random_state=self.random_state,
            stratify=y_all if np.bincount(y_all).min() >= 2 else None,
        )
        if self.classifier == "cnn":
            # the network learns from every labelled pixel outside the held-out 10%
            search = None
            pred_all = self._fit_context(chosen, ranges, labels, labelled, idx_va, progress)
            idx_va = idx_va[rng.permutation(idx_va.size)[:100_000]]
            pred = pred_all[idx_va]
        else:
            cap = self.svm_max_pixels if self.classifier == "svm" else self.max_train_pixels
            idx_tr = _balanced_subsample(y_all[idx_tr], idx_tr, cap, rng)
            feats = x_all @ self.proj_.T + self.proj_bias_
            self.clf_, self.clf_meta_, search = _fit_classifier(
                self.classifier, feats[idx_tr], y_all[idx_tr], len(self.class_names_), self
            )
            # validation on the held-out 10%, through the same array code used for prediction
            idx_va = idx_va[rng.permutation(idx_va.size)[:100_000]]
            pred = self._proba_profiles(x_all[idx_va]).argmax(axis=0)
        kk = len(self.class_names_)
        conf = np.zeros((kk, kk), np.int64)
        np.add.at(conf, (y_all[idx_va], pred), 1)
        self.info_ = {
            "trained_on": {
                "n_stacks": len(stacks),
                "stack_frames": self.n_frames_in_,
                "labelled_pixels": int(y_all.size),
                "pixels_per_class": np.bincount(y_all, minlength=kk).tolist(),
                "train_pixels": int(idx_tr.size),
            },
            "frames": self.frames_.tolist(),
            "n_components": int(self.proj_.shape[0]),
            "explained_variance": self.explained_variance_ratio_,
            "search": search,
            "validation": {
                "split": "random 10% of the labelled pixels, never trained on",
                "n_pixels": int(idx_va.size),
                "accuracy": float((pred == y_all[idx_va]).mean()) if idx_va.size else None,
                "confusion": conf.tolist(),
                "confusion_axes": "rows: true class, columns: predicted class",
            },
            "fit_seconds": time.perf_counter() - start,
        }
        return self

    def _fit_context(self, chosen, ranges, labels, labelled, idx_va, progress) -> np.ndarray:
        """Train the ``"cnn"`` classifier; its predicted class of every labelled pixel.

        ``labelled`` holds the flat indices of each stack's labelled pixels, in the order of
        the concatenated labelled pixels that ``idx_va`` (the held-out 10%) indexes.
        """
        import torch

        from .focal_context import apply_context_net, train_context_net

        dilations = [int(d) for d in self.cnn_dilations]
        feats = [self._feature_map(c, r) for c, r in zip(chosen, ranges, strict=True)]
        held = np.zeros(sum(lab.size for lab in labelled), bool)
        held[idx_va] = True
        targets, off = [], 0
        for t, lab in zip(labels, labelled, strict=True):
            y = np.full(t.size, -1, np.int64)
            train = lab[~held[off : off + lab.size]]
            y[train] = t.ravel()[train].astype(np.int64) - 1
            targets.append(y.reshape(t.shape))
            off += lab.size
        self.clf_ = train_context_net(
            feats,
            targets,
            len(self.class_names_),
            width=int(self.cnn_width),
            dilations=dilations,
            steps=int(self.cnn_steps),
            seed=int(self.random_state),
            progress=progress,
        )
        self.clf_meta_ = {"dilations": dilations}
        augment = bool(self.cnn_augment)
        pred = [
            apply_context_net(self.clf_, dilations, torch.from_numpy(f), augment)
            .argmax(axis=0)
            .ravel()[lab]
            for f, lab in zip(feats, labelled, strict=True)
        ]
        return np.concatenate(pred)

    def _feature_map(self, frames: np.ndarray, stats) -> np.ndarray:
        """PCA features ``(C, Y, X)`` float32 of the model's frames ``(F, Y, X)`` of a stack."""
        flat = frames.reshape(frames.shape[0], -1)
        x = self._normalize_np(flat.T, stats)
        f = x @ self.proj_.T + self.proj_bias_
        return np.ascontiguousarray(f.T.reshape(-1, *frames.shape[1:]), dtype=np.float32)

    # -- normalisation ----------------------------------------------------------------------------
    def _stack_range(
        self, stack: np.ndarray, selected: bool = False
    ) -> tuple[np.ndarray, float, float]:
        """Per-frame scale and saturated range of the model's frames of a stack.

        ``selected``: ``stack`` holds only the model's frames already (smoothed if
        ``xy_sigma``), in order.

        Returns ``(scale, lo, hi)``: ``scale`` (frames,) is 1 / the median of each frame when
        ``frame_normalization`` is on (else ones); ``lo`` and ``hi`` are the values at
        ``saturation`` and ``1 - saturation`` after that scaling. Estimated on a regular spatial
        subsample of about half a million values (enough for percentiles, and cheap next to
        classifying the stack).
        """
        step = len(self.frames_) * stack.shape[1] * stack.shape[2] / _RANGE_SAMPLES
        step = max(1, int(np.ceil(np.sqrt(step))))
        sub = stack[:, ::step, ::step]
        sub = (sub if selected else self._frames_of(sub)).astype(np.float32)
        scale = np.ones(sub.shape[0], np.float32)
        if self.frame_normalization:
            med = np.median(sub.reshape(sub.shape[0], -1), axis=1)
            scale = np.where(med > 0, 1.0 / np.maximum(med, 1e-30), 1.0).astype(np.float32)
            sub = sub * scale[:, None, None]
        lo, hi = np.percentile(sub, [100 * self.saturation, 100 * (1 - self.saturation)])
        if not hi > lo:
            hi = lo + 1.0  # a flat stack: any scale will do
        return scale, float(lo), float(hi)

    def _normalize_np(self, x: np.ndarray, stats, stretch_only: bool = False) -> np.ndarray:
        """Normalise profiles ``(n, frames)`` of a stack with statistics ``stats`` (torch code)."""
        import torch

        t = torch.from_numpy(np.ascontiguousarray(x.T, dtype=np.float32))
        return _normalize_t(t, stats, None if stretch_only else self._lut_t()).numpy().T

    def _normalization(self) -> str:
        """``normalization`` with ``"auto"`` resolved."""
        if self.normalization != "auto":
            return self.normalization
        return "stretch" if self.classifier == "cnn" else "equalize"

    def _lut_t(self):
        import torch

        if self._normalization() != "equalize":
            return None
        return torch.from_numpy(np.ascontiguousarray(self.lut_, dtype=np.float32))

    # -- frames of a new stack ------------------------------------------------------------------
    def _smooth(self, frames: np.ndarray) -> np.ndarray:
        """The model's frames ``(F, Y, X)`` smoothed in Y and X by ``xy_sigma`` (float32)."""
        sigma = float(getattr(self, "xy_sigma", 0.0) or 0.0)
        if sigma <= 0:
            return frames
        from scipy import ndimage as ndi

        out = np.empty(frames.shape, np.float32)
        for i, frame in enumerate(frames):  # frame by frame: no float64 copy of the stack
            ndi.gaussian_filter(frame.astype(np.float32, copy=False), sigma, output=out[i])
        return out

    def _frames_of(self, stack: np.ndarray, path=None) -> np.ndarray:
        """The model's frames of ``stack`` (a stack longer than the training ones is centred)."""
        need = self.n_frames_in_
        z = stack.shape[0]
        if z < need:
            raise CellscapeError(
                path,
                f"stack has {z} frame(s) but this model needs {need} (it was trained on "
                f"{need}-frame stacks and uses frames {_short_list(self.frames_)})",
            )
        offset = (z - need) // 2
        return stack[self.frames_ + offset]

    def _check_stack(self, image: np.ndarray, meta: ImageMeta | None) -> np.ndarray:
        if not hasattr(self, "proj_"):
            raise CellscapeError(None, "the focal-signature model is not trained (call fit)")
        path = meta.source if meta is not None else None
        image = np.asarray(image)
        if meta is not None and meta.axes not in ("ZYX", "YX"):
            raise CellscapeError(path, f"expected a z-stack with axes ZYX, got axes '{meta.axes}'")
        if image.ndim != 3:
            raise CellscapeError(
                path,
                f"is not a z-stack (shape {image.shape}); this model needs a (Z, Y, X) stack "
                f"of at least {self.n_frames_in_} frames",
            )
        if image.dtype.kind not in "uif":
            raise CellscapeError(path, f"unsupported pixel type {image.dtype}")
        return image

    # -- prediction ----------------------------------------------------------------------
    def _proba_profiles(self, x: np.ndarray) -> np.ndarray:
        """Class probabilities ``(K, n)`` of already-normalised profiles ``(n, frames)``.

        Per-pixel classifiers only: the ``"cnn"`` one needs the whole feature map.
        """
        import torch

        xt = torch.from_numpy(np.ascontiguousarray(x.T, dtype=np.float32))
        return self._classify_t(xt).numpy()

    def _classify_t(self, xn):
        """Normalised profiles (frames, n) torch float32 -> probabilities (K, n)."""
        import torch

        a, c = _first_layer(self)
        return _HEADS[self.classifier](self, torch.addmm(c, a, xn))

    def predict_proba(self, image: np.ndarray, meta: ImageMeta | None = None) -> np.ndarray:
        """Per-class probability maps of a z-stack.

        Parameters
        ----------
        image : ndarray, shape (Z, Y, X)
            A bright-field z-stack with at least as many frames as the training stacks (longer
            stacks are centred), any real dtype.
        meta : ImageMeta, optional
            Axes and source file (used in error messages).

        Returns
        -------
        ndarray of float32, shape (K, Y, X)
            Probabilities of ``class_names`` (softmax of the class scores; the forest's vote
            fractions), summing to 1 per pixel.
        """
        import torch

        stack = self._check_stack(image, meta)
        z, ny, nx = stack.shape
        offset = (z - self.n_frames_in_) // 2
        path = meta.source if meta is not None else None
        self._frames_of(stack[:, :1, :1], path)  # enough frames?
        used = self.frames_ + offset  # indices of the model's frames in ``stack``
        if float(self.xy_sigma or 0) > 0:
            # smooth only the frames the model uses; from here on they are the stack
            stack = self._smooth(stack[used])
            z, used = stack.shape[0], np.arange(stack.shape[0])
            rng = self._stack_range(stack, selected=True)
        else:
            rng = self._stack_range(stack)
        if stack.dtype != np.float32:
            stack = stack.astype(np.float32)
        flat = torch.from_numpy(np.ascontiguousarray(stack).reshape(z, ny * nx))
        frames = torch.from_numpy(used)
        contiguous = bool(np.all(np.diff(used) == 1))
        lut = self._lut_t()
        n = ny * nx
        context = self.classifier == "cnn"
        # the "cnn" classifier reads the PCA features of the whole field, not one pixel's
        n_out = self.proj_.shape[0] if context else len(self.class_names)
        out = torch.empty((n_out, n), dtype=torch.float32)
        chunk = self._chunk_size()
        nf = len(self.frames_)
        buf = torch.empty((nf, chunk), dtype=torch.float32)
        f0 = int(used[0])
        head = _HEADS[self.classifier]
        a, c = _first_layer(self)
        if lut is None:
            # Without the equalisation table the normalisation is a clamp plus an affine map:
            # clamp in the stack's own units (one pass that also makes the chunk contiguous)
            # and fold the affine part into the first layer.
            scale, lo, hi = rng
            k = np.float32(1.0 / (hi - lo)) * scale.astype(np.float32)
            lo_t = torch.from_numpy((lo / scale).astype(np.float32))[:, None]
            hi_t = torch.from_numpy((hi / scale).astype(np.float32))[:, None]
            c = c - float(lo / (hi - lo)) * a.sum(1, keepdim=True)
            a = a * torch.from_numpy(k)[None, :]
        with torch.inference_mode():
            for j0 in range(0, n, chunk):
                j1 = min(n, j0 + chunk)
                b = buf if j1 - j0 == chunk else torch.empty((nf, j1 - j0), dtype=torch.float32)
                if lut is None and contiguous:
                    torch.clamp(flat[f0 : f0 + nf, j0:j1], lo_t, hi_t, out=b)
                    xn = b
                else:
                    if contiguous:
                        b.copy_(flat[f0 : f0 + nf, j0:j1])
                    else:
                        torch.index_select(flat[:, j0:j1], 0, frames, out=b)
                    if lut is None:
                        xn = torch.clamp_(b, lo_t, hi_t)
                    else:
                        xn = _normalize_t(b, rng, lut, inplace=True)
                out[:, j0:j1] = head(self, torch.addmm(c, a, xn))
        if context:
            from .focal_context import apply_context_net

            return apply_context_net(
                self.clf_,
                self.clf_meta_["dilations"],
                out.view(n_out, ny, nx),
                augment=bool(self.cnn_augment),
            )
        return out.numpy().reshape(len(self.class_names), ny, nx)

    def _chunk_size(self) -> int:
        if self.classifier == "svm":
            n_sv = self.clf_["support_vectors"].shape[0]
            return int(np.clip(4_000_000 // max(n_sv, 1), 256, 32768))
        if self.classifier == "rf":
            return 8192
        return 32768

    def predict(self, image: np.ndarray, meta: ImageMeta | None = None) -> np.ndarray:
        """Winning class per pixel, ``(Y, X)`` uint8 (no topological rules)."""
        return self.predict_proba(image, meta).argmax(axis=0).astype(np.uint8)

    def analyze(self, image: np.ndarray, meta: ImageMeta | None = None) -> FocalResult:
        """Probabilities, corrected class map, confidence, cells and cell types of a stack."""
        from ..post.topology import apply_topology_rules, instance_types, instances_from_classes

        proba = self.predict_proba(image, meta)
        raw = proba.argmax(axis=0).astype(np.uint8)
        confidence = proba.max(axis=0)
        inner = self.interior_classes
        if not inner:
            raise CellscapeError(
                None, "the model has no interior class (all classes are background/contour/...)"
            )
        contour, halo = self._role("contour"), self._role("halo")
        class_map = apply_topology_rules(
            raw, inner, contour, halo, self._role("background")
        ).astype(np.uint8)
        interior_prob = proba[inner].sum(axis=0)
        labels = instances_from_classes(
            class_map, interior_prob, inner, contour, min_size=self.min_size
        )
        types = instance_types(labels, proba[inner])
        return FocalResult(
            probabilities=proba,
            class_map=class_map,
            confidence=confidence,
            labels=labels,
            cell_types=types,
            class_names=self.class_names,
            type_names=tuple(self.class_names[i] for i in inner),
        )

    def segment(self, image: np.ndarray, meta: ImageMeta | None = None) -> np.ndarray:
        """Cell instances of a z-stack, ``(Y, X)`` int32 (0 = background, 1..N cells)."""
        return self.analyze(image, meta).labels

    # -- persistence ---------------------------------------------------------------------
    def _state(self) -> dict[str, Any]:
        if not hasattr(self, "proj_"):
            return {}
        return {
            "class_names_": list(self.class_names_),
            "n_frames_in_": self.n_frames_in_,
            "frames_": self.frames_.tolist(),
            "ref_range_": list(self.ref_range_),
            "explained_variance_ratio_": self.explained_variance_ratio_,
            "clf_meta_": self.clf_meta_,
            "weights": WEIGHTS_NAME,
        }

    def _set_state(self, state: dict[str, Any]) -> None:
        if not state:
            return
        self.class_names_ = tuple(state["class_names_"])
        self.n_frames_in_ = int(state["n_frames_in_"])
        self.frames_ = np.asarray(state["frames_"], dtype=np.int64)
        self.ref_range_ = np.asarray(state["ref_range_"], dtype=np.float64)
        self.explained_variance_ratio_ = float(state["explained_variance_ratio_"])
        self.clf_meta_ = dict(state["clf_meta_"])

    def save(self, path: str | os.PathLike) -> Path:
        """Save to a folder: ``config.json`` + ``weights.safetensors`` (plain arrays only)."""
        from safetensors.numpy import save_file

        if not hasattr(self, "proj_"):
            raise CellscapeError(path, "cannot save an untrained focal-signature model")
        folder = Path(path)
        tensors = {
            "lut": self.lut_,
            "proj": self.proj_,
            "proj_bias": self.proj_bias_,
            **{f"clf.{k}": v for k, v in self.clf_.items()},
        }
        tensors = {k: np.ascontiguousarray(v) for k, v in tensors.items()}
        with atomic_path(folder / WEIGHTS_NAME) as tmp:
            save_file(tensors, str(tmp))
        super().save(folder)
        return folder

    @classmethod
    def load(cls, path: str | os.PathLike) -> FocalSignature:
        """Load a model written by :meth:`save` (arrays from safetensors; nothing unpickled)."""
        from safetensors.numpy import load_file

        model = super().load(path)
        folder = Path(path)
        folder = folder if folder.is_dir() else folder.parent
        if not model._state_loaded():
            raise CellscapeError(folder, "model folder holds an untrained focal model")
        weights = folder / WEIGHTS_NAME
        if not weights.exists():
            raise CellscapeError(weights, "file not found (the model's weights)")
        try:
            arrays = load_file(str(weights))
        except Exception as exc:  # safetensors raises its own error types on bad files
            raise CellscapeError(weights, f"cannot read weights ({exc})") from None
        model.lut_ = arrays["lut"]
        model.proj_ = arrays["proj"]
        model.proj_bias_ = arrays["proj_bias"]
        model.clf_ = {k[4:]: v for k, v in arrays.items() if k.startswith("clf.")}
        return model  # type: ignore[return-value]

    def _state_loaded(self) -> bool:
        return hasattr(self, "frames_")

    def config(self) -> dict[str, Any]:
        cfg = super().config()
        cfg["params"]["frames"] = None if self.frames is None else [int(f) for f in self.frames]
        cfg["params"]["classes"] = None if self.classes is None else list(self.classes)
        return cfg


# ------------------------------------------------------------------------------------------
# array code shared by fit and predict
# ------------------------------------------------------------------------------------------
def _normalize_t(x, stats, lut=None, inplace: bool = False):
    """Normalise profiles ``x`` (frames, n) of a stack with statistics ``stats``.

    Each frame is divided by its median (illumination drift), the stack's saturated range
    ``lo..hi`` is mapped to 0..1, and the equalisation table ``lut`` (None: none) applied.
    """
    import torch

    scale, lo, hi = stats
    a = 1.0 / (hi - lo)
    y = x if inplace else x.clone()
    factor = torch.as_tensor(np.asarray(scale, np.float32) * np.float32(a))[:, None]
    y.mul_(factor).add_(-lo * a).clamp_(0.0, 1.0)
    if lut is None:
        return y
    n = lut.shape[0]
    idx = y.mul_(n).clamp_(0, n - 1).to(torch.int32)
    return lut[idx]


def _sample_profiles(stack: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Profiles ``(n, frames)`` of ``n`` random pixels of a ``(frames, Y, X)`` stack."""
    flat = stack.reshape(stack.shape[0], -1)
    return flat[:, rng.integers(0, flat.shape[1], size=min(n, flat.shape[1]))].T


def _balanced_subsample(y, idx, cap: int, rng: np.random.Generator) -> np.ndarray:
    """At most ``cap`` indices, as many per class as possible (small classes kept whole)."""
    if idx.size <= cap:
        return idx
    classes = np.unique(y)
    order = rng.permutation(idx.size)
    y, idx = y[order], idx[order]
    per = [np.flatnonzero(y == c) for c in classes]
    quota = cap // len(classes)
    # hand the quota of small classes on to the large ones
    sizes = sorted(len(p) for p in per)
    left, remaining = cap, len(per)
    for s in sizes:
        q = left // remaining
        if s >= q:
            quota = q
            break
        left -= s
        remaining -= 1
    return np.sort(np.concatenate([idx[p[:quota]] for p in per]))


def _short_list(idx: np.ndarray) -> str:
    idx = [int(i) for i in idx]
    if len(idx) > 1 and idx == list(range(idx[0], idx[-1] + 1)):
        return f"{idx[0]}..{idx[-1]}"
    return ",".join(map(str, idx[:8])) + (",..." if len(idx) > 8 else "")


def _fit_classifier(kind: str, x: np.ndarray, y: np.ndarray, k: int, model: FocalSignature):
    """Fit with scikit-learn and keep the fitted parameters as arrays (and small metadata)."""
    seed = model.random_state
    if kind == "linear":
        from sklearn.linear_model import LogisticRegression

        clf = LogisticRegression(C=10.0, max_iter=500).fit(x, y)
        w, b = _full_linear(clf.coef_, clf.intercept_, clf.classes_, k)
        return {"w": w.astype(np.float32), "b": b.astype(np.float32)}, {}, None
    if kind == "mlp":
        from sklearn.neural_network import MLPClassifier

        clf = MLPClassifier(
            hidden_layer_sizes=(model.hidden,),
            alpha=1e-4,
            max_iter=300,
            early_stopping=True,
            random_state=seed,
        ).fit(x, y)
        w2, b2 = _full_linear(clf.coefs_[1].T, clf.intercepts_[1], clf.classes_, k)
        arrays = {
            "w1": clf.coefs_[0].T.astype(np.float32),
            "b1": clf.intercepts_[0].astype(np.float32),
            "w2": w2.astype(np.float32),
            "b2": b2.astype(np.float32),
        }
        return arrays, {}, None
    if kind == "rf":
        from sklearn.ensemble import RandomForestClassifier

        clf = RandomForestClassifier(
            n_estimators=model.n_estimators,
            max_depth=model.max_depth,
            min_samples_leaf=2,
            n_jobs=2,
            random_state=seed,
        ).fit(x, y)
        depth = max(est.get_depth() for est in clf.estimators_)
        return _forest_arrays(clf, k), {"max_depth": int(depth)}, None
    # RBF SVM, one-vs-rest (one binary SVM per class), winner takes all
    from sklearn.model_selection import GridSearchCV
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.svm import SVC

    gamma0 = 1.0 / (x.shape[1] * max(float(x.var()), 1e-12))  # sklearn's "scale"
    grid = {
        "estimator__C": [1.0, 10.0, 100.0],
        "estimator__gamma": [gamma0 / 4, gamma0, gamma0 * 4],
    }
    rng = np.random.default_rng(seed)
    sub = rng.permutation(y.size)[: min(y.size, 1500)]
    search = GridSearchCV(OneVsRestClassifier(SVC(kernel="rbf")), grid, cv=3, n_jobs=1)
    search.fit(x[sub], y[sub])
    c, gamma = search.best_params_["estimator__C"], search.best_params_["estimator__gamma"]
    ovr = OneVsRestClassifier(SVC(kernel="rbf", C=c, gamma=gamma)).fit(x, y)
    svs, coefs, intercepts = [], [], np.zeros(k)
    for cls, est in zip(ovr.classes_, ovr.estimators_, strict=True):
        svs.append(est.support_vectors_)
        dual = np.zeros((k, est.support_vectors_.shape[0]))
        # sklearn's binary SVC scores the *second* class (here: "this class") positively
        dual[int(cls)] = est.dual_coef_[0]
        coefs.append(dual)
        intercepts[int(cls)] = est.intercept_[0]
    missing = np.setdiff1d(np.arange(k), ovr.classes_)
    intercepts[missing] = -1e3
    arrays = {
        "support_vectors": np.concatenate(svs).astype(np.float32),
        "dual_coef": np.concatenate(coefs, axis=1).astype(np.float32),
        "intercept": intercepts.astype(np.float32),
    }
    meta = {"gamma": float(gamma), "C": float(c)}
    info = {
        "C": float(c),
        "gamma": float(gamma),
        "cv_accuracy": float(search.best_score_),
        "n_support_vectors": int(arrays["support_vectors"].shape[0]),
    }
    return arrays, meta, info


def _full_linear(w, b, classes, k: int):
    """Expand a (possibly binary, possibly class-missing) sklearn linear layer to K outputs."""
    w = np.atleast_2d(w)
    b = np.atleast_1d(b)
    if w.shape[0] == 1 and len(classes) == 2:  # binary: one logit for the second class
        w = np.concatenate([np.zeros_like(w), w])
        b = np.concatenate([[0.0], b])
    full_w = np.zeros((k, w.shape[1]))
    full_b = np.full(k, -1e3)
    full_w[np.asarray(classes, dtype=np.int64)] = w
    full_b[np.asarray(classes, dtype=np.int64)] = b
    return full_w, full_b


def _forest_arrays(forest, k: int) -> dict[str, np.ndarray]:
    """All trees of a fitted forest as concatenated node arrays (child indices made global)."""
    lefts, rights, feats, thrs, vals, roots = [], [], [], [], [], []
    offset = 0
    for est in forest.estimators_:
        t = est.tree_
        n = t.node_count
        leaf = t.children_left < 0
        lefts.append(np.where(leaf, np.arange(n), t.children_left) + offset)
        rights.append(np.where(leaf, np.arange(n), t.children_right) + offset)
        feats.append(np.where(leaf, 0, t.feature))
        thrs.append(np.where(leaf, np.inf, t.threshold))
        v = np.zeros((n, k))
        v[:, forest.classes_.astype(np.int64)] = t.value[:, 0, :]
        vals.append(v / np.maximum(v.sum(axis=1, keepdims=True), 1e-12))
        roots.append(offset)
        offset += n
    return {
        "left": np.concatenate(lefts).astype(np.int32),
        "right": np.concatenate(rights).astype(np.int32),
        "feature": np.concatenate(feats).astype(np.int32),
        "threshold": np.concatenate(thrs).astype(np.float32),
        "value": np.concatenate(vals).astype(np.float32),
        "roots": np.asarray(roots, dtype=np.int32),
    }


def _t(model: FocalSignature, name: str):
    """A classifier array as a torch tensor (cached on the model)."""
    import torch

    cache = model.__dict__.setdefault("_torch_cache", {})
    key = (name, id(model.clf_[name]))
    if key not in cache:
        cache[key] = torch.from_numpy(np.ascontiguousarray(model.clf_[name]))
    return cache[key]


def _folded(model: FocalSignature, w_name: str, b_name: str):
    """A first layer ``w @ feature + b`` folded with the PCA projection: one (out, frames) map."""
    import torch

    cache = model.__dict__.setdefault("_torch_cache", {})
    key = ("folded", w_name, id(model.clf_[w_name]), id(model.proj_))
    if key not in cache:
        w = model.clf_[w_name].astype(np.float64)
        wf = w @ model.proj_.astype(np.float64)
        bf = w @ model.proj_bias_.astype(np.float64) + model.clf_[b_name]
        cache[key] = (
            torch.from_numpy(wf.astype(np.float32)),
            torch.from_numpy(bf.astype(np.float32)[:, None]),
        )
    return cache[key]


def _first_layer(model: FocalSignature):
    """The classifier's first affine map of normalised profiles, ``(A, c)`` with ``A @ y + c``.

    The linear model and the network's hidden layer are folded with the PCA projection (one
    small matrix from frames to outputs); the SVM and the forest start from the PCA features.
    """
    if model.classifier == "linear":
        return _folded(model, "w", "b")
    if model.classifier == "mlp":
        return _folded(model, "w1", "b1")
    return _projection(model)


def _projection(model: FocalSignature):
    import torch

    cache = model.__dict__.setdefault("_torch_cache", {})
    key = ("proj", id(model.proj_))
    if key not in cache:
        cache[key] = (
            torch.from_numpy(np.ascontiguousarray(model.proj_)),
            torch.from_numpy(np.ascontiguousarray(model.proj_bias_)[:, None]),
        )
    return cache[key]


def _head_linear(model, h):
    import torch

    return torch.softmax(h, dim=0)


def _head_mlp(model, h):
    import torch

    h = h.clamp_(min=0.0)
    return torch.softmax(torch.addmm(_t(model, "b2")[:, None], _t(model, "w2"), h), dim=0)


def _head_svm(model, f):
    import torch

    sv = _t(model, "support_vectors")  # (S, C); f: (C, n) PCA features
    gamma = float(model.clf_meta_["gamma"])
    d2 = (sv * sv).sum(1)[:, None] + (f * f).sum(0)[None, :] - 2.0 * (sv @ f)
    kern = torch.exp_(d2.clamp_(min=0.0).mul_(-gamma))
    scores = torch.addmm(_t(model, "intercept")[:, None], _t(model, "dual_coef"), kern)
    return torch.softmax(scores, dim=0)


def _head_rf(model, f):
    import torch

    f = f.T.contiguous()  # (n, C) PCA features
    n = f.shape[0]
    left, right = _t(model, "left").long(), _t(model, "right").long()
    feature, thr = _t(model, "feature").long(), _t(model, "threshold")
    node = _t(model, "roots").long()[None, :].expand(n, -1).contiguous()  # (n, trees)
    for _ in range(int(model.clf_meta_["max_depth"]) + 1):
        go_left = torch.gather(f, 1, feature[node]) <= thr[node]
        node = torch.where(go_left, left[node], right[node])
    return _t(model, "value")[node].mean(dim=1).T.contiguous()


def _classify_rf(model, xn):
    """Forest probabilities (K, n) of normalised profiles (used by the tests)."""
    import torch

    a, c = _projection(model)
    return _head_rf(model, torch.addmm(c, a, xn))


def _classify_svm(model, xn):
    """SVM probabilities (K, n) of normalised profiles (used by the tests)."""
    import torch

    a, c = _projection(model)
    return _head_svm(model, torch.addmm(c, a, xn))


def _head_features(model, f):
    """The PCA features themselves: the ``"cnn"`` classifier runs on the whole feature map."""
    return f


_HEADS = {
    "linear": _head_linear,
    "mlp": _head_mlp,
    "svm": _head_svm,
    "rf": _head_rf,
    "cnn": _head_features,
}
