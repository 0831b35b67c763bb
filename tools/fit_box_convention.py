"""Fit a dataset's box convention onto WIDER FACE's, with the original MTCNN as the bridge.

Runs ``FaceDetector(weights=REFERENCE)`` (default ``mtcnn-original``, trained on WIDER FACE) on
training-split images of each set, pairs every annotated face at least ``--min-height`` px high
with the detection of highest IoU (kept from IoU 0.4), and fits
`facecascade.data.conventions.BoxConvention` (median side shifts) from the annotations to the
detections. WIDER train is fitted too, as the check that the reference follows WIDER's convention
(its shifts should be near 0). Prints one line per set (paste face_mask's into
``FACE_MASK_TO_WIDER``).

    python tools/fit_box_convention.py [--data ../shared/data] [--images 150]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from facecascade import FaceDetector, load_image
from facecascade.data import read_dataset, select_split
from facecascade.data.conventions import fit_box_convention
from facecascade.data.records import FaceRecord
from facecascade.ops.boxes import box_iou

SETS = {
    "wider": ("wider", "wider_face/wider_face_split/wider_face_train_bbx_gt.txt", "wider_face/WIDER_train/images"),
    "face_mask": ("voc", "face_mask/annotations", "face_mask/images"),
    "caltech": ("caltech", "caltech_webfaces/WebFaces_GroundThruth.txt", "caltech_webfaces/images"),
}


def matched_pairs(
    detector: FaceDetector, records: list[FaceRecord], min_height: float
) -> tuple[np.ndarray, np.ndarray]:
    """Annotated boxes ``(M, 4)`` and their best-overlapping detections ``(M, 4)``."""
    annotated, detected = [], []
    for record in tqdm(records, unit="img"):
        gt = record.boxes[~record.ignore]
        gt = gt[gt[:, 3] - gt[:, 1] >= min_height]
        faces = detector.detect(load_image(record.image)) if len(gt) else None
        if faces is None or len(faces) == 0:
            continue
        iou = box_iou(torch.from_numpy(gt), torch.from_numpy(faces.boxes)).numpy()
        keep = iou.max(1) >= 0.4
        annotated.append(gt[keep])
        detected.append(faces.boxes[iou.argmax(1)[keep]])
    return np.concatenate(annotated), np.concatenate(detected)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--images", type=int, default=150, help="training-split images per set")
    parser.add_argument("--min-height", type=float, default=24.0, help="faces at least this high (px)")
    parser.add_argument("--reference", default="mtcnn-original", help="weights trained on the reference convention")
    args = parser.parse_args()
    detector = FaceDetector(weights=args.reference, min_face_size=12)
    for name, (fmt, gt_path, images) in SETS.items():
        records = select_split(read_dataset(fmt, args.data / gt_path, args.data / images), "train")
        convention, stats = fit_box_convention(*matched_pairs(detector, records[: args.images], args.min_height))
        print(f"{name}: {convention} { ({k: round(v, 3) for k, v in stats.items()}) }", flush=True)


if __name__ == "__main__":
    main()
