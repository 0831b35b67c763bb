"""The export manifest (``manifest.json``): what a folder of ONNX files holds and how to run it.

Top-level keys: ``format`` (``"facecascade-onnx"``), ``format_version`` (`FORMAT_VERSION`),
``facecascade_version``, ``exporter``, ``opset``, ``weights`` (``name``, ``kind``, ``files``:
file name -> SHA-256 of the source weights), ``models`` (name -> ``file``, ``sha256``, ``role``,
``inputs``/``outputs`` as ``{"name", "shape", "dtype"}``), ``pipeline`` (kind-specific settings:
`facecascade.export.pipelines`) and ``not_exported`` (model -> reason). docs/export.md has an example.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..registry import file_sha256

FORMAT = "facecascade-onnx"
FORMAT_VERSION = 2  # 2 (2026-12-06): R-Net's stage gained "nms_refined"
MANIFEST_NAME = "manifest.json"


class ManifestError(ValueError):
    """A folder whose manifest is missing, of another format, or does not match its files."""


def read_manifest(folder: str | Path) -> dict[str, Any]:
    """The manifest of an export folder, checked: its format and version, and every model file's
    SHA-256 (`ManifestError` otherwise)."""
    path = Path(folder) / MANIFEST_NAME
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ManifestError(f"cannot read {path}: {exc}") from exc
    if manifest.get("format") != FORMAT or manifest.get("format_version") != FORMAT_VERSION:
        raise ManifestError(f"{path} is not a {FORMAT} manifest of version {FORMAT_VERSION}")
    for name, model in manifest.get("models", {}).items():
        file = Path(folder) / model["file"]
        if not file.is_file() or file_sha256(file) != model["sha256"]:
            raise ManifestError(f"{file} (model {name!r}) is missing or does not have the manifest's SHA-256")
    return manifest
