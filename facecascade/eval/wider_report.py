"""``facecascade eval detection --format wider``: the WIDER FACE protocol's settings, tables and
JSON sections (`wider_protocol` does the scoring; `plots.plot_wider_pr` the figure)."""

from __future__ import annotations

import argparse
import math
from collections.abc import Mapping, Sequence

from ..data.records import FaceRecord
from .wider_protocol import IOU_THRESHOLDS, THRESH_NUM, WiderReport
from .wider_settings import HeightBuckets, WiderSettings, official_settings


def _cell(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.3f}"


def wider_settings(args: argparse.Namespace, records: Sequence[FaceRecord]) -> WiderSettings | None:
    """The settings for ``args`` (``None`` unless ``--format wider``), checked against ``records``.

    Raises ``ValueError`` (malformed setting files, an image the settings do not name),
    ``FileNotFoundError`` and ``ImportError`` (no scipy).
    """
    if args.format != "wider":
        return None
    folder = getattr(args, "wider_settings", None)
    settings: WiderSettings = HeightBuckets() if not folder else official_settings(folder)
    settings.check(records)
    return settings


def _widest(report: WiderReport) -> str:
    """The key of the setting with the most faces that count (≥10 px, hard)."""
    return max(report.results, key=lambda key: report[key].num_faces)


def wider_ap_table(reports: Mapping[str, WiderReport]) -> str:
    """``| weights | images | faces ≥10 | AP ≥10 px | AP ≥20 px | AP ≥50 px |`` (or easy/medium/hard),
    AP at IoU 0.5."""
    first = next(iter(reports.values()))
    widest = first[_widest(first)].label.removesuffix(" px")
    header = ["weights", "images", f"faces {widest}"] + [f"AP {r.label}" for r in first.results.values()]
    lines = ["| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1)]
    for label, report in reports.items():
        row = [label, str(report.num_images), str(report[_widest(report)].num_faces)]
        row += [_cell(result.ap(0.5)) for result in report.results.values()]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def wider_detail_table(reports: Mapping[str, WiderReport]) -> str:
    """Per weights and setting: faces that count, AP and final recall at IoU 0.5 and 0.75."""
    ious = list(IOU_THRESHOLDS)
    header = ["weights", "setting", "faces"] + [f"AP@{t:g}" for t in ious] + [f"recall@{t:g}" for t in ious]
    lines = ["| " + " | ".join(header) + " |", "|---|---|" + "---:|" * (len(header) - 2)]
    for label, report in reports.items():
        for result in report.results.values():
            row = [label, result.label, str(result.num_faces)]
            row += [_cell(result.ap(t)) for t in ious] + [_cell(result.recall(t)) for t in ious]
            lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def wider_text(reports: Mapping[str, WiderReport]) -> str:
    """The heading line (settings used, skipped images) and both tables."""
    first = next(iter(reports.values()))
    lines = [
        f"WIDER FACE protocol, settings: {first.settings_kind}; {THRESH_NUM} thresholds of the "
        f"normalised score, IoU 0.5 (and 0.75)"
    ]
    if first.num_skipped:
        lines.append(f"{first.num_skipped} image(s) without annotated faces skipped, as in the official tool")
    return "\n".join([*lines, "", wider_ap_table(reports), "", wider_detail_table(reports)])
