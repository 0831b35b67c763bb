"""`to_onnx`: a weights name's networks as ONNX files and a manifest to run them from."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from ..outputs import write_json_atomic
from .bundles import BUNDLES
from .deps import require_exporter
from .manifest import FORMAT, FORMAT_VERSION, MANIFEST_NAME
from .onnx_files import DEFAULT_OPSET, export_graph
from .sources import WeightsSource, weights_source


def _output_folder(out_dir: str | os.PathLike) -> Path:
    folder = Path(out_dir)
    if folder.exists() and not folder.is_dir():
        raise NotADirectoryError(f"output folder '{folder}' is a file")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise NotADirectoryError(f"cannot create output folder '{folder}': {exc.strerror}") from exc
    return folder


def _header(source: WeightsSource, opset: int) -> dict[str, Any]:
    from .. import __version__

    onnx = require_exporter()
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "facecascade_version": __version__,
        "exporter": f"torch {torch.__version__} torch.onnx.export(dynamo=True), onnx {onnx.__version__}",
        "opset": opset,
        "weights": {"name": source.name, "kind": source.kind, "files": source.files},
    }


def to_onnx(weights: str | os.PathLike, out_dir: str | os.PathLike, opset: int = DEFAULT_OPSET) -> Path:
    """Export the networks of ``weights`` to ``out_dir/<model>.onnx`` and write ``out_dir/manifest.json``.

    Args:
        weights: a registered name (``mtcnn``, ``mtcnn-joint``, ``mtcnn-original``, ``dcrn``,
            ``mcfa``; ``cascade-rcnn`` / ``faster-rcnn`` export nothing and say why in the
            manifest's ``not_exported``) or the path of a facecascade checkpoint.
        out_dir: the folder to write (created if missing).
        opset: the ONNX opset (18: the lowest PyTorch's exporter writes directly).

    Returns:
        The manifest's path (`facecascade.export.manifest` describes it; docs/export.md the
        algorithms it parameterises). Every file passes ``onnx.checker.check_model``, has a
        dynamic batch axis (and P-Net dynamic height and width) and is listed with its SHA-256.

    Raises:
        MissingDependencyError: onnx or onnxscript is not installed (``pip install "facecascade[onnx]"``).
        ValueError: unknown weights; NotADirectoryError: ``out_dir`` is a file.
    """
    require_exporter()
    source = weights_source(weights)
    folder = _output_folder(out_dir)
    bundle = BUNDLES[source.kind](weights)
    manifest = _header(source, opset)
    manifest["models"] = {graph.name: export_graph(graph, folder, opset) for graph in bundle.graphs}
    manifest["pipeline"] = bundle.pipeline
    manifest["not_exported"] = bundle.not_exported
    path = folder / MANIFEST_NAME
    write_json_atomic(path, manifest)
    return path
