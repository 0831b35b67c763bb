"""PNG plots of evaluation results: precision-recall curves (one panel per WIDER FACE setting for
its protocol) and FDDB-style discrete ROC curves.

matplotlib is imported inside the functions, and figures are drawn on the non-interactive Agg
canvas directly (no pyplot, so no global backend switch in a user's session): importing
facecascade never needs a display or pays matplotlib's import time.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path

from numpy.typing import ArrayLike

from .metrics import DetectionReport
from .wider_protocol import WiderReport

_LINE_STYLES = ("-", "--", ":", "-.")


def _figure():
    """A new matplotlib ``Figure`` with one axes, on an Agg canvas."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 5.2))
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot()


def _save(fig, path: str | os.PathLike) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    return path


def plot_pr_curves(
    reports: Mapping[str, DetectionReport], path: str | os.PathLike, title: str = "Precision-recall"
) -> Path:
    """One PNG with a precision-recall line per (label, IoU threshold), AP in the legend.

    A label (weights) keeps one colour; IoU thresholds differ by line style. Returns the path.
    """
    fig, ax = _figure()
    for colour, (label, report) in enumerate(reports.items()):
        for style, (iou, result) in zip(_LINE_STYLES * 8, report.results.items()):
            ap = result.ap
            name = f"{label} IoU {iou:g}: " + ("no faces" if math.isnan(ap) else f"AP {ap:.3f}")
            ax.plot(
                result.recall_curve,
                result.precision,
                linestyle=style,
                color=f"C{colour % 10}",
                linewidth=1.4,
                label=name,
            )
    ax.set(xlim=(0, 1), ylim=(0, 1.02), xlabel="recall", ylabel="precision", title=title)
    ax.grid(alpha=0.3)
    if reports:
        ax.legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    return _save(fig, path)


def _wider_panel(ax, reports: Mapping[str, WiderReport], key: str) -> None:
    """One setting's PR curves: a colour per label, solid at IoU 0.5, dashed at 0.75 (points with
    proposals only); AP in the legend."""
    for colour, (label, report) in enumerate(reports.items()):
        result = report[key]
        for style, (iou, curve) in zip(_LINE_STYLES, result.curves.items()):
            ap = curve.ap
            name = f"{label} IoU {iou:g}: " + ("no faces" if math.isnan(ap) else f"AP {ap:.3f}")
            some = curve.proposals > 0  # thresholds above every detection: no point
            ax.plot(
                curve.recall_curve[some], curve.precision[some], linestyle=style, color=f"C{colour % 10}", label=name
            )
    first = next(iter(reports.values()))[key]
    ax.set(xlim=(0, 1), ylim=(0, 1.02), xlabel="recall", ylabel="precision")
    ax.set_title(f"{first.label} ({first.num_faces} faces)")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left", fontsize=7)


def plot_wider_pr(
    reports: Mapping[str, WiderReport], path: str | os.PathLike, title: str = "WIDER FACE protocol"
) -> Path:
    """One PNG with a panel per WIDER setting (easy/medium/hard or height bucket), each with the PR
    curves of every label (`wider_protocol.WiderReport`, all of the same settings). Returns the path."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    keys = list(next(iter(reports.values())).results) if reports else []
    fig = Figure(figsize=(5.2 * max(len(keys), 1), 5.2))
    FigureCanvasAgg(fig)
    for i, key in enumerate(keys):
        _wider_panel(fig.add_subplot(1, len(keys), i + 1), reports, key)
    fig.suptitle(title)
    fig.tight_layout()
    return _save(fig, path)


def plot_roc(
    reports: Mapping[str, DetectionReport],
    path: str | os.PathLike,
    iou_threshold: float = 0.5,
    max_fp: int | None = 2000,
    title: str = "Discrete ROC",
) -> Path:
    """One PNG with FDDB's discrete ROC (true-positive rate against false positives) per label.

    ``max_fp`` limits the x axis (``None``: all false positives). Returns the path.
    """
    fig, ax = _figure()
    for colour, (label, report) in enumerate(reports.items()):
        fp, rate = report[iou_threshold].roc()
        ax.step(fp, rate, where="post", color=f"C{colour % 10}", linewidth=1.4, label=label)
    if max_fp is not None:
        ax.set_xlim(0, max_fp)
    ax.set(
        ylim=(0, 1.02), xlabel="false positives", ylabel="true positive rate", title=f"{title} (IoU {iou_threshold:g})"
    )
    ax.grid(alpha=0.3)
    if reports:
        ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    return _save(fig, path)


def plot_ced(
    errors: Mapping[str, ArrayLike],
    path: str | os.PathLike,
    threshold: float = 0.1,
    title: str = "Cumulative error distribution",
) -> Path:
    """One PNG with the CED (share of faces with NME <= x, x up to ``threshold``) per label, its
    AUC and failure rate in the legend. ``errors``: per-face NME, ``inf`` for missed faces."""
    from .landmark_metrics import auc, ced, failure_rate

    fig, ax = _figure()
    for colour, (label, values) in enumerate(errors.items()):
        grid, share = ced(values, threshold)
        ax.plot(
            grid,
            share,
            color=f"C{colour % 10}",
            linewidth=1.4,
            label=f"{label}: AUC {auc(values, threshold):.3f}, fail {100 * failure_rate(values, threshold):.1f} %",
        )
    ax.set(xlim=(0, threshold), ylim=(0, 1.0), xlabel="NME (inter-ocular)", ylabel="share of faces", title=title)
    ax.grid(alpha=0.3)
    if errors:
        ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    return _save(fig, path)
