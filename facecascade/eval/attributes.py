"""``facecascade eval attributes``: per-attribute accuracy of attribute models on CelebA-format data.

Three ways to get the face crop, so that the number a user sees matches how they call the model:

* ``box`` (default): the dataset's face box (derived from its landmarks, in the detector's box
  convention), the crop the model was trained on;
* ``whole``: ``predict(image)`` with no faces: the whole image is the face crop;
* ``detect``: end to end, the best face of `FaceDetector` (default weights) in each image; images
  where it finds none fall back to the whole image and are counted.

The majority-class baseline predicts, for each attribute, its more frequent value in the data's
*training* split (so it is fair to compare on ``--split val``).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import numpy as np

from ..argtypes import positive_int
from ..data.split import SPLITS
from ..outputs import write_json_atomic

CROPS = ("box", "whole", "detect")


def attribute_accuracy(probabilities: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per-attribute accuracy ``(d,)`` of ``probabilities (N, d) > 0.5`` against ``labels (N, d)``
    (1 / positive = present; 0 or -1 = absent)."""
    probabilities, labels = np.asarray(probabilities), np.asarray(labels)
    if probabilities.shape != labels.shape or probabilities.ndim != 2:
        raise ValueError(f"probabilities {probabilities.shape} and labels {labels.shape} must both be (N, d)")
    if len(labels) == 0:
        raise ValueError("no faces to score")
    return ((probabilities > 0.5) == (labels > 0)).mean(axis=0)


def majority_accuracy(train_labels: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per-attribute accuracy of always answering the training split's more frequent value."""
    majority = (np.asarray(train_labels) > 0).mean(axis=0) >= 0.5
    return ((np.asarray(labels) > 0) == majority).mean(axis=0)


def _faces_for(records, images, crop: str, detector) -> tuple[list, int]:
    """The `Faces` to classify per image (``None`` entries: whole image) and how many images the
    detector missed."""
    from ..structures import Faces

    if crop == "whole":
        return [None] * len(records), 0
    if crop == "box":
        return [Faces(r.boxes[:1], np.ones(1, np.float32)) for r in records], 0
    found = detector.detect_arrays(images)
    return [f[:1] if len(f) else None for f in found], sum(len(f) == 0 for f in found)


def predict_records(classifier, records, crop: str, detector=None) -> tuple[np.ndarray, int]:
    """``(N, d)`` probabilities, one face per record, and the number of detector misses."""
    from ..io import load_image

    probabilities, missed = [], 0
    for start in range(0, len(records), 64):
        chunk = records[start : start + 64]
        images = [load_image(r.image) for r in chunk]
        faces, miss = _faces_for(chunk, images, crop, detector)
        missed += miss
        probabilities.extend(_one_face_each(classifier, images, faces))
    return np.stack(probabilities), missed


def _one_face_each(classifier, images: list, faces: list) -> list[np.ndarray]:
    """Each image's ``(d,)`` probabilities, in two batched calls: images with a face, and images
    (``None``) that are their own face crop."""
    out: list = [None] * len(images)
    boxed = [i for i, f in enumerate(faces) if f is not None]
    whole = [i for i, f in enumerate(faces) if f is None]
    for index, given in ((boxed, [faces[i] for i in boxed]), (whole, None)):
        if index:
            found = classifier.predict_arrays([images[i] for i in index], given)
            for i, f in zip(index, found):
                out[i] = f.attributes[0]
    return out


def cmd_eval_attributes(args: argparse.Namespace) -> int:
    from ..attributes import AttributeClassifier
    from ..data import read_dataset, select_split
    from ..detect import FaceDetector

    try:
        records = read_dataset("celeba", args.data)
        train_labels = np.concatenate([r.attributes for r in select_split(records, "train")])
        records = select_split(records, args.split)[: args.limit]
        models = {w: AttributeClassifier(w, device=args.device) for w in args.weights or ["mcfa"]}
        detector = FaceDetector(device=args.device) if args.crop == "detect" else None
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    labels = np.concatenate([r.attributes for r in records])
    base = majority_accuracy(train_labels, labels)
    results: dict[str, Any] = {}
    for name, model in models.items():
        probabilities, missed = predict_records(model, records, args.crop, detector)
        acc = attribute_accuracy(probabilities, labels)
        results[name] = {
            "mean_accuracy": float(acc.mean()),
            "detector_missed": missed,
            "per_attribute": dict(zip(model.names, acc.tolist())),
        }
    _print_table(results, dict(zip(next(iter(models.values())).names, base.tolist())), len(records), args.crop)
    if args.json:
        write_json_atomic(
            args.json,
            {
                "split": args.split,
                "crop": args.crop,
                "faces": len(records),
                "majority_mean_accuracy": float(base.mean()),
                "results": results,
            },
        )
    return 0


def _print_table(results: dict, majority: dict[str, float], n: int, crop: str) -> None:
    names = list(results)
    print(f"{n} faces, crop: {crop}")
    print("| attribute | majority | " + " | ".join(names) + " |")
    print("|---|---:|" + "---:|" * len(names))
    for attr, base in majority.items():
        print(
            f"| {attr} | {base:.3f} | " + " | ".join(f"{results[m]['per_attribute'][attr]:.3f}" for m in names) + " |"
        )
    mean_base = float(np.mean(list(majority.values())))
    print(
        f"| **mean** | {mean_base:.4f} | " + " | ".join(f"**{results[m]['mean_accuracy']:.4f}**" for m in names) + " |"
    )


def add_attributes_parser(what: argparse._SubParsersAction) -> None:
    p = what.add_parser(
        "attributes",
        help="per-attribute accuracy of attribute models (CelebA format)",
        description="Per-attribute and mean accuracy of attribute models on CelebA-format data, "
        "against the majority-class baseline.",
    )
    p.add_argument("--format", choices=("celeba",), default="celeba", help="annotation format (celeba)")
    p.add_argument(
        "--data",
        required=True,
        metavar="DIR",
        help="the CelebA folder (list_attr_celeba.txt, list_landmarks_align_celeba.txt, images)",
    )
    p.add_argument("--weights", nargs="+", action="extend", metavar="NAME_OR_PATH", help="default: mcfa")
    p.add_argument(
        "--split",
        choices=SPLITS,
        default="val",
        help="facecascade's deterministic 80/20 split or a half of its validation part (default val)",
    )
    p.add_argument("--crop", choices=CROPS, default="box", help="how faces are cropped (module doc; default box)")
    p.add_argument("--limit", type=positive_int, metavar="N", help="the first N faces of the split only")
    p.add_argument("--device", default="cpu")
    p.add_argument("--json", metavar="OUT.json", help="write the results as JSON")
    p.set_defaults(func=cmd_eval_attributes)
