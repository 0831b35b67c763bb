"""Choosing a trained cascade's stage thresholds on images it was not trained on.

A freshly trained cascade is not calibrated like the original weights, whose (0.6, 0.7, 0.7)
were tuned for them. The recipe picks, among a few candidate threshold triples, the one with the
best mean AP@0.5 over a sample of detection images (the recipe gives each set's ``val-tune`` half,
so that the ``val-report`` half stays untouched by the choice), and records it in the checkpoint's
``meta["thresholds"]`` (and, chosen with the fast path's engine settings, ``meta["fast_thresholds"]``),
which `facecascade.FaceDetector` uses unless told otherwise.

The candidates stop at a final (O-Net) threshold of 0.2 on purpose. VOC AP never falls when
low-scoring detections are appended, so on AP alone the last threshold would always go to 0
(our third run: 0.784, 0.801, 0.811 mean AP at 0.2, 0.1, 0.05), and the default output would
fill with low-confidence boxes. At 0.2 the precision of the default output on our validation
split stays close to the original weights' at their (0.6, 0.7, 0.7) (Caltech WebFaces 0.861 vs
0.867; model card). Lower P-Net/R-Net thresholds than those used for mining
(`facecascade.train.recipe.MINING`) are not tried either: later stages never trained on them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

import numpy as np
import torch

from ..data.records import FaceRecord
from ..detect.mtcnn import MTCNNCascade, MTCNNConfig
from ..eval.metrics import evaluate_detections
from ..io import load_image
from ..models import MTCNNNets

CANDIDATE_THRESHOLDS = (
    (0.6, 0.7, 0.7),
    (0.6, 0.5, 0.7),
    (0.6, 0.4, 0.6),
    (0.5, 0.3, 0.6),
    (0.5, 0.3, 0.5),
    (0.5, 0.2, 0.4),
    (0.4, 0.3, 0.5),
    (0.4, 0.2, 0.4),
    (0.4, 0.2, 0.3),
    (0.4, 0.1, 0.3),
    (0.3, 0.1, 0.3),
    (0.3, 0.2, 0.2),
    (0.3, 0.1, 0.2),
)

# Bounds the work of a barely trained cascade (quick runs); a trained one stays far below it.
TUNING_MAX_PROPOSALS = 2000


def mean_ap(
    nets: MTCNNNets,
    thresholds: Sequence[float],
    datasets: Sequence[Sequence[FaceRecord]],
    images: dict,
    device: torch.device,
    preset: Mapping[str, Any] | None = None,
) -> float:
    """Mean over ``datasets`` of AP@0.5 with ``thresholds`` (``images``: path -> RGB array) and the
    engine settings ``preset`` (e.g. `facecascade.detect.mtcnn.FAST_PATH`)."""
    settings = {**(preset or {}), "precision": "fp32"}  # the same on every machine
    cascade = MTCNNCascade(
        nets,
        MTCNNConfig(
            thresholds=cast("tuple[float, float, float]", tuple(thresholds)),
            max_proposals=TUNING_MAX_PROPOSALS,
            **settings,
        ),
        device,
    )
    aps = []
    for records in datasets:
        predictions = [cascade.detect([images[r.image]])[0] for r in records]
        aps.append(evaluate_detections(predictions, records, iou_thresholds=(0.5,)).ap(0.5))
    return float(np.nanmean(aps))


def choose_thresholds(
    nets: MTCNNNets,
    datasets: Sequence[Sequence[FaceRecord]],
    candidates: Sequence[Sequence[float]] = CANDIDATE_THRESHOLDS,
    device: torch.device = torch.device("cpu"),
    preset: Mapping[str, Any] | None = None,
) -> tuple[tuple[float, ...], dict[str, float]]:
    """The candidate with the best mean AP@0.5 (engine settings ``preset``), and every candidate's score."""
    images = {r.image: load_image(r.image) for records in datasets for r in records}
    scores = {",".join(f"{t:g}" for t in c): mean_ap(nets, c, datasets, images, device, preset) for c in candidates}
    best = max(scores, key=scores.__getitem__)
    return tuple(float(t) for t in best.split(",")), scores
