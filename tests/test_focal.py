"""Focal-signature segmentation of bright-field z-stacks (synthetic stacks, tiny sizes)."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from cellscape.errors import CellscapeError
from cellscape.methods.focal import (
    FocalSignature,
    _classify_rf,
    _classify_svm,
    _fit_classifier,
    _forest_arrays,
    select_frames,
)
from cellscape.post.topology import apply_topology_rules, instance_types, instances_from_classes
from cellscape.synthetic import brightfield_zstack

NAMES = ("background", "interior", "contour", "halo", "wall")


@pytest.fixture(scope="module")
def ecoli():
    train = brightfield_zstack((72, 72), n_frames=24, dz=0.4, kind="ecoli", seed=1)
    val = brightfield_zstack((72, 72), n_frames=24, dz=0.4, kind="ecoli", seed=2)
    rng = np.random.default_rng(0)
    sparse = np.where(rng.random(train.classes.shape) < 0.3, train.classes.astype(int) + 1, 0)
    return train, val, sparse


@pytest.fixture(scope="module")
def fitted(ecoli):
    train, _, sparse = ecoli
    return FocalSignature(
        classes=NAMES, classifier="mlp", n_components=8, max_train_pixels=3000
    ).fit(train.stack, sparse)


def test_select_frames_even_log_all():
    assert select_frames(10).tolist() == list(range(10))
    even = select_frames(100, 5, "even")
    assert even.tolist() == [0, 25, 50, 74, 99]
    log = select_frames(100, 9, "log", focus=50)
    assert log.size == 9 and len(set(log.tolist())) == 9 and 50 in log
    gaps = np.diff(log)
    # dense near the focus, sparse far from it
    assert gaps.max() > 3 * gaps.min()
    with pytest.raises(ValueError):
        select_frames(10, 3, "random")


def test_fit_predict_classifies_an_unseen_stack(ecoli, fitted):
    _, val, _ = ecoli
    proba = fitted.predict_proba(val.stack)
    assert proba.shape == (5, 72, 72) and proba.dtype == np.float32
    np.testing.assert_allclose(proba.sum(axis=0), 1.0, atol=1e-4)
    acc = (proba.argmax(axis=0) == val.classes).mean()
    assert acc > 0.7  # 5 classes, chance ~0.47 (wall)
    info = fitted.info_["validation"]
    assert 0.7 < info["accuracy"] <= 1.0
    conf = np.asarray(info["confusion"])
    assert conf.shape == (5, 5) and conf.sum() == info["n_pixels"]
    labels = fitted.segment(val.stack)
    assert labels.dtype == np.int32 and labels.shape == (72, 72) and labels.max() >= 3


def test_save_load_roundtrip_all_classifiers(ecoli, tmp_path):
    train, val, sparse = ecoli
    for kind in ("linear", "mlp", "rf", "svm"):
        model = FocalSignature(
            classes=NAMES,
            classifier=kind,
            n_components=6,
            n_frames=12,
            spacing="log",
            max_train_pixels=2000,
            svm_max_pixels=400,
            n_estimators=10,
        )
        model.fit(train.stack, sparse)
        folder = model.save(tmp_path / kind)
        assert sorted(p.name for p in folder.iterdir()) == ["config.json", "weights.safetensors"]
        again = FocalSignature.load(folder)
        assert again.frames_.tolist() == model.frames_.tolist() and len(again.frames_) == 12
        np.testing.assert_allclose(
            again.predict_proba(val.stack), model.predict_proba(val.stack), atol=1e-5
        )
    from cellscape.models import load_model

    assert isinstance(load_model(tmp_path / "rf"), FocalSignature)


def test_array_forest_and_svm_match_sklearn():
    import torch

    rng = np.random.default_rng(0)
    x = rng.normal(size=(600, 4))
    y = (x[:, 0] + x[:, 1] ** 2 > 1).astype(int) + (x[:, 2] > 1)
    model = FocalSignature(n_estimators=7, max_depth=6)
    model.proj_ = np.eye(4, dtype=np.float32)  # features = profiles
    model.proj_bias_ = np.zeros(4, np.float32)
    xt = torch.from_numpy(x.T.astype(np.float32).copy())

    from sklearn.ensemble import RandomForestClassifier

    forest = RandomForestClassifier(n_estimators=7, max_depth=6, random_state=0).fit(x, y)
    model.clf_, model.clf_meta_ = _forest_arrays(forest, 3), {"max_depth": 6}
    ours = _classify_rf(model, xt).numpy().T
    np.testing.assert_allclose(ours, forest.predict_proba(x.astype(np.float32)), atol=1e-5)

    model.clf_, model.clf_meta_, info = _fit_classifier("svm", x[:300], y[:300], 3, model)
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.svm import SVC

    ovr = OneVsRestClassifier(SVC(kernel="rbf", C=info["C"], gamma=info["gamma"]))
    ovr.fit(x[:300], y[:300])
    ours = _classify_svm(model, xt).numpy().argmax(axis=0)
    assert (ours == ovr.decision_function(x).argmax(axis=1)).mean() > 0.99


def test_bad_inputs_get_one_line_errors(fitted):
    with pytest.raises(CellscapeError, match="needs 24"):
        fitted.predict_proba(np.ones((10, 32, 32), np.float32))
    with pytest.raises(CellscapeError, match="not a z-stack"):
        fitted.predict_proba(np.ones((32, 32), np.float32))
    with pytest.raises(ValueError, match="without any labelled pixel"):
        FocalSignature(classes=("a", "b", "c")).fit(np.ones((5, 8, 8)), np.array([[1, 3] * 4] * 8))
    # a longer stack is centred on the training frames
    long = np.ones((30, 16, 16), np.float32)
    assert fitted.predict_proba(long).shape == (5, 16, 16)


def test_topology_rules_and_instances():
    bg, inside, cont, halo = 0, 1, 2, 3
    cm = np.zeros((30, 40), np.uint8)
    # cell A: interior with a stray contour speck inside, contour ring, halo ring
    cm[3:17, 3:17] = halo
    cm[4:16, 4:16] = cont
    cm[6:14, 6:14] = inside
    cm[9:11, 9:11] = cont  # enclosed contour -> interior
    # an interior blob with only background around: rejected
    cm[22:26, 30:34] = inside
    fixed = apply_topology_rules(cm, [inside], cont, halo, bg)
    assert (fixed[9:11, 9:11] == inside).all()
    assert (fixed[22:26, 30:34] == bg).all()
    assert cm[9, 9] == cont  # input untouched

    # two touching cells separated by contour: two instances, each with its contour
    cm = np.zeros((20, 40), np.uint8)
    cm[2:18, 2:38] = cont
    cm[4:16, 4:18] = inside
    cm[4:16, 22:36] = inside
    prob = (cm == inside).astype(np.float32)
    labels = instances_from_classes(cm, prob, [inside], cont, min_size=10)
    assert labels.max() == 2
    assert (labels > 0).sum() == (cm > 0).sum()  # contour pixels belong to a cell
    scores = np.stack([labels == 1, labels == 2]).astype(float)
    assert instance_types(labels, scores).tolist() == [-1, 0, 1]


def test_cli_train_and_segment(ecoli, tmp_path):
    from cellscape import io
    from cellscape.cli import app

    train, val, sparse = ecoli
    io.write_tiff(tmp_path / "train.ome.tif", train.stack, io.ImageMeta(axes="ZYX"))
    io.write_labels(tmp_path / "train_labels.tif", sparse)
    io.write_tiff(tmp_path / "val.ome.tif", val.stack, io.ImageMeta(axes="ZYX"))
    io.write_tiff(tmp_path / "short.ome.tif", val.stack[:5], io.ImageMeta(axes="ZYX"))
    runner = CliRunner()
    res = runner.invoke(
        app,
        [
            "focal", "train", str(tmp_path / "train.ome.tif"), str(tmp_path / "train_labels.tif"),
            "--classes", ",".join(NAMES), "--classifier", "linear", "--out", str(tmp_path / "m"),
            "--xy-sigma", "0.5",
        ],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "accuracy" in res.output
    assert FocalSignature.load(tmp_path / "m").xy_sigma == 0.5
    out = tmp_path / "out"
    res = runner.invoke(
        app,
        ["focal", "segment", str(tmp_path / "m"), str(tmp_path / "val.ome.tif"),
         str(tmp_path / "short.ome.tif"), "--out", str(out)],
    )  # fmt: skip
    assert res.exit_code == 1  # the short stack failed, the other was written
    assert "short.ome.tif" in res.output and "needs 24" in res.output
    for suffix in ("_masks.tif", "_classes.tif", "_confidence.tif"):
        assert (out / f"val{suffix}").exists()
    masks = io.read_labels(out / "val_masks.tif")
    assert masks.shape == (72, 72) and masks.max() > 0
    assert not (out / "short_masks.tif").exists()


def test_xy_smoothing_denoises_and_roundtrips(tmp_path):
    # a noisy stack (few photons): averaging neighbours in Y, X must help the per-pixel profiles
    kw = dict(n_frames=16, dz=0.4, kind="ecoli", photons=150.0)
    train = brightfield_zstack((64, 64), seed=3, **kw)
    val = brightfield_zstack((64, 64), seed=4, **kw)
    rng = np.random.default_rng(0)
    sparse = np.where(rng.random(train.classes.shape) < 0.3, train.classes.astype(int) + 1, 0)
    acc = {}
    for sigma in (0.0, 1.0):
        model = FocalSignature(
            classes=NAMES, classifier="linear", n_components=8, xy_sigma=sigma
        ).fit(train.stack, sparse)
        acc[sigma] = (model.predict(val.stack) == val.classes).mean()
    assert acc[1.0] > acc[0.0] + 0.02
    # the smoothing is part of the model: saved, loaded, applied to the centred frames only
    folder = model.save(tmp_path / "m")
    again = FocalSignature.load(folder)
    assert again.xy_sigma == 1.0
    longer = np.concatenate([val.stack[:1] * 5, val.stack, val.stack[-1:] * 5])
    np.testing.assert_allclose(
        again.predict_proba(longer), model.predict_proba(val.stack), atol=1e-5
    )
    with pytest.raises(ValueError, match="xy_sigma"):
        FocalSignature(xy_sigma=-1).fit(train.stack, sparse)


@pytest.fixture(scope="module")
def monolayer():
    """A dense monolayer of rods without walls: 2-3 px contour and halo rings everywhere."""
    kw = dict(n_frames=16, dz=0.25, kind="ecoli", walls=False)
    train = brightfield_zstack((96, 96), seed=1, **kw)
    val = brightfield_zstack((96, 96), seed=2, **kw)
    rng = np.random.default_rng(0)
    sparse = np.where(rng.random(train.classes.shape) < 0.3, train.classes.astype(int) + 1, 0)
    names = NAMES[:4]  # no wall
    cnn = FocalSignature(
        classes=names, classifier="cnn", n_components=8, cnn_width=16, cnn_steps=200
    ).fit(train.stack, sparse)
    mlp = FocalSignature(
        classes=names, classifier="mlp", n_components=8, max_train_pixels=3000
    ).fit(train.stack, sparse)
    return val, sparse, cnn, mlp


def test_cnn_classifier_reads_the_neighbourhood_and_beats_one_pixel(monolayer):
    # the contour and halo rings are 2-3 px wide, under the optical resolution: one pixel's
    # z-profile cannot place them, its neighbours' can
    val, _, cnn, mlp = monolayer
    proba = cnn.predict_proba(val.stack)
    assert proba.shape == (4, 96, 96) and proba.dtype == np.float32
    np.testing.assert_allclose(proba.sum(axis=0), 1.0, atol=1e-4)
    acc_cnn = (proba.argmax(axis=0) == val.classes).mean()
    acc_mlp = (mlp.predict(val.stack) == val.classes).mean()
    # measured: 0.92 against 0.85
    assert acc_cnn > acc_mlp + 0.03, (acc_cnn, acc_mlp)
    info = cnn.info_["validation"]
    assert 0.85 < info["accuracy"] <= 1.0 and np.sum(info["confusion"]) == info["n_pixels"]
    assert cnn.segment(val.stack).max() >= 5


def test_cnn_tiles_roundtrip_and_bad_params(monolayer, tmp_path, monkeypatch):
    import cellscape.methods.focal_context as fc

    val, sparse, cnn, _ = monolayer
    whole = cnn.predict_proba(val.stack)
    # tile by tile with a margin of the receptive radius = one pass over the whole field
    monkeypatch.setattr(fc, "TILE", 20)
    np.testing.assert_allclose(cnn.predict_proba(val.stack), whole, atol=1e-5)
    folder = cnn.save(tmp_path / "cnn")
    again = FocalSignature.load(folder)
    assert list(again.cnn_dilations) == [1, 2, 4, 8, 4, 2, 1]
    np.testing.assert_allclose(again.predict_proba(val.stack), whole, atol=1e-5)
    with pytest.raises(ValueError, match="cnn_dilations"):
        FocalSignature(classifier="cnn", cnn_dilations=(0, 2)).fit(val.stack, sparse)


def test_cli_trains_the_cnn_classifier(ecoli, tmp_path):
    from cellscape import io
    from cellscape.cli import app

    train, _, sparse = ecoli
    io.write_tiff(tmp_path / "train.ome.tif", train.stack, io.ImageMeta(axes="ZYX"))
    io.write_labels(tmp_path / "labels.tif", sparse)
    res = CliRunner().invoke(
        app,
        [
            "focal", "train", str(tmp_path / "train.ome.tif"), str(tmp_path / "labels.tif"),
            "--classes", ",".join(NAMES), "--classifier", "cnn", "--cnn-steps", "5",
            "--out", str(tmp_path / "m"),
        ],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    model = FocalSignature.load(tmp_path / "m")
    assert model.classifier == "cnn" and model.cnn_steps == 5
    assert sorted(model.clf_) == [f"conv{i}.{p}" for i in range(9) for p in "bw"]
