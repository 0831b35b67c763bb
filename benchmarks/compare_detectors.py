"""AP@0.5 of several detectors on the validation splits of face_mask and Caltech WebFaces, one run.

Every weights (and, with ``--fast``, each one's fast path) detects the same images; the table has
AP@0.5 per set and the change against the first column's detector. This is how the docs'
joint-vs-separate and fast-vs-standard AP figures are made:

    python benchmarks/compare_detectors.py --weights mtcnn runs/joint/mtcnn-joint.pt runs/joint/mtcnn-separate.pt
    python benchmarks/compare_detectors.py --weights mtcnn mtcnn-joint mtcnn-original --fast
    python benchmarks/compare_detectors.py --weights mtcnn --setting block:suppression=block \
        block+reuse:suppression=block,patch_reuse=true     # engine settings of the first weights

(``facecascade eval detection`` gives the same AP per set, with recall and PR curves.)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from types import SimpleNamespace

from facecascade import FaceDetector
from facecascade.data import select_split
from facecascade.eval.cli import load_detectors, read_records, run_detectors
from facecascade.eval.metrics import evaluate_detections

sys.path.insert(0, str(Path(__file__).resolve().parent))
from stage_times import parse_setting

SETS = {
    "face_mask": ("voc", "face_mask/annotations", "face_mask/images"),
    "Caltech": ("caltech", "caltech_webfaces/WebFaces_GroundThruth.txt", "caltech_webfaces/images"),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[1].parent / "shared" / "data")
    parser.add_argument("--weights", nargs="+", default=["mtcnn"])
    parser.add_argument("--fast", action="store_true", help="also each weights' fast path")
    parser.add_argument("--limit", type=int, default=None, help="first N validation images per set")
    parser.add_argument(
        "--split",
        default="val",
        choices=["val", "val-tune", "val-report"],
        help="the validation split, or one of its halves (val-report: untouched by any choice)",
    )
    parser.add_argument(
        "--setting",
        nargs="+",
        default=[],
        metavar="NAME:key=value,...",
        help="also the first weights with these MTCNNConfig settings (see stage_times.py)",
    )
    args = parser.parse_args()

    detectors = load_detectors(SimpleNamespace(weights=args.weights, fast=args.fast, device="cpu", min_face=20.0))
    for text in args.setting:
        name, settings = parse_setting(text)
        detector = FaceDetector(weights=args.weights[0])
        detector.cascade = detector.cascade.reconfigure(**settings)
        detectors[f"{args.weights[0]} {name}"] = detector
    ap: dict[str, dict[str, float]] = {name: {} for name in detectors}
    for set_name, (fmt, labels, images) in SETS.items():
        records = read_records(fmt, args.data / labels, args.data / images)
        records = select_split(records, args.split, 0.2)[: args.limit]
        kept, predictions, _ = run_detectors(detectors, records, quiet=True)
        for name, found in predictions.items():
            ap[name][set_name] = evaluate_detections(found, kept, (0.5,), 0.0).ap(0.5)
    first = next(iter(ap))
    print(f"AP@0.5 on the {args.split} split")
    print("| detector | " + " | ".join(f"{s} AP@0.5 | vs first" for s in SETS) + " |")
    print("|---" + "|---:|---:" * len(SETS) + "|")
    for name, values in ap.items():
        cells = [f"{values[s]:.4f} | {100 * (values[s] - ap[first][s]):+.1f} pt" for s in SETS]
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
