"""Pixel ROC curves, AUC and accuracy at a 0.5 cut-off for probability maps.

Pure numpy, no plotting library needed except in :func:`plot_roc` (matplotlib, Agg backend).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class RocCurve:
    """A receiver operating characteristic of one binary pixel classification.

    Attributes
    ----------
    fpr, tpr : ndarray of float64
        False- and true-positive rates, from (0, 0) to (1, 1), at decreasing thresholds.
    thresholds : ndarray of float64
        Score cut-offs of the points (a pixel is positive when its score is >= the cut-off);
        the first point has cut-off ``inf``.
    auc : float
        Area under the curve (trapezoidal); ``nan`` when one class is absent.
    accuracy : float
        Fraction of pixels classified correctly at the cut-off 0.5.
    n_positive, n_negative : int
    """

    fpr: np.ndarray
    tpr: np.ndarray
    thresholds: np.ndarray
    auc: float
    accuracy: float
    n_positive: int
    n_negative: int

    def summary(self) -> dict:
        """AUC, accuracy at 0.5 and class counts (JSON-friendly)."""
        return {
            "auc": float(self.auc),
            "accuracy": float(self.accuracy),
            "n_positive": int(self.n_positive),
            "n_negative": int(self.n_negative),
        }


def pixel_roc(truth: np.ndarray, scores: np.ndarray, max_points: int = 512) -> RocCurve:
    """ROC of per-pixel scores against a binary truth.

    Parameters
    ----------
    truth : ndarray of bool, any shape
        True for positive pixels.
    scores : ndarray of float, same shape
        Predicted probability (higher = more likely positive).
    max_points : int
        The returned curve is thinned to about this many points (the AUC uses all of them).

    Returns
    -------
    RocCurve
    """
    y = np.asarray(truth, dtype=bool).ravel()
    s = np.asarray(scores, dtype=np.float64).ravel()
    if y.shape != s.shape:
        raise ValueError(f"truth {np.shape(truth)} and scores {np.shape(scores)} differ in shape")
    n_pos = int(y.sum())
    n_neg = int(y.size - n_pos)
    accuracy = float(np.mean((s >= 0.5) == y)) if y.size else float("nan")
    order = np.argsort(-s, kind="mergesort")
    s, y = s[order], y[order]
    # one point per distinct score: the last index of each run of equal scores
    last = np.r_[np.flatnonzero(np.diff(s)), s.size - 1] if s.size else np.array([], int)
    tp = np.cumsum(y)[last].astype(np.float64)
    fp = (last + 1 - tp).astype(np.float64)
    tpr = np.r_[0.0, tp / n_pos] if n_pos else np.r_[0.0, np.full(tp.size, np.nan)]
    fpr = np.r_[0.0, fp / n_neg] if n_neg else np.r_[0.0, np.full(fp.size, np.nan)]
    thresholds = np.r_[np.inf, s[last]]
    auc = float(np.trapezoid(tpr, fpr)) if n_pos and n_neg else float("nan")
    if tpr.size > max_points:
        keep = np.unique(np.r_[np.linspace(0, tpr.size - 1, max_points).astype(int), 0])
        fpr, tpr, thresholds = fpr[keep], tpr[keep], thresholds[keep]
    return RocCurve(fpr, tpr, thresholds, auc, accuracy, n_pos, n_neg)


def plot_roc(curves: dict[str, RocCurve], path: str | os.PathLike, title: str = "") -> Path:
    """Save ROC curves (one line per name, AUC in the legend) as a PNG, atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .io import atomic_path

    fig, ax = plt.subplots(figsize=(4.2, 4.2), dpi=120)
    for name, c in curves.items():
        ax.plot(c.fpr, c.tpr, label=f"{name} (AUC {c.auc:.3f}, acc@0.5 {c.accuracy:.3f})")
    ax.plot([0, 1], [0, 1], color="0.7", lw=0.8, ls="--")
    ax.set_xlabel("false-positive rate")
    ax.set_ylabel("true-positive rate")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    if title:
        ax.set_title(title, fontsize=9)
    ax.legend(loc="lower right", fontsize=7)
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return path
