"""AP of MTCNN cascades, and of mixes of their stages, at several operating points, in one run.

The study behind the 2026-12-06 `mtcnn` (model card): which stage loses WIDER FACE faces, and what
each cascade gives on WIDER (faces >= 10 / >= 20 px, AP50 / AP75), face_mask and Caltech WebFaces
(AP50 / AP75, each set's own boxes) at each (R-Net, O-Net) threshold pair, with and without box
voting. Each cascade detects each validation image once per R-Net threshold (P-Net at 0.3, the
mining threshold of the recipe), keeping every O-Net candidate down to ``--min-onet`` before the
final NMS (``nms_output=1``: none suppressed); the
O-Net threshold, the final intersection-over-minimum NMS (0.7) and box voting are then applied to
those candidates, which gives what the engine gives at those settings without a pass per setting.

A cascade is a weights name or file, or ``NAME=P,R,O``: P-Net, R-Net and O-Net taken from three
weights (e.g. ``mix=mtcnn,mtcnn-original,mtcnn``):

    python benchmarks/stage_mix.py --cascades mtcnn mtcnn-original ours-R-orig=mtcnn,mtcnn-original,mtcnn \\
        --pairs 0.2,0.2 0.1,0.2 --voting 0 0.6 [--split val-tune]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from facecascade import FaceDetector
from facecascade.data import read_dataset, select_split
from facecascade.detect.mtcnn import MTCNNCascade, MTCNNConfig, final_boxes
from facecascade.eval.cli import read_records
from facecascade.eval.metrics import evaluate_detections
from facecascade.io import load_image
from facecascade.models.weights import MTCNNNets, load_mtcnn

SETS = {  # name: (format, annotations, images, min_face_size, face heights scored)
    "WIDER": (
        "wider",
        "wider_face/wider_face_split/wider_face_train_bbx_gt.txt",
        "wider_face/WIDER_train/images",
        10.0,
        (10, 20),
    ),
    "face_mask": ("voc", "face_mask/annotations", "face_mask/images", 20.0, (0,)),
    "Caltech": ("caltech", "caltech_webfaces/WebFaces_GroundThruth.txt", "caltech_webfaces/images", 20.0, (0,)),
}


def cascade_nets(spec: str) -> tuple[str, MTCNNNets]:
    """``(label, nets)`` of ``NAME=P,R,O`` or of one weights name/file."""
    label, _, stages = spec.partition("=")
    names = stages.split(",") if stages else [label] * 3
    if len(names) != 3:
        raise SystemExit(f"{spec}: expected NAME=P,R,O")
    nets = [load_mtcnn(n) for n in names]
    return label, MTCNNNets(nets[0].pnet, nets[1].rnet, nets[2].onet)


def candidates(nets: MTCNNNets, records: list, min_face: float, rnet: float, min_onet: float) -> list:
    """Per image, the O-Net candidates (boxes, scores) above ``min_onet`` before the final NMS."""
    detector = FaceDetector(weights="mtcnn-original", min_face_size=min_face, thresholds=(0.3, rnet, min_onet))
    detector.cascade = MTCNNCascade(nets, detector.config, detector.device).reconfigure(nms_output=1.0)
    return [(f.boxes, f.scores) for f in (detector.detect_arrays([load_image(r.image)])[0] for r in records)]


def final(found: tuple[np.ndarray, np.ndarray], onet: float, voting: float) -> tuple[np.ndarray, np.ndarray]:
    """The engine's last step (`final_boxes`: min-NMS at 0.7, box voting) on the candidates above ``onet``."""
    boxes, scores = (torch.from_numpy(a[found[1] > onet]) for a in found)
    keep, out = final_boxes(boxes, scores, torch.zeros(len(boxes), dtype=torch.long), MTCNNConfig(box_voting=voting))
    return out.numpy(), scores[keep].numpy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[1].parent / "shared" / "data")
    parser.add_argument("--cascades", nargs="+", default=["mtcnn", "mtcnn-original"])
    parser.add_argument("--pairs", nargs="+", default=["0.2,0.2", "0.1,0.2"], metavar="R,O")
    parser.add_argument("--voting", type=float, nargs="+", default=[0.0, 0.6], help="box voting IoU (0: off)")
    parser.add_argument("--min-onet", type=float, default=0.02, help="O-Net candidates kept (lowest threshold)")
    parser.add_argument("--split", default="val", choices=["val", "val-tune", "val-report"])
    args = parser.parse_args()
    torch.set_num_threads(1)
    pairs = [tuple(float(t) for t in p.split(",")) for p in args.pairs]
    sets = {}
    for name, (fmt, labels, images, min_face, heights) in SETS.items():
        reader = read_dataset if fmt == "wider" else read_records
        records = select_split(reader(fmt, args.data / labels, args.data / images), args.split)
        sets[name] = (records, min_face, heights)
    header = [f"{s} >= {h} px" if h else s for s, (_, _, hs) in sets.items() for h in hs]
    print(f"AP50 / AP75 on the {args.split} split\n")
    print("| cascade | R-Net, O-Net | voting | " + " | ".join(header) + " |")
    print("|---|---|---|" + "---:|" * len(header))
    for spec in args.cascades:
        label, nets = cascade_nets(spec)
        found = {
            (s, r): candidates(nets, recs, mf, r, args.min_onet)
            for s, (recs, mf, _) in sets.items()
            for r in {p[0] for p in pairs}
        }
        for r, o in pairs:
            for voting in args.voting:
                cells = []
                for s, (recs, _, heights) in sets.items():
                    predictions = [final(c, o, voting) for c in found[(s, r)]]
                    for h in heights:
                        report = evaluate_detections(predictions, recs, (0.5, 0.75), h)
                        cells.append(f"{report.ap(0.5):.3f} / {report.ap(0.75):.3f}")
                print(f"| {label} | {r:g}, {o:g} | {voting:g} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
