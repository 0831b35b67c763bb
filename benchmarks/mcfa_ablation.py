"""One row of MCFA's test-time ablation (docs/models/mcfa.md): per-seed checkpoints of one
training recipe, scored on the CelebA validation split with the dataset's boxes.

Columns: mean accuracy per network (mean ± half the spread of the seeds), with flip averaging,
with flip on the ``val-report`` half, with flip and per-attribute thresholds chosen on the
``val-tune`` half (scored on ``val-report``), then the seeds' probabilities averaged (with flip):
on the whole split, on ``val-report``, and with thresholds.

    python benchmarks/mcfa_ablation.py --name "C: B + 6 epochs" SEED0.pt SEED1.pt [...]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from facecascade.attributes import AttributeClassifier
from facecascade.attributes.crops import attribute_transforms
from facecascade.attributes.tta import choose_thresholds, shift_to_threshold
from facecascade.data import read_dataset, select_split
from facecascade.io import load_image
from facecascade.ops.align import warp_crops


def box_crops(records, size: int) -> np.ndarray:
    return np.concatenate(
        [warp_crops(load_image(r.image), attribute_transforms(r.boxes[:1], size), size) for r in records]
    )


def flip_probabilities(weights: str, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One network's probabilities of the crops, and their mean with the mirrors'."""
    classifier = AttributeClassifier(weights, flip=False, thresholds=False)
    plain = classifier._probabilities(crops)
    return plain, (plain + classifier._probabilities(np.ascontiguousarray(crops[:, :, ::-1]))) / 2


def accuracy(p: np.ndarray, labels: np.ndarray) -> float:
    return 100 * float(((p > 0.5) == labels).mean())


def thresholded(p: np.ndarray, labels: np.ndarray, tune: np.ndarray) -> float:
    """Accuracy on ``~tune`` with each attribute's threshold chosen on ``tune``."""
    return accuracy(shift_to_threshold(p[~tune], choose_thresholds(p[tune], labels[tune])), labels[~tune])


def spread(values: list[float]) -> str:
    return f"{np.mean(values):.2f} ± {(max(values) - min(values)) / 2:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("weights", nargs="+", help="one checkpoint per seed")
    parser.add_argument("--name", default="row")
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[1].parent / "shared" / "data")
    args = parser.parse_args()
    torch.set_num_threads(1)
    records = read_dataset("celeba", args.data / "celeba")
    val = select_split(records, "val")
    tune_names = {r.image.name for r in select_split(records, "val-tune")}
    tune = np.array([r.image.name in tune_names for r in val])
    labels = np.concatenate([r.attributes for r in val]) > 0
    crops = box_crops(val, AttributeClassifier(args.weights[0]).size)
    runs = [flip_probabilities(w, crops) for w in args.weights]
    flips = [f for _, f in runs]
    cells = [
        spread([accuracy(p, labels) for p, _ in runs]),
        spread([accuracy(f, labels) for f in flips]),
        spread([accuracy(f[~tune], labels[~tune]) for f in flips]),
        spread([thresholded(f, labels, tune) for f in flips]),
    ]
    both = np.mean(flips, 0)
    cells += [f"{accuracy(both, labels):.2f}", f"{accuracy(both[~tune], labels[~tune]):.2f}"]
    cells.append(f"{thresholded(both, labels, tune):.2f}")
    print(f"| {args.name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
