"""One `Graph` to one checked ``.onnx`` file, with PyTorch's ``torch.export``-based ONNX exporter
(``torch.onnx.export(dynamo=True)``, which needs ``onnxscript``), and the file's description for
the manifest."""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import torch

from ..registry import file_sha256
from .deps import require_exporter
from .graphs import AXES, Graph, example_inputs

DEFAULT_OPSET = 18  # the lowest opset torch.onnx's exporter writes without a version conversion


def _dynamic_shapes(graph: Graph) -> tuple[dict[int, Any], ...]:
    """torch.export ``Dim`` objects for the named axes of each input (one ``Dim`` per name, so that
    inputs sharing ``"batch"`` share it)."""
    dims = {name: torch.export.Dim(name, min=smallest) for name, (_, smallest) in AXES.items()}
    return tuple({i: dims[d] for i, d in enumerate(shape) if isinstance(d, str)} for shape in graph.inputs.values())


def _tensor_info(value: Any) -> dict[str, Any]:
    """``{"name", "shape", "dtype"}`` of a graph input or output (`onnx.ValueInfoProto`); a dynamic
    axis is its symbolic name or expression."""
    import onnx

    tensor = value.type.tensor_type
    shape = [d.dim_param if d.HasField("dim_param") else int(d.dim_value) for d in tensor.shape.dim]
    return {"name": value.name, "shape": shape, "dtype": str(onnx.helper.tensor_dtype_to_np_dtype(tensor.elem_type))}


def _check_axes(graph: Graph, inputs: list[dict[str, Any]]) -> None:
    """Every axis named in ``graph.inputs`` must have stayed symbolic (the exporter fixes an axis
    that the code reads as a Python int, e.g. through ``len(x)``)."""
    for info, shape in zip(inputs, graph.inputs.values()):
        fixed = [d for d, got in zip(shape, info["shape"]) if isinstance(d, str) and not isinstance(got, str)]
        if fixed:
            raise RuntimeError(f"{graph.name}: axes {fixed} of input {info['name']!r} were exported as fixed sizes")


def _exported_model(graph: Graph, opset: int) -> Any:
    """``graph`` as a checked ``onnx.ModelProto`` whose named input axes are symbolic."""
    onnx = require_exporter()
    with warnings.catch_warnings():  # the exporter's notes on opset conversion and deprecations
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            graph.module,
            example_inputs(graph),
            dynamo=True,
            opset_version=opset,
            input_names=list(graph.inputs),
            output_names=list(graph.outputs),
            dynamic_shapes=_dynamic_shapes(graph),
            external_data=False,
            verbose=False,
        )
    assert program is not None  # dynamo=True returns the program
    model = program.model_proto
    onnx.checker.check_model(model, full_check=True)
    _check_axes(graph, [_tensor_info(v) for v in model.graph.input])
    return model


def export_graph(graph: Graph, folder: Path, opset: int = DEFAULT_OPSET) -> dict[str, Any]:
    """Write ``folder/<graph.name>.onnx`` (checked with ``onnx.checker.check_model``) and return its
    manifest entry: ``file``, ``sha256``, ``role``, ``inputs`` and ``outputs``."""
    model = _exported_model(graph, opset)
    path = folder / f"{graph.name}.onnx"
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(model.SerializeToString())
    os.replace(tmp, path)
    return {
        "file": path.name,
        "sha256": file_sha256(path),
        "role": graph.role,
        "inputs": [_tensor_info(v) for v in model.graph.input],
        "outputs": [_tensor_info(v) for v in model.graph.output],
    }
