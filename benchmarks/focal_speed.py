"""Speed of focal-signature classification of a full 1392 x 1040 x 100 float32 stack.

Every classifier of ``FocalSignature`` (and a plain scikit-learn pipeline, PCA to 20 + a
100-tree random forest, as the baseline) is trained on the same painted pixels of one simulated
E. coli stack; accuracy is measured on all pixels of a second, never-trained-on stack (512 x
512); timings are the classification of that validation stack tiled to 1392 x 1040 x 100
(580 MB of float32), median of repeats (the ``cnn`` classifier: one run with and one without
its 8-fold rotation / flip averaging), in one run. Run: ``python benchmarks/focal_speed.py``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cellscape.methods.focal import FocalSignature  # noqa: E402
from focal_common import NAMES, painted, stack  # noqa: E402

FULL = (100, 1040, 1392)


def timed(fn, repeats):
    times, out = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return float(np.median(times)), out


def main() -> None:
    import torch

    torch.set_num_threads(2)
    train = stack("ecoli", 300, (256, 256))
    val = stack("ecoli", 301, (512, 512))
    labels = painted(train.classes, 0.15, seed=0)
    reps = (FULL[1] + 511) // 512, (FULL[2] + 511) // 512
    big = np.ascontiguousarray(np.tile(val.stack, (1, *reps))[:, : FULL[1], : FULL[2]])
    print(f"full stack {big.shape} {big.dtype}, {big.nbytes / 1e6:.0f} MB; torch threads 2")

    configs = [
        ("linear", "stretch"),
        ("linear", "equalize"),
        ("mlp", "stretch"),
        ("mlp", "equalize"),
        ("rf", "equalize"),
        ("svm", "equalize"),
        ("cnn", "stretch"),
    ]
    rows = []
    for clf, norm in configs:
        model = FocalSignature(classes=NAMES, classifier=clf, normalization=norm, n_components=10)
        t0 = time.perf_counter()
        model.fit(train.stack, labels)
        fit_s = time.perf_counter() - t0
        acc = float((model.predict(val.stack) == val.classes).mean())
        if clf in ("svm", "rf"):  # minutes on the full stack: time 512 x 512, scale by area
            t, _ = timed(lambda m=model: m.predict_proba(val.stack), 1)
            pred_s, note = t * big[0].size / val.stack[0].size, "extrapolated from 512x512"
        elif clf == "cnn":  # one run each, with and without the 8-fold averaging
            model.cnn_augment = False
            acc1 = float((model.predict(val.stack) == val.classes).mean())
            t1, _ = timed(lambda m=model: m.predict_proba(big), 1)
            rows.append((f"focal {clf} ({norm}), one pass", fit_s, t1, acc1, model.info_, ""))
            print(rows[-1][:4], flush=True)
            model.cnn_augment = True
            pred_s, _ = timed(lambda m=model: m.predict_proba(big), 1)
            note = "8 rotations / flips averaged"
        else:
            pred_s, _ = timed(lambda m=model: m.predict_proba(big), 5)
            note = ""
        rows.append((f"focal {clf} ({norm})", fit_s, pred_s, acc, model.info_, note))
        print(rows[-1][:4], note, flush=True)

    # the plain scikit-learn pipeline, on the same pixels
    from sklearn.decomposition import PCA
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.pipeline import make_pipeline

    flat = train.stack.reshape(train.stack.shape[0], -1).T
    lab = labels.ravel()
    idx = np.flatnonzero(lab > 0)
    rng = np.random.default_rng(0)
    idx = idx[rng.permutation(idx.size)[:30000]]
    pipe = make_pipeline(
        PCA(n_components=20), RandomForestClassifier(n_estimators=100, n_jobs=2, random_state=0)
    )
    t0 = time.perf_counter()
    pipe.fit(flat[idx], lab[idx] - 1)
    fit_s = time.perf_counter() - t0

    def sk_predict(s):
        return pipe.predict_proba(s.reshape(s.shape[0], -1).T).T.reshape(5, *s.shape[1:])

    acc = float((sk_predict(val.stack).argmax(0) == val.classes).mean())
    pred_s, _ = timed(lambda: sk_predict(big), 3)
    rows.append(("sklearn PCA(20) + RF(100)", fit_s, pred_s, acc, {}, "baseline"))

    base = rows[-1][2]
    print("\n| classifier | fit (s) | classify 1392x1040x100 (s) | speed-up vs sklearn | ", end="")
    print("pixel accuracy |")
    print("|---|---|---|---|---|")
    for name, fit_s, pred_s, acc, _, note in rows:
        extra = f" ({note})" if note else ""
        print(f"| {name} | {fit_s:.1f} | {pred_s:.2f}{extra} | {base / pred_s:.1f}x | {acc:.4f} |")


if __name__ == "__main__":
    main()
