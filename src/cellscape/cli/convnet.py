"""Commands of edge / interior conv-nets (``cellscape train convnet``)."""

from __future__ import annotations
