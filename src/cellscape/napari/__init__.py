"""cellscape's napari plugin: read and write cellscape files, segment, train, curate, export.

Installed with ``pip install "cellscape[napari]"``; napari finds it through the npe2 manifest
``napari.yaml`` of this package. The logic lives in :mod:`cellscape.napari.core` (numpy only,
usable and tested without Qt); :mod:`cellscape.napari._widgets` holds the dock widgets.
Importing this package imports neither napari nor Qt nor torch.
"""
