"""Shared fixtures: small images written into ``tmp_path`` with Pillow (no committed binaries)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image


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
