"""`load_image`: every supported input becomes one RGB ``uint8`` array ``(H, W, 3)``.

Accepted inputs and what happens to them:

* a path (``str`` / ``os.PathLike``): decoded with Pillow, EXIF orientation applied (so boxes are in
  the orientation a viewer shows), first frame of animations;
* a ``PIL.Image``: any mode (``L``, ``LA``, ``P``, ``RGBA``, ``CMYK``, ``I;16``, ``I``, ``F`` ...);
* a ``numpy.ndarray``: ``(H, W)``, ``(H, W, 1)``, ``(H, W, 3)`` or ``(H, W, 4)``; ``uint8``,
  ``uint16`` (scaled by 1/257), ``bool``, or float in [0, 1];
* a ``torch.Tensor``: ``(C, H, W)`` as torchvision uses (or ``(H, W, C)`` when unambiguous),
  ``uint8`` or float in [0, 1].

Colour order is RGB. A BGR array (OpenCV) must be declared with ``bgr=True``: guessing the order
silently ruins accuracy. Alpha is dropped. Everything else raises ``ValueError`` (or
``FileNotFoundError``) with a message that names the input.
"""

from __future__ import annotations

import os
from io import BytesIO
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Union

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

if TYPE_CHECKING:
    import torch

# Union: `X | Any` fails at run time on Python 3.10
ImageInput = Union[str, os.PathLike, Image.Image, np.ndarray, Any]  # noqa: UP007

_FLOAT_TOLERANCE = 1e-3  # float images may exceed [0, 1] by rounding noise only


def _describe(image: Any) -> str:
    if isinstance(image, (str, os.PathLike)):
        return f"'{os.fspath(image)}'"
    shape = getattr(image, "shape", None)
    if shape is not None:
        return f"{type(image).__name__} of shape {tuple(shape)} and dtype {getattr(image, 'dtype', '?')}"
    return type(image).__name__


class ImageTooLarge(ValueError):
    """An image refused for its pixel count (a decompression bomb, or over a caller's limit)."""


def _open_path(path: str | os.PathLike) -> Image.Image:
    name = os.fspath(path)
    if not os.path.exists(name):
        raise FileNotFoundError(f"image file not found: '{name}'")
    if os.path.isdir(name):
        raise ValueError(f"'{name}' is a folder, not an image file")
    return _decode(name, name)


def _decode(source: str | BinaryIO, name: str, max_pixels: int | None = None) -> Image.Image:
    """The first frame of the image in ``source`` (a path or a binary file), upright (EXIF), loaded;
    ``ValueError`` naming ``name`` for anything that is not a readable image of at most
    ``max_pixels`` pixels (checked from the header, before decoding)."""
    try:
        with Image.open(source) as img:
            if max_pixels is not None and img.width * img.height > max_pixels:
                raise ImageTooLarge(
                    f"refusing '{name}': {img.width} x {img.height} pixels, over the limit of {max_pixels:,}"
                )
            img.seek(0)  # first frame of animated GIF/PNG/WebP
            img = ImageOps.exif_transpose(img)
            img.load()
            return img
    except ImageTooLarge:
        raise
    except PermissionError as exc:
        raise ValueError(f"cannot read '{name}': permission denied") from exc
    except Image.DecompressionBombError as exc:
        raise ImageTooLarge(f"refusing '{name}': {exc}") from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        detail = str(exc) if isinstance(source, str) else str(exc).replace(repr(source), f"'{name}'")  # not 0x...
        raise ValueError(f"cannot decode '{name}' as an image ({type(exc).__name__}: {detail})") from exc


def load_image_bytes(data: bytes, name: str = "upload", max_pixels: int | None = None) -> np.ndarray:
    """`load_image` for an encoded image held in memory (an upload): RGB ``uint8 (H, W, 3)``.

    ``ValueError`` naming ``name`` for empty data, anything Pillow cannot decode, a decompression
    bomb, or more than ``max_pixels`` pixels."""
    if not data:
        raise ValueError(f"'{name}' is empty (0 bytes)")
    return _pil_to_rgb(_decode(BytesIO(data), name, max_pixels))


def _pil_to_rgb(img: Image.Image) -> np.ndarray:
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        # 16/32-bit integer and float grey images: 8-bit values stay, 16-bit ones scale by 1/257,
        # floats must be in [0, 1].
        array = np.asarray(img)
        if img.mode == "F":
            grey = _float_to_uint8(array, "float PIL image")
        else:
            array = np.clip(array.astype(np.float64), 0, 65535)
            sixteen_bit = img.mode.startswith("I;16") or array.max(initial=0) > 255
            grey = np.round(array / 257.0 if sixteen_bit else array).astype(np.uint8)
        return np.ascontiguousarray(np.repeat(grey[..., None], 3, axis=2))
    if img.mode != "RGB":
        img = img.convert("RGBA" if "transparency" in img.info or img.mode in ("P", "PA") else img.mode)
        img = img.convert("RGB")
    return np.array(img, dtype=np.uint8)  # a copy: writable, not tied to the image


def _float_to_uint8(array: np.ndarray, what: str) -> np.ndarray:
    if not np.isfinite(array).all():
        raise ValueError(f"{what} contains NaN or infinite values")
    lo, hi = float(array.min(initial=0.0)), float(array.max(initial=0.0))
    if lo < -_FLOAT_TOLERANCE or hi > 1.0 + _FLOAT_TOLERANCE:
        raise ValueError(
            f"{what} has values in [{lo:.4g}, {hi:.4g}]; float images must be in [0, 1] "
            "(pass uint8 for 0..255 pixel values)"
        )
    return np.clip(np.round(array * 255.0), 0, 255).astype(np.uint8)


def _array_to_rgb(array: np.ndarray, what: str, bgr: bool) -> np.ndarray:
    if array.size == 0:
        raise ValueError(f"{what} is empty")
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3 or array.shape[2] not in (1, 3, 4):
        raise ValueError(f"{what} must be (H, W), (H, W, 1), (H, W, 3) or (H, W, 4)")
    if array.dtype == np.uint8:
        pass
    elif array.dtype == np.bool_:
        array = array.astype(np.uint8) * 255
    elif array.dtype == np.uint16:
        array = np.round(array / 257.0).astype(np.uint8)
    elif np.issubdtype(array.dtype, np.floating):
        array = _float_to_uint8(array.astype(np.float32), what)
    else:
        raise ValueError(f"{what} has unsupported dtype {array.dtype} (use uint8, uint16, bool or float in [0, 1])")
    if array.shape[2] == 1:
        return np.ascontiguousarray(np.repeat(array, 3, axis=2))
    array = array[..., :3]
    if bgr:
        array = array[..., ::-1]
    return np.ascontiguousarray(array)


def _tensor_to_array(tensor: torch.Tensor, what: str) -> np.ndarray:
    if tensor.ndim == 3:
        channels_first = tensor.shape[0] in (1, 3, 4)
        channels_last = tensor.shape[-1] in (1, 3, 4)
        if channels_first or not channels_last:  # torchvision's (C, H, W) wins when ambiguous
            tensor = tensor.permute(1, 2, 0)
    elif tensor.ndim != 2:
        raise ValueError(f"{what} must be (C, H, W), (H, W, C) or (H, W)")
    return tensor.detach().cpu().numpy()


def load_image(image: ImageInput, bgr: bool = False) -> np.ndarray:
    """Return ``image`` as a C-contiguous RGB ``uint8`` array of shape ``(H, W, 3)``.

    Args:
        image: a path, ``PIL.Image``, ``numpy.ndarray`` or ``torch.Tensor`` (see the module doc).
        bgr: the array/tensor holds BGR (OpenCV) channels; ignored for files and PIL images.

    Raises:
        FileNotFoundError: a path that does not exist.
        ValueError: anything that cannot be read as an image, with the input named.
    """
    what = _describe(image)
    if isinstance(image, (str, os.PathLike)):
        return _pil_to_rgb(_open_path(image))
    if isinstance(image, Image.Image):
        try:
            image.load()
        except (OSError, ValueError) as exc:
            raise ValueError(f"cannot decode PIL image ({exc})") from exc
        return _pil_to_rgb(image)
    if isinstance(image, np.ndarray):
        return _array_to_rgb(image, what, bgr)
    if type(image).__module__.startswith("torch"):
        return _array_to_rgb(_tensor_to_array(image, what), what, bgr)
    raise ValueError(f"unsupported image input {what}: pass a path, PIL.Image, numpy array or torch tensor")


def image_files(
    folder: str | os.PathLike, recursive: bool = True, extensions: frozenset[str] | None = None
) -> list[Path]:
    """Files below ``folder`` whose extension is in ``extensions`` (default: `IMAGE_EXTENSIONS`),
    sorted, so a run's order is reproducible."""
    root = Path(folder)
    wanted = IMAGE_EXTENSIONS if extensions is None else extensions
    pattern = "**/*" if recursive else "*"
    return sorted(p for p in root.glob(pattern) if p.is_file() and p.suffix.lower() in wanted)


IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"})
