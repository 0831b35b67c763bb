"""Shared fixtures: small images written into ``tmp_path`` with Pillow (no committed binaries), and
folders mixing real photos with the bad-input corpus."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from facecascade.io import load_image
from facecascade.testing.corpus import write_corpus

from .shared_data import require


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


@pytest.fixture
def rgb_array(rng: np.random.Generator) -> np.ndarray:
    """A random 12 x 17 RGB uint8 image (odd width, so H and W are never confused)."""
    return rng.integers(0, 256, size=(12, 17, 3), dtype=np.uint8)


@pytest.fixture
def write_image(tmp_path: Path) -> Callable[..., Path]:
    """``write_image(name, array_or_pil, **save_kwargs)`` saves into ``tmp_path``; returns the path."""

    def _write(name: str, image, **kwargs) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(image, np.ndarray):
            image = Image.fromarray(image)
        image.save(path, **kwargs)
        return path

    return _write


def write_mixed(folder: Path) -> dict[str, bool]:
    """Two real photos (``a.jpg``, ``sub/b.jpg``), the whole bad-input corpus (``corpus/``, made
    from ``a.jpg``) and a text file that is no input, in ``folder``; returns the corpus's file
    name -> readable."""
    photo = require("dlib_faces/2008_002506.jpg")
    readable = write_corpus(folder / "corpus", load_image(photo))
    shutil.copy(photo, folder / "a.jpg")
    (folder / "sub").mkdir()
    shutil.copy(require("dlib_faces/2008_004176.jpg"), folder / "sub" / "b.jpg")
    (folder / "notes.txt").write_text("not an image extension: not an input")
    return readable


@pytest.fixture()
def mixed(tmp_path: Path) -> tuple[Path, dict[str, bool]]:
    """`write_mixed` in ``tmp_path / "in"``: the folder and the corpus's name -> readable."""
    folder = tmp_path / "in"
    return folder, write_mixed(folder)
