"""FaceDetector: every input type, batches of mixed sizes, empty results, settings, errors."""

import numpy as np
import pytest
import torch
from PIL import Image

from facecascade import FaceDetector, Faces

from .shared_data import require


@pytest.fixture(scope="module")
def detector():
    return FaceDetector(weights="mtcnn-original", device="cpu")


@pytest.fixture(scope="module")
def photo():
    return np.asarray(Image.open(require("dlib_faces/2008_002506.jpg")).convert("RGB")).copy()


def _same(a: Faces, b: Faces, atol=1e-3):
    assert len(a) == len(b)
    np.testing.assert_allclose(a.boxes, b.boxes, atol=atol)
    np.testing.assert_allclose(a.scores, b.scores, atol=1e-5)
    np.testing.assert_allclose(a.landmarks, b.landmarks, atol=atol)


def test_three_faces_with_sane_landmarks(detector, photo):
    faces = detector.detect(photo)
    assert isinstance(faces, Faces) and len(faces) == 3
    assert faces.boxes.dtype == np.float32 and faces.landmarks.shape == (3, 5, 2)
    assert np.all(np.diff(faces.scores) <= 0), "sorted by descending score"
    for box, pts in zip(faces.boxes, faces.landmarks):
        inside = (pts[:, 0] > box[0]) & (pts[:, 0] < box[2]) & (pts[:, 1] > box[1]) & (pts[:, 1] < box[3])
        assert inside.all()
        assert pts[0, 0] < pts[1, 0], "image-left eye is left of the image-right eye"
        assert pts[2, 1] > pts[:2, 1].min() and pts[3:, 1].min() > pts[2, 1] - 2, "nose below eyes, mouth below nose"


def test_every_input_type_gives_the_same_faces(detector, photo):
    path = require("dlib_faces/2008_002506.jpg")
    reference = detector.detect(photo)
    _same(detector.detect(str(path)), reference)
    _same(detector.detect(path), reference)
    _same(detector.detect(Image.fromarray(photo)), reference)
    _same(detector.detect(torch.from_numpy(photo).permute(2, 0, 1)), reference)  # CHW uint8
    _same(detector.detect(torch.from_numpy(photo).permute(2, 0, 1).float() / 255), reference, atol=0.5)
    _same(detector.detect(photo[..., ::-1].copy(), bgr=True), reference)


def test_bgr_without_the_flag_changes_the_answer(detector, photo):
    swapped = detector.detect(photo[..., ::-1].copy())
    assert len(swapped) != 3 or not np.allclose(swapped.scores, detector.detect(photo).scores, atol=1e-4)


def test_batch_of_mixed_sizes_equals_single_calls(detector, photo):
    crowd = np.asarray(Image.open(require("dlib_faces/bald_guys.jpg")).convert("RGB").resize((640, 498)))
    small = photo[40:300, 60:400].copy()
    images = [photo, crowd, small, np.zeros((50, 80, 3), np.uint8)]
    batch = detector.detect(images)
    assert isinstance(batch, list) and len(batch) == 4
    for image, faces in zip(images, batch):
        _same(faces, detector.detect(image))
    assert len(batch[3]) == 0
    stacked = detector.detect(np.stack([photo, photo]))  # a 4-D array is a batch
    assert len(stacked) == 2 and len(stacked[1]) == 3


def test_no_faces_gives_empty_arrays_never_none(detector):
    for image in (np.full((240, 320, 3), 127, np.uint8), np.zeros((8, 8, 3), np.uint8), np.zeros((1, 1, 3), np.uint8)):
        faces = detector.detect(image)
        assert faces.boxes.shape == (0, 4) and faces.scores.shape == (0,) and faces.landmarks.shape == (0, 5, 2)
        assert faces.to_dicts() == []
    assert detector.detect([]) == []


def test_min_face_size_and_thresholds_change_the_search(photo):
    strict = FaceDetector(thresholds=(0.6, 0.7, 0.99999999))
    assert len(strict.detect(photo)) < 3
    big_only = FaceDetector(min_face_size=300)
    assert len(big_only.detect(photo)) == 0  # the three faces are ~100 px


@pytest.mark.parametrize(
    "kwargs",
    [
        {"min_face_size": 0},
        {"scale_factor": 1.2},
        {"thresholds": (0.6, 0.7)},
        {"thresholds": (0.6, 0.7, 1.5)},
        {"batch_size": 0},
        {"weights": "mtcnn2"},
    ],
)
def test_bad_settings_raise_value_error(kwargs):
    with pytest.raises(ValueError):
        FaceDetector(**kwargs)


def test_cuda_request_without_cuda_is_a_clear_error():
    if torch.cuda.is_available():
        assert FaceDetector(device="cuda").device.type == "cuda"
    else:
        with pytest.raises(ValueError, match="CUDA is not available"):
            FaceDetector(device="cuda")


def test_bad_inputs_name_the_input(detector, tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.jpg"):
        detector.detect(tmp_path / "missing.jpg")
    bad = tmp_path / "bad.jpg"
    bad.write_text("hello")
    with pytest.raises(ValueError, match="bad.jpg"):
        detector.detect(bad)
    with pytest.raises(ValueError):
        detector.detect(np.zeros((0, 10, 3), np.uint8))
    with pytest.raises(ValueError):
        detector.detect(np.zeros((10, 10, 5), np.uint8))
    with pytest.raises(ValueError):
        detector.detect(12345)


def test_stages_drop_windows_outside_the_image(detector):
    """Candidates whose crop window is empty (fully outside the image) are dropped, not crashed on."""
    from facecascade.detect.mtcnn import Candidates

    cascade = detector.cascade
    outside = Candidates(torch.tensor([[-30.0, -30.0, -10.0, -10.0]]), torch.tensor([0.9]), torch.tensor([0]))
    with torch.inference_mode():
        batch = cascade.prepare([np.zeros((50, 50, 3), np.uint8)])
        assert len(cascade.refine(batch, outside).boxes) == 0
        final, landmarks = cascade.output(batch, outside)
    assert final.boxes.shape == (0, 4) and landmarks.shape == (0, 5, 2)


def _proposals_changed_vs_default(detector, photo, **changes):
    """P-Net proposals for the photo and a crop of it, with the config ``changes`` and without."""
    cascade = detector.cascade
    changed = cascade.reconfigure(**changes)
    with torch.inference_mode():
        batch = cascade.prepare([photo, photo[100:, :333].copy()])
        return changed.propose(batch), cascade.propose(batch)


@pytest.mark.parametrize("band", [1, 5, 1 << 20])
def test_pnet_bands_do_not_change_proposals(detector, photo, band):
    """P-Net run band by band (any band height, down to one response row) equals one pass."""
    ours, ref = _proposals_changed_vs_default(detector, photo, pnet_band=band)
    assert len(ref.boxes) > 50
    assert torch.equal(ours.image_index, ref.image_index)
    torch.testing.assert_close(ours.boxes, ref.boxes)
    torch.testing.assert_close(ours.scores, ref.scores)


def test_weights_bring_their_operating_point_unless_overridden(photo):
    from facecascade.models.weights import load_mtcnn_with_meta

    trained = FaceDetector(weights="mtcnn")
    assert list(trained.config.thresholds) == load_mtcnn_with_meta("mtcnn")[1]["thresholds"]
    assert FaceDetector(weights="mtcnn", thresholds=(0.6, 0.7, 0.7)).config.thresholds == (0.6, 0.7, 0.7)
    assert FaceDetector(weights="mtcnn-original").config.thresholds == (0.6, 0.7, 0.7)
    assert len(trained.detect(photo)) >= 3  # the three people of the photo


def test_max_proposals_keeps_each_images_best_boxes(detector, photo):
    """A per-image cap keeps, for every image, exactly its best-scoring uncapped proposals."""
    from dataclasses import replace

    ours, ref = _proposals_changed_vs_default(detector, photo, max_proposals=7)
    for i in (0, 1):
        mine, all_ = ours.image_index == i, ref.image_index == i
        assert int(all_.sum()) > 7 and int(mine.sum()) == 7
        best = torch.sort(ref.scores[all_], descending=True).values[:7]
        torch.testing.assert_close(torch.sort(ours.scores[mine], descending=True).values, best)
    with pytest.raises(ValueError, match="max_proposals"):
        replace(detector.config, max_proposals=-1)


def test_box_voting_moves_boxes_only(photo):
    """Box voting (MTCNNConfig.box_voting) replaces each output box by the score-weighted mean of
    the O-Net boxes around it: the same faces, scores and landmarks, boxes moved a little; at IoU 1
    only a box's exact twins vote, so nothing moves."""
    from facecascade.ops.boxes import box_iou

    plain = FaceDetector(weights="mtcnn-original", min_face_size=12)
    cascade = plain.cascade
    unvoted = plain.detect(photo)
    plain.cascade = cascade.reconfigure(box_voting=1.0)
    _same(plain.detect(photo), unvoted, atol=1e-4)
    plain.cascade = cascade.reconfigure(box_voting=0.5)
    voted = plain.detect(photo)
    np.testing.assert_array_equal(voted.scores, unvoted.scores)
    np.testing.assert_array_equal(voted.landmarks, unvoted.landmarks)
    moved = np.abs(voted.boxes - unvoted.boxes).max(1)
    assert (moved > 0.01).any(), "no neighbour voted: the test photo no longer exercises voting"
    iou = box_iou(torch.from_numpy(voted.boxes), torch.from_numpy(unvoted.boxes)).diagonal()
    assert (iou > 0.8).all()
    with pytest.raises(ValueError, match="box_voting"):
        cascade.reconfigure(box_voting=1.5)


def test_nms_refined_drops_near_duplicate_windows_before_onet(photo):
    """MTCNNConfig.nms_refined: an NMS on R-Net's calibrated, squared windows. At IoU 1 it keeps every
    window (an overlap is never above 1), so the answers are the same; below, the windows left
    overlap each other at most that much, fewer reach O-Net, and the faces stay."""
    from facecascade.ops.boxes import box_iou

    detector = FaceDetector(weights="mtcnn", min_face_size=12)
    cascade = detector.cascade.reconfigure(nms_refined=0.0)
    with torch.inference_mode():
        batch = cascade.prepare([photo])
        proposed = cascade.propose(batch)
        windows = cascade.refine(batch, proposed)
        same = cascade.reconfigure(nms_refined=1.0).refine(batch, proposed)
        fewer = cascade.reconfigure(nms_refined=0.7).refine(batch, proposed)
    torch.testing.assert_close(same.boxes, windows.boxes)
    assert 0 < len(fewer.boxes) < len(windows.boxes)
    iou = box_iou(fewer.boxes, fewer.boxes).fill_diagonal_(0)
    assert float(iou.max()) <= 0.7
    assert all(any(torch.equal(box, kept) for kept in windows.boxes) for box in fewer.boxes), "a subset"
    detector.cascade = cascade.reconfigure(nms_refined=0.7)
    assert len(detector.detect(photo)) == len(FaceDetector(weights="mtcnn", min_face_size=12).detect(photo)) >= 3
    with pytest.raises(ValueError, match="nms_refined"):
        cascade.reconfigure(nms_refined=-0.1)
