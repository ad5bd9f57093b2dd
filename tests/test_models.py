"""Every bundled model loads without network access and describes itself."""

from __future__ import annotations

import numpy as np
import pytest

from cellscape import synthetic
from cellscape.models import list_models, load_model


@pytest.mark.parametrize("card", [c for c in list_models() if c.folder], ids=lambda c: c.name)
def test_bundled_model_records_data_scores_and_command(card):
    info = card.info()
    assert info["training_data"] and info["command"].startswith("python ")
    assert 0.0 <= info["validation"]["ap_pooled@0.5"] <= 1.0
    assert 0.0 <= info["validation"]["dsb2018"] <= 1.0


@pytest.mark.parametrize("card", list_models(), ids=lambda c: c.name)
def test_bundled_model_segments_synthetic_nuclei(card):
    sim = synthetic.nuclei(shape=(128, 128), n_nuclei=10, seed=3)
    labels = load_model(card.name).segment(sim.image)
    assert labels.shape == sim.image.shape and labels.dtype == np.int32
    assert labels.max() > 0
