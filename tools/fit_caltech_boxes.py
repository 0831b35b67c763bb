"""Fit the Caltech WebFaces points-to-box transform against original-MTCNN boxes.

Runs ``FaceDetector(weights="mtcnn-original")`` on training-split Caltech images, pairs each
annotated face with the detection whose eyes lie within a quarter of the eye distance of the
annotated eyes, and fits `facecascade.data.boxfit.BoxFromPoints` to those pairs. Prints the
coefficients (to paste into ``facecascade/data/caltech.py``) and the fit quality.

    python tools/fit_caltech_boxes.py [--data ../shared/data] [--images 1500]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from tqdm import tqdm

from facecascade import FaceDetector, load_image
from facecascade.data import fit_box_transform, read_caltech, read_caltech_points, split_records


def matched_pairs(detector: FaceDetector, root: Path, limit: int) -> tuple[np.ndarray, np.ndarray]:
    """Annotated points ``(M, 4, 2)`` and the matched MTCNN boxes ``(M, 4)``."""
    annotations = root / "WebFaces_GroundThruth.txt"
    points = read_caltech_points(annotations)
    train, _ = split_records(read_caltech(annotations, root / "images"))
    pts_out, boxes_out = [], []
    for record in tqdm(train[:limit], unit="img"):
        faces = detector.detect(load_image(record.image))
        gt = points[record.image.name]
        if len(faces) == 0:
            continue
        for face in gt:
            io = np.linalg.norm(face[1] - face[0])
            err = np.linalg.norm(faces.landmarks[:, :2] - face[None, :2], axis=2).max(1)
            best = int(np.argmin(err))
            if err[best] < 0.25 * io:
                pts_out.append(face)
                boxes_out.append(faces.boxes[best])
    return np.asarray(pts_out), np.asarray(boxes_out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--images", type=int, default=1500, help="training-split images to use")
    args = parser.parse_args()
    detector = FaceDetector(weights="mtcnn-original")
    pts, boxes = matched_pairs(detector, args.data / "caltech_webfaces", args.images)
    transform, stats = fit_box_transform(pts[:, 0], pts[:, 1], pts[:, 3], boxes)
    print(transform)
    print({k: round(v, 4) for k, v in stats.items()})


if __name__ == "__main__":
    main()
