"""The ``cellscape`` command.

Only this package parses arguments. ``app`` is the one Typer application; each module of the
package adds the commands of one capability to it (``core``: segment, evaluate, models). A new
capability is a new module here plus one name in ``_COMMAND_MODULES``.
"""

from __future__ import annotations

import importlib

from ._app import app, main

# modules that register commands on ``app`` when imported
_COMMAND_MODULES = (
    "core",
    "train",
    "unet",
    "focal",
    "track",
    "batch",
    "wholecell",
    "convnet",
    "selfsup",
)

for _name in _COMMAND_MODULES:
    importlib.import_module(f"{__name__}.{_name}")

__all__ = ["app", "main"]
