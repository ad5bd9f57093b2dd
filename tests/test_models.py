"""Every bundled model loads without network access and describes itself."""

from __future__ import annotations

import numpy as np
import pytest

from cellscape import synthetic
from cellscape.models import list_models, load_model


@pytest.mark.parametrize("card", [c for c in list_models() if c.folder], ids=lambda c: c.name)
def test_bundled_model_records_data_scores_and_command(card):
    info = card.info()
    assert info["training_data"]
    assert info["command"].startswith("python training/")  # anyone can retrain it
    if card.name == "nuclei":
        assert 0.0 <= info["validation"]["ap_pooled@0.5"] <= 1.0
        assert 0.0 <= info["validation"]["dsb2018"] <= 1.0
    # every learned model shows its held-out AP@0.5 in `cellscape models`
    assert 0.0 < card.scores()["AP@0.5"] <= 1.0


@pytest.mark.parametrize(
    "card", [c for c in list_models() if c.name in ("classical", "nuclei")], ids=lambda c: c.name
)
def test_bundled_model_segments_synthetic_nuclei(card):
    sim = synthetic.nuclei(shape=(128, 128), n_nuclei=10, seed=3)
    labels = load_model(card.name).segment(sim.image)
    assert labels.shape == sim.image.shape and labels.dtype == np.int32
    assert labels.max() > 0


@pytest.mark.parametrize(
    "name",
    ["ecoli-phase", "ecoli-phase-convnet", "cells-phase-nuclear", "cells-phase-nuclear-convnet"]
    + ["wholecell-single"],
)
def test_other_bundled_models_load_and_segment(name):
    sim = synthetic.nuclei(shape=(128, 128), n_nuclei=10, seed=3)
    two = name.startswith("cells-phase-nuclear")
    image = np.stack([sim.image, sim.image]) if two else sim.image
    labels = load_model(name).segment(image)
    assert labels.shape == (128, 128) and np.issubdtype(labels.dtype, np.integer)


def test_bundled_cells_model_matches_its_channels_by_name():
    # synthetic whole cells (cytoplasm marker + nuclei) are not phase contrast, but the bundled
    # phase + nuclear U-Net still finds most of them when each plane is named for what it is,
    # and almost none when the names are swapped: the channels are matched by name, not order
    from cellscape import metrics
    from cellscape.io import ImageMeta

    model = load_model("cells-phase-nuclear")
    right, swapped = [], []
    for seed in range(3):
        sim = synthetic.whole_cells(shape=(256, 256), n_cells=10, seed=seed)
        image = np.stack([sim.image, sim.nuclear_image])
        for names, scores in ((("phase", "nuclear"), right), (("nuclear", "phase"), swapped)):
            labels = model.segment(image, ImageMeta(axes="CYX", channel_names=names))
            scores.append(metrics.image_scores(sim.labels, labels)["ap@0.5"])
    assert np.mean(right) >= 0.5
    assert np.mean(swapped) < 0.3


@pytest.mark.parametrize("card", [c for c in list_models() if c.folder], ids=lambda c: c.name)
def test_bundled_weights_are_finite(card):
    # a float16 cast of a value beyond 65504 is infinity: a broken network that still loads
    from cellscape import io
    from cellscape.models import bundled_model_path

    files = sorted(bundled_model_path(card.folder).rglob("*.safetensors"))
    assert files
    for path in files:
        for name, array in io.read_safetensors(path).items():
            if array.dtype.kind == "f":
                assert np.isfinite(array).all(), f"{path.name}: {name}"


def test_bundled_ecoli_model_finds_simulated_phase_bacteria():
    # trained on real DeepCell 2016 phase images only, the U-Net separates simulated touching
    # rods almost perfectly (AP@0.5 0.98-1.0; the conv-net it replaced: 0.53-0.67)
    from cellscape import metrics

    model = load_model("ecoli-phase")
    scores = []
    for seed in range(2):
        sim = synthetic.bacteria_phase(shape=(256, 256), seed=seed)
        scores.append(metrics.image_scores(sim.labels, model.segment(sim.image))["ap@0.5"])
    assert np.mean(scores) >= 0.9
