"""Where a cascade loses faces: recall at IoU 0.5 by annotated face height, and after each stage.

Runs each weights (at ``--min-face``) on the first ``--images`` validation-split images of
Caltech WebFaces or of the shared WIDER FACE train subset (``--set``; never trained on; WIDER's
invalid faces left out) and prints, per weights, (1) final recall by face-height bucket and (2) for faces of
``--min-height``..``--max-height`` px, the share still covered by a candidate (IoU >= 0.5) after
P-Net, R-Net and O-Net.

    python tools/recall_by_height.py --weights mtcnn mtcnn-original [--images 300]
    python tools/recall_by_height.py --set wider --min-face 10 --min-height 10 --max-height 16
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from facecascade import FaceDetector, load_image
from facecascade.data import read_dataset, select_split
from facecascade.data.records import FaceRecord
from facecascade.ops.boxes import box_iou

EDGES = (0, 10, 12, 16, 20, 25, 30, 40, 50, float("inf"))
SETS = {
    "caltech": ("caltech", "caltech_webfaces/WebFaces_GroundThruth.txt", "caltech_webfaces/images"),
    "wider": ("wider", "wider_face/wider_face_split/wider_face_train_bbx_gt.txt", "wider_face/WIDER_train/images"),
}


def validation_records(data: Path, name: str, limit: int) -> list[FaceRecord]:
    """The set's first ``limit`` validation images, without their ignored (WIDER: invalid) faces."""
    fmt, annotations, images = SETS[name]
    records = select_split(read_dataset(fmt, data / annotations, data / images), "val")[:limit]
    return [FaceRecord(r.image, r.boxes[~r.ignore], source=r.source) for r in records]


def covered(gt: torch.Tensor, boxes: torch.Tensor) -> np.ndarray:
    if len(gt) == 0 or len(boxes) == 0:
        return np.zeros(len(gt), bool)
    return (box_iou(gt, boxes).max(1).values >= 0.5).numpy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--weights", nargs="+", default=["mtcnn", "mtcnn-original"])
    parser.add_argument("--set", choices=list(SETS), default="caltech")
    parser.add_argument("--images", type=int, default=300)
    parser.add_argument("--min-face", type=float, default=20.0, help="the detectors' min_face_size")
    parser.add_argument("--min-height", type=float, default=20.0)
    parser.add_argument("--max-height", type=float, default=30.0)
    args = parser.parse_args()
    records = validation_records(args.data, args.set, args.images)
    images = [load_image(r.image) for r in records]
    for weights in args.weights:
        cascade = FaceDetector(weights=weights, min_face_size=args.min_face).cascade
        hits, totals = np.zeros(len(EDGES) - 1), np.zeros(len(EDGES) - 1)
        stage_hits, band_total = np.zeros(3), 0
        for record, image in zip(records, images):
            gt = torch.from_numpy(record.boxes)
            height = (gt[:, 3] - gt[:, 1]).numpy()
            with torch.inference_mode():
                batch = cascade.prepare([image])
                after_p = cascade.propose(batch)
                after_r = cascade.refine(batch, after_p)
                after_o, _ = cascade.output(batch, after_r)
            bucket = np.digitize(height, EDGES) - 1
            np.add.at(totals, bucket, 1)
            np.add.at(hits, bucket, covered(gt, after_o.boxes))
            band = (height >= args.min_height) & (height < args.max_height)
            band_total += int(band.sum())
            for k, cands in enumerate((after_p, after_r, after_o)):
                stage_hits[k] += covered(gt[torch.from_numpy(band)], cands.boxes).sum()
        by_height = ", ".join(
            f"{EDGES[i]:g}-{EDGES[i + 1]:g} px {hits[i] / max(totals[i], 1):.2f} ({int(totals[i])})"
            for i in range(len(totals))
        )
        print(f"{weights}: recall by height: {by_height}")
        print(
            f"{weights}: {band_total} faces of {args.min_height:g}-{args.max_height:g} px covered after "
            f"P/R/O-Net: " + " / ".join(f"{h / max(band_total, 1):.2f}" for h in stage_hits)
        )


if __name__ == "__main__":
    main()
