"""The optional packages of ONNX export and of the ONNX Runtime / OpenVINO backends, imported
only when used, with an error that says how to install them."""

from __future__ import annotations

import importlib
from types import ModuleType

ONNX_HINT = 'pip install "facecascade[onnx]"'
OPENVINO_HINT = "pip install openvino"


class MissingDependencyError(ImportError):
    """An optional package that the asked-for feature needs is not installed."""


def require(module: str, feature: str, hint: str = ONNX_HINT) -> ModuleType:
    """``import module``, or `MissingDependencyError` naming ``feature`` and the install command."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(f"{feature} needs the {module} package, which is not installed: {hint}") from exc


def require_exporter() -> ModuleType:
    """The ``onnx`` module, after checking that ``onnxscript`` (torch.onnx's exporter) is there too."""
    require("onnxscript", "ONNX export")
    return require("onnx", "ONNX export")
