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


@pytest.mark.parametrize("name", ["ecoli-phase", "cells-phase-nuclear", "wholecell-single"])
def test_other_bundled_models_load_and_segment(name):
    sim = synthetic.nuclei(shape=(128, 128), n_nuclei=10, seed=3)
    image = sim.image if name != "cells-phase-nuclear" else np.stack([sim.image, sim.image])
    labels = load_model(name).segment(image)
    assert labels.shape == (128, 128) and np.issubdtype(labels.dtype, np.integer)
