"""Parity with facenet-pytorch (the measure of `tests/test_parity.py`: the reference's faces
matched at IoU >= 0.9, extra faces, mean landmark difference) for each choice of bf16 stages, on
the original weights (Zhang et al.'s, trained by them on WIDER FACE and CelebA, never by us) and
the test's photos (the 9 dlib_faces photos and every third face_mask photo). It compares two
implementations of the same weights, not accuracy.
This is where the docs' "bf16 in P-Net / R-Net changes the answers" figures come from:

    python3 benchmarks/parity_precision.py fp32 pnet rnet onet pnet/rnet/onet

Each argument is a ``/``-separated set of stages run in bf16 (``fp32``: none).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from facecascade import FaceDetector
from facecascade.eval.parity import Parity, facenet_faces


def photos(data: Path) -> list[Path]:
    return sorted((data / "dlib_faces").glob("*.jpg")) + sorted((data / "face_mask" / "images").glob("*.jpg"))[::3]


def parity(detector, images, references) -> str:
    result = Parity()
    for image, reference in zip(images, references):
        result.add(*reference, detector.detect(image))
    return (
        f"{result.matched} / {result.reference_faces} ({result.rate:.2%}) | {result.extra} | "
        f"{result.landmark_difference:.4f}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("stages", nargs="+", help="bf16 stage sets, e.g. onet or pnet/rnet/onet; fp32: none")
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[1].parent / "shared" / "data")
    args = parser.parse_args()
    from facenet_pytorch import MTCNN

    reference = MTCNN(keep_all=True, device="cpu", min_face_size=20)
    images, references = [], []
    for path in photos(args.data):
        image = Image.open(path).convert("RGB")
        images.append(np.asarray(image))
        references.append(facenet_faces(reference, image))
    print(f"{len(images)} photos, original weights, min_face_size 20")
    print("| bf16 stages | reference faces matched (IoU >= 0.9) | extra faces | mean landmark difference px |")
    print("|---|---:|---:|---:|")
    for text in args.stages:
        stages = () if text == "fp32" else tuple(s for s in text.split("/") if s)
        detector = FaceDetector(weights="mtcnn-original", min_face_size=20)
        detector.cascade = detector.cascade.reconfigure(precision="bf16" if stages else "fp32", bf16_stages=stages)
        print(f"| {text} | {parity(detector, images, references)} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
