"""`facecascade.io.load_image` for every input type and every bad input, and `image_files`.

Every file is generated into ``tmp_path`` with Pillow/numpy.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from facecascade.io import IMAGE_EXTENSIONS, image_files, load_image


def _check(out: np.ndarray, h: int, w: int) -> np.ndarray:
    assert isinstance(out, np.ndarray)
    assert out.dtype == np.uint8
    assert out.shape == (h, w, 3)
    assert out.flags["C_CONTIGUOUS"]
    return out


def _blocks(h: int = 32, w: int = 48) -> np.ndarray:
    """Flat 16x16 colour blocks: JPEG reproduces them within a few levels."""
    colours = np.array(
        [[200, 30, 60], [20, 180, 90], [40, 60, 220], [250, 250, 250], [0, 0, 0], [128, 128, 0]], np.uint8
    )
    out = np.zeros((h, w, 3), np.uint8)
    for by in range(h // 16):
        for bx in range(w // 16):
            out[by * 16 : (by + 1) * 16, bx * 16 : (bx + 1) * 16] = colours[(by * (w // 16) + bx) % len(colours)]
    return out


# -- files -------------------------------------------------------------------------------------


@pytest.mark.parametrize("as_str", [True, False])
def test_png_rgb_is_exact(write_image, rgb_array, as_str):
    path = write_image("rgb.png", rgb_array)
    out = _check(load_image(str(path) if as_str else path), 12, 17)
    np.testing.assert_array_equal(out, rgb_array)


def test_jpeg_rgb(write_image):
    src = _blocks()
    path = write_image("rgb.jpg", src, quality=95)
    out = _check(load_image(path), 32, 48)
    with Image.open(path) as img:
        np.testing.assert_array_equal(out, np.asarray(img.convert("RGB")))
    # JPEG blurs block edges (chroma subsampling); block centres keep colour and channel order
    assert np.abs(out[4:12, 4:12].astype(int) - src[4:12, 4:12]).max() <= 12
    np.testing.assert_allclose(out[8, 8], [200, 30, 60], atol=8)
    np.testing.assert_allclose(out[8, 40], [40, 60, 220], atol=8)
    assert np.abs(out.astype(int) - src).mean() < 6


def test_path_ignores_bgr(write_image, rgb_array):
    path = write_image("rgb.png", rgb_array)
    np.testing.assert_array_equal(load_image(path, bgr=True), rgb_array)


def test_grayscale_png(write_image, rng):
    gray = rng.integers(0, 256, (9, 14), dtype=np.uint8)
    path = write_image("gray.png", Image.fromarray(gray, "L"))
    out = _check(load_image(path), 9, 14)
    for c in range(3):
        np.testing.assert_array_equal(out[..., c], gray)


def test_rgba_png_drops_alpha(write_image, rgb_array, rng):
    alpha = rng.integers(0, 256, rgb_array.shape[:2], dtype=np.uint8)
    alpha[0, :] = 0  # fully transparent pixels keep their colour too
    path = write_image("rgba.png", np.dstack([rgb_array, alpha]))
    out = _check(load_image(path), 12, 17)
    np.testing.assert_array_equal(out, rgb_array)


def test_palette_png_with_transparency(write_image):
    img = Image.new("P", (5, 4), 0)
    img.putpalette([10, 20, 30, 200, 100, 50, 7, 8, 9] + [0] * (256 * 3 - 9))
    img.putpixel((0, 0), 1)
    img.putpixel((4, 3), 2)
    path = write_image("pal.png", img, transparency=0)
    with Image.open(path) as check:
        assert check.mode == "P" and "transparency" in check.info
    out = _check(load_image(path), 4, 5)
    expected = np.tile(np.array([10, 20, 30], np.uint8), (4, 5, 1))
    expected[0, 0] = (200, 100, 50)
    expected[3, 4] = (7, 8, 9)
    np.testing.assert_array_equal(out, expected)


def test_16bit_png_is_scaled_by_257(write_image, rng):
    deep = rng.integers(0, 65536, (6, 11), dtype=np.uint16)
    deep[0, :4] = [0, 65535, 257 * 100, 128]
    img = Image.fromarray(deep)
    assert img.mode == "I;16"
    path = write_image("deep.png", img)
    out = _check(load_image(path), 6, 11)
    expected = np.round(deep / 257.0).astype(np.uint8)
    for c in range(3):
        np.testing.assert_array_equal(out[..., c], expected)
    np.testing.assert_array_equal(out[0, :4, 0], [0, 255, 100, 0])


def test_cmyk_jpeg(write_image):
    img = Image.new("CMYK", (16, 16), (0, 0, 0, 0))  # white
    img.paste((255, 0, 0, 0), (0, 0, 8, 16))  # full cyan on the left half
    path = write_image("cmyk.jpg", img, quality=100)
    with Image.open(path) as check:
        assert check.mode == "CMYK"
    out = _check(load_image(path), 16, 16)
    np.testing.assert_allclose(out[8, 2], [0, 255, 255], atol=4)
    np.testing.assert_allclose(out[8, 13], [255, 255, 255], atol=4)


def test_animated_gif_gives_first_frame(write_image):
    frames = [Image.new("RGB", (8, 6), c) for c in [(255, 0, 0), (0, 0, 255), (0, 255, 0)]]
    path = write_image("anim.gif", frames[0], save_all=True, append_images=frames[1:], duration=50, loop=0)
    with Image.open(path) as check:
        assert check.n_frames == 3
    out = _check(load_image(path), 6, 8)
    assert (out == np.array([255, 0, 0], np.uint8)).all()


def test_exif_orientation_is_applied(write_image):
    stored = np.zeros((20, 40, 3), np.uint8)  # 40 wide, 20 tall as stored
    stored[:6, :6] = (255, 0, 0)  # red marker in the stored top-left corner
    img = Image.fromarray(stored)
    exif = img.getexif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    path = write_image("rot.jpg", img, exif=exif, quality=95)
    out = _check(load_image(path), 40, 20)  # displayed: 20 wide, 40 tall
    # rotating clockwise moves the stored top-left corner to the displayed top-right corner
    assert out[1, -2, 0] > 200 and out[1, -2, 1:].max() < 50
    assert out[1, 1].max() < 50 and out[-2, -2].max() < 50 and out[-2, 1].max() < 50


def test_float_tiff(write_image):
    f = np.array([[0.0, 0.5], [0.2, 1.0]], np.float32)
    path = write_image("float.tif", Image.fromarray(f, "F"))
    out = _check(load_image(path), 2, 2)
    for c in range(3):
        np.testing.assert_array_equal(out[..., c], [[0, 128], [51, 255]])


def test_one_pixel_image(write_image):
    path = write_image("one.png", np.array([[[1, 2, 3]]], np.uint8))
    out = _check(load_image(path), 1, 1)
    np.testing.assert_array_equal(out[0, 0], [1, 2, 3])


# -- bad files ---------------------------------------------------------------------------------


def _jpeg_bytes(tmp_path: Path, rng: np.random.Generator) -> bytes:
    path = tmp_path / "source.jpg"
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(path, quality=90)
    return path.read_bytes()


@pytest.mark.parametrize("kind", ["empty", "truncated", "text"])
def test_undecodable_files_raise_value_error_naming_path(tmp_path, rng, kind):
    path = tmp_path / f"bad_{kind}.jpg"
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "truncated":
        data = _jpeg_bytes(tmp_path, rng)
        path.write_bytes(data[: len(data) // 2])
    else:
        path.write_text("this is not an image\n")
    with pytest.raises(ValueError) as info:
        load_image(path)
    assert str(path) in str(info.value)


def test_truncated_pil_image_raises_value_error(tmp_path, rng):
    data = _jpeg_bytes(tmp_path, rng)
    path = tmp_path / "trunc.jpg"
    path.write_bytes(data[: len(data) // 2])
    with Image.open(path) as img, pytest.raises(ValueError):  # opening is lazy; decoding fails
        load_image(img)


def test_folder_raises_value_error(tmp_path):
    folder = tmp_path / "photos.jpg"
    folder.mkdir()
    with pytest.raises(ValueError) as info:
        load_image(folder)
    assert str(folder) in str(info.value)


def test_missing_file_raises_file_not_found_naming_path(tmp_path):
    path = tmp_path / "nope" / "missing.jpg"
    with pytest.raises(FileNotFoundError) as info:
        load_image(path)
    assert str(path) in str(info.value)
    with pytest.raises(FileNotFoundError):
        load_image(str(path))


def test_unreadable_file(write_image, rgb_array):
    path = write_image("locked.png", rgb_array)
    os.chmod(path, 0)
    try:
        try:
            with open(path, "rb"):
                readable = True
        except PermissionError:
            readable = False
        assert readable == os.access(path, os.R_OK)
        if readable:  # root: permissions are not enforced, so the image must load correctly
            np.testing.assert_array_equal(_check(load_image(path), 12, 17), rgb_array)
        else:
            with pytest.raises(ValueError) as info:
                load_image(path)
            assert str(path) in str(info.value)
    finally:
        os.chmod(path, 0o644)


# -- PIL images --------------------------------------------------------------------------------


def test_pil_modes(rgb_array):
    rgb = Image.fromarray(rgb_array)
    np.testing.assert_array_equal(load_image(rgb), rgb_array)
    np.testing.assert_array_equal(load_image(rgb, bgr=True), rgb_array)  # bgr ignored for PIL
    gray = np.asarray(rgb.convert("L"))
    for mode in ("L", "LA"):
        out = _check(load_image(rgb.convert(mode)), 12, 17)
        np.testing.assert_array_equal(out, np.repeat(gray[..., None], 3, axis=2))
    np.testing.assert_array_equal(load_image(rgb.convert("RGBA")), rgb_array)
    bilevel = _check(load_image(rgb.convert("1")), 12, 17)
    assert set(np.unique(bilevel)) <= {0, 255}


def test_pil_float_mode():
    f = np.array([[0.0, 0.5, 1.0], [0.2, 0.4, 0.6]], np.float32)
    out = _check(load_image(Image.fromarray(f, "F")), 2, 3)
    for c in range(3):
        np.testing.assert_array_equal(out[..., c], [[0, 128, 255], [51, 102, 153]])
    with pytest.raises(ValueError):
        load_image(Image.fromarray(f * 255, "F"))


def test_pil_32bit_integer_mode():
    # mode "I" holding 8-bit values (e.g. Image.convert("I") of a grey image): kept as they are
    grey = Image.fromarray(np.array([[0, 10, 127, 255]], np.uint8), "L")
    out = _check(load_image(grey.convert("I")), 1, 4)
    np.testing.assert_array_equal(out[0, :, 2], [0, 10, 127, 255])
    # values beyond 16 bits clip to white, negatives to black, the rest scale by 1/257
    i32 = np.array([[0, 257 * 10, 65535 * 40, -5]], np.int32)
    out = _check(load_image(Image.fromarray(i32, "I")), 1, 4)
    np.testing.assert_array_equal(out[0, :, 0], [0, 10, 255, 0])
    # a 32-bit image whose values all fit 16 bits is taken as 16-bit data: scaled by 1/257
    i16 = np.array([[0, 257 * 3, 65535]], np.int32)
    out = _check(load_image(Image.fromarray(i16, "I")), 1, 3)
    np.testing.assert_array_equal(out[0, :, 1], [0, 3, 255])


# -- numpy arrays ------------------------------------------------------------------------------


def test_uint8_hwc_unchanged(rgb_array):
    out = _check(load_image(rgb_array), 12, 17)
    np.testing.assert_array_equal(out, rgb_array)


@pytest.mark.parametrize("shape", [(12, 17), (12, 17, 1)])
def test_gray_arrays_are_repeated(rng, shape):
    gray = rng.integers(0, 256, shape, dtype=np.uint8)
    out = _check(load_image(gray), 12, 17)
    for c in range(3):
        np.testing.assert_array_equal(out[..., c], gray.reshape(12, 17))
    np.testing.assert_array_equal(load_image(gray, bgr=True), out)  # grey has no channel order


def test_rgba_array_drops_alpha(rgb_array):
    rgba = np.dstack([rgb_array, np.full(rgb_array.shape[:2], 7, np.uint8)])
    np.testing.assert_array_equal(_check(load_image(rgba), 12, 17), rgb_array)


def test_non_contiguous_array(rgb_array):
    view = rgb_array[::2, ::3]
    out = _check(load_image(view), 6, 6)
    np.testing.assert_array_equal(out, view)


def test_uint16_array():
    a = np.array([[0, 128, 129, 257 * 100, 65535]], np.uint16)
    out = _check(load_image(a), 1, 5)
    np.testing.assert_array_equal(out[0, :, 0], [0, 0, 1, 100, 255])


def test_float_array_in_unit_range():
    a = np.array([[0.0, 0.2, 0.5, 1.0, 1.0004, -0.0004]], np.float64)
    out = _check(load_image(a), 1, 6)
    np.testing.assert_array_equal(out[0, :, 2], [0, 51, 128, 255, 255, 0])
    out32 = load_image(np.full((2, 2, 3), 0.2, np.float32))
    assert (out32 == 51).all()


@pytest.mark.parametrize("value", [255.0, 1.5, -0.5, np.nan, np.inf, -np.inf])
def test_float_array_out_of_range_raises(value):
    a = np.zeros((4, 5, 3), np.float32)
    a[1, 2, 0] = value
    with pytest.raises(ValueError):
        load_image(a)


def test_float_0_255_message_suggests_uint8():
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        load_image(np.full((3, 3, 3), 200.0))


def test_bool_array():
    a = np.array([[True, False], [False, True]])
    out = _check(load_image(a), 2, 2)
    np.testing.assert_array_equal(out[..., 0], [[255, 0], [0, 255]])


@pytest.mark.parametrize("shape", [(2, 3, 4, 3), (7,), (4, 5, 2), (4, 5, 5), (1, 1, 1, 1, 1)])
def test_bad_array_shapes_raise(shape):
    with pytest.raises(ValueError) as info:
        load_image(np.zeros(shape, np.uint8))
    assert str(shape) in str(info.value)  # the message names the input


@pytest.mark.parametrize("shape", [(0, 5, 3), (5, 0), (0,), (0, 0, 3)])
def test_empty_array_raises(shape):
    with pytest.raises(ValueError):
        load_image(np.zeros(shape, np.uint8))


@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.int8, np.complex64, np.uint32, object])
def test_unsupported_dtype_raises(dtype):
    with pytest.raises(ValueError) as info:
        load_image(np.zeros((4, 5, 3), dtype))
    assert "dtype" in str(info.value)


@pytest.mark.parametrize("bad", [None, [[1, 2], [3, 4]], 3.0, b"bytes"])
def test_unsupported_input_type_raises(bad):
    with pytest.raises(ValueError):
        load_image(bad)


def test_bgr_array_is_reversed(rgb_array):
    bgr = np.ascontiguousarray(rgb_array[..., ::-1])
    out = _check(load_image(bgr, bgr=True), 12, 17)
    np.testing.assert_array_equal(out, rgb_array)
    np.testing.assert_array_equal(load_image(bgr), bgr)  # default: RGB, nothing reversed
    bgra = np.dstack([bgr, np.zeros(bgr.shape[:2], np.uint8)])
    np.testing.assert_array_equal(load_image(bgra, bgr=True), rgb_array)
    bgr_float = bgr.astype(np.float32) / 255
    np.testing.assert_array_equal(load_image(bgr_float, bgr=True), rgb_array)


# -- torch tensors -----------------------------------------------------------------------------


def test_tensor_chw_uint8(rgb_array):
    t = torch.from_numpy(rgb_array).permute(2, 0, 1)
    np.testing.assert_array_equal(_check(load_image(t), 12, 17), rgb_array)


def test_tensor_chw_float(rgb_array):
    t = torch.from_numpy(rgb_array).permute(2, 0, 1).float() / 255
    t.requires_grad_(True)
    np.testing.assert_array_equal(_check(load_image(t), 12, 17), rgb_array)


def test_tensor_hwc_and_gray(rgb_array):
    t = torch.from_numpy(rgb_array)  # (12, 17, 3): unambiguous HWC
    np.testing.assert_array_equal(_check(load_image(t), 12, 17), rgb_array)
    gray = torch.from_numpy(rgb_array[..., 0].copy())
    for g in (gray, gray[None]):  # (H, W) and (1, H, W)
        out = _check(load_image(g), 12, 17)
        np.testing.assert_array_equal(out[..., 2], rgb_array[..., 0])


def test_tensor_ambiguous_layout_is_chw():
    chw = torch.arange(3 * 5 * 3, dtype=torch.uint8).reshape(3, 5, 3)  # (C=3, H=5, W=3)
    out = _check(load_image(chw), 5, 3)
    np.testing.assert_array_equal(out, chw.permute(1, 2, 0).numpy())


def test_tensor_bgr_is_reversed(rgb_array):
    bgr = torch.from_numpy(rgb_array[..., ::-1].copy()).permute(2, 0, 1)
    np.testing.assert_array_equal(load_image(bgr, bgr=True), rgb_array)
    np.testing.assert_array_equal(load_image(bgr.float() / 255, bgr=True), rgb_array)


@pytest.mark.parametrize("shape", [(1, 3, 4, 5), (7,)])
def test_tensor_bad_rank_raises(shape):
    with pytest.raises(ValueError):
        load_image(torch.zeros(shape, dtype=torch.uint8))


def test_tensor_bad_values_raise():
    with pytest.raises(ValueError):
        load_image(torch.full((3, 4, 5), 2.0))
    with pytest.raises(ValueError):
        load_image(torch.full((3, 4, 5), float("nan")))
    with pytest.raises(ValueError):
        load_image(torch.zeros((3, 4, 5), dtype=torch.int64))
    with pytest.raises(ValueError):
        load_image(torch.zeros((3, 0, 5), dtype=torch.uint8))


# -- image_files -------------------------------------------------------------------------------


def test_image_files_recursive_sorted(tmp_path, write_image):
    tiny = np.zeros((2, 2, 3), np.uint8)
    for name in ("b.jpg", "a.PNG", "sub/c.webp", "sub/deeper/d.JPEG", "z/e.bmp", "sub/f.gif"):
        write_image(name, tiny)
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "a.jpg.bak").write_text("x")
    (tmp_path / "sub" / "model.pt").write_bytes(b"x")
    (tmp_path / "noext").write_bytes(b"x")
    (tmp_path / "folder.jpg").mkdir()  # a folder is not an image file
    found = image_files(tmp_path)
    rel = [p.relative_to(tmp_path).as_posix() for p in found]
    assert rel == ["a.PNG", "b.jpg", "sub/c.webp", "sub/deeper/d.JPEG", "sub/f.gif", "z/e.bmp"]
    assert all(isinstance(p, Path) for p in found)
    assert found == sorted(found)
    top = image_files(str(tmp_path), recursive=False)
    assert [p.name for p in top] == ["a.PNG", "b.jpg"]


def test_image_files_empty_folder(tmp_path):
    assert image_files(tmp_path) == []


def test_image_extensions_cover_common_formats():
    assert {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".gif", ".tif", ".tiff"} <= IMAGE_EXTENSIONS
    assert all(e == e.lower() and e.startswith(".") for e in IMAGE_EXTENSIONS)
