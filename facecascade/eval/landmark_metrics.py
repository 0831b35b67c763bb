"""Landmark accuracy: normalised mean error (NME), failure rate, cumulative error distribution.

NME of one face (DCRN Eq. 2) is the mean Euclidean point error divided by a normalising distance
(`facecascade.data.landmarks.normalizers`). A face the detector missed has no prediction: its
error is ``inf``, so it counts as a failure and sits at the far end of the CED, while the mean NME
is reported over the faces that have a prediction (with the number missed beside it).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike


def point_errors(predicted: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """``(N,)`` mean Euclidean distance over the K points of ``(N, K, 2)`` arrays."""
    predicted = np.asarray(predicted, np.float64)
    truth = np.asarray(truth, np.float64)
    if predicted.shape != truth.shape or predicted.ndim != 3 or predicted.shape[2] != 2:
        raise ValueError(f"predicted {predicted.shape} and truth {truth.shape} must both be (N, K, 2)")
    return np.linalg.norm(predicted - truth, axis=2).mean(axis=1)


def nme(predicted: np.ndarray, truth: np.ndarray, norm: np.ndarray) -> np.ndarray:
    """``(N,)`` normalised mean errors; ``norm (N,)`` must be positive."""
    norm = np.asarray(norm, np.float64).reshape(-1)
    if (norm <= 0).any() or not np.isfinite(norm).all():
        raise ValueError("normalising distances must be positive and finite")
    return point_errors(predicted, truth) / norm


def failure_rate(errors: ArrayLike, threshold: float = 0.1) -> float:
    """Share of faces whose NME exceeds ``threshold`` (missed faces, ``inf``, included)."""
    errors = np.asarray(errors, np.float64)
    return float((errors > threshold).mean()) if errors.size else float("nan")


def ced(errors: ArrayLike, threshold: float = 0.1, steps: int = 1001) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative error distribution: ``(thresholds (steps,), share of faces with NME <= t)``."""
    errors = np.sort(np.asarray(errors, np.float64))
    grid = np.linspace(0.0, threshold, steps)
    if errors.size == 0:
        return grid, np.full(steps, np.nan)
    return grid, np.searchsorted(errors, grid, side="right") / errors.size


def auc(errors: ArrayLike, threshold: float = 0.1) -> float:
    """Area under the CED up to ``threshold``, divided by ``threshold`` (1 = every face exact)."""
    grid, share = ced(errors, threshold)
    return float(np.trapezoid(share, grid) / threshold)


@dataclass
class LandmarkSummary:
    """What `facecascade eval landmarks` prints per model."""

    faces: int
    missed: int
    nme: dict[str, float]  # mean NME over found faces, per normalisation
    failure_rate: float  # at 0.1, inter-ocular, missed faces included
    auc: float  # AUC@0.1, inter-ocular, missed faces included
    mean_iterations: float  # NaN when the model does not iterate

    def to_dict(self) -> dict:
        clean = {k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in self.nme.items()}
        return {
            "faces": self.faces,
            "missed": self.missed,
            "nme": clean,
            "failure_rate": self.failure_rate,
            "auc": self.auc,
            "mean_iterations": None if np.isnan(self.mean_iterations) else self.mean_iterations,
        }


def summarize(
    errors: dict[str, np.ndarray], iterations: np.ndarray | None = None, threshold: float = 0.1
) -> LandmarkSummary:
    """Summary of per-face errors ``{normalisation: (N,)}`` (``inf`` = missed face)."""
    ocular = np.asarray(errors["inter-ocular"], np.float64)
    found = np.isfinite(ocular)
    means = {k: float(np.asarray(v)[found].mean()) if found.any() else float("nan") for k, v in errors.items()}
    steps = float("nan") if iterations is None or not found.any() else float(np.asarray(iterations)[found].mean())
    return LandmarkSummary(
        int(ocular.size), int((~found).sum()), means, failure_rate(ocular, threshold), auc(ocular, threshold), steps
    )
