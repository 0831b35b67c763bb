"""Landmark datasets for the aligner: one `LandmarkFace` per annotated face, any number of points.

=========  ===========================================  =============================================
format     ``path``                                      points, box
=========  ===========================================  =============================================
mtfl       MTFL list (``lfw_5590_landmarks.txt``)        5 (eye centres, nose, mouth corners); box
                                                         derived from the points (`BoxFromPoints`)
celeba     CelebA folder or its landmarks list           5, same definition and box rule
pts        a ``.pts`` file or a folder of them, each     K from the file (68 in the 300W/iBUG layout);
           beside its image (same stem)                  box = the points' bounding box (the 300W
                                                         "ground-truth box" convention)
=========  ===========================================  =============================================

Normalising distances (`normalizers`): for 5 points the eye-centre distance serves as both
"inter-ocular" and "inter-pupil"; for 68 points inter-ocular is the outer eye corners (points 37
and 46, 1-based) and inter-pupil the distance of the two eyes' centroids (37-42, 43-48); "face"
is ``sqrt(w * h)`` of the face box.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .records import FaceRecord

LANDMARK_FORMATS = ("mtfl", "celeba", "pts")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff")
# Left-right partner of each point, for mirroring (5-point MTCNN order; 68-point iBUG layout).
FLIP_PAIRS = {
    5: (1, 0, 2, 4, 3),
    68: tuple(
        list(range(16, -1, -1))
        + list(range(26, 16, -1))
        + [27, 28, 29, 30]
        + [35, 34, 33, 32, 31]
        + [45, 44, 43, 42, 47, 46, 39, 38, 37, 36, 41, 40]
        + [54, 53, 52, 51, 50, 49, 48]
        + [59, 58, 57, 56, 55]
        + [64, 63, 62, 61, 60]
        + [67, 66, 65]
    ),
}


@dataclass(frozen=True)
class LandmarkFace:
    """One face: its image, ``points (K, 2)`` float32 x, y pixels and ``box (4,)`` x1 y1 x2 y2."""

    image: Path
    points: np.ndarray
    box: np.ndarray
    source: str = ""


def flip_permutation(num_points: int) -> np.ndarray:
    """Index of each point's mirror partner; ``ValueError`` for a layout we have no pairs for."""
    if num_points not in FLIP_PAIRS:
        raise ValueError(f"no left-right point pairs known for {num_points} landmarks (known: {sorted(FLIP_PAIRS)})")
    return np.asarray(FLIP_PAIRS[num_points])


def eye_points(num_points: int) -> tuple[list[int], list[int]]:
    """Indices whose mean is the image-left and image-right eye centre."""
    if num_points == 5:
        return [0], [1]
    if num_points == 68:
        return list(range(36, 42)), list(range(42, 48))
    raise ValueError(f"no eye definition for {num_points} landmarks")


def ocular_points(num_points: int) -> tuple[list[int], list[int]]:
    """Indices whose means are the two ends of the inter-ocular distance: the eye centres for 5
    points, the outer eye corners (37 and 46, 1-based) for 68."""
    return ([36], [45]) if num_points == 68 else eye_points(num_points)


def normalizers(points: np.ndarray, boxes: np.ndarray, kind: str) -> np.ndarray:
    """``(N,)`` distances for NME: ``kind`` is ``inter-ocular``, ``inter-pupil`` or ``face``.

    ``points (N, K, 2)`` are the ground truth; ``boxes (N, 4)`` the faces' boxes (for ``face``).
    """
    points = np.asarray(points, np.float64)
    if kind == "face":
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        return np.sqrt(np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0, None))
    if kind in ("inter-ocular", "inter-pupil"):
        left, right = (ocular_points if kind == "inter-ocular" else eye_points)(points.shape[1])
        return np.linalg.norm(points[:, right].mean(1) - points[:, left].mean(1), axis=1)
    raise ValueError(f"unknown normalisation {kind!r}: use inter-ocular, inter-pupil or face")


def read_pts(path: Path) -> np.ndarray:
    """``(K, 2)`` float32 points of a ``.pts`` file (``version: 1`` / ``n_points: K`` / ``{`` ... ``}``).

    The format is 1-based (Matlab): the pixel centre of the top-left pixel is (1, 1); points are
    returned 0-based (minus 1) like every other reader here.
    """
    path = Path(path)
    lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    header = {}
    try:
        start, end = lines.index("{"), lines.index("}")
    except ValueError:
        raise ValueError(f"{path}: not a .pts file (no '{{' ... '}}' block)") from None
    for line in lines[:start]:
        key, _, value = line.partition(":")
        header[key.strip()] = value.strip()
    try:
        points = np.asarray([[float(v) for v in line.split()] for line in lines[start + 1 : end]], np.float32)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from exc
    if points.ndim != 2 or points.shape[1] != 2:
        raise ValueError(f"{path}: expected one 'x y' pair per line")
    if "n_points" in header and int(header["n_points"]) != len(points):
        raise ValueError(f"{path}: header says {header['n_points']} points, the file has {len(points)}")
    if not np.isfinite(points).all():
        raise ValueError(f"{path}: coordinates must be finite")
    return points - 1.0


def _image_beside(pts: Path) -> Path:
    for suffix in IMAGE_SUFFIXES:
        for candidate in (pts.with_suffix(suffix), pts.with_suffix(suffix.upper())):
            if candidate.is_file():
                return candidate
    raise FileNotFoundError(f"{pts}: no image with the same name beside it ({', '.join(IMAGE_SUFFIXES)})")


def read_pts_faces(path: Path) -> list[LandmarkFace]:
    """A ``.pts`` file or every ``*.pts`` under a folder (sorted), each with its image beside it."""
    path = Path(path)
    if path.is_dir():
        files = sorted(path.rglob("*.pts"))
        if not files:
            raise FileNotFoundError(f"no .pts files under {path}")
    elif path.is_file():
        files = [path]
    else:
        raise FileNotFoundError(f"{path} not found")
    faces = []
    for file in files:
        points = read_pts(file)
        box = np.concatenate([points.min(0), points.max(0)]).astype(np.float32)
        faces.append(LandmarkFace(_image_beside(file), points, box, "pts"))
    return faces


def faces_from_records(records: list[FaceRecord]) -> list[LandmarkFace]:
    """One `LandmarkFace` per record face that has all 5 points (records of mtfl / celeba)."""
    faces = []
    for record in records:
        if record.landmarks is None:  # no points at all: `has_landmarks` is all False
            continue
        keep = record.has_landmarks
        for i in np.flatnonzero(keep):
            faces.append(LandmarkFace(record.image, record.landmarks[i], record.boxes[i], record.source))
    return faces


def read_landmark_faces(fmt: str, path: Path, as_written: bool = False) -> list[LandmarkFace]:
    """Every annotated face of a dataset in ``fmt`` (see the module docstring); ``as_written``:
    MTFL's 1-based AFLW part keeps its file's coordinates (`facecascade.data.mtfl`)."""
    path = Path(path)
    if fmt == "pts":
        return read_pts_faces(path)
    if fmt not in LANDMARK_FORMATS:
        raise ValueError(f"unknown landmark format {fmt!r}; choose from {', '.join(LANDMARK_FORMATS)}")
    from .formats import read_dataset

    if fmt == "celeba" and path.is_file():  # the landmarks list itself
        from .celeba import read_celeba

        return faces_from_records(read_celeba(path.parent, landmarks_file=path))
    return faces_from_records(read_dataset(fmt, path, None, **({"as_written": True} if as_written else {})))


def split_faces(faces: list[LandmarkFace], split: str, val_fraction: float = 0.2, seed: int = 0) -> list[LandmarkFace]:
    """The faces of ``split`` (one of `facecascade.data.split.SPLITS`), by the same image-name hash
    as `select_split`, so a face is in the same split for every model of the project."""
    from .split import select_split

    return select_split(faces, split, val_fraction, seed)
