"""Instance accuracy (AP at IoU 0.5) of the focal signature vs an ilastik-style baseline.

Simulated bright-field stacks (256 x 256, 100 frames, dz = 0.1 µm) of E. coli (with walls),
yeast, HeLa-like cells and a bacteria + yeast mixture (classes: each cell type's interior,
contour, halo, background, wall where present). For each kind: train on one stack (seed 10,
15% of pixels painted at random), evaluate on two other stacks (seeds 20, 21) never trained on.

* focal mlp: ``FocalSignature`` (neural network on the z-profiles, all 100 frames).
* focal cnn: ``FocalSignature(classifier="cnn")`` (the same z-profiles read over each pixel's
  neighbourhood by a small convolutional network).
* ilastik-style: 2-D filter features of the in-focus frame (Gaussian, gradient magnitude, LoG,
  difference of Gaussians, Hessian and structure-tensor eigenvalues at 6 scales) + a 100-tree
  random forest, trained on the same painted pixels.

Both go through the same topological rules + watershed, so only the pixel features differ.
Writes docs/images/focal_overlay.png. Run: ``python benchmarks/focal_instances.py``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cellscape import metrics  # noqa: E402
from cellscape.methods.focal import FocalSignature  # noqa: E402
from cellscape.post.topology import (  # noqa: E402
    apply_topology_rules,
    instance_types,
    instances_from_classes,
)
from focal_common import painted, stack  # noqa: E402

KINDS = ("ecoli", "yeast", "hela", "mixed")
SIGMAS = (0.7, 1.0, 1.6, 3.5, 5.0, 10.0)


def compact_classes(sim):
    """Type classes renumbered to the values present (names in the same order)."""
    present = np.unique(sim.type_classes)
    lut = np.zeros(int(present.max()) + 1, np.int64)
    lut[present] = np.arange(present.size)
    names = tuple(sim.type_class_names[i] for i in present)
    return lut, names


def filter_features(frame: np.ndarray) -> np.ndarray:
    """ilastik's standard 2-D pixel features of one frame: (n_features, Y, X) float32."""
    from skimage.feature import (
        hessian_matrix,
        hessian_matrix_eigvals,
        structure_tensor,
        structure_tensor_eigenvalues,
    )

    f = (frame - frame.mean()) / (frame.std() + 1e-9)
    feats = []
    for s in SIGMAS:
        g = ndi.gaussian_filter(f, s)
        feats += [g, ndi.gaussian_gradient_magnitude(f, s), ndi.gaussian_laplace(f, s)]
        feats.append(g - ndi.gaussian_filter(f, 1.6 * s))
        feats += list(
            hessian_matrix_eigvals(hessian_matrix(f, s, order="rc", use_gaussian_derivatives=True))
        )
        feats += list(structure_tensor_eigenvalues(structure_tensor(f, s, order="rc")))
    return np.stack(feats).astype(np.float32)


class IlastikStyle:
    """Filter features of the in-focus frame + random forest, same post-processing as focal."""

    def __init__(self, names):
        self.names = names

    def fit(self, frame, labels):
        from sklearn.ensemble import RandomForestClassifier

        x = filter_features(frame).reshape(len(SIGMAS) * 8, -1).T
        y = labels.ravel()
        idx = np.flatnonzero(y > 0)
        idx = np.random.default_rng(0).permutation(idx)[:30000]
        self.rf = RandomForestClassifier(n_estimators=100, n_jobs=2, random_state=0)
        self.rf.fit(x[idx], y[idx] - 1)
        return self

    def predict_proba(self, frame):
        x = filter_features(frame).reshape(len(SIGMAS) * 8, -1).T
        p = np.zeros((len(self.names), x.shape[0]), np.float32)
        p[self.rf.classes_] = self.rf.predict_proba(x).T
        return p.reshape(len(self.names), *frame.shape)


def cells_from_proba(proba, names, min_size=20):
    """The same post-processing as FocalSignature.analyze."""
    role = {n: i for i, n in enumerate(names)}
    inner = [i for i, n in enumerate(names) if n not in ("background", "contour", "halo", "wall")]
    cm = apply_topology_rules(
        proba.argmax(0), inner, role.get("contour"), role.get("halo"), role.get("background")
    )
    labels = instances_from_classes(
        cm, proba[inner].sum(0), inner, role.get("contour"), min_size=min_size
    )
    types = instance_types(labels, proba[inner])
    return cm, labels, [names[i] for i in inner], types


def type_accuracy(sim, labels, type_names, types):
    m = metrics.match(sim.labels, labels, 0.5)
    if not len(m.gt_ids):
        return float("nan"), 0
    truth = [sim.cell_type_names[sim.cell_type[g]] for g in m.gt_ids]
    pred = [type_names[types[p]] for p in m.pred_ids]
    return float(np.mean([a == b for a, b in zip(truth, pred, strict=True)])), len(truth)


def main() -> None:
    rows, shown = [], {}
    for kind in KINDS:
        train = stack(kind, 10)
        vals = [stack(kind, s) for s in (20, 21)]
        lut, names = compact_classes(train)
        labels = painted(lut[train.type_classes], 0.15, seed=0)
        focal = FocalSignature(classes=names, classifier="mlp").fit(train.stack, labels)
        focal_cnn = FocalSignature(classes=names, classifier="cnn").fit(train.stack, labels)
        ilastik = IlastikStyle(names).fit(train.stack[train.focus_index], labels)
        for method, predict in (
            ("focal mlp", lambda s, m=focal: m.predict_proba(s.stack)),
            ("focal cnn", lambda s, m=focal_cnn: m.predict_proba(s.stack)),
            ("ilastik-style", lambda s, m=ilastik: m.predict_proba(s.stack[s.focus_index])),
        ):
            aps, accs, tacc, n_typed = [], [], [], 0
            for v in vals:
                vlut, vnames = compact_classes(v)
                proba = predict(v)
                cm, lab, tnames, types = cells_from_proba(proba, names)
                truth = np.asarray(vnames)[vlut[v.type_classes]]
                accs.append(float((np.asarray(names)[proba.argmax(0)] == truth).mean()))
                aps.append(metrics.average_precision(v.labels, lab, 0.5))
                if kind == "mixed":
                    a, n = type_accuracy(v, lab, tnames, types)
                    tacc.append(a * n)
                    n_typed += n
                if v is vals[0]:
                    shown[(kind, method)] = (v, lab)
            type_txt = f"{sum(tacc) / n_typed:.3f} ({n_typed} cells)" if n_typed else "-"
            rows.append((kind, method, np.mean(accs), np.mean(aps), type_txt))
            print(rows[-1], flush=True)
    print("\n| stack | method | pixel accuracy | AP@0.5 | cell-type accuracy (matched cells) |")
    print("|---|---|---|---|---|")
    for kind, method, acc, ap, t in rows:
        print(f"| {kind} | {method} | {acc:.4f} | {ap:.3f} | {t} |")
    overlay(shown)


def overlay(shown) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from skimage.segmentation import find_boundaries

    fig, axes = plt.subplots(3, 4, figsize=(12, 9.2))
    for col, kind in enumerate(KINDS):
        for row, method in enumerate(("focal mlp", "focal cnn", "ilastik-style")):
            v, lab = shown[(kind, method)]
            frame = v.stack[max(v.focus_index - 15, 0)]
            lo, hi = np.percentile(frame, [1, 99])
            rgb = np.repeat(np.clip((frame - lo) / (hi - lo), 0, 1)[..., None], 3, axis=2)
            rgb[find_boundaries(v.labels, mode="inner")] = (0.2, 1.0, 0.2)
            rgb[find_boundaries(lab, mode="inner")] = (1.0, 0.2, 0.8)
            ax = axes[row, col]
            ax.imshow(rgb[:160, :160])
            ax.set_title(f"{kind}: {method}", fontsize=9)
            ax.axis("off")
    fig.suptitle(
        "validation stacks (defocused frame); green: truth, magenta: predicted", fontsize=10
    )
    fig.tight_layout()
    out = Path(__file__).resolve().parents[1] / "docs" / "images" / "focal_overlay.png"
    fig.savefig(out, dpi=42)  # keeps the PNG near 200 KB
    print(f"figure: {out}")


if __name__ == "__main__":
    main()
