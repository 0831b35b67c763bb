"""`benchmarks/stage_runtimes.py`: the exported float32 stages give the PyTorch networks' face
probabilities on the cascade's own windows in ONNX Runtime and OpenVINO, and the int8 and bf16
runs stay close to them."""

import sys
from pathlib import Path

import pytest

from .shared_data import DATA, require

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))


@pytest.mark.slow
def test_stage_runtimes_are_timed_and_compared_with_float32():
    require("face_mask/images")
    import stage_runtimes

    rows = stage_runtimes.main(["--weights", "mtcnn-original", "--calib", "2", "--calls", "1", "--data", str(DATA)])
    assert [(r["stage"], r["runtime"]) for r in rows] == [
        (stage, runtime)
        for stage in ("rnet", "onet")
        for runtime in (
            "engine (PyTorch)",
            "ONNX Runtime float32",
            "ONNX Runtime int8",
            "OpenVINO float32",
            "OpenVINO bf16",
        )
    ]
    by = {(r["stage"], r["runtime"]): r for r in rows}
    for stage in ("rnet", "onet"):
        for exact in ("ONNX Runtime float32", "OpenVINO float32"):
            assert by[stage, exact]["max"] < 1e-3, f"{exact}: the export is the PyTorch network"
        assert by[stage, "engine (PyTorch)"]["flips"] < 0.01
        for approximate in ("ONNX Runtime int8", "OpenVINO bf16"):
            assert by[stage, approximate]["mean"] < 0.05 and by[stage, approximate]["flips"] < 0.1
        assert by[stage, "ONNX Runtime int8"]["mean"] > 0, "int8 changes the arithmetic"
        assert all(r["ms"] > 0 for r in rows)
