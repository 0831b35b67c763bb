"""Cascade R-CNN's Table 1 on our face validation split: COCO AP (pycocotools) of two-stage
detectors trained by `facecascade train rcnn`, each set separately and both together.

    python benchmarks/table1_rcnn.py runs/rcnn/baseline-joint.pt runs/rcnn/cascade-joint.pt \\
        --iterative runs/rcnn/baseline-joint.pt --limit 300

``--iterative W``: also the weights W with their stage applied three times at inference (the
paper's *iterative BBox* is the baseline run iteratively). Images: the validation split (never
trained on) of face_mask and Caltech WebFaces, the first ``--limit`` of each.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch
from tqdm import tqdm

from facecascade.eval.coco_metrics import coco_ap
from facecascade.io import load_image
from facecascade.models.cascade_heads import CascadeRoIHeads
from facecascade.models.cascade_rcnn import image_input
from facecascade.models.rcnn_weights import load_rcnn
from facecascade.train.rcnn_recipe import face_records


@torch.inference_mode()
def detect_all(model, records, quiet: bool) -> list[dict]:
    out = []
    for record in tqdm(records, disable=quiet, desc="detect", leave=False):
        found = model([image_input(load_image(record.image))])[0]
        out.append({k: v.numpy() for k, v in found.items()})
    return out


def iterative(model):
    """The same weights with their (single) stage applied three times at inference."""
    heads = replace(model.cfg.heads, test_iterations=3)
    iterated = CascadeRoIHeads(heads)
    iterated.load_state_dict(model.roi_heads.state_dict())
    model.roi_heads = iterated.eval()
    return model


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("weights", nargs="*", help="rcnn checkpoints (save_rcnn format)")
    parser.add_argument("--iterative", nargs="*", default=[], help="weights also run as iterative BBox")
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
    runs = [(Path(w).stem, w, False) for w in args.weights] + [
        (f"{Path(w).stem} iterative", w, True) for w in args.iterative
    ]
    print("| detector | set | images | AP | AP50 | AP60 | AP70 | AP75 | AP80 | AP90 | s / image |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, weights, iterate in runs:
        model, _ = load_rcnn(weights)
        model = iterative(model) if iterate else model
        for set_name, chosen in sets.items():
            began = time.time()
            found = detect_all(model, chosen, args.quiet)
            seconds = (time.time() - began) / max(1, len(chosen))
            ap = coco_ap(chosen, found)
            cells = " | ".join(f"{100 * ap[k]:.1f}" for k in ("AP", "AP50", "AP60", "AP70", "AP75", "AP80", "AP90"))
            print(f"| {name} | {set_name} | {len(chosen)} | {cells} | {seconds:.2f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
