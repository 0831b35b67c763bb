"""A corpus of awkward and broken image files, generated on demand (no committed binaries).

`write_corpus` fills a folder with one file per case the analyzer must survive: each either
decodes to a correct image or fails with a one-line error, and none stops a folder run.
``facecascade analyze`` is checked against it in the tests, and ``tools/make_bad_corpus.py``
writes it for a run by hand.
"""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

BOMB_SIDE = 20_000  # 400 M pixels: over Pillow's decompression-bomb limit (2 x 89.5 M)


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def bomb_png(side: int = BOMB_SIDE) -> bytes:
    """A valid 1-bit ``side x side`` black PNG, a few tens of kB on disk: a decompression bomb."""
    row = b"\x00" * (1 + (side + 7) // 8)  # filter byte + packed pixels
    packer = zlib.compressobj(9)
    data = b"".join(packer.compress(row) for _ in range(side)) + packer.flush()
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", data) + _png_chunk(b"IEND", b"")


def _save(image: Image.Image, fmt: str, **kwargs) -> Callable[[Path], None]:
    return lambda path: image.save(path, format=fmt, **kwargs)


def _truncated(image: Image.Image, fmt: str) -> Callable[[Path], None]:
    def write(path: Path) -> None:
        image.save(path, format=fmt)
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])

    return write


def _exif_rotated(upright: np.ndarray) -> Callable[[Path], None]:
    """A JPEG whose pixels are stored turned 90 degrees, with EXIF orientation 6 ("rotate 90
    clockwise to display") that puts them back upright."""

    def write(path: Path) -> None:
        exif = Image.Exif()
        exif[0x0112] = 6
        Image.fromarray(np.ascontiguousarray(np.rot90(upright, k=1))).save(
            path, format="JPEG", quality=95, exif=exif.tobytes()
        )

    return write


def _animated(image: Image.Image) -> Callable[[Path], None]:
    def write(path: Path) -> None:
        frames = [image, Image.new("RGB", image.size, (255, 0, 0))]
        frames[0].save(path, format="GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)

    return write


def _unreadable(image: Image.Image) -> Callable[[Path], None]:
    def write(path: Path) -> None:
        image.save(path, format="JPEG")
        os.chmod(path, 0)

    return write


def corpus_cases(face: np.ndarray) -> dict[str, tuple[Callable[[Path], None], bool]]:
    """File name -> (writer, whether the file holds a readable image). ``face``: an RGB
    ``uint8 (H, W, 3)`` photo the readable cases are made from."""
    rgb = Image.fromarray(face)
    grey = rgb.convert("L")
    sixteen = Image.fromarray(np.asarray(grey, dtype=np.uint16) * 257)  # mode I;16
    return {
        "empty.jpg": (lambda p: p.write_bytes(b""), False),
        "truncated.jpg": (_truncated(rgb, "JPEG"), False),
        "truncated.png": (_truncated(rgb, "PNG"), False),
        "text_file.jpg": (lambda p: p.write_text("this is not an image\n"), False),
        "bomb_20000x20000.png": (lambda p: p.write_bytes(bomb_png()), False),
        "unreadable.jpg": (_unreadable(rgb), os.geteuid() == 0 if hasattr(os, "geteuid") else False),
        "png_named.jpg": (_save(rgb, "PNG"), True),
        "one_pixel.png": (_save(Image.new("RGB", (1, 1), (128, 64, 32)), "PNG"), True),
        "sixteen_bit.png": (_save(sixteen, "PNG"), True),
        "cmyk.jpg": (_save(rgb.convert("CMYK"), "JPEG", quality=95), True),
        "palette.png": (_save(rgb.convert("P", palette=Image.Palette.ADAPTIVE), "PNG"), True),
        "rgba.png": (_save(rgb.convert("RGBA"), "PNG"), True),
        "grey.png": (_save(grey, "PNG"), True),
        "animated.gif": (_animated(rgb), True),
        "exif_rotated.jpg": (_exif_rotated(face), True),
    }


def write_corpus(folder: str | os.PathLike, face: np.ndarray) -> dict[str, bool]:
    """Write every case of `corpus_cases` into ``folder``; returns file name -> readable.

    ``unreadable.jpg`` has no permissions; the super-user reads it anyway, so it counts as
    readable when this runs as root.
    """
    root = Path(folder)
    root.mkdir(parents=True, exist_ok=True)
    readable = {}
    for name, (write, ok) in corpus_cases(face).items():
        write(root / name)
        readable[name] = ok
    return readable
