"""The estimator interface every segmentation method follows.

Modelled on scikit-learn: the constructor only stores parameters; ``fit`` learns and returns
``self``; learned state ends in ``_``; ``get_params`` lists the constructor parameters. On top of
that a segmenter has ``predict_proba`` (per-pixel class probabilities, ``(K, Y, X)`` float32),
``segment`` (instance labels, ``(Y, X)`` int32) and ``save`` / ``load`` to a model folder holding a
``config.json`` (and, for learned weights, a ``weights.safetensors``). The command line, batch
runner and napari plugin only talk to this interface.
"""

from __future__ import annotations

import inspect
import os
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from .. import __version__
from ..errors import CellscapeError
from ..io import ImageMeta, read_json, write_json

CONFIG_NAME = "config.json"


class Segmenter:
    """Base class of cellscape's segmentation methods (see the module docstring)."""

    #: registry name of the method, written into saved configs
    method: ClassVar[str] = ""
    #: names of the classes of ``predict_proba``, in order
    class_names: tuple[str, ...] = ()

    # -- parameters ---------------------------------------------------------------------------
    @classmethod
    def _param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        return [
            p.name
            for p in sig.parameters.values()
            if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        ]

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Constructor parameters and their current values."""
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params) -> Segmenter:
        """Change constructor parameters; unknown names raise ``ValueError``."""
        valid = set(self._param_names())
        for key, value in params.items():
            if key not in valid:
                raise ValueError(f"{type(self).__name__} has no parameter {key!r}")
            setattr(self, key, value)
        return self

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    # -- learning and inference ---------------------------------------------------------------
    def fit(self, images, targets, metas=None) -> Segmenter:  # pragma: no cover - interface
        raise NotImplementedError

    def predict_proba(self, image: np.ndarray, meta: ImageMeta | None = None) -> np.ndarray:
        raise NotImplementedError  # pragma: no cover - interface

    def segment(self, image: np.ndarray, meta: ImageMeta | None = None) -> np.ndarray:
        raise NotImplementedError  # pragma: no cover - interface

    @property
    def uses_pixel_size(self) -> bool:
        """Whether ``meta.pixel_size`` changes how this model segments (it learned a physical
        scale); otherwise the pixel size only sets the µm columns of measurement tables."""
        return False

    # -- persistence --------------------------------------------------------------------------
    def _state(self) -> dict[str, Any]:
        """JSON-serialisable learned state (arrays go to safetensors in subclasses)."""
        return {}

    def _set_state(self, state: dict[str, Any]) -> None:
        pass

    def config(self) -> dict[str, Any]:
        """What ``save`` writes to ``config.json``."""
        return {
            "format": "cellscape-model",
            "cellscape_version": __version__,
            "method": self.method,
            "params": self.get_params(),
            "classes": list(self.class_names),
            "state": self._state(),
            "info": getattr(self, "info_", {}),
        }

    def save(self, path: str | os.PathLike) -> Path:
        """Save the model to a folder (``config.json`` plus weights where the method has any)."""
        folder = Path(path)
        write_json(folder / CONFIG_NAME, self.config())
        return folder

    @classmethod
    def load(cls, path: str | os.PathLike) -> Segmenter:
        """Load a model saved with :meth:`save`. Never unpickles anything."""
        folder = Path(path)
        config = read_json(folder / CONFIG_NAME if folder.is_dir() else folder)
        if config.get("method") != cls.method:
            raise CellscapeError(
                folder, f"model is a '{config.get('method')}' model, not '{cls.method}'"
            )
        known = set(cls._param_names())
        model = cls(**{k: v for k, v in config.get("params", {}).items() if k in known})
        model._set_state(config.get("state", {}))
        model.info_ = config.get("info", {})
        return model
