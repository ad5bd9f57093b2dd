"""The registry of methods and bundled models, and loading a model by name or path.

A method is a :class:`cellscape.methods.base.Segmenter` subclass, registered by name in
``METHODS`` as an import path so that importing cellscape never imports torch. A bundled model is
a ready-to-use configuration of a method (with weights shipped inside the package where it has
any), described by a :class:`ModelCard`. Adding a method is one file in ``methods/`` and one line
here; the command line, batch runner and napari plugin find it through this module.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from .errors import CellscapeError
from .io import read_json

#: method name -> "module:Class"
METHODS: dict[str, str] = {
    "classical": "cellscape.methods.classical:Classical",
    "focal": "cellscape.methods.focal:FocalSignature",
    "unet": "cellscape.methods.unet:UNetSegmenter",
    "wholecell": "cellscape.methods.wholecell:WholeCell",
    "convnet": "cellscape.methods.convnet:ConvNet",
    "selfsup": "cellscape.methods.selfsup:SelfSupervised",
}


@dataclass(frozen=True)
class ModelCard:
    """What a bundled model is and what it is for.

    Attributes
    ----------
    name : str
        What users type after ``--model``.
    method : str
        Key of :data:`METHODS`.
    purpose : str
        One line: which images it is for.
    folder : str or None
        Folder under ``cellscape/data/models`` holding ``config.json`` (+ weights); ``None`` for
        methods that need no learned state.
    params : dict
        Constructor parameters when ``folder`` is None.
    """

    name: str
    method: str
    purpose: str
    folder: str | None = None
    params: dict = field(default_factory=dict)

    def info(self) -> dict:
        """Training data and validation scores recorded in the model's config, if any."""
        if self.folder is None:
            return {}
        config = read_json(bundled_model_path(self.folder) / "config.json")
        return config.get("info", {})

    def scores(self) -> dict[str, float]:
        """The headline held-out scores of the model, label -> value, for listings.

        Methods record them under their own keys: ``validation`` (the U-Net's DSB2018 split),
        ``held_out_metrics`` (conv-nets: held-out DeepCell sets), ``held_out`` (whole cells:
        one entry per held-out data set, the first shown).
        """
        info = self.info()
        if "validation" in info:
            found, shown = info["validation"], {"ap_pooled@0.5": "AP@0.5", "dsb2018": "DSB2018"}
        elif "held_out_metrics" in info:
            found, shown = info["held_out_metrics"], {"ap50": "AP@0.5", "jaccard_per_cell": "J"}
        elif "held_out" in info:
            sets = [v for v in info["held_out"].values() if isinstance(v, dict) and "ap50" in v]
            found, shown = (sets[0] if sets else {}), {"ap50": "AP@0.5", "sm": "SM"}
        else:
            return {}
        return {label: float(found[k]) for k, label in shown.items() if k in found}


BUNDLED: dict[str, ModelCard] = {
    card.name: card
    for card in [
        ModelCard(
            "classical",
            "classical",
            "any bright (fluorescence) or dark (bright field, H&E) round objects; no training: "
            "smoothing + Otsu threshold + distance watershed. The baseline to beat.",
        ),
        ModelCard(
            "nuclei",
            "unet",
            "nuclei in fluorescence, bright field and H&E histology: U-Net + seeded watershed "
            "trained on DSB2018, H&E images as their hematoxylin plane (CPU-trained; about 0.3 s "
            "per 1024 x 1024 image)",
            folder="nuclei",
        ),
        ModelCard(
            "ecoli-phase",
            "unet",
            "E. coli (rod bacteria) in phase contrast: U-Net + seeded watershed trained on the "
            "DeepCell 2016 ecoli and ecoli_kc images (rods of 13-28 px across); held-out AP@0.5 "
            "0.88 pooled (the conv-net below: 0.77 in the same run)",
            folder="ecoli-phase",
        ),
        ModelCard(
            "ecoli-phase-convnet",
            "convnet",
            "the DeepCell 2016 way to the same bacteria: ensemble of 3 windowed conv-nets "
            "(31 x 31), interior threshold 0.6; held-out AP@0.5 0.775, Jaccard 0.854",
            folder="ecoli-phase-convnet",
        ),
        ModelCard(
            "cells-phase-nuclear",
            "unet",
            "mammalian whole cells from phase contrast + a nuclear marker (2 channels, named "
            "phase and nuclear, or phase first): U-Net + seeded watershed trained on DeepCell "
            "2016 HeLa-S3, 3T3, MCF10A, RAW 264.7 and BMDM images; held-out HeLa AP@0.5 0.865 "
            "(the conv-net below: 0.658), scores shown: pooled over 6 held-out images of 5 lines",
            folder="cells-phase-nuclear",
        ),
        ModelCard(
            "cells-phase-nuclear-convnet",
            "convnet",
            "the DeepCell 2016 way to the same cells (phase + nuclear): 61 x 61 windowed "
            "conv-net, whole cells grown by active contours from the nuclei of a nuclear "
            "conv-net (HeLa data only); held-out HeLa AP@0.5 0.665, Jaccard 0.670; on the 6 "
            "held-out images of 5 lines AP@0.5 0.298 pooled (docs/benchmarks.md)",
            folder="cells-phase-nuclear-convnet",
        ),
        ModelCard(
            "wholecell-single",
            "wholecell",
            "whole cells + nuclei from ONE cytoplasm-marker channel (bright cytoplasm, dim nuclei) "
            "at ~0.65 um/px: U-Net + nuclei seeds + seeded watershed (Al-Kofahi 2018); trained on "
            "synthetic images only (a demo; retrain on your images with cellscape train wholecell)",
            folder="wholecell-single",
        ),
    ]
}

#: model used when ``--model`` is not given
DEFAULT_MODEL = "nuclei"


def bundled_model_path(folder: str) -> Path:
    """Path of a bundled model folder inside the installed package."""
    return Path(str(resources.files("cellscape") / "data" / "models" / folder))


def method_class(method: str):
    """The Segmenter class registered under ``method``."""
    if method not in METHODS:
        raise CellscapeError(None, f"unknown method '{method}' (known: {', '.join(METHODS)})")
    module_name, cls_name = METHODS[method].split(":")
    return getattr(importlib.import_module(module_name), cls_name)


def load_model(name_or_path: str | os.PathLike, **params):
    """Load a bundled model by name, or a saved model from its folder.

    Parameters
    ----------
    name_or_path : str or PathLike
        A name listed by :func:`list_models`, or a folder written by ``Segmenter.save`` (or the
        ``config.json`` inside it).
    **params
        Constructor parameters to override (e.g. ``diameter=20``); ``None`` values are ignored.

    Raises
    ------
    CellscapeError
        Unknown name, or a folder that is not a cellscape model.
    """
    overrides = {k: v for k, v in params.items() if v is not None}
    name = str(name_or_path)
    path = Path(name)
    # a folder is a model only if it holds a config.json: a user's image folder that happens to
    # be called "nuclei" must not hide the bundled model of that name
    is_model_path = (path / "config.json").is_file() if path.is_dir() else path.is_file()
    if name in BUNDLED and not is_model_path:
        card = BUNDLED[name]
        cls = method_class(card.method)
        if card.folder is None:
            model = cls(**card.params)
        else:
            model = cls.load(bundled_model_path(card.folder))
    elif path.exists():
        config_path = path / "config.json" if path.is_dir() else path
        config = read_json(config_path)
        if config.get("format") != "cellscape-model" or "method" not in config:
            raise CellscapeError(path, "not a cellscape model (config.json lacks 'method')")
        model = method_class(config["method"]).load(config_path.parent)
    else:
        raise CellscapeError(
            None,
            f"unknown model '{name}': not a bundled model ({', '.join(BUNDLED)}) "
            "and no such folder",
        )
    if overrides:
        known = set(model.get_params())
        model.set_params(**{k: v for k, v in overrides.items() if k in known})
    return model


def list_models() -> list[ModelCard]:
    """The bundled models, default first."""
    cards = list(BUNDLED.values())
    return sorted(cards, key=lambda c: c.name != DEFAULT_MODEL)
