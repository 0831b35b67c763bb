"""ONNX files run by ONNX Runtime or OpenVINO behind one call: torch tensors in, torch tensors out.

A `Runner` takes the model's inputs in order and returns its outputs in order, on the device of
the first input. Inputs go to the runtime as NumPy arrays (zero-copy for contiguous CPU tensors);
outputs come back through ``torch.from_numpy``. Threads: the number PyTorch uses when the runner
is built (``torch.get_num_threads()``), so ``torch.set_num_threads`` before building a detector
sets both.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch import Tensor

from .deps import OPENVINO_HINT, require

RUNTIMES = ("onnxruntime", "openvino")


class Runner(Protocol):
    def __call__(self, *inputs: Tensor) -> tuple[Tensor, ...]:
        """The model's outputs for ``inputs`` (in the file's input order)."""


def _arrays(inputs: tuple[Tensor, ...]) -> list[np.ndarray]:
    return [np.ascontiguousarray(x.detach().cpu().numpy()) for x in inputs]


def _tensors(outputs: list[Any], like: Tensor) -> tuple[Tensor, ...]:
    return tuple(torch.from_numpy(np.asarray(out)).to(like.device) for out in outputs)


def ort_providers(device: torch.device) -> list[str]:
    """``CUDAExecutionProvider`` first for a CUDA ``device`` when this onnxruntime build has it
    (``onnxruntime-gpu``; a warning and the CPU otherwise), then ``CPUExecutionProvider``."""
    ort = require("onnxruntime", "the onnxruntime backend")
    if device.type == "cuda":
        if "CUDAExecutionProvider" in ort.get_available_providers():
            return ["CUDAExecutionProvider", "CPUExecutionProvider"]
        warnings.warn(
            "onnxruntime has no CUDAExecutionProvider here (pip install onnxruntime-gpu): running on the CPU",
            stacklevel=3,
        )
    return ["CPUExecutionProvider"]


class OrtRunner:
    """An ONNX Runtime inference session on ``path``."""

    def __init__(self, path: Path, device: torch.device) -> None:
        ort = require("onnxruntime", "the onnxruntime backend")
        options = ort.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(path), options, providers=ort_providers(device))
        self.names = [i.name for i in self.session.get_inputs()]

    def __call__(self, *inputs: Tensor) -> tuple[Tensor, ...]:
        outputs = self.session.run(None, dict(zip(self.names, _arrays(inputs))))
        return _tensors(outputs, inputs[0])


class OpenVinoRunner:
    """An OpenVINO model compiled for the CPU in float32 (OpenVINO would otherwise pick bfloat16 on
    CPUs that have it, which changes answers; ``precision="bf16"`` asks for it), for latency."""

    def __init__(self, path: Path, device: torch.device, precision: str = "f32") -> None:
        if device.type != "cpu":
            raise ValueError(f"the openvino backend runs on the CPU only, not on {device}")
        ov = require("openvino", "the openvino backend", OPENVINO_HINT)
        config = {
            "INFERENCE_PRECISION_HINT": precision,
            "PERFORMANCE_HINT": "LATENCY",
            "INFERENCE_NUM_THREADS": torch.get_num_threads(),
        }
        self.model = ov.Core().compile_model(str(path), "CPU", config)

    def __call__(self, *inputs: Tensor) -> tuple[Tensor, ...]:
        result = self.model(_arrays(inputs))
        return _tensors([result[out] for out in self.model.outputs], inputs[0])


def load_runner(path: Path, runtime: str, device: torch.device) -> Runner:
    """A `Runner` of ``runtime`` (one of `RUNTIMES`) on the ONNX file ``path``."""
    if runtime == "onnxruntime":
        return OrtRunner(path, device)
    if runtime == "openvino":
        return OpenVinoRunner(path, device)
    raise ValueError(f"runtime must be one of {', '.join(RUNTIMES)}, got {runtime!r}")
