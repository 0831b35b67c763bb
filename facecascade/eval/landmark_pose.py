"""Landmark accuracy by head pose: the faces sorted into yaw buckets by their annotated 5 points.

Yaw comes from a 3D mean shape fitted to the *annotated* points (`facecascade.ops.head_pose`), so
a face's bucket does not depend on the model scored. Per bucket: the summary of
`facecascade.eval.landmark_metrics.summarize` (NME, failures, AUC, mean refinement steps: whether a
dynamic aligner spends more steps on turned faces).
"""

from __future__ import annotations

import numpy as np

from ..ops.head_pose import POSE_BUCKETS, estimate_yaw, pose_bucket
from .landmark_metrics import LandmarkSummary, summarize


def face_buckets(truth: np.ndarray) -> np.ndarray | None:
    """``(N,)`` pose bucket of each face from its annotated ``(N, 5, 2)`` points; ``None`` for
    other point layouts (no 5-point pose fit)."""
    if truth.ndim != 3 or truth.shape[1] != 5 or len(truth) == 0:
        return None
    return pose_bucket(estimate_yaw(truth))


def bucket_summaries(
    errors: dict[str, np.ndarray], iterations: np.ndarray | None, buckets: np.ndarray
) -> dict[str, LandmarkSummary]:
    """``{bucket name: summary}`` for the buckets that hold faces."""
    out = {}
    for index, name in enumerate(POSE_BUCKETS):
        chosen = buckets == index
        if chosen.any():
            out[name] = summarize(
                {k: np.asarray(v)[chosen] for k, v in errors.items()},
                None if iterations is None else np.asarray(iterations)[chosen],
            )
    return out


def pose_table(by_pose: dict[tuple[str, str], dict[str, LandmarkSummary]]) -> str:
    """Markdown: model | protocol | yaw | faces | missed | NME inter-ocular | failure | AUC | steps."""
    lines = [
        "| model | protocol | yaw (deg) | faces | missed | NME inter-ocular % | failure@0.1 % | AUC@0.1 | mean steps |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for (name, protocol), buckets in by_pose.items():
        for bucket, s in buckets.items():
            steps = "-" if np.isnan(s.mean_iterations) else f"{s.mean_iterations:.2f}"
            lines.append(
                f"| {name} | {protocol} | {bucket} | {s.faces} | {s.missed} | {100 * s.nme['inter-ocular']:.2f} | "
                f"{100 * s.failure_rate:.2f} | {s.auc:.3f} | {steps} |"
            )
    return "\n".join(lines)
