"""`benchmarks/bench_gpu.py` runs where CI runs: on the CPU, two batch sizes, its table complete.
(Its figures come from a GPU when one is lent; docs/speed.md.)"""

import subprocess
import sys
from pathlib import Path

from .shared_data import DATA

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_gpu.py"


def test_the_gpu_benchmark_runs_on_the_cpu():
    args = [sys.executable, str(SCRIPT), "--device", "cpu", "--batches", "1", "3", "--seconds", "0"]
    result = subprocess.run(
        [*args, "--backends", "torch", "onnxruntime", "--data", str(DATA)], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]
    rows = [line for line in result.stdout.splitlines() if line.startswith(("| torch |", "| onnxruntime |"))]
    assert [row.split("|")[1:3] for row in rows] == [
        [" torch ", " 1 "],
        [" torch ", " 3 "],
        [" onnxruntime ", " 1 "],
        [" onnxruntime ", " 3 "],
    ]
    assert all(float(row.split("|")[3]) > 0 for row in rows)
    assert "99 fps" in result.stdout and "CPU" in result.stdout
