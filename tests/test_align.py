"""Face crops: the similarity fit, box crops, the batched warp, `Faces.crops` on a real photo."""

import numpy as np
import pytest

from facecascade import FaceDetector, Faces, load_image
from facecascade.ops.align import ARCFACE_112, box_transforms, similarity_transforms, warp_crops

from .shared_data import require


def _similarity(angle_deg, scale, tx, ty):
    a = np.deg2rad(angle_deg)
    return np.array([[scale * np.cos(a), -scale * np.sin(a), tx], [scale * np.sin(a), scale * np.cos(a), ty]])


def _apply(matrix, points):
    return points @ matrix[:, :2].T + matrix[:, 2]


def test_similarity_fit_recovers_a_known_transform():
    truth = _similarity(30.0, 2.0, 5.0, -7.0)
    src = np.array([[10.0, 20.0], [40.0, 22.0], [25.0, 35.0], [14.0, 50.0], [38.0, 51.0]])
    fitted = similarity_transforms(src[None], _apply(truth, src))
    np.testing.assert_allclose(fitted[0], truth, atol=1e-9)


def test_similarity_fit_is_least_squares_and_never_mirrors():
    src = ARCFACE_112.copy()
    mirrored = src * np.array([-1.0, 1.0])  # a reflection cannot be a similarity
    fitted = similarity_transforms(src[None], mirrored)[0]
    assert np.linalg.det(fitted[:, :2]) > 0
    # two points only: exact fit (4 unknowns, 4 equations)
    pair = similarity_transforms(src[None, :2], mirrored[:2])[0]
    np.testing.assert_allclose(_apply(pair, src[:2]), mirrored[:2], atol=1e-9)


def test_similarity_fit_rejects_bad_shapes():
    with pytest.raises(ValueError, match="K >= 2"):
        similarity_transforms(np.zeros((1, 1, 2)), np.zeros((1, 2)))
    with pytest.raises(ValueError):
        similarity_transforms(np.zeros((1, 5, 2)), np.zeros((4, 2)))


def test_box_transform_maps_the_square_onto_the_crop():
    matrix = box_transforms(np.array([[10.0, 20.0, 30.0, 60.0]]), size=80)[0]  # 20 x 40 box -> 40 x 40 square
    corners = np.array([[0.0, 20.0], [40.0, 60.0]])  # the square around the box's centre (20, 40)
    np.testing.assert_allclose(_apply(matrix, corners), [[-0.5, -0.5], [79.5, 79.5]])


def test_warp_moves_a_dot_to_where_the_transform_says():
    image = np.zeros((60, 90, 3), np.uint8)
    image[25, 70] = (255, 128, 0)
    matrix = np.array([[1.0, 0.0, -50.0], [0.0, 1.0, -15.0]])  # pixel (70, 25) -> crop (20, 10)
    crop = warp_crops(image, matrix[None], size=32)[0]
    assert crop.shape == (32, 32, 3) and crop.dtype == np.uint8
    assert tuple(crop[10, 20]) == (255, 128, 0)
    assert crop.sum() == 255 + 128


def test_warp_outside_the_image_is_black_and_empty_is_fine():
    image = np.full((10, 10, 3), 200, np.uint8)
    far = np.array([[[1.0, 0.0, 100.0], [0.0, 1.0, 100.0]]])  # the crop sees only outside pixels
    assert warp_crops(image, far, 8).max() == 0
    assert warp_crops(image, np.zeros((0, 2, 3)), 8).shape == (0, 8, 8, 3)


@pytest.fixture(scope="module")
def photo_and_faces():
    image = load_image(require("dlib_faces/2008_002506.jpg"))
    return image, FaceDetector().detect(image)


def test_aligned_crops_put_the_landmarks_on_the_template(photo_and_faces):
    image, faces = photo_and_faces
    for size in (112, 224):
        crops = faces.crops(image, size=size)
        assert crops.shape == (len(faces), size, size, 3) and crops.dtype == np.uint8
        matrices = similarity_transforms(faces.landmarks, ARCFACE_112 * size / 112)
        mapped = np.stack([_apply(m, p) for m, p in zip(matrices, faces.landmarks)])
        # a similarity cannot match 5 points exactly; on upright frontal faces it comes close
        assert np.abs(mapped - ARCFACE_112 * size / 112).max() < 0.12 * size


def test_unaligned_crops_and_faces_without_landmarks(photo_and_faces):
    image, faces = photo_and_faces
    plain = faces.crops(image, size=64, align=False)
    bare = Faces(faces.boxes, faces.scores).crops(image, size=64)  # no landmarks: box crops
    np.testing.assert_array_equal(plain, bare)
    x1, y1, x2, y2 = faces.boxes[0]
    cx, cy = round((x1 + x2) / 2 - 0.5), round((y1 + y2) / 2 - 0.5)
    window = image[cy - 1 : cy + 2, cx - 1 : cx + 2].astype(int)  # the crop's centre samples near here
    centre = plain[0, 31:33, 31:33].astype(int).mean(axis=(0, 1))
    assert (window.min(axis=(0, 1)) - 2 <= centre).all() and (centre <= window.max(axis=(0, 1)) + 2).all()
    assert Faces.empty().crops(image).shape == (0, 112, 112, 3)
    with pytest.raises(ValueError, match="size"):
        faces.crops(image, size=0)
