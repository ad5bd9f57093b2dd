"""Commands of single-channel whole-cell segmentation (``cellscape train wholecell``)."""

from __future__ import annotations
