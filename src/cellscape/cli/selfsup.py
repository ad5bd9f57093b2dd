"""Commands of label-free marker-controlled segmentation (``cellscape selfsup``)."""

from __future__ import annotations
