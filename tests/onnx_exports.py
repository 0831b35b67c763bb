"""Exports shared by the ONNX tests: each weights name is exported once per test process, into a
temporary cache that `FaceDetector(backend=...)` also reads (``FACECASCADE_CACHE``)."""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from facecascade.export import to_onnx
from facecascade.export.cache import cached_export
from facecascade.registry import weights_info

EXPORTABLE = ("mtcnn", "mtcnn-joint", "mtcnn-original", "dcrn", "mcfa")


@functools.cache
def cache_root() -> Path:
    """A temporary cache root for this process, removed when it exits."""
    path = Path(tempfile.mkdtemp(prefix="facecascade-onnx-tests-"))
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


@functools.cache
def exported(weights: str) -> Path:
    """The export folder of ``weights``: detectors through the backends' cache, the others with
    `to_onnx` (call within the `onnx_cache` fixture)."""
    if weights_info(weights).kind == "detector":
        return cached_export(weights)
    return to_onnx(weights, cache_root() / "plain" / weights).parent


@pytest.fixture(scope="module")
def onnx_cache() -> Iterator[Path]:
    """``FACECASCADE_CACHE`` pointed at `cache_root` for a test module."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FACECASCADE_CACHE", str(cache_root()))
        yield cache_root()
