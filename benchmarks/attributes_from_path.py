"""Mean attribute accuracy of ``AttributeClassifier().predict(path)`` (no faces given: detected
first, the top face's attributes; the whole image only where no face is found) on the CelebA
validation split: the figure a user handing it an aligned face image gets.

    python benchmarks/attributes_from_path.py [--data ../shared/data] [--weights mcfa]
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

import numpy as np
import torch

from facecascade.attributes import AttributeClassifier
from facecascade.data import read_dataset, select_split


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[1].parent / "shared" / "data")
    parser.add_argument("--weights", default="mcfa")
    args = parser.parse_args()
    torch.set_num_threads(1)
    records = select_split(read_dataset("celeba", args.data / "celeba"), "val")
    labels = np.concatenate([r.attributes for r in records]) > 0
    classifier = AttributeClassifier(args.weights)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        probabilities = np.stack([classifier.predict(r.image).attributes[0] for r in records])
    accuracy = 100 * ((probabilities > 0.5) == labels).mean()
    print(f"{len(records)} faces, predict(path): {accuracy:.2f} %, {len(caught)} fell back to the whole image")


if __name__ == "__main__":
    main()
