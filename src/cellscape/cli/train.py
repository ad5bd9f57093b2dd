"""The ``cellscape train`` command group: one sub-command per trainable method.

Each method's command module registers ``cellscape train <method>`` on ``train_app``
(``wholecell``, ``convnet``, ...), so that training any method reads the same way.
"""

from __future__ import annotations

import typer

from ._app import app

train_app = typer.Typer(
    name="train",
    help="Train a model of one method on your own data; the folder it writes works with --model.",
    no_args_is_help=True,
)
app.add_typer(train_app, name="train")
