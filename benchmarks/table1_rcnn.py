"""Cascade R-CNN's Table 1 on our face validation split: COCO AP (pycocotools) of two-stage
detectors trained by `facecascade train rcnn`, each set separately, beside our MTCNN in the same
run.

    python benchmarks/table1_rcnn.py runs/rcnn/baseline-joint.pt runs/rcnn/cascade-joint.pt \\
        --iterative runs/rcnn/baseline-joint.pt --mtcnn --limit 300

``--iterative W``: also the weights W with their stage applied three times at inference (the
paper's *iterative BBox* is the baseline run iteratively). ``--mtcnn``: also the shipped MTCNN
(``FaceDetector(weights="mtcnn")``, as ``facecascade eval detection`` runs it). Weights with a box
regressor per training source draw each set's boxes in that set's convention (``--convention
auto``), in their default (WIDER FACE's: ``default``), or both (``both``: one row each). Images:
the validation split (never trained on) of face_mask and Caltech WebFaces, the first ``--limit``
of each; seconds per image on this process's threads (``--threads``).
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch
from tqdm import tqdm

from facecascade import FaceDetector
from facecascade.detect.two_stage import TwoStageDetector
from facecascade.eval.cli import choose_conventions
from facecascade.eval.coco_metrics import coco_ap
from facecascade.io import load_image
from facecascade.models.cascade_heads import CascadeRoIHeads
from facecascade.train.rcnn_recipe import face_records

COLUMNS = ("AP", "AP50", "AP60", "AP70", "AP75", "AP80", "AP90")


def detect_all(detector, records, quiet: bool) -> list[dict]:
    out = []
    for record in tqdm(records, disable=quiet, desc="detect", leave=False):
        faces = detector.detect_arrays([load_image(record.image)])[0]
        out.append({"boxes": faces.boxes, "scores": faces.scores})
    return out


def iterative(detector: TwoStageDetector) -> TwoStageDetector:
    """The same weights with their (single) stage applied three times at inference."""
    model = detector.model
    heads = model.roi_heads
    iterated = CascadeRoIHeads(replace(heads.cfg, test_iterations=3), heads.roi_features, heads.feature_size)
    iterated.load_state_dict(heads.state_dict())
    iterated.convention = heads.convention
    model.roi_heads = iterated.eval()
    return detector


def detectors(args) -> list[tuple[str, object]]:
    runs: list[tuple[str, object]] = [(Path(w).stem, TwoStageDetector(w)) for w in args.weights]
    runs += [(f"{Path(w).stem} iterative", iterative(TwoStageDetector(w))) for w in args.iterative]
    if args.mtcnn:
        runs.append(("mtcnn", FaceDetector(weights="mtcnn")))
    return runs


def convention_choices(detector, choice: str) -> list[str]:
    """The ``choose_conventions`` choices to run ``detector`` with (``"both"``: auto and default)."""
    if choice == "both" and getattr(detector, "conventions", ()):
        return ["auto", "default"]
    return ["auto" if choice == "both" else choice]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("weights", nargs="*", help="rcnn checkpoints (save_rcnn format) or names")
    parser.add_argument("--iterative", nargs="*", default=[], help="weights also run as iterative BBox")
    parser.add_argument("--mtcnn", action="store_true", help="also the shipped MTCNN, for reference")
    parser.add_argument("--convention", choices=["auto", "default", "both"], default="auto")
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[1].parent / "shared" / "data")
    parser.add_argument("--limit", type=int, default=0, help="validation images per set (0: all)")
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("-q", "--quiet", action="store_true")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    records = face_records(args.data, "val")
    sets = {
        name: [r for r in records if r.source == source][: args.limit or None]
        for name, source in (("face_mask", "voc"), ("Caltech", "caltech"))
    }
    print(f"| detector | set | images | {' | '.join(COLUMNS)} | s / image |")
    print("|---|---|---:|" + "---:|" * (len(COLUMNS) + 1))
    for name, detector in detectors(args):
        for set_name, chosen in sets.items():
            for choice in convention_choices(detector, args.convention):
                convention = choose_conventions({name: detector}, chosen, choice)
                suffix = f" ({convention[name]} boxes)" if convention else ""
                began = time.time()
                found = detect_all(detector, chosen, args.quiet)
                seconds = (time.time() - began) / max(1, len(chosen))
                ap = coco_ap(chosen, found)
                cells = " | ".join(f"{100 * ap[k]:.1f}" for k in COLUMNS)
                print(f"| {name}{suffix} | {set_name} | {len(chosen)} | {cells} | {seconds:.3f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
