"""Mean attribute accuracy a user gets from a path, on the CelebA validation split (aligned face
images), by the two calls that take one:

* ``AttributeClassifier().predict(path)`` (no faces given: detected first, the top face's
  attributes; the whole image only where no face is found);
* ``FaceAnalyzer().analyze(path)`` (the top-scoring face; an image where no face is found counts
  as all wrong, the protocol of issue 27), with ``--aligner dcrn`` also with refined landmarks.

    python benchmarks/attributes_from_path.py [--data ../shared/data] [--weights mcfa]
                                              [--crop-from landmarks|boxes] [--aligner dcrn]
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

import numpy as np
import torch

from facecascade import FaceAnalyzer
from facecascade.attributes import AttributeClassifier
from facecascade.attributes.crops import CROP_SOURCES
from facecascade.data import read_dataset, select_split


def classifier_accuracy(classifier: AttributeClassifier, records, labels: np.ndarray) -> str:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        probabilities = np.stack([classifier.predict(r.image).attributes[0] for r in records])
    accuracy = 100 * ((probabilities > 0.5) == labels).mean()
    return f"AttributeClassifier.predict(path): {accuracy:.2f} % ({len(caught)} fell back to the whole image)"


def analyzer_accuracy(analyzer: FaceAnalyzer, records, labels: np.ndarray) -> str:
    correct, missed = np.zeros(labels.shape, bool), 0
    for i, record in enumerate(records):
        faces = analyzer.analyze(record.image)
        if len(faces):  # best first
            correct[i] = (faces.attributes[0] > 0.5) == labels[i]
        else:
            missed += 1
    return f"FaceAnalyzer.analyze(path): {100 * correct.mean():.2f} % ({missed} without a face, counted wrong)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[1].parent / "shared" / "data")
    parser.add_argument("--weights", default="mcfa")
    parser.add_argument("--crop-from", choices=CROP_SOURCES, default="landmarks")
    parser.add_argument("--aligner", default=None, help="FaceAnalyzer's aligner (default: none)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    records = select_split(read_dataset("celeba", args.data / "celeba"), "val")
    labels = np.concatenate([r.attributes for r in records]) > 0
    classifier = AttributeClassifier(args.weights, crop_from=args.crop_from)
    print(f"{len(records)} faces, crops from {args.crop_from}")
    print(classifier_accuracy(classifier, records, labels), flush=True)
    analyzer = FaceAnalyzer(aligner=args.aligner, attributes=classifier)
    print(f"{analyzer_accuracy(analyzer, records, labels)}, aligner {args.aligner}")


if __name__ == "__main__":
    main()
