"""Exports kept between runs for the ONNX Runtime / OpenVINO backends.

One folder per (facecascade version, manifest format version, opset, SHA-256 of the weights'
bytes) under the cache root: ``$FACECASCADE_CACHE``, else ``$XDG_CACHE_HOME/facecascade``, else
``~/.cache/facecascade``; the same weights under another name or path share it, replaced weights
get a new one. A folder is used only when its manifest reads and every file has the manifest's
SHA-256 (`read_manifest`); otherwise it is exported again (into a temporary folder renamed into
place, so concurrent processes never see half an export). Delete the root to reclaim the space.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from ..models.weights import weights_fingerprint
from .exporter import to_onnx
from .manifest import FORMAT_VERSION, ManifestError, read_manifest
from .onnx_files import DEFAULT_OPSET


def cache_root() -> Path:
    """Where exported weights are kept (see the module docstring)."""
    if os.environ.get("FACECASCADE_CACHE"):
        return Path(os.environ["FACECASCADE_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "facecascade"


def cache_folder(weights: str | os.PathLike, opset: int = DEFAULT_OPSET) -> Path:
    """The cache folder of detector ``weights`` (which need not exist yet)."""
    from .. import __version__

    key = f"{__version__}-format{FORMAT_VERSION}-opset{opset}-{weights_fingerprint(weights)[:16]}"
    return cache_root() / "onnx" / key


def _valid(folder: Path) -> bool:
    try:
        read_manifest(folder)
    except ManifestError:
        return False
    return True


def cached_export(weights: str | os.PathLike, opset: int = DEFAULT_OPSET) -> Path:
    """The folder of a checked export of detector ``weights`` (`to_onnx`), exported on first use."""
    folder = cache_folder(weights, opset)
    if _valid(folder):
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        to_onnx(weights, tmp, opset)
        if folder.exists():  # stale or broken: replaced (another process may have just done so)
            shutil.rmtree(folder, ignore_errors=True)
        os.replace(tmp, folder)
    except OSError:
        if not _valid(folder):  # a concurrent export won the rename: use it
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder
