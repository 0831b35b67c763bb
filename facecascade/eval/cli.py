"""``facecascade eval ...`` subcommands.

``facecascade eval detection --format FMT --annotations PATH [--images DIR] [--weights W ...]``
reads an annotated dataset, runs each detector once over its images, and scores the detections
at IoU 0.5 and 0.3 (faces are boxed differently from one dataset to another, so the looser
threshold is reported too, as in the FaceCraft paper): a markdown table on stdout, optionally a
JSON report and a precision-recall PNG (plus a discrete-ROC PNG for FDDB).

``--format wider`` also scores the same detections by the official WIDER FACE procedure
(`wider_protocol`): AP per setting (easy/medium/hard with ``--wider-settings DIR``, else face-height
buckets ≥ 10, 20, 50 px) at IoU 0.5 and 0.75, a ``wider`` section per weights in the JSON, and a
``--plot`` figure with one panel per setting.

An image that cannot be read is reported on one line (``error: <path>: <reason>``) and left out
of the evaluation; the run goes on and exits with 1. Bad arguments (unknown weights, unreadable
annotations) exit with 2 before any detection runs.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..argtypes import fraction, non_negative, positive_int
from ..data.records import FaceRecord
from ..data.split import SPLITS
from ..detect.detector import DEFAULT_WEIGHTS
from .metrics import DetectionReport, evaluate_detections, tp_rate_at_fp
from .wider_protocol import WiderReport, evaluate_wider
from .wider_report import wider_settings, wider_text
from .wider_settings import WiderSettings

FORMATS = ("voc", "caltech", "imglab", "coco", "wider", "fddb")
IOU_THRESHOLDS = (0.5, 0.3)
FDDB_FP_POINTS = (100, 500, 1000)


def read_records(fmt: str, annotations: Path, images: Path | None) -> list[FaceRecord]:
    """The dataset's records, read by `facecascade.data.formats.read_dataset` (imported lazily)."""
    from ..data.formats import read_dataset

    return read_dataset(fmt, annotations, images)


def _cell(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.3f}"


def _fddb_points(report: DetectionReport) -> dict[str, float]:
    """True-positive rate at 100, 500 and 1000 false positives (IoU 0.5), keyed by the FP count."""
    fp, rate = report[0.5].roc()
    if report.num_gt == 0:
        return {str(n): math.nan for n in FDDB_FP_POINTS}
    return {str(n): tp_rate_at_fp(fp, rate, n) for n in FDDB_FP_POINTS}


def results_table(reports: dict[str, DetectionReport], fddb: bool = False) -> str:
    """Markdown table: weights | images | faces | AP and recall at each IoU (| TP rate at FPs)."""
    thresholds = next(iter(reports.values())).iou_thresholds if reports else list(IOU_THRESHOLDS)
    header = ["weights", "images", "faces"] + [f"AP@{t:g}" for t in thresholds] + [f"recall@{t:g}" for t in thresholds]
    if fddb:
        header += [f"TPR@{n}FP" for n in FDDB_FP_POINTS]
    lines = ["| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1)]
    for label, report in reports.items():
        row = [label, str(report.num_images), str(report.num_gt)]
        row += [_cell(report.ap(t)) for t in thresholds] + [_cell(report.recall(t)) for t in thresholds]
        if fddb:
            row += [_cell(v) for v in _fddb_points(report).values()]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def coco_table(results: dict[str, dict[str, float]]) -> str:
    """Markdown table of `coco_metrics.coco_ap` results per detector (percent)."""
    keys = list(next(iter(results.values()))) if results else []
    lines = ["| weights | " + " | ".join(f"COCO {k}" for k in keys) + " |", "|---" + "|---:" * len(keys) + "|"]
    lines += [f"| {w} | " + " | ".join(f"{100 * v[k]:.1f}" for k in keys) + " |" for w, v in results.items()]
    return "\n".join(lines)


def _unique(values: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(values))


def load_detectors(args: argparse.Namespace) -> dict:
    """``{label: FaceDetector}`` for ``args.weights`` (and their fast paths with ``args.fast``)."""
    from ..detect import FaceDetector
    from ..detect.two_stage import TwoStageDetector, is_rcnn_weights

    paths = (False, True) if args.fast else (False,)  # the fast path of the same weights, same images
    detectors: dict[str, FaceDetector | TwoStageDetector] = {}
    for w in _unique(args.weights or [DEFAULT_WEIGHTS]):
        if is_rcnn_weights(w):  # a two-stage detector (`facecascade train rcnn`): no fast path
            detectors[w] = TwoStageDetector(w, device=args.device)
            continue
        for fast in paths:
            detectors[f"{w} (fast)" if fast else w] = FaceDetector(
                weights=w, device=args.device, min_face_size=args.min_face, fast=fast
            )
    return detectors


def choose_conventions(detectors: dict, records: list[FaceRecord], choice: str) -> dict[str, str]:
    """Point detectors with a box regressor per source at a box convention: ``"auto"`` the
    evaluated data's own source when they learnt it (else their default), ``"default"`` their
    first, or a source's name. Returns ``{label: convention}`` of the detectors it applies to."""
    chosen = {}
    sources = {r.source for r in records}
    for label, detector in detectors.items():
        conventions = getattr(detector, "conventions", ())
        if not conventions:
            continue
        name = choice
        if choice == "auto":
            name = next(iter(sources)) if len(sources) == 1 and sources <= set(conventions) else conventions[0]
        elif choice == "default":
            name = conventions[0]
        detector.model.use_convention(name)  # ValueError for a source it has no regressor for
        chosen[label] = name
    return chosen


def run_detectors(detectors: dict, records: list[FaceRecord], quiet: bool):
    """Detect every readable image once per detector: ``(records kept, predictions per weights, failed)``."""
    from tqdm import tqdm

    from ..io import load_image

    kept: list[FaceRecord] = []
    predictions: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {w: [] for w in detectors}
    failed: list[str] = []
    for record in tqdm(records, unit="img", disable=quiet, file=sys.stderr, desc="detect"):
        try:
            image = load_image(record.image)
        except (ValueError, FileNotFoundError) as exc:
            failed.append(str(record.image))
            tqdm.write(f"error: {record.image}: {exc}", file=sys.stderr)
            continue
        kept.append(record)
        for weights, detector in detectors.items():
            faces = detector.detect_arrays([image])[0]
            predictions[weights].append((faces.boxes, faces.scores))
    return kept, predictions, failed


def _report_payload(
    args: argparse.Namespace, num_records: int, failed: list[str], reports: dict[str, DetectionReport], fddb: bool
) -> dict:
    results = {}
    for label, report in reports.items():
        entry = report.to_dict()
        if fddb:
            fp, rate = report[0.5].roc()
            keep = np.unique(np.round(np.linspace(0, len(fp) - 1, min(len(fp), 200))).astype(int))
            entry["fddb"] = {
                "tp_rate_at_fp": {k: (None if math.isnan(v) else v) for k, v in _fddb_points(report).items()},
                "roc": {
                    "false_positives": [int(v) for v in fp[keep]],
                    "tp_rate": [None if math.isnan(v) else round(float(v), 6) for v in rate[keep]],
                },
            }
        results[label] = entry
    return {
        "dataset": {
            "format": args.format,
            "annotations": str(args.annotations),
            "images": None if args.images is None else str(args.images),
            "split": args.split,
            "val_fraction": args.val_fraction,
            "limit": args.limit,
            "num_records": num_records,
            "num_failed": len(failed),
        },
        "detector": {"min_face": args.min_face, "device": args.device, "box_convention": args.box_convention},
        "iou_thresholds": list(IOU_THRESHOLDS),
        "min_size": args.min_size,
        "failed_images": failed,
        "results": results,
    }


def _prepare(args: argparse.Namespace) -> tuple[dict, list[FaceRecord], WiderSettings | None] | int:
    """``(detectors, records to evaluate, WIDER settings or None)``, or the exit code: 2 for a bad
    argument (weights, annotations, WIDER settings), 1 for an empty selection; the error printed."""
    from ..data import select_split

    if args.wider_settings and args.format != "wider":
        print("error: --wider-settings needs --format wider", file=sys.stderr)
        return 2
    try:
        detectors = load_detectors(args)
        records = read_records(args.format, Path(args.annotations), None if args.images is None else Path(args.images))
    except (ValueError, FileNotFoundError, NotADirectoryError, KeyError, ImportError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    records = select_split(records, args.split, args.val_fraction)[: args.limit]
    if not records:
        print(f"error: no annotated images in {args.annotations} (split {args.split})", file=sys.stderr)
        return 1
    try:
        for label, name in choose_conventions(detectors, records, args.box_convention).items():
            if not args.quiet:
                print(f"{label}: boxes in the {name!r} box convention", file=sys.stderr)
        return detectors, records, wider_settings(args, records)
    except (ValueError, FileNotFoundError, ImportError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _write_plots(
    args: argparse.Namespace, reports: dict[str, DetectionReport], wider: dict[str, WiderReport], num_images: int
) -> None:
    """``--plot``: the PR curves (one panel per setting for the WIDER protocol), FDDB's ROC beside."""
    from .plots import plot_pr_curves, plot_roc, plot_wider_pr

    plot = Path(args.plot)
    where = "/".join(Path(args.annotations).resolve().parts[-2:])
    title = f"{args.format}: {where} ({args.split}, {num_images} images)"
    if wider:
        plot_wider_pr(wider, plot, title=f"WIDER FACE protocol, {title}")
    else:
        plot_pr_curves(reports, plot, title=title)
    if args.format == "fddb":
        plot_roc(reports, plot.with_name(f"{plot.stem}_roc{plot.suffix or '.png'}"))


def cmd_eval_detection(args: argparse.Namespace) -> int:
    """``facecascade eval detection``: see the module docstring."""
    from ..outputs import write_json_atomic

    prepared = _prepare(args)
    if isinstance(prepared, int):
        return prepared
    detectors, records, settings = prepared
    start = time.perf_counter()
    kept, predictions, failed = run_detectors(detectors, records, args.quiet)
    elapsed = time.perf_counter() - start
    fddb = args.format == "fddb"
    reports = {w: evaluate_detections(p, kept, IOU_THRESHOLDS, args.min_size) for w, p in predictions.items()}
    wider = {} if settings is None else {w: evaluate_wider(p, kept, settings) for w, p in predictions.items()}
    table_stream = sys.stderr if args.json == "-" else sys.stdout
    print(results_table(reports, fddb), file=table_stream)
    if wider:
        print("\n" + wider_text(wider), file=table_stream)
    coco = {}
    if args.coco:
        from .coco_metrics import coco_ap

        coco = {w: coco_ap(kept, [{"boxes": b, "scores": s} for b, s in p]) for w, p in predictions.items()}
        print("\n" + coco_table(coco), file=table_stream)
    if not args.quiet and reports:
        first = next(iter(reports.values()))
        print(
            f"{len(kept)} images, {first.num_gt} faces counted, {first.num_ignored} ignored; "
            f"{elapsed:.1f} s for {len(detectors)} detector(s)",
            file=sys.stderr,
        )
    payload = _report_payload(args, len(records), failed, reports, fddb)
    for label, values in coco.items():
        payload["results"][label]["coco"] = values
    for label, wider_report in wider.items():
        payload["results"][label]["wider"] = wider_report.to_dict()
    if args.json:
        write_json_atomic(args.json, payload)
    if args.plot:
        _write_plots(args, reports, wider, len(kept))
    if failed:
        print(f"{len(failed)} of {len(records)} image(s) could not be read", file=sys.stderr)
    return 1 if failed else 0


def add_eval_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``facecascade eval`` and its ``detection`` subcommand."""
    parser = sub.add_parser("eval", help="evaluate models on annotated data")
    what = parser.add_subparsers(dest="what", required=True)
    det = what.add_parser(
        "detection",
        help="AP and recall of face detectors on an annotated dataset",
        description="Detect faces in the images of an annotated dataset with one or more weights and report "
        "VOC all-point AP and recall at IoU 0.5 and 0.3 (and FDDB's discrete ROC for --format fddb, the "
        "official WIDER FACE protocol for --format wider).",
    )
    det.add_argument("--format", required=True, choices=FORMATS, help="annotation format")
    det.add_argument("--annotations", required=True, metavar="PATH", help="annotation file or folder")
    det.add_argument("--images", metavar="DIR", help="image folder (default: as the format's reader decides)")
    det.add_argument(
        "--weights",
        nargs="+",
        action="extend",
        metavar="NAME_OR_PATH",
        help=f"named weights or checkpoint paths, each evaluated on the same images (default: {DEFAULT_WEIGHTS})",
    )
    det.add_argument(
        "--split",
        choices=SPLITS,
        default="all",
        help="evaluate on the whole set, or on facecascade's deterministic train/val split or one of "
        "the validation split's halves (val-tune: for choosing settings such as "
        "thresholds; val-report: untouched by such choices) (default all)",
    )
    det.add_argument("--val-fraction", type=fraction, default=0.2, help="share of images in val (default 0.2)")
    det.add_argument(
        "--min-size",
        type=non_negative,
        default=0.0,
        metavar="PX",
        help="ignore annotated faces lower than PX pixels (default 0: none)",
    )
    det.add_argument(
        "--min-face", type=float, default=20.0, help="detector's smallest face side in pixels (default 20)"
    )
    det.add_argument(
        "--fast",
        action="store_true",
        help="also evaluate each weights' fast path (FaceDetector(fast=True)) as 'NAME (fast)'",
    )
    det.add_argument(
        "--wider-settings",
        metavar="DIR",
        help="with --format wider: the folder of the official wider_{easy,medium,hard}_val.mat (and "
        'wider_face_val.mat) for easy/medium/hard AP (needs scipy: pip install "facecascade[wider]"); '
        "without it the WIDER protocol uses face-height buckets >= 10, 20, 50 px",
    )
    det.add_argument(
        "--box-convention",
        default="auto",
        metavar="NAME",
        help="weights with a box regressor per training source (cascade-rcnn): draw boxes the way NAME "
        "(wider, voc, caltech) does; 'auto' (default): the evaluated format's own when the weights learnt "
        "it, else their default; 'default': their default (WIDER FACE's)",
    )
    det.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ...")
    det.add_argument("--json", metavar="OUT.json", help='write the full report as JSON ("-" for stdout)')
    det.add_argument(
        "--plot",
        metavar="PR.png",
        help="write precision-recall curves (for fddb also the ROC, as <name>_roc.png; for wider one panel "
        "per WIDER setting)",
    )
    det.add_argument("--limit", type=positive_int, metavar="N", help="evaluate the first N images only")
    det.add_argument(
        "--coco",
        action="store_true",
        help="also COCO AP (pycocotools): AP@[.5:.95], AP50, AP60, AP70, AP75, AP80, AP90",
    )
    det.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary line")
    det.set_defaults(func=cmd_eval_detection)
    from .attributes import add_attributes_parser
    from .landmarks import add_landmarks_parser

    add_attributes_parser(what)
    add_landmarks_parser(what)
