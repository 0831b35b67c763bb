"""The shipped models on a CUDA device give the CPU's answers (run where a GPU exists; skipped,
by marker, on CPU-only machines such as CI)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from facecascade import FaceAligner, FaceAnalyzer, FaceDetector, load_image

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

PHOTO = Path(__file__).resolve().parents[1] / "docs" / "astronaut.jpg"


def test_detector_aligner_and_analyzer_match_the_cpu():
    image = load_image(PHOTO)
    cpu, gpu = FaceDetector(), FaceDetector(device="cuda")
    faces_cpu, faces_gpu = cpu.detect(image), gpu.detect(image)
    assert len(faces_cpu) == len(faces_gpu) >= 1
    np.testing.assert_allclose(faces_gpu.boxes, faces_cpu.boxes, atol=0.05)
    np.testing.assert_allclose(faces_gpu.landmarks, faces_cpu.landmarks, atol=0.05)
    refined_cpu = FaceAligner().align(image, faces_cpu)
    refined_gpu = FaceAligner(device="cuda").align(image, faces_cpu)
    np.testing.assert_allclose(refined_gpu.landmarks, refined_cpu.landmarks, atol=0.05)
    assert (refined_gpu.iterations == refined_cpu.iterations).all()
    full_cpu = FaceAnalyzer(aligner="dcrn").analyze(image)
    full_gpu = FaceAnalyzer(aligner="dcrn", device="cuda").analyze(image)
    np.testing.assert_allclose(full_gpu.attributes, full_cpu.attributes, atol=1e-3)
    np.testing.assert_allclose(full_gpu.landmarks, full_cpu.landmarks, atol=0.05)
