"""Test-time options of attribute models, switched on by a checkpoint's meta (`AttributeClassifier`):

* **flip** (``meta["flip"]``): the probabilities of each crop and of its mirror image, averaged
  (CelebA's attributes do not change under a left-right mirror);
* **thresholds** (``meta["thresholds"]``, one per attribute): decision thresholds ``t`` chosen on
  held-out faces (`choose_thresholds`). The output stays a probability with 0.5 as the decision
  point: each probability ``p`` is remapped to ``sigmoid(logit(p) - logit(t))`` (`shift_to_threshold`),
  monotone in ``p``, so that ``p = t`` becomes 0.5 and ``p > t`` exactly when the result is > 0.5.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..ops.align import mirror_crops

THRESHOLD_GRID = np.round(np.arange(0.1, 0.9001, 0.02), 2)  # candidate thresholds (0.1, 0.12, ..., 0.9)


def flip_average(predict: Callable[[np.ndarray], np.ndarray], crops: np.ndarray) -> np.ndarray:
    """The mean of ``predict(crops)`` and ``predict`` of the crops mirrored left-right; ``crops``
    ``(N, S, S, 3)``."""
    return (predict(crops) + predict(mirror_crops(crops))) / 2


def logit(p: np.ndarray, eps: float = 1e-7) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=np.float64), eps, 1 - eps)
    return np.log(p) - np.log1p(-p)


def shift_to_threshold(probabilities: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """``sigmoid(logit(p) - logit(t))`` per attribute: ``probabilities (N, d)``, ``thresholds
    (d,)``; a threshold maps to 0.5, and the map is increasing."""
    shifted = logit(probabilities) - logit(thresholds)
    return (1 / (1 + np.exp(-shifted))).astype(np.float32)


def choose_thresholds(
    probabilities: np.ndarray, labels: np.ndarray, grid: Sequence[float] = tuple(THRESHOLD_GRID)
) -> np.ndarray:
    """Per attribute, the threshold of ``grid`` whose decisions ``p > t`` are most accurate on
    ``probabilities (N, d)`` against ``labels (N, d)`` (> 0: present); ties go to the one nearest 0.5."""
    p, present = np.asarray(probabilities), np.asarray(labels) > 0
    if p.shape != present.shape or p.ndim != 2 or len(p) == 0:
        raise ValueError(f"probabilities {p.shape} and labels {present.shape} must both be (N, d), N > 0")
    t = np.asarray(grid, dtype=np.float64)
    accuracy = ((p[None] > t[:, None, None]) == present[None]).mean(axis=1)  # (G, d)
    tie_break = 1e-9 * np.abs(t - 0.5)[:, None]  # accuracies differ by >= 1 / N
    return t[np.argmax(accuracy - tie_break, axis=0)]


def meta_thresholds(meta: dict[str, Any], count: int) -> np.ndarray | None:
    """The checkpoint's ``(count,)`` thresholds, or None when it has none."""
    values = meta.get("thresholds")
    if values is None:
        return None
    t = np.asarray(values, dtype=np.float64)
    if t.shape != (count,) or not ((t > 0) & (t < 1)).all():
        raise ValueError(f"meta thresholds must be {count} numbers in (0, 1), got shape {t.shape}")
    return t
