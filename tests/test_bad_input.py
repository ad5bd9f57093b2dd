"""Bad input: one clear line naming the file, a non-zero exit, nothing half-written, and the
other files of the batch still processed."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
from typer.testing import CliRunner

from cellscape import io
from cellscape.cli import app
from cellscape.errors import CellscapeError

runner = CliRunner()


def _good(tmp_path, disks, name="good.tif"):
    io.write_tiff(tmp_path / name, disks[0])
    return tmp_path / name


@pytest.mark.parametrize(
    "name, make, problem",
    [
        ("missing.tif", None, "file not found"),
        ("garbage.tif", lambda p: p.write_bytes(b"not an image at all"), "cannot read TIFF"),
        ("garbage.png", lambda p: p.write_bytes(b"\x89PNG\r\n\x1a\n broken"), "cannot read image"),
        ("empty.tif", lambda p: p.write_bytes(b""), "cannot read TIFF"),
        ("nan.tif", lambda p: tifffile.imwrite(p, np.full((8, 8), np.nan, np.float32)), "NaN"),
        ("inf.tif", lambda p: tifffile.imwrite(p, np.full((8, 8), np.inf, np.float32)), "infinite"),
        ("complex.tif", lambda p: tifffile.imwrite(p, np.ones((8, 8), np.complex64)), "pixel type"),
        ("notes.txt", lambda p: p.write_text("hello"), "unsupported file type"),
    ],
)
def test_unreadable_inputs_raise_one_line_naming_the_file(tmp_path, name, make, problem):
    path = tmp_path / name
    if make is not None:
        make(path)
    with pytest.raises(CellscapeError) as info:
        io.read_image(path)
    message = info.value.message
    assert str(path) in message and problem in message
    assert "\n" not in message


def test_truncated_tiff_is_refused(tmp_path, disks):
    path = _good(tmp_path, disks)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CellscapeError, match="good.tif"):
        io.read_image(path)


def test_empty_array_is_refused(tmp_path):
    tifffile.imwrite(tmp_path / "zero.tif", np.zeros((0, 5), np.uint8))
    with pytest.raises(CellscapeError, match="zero.tif"):
        io.read_image(tmp_path / "zero.tif")


def test_batch_goes_on_after_bad_files_and_reports_them(tmp_path, disks):
    inputs = tmp_path / "in"
    inputs.mkdir()
    _good(inputs, disks, "a.tif")
    (inputs / "broken.tif").write_bytes(b"II*\x00garbage")
    tifffile.imwrite(inputs / "nan.tif", np.full((8, 8), np.nan, np.float32))
    tifffile.imwrite(
        inputs / "stack.tif", np.zeros((2, 3, 8, 8), np.uint8), photometric="minisblack"
    )  # 4-D
    _good(inputs, disks, "z.tif")
    out = tmp_path / "out"
    result = runner.invoke(app, ["segment", str(inputs), "--out", str(out)])
    assert result.exit_code == 1
    text = result.output
    assert "2 of 5 images segmented" in text
    for name in ("broken.tif", "nan.tif", "stack.tif"):
        assert f"FAILED {inputs / name}" in text
    assert "Traceback" not in text
    # outputs for the good files only, and no temporary leftovers
    assert sorted(p.name for p in out.iterdir()) == ["a_masks.tif", "z_masks.tif"]


def test_unwritable_output_folder_is_one_line_and_exit_2(tmp_path, disks):
    good = _good(tmp_path, disks)
    blocker = tmp_path / "file_not_folder"
    blocker.write_text("x")
    result = runner.invoke(app, ["segment", str(good), "--out", str(blocker)])
    assert result.exit_code == 2
    assert str(blocker) in result.output and "not a folder" in result.output
    assert "Traceback" not in result.output


def test_unknown_model_and_no_input_are_one_line_errors(tmp_path, disks):
    good = _good(tmp_path, disks)
    result = runner.invoke(app, ["segment", str(good), "--model", "no-such-model"])
    assert result.exit_code == 2 and "unknown model 'no-such-model'" in result.output
    result = runner.invoke(app, ["segment"])
    assert result.exit_code == 2 and "no input images" in result.output


def test_label_validation():
    with pytest.raises(CellscapeError, match="negative"):
        io.validate_labels(np.array([[0, -1]]))
    with pytest.raises(CellscapeError, match="non-integer"):
        io.validate_labels(np.array([[0.5, 1.0]]))
    assert io.validate_labels(np.array([[0.0, 3.0]])).dtype == np.int32
