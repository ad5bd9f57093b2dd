"""cellscape: microscopy images in, single-cell data out.

Importing cellscape is cheap: it imports numpy only. Heavy dependencies (torch, zarr,
matplotlib) are imported inside the modules and functions that need them.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
