"""Readers for the public data set layouts cellscape trains and validates on.

Three layouts are understood, each in the form its authors ship it:

* **Cellpose-style pairs** (``<id>_img.tif`` + ``<id>_masks.tif``, as in the Data Science Bowl
  2018 set): :func:`list_pairs`, :func:`list_orphans`, :func:`split_ids`, :func:`dsb2018_split`.
* **DeepCell 2016 training data** (one folder per image "set" holding channel images and
  ``feature_<k>`` masks): :func:`list_deepcell_sets`, :class:`DeepCellSet`,
  :func:`deepcell_instances`, :func:`find_duplicate_sets`.
* **Cell Tracking Challenge** (``01/t000.tif`` ..., ``01_GT/SEG``, ``01_GT/TRA``):
  :func:`read_ctc_sequence`, :func:`read_ctc_gt`, :func:`read_man_track`,
  :func:`write_res_track`.

Listing is lazy: the ``list_*`` / ``read_ctc_*`` functions only look at file names and return
small records of paths; pixels are read when a record's ``load*`` method is called, so listing a
data set of hundreds of images is instant and cheap on memory. Pixels are read through
:mod:`cellscape.io`, so every problem with a file (missing, truncated, wrong type) surfaces as a
one-line :class:`~cellscape.errors.CellscapeError` that names the file.

Axis conventions are those of the whole package: ``(Y, X)``, channels first ``(C, Y, X)``,
time first ``(T, ...)``; labels are integer arrays with 0 as background.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import io
from .errors import CellscapeError
from .io import ImageMeta

__all__ = [
    "DEFAULT_SPLIT_SALT",
    "CTCGroundTruth",
    "CTCSequence",
    "DeepCellSet",
    "ImagePair",
    "deepcell_instances",
    "dsb2018_split",
    "find_duplicate_sets",
    "list_deepcell_sets",
    "list_orphans",
    "list_pairs",
    "read_ctc_gt",
    "read_ctc_sequence",
    "read_man_track",
    "split_ids",
    "write_res_track",
]

#: Salt of the project's validation split. Changing it changes which images are held out, so
#: it must stay fixed for as long as results are compared.
DEFAULT_SPLIT_SALT = "cellscape-v1"


def _check_folder(folder: str | os.PathLike) -> Path:
    p = Path(folder)
    if not p.exists():
        raise CellscapeError(p, "folder not found")
    if not p.is_dir():
        raise CellscapeError(p, "is a file, not a folder")
    return p


def _files(folder: Path) -> list[Path]:
    """Plain, non-hidden files directly inside ``folder``, sorted by name."""
    try:
        entries = sorted(folder.iterdir())
    except OSError as exc:
        raise CellscapeError(folder, f"cannot list folder ({exc.strerror})") from None
    return [p for p in entries if not p.name.startswith(".") and p.is_file()]


def _stem_and_suffix(path: Path, suffixes: Sequence[str]) -> tuple[str, str] | None:
    name = path.name
    for suffix in suffixes:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)], suffix
    return None


# --------------------------------------------------------------------------------------------
# Cellpose-style pairs
# --------------------------------------------------------------------------------------------

_IMG_TAG = "_img"
_MASK_TAG = "_masks"
_MASK_SUFFIXES = (".tiff", ".tif", ".png")


@dataclass(frozen=True)
class ImagePair:
    """One image and its instance masks, by path; pixels are read by :meth:`load`.

    Attributes
    ----------
    id : str
        The shared name: ``<id>_img.tif`` and ``<id>_masks.tif``.
    image_path : Path
        The image (grey ``(Y, X)`` or colour, any format :func:`cellscape.io.read_image` reads).
    masks_path : Path
        The instance label image (0 background, one positive id per object).
    """

    id: str
    image_path: Path
    masks_path: Path

    def load(self) -> tuple[np.ndarray, ImageMeta, np.ndarray]:
        """Read the image and its masks.

        Returns
        -------
        image : ndarray
            Grey ``(Y, X)``, or ``(3, Y, X)`` with ``meta.rgb = True`` for colour files (alpha
            dropped); dtype as stored (uint8 for dsb2018).
        meta : ImageMeta
            Axes and scale of the image.
        labels : ndarray of int32, shape (Y, X)
            Instance labels.

        Raises
        ------
        CellscapeError
            Either file unreadable, or the masks' shape differs from the image's ``(Y, X)``.
        """
        image, meta = io.read_image(self.image_path)
        labels = io.read_labels(self.masks_path)
        yx = image.shape[-2:]
        if labels.shape != yx:
            raise CellscapeError(
                self.masks_path,
                f"masks have shape {labels.shape} but the image is {yx[0]} x {yx[1]} pixels",
            )
        return image, meta, labels


def _scan_pairs(folder: Path) -> tuple[dict[str, Path], dict[str, Path]]:
    images: dict[str, Path] = {}
    masks: dict[str, Path] = {}
    for p in _files(folder):
        hit = _stem_and_suffix(p, io.IMAGE_SUFFIXES)
        if hit is None:
            continue
        stem = hit[0]
        if stem.endswith(_IMG_TAG):
            target, key = images, stem[: -len(_IMG_TAG)]
        elif stem.endswith(_MASK_TAG) and hit[1] in _MASK_SUFFIXES:
            target, key = masks, stem[: -len(_MASK_TAG)]
        else:
            continue
        if key in target:
            raise CellscapeError(p, f"two files for '{key}' ({target[key].name} and {p.name})")
        target[key] = p
    return images, masks


def list_pairs(folder: str | os.PathLike) -> list[ImagePair]:
    """List the complete ``<id>_img`` / ``<id>_masks`` pairs of a folder, sorted by id.

    Only complete pairs are listed: an image without masks (or masks without an image) is
    left out silently, and :func:`list_orphans` names those files. Nothing is read but the
    folder listing.

    Parameters
    ----------
    folder : str or PathLike
        A folder with ``<id>_img.<tif|tiff|png|jpg|jpeg>`` images and ``<id>_masks.<tif|tiff|png>``
        instance masks side by side (the Cellpose convention); other files are ignored.

    Returns
    -------
    pairs : list of ImagePair
        Sorted by ``id``.

    Raises
    ------
    CellscapeError
        The folder is missing or not a folder; it holds no complete pair; or one id has two
        images (or two masks) in different formats.
    """
    root = _check_folder(folder)
    images, masks = _scan_pairs(root)
    pairs = [ImagePair(k, images[k], masks[k]) for k in sorted(images) if k in masks]
    if not pairs:
        raise CellscapeError(root, "no <id>_img / <id>_masks image pairs found")
    return pairs


def list_orphans(folder: str | os.PathLike) -> list[Path]:
    """Files of a pair folder that :func:`list_pairs` leaves out for lack of a partner.

    Returns
    -------
    orphans : list of Path
        ``<id>_img`` files with no ``<id>_masks`` and ``<id>_masks`` files with no
        ``<id>_img``, sorted by name. Empty when every file has its partner.

    Raises
    ------
    CellscapeError
        The folder is missing or not a folder.
    """
    root = _check_folder(folder)
    images, masks = _scan_pairs(root)
    lonely = [p for k, p in images.items() if k not in masks]
    lonely += [p for k, p in masks.items() if k not in images]
    return sorted(lonely, key=lambda p: p.name)


def split_score(item: str, salt: str = DEFAULT_SPLIT_SALT) -> float:
    """The number in ``[0, 1)`` that places ``item`` in a split (see :func:`split_ids`): the
    first 8 bytes of ``sha256(salt + item)`` as a big-endian integer over ``2**64``."""
    digest = hashlib.sha256((salt + item).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def split_ids(
    ids: Iterable[str], fraction: float = 0.15, salt: str = DEFAULT_SPLIT_SALT
) -> tuple[list[str], list[str]]:
    """Deterministic train / validation split of ids by a stable hash.

    Each id goes to validation when ``u < fraction``, where ``u`` in ``[0, 1)`` is the first 8
    bytes of ``sha256((salt + id).encode("utf-8"))`` read as a big-endian integer and divided
    by ``2**64``. The decision for an id depends only on the id, ``salt`` and ``fraction``:
    not on the order of ``ids``, nor on which other ids are present, nor on the Python
    process (Python's ``hash`` is not used). Adding images to a data set therefore never moves
    an existing image across the split, and raising ``fraction`` only moves ids from train to
    validation.

    With the default salt this is *the* project's validation split: nothing is trained or
    tuned on the validation ids.

    Parameters
    ----------
    ids : iterable of str
        Image ids (e.g. :attr:`ImagePair.id`).
    fraction : float
        Expected fraction of ids held out for validation, in ``[0, 1]``.
    salt : str
        Changes the split; keep the default to use the project's split.

    Returns
    -------
    train_ids, val_ids : list of str
        Disjoint, each in the order of ``ids``; duplicates in ``ids`` stay together.

    Raises
    ------
    ValueError
        ``fraction`` outside ``[0, 1]`` or an id that is not a string.
    """
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction must be in [0, 1], got {fraction}")
    train: list[str] = []
    val: list[str] = []
    for item in ids:
        if not isinstance(item, str):
            raise ValueError(f"ids must be strings, got {type(item).__name__}")
        (val if split_score(item, salt) < fraction else train).append(item)
    return train, val


def dsb2018_split(
    folder: str | os.PathLike, fraction: float = 0.15, salt: str = DEFAULT_SPLIT_SALT
) -> tuple[list[ImagePair], list[ImagePair]]:
    """The project's train / validation split of a pair folder (Data Science Bowl 2018).

    :func:`list_pairs` followed by :func:`split_ids` on the pair ids.

    Returns
    -------
    train, val : list of ImagePair
        Disjoint, each sorted by id.
    """
    pairs = list_pairs(folder)
    _, val_ids = split_ids([p.id for p in pairs], fraction, salt)
    held = set(val_ids)
    return [p for p in pairs if p.id not in held], [p for p in pairs if p.id in held]


# --------------------------------------------------------------------------------------------
# DeepCell 2016 training data
# --------------------------------------------------------------------------------------------

_FEATURE_RE = re.compile(r"^feature_(\d+)$", re.IGNORECASE)
_MICROMANAGER_RE = re.compile(r"^img_\d+_(.+?)_\d+$", re.IGNORECASE)
# Files whose channel is the nuclear marker, best first: the first one present becomes
# "nuclear"; any other keeps its own normalised name (e.g. "farred") so nothing is hidden.
_NUCLEAR_NAMES = ("nuclear", "nucleus", "farred")
_SET_FOLDER_RE = re.compile(r"^set\d+$", re.IGNORECASE)
_FEATURE_NAMES = {0: "edge", 1: "interior"}


def _channel_key(stem: str) -> str:
    """``img_000000000_TRITC_000`` -> ``TRITC``; ``phase`` -> ``phase``; case kept."""
    m = _MICROMANAGER_RE.match(stem)
    return m.group(1) if m else stem


@dataclass(frozen=True)
class DeepCellSet:
    """One image set of the DeepCell 2016 training data, by path.

    Attributes
    ----------
    name : str
        Path of the set folder relative to the data root, with ``/`` separators, e.g.
        ``"HeLa_joint/set1"``, ``"BMDM"``, ``"MCF10A_3T3_semantic/3T3/set2"``.
    cell_line : str
        The collection the set belongs to: ``name`` without a trailing ``setN`` component
        (``"HeLa_joint"``, ``"BMDM"``, ``"MCF10A_3T3_semantic/3T3"``).
    folder : Path
        The set folder.
    channels : dict of str to Path
        Channel name -> image file. Names are normalised: ``"phase"``; ``"nuclear"`` for the
        nuclear marker (the first present of ``nuclear.*``, ``nucleus.*``, ``farred.*``,
        ``*_Far-red_*``); Micro-Manager names ``img_000000000_<channel>_000`` become
        ``<channel>`` (``"TRITC"``); other files keep their stem.
    features : dict of int to Path
        ``k`` -> ``feature_k`` mask file: 0 = edge, 1 = interior, 2 = interior of a second
        cell type where present.
    roi_path : Path or None
        ``RoiSet.zip`` (ImageJ ROIs) when the set has one.
    """

    name: str
    cell_line: str
    folder: Path
    channels: dict[str, Path] = field(default_factory=dict)
    features: dict[int, Path] = field(default_factory=dict)
    roi_path: Path | None = None

    def load(
        self, channels: Sequence[str] | None = ("phase", "nuclear")
    ) -> tuple[np.ndarray, ImageMeta, np.ndarray]:
        """Read the requested channels and all feature masks.

        Parameters
        ----------
        channels : sequence of str or None
            Channel names, in the order wanted along ``C`` (see :attr:`channels`). ``None``
            reads every channel of the set, ``phase`` and ``nuclear`` first, the rest by name.

        Returns
        -------
        image : ndarray of float32, shape (C, Y, X)
            The channel images, unscaled (raw intensities as stored, mostly uint16 values).
        meta : ImageMeta
            ``axes="CYX"``, ``channel_names`` as requested, ``source`` the set folder;
            ``extra["feature_names"]`` names the feature masks (``"edge"``, ``"interior"``,
            ``"feature_2"``) and ``extra["set"]`` is :attr:`name`.
        features : ndarray of uint8, shape (K, Y, X)
            ``features[k]`` is 1 where ``feature_k`` is non-zero, else 0 (the files store 0/255,
            0/65535 or 0/1). ``K`` is one more than the largest ``k`` of the set.

        Raises
        ------
        CellscapeError
            A requested channel is missing, a feature mask ``feature_0 .. feature_{K-1}`` is
            missing, a file is unreadable or not single-channel, or the sizes disagree.
        """
        names = self._channel_order() if channels is None else list(channels)
        for c in names:
            if c not in self.channels:
                have = ", ".join(sorted(self.channels)) or "none"
                raise CellscapeError(self.folder, f"no '{c}' channel in this set (has: {have})")
        if not self.features:
            raise CellscapeError(self.folder, "no feature_<k> masks in this set")
        n_features = max(self.features) + 1
        missing = [k for k in range(n_features) if k not in self.features]
        if missing:
            raise CellscapeError(self.folder, f"feature_{missing[0]} mask is missing")

        shape: tuple[int, ...] | None = None

        def read_plane(path: Path) -> np.ndarray:
            nonlocal shape
            data, _ = io.read_image(path)
            if data.ndim != 2:
                raise CellscapeError(path, f"expected a single-channel image, got {data.shape}")
            if shape is None:
                shape = data.shape
            elif data.shape != shape:
                raise CellscapeError(
                    path, f"image is {data.shape} but other files of the set are {shape}"
                )
            return data

        planes = [read_plane(self.channels[c]).astype(np.float32) for c in names]
        masks = [(read_plane(self.features[k]) > 0).astype(np.uint8) for k in range(n_features)]
        assert shape is not None
        image = np.stack(planes) if planes else np.zeros((0, *shape), np.float32)
        meta = ImageMeta(
            axes="CYX",
            channel_names=tuple(names),
            source=str(self.folder),
            extra={
                "set": self.name,
                "feature_names": tuple(
                    _FEATURE_NAMES.get(k, f"feature_{k}") for k in range(n_features)
                ),
            },
        )
        return image, meta, np.stack(masks)

    def _channel_order(self) -> list[str]:
        first = [c for c in ("phase", "nuclear") if c in self.channels]
        return first + sorted(c for c in self.channels if c not in first)


def _read_deepcell_folder(folder: Path, name: str) -> DeepCellSet | None:
    channel_files: dict[str, Path] = {}
    features: dict[int, Path] = {}
    roi_path = None
    for p in _files(folder):
        if p.name.lower() == "roiset.zip":
            roi_path = p
            continue
        hit = _stem_and_suffix(p, io.IMAGE_SUFFIXES)
        if hit is None:
            continue
        stem = hit[0]
        m = _FEATURE_RE.match(stem)
        if m:
            target: dict = features
            key: int | str = int(m.group(1))
        else:
            target, key = channel_files, _channel_key(stem)
        if key in target:
            raise CellscapeError(p, f"two files for '{key}' ({target[key].name} and {p.name})")
        target[key] = p
    if not features:
        return None
    channels: dict[str, Path] = {}
    for key in sorted(channel_files, key=_channel_rank):
        norm = key.lower().replace("-", "").replace("_", "")
        if norm in _NUCLEAR_NAMES and "nuclear" not in channels:
            new = "nuclear"
        elif norm == "phase":
            new = "phase"
        else:
            new = norm if norm in _NUCLEAR_NAMES else key
        channels[key if new in channels else new] = channel_files[key]
    parts = name.split("/")
    cell_line = "/".join(parts[:-1]) if len(parts) > 1 and _SET_FOLDER_RE.match(parts[-1]) else name
    return DeepCellSet(name, cell_line, folder, channels, dict(sorted(features.items())), roi_path)


def _channel_rank(key: str) -> tuple[int, int, str]:
    """Sort order of channel files: nuclear candidates first, best first; exact names first."""
    norm = key.lower().replace("-", "").replace("_", "")
    rank = _NUCLEAR_NAMES.index(norm) if norm in _NUCLEAR_NAMES else len(_NUCLEAR_NAMES)
    return rank, int(norm != key.lower()), key


def list_deepcell_sets(root: str | os.PathLike) -> list[DeepCellSet]:
    """List the image sets of a DeepCell 2016 ``training_data`` folder, sorted by name.

    A *set* is any folder, at any depth under ``root`` (or ``root`` itself), that directly
    holds at least one ``feature_<k>`` mask (``.png`` / ``.tif``). This covers the layouts of
    the published data: ``HeLa_joint/set1``, sets stored straight in the cell-line folder
    (``BMDM``, ``MCF10A``) and the extra level of ``MCF10A_3T3_semantic/3T3/set1``. The other
    image files of the folder are its channels (see :attr:`DeepCellSet.channels`). Only file
    names are read.

    Parameters
    ----------
    root : str or PathLike
        The ``training_data`` folder, a cell-line folder, or one set folder.

    Returns
    -------
    sets : list of DeepCellSet
        Sorted by :attr:`DeepCellSet.name`.

    Raises
    ------
    CellscapeError
        ``root`` missing or not a folder, no set under it, or a set with two files for one
        channel or feature (e.g. ``feature_0.png`` and ``feature_0.tif``).
    """
    top = _check_folder(root)
    sets: list[DeepCellSet] = []
    for dirpath, dirnames, _ in os.walk(top):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        folder = Path(dirpath)
        rel = folder.relative_to(top).as_posix()
        found = _read_deepcell_folder(folder, top.name if rel == "." else rel)
        if found is not None:
            sets.append(found)
    if not sets:
        raise CellscapeError(top, "no DeepCell training sets (folders with feature_<k> masks)")
    return sorted(sets, key=lambda s: s.name)


def find_duplicate_sets(sets: Sequence[DeepCellSet]) -> list[tuple[str, ...]]:
    """Groups of sets that share a channel image with identical pixels.

    The DeepCell 2016 data reuse images between collections (``3T3/set1`` is also
    ``MCF10A_3T3_semantic/3T3/set1``, ``nuclei/set1`` is the nuclear channel of
    ``HeLa_joint/set1``, ...). Sets of one group must land on the same side of a train /
    validation split. This reads every channel image of every set (slow on the full data:
    seconds, not minutes).

    Returns
    -------
    groups : list of tuple of str
        Each group (two or more set names, sorted) once, sorted; sets without a twin are not
        listed. Sharing is transitive: A~B and B~C puts A, B, C in one group.
    """
    parent = {s.name: s.name for s in sets}

    def find(a: str) -> str:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    seen: dict[str, str] = {}
    for s in sets:
        for path in s.channels.values():
            data, _ = io.read_image(path)
            key = hashlib.sha256(
                str(data.shape).encode() + str(data.dtype).encode() + data.tobytes()
            ).hexdigest()
            if key in seen:
                a, b = find(seen[key]), find(s.name)
                if a != b:
                    parent[max(a, b)] = min(a, b)
            else:
                seen[key] = s.name
    groups: dict[str, list[str]] = {}
    for name in parent:
        groups.setdefault(find(name), []).append(name)
    return sorted(tuple(sorted(g)) for g in groups.values() if len(g) > 1)


def deepcell_instances(
    features: np.ndarray,
    *,
    edge: int = 0,
    interior: Sequence[int] | None = None,
    min_interior: int = 10,
    connectivity: int = 1,
) -> np.ndarray:
    """Instance labels from DeepCell edge / interior masks.

    Every connected piece of interior pixels (4-connected by default) of at least
    ``min_interior`` pixels seeds one cell; each interior class is labelled on its own, so
    touching cells of two cell types stay apart. A seeded watershed then grows the seeds
    through ``interior | edge`` (4-connected steps) over the distance to the nearest seed, so
    each edge pixel, and each dropped small interior piece, goes to the nearest cell it is
    connected to. A cell is its interior plus its edge; pixels not connected to any seed stay 0.

    The published masks hold interior specks of 1 to a few pixels that touch a real cell only
    diagonally or sit in its edge (artefacts of the drawing). The default ``min_interior=10``
    folds them into their neighbours: with it, the cell counts equal the number of ImageJ ROIs
    the authors shipped (``RoiSet.zip``) on every set that has one.

    Parameters
    ----------
    features : ndarray, shape (K, Y, X)
        Feature masks as returned by :meth:`DeepCellSet.load` (non-zero = in the class).
    edge : int
        Index of the edge mask along ``K``.
    interior : sequence of int, optional
        Indices of the interior masks; default every index but ``edge`` (1, or 1 and 2 for
        the two-cell-type sets).
    min_interior : int
        Smallest interior piece, in pixels, that seeds a cell; smaller pieces are grown over
        like edge pixels. ``1`` keeps every piece.
    connectivity : {1, 2}
        Connectivity of interior pieces: 1 (4-neighbours, default) or 2 (8-neighbours, joins
        pieces that touch only at a corner, and also cells that do).

    Returns
    -------
    labels : ndarray of int32, shape (Y, X)
        0 background, cells numbered 1..N in raster order of their first interior pixel
        within each interior class.
    """
    from scipy import ndimage as ndi
    from skimage.segmentation import watershed

    features = np.asarray(features)
    if features.ndim != 3:
        raise ValueError(f"features must be (K, Y, X), got shape {features.shape}")
    n = features.shape[0]
    if interior is None:
        interior = [k for k in range(n) if k != edge]
    if not interior:
        raise ValueError("need at least one interior mask")
    edge_mask = features[edge] > 0 if 0 <= edge < n else np.zeros(features.shape[1:], bool)
    markers = np.zeros(features.shape[1:], dtype=np.int32)
    if connectivity not in (1, 2):
        raise ValueError(f"connectivity must be 1 or 2, got {connectivity}")
    structure = ndi.generate_binary_structure(2, connectivity)
    inside = np.zeros(features.shape[1:], dtype=bool)
    next_id = 0
    for k in interior:
        in_k = features[k] > 0
        inside |= in_k
        lab, count = ndi.label(in_k, structure=structure)
        if count == 0:
            continue
        if min_interior > 1:
            sizes = np.bincount(lab.ravel())
            keep = sizes >= min_interior
            keep[0] = False
            new_ids = np.zeros(count + 1, dtype=np.int32)
            new_ids[keep] = np.arange(1, int(keep.sum()) + 1)
            lab, count = new_ids[lab], int(keep.sum())
        markers[lab > 0] = lab[lab > 0] + next_id
        next_id += count
    if next_id == 0:
        return markers
    cells = markers > 0
    distance = ndi.distance_transform_edt(~cells)
    labels = watershed(distance, markers, mask=inside | edge_mask, connectivity=1)
    return labels.astype(np.int32, copy=False)


# --------------------------------------------------------------------------------------------
# Cell Tracking Challenge
# --------------------------------------------------------------------------------------------

_CTC_FRAME_RE = re.compile(r"^t(\d+)\.tiff?$", re.IGNORECASE)
_CTC_SEG_RE = re.compile(r"^man_seg(\d+)\.tiff?$", re.IGNORECASE)
_CTC_TRA_RE = re.compile(r"^man_track(\d+)\.tiff?$", re.IGNORECASE)


def _indexed_files(folder: Path, pattern: re.Pattern) -> dict[int, Path]:
    found: dict[int, Path] = {}
    for p in _files(folder):
        m = pattern.match(p.name)
        if m is None:
            continue
        t = int(m.group(1))
        if t in found:
            raise CellscapeError(p, f"two files for time point {t} ({found[t].name} and {p.name})")
        found[t] = p
    return dict(sorted(found.items()))


def _stack(paths: Sequence[Path], labels: bool) -> np.ndarray:
    planes = []
    for p in paths:
        data = io.read_labels(p) if labels else io.read_image(p)[0]
        if planes and data.shape != planes[0].shape:
            raise CellscapeError(
                p, f"frame is {data.shape} but earlier frames are {planes[0].shape}"
            )
        planes.append(data)
    return np.stack(planes)


@dataclass(frozen=True)
class CTCSequence:
    """A Cell Tracking Challenge image sequence (``01/t000.tif`` ...), by path.

    Attributes
    ----------
    folder : Path
        The sequence folder (e.g. ``Fluo-N2DH-SIM+/01``).
    times : tuple of int
        Time indices of the frames, increasing (from the file names ``t<T>.tif``).
    frame_paths : tuple of Path
        One file per entry of ``times``.
    """

    folder: Path
    times: tuple[int, ...]
    frame_paths: tuple[Path, ...]

    def __len__(self) -> int:
        return len(self.frame_paths)

    def load_frame(self, t: int) -> tuple[np.ndarray, ImageMeta]:
        """Read the frame of time index ``t``: ``(Y, X)`` or ``(Z, Y, X)``, dtype as stored."""
        if t not in self.times:
            raise CellscapeError(self.folder, f"no frame for time point {t}")
        return io.read_image(self.frame_paths[self.times.index(t)])

    def load_frames(self, *, return_meta: bool = False):
        """Read every frame into one array, time first.

        Parameters
        ----------
        return_meta : bool
            Also return the first frame's :class:`ImageMeta` with ``"T"`` prepended to its
            axes (pixel size from the TIFF tags when present).

        Returns
        -------
        frames : ndarray, shape (T, Y, X) or (T, Z, Y, X)
            Dtype as stored (uint16 for Fluo-N2DH-SIM+), ``frames[i]`` is time ``times[i]``.
        meta : ImageMeta
            Only with ``return_meta=True``.

        Raises
        ------
        CellscapeError
            A frame is unreadable or its shape differs from the first frame's.
        """
        frames = _stack(self.frame_paths, labels=False)
        if not return_meta:
            return frames
        _, meta = io.read_image(self.frame_paths[0])
        return frames, meta.with_(axes="T" + meta.axes, source=str(self.folder))


def read_ctc_sequence(seq_dir: str | os.PathLike) -> CTCSequence:
    """List the frames of a Cell Tracking Challenge sequence folder.

    Parameters
    ----------
    seq_dir : str or PathLike
        A folder of ``t<T>.tif`` frames (``t000.tif``, ``t001.tif``, ..., any number of
        digits); other files are ignored. Only file names are read.

    Returns
    -------
    sequence : CTCSequence
        Frames sorted by time index (numerically, not by name).

    Raises
    ------
    CellscapeError
        Missing folder, no ``t<T>.tif`` frame, or two files for one time index.
    """
    folder = _check_folder(seq_dir)
    frames = _indexed_files(folder, _CTC_FRAME_RE)
    if not frames:
        raise CellscapeError(folder, "no t<T>.tif frames (not a Cell Tracking Challenge sequence)")
    return CTCSequence(folder, tuple(frames), tuple(frames.values()))


@dataclass(frozen=True)
class CTCGroundTruth:
    """The ground truth of a Cell Tracking Challenge sequence (``01_GT``), by path.

    Attributes
    ----------
    folder : Path
        The ``<seq>_GT`` folder.
    seg_paths : dict of int to Path
        Time index -> ``SEG/man_seg<T>.tif``: full segmentations of some frames only.
        (Single-slice annotations of 3-D data, ``man_seg_<T>_<Z>.tif``, are not listed.)
    tra_paths : dict of int to Path
        Time index -> ``TRA/man_track<T>.tif``: tracking markers of every frame; marker ids
        are the track labels of :attr:`tracks`.
    tracks : ndarray of int64, shape (N, 4)
        ``TRA/man_track.txt``: rows ``(label, begin, end, parent)``, see
        :func:`read_man_track`; ``(0, 4)`` when the set has no TRA folder.
    """

    folder: Path
    seg_paths: dict[int, Path]
    tra_paths: dict[int, Path]
    tracks: np.ndarray

    def load_seg(self) -> dict[int, np.ndarray]:
        """Read every SEG frame: time index -> int32 labels ``(Y, X)`` (or ``(Z, Y, X)``)."""
        return {t: io.read_labels(p) for t, p in self.seg_paths.items()}

    def load_tra(self) -> np.ndarray:
        """Read the TRA markers of all frames as int32 ``(T, Y, X)`` in time order.

        ``load_tra()[i]`` is time ``list(tra_paths)[i]`` (0..T-1 for complete ground truth).
        """
        if not self.tra_paths:
            raise CellscapeError(self.folder, "no TRA/man_track<T>.tif markers")
        return _stack(list(self.tra_paths.values()), labels=True)


def read_ctc_gt(gt_dir: str | os.PathLike) -> CTCGroundTruth:
    """List the SEG and TRA ground truth of a Cell Tracking Challenge ``<seq>_GT`` folder.

    Label images are listed, not read (see :meth:`CTCGroundTruth.load_seg`,
    :meth:`CTCGroundTruth.load_tra`); the small track table is read.

    Parameters
    ----------
    gt_dir : str or PathLike
        A folder with ``SEG/man_seg<T>.tif`` and / or ``TRA/man_track<T>.tif`` +
        ``TRA/man_track.txt``.

    Raises
    ------
    CellscapeError
        Missing folder, neither SEG nor TRA inside, TRA without ``man_track.txt`` or with a
        malformed one.
    """
    folder = _check_folder(gt_dir)
    seg_dir, tra_dir = folder / "SEG", folder / "TRA"
    seg = _indexed_files(seg_dir, _CTC_SEG_RE) if seg_dir.is_dir() else {}
    tra: dict[int, Path] = {}
    tracks = np.zeros((0, 4), dtype=np.int64)
    if tra_dir.is_dir():
        tra = _indexed_files(tra_dir, _CTC_TRA_RE)
        tracks = read_man_track(tra_dir / "man_track.txt")
    if not seg and not tra:
        raise CellscapeError(folder, "no SEG/man_seg<T>.tif or TRA/man_track<T>.tif ground truth")
    return CTCGroundTruth(folder, seg, tra, tracks)


def _track_problem(table: np.ndarray) -> tuple[int, str] | None:
    """First problem of a track table as (row index, message), or None."""
    labels = table[:, 0]
    ends = {}
    for i, (label, begin, end, parent) in enumerate(table.tolist()):
        if label <= 0:
            return i, f"track label must be positive, got {label}"
        if begin < 0 or end < begin:
            return i, f"track {label} has begin {begin} and end {end} (need 0 <= begin <= end)"
        if parent < 0 or parent == label:
            return i, f"track {label} has an invalid parent {parent}"
        if label in ends:
            return i, f"track {label} is listed twice"
        ends[label] = end
    known = dict(zip(labels.tolist(), table[:, 2].tolist(), strict=True))
    for i, (label, begin, _, parent) in enumerate(table.tolist()):
        if parent == 0:
            continue
        if parent not in known:
            return i, f"track {label} has parent {parent}, which is not a track"
        if known[parent] >= begin:
            return i, f"track {label} begins at {begin}, before its parent {parent} ends"
    return None


def read_man_track(path: str | os.PathLike) -> np.ndarray:
    """Read a Cell Tracking Challenge track table (``man_track.txt`` / ``res_track.txt``).

    Each line is ``L B E P``: track label ``L`` (the marker id in the label images), first
    and last frame ``B`` and ``E``, and parent label ``P`` (0 for none). Blank lines are
    ignored.

    Returns
    -------
    tracks : ndarray of int64, shape (N, 4)
        Rows ``(label, begin, end, parent)`` in file order; ``(0, 4)`` for an empty file.

    Raises
    ------
    CellscapeError
        Missing or unreadable file, or a malformed line: not four integers, a label that is
        not positive or repeated, ``end < begin``, a parent that is not a track of the table
        or that ends at or after the child's begin. The message names the file and line.
    """
    p = Path(path)
    if not p.exists():
        raise CellscapeError(p, "file not found")
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CellscapeError(p, f"cannot read track table ({exc})") from None
    rows: list[list[int]] = []
    line_numbers: list[int] = []
    for number, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        try:
            if len(fields) != 4:
                raise ValueError
            rows.append([int(f) for f in fields])
        except ValueError:
            shown = line.strip()[:60]
            raise CellscapeError(
                p, f"line {number}: expected 4 integers 'L B E P', got '{shown}'"
            ) from None
        line_numbers.append(number)
    table = np.array(rows, dtype=np.int64).reshape(-1, 4)
    problem = _track_problem(table)
    if problem is not None:
        raise CellscapeError(p, f"line {line_numbers[problem[0]]}: {problem[1]}")
    return table


def write_res_track(path: str | os.PathLike, table: np.ndarray) -> Path:
    """Write a track table in the challenge's ``L B E P`` text format, atomically.

    Parameters
    ----------
    path : str or PathLike
        Target file, usually ``<seq>_RES/res_track.txt``.
    table : array_like of int, shape (N, 4)
        Rows ``(label, begin, end, parent)``, checked as :func:`read_man_track` checks a file.

    Returns
    -------
    path : Path

    Raises
    ------
    ValueError
        The table is not ``(N, 4)`` integers or breaks the rules of the format.
    CellscapeError
        The target folder cannot be created or written to.
    """
    arr = np.asarray(table)
    if arr.size == 0:
        arr = arr.reshape(0, 4)
    if arr.ndim != 2 or arr.shape[1] != 4:
        raise ValueError(f"track table must have shape (N, 4), got {arr.shape}")
    if arr.dtype.kind not in "iu":
        if arr.dtype.kind != "f" or not np.all(arr == np.round(arr)):
            raise ValueError(f"track table must hold integers, got {arr.dtype}")
    arr = arr.astype(np.int64)
    problem = _track_problem(arr)
    if problem is not None:
        raise ValueError(f"row {problem[0]}: {problem[1]}")
    text = "".join(f"{a} {b} {c} {d}\n" for a, b, c, d in arr.tolist())
    with io.atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)
