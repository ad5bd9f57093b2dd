"""Round trips through every file format cellscape reads and writes."""

from __future__ import annotations

import os
import zipfile

import numpy as np
import pytest
import tifffile

from cellscape import io
from cellscape.io import ImageMeta


def test_tiff_round_trip_keeps_pixels(tmp_path, disks):
    image, _ = disks
    io.write_tiff(tmp_path / "a.tif", image)
    back, meta = io.read_image(tmp_path / "a.tif")
    assert back.dtype == image.dtype
    np.testing.assert_array_equal(back, image)
    assert meta.axes == "YX"
    assert meta.source == str(tmp_path / "a.tif")


def test_ome_tiff_round_trip_keeps_pixel_size_channels_and_z(tmp_path):
    rng = np.random.default_rng(1)
    stack = rng.integers(0, 4000, size=(2, 5, 20, 30), dtype=np.uint16)
    meta = ImageMeta(axes="CZYX", pixel_size=0.325, z_step=0.1, channel_names=("dapi", "gfp"))
    io.write_tiff(tmp_path / "s.ome.tif", stack, meta)
    back, got = io.read_image(tmp_path / "s.ome.tif")
    np.testing.assert_array_equal(back, stack)
    assert got.axes == "CZYX"
    assert got.pixel_size == pytest.approx(0.325)
    assert got.z_step == pytest.approx(0.1)
    assert got.channel_names == ("dapi", "gfp")


def test_imagej_tiff_pixel_size_is_read(tmp_path):
    data = np.zeros((3, 10, 12), dtype=np.uint8)
    tifffile.imwrite(
        tmp_path / "ij.tif",
        data,
        imagej=True,
        resolution=(1 / 0.65, 1 / 0.65),
        metadata={"axes": "ZYX", "spacing": 2.0, "unit": "micron"},
    )
    back, meta = io.read_image(tmp_path / "ij.tif")
    assert back.shape == (3, 10, 12)
    assert meta.axes == "ZYX"
    assert meta.pixel_size == pytest.approx(0.65, rel=1e-4)
    assert meta.z_step == pytest.approx(2.0)


def test_png_grey_and_rgb_round_trip(tmp_path):
    rng = np.random.default_rng(2)
    rgb = rng.integers(0, 255, size=(12, 16, 3), dtype=np.uint8)
    io.write_png(tmp_path / "c.png", rgb)
    back, meta = io.read_image(tmp_path / "c.png")
    assert meta.rgb and meta.axes == "CYX"
    np.testing.assert_array_equal(back, np.moveaxis(rgb, -1, 0))
    grey = rgb[..., 0]
    io.write_png(tmp_path / "g.png", grey)
    back, meta = io.read_image(tmp_path / "g.png")
    assert meta.axes == "YX" and not meta.rgb
    np.testing.assert_array_equal(back, grey)


def test_rgba_png_drops_alpha(tmp_path):
    rgba = np.full((5, 6, 4), 7, dtype=np.uint8)
    rgba[..., 3] = 255
    io.write_png(tmp_path / "a.png", rgba)
    back, meta = io.read_image(tmp_path / "a.png")
    assert back.shape == (3, 5, 6) and meta.rgb


def test_ome_zarr_round_trip_with_labels(tmp_path, disks):
    image, labels = disks
    stack = np.stack([image, image // 2])
    meta = ImageMeta(axes="CYX", pixel_size=0.5, channel_names=("nuclei", "cyto"))
    io.write_ome_zarr(tmp_path / "x.ome.zarr", stack, meta, labels={"cells": labels})
    back, got = io.read_image(tmp_path / "x.ome.zarr")
    np.testing.assert_array_equal(back, stack)
    assert got.pixel_size == pytest.approx(0.5)
    assert got.channel_names == ("nuclei", "cyto")
    np.testing.assert_array_equal(io.read_ome_zarr_labels(tmp_path / "x.ome.zarr"), labels)
    assert io.is_ome_zarr(tmp_path / "x.ome.zarr")


def test_labels_written_as_uint16_masks_tif(tmp_path, disks):
    _, labels = disks
    io.write_labels(tmp_path / "m_masks.tif", labels)
    raw = tifffile.imread(tmp_path / "m_masks.tif")
    assert raw.dtype == np.uint16
    np.testing.assert_array_equal(io.read_labels(tmp_path / "m_masks.tif"), labels)


@pytest.mark.parametrize("planes", [3, 4])
def test_label_stacks_of_three_or_four_planes_are_not_taken_for_colour(tmp_path, planes):
    stack = np.arange(planes * 6 * 7, dtype=np.int32).reshape(planes, 6, 7) % 5
    io.write_labels(tmp_path / "t_masks.tif", stack)
    np.testing.assert_array_equal(io.read_labels(tmp_path / "t_masks.tif"), stack)


def test_rgb_meta_writes_a_colour_tiff(tmp_path):
    rgb = np.random.default_rng(3).integers(0, 255, (3, 9, 11), dtype=np.uint8)
    io.write_tiff(tmp_path / "c.tif", rgb, ImageMeta(axes="CYX", rgb=True))
    back, meta = io.read_image(tmp_path / "c.tif")
    assert meta.rgb
    np.testing.assert_array_equal(back, rgb)


def test_many_labels_use_uint32(tmp_path):
    labels = np.arange(70000, dtype=np.int64).reshape(280, 250)
    io.write_labels(tmp_path / "big_masks.tif", labels)
    assert tifffile.imread(tmp_path / "big_masks.tif").dtype == np.uint32
    np.testing.assert_array_equal(io.read_labels(tmp_path / "big_masks.tif"), labels)


def test_roi_zip_round_trip_is_exact(tmp_path, disks):
    _, labels = disks
    labels = labels.copy()
    labels[50:60, 5:9] = 7  # a rectangle with a non-consecutive id
    labels[2, 70] = 9  # a single pixel
    io.write_rois(tmp_path / "r.zip", labels)
    with zipfile.ZipFile(tmp_path / "r.zip") as z:
        assert len(z.namelist()) == 5
    back = io.read_rois(tmp_path / "r.zip", labels.shape)
    # ids are renumbered in file order, but every cell comes back pixel for pixel
    assert len(np.unique(back)) == len(np.unique(labels))
    for cell in np.unique(labels)[1:]:
        pieces = np.unique(back[labels == cell])
        assert len(pieces) == 1 and pieces[0] > 0
        np.testing.assert_array_equal(back == pieces[0], labels == cell)


def test_roi_zip_of_empty_labels_is_a_valid_empty_zip(tmp_path):
    io.write_rois(tmp_path / "e.zip", np.zeros((5, 5), dtype=np.int32))
    with zipfile.ZipFile(tmp_path / "e.zip") as z:
        assert z.namelist() == []


def test_atomic_write_leaves_target_untouched_on_failure(tmp_path):
    target = tmp_path / "keep.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError), io.atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt"]


def test_written_files_are_readable_by_others(tmp_path, disks):
    io.write_labels(tmp_path / "m_masks.tif", disks[1])
    umask = os.umask(0)
    os.umask(umask)
    # temporary files are created 0600; the renamed output must get the usual permissions
    assert os.stat(tmp_path / "m_masks.tif").st_mode & 0o777 == 0o666 & ~umask


def test_expand_inputs_folders_globs_and_masks(tmp_path, disks):
    image, labels = disks
    io.write_tiff(tmp_path / "a.tif", image)
    io.write_tiff(tmp_path / "b_img.tif", image)
    io.write_labels(tmp_path / "b_masks.tif", labels)
    (tmp_path / "notes.txt").write_text("x")
    found = io.expand_inputs([tmp_path])
    assert [p.name for p in found] == ["a.tif", "b_img.tif"]
    assert [p.name for p in io.expand_inputs([str(tmp_path / "b*")])] == ["b_img.tif"]
    assert io.expand_inputs([tmp_path / "nothing.tif"]) == [tmp_path / "nothing.tif"]
    assert io.image_stem(tmp_path / "b_img.tif") == "b"
    assert io.image_stem("x/cells.ome.tif") == "cells"
