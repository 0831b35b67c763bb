"""Head pose from 5 points, the pose augmentation (thin-plate warps, photometric effects), the
grey border that lets the detector find faces filling a crop, and detect-first on box-less images."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from facecascade.data.landmarks import read_landmark_faces
from facecascade.detect import FaceDetector
from facecascade.detect.border import border_width, with_borders, without_border
from facecascade.detect.fallback import DetectFirst, NoFaceFoundWarning
from facecascade.eval.landmark_pose import bucket_summaries, face_buckets, pose_table
from facecascade.models.dcrn import DCRNConfig
from facecascade.ops.head_pose import estimate_yaw, fit_pose, pose_bucket, projected, rotate_yaw, similarity_fit
from facecascade.ops.tps import border_anchors, tps_apply, tps_fit, tps_warp
from facecascade.structures import Faces
from facecascade.train.dcrn_data import Augment, FaceRegions, crop_batch
from facecascade.train.photometric import NO_PHOTOMETRIC, Photometric, photometric

from .shared_data import require


def _face(yaw: float, pitch: float = 0.0, roll: float = 0.0, scale: float = 40.0) -> np.ndarray:
    """(1, 5, 2) image points of the mean shape at a pose (degrees), rolled, scaled and shifted."""
    flat = projected(np.radians(np.array([yaw])), np.radians(np.array([pitch])))
    c, s = np.cos(np.radians(roll)), np.sin(np.radians(roll))
    return flat @ np.array([[c, s], [-s, c]]) * scale + np.array([50.0, 40.0])


# ---------------------------------------------------------------- head pose
def test_similarity_fit_recovers_a_known_similarity():
    source = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0], [3.0, 1.0]])
    angle, scale, shift = np.radians(30), 2.5, np.array([4.0, -1.0])
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]]) * scale
    linear, fitted_shift, residual = similarity_fit(source, source @ rot.T + shift)
    np.testing.assert_allclose(linear, rot, atol=1e-9)
    np.testing.assert_allclose(fitted_shift, shift, atol=1e-9)
    assert residual < 1e-12


@pytest.mark.parametrize("yaw, pitch, roll", [(0, 0, 0), (-40, 10, 15), (24, -20, -30), (70, 5, 0), (-86, 0, 10)])
def test_pose_of_a_projected_mean_shape(yaw, pitch, roll):
    pose = fit_pose(_face(yaw, pitch, roll))
    assert pose.yaw[0] == pytest.approx(yaw, abs=2.0) and pose.pitch[0] == pytest.approx(pitch, abs=5.0)


def test_yaw_sign_follows_the_nose():
    points = _face(35)
    assert points[0, 2, 0] > points[0, [0, 1], 0].mean()  # nose right of the eyes' midpoint ...
    assert estimate_yaw(points)[0] > 0  # ... is positive yaw


def test_pose_buckets_by_hand():
    assert pose_bucket(np.array([0, 29.9, -29.9, 30, -45, 59.9, 60, -75])).tolist() == [0, 0, 0, 1, 1, 1, 2, 2]


def test_rotate_yaw_moves_points_as_the_turned_shape():
    turned = rotate_yaw(_face(10, roll=20), np.array([30.0]))
    np.testing.assert_allclose(turned, _face(40, roll=20), atol=1e-6)
    assert np.allclose(rotate_yaw(_face(10), np.array([0.0])), _face(10))


def test_aflw_is_more_turned_than_lfw():
    aflw = read_landmark_faces("mtfl", require("mtfl/aflw_half/aflw_landmarks.txt"))[:400]
    lfw = read_landmark_faces("mtfl", require("mtfl/lfw_5590_landmarks.txt"))[:400]
    yaw = {name: np.abs(estimate_yaw(np.stack([f.points for f in faces]))) for name, faces in [("a", aflw), ("l", lfw)]}
    assert np.median(yaw["a"]) > np.median(yaw["l"]) and (yaw["a"] >= 30).mean() > 2 * (yaw["l"] >= 30).mean()


# ---------------------------------------------------------------- thin-plate splines
def test_tps_interpolates_its_control_points_and_keeps_affine_maps():
    rng = np.random.default_rng(0)
    control = torch.from_numpy(rng.uniform(0, 10, (2, 7, 2)))
    values = torch.from_numpy(rng.uniform(0, 10, (2, 7, 2)))
    coefficients = tps_fit(control, values)
    torch.testing.assert_close(tps_apply(coefficients, control, control), values)
    affine = torch.tensor([[1.5, 0.2], [-0.3, 0.8]], dtype=torch.float64)
    coefficients = tps_fit(control, control @ affine.T + 2.0)  # an affine map stays affine everywhere
    probe = torch.from_numpy(rng.uniform(0, 10, (2, 5, 2)))
    torch.testing.assert_close(tps_apply(coefficients, control, probe), probe @ affine.T + 2.0)


def test_tps_warp_moves_a_dot_to_its_target_and_keeps_the_border():
    image = torch.zeros(1, 1, 33, 33)
    image[0, 0, 10, 12] = 255.0  # a dot at x=12, y=10
    anchors = border_anchors(33)
    assert anchors.shape == (8, 2) and anchors.min() == 0 and anchors.max() == 32
    out = tps_warp(image, torch.tensor([[[12.0, 10.0]]]), torch.tensor([[[20.0, 18.0]]]))
    y, x = divmod(int(out[0, 0].argmax()), 33)
    assert (x, y) == (20, 18)
    same = tps_warp(image, torch.tensor([[[12.0, 10.0]]]), torch.tensor([[[12.0, 10.0]]]))
    torch.testing.assert_close(same, image, atol=1e-3, rtol=0)


def _blob_regions(n: int, cfg: DCRNConfig) -> FaceRegions:
    """Faces drawn as dark dots at the mean shape's 5 points (a few yaws), on a light background."""
    size = int(cfg.crop_size * 1.5)
    regions = np.full((n, size, size, 3), 220, np.uint8)
    points = np.zeros((n, 5, 2), np.float32)
    yy, xx = np.mgrid[:size, :size]
    for i in range(n):
        points[i] = (_face(-20 + 10 * i, scale=cfg.crop_size * 0.4) - [50, 40]) + (size - 1) / 2 - [0, 10]
        for x, y in points[i]:
            regions[i][(xx - x) ** 2 + (yy - y) ** 2 < 5] = 0
    return FaceRegions(regions, points, cfg)


def test_turned_faces_keep_their_dots_under_their_points():
    cfg = DCRNConfig(crop_size=64)
    regions = _blob_regions(5, cfg)
    _, plain_points = crop_batch(regions, np.arange(5))
    crops, points = crop_batch(
        regions, np.arange(5), Augment(0, 0, 0, 0, yaw=25, yaw_probability=1.0), np.random.default_rng(3)
    )
    assert (points - plain_points).abs().max() > 0.02  # the points moved ...
    for crop, pts in zip(crops, points):
        for x, y in (pts.numpy() * 64 - 0.5).round().astype(int):
            assert crop[:, y - 1 : y + 2, x - 1 : x + 2].min() < 100  # ... and the dark dots with them


# ---------------------------------------------------------------- photometric
def test_photometric_effects():
    rng = np.random.default_rng(0)
    crops = torch.from_numpy(rng.uniform(0, 255, (6, 3, 16, 16))).float()
    assert photometric(crops, NO_PHOTOMETRIC, rng) is crops and photometric(crops, Photometric(blur=1.0), None) is crops
    grey = photometric(crops, Photometric(grey=1.0), rng)
    torch.testing.assert_close(grey[:, 0], grey[:, 2])
    occluded = photometric(crops, Photometric(occlusion=1.0), rng)
    flat = occluded != crops
    assert all(int(flat[i, 0].sum()) >= 9 for i in range(6))  # a rectangle of >= 3x3 pixels per crop
    for cfg in (Photometric(colour=1.0), Photometric(blur=1.0), Photometric(jpeg=1.0)):
        out = photometric(crops, cfg, rng)
        assert out.shape == crops.shape and float(out.min()) >= 0 and float(out.max()) <= 255
        assert not torch.equal(out, crops)


# ---------------------------------------------------------------- the detector's border
def test_border_width_by_hand():
    assert border_width(80, 80, 256) == 16 and border_width(109, 89, 256) == 22
    assert border_width(300, 200, 256) == 0 and border_width(80, 80, 0) == 0
    images, widths = with_borders([np.zeros((80, 60, 3), np.uint8), np.zeros((400, 300, 3), np.uint8)], 256)
    assert widths == [16, 0] and images[0].shape == (112, 92, 3) and images[0][0, 0, 0] == 127
    faces = Faces(np.array([[20.0, 20, 50, 60]]), np.ones(1), np.full((1, 5, 2), 30.0))
    moved = without_border(faces, 16)
    assert moved.boxes.tolist() == [[4, 4, 34, 44]] and float(moved.landmarks.max()) == 14


def test_a_face_filling_its_crop_is_found_with_the_border():
    # an AFLW crop whose face runs past the image's edges: nothing without the border (for the
    # weights the border was made for; the 2026-12-06 default finds this one even without it)
    path = require("mtfl/aflw_half/AFLW/0472-image69738.jpg")
    weights = "mtcnn-2026-12-05"
    assert len(FaceDetector(weights, small_image_side=0).detect(path)) == 0
    found = FaceDetector(weights).detect(path)
    assert len(found) >= 1 and found.boxes[0, 2] - found.boxes[0, 0] > 40  # a face-sized box
    with pytest.raises(ValueError, match="small_image_side"):
        FaceDetector(small_image_side=-1)


# ---------------------------------------------------------------- detect first
class _Stub:
    def __init__(self, faces):
        self.out = faces

    def detect_arrays(self, arrays):
        return [self.out for _ in arrays]


def test_detect_first_falls_back_to_the_whole_image_and_says_so():
    image = np.zeros((30, 40, 3), np.uint8)
    with pytest.warns(NoFaceFoundWarning, match="40x30"):
        faces, found = DetectFirst(_Stub(Faces.empty())).faces([image])
    assert found == [False] and faces[0].boxes.tolist() == [[0, 0, 40, 30]]
    detected = Faces(np.array([[1.0, 2, 11, 12]]), np.array([0.9]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        faces, found = DetectFirst(_Stub(detected)).faces([image])
    assert found == [True] and faces[0].boxes.tolist() == [[1, 2, 11, 12]]


def test_attributes_and_landmarks_of_a_face_image_use_the_detected_box():
    from facecascade import AttributeClassifier, FaceAligner

    path = require("celeba/img_align_celeba_89x109/000007.jpg")
    detected = FaceDetector().detect(path)
    assert len(detected) >= 1
    clf = AttributeClassifier()
    np.testing.assert_allclose(clf.predict(path).attributes, clf.predict(path, detected).attributes, atol=1e-6)
    aligner = FaceAligner()
    np.testing.assert_allclose(aligner.align(path).landmarks, aligner.align(path, detected).landmarks, atol=1e-4)


# ---------------------------------------------------------------- the report by pose
def test_bucket_summaries_by_hand():
    truth = np.concatenate([_face(0), _face(45), _face(-50), _face(75)])
    buckets = face_buckets(truth)
    assert buckets.tolist() == [0, 1, 1, 2] and face_buckets(np.zeros((2, 68, 2))) is None
    errors = {"inter-ocular": np.array([0.02, 0.05, np.inf, 0.2]), "face": np.array([0.01, 0.02, np.inf, 0.1])}
    summary = bucket_summaries(errors, np.array([1, 2, 4, 3]), buckets)
    assert list(summary) == ["<30", "30-60", ">60"]
    middle = summary["30-60"]
    assert (middle.faces, middle.missed, middle.failure_rate) == (2, 1, 0.5)
    assert middle.nme["inter-ocular"] == pytest.approx(0.05) and middle.mean_iterations == 2  # found faces only
    table = pose_table({("dcrn", "detect"): summary})
    assert "| dcrn | detect | 30-60 | 2 | 1 | 5.00 | 50.00 |" in table


# ---------------------------------------------------------------- the recipe's data
def test_aflw_training_faces_are_listed_three_times_and_validation_once():
    from facecascade.train.dcrn_recipe import landmark_faces

    data = require("mtfl").parent
    train, val = landmark_faces(data, "train", ("aflw",)), landmark_faces(data, "val", ("aflw",))
    every = read_landmark_faces("mtfl", require("mtfl/aflw_half/aflw_landmarks.txt"))
    assert len(train) % 3 == 0 and len(train) // 3 + len(val) == len(every)
    assert not {f.image for f in train} & {f.image for f in val}
    with pytest.raises(ValueError, match="unknown landmark sources"):
        landmark_faces(data, "val", ("aflw", "300w"))


def test_fine_tuning_starts_from_init_and_records_its_data(tmp_path):
    from facecascade.models.dcrn import DCRN
    from facecascade.models.dcrn_weights import load_dcrn, save_dcrn
    from facecascade.train.dcrn import DCRNTrainConfig
    from facecascade.train.dcrn_data import POSE_AUGMENT
    from facecascade.train.dcrn_recipe import run_phase

    cfg = DCRNConfig(crop_size=32, gen_width=8, gen_hidden=32, lrn_width=4, history=16)
    start = DCRN(cfg)
    save_dcrn(tmp_path / "start.pt", start, {"variant": "GEN"})
    tcfg = DCRNTrainConfig(
        batch_size=8, gen_epochs=1, augment=POSE_AUGMENT, sources=("aflw",), init=str(tmp_path / "start.pt")
    )
    out = run_phase("gen", require("mtfl").parent, tmp_path / "run", DCRNConfig(), tcfg, limit=24, quiet=True)
    model, meta = load_dcrn(out)
    assert model.cfg == cfg  # the architecture of the weights it started from, not the DCRNConfig given
    assert "AFLW" in meta["data"] and meta["train"]["init"] == str(tmp_path / "start.pt")
    assert meta["train"]["augment"]["yaw"] == 25.0
    torch.testing.assert_close(model.lrn.state_dict(), start.lrn.state_dict())  # phase gen leaves the LRN as it was


def test_mtfl_aflw_part_is_read_one_based(tmp_path):
    lines = [
        "lfw_5590\\a.jpg 10 20 15 12 18 30 30 40 50 50",
        "AFLW\\b.jpg 10 20 15 12 18 30 30 40 50 50",
    ]
    (tmp_path / "list.txt").write_text("\n".join(lines) + "\n")
    from facecascade.data.mtfl import read_mtfl_points

    (lfw, lfw_points), (aflw, aflw_points) = read_mtfl_points(tmp_path / "list.txt")
    assert (lfw, aflw) == ("lfw_5590/a.jpg", "AFLW/b.jpg")
    assert lfw_points[0].tolist() == [10, 30] and aflw_points[0].tolist() == [9, 29]  # 1-based -> 0-based
    _, (_, written) = read_mtfl_points(tmp_path / "list.txt", as_written=True)
    assert written[0].tolist() == [10, 30]


def test_eval_landmarks_reports_by_pose_and_as_written(tmp_path, capsys):
    import json

    from facecascade.cli import main

    annotations = require("mtfl/aflw_half/aflw_landmarks.txt")
    args = ["eval", "landmarks", "--format", "mtfl", "--annotations", str(annotations), "--limit", "24", "-q"]
    assert (
        main([*args, "--protocol", "box", "--json", str(tmp_path / "r.json"), "--plot", str(tmp_path / "ced.png")]) == 0
    )
    report = json.loads((tmp_path / "r.json").read_text())
    assert "By head pose" in capsys.readouterr().out
    assert sum(row["faces"] for row in report["by_pose"]) == report["results"][0]["faces"] == 24
    assert (tmp_path / "ced.png").is_file() and (tmp_path / "ced-yaw-0.png").is_file()
    assert main([*args, "--protocol", "box", "--as-written", "--json", str(tmp_path / "w.json")]) == 0
    written = json.loads((tmp_path / "w.json").read_text())["results"][0]["nme"]["inter-ocular"]
    assert written > report["results"][0]["nme"]["inter-ocular"]  # 1-based points as written score worse


def test_predict_without_a_face_warns_and_reads_the_whole_image():
    from facecascade import AttributeClassifier

    clf = AttributeClassifier()
    blank = np.full((60, 60, 3), 90, np.uint8)
    with pytest.warns(NoFaceFoundWarning):
        faces = clf.predict(blank)
    assert faces.boxes.tolist() == [[0, 0, 60, 60]]
    np.testing.assert_allclose(faces.attributes, clf.predict_arrays([blank])[0].attributes, atol=1e-6)


def test_aligner_flip_averages_the_mirrored_crop_swapped_back():
    from facecascade import FaceAligner
    from facecascade.data.landmarks import flip_permutation

    aligner = FaceAligner()  # the shipped weights ask for flip averaging in their meta
    assert aligner.flip and not FaceAligner(flip=False).flip
    rng = np.random.default_rng(0)
    crops = rng.integers(0, 256, (3, aligner.cfg.crop_size, aligner.cfg.crop_size, 3), dtype=np.uint8)
    plain, plain_steps = aligner._network_points(crops)
    mirrored, mirrored_steps = aligner._network_points(np.ascontiguousarray(crops[:, :, ::-1]))
    expected = mirrored[:, flip_permutation(5)].copy()
    expected[..., 0] = 1 - expected[..., 0]
    points, steps = aligner._points(crops)
    np.testing.assert_allclose(points, (plain + expected) / 2, atol=1e-6)
    assert steps.tolist() == np.maximum(plain_steps, mirrored_steps).tolist()
    symmetric = np.ascontiguousarray(np.concatenate([crops[:, :, :32], crops[:, :, :32][:, :, ::-1]], 2))
    points, _ = aligner._points(symmetric)  # a mirror-symmetric crop gets mirror-symmetric points
    np.testing.assert_allclose(points[:, 0, 0], 1 - points[:, 1, 0], atol=1e-5)
