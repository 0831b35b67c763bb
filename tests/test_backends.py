"""``FaceDetector(backend="onnxruntime" | "openvino")``: the same engine with its networks run from
the ONNX export finds the same faces as the torch backend (float32) on the shared photos: the same
count per image, each face matched at IoU >= 0.9 with landmarks within 1 px (observed: ~1e-4 px)."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.ops import box_iou

from facecascade import FaceAnalyzer, FaceDetector, Faces
from facecascade.cli import main
from facecascade.export import MissingDependencyError
from facecascade.serve import ServeConfig

from .onnx_exports import onnx_cache  # noqa: F401 (a fixture)
from .shared_data import require

pytestmark = pytest.mark.usefixtures("onnx_cache")


def _photos(masks: int) -> list[np.ndarray]:
    dlib = sorted(require("dlib_faces").glob("*.jpg"))
    face_mask = sorted(require("face_mask/images").glob("*.jpg"))[:: max(1, 700 // masks)][:masks]
    assert len(dlib) >= 9 and len(face_mask) == masks, "expected the shared dlib_faces and face_mask photos"
    return [np.asarray(Image.open(p).convert("RGB")) for p in dlib + face_mask]


def _assert_same_faces(ours: Faces, ref: Faces, where: str) -> None:
    assert len(ours) == len(ref), f"{where}: {len(ours)} faces, the torch backend {len(ref)}"
    if len(ref) == 0:
        return
    iou = box_iou(torch.from_numpy(ref.boxes), torch.from_numpy(ours.boxes)).numpy()
    match = iou.argmax(1)
    assert (iou.max(1) >= 0.9).all(), f"{where}: a face without a match at IoU >= 0.9"
    distance = np.linalg.norm(ours.landmarks[match] - ref.landmarks, axis=2)
    assert distance.max() <= 1.0, f"{where}: landmarks {distance.max():.3f} px apart"


def _compare(backend: str, weights: str, photos: list[np.ndarray]) -> None:
    ref = FaceDetector(weights=weights, precision="fp32").detect(photos)
    ours = FaceDetector(weights=weights, backend=backend).detect(photos)
    for i, (a, b) in enumerate(zip(ours, ref)):
        _assert_same_faces(a, b, f"{weights} photo {i}")
    assert sum(len(f) for f in ref) > 5 * len(photos) // 2  # crowded photos: the test compares faces


def test_onnxruntime_finds_the_same_faces_as_torch():
    _compare("onnxruntime", "mtcnn", _photos(masks=20))


def test_onnxruntime_runs_the_joint_cascade_stages():
    _compare("onnxruntime", "mtcnn-joint", _photos(masks=4))


def test_openvino_finds_the_same_faces_as_torch():
    pytest.importorskip("openvino")
    _compare("openvino", "mtcnn", _photos(masks=4))


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_empty_batches_give_empty_outputs(backend):
    """Stage 2 or 3 may get no windows (all outside the image); OpenVINO refuses empty batches."""
    pytest.importorskip(backend)
    nets = FaceDetector(backend=backend).cascade.nets
    for net, side in ((nets.rnet, 24), (nets.onet, 48)):
        out = net(torch.zeros(0, 3, side, side))
        assert out.logits.shape == (0, 2) and out.offsets.shape == (0, 4)
        assert out.landmarks is not None and out.landmarks.shape == (0, 5, 2)  # mtcnn's R-Net has a landmark head
    assert FaceDetector(backend=backend).detect(np.zeros((1, 1, 3), np.uint8)).boxes.shape == (0, 4)


def test_bad_backend_arguments():
    with pytest.raises(ValueError, match="backend must be one of torch, onnxruntime, openvino"):
        FaceDetector(backend="tensorrt")
    with pytest.raises(ValueError, match="two-stage detectors run in PyTorch only"):
        FaceDetector(weights="cascade-rcnn", backend="onnxruntime")
    with pytest.raises(ValueError, match="precision='bf16' is the torch backend's"):
        FaceDetector(backend="onnxruntime", precision="bf16")
    with pytest.raises(ValueError, match="backend must be one of"):
        ServeConfig(backend="onnx")


def test_missing_onnxruntime_names_the_extra(monkeypatch):
    FaceDetector(backend="onnxruntime")  # exported and cached first: only the runtime is missing below
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(MissingDependencyError, match=r'pip install "facecascade\[onnx\]"'):
        FaceDetector(backend="onnxruntime")


def test_detect_and_analyze_cli_take_the_backend(tmp_path, capsys):
    photo = require("dlib_faces/2008_002506.jpg")
    assert main(["detect", str(photo), "--backend", "onnxruntime", "--json", str(tmp_path / "d.json"), "-q"]) == 0
    assert len(json.loads((tmp_path / "d.json").read_text())["2008_002506.jpg"]) == 3
    out = tmp_path / "a.jsonl"
    assert main(["analyze", str(photo), "--backend", "onnxruntime", "--attributes", "none", "--json", str(out)]) == 0
    assert len(json.loads(out.read_text())["faces"]) == 3
    assert FaceAnalyzer(backend="onnxruntime", attributes=None).detector.backend == "onnxruntime"
