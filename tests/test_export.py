"""ONNX export (`facecascade.export.to_onnx`, ``facecascade export onnx``): every exportable shipped
model exports, passes ``onnx.checker``, gives the PyTorch outputs under ONNX Runtime (absolute and
relative tolerance 1e-4, on input sizes other than the export's examples), and is listed in the
manifest with its SHA-256; two-stage weights export nothing and say why; bad arguments exit 2."""

from __future__ import annotations

import json
import sys

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from facecascade.cli import main
from facecascade.export import MANIFEST_NAME, read_manifest, to_onnx
from facecascade.export.bundles import BUNDLES
from facecascade.export.graphs import Graph, export_copy
from facecascade.models.weights import load_mtcnn, load_mtcnn_with_meta
from facecascade.registry import file_sha256, weights_info

from .onnx_exports import EXPORTABLE, exported, onnx_cache  # noqa: F401 (a fixture)

pytestmark = pytest.mark.usefixtures("onnx_cache")
TOLERANCE = 1e-4  # float32 kernels of two libraries: observed differences are below 2e-5
SIZES = {"batch": 3, "height": 29, "width": 52, "stem_height": 27, "stem_width": 50}  # not the export's examples


def _inputs(graph: Graph) -> tuple[torch.Tensor, ...]:
    generator = torch.Generator().manual_seed(1)
    shapes = [[SIZES[d] if isinstance(d, str) else d for d in shape] for shape in graph.inputs.values()]
    return tuple(torch.randn(*shape, generator=generator) for shape in shapes)


def _torch_outputs(graph: Graph, inputs: tuple[torch.Tensor, ...]) -> list[np.ndarray]:
    with torch.inference_mode():
        out = graph.module(*inputs)
    return [t.numpy() for t in (out if isinstance(out, tuple) else (out,))]


@pytest.mark.parametrize("weights", EXPORTABLE)
def test_export_checks_and_matches_torch(weights):
    folder = exported(weights)
    manifest = read_manifest(folder)  # also checks every file's SHA-256
    assert manifest["weights"]["files"] == weights_info(weights).sha256
    graphs = BUNDLES[weights_info(weights).kind](weights).graphs
    assert set(manifest["models"]) == {g.name for g in graphs}
    for graph in graphs:
        path = folder / manifest["models"][graph.name]["file"]
        assert file_sha256(path) == manifest["models"][graph.name]["sha256"]
        onnx.checker.check_model(str(path), full_check=True)
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        inputs = _inputs(graph)
        got = session.run(None, {name: x.numpy() for name, x in zip(graph.inputs, inputs)})
        for ours, ref in zip(got, _torch_outputs(graph, inputs), strict=True):
            np.testing.assert_allclose(ours, ref, atol=TOLERANCE, rtol=TOLERANCE, err_msg=f"{weights} {graph.name}")


def test_export_copies_equal_the_engine_layers():
    """The standard layers that replace `CeilMaxPool2d` and the in-place `PReLU` give the same
    outputs on the channels-last inputs the engine uses."""
    nets = load_mtcnn("mtcnn")
    for net, side in zip(nets, (31, 24, 48)):
        x = torch.randn(4, 3, side, side).contiguous(memory_format=torch.channels_last)
        with torch.inference_mode():
            for ours, ref in zip(export_copy(net)(x.contiguous()), net.to(memory_format=torch.channels_last)(x)):
                torch.testing.assert_close(ours, ref, atol=1e-5, rtol=1e-5)


def test_manifest_has_what_running_the_cascade_needs():
    manifest = read_manifest(exported("mtcnn"))
    assert manifest["format"] == "facecascade-onnx" and manifest["format_version"] == 2 and manifest["opset"] == 18
    pipeline = manifest["pipeline"]
    assert pipeline["normalisation"]["mean"] == 127.5 and pipeline["normalisation"]["scale"] == 1 / 128
    meta = load_mtcnn_with_meta("mtcnn")[1]
    assert [s["threshold"] for s in pipeline["stages"]] == meta["thresholds"]  # mtcnn's own operating point
    assert pipeline["stages"][2]["box_voting"] == meta["settings"]["box_voting"] == 0.6  # and its box voting
    assert pipeline["fast_path"]["thresholds"] == meta["fast_thresholds"] and pipeline["fast_path"]["nms_image"] == 0.7
    assert pipeline["fast_path"]["nms_refined"] == meta["fast_settings"]["nms_refined"] == 0.85
    assert [s["window"] for s in pipeline["stages"]] == [12, 24, 48] and pipeline["stages"][0]["stride"] == 2
    assert pipeline["pyramid"]["scale_factor"] == 0.709 and pipeline["pyramid"]["min_face_size"] == 20
    models = manifest["models"]
    assert models["pnet"]["inputs"] == [{"name": "image", "shape": ["batch", 3, "height", "width"], "dtype": "float32"}]
    assert models["rnet"]["inputs"][0]["shape"] == ["batch", 3, 24, 24]
    assert [o["name"] for o in models["onet"]["outputs"]] == ["logits", "offsets", "landmarks"]
    assert models["onet"]["outputs"][2]["shape"] == ["batch", 5, 2]
    aligner = read_manifest(exported("dcrn"))["pipeline"]
    assert aligner["steps"] == "dynamic" and aligner["max_iterations"] == 10 and aligner["stop_threshold"] > 0


def test_two_stage_weights_export_nothing_and_say_why(tmp_path):
    manifest = json.loads(to_onnx("faster-rcnn", tmp_path).read_text())
    assert manifest["models"] == {} and "batched_nms" in manifest["not_exported"]["detector"]
    assert manifest["weights"]["files"] == weights_info("faster-rcnn").sha256


def test_cli_export_onnx(tmp_path, capsys):
    out = tmp_path / "mcfa"
    assert main(["export", "onnx", "--weights", "mcfa", "--out", str(out)]) == 0
    assert "mcfa.onnx" in capsys.readouterr().out
    manifest = read_manifest(out)
    assert sorted(p.name for p in out.iterdir()) == [MANIFEST_NAME, "mcfa.onnx"]
    assert manifest["models"]["mcfa"]["outputs"][3]["shape"] == ["batch", 40]
    assert len(manifest["pipeline"]["attribute_names"]) == 40


def test_cli_export_bad_arguments(tmp_path, capsys):
    assert main(["export", "onnx", "--weights", "no-such-weights", "--out", str(tmp_path / "a")]) == 2
    assert "unknown weights 'no-such-weights'" in capsys.readouterr().err
    (tmp_path / "file").write_text("")
    assert main(["export", "onnx", "--weights", "mcfa", "--out", str(tmp_path / "file")]) == 2
    assert "is a file" in capsys.readouterr().err
    assert main(["export", "onnx", "--weights", "cascade-rcnn", "--out", str(tmp_path / "rcnn")]) == 1
    assert "not exported: detector: the two-stage detectors do not export" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # argparse: --opset must be a positive integer
        main(["export", "onnx", "--weights", "mcfa", "--out", str(tmp_path / "b"), "--opset", "0"])


def test_missing_onnx_packages_exit_2_naming_the_extra(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxscript", None)  # import onnxscript raises ImportError
    assert main(["export", "onnx", "--weights", "mcfa", "--out", str(tmp_path)]) == 2
    assert 'pip install "facecascade[onnx]"' in capsys.readouterr().err
    assert not (tmp_path / MANIFEST_NAME).exists()


@pytest.mark.parametrize("nms_refined", [None, 0.8])
def test_the_manifest_alone_runs_the_cascade(nms_refined):
    """docs/export.md's algorithm, written from the manifest without facecascade (`ManifestCascade`),
    finds the faces `FaceDetector` finds: same count, IoU >= 0.9, landmarks within 1 px; also with
    R-Net's windows thinned by NMS before O-Net (`MTCNNConfig.nms_refined`, set in both)."""
    from PIL import Image
    from torchvision.ops import box_iou

    from facecascade import FaceDetector

    from .manifest_cascade import ManifestCascade
    from .shared_data import require

    cascade, detector = ManifestCascade(exported("mtcnn")), FaceDetector(precision="fp32")
    assert cascade.p["stages"][1]["nms_refined"] == 0.0  # the shipped weights leave it off
    if nms_refined is not None:
        cascade.p["stages"][1]["nms_refined"] = nms_refined
        detector.cascade = detector.cascade.reconfigure(nms_refined=nms_refined)
    photos = ("dlib_faces/2008_002506.jpg", "dlib_faces/bald_guys.jpg", "face_mask/images/maksssksksss12.jpg")
    for name in (*photos, "mtfl/aflw_half/AFLW/0472-image69738.jpg"):  # the last: a face crop, bordered
        image = np.asarray(Image.open(require(name)).convert("RGB"))
        boxes, scores, points = cascade(image)
        faces = detector.detect(image)
        assert len(boxes) == len(faces) > 0, name
        iou = box_iou(torch.from_numpy(faces.boxes), torch.from_numpy(boxes).float()).numpy()
        assert (iou.max(1) >= 0.9).all(), name
        match = iou.argmax(1)
        assert np.linalg.norm(points[match] - faces.landmarks, axis=2).max() <= 1.0, name
        np.testing.assert_allclose(scores[match], faces.scores, atol=1e-3, err_msg=name)
