"""Mean AP@0.5 and detection time per stage-threshold triple, on the recipe's ``val-tune`` images.

The images are those `facecascade train mtcnn` chooses its operating point on (150 per detection
set: face_mask, Caltech WebFaces and, for weights trained with it, WIDER FACE; never trained on),
the engine in float32 at 1 thread; the last threshold stays at 0.2 (`train.operating_point`), the
P-Net and R-Net thresholds, which set how many windows the later stages see, vary:

    python3 benchmarks/threshold_sweep.py --weights mtcnn [--fast] [--p-net 0.3 0.4 0.5 0.6] [--r-net 0.1 0.2 0.3]

Prints one line per triple: mean AP, each set's AP, seconds of detection for all the images.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from facecascade.data import select_split
from facecascade.detect.mtcnn import MTCNNCascade, MTCNNConfig, fast_preset
from facecascade.eval.metrics import evaluate_detections
from facecascade.io import load_image
from facecascade.models.weights import load_mtcnn_with_meta
from facecascade.train.recipe import Recipe, detection_sets


def timed_ap(cascade: MTCNNCascade, records: list, images: dict) -> tuple[float, float]:
    """AP@0.5 of ``cascade`` on ``records`` and the seconds its detections took."""
    predictions, seconds = [], 0.0
    for record in records:
        began = time.perf_counter()
        predictions.append(cascade.detect([images[record.image]])[0])
        seconds += time.perf_counter() - began
    return evaluate_detections(predictions, records, iou_thresholds=(0.5,)).ap(0.5), seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[1].parent / "shared" / "data")
    parser.add_argument("--weights", default="mtcnn")
    parser.add_argument("--fast", action="store_true", help="the weights' fast path")
    parser.add_argument("--p-net", type=float, nargs="+", default=[0.3, 0.4, 0.5, 0.6])
    parser.add_argument("--r-net", type=float, nargs="+", default=[0.1, 0.2, 0.3, 0.4, 0.5])
    parser.add_argument("--images", type=int, default=150, help="val-tune images per set")
    args = parser.parse_args()
    torch.set_num_threads(1)
    nets, meta = load_mtcnn_with_meta(args.weights)
    recipe = Recipe(data=args.data, out=Path("."), box_conventions=False, wider=bool(meta.get("wider")))
    per_set = [select_split(s, "val-tune", seed=0)[: args.images] for s in detection_sets(recipe)]
    images = {r.image: load_image(r.image) for records in per_set for r in records}
    preset = fast_preset(meta) if args.fast else {}
    for p_net in args.p_net:
        for r_net in args.r_net:
            config = MTCNNConfig(thresholds=(p_net, r_net, 0.2), **{**preset, "precision": "fp32"})
            cascade = MTCNNCascade(nets, config, torch.device("cpu"))
            results = [timed_ap(cascade, records, images) for records in per_set]
            aps = [ap for ap, _ in results]
            seconds = sum(s for _, s in results)
            sets = " ".join(f"{ap:.4f}" for ap in aps)
            print(f"({p_net:g}, {r_net:g}, 0.2) mean AP {np.mean(aps):.4f} ({sets}) {seconds:.1f} s", flush=True)


if __name__ == "__main__":
    main()
