"""``facecascade eval landmarks``: NME, failure rate, AUC and CED of landmark models.

Models (``--weights``, each scored on the same faces):

* aligner weights (``dcrn`` or a DCRN checkpoint such as ``runs/dcrn/gen.pt``), run from face
  boxes;
* detector weights (``mtcnn``, ``mtcnn-joint``, ``mtcnn-original``): the detector's own 5 landmarks
  (O-Net), end to end only.

Two protocols (``--protocol``): ``box`` aligns from each face's annotated box (derived from its
points for MTFL / CelebA, the points' bounding box for .pts; optimistic, since the box carries the
answer's position and scale), ``detect`` from the box of the ``--detector`` detection that matches
the face (`facecascade.align.matching`); faces it misses count as failures.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..argtypes import fraction, positive_int
from ..data.landmarks import LANDMARK_FORMATS, LandmarkFace, normalizers
from ..data.split import SPLITS
from ..ops.head_pose import POSE_BUCKETS
from .landmark_metrics import LandmarkSummary, nme, summarize
from .landmark_pose import bucket_summaries, face_buckets, pose_table

PROTOCOLS = ("box", "detect")
NORMALIZATIONS = ("inter-ocular", "inter-pupil", "face")
CHUNK = 64  # images per batched aligner call


def face_errors(predicted: np.ndarray, faces: list[LandmarkFace]) -> dict[str, np.ndarray]:
    """Per-face NME ``{normalisation: (N,)}``; faces without a prediction (NaN) get ``inf``."""
    truth = np.stack([f.points for f in faces])
    boxes = np.stack([f.box for f in faces])
    if predicted.shape != truth.shape:
        raise ValueError(f"the model gives {predicted.shape[1]} points, the data has {truth.shape[1]}")
    missing = np.isnan(predicted).any(axis=(1, 2))
    filled = np.where(missing[:, None, None], truth, predicted)
    return {
        kind: np.where(missing, np.inf, nme(filled, truth, normalizers(truth, boxes, kind))) for kind in NORMALIZATIONS
    }


class LandmarkModel:
    """One ``--weights`` entry: an aligner, or a detector whose own landmarks are scored."""

    def __init__(self, name: str, detectors: dict, steps: str, device: str):
        from ..models.weights import NAMED_WEIGHTS

        self.name = name
        self.is_detector = name in NAMED_WEIGHTS
        if self.is_detector:
            self.detector = _detector(detectors, name, device)
        else:
            from ..align import FaceAligner

            self.aligner = FaceAligner(name, device=device, steps=steps)

    def predict(
        self, images: list[np.ndarray], boxes: list[np.ndarray], detected: list[np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(points (N, K, 2) NaN where missing, iterations (N,))`` for the faces of a chunk;
        ``boxes`` per image are the protocol's boxes (NaN rows: missed), ``detected`` the matched
        detector landmarks (for detector models)."""
        from ..structures import Faces

        if self.is_detector:
            points = np.concatenate(detected)
            return points, np.zeros(len(points))
        flat = np.concatenate(boxes)
        found = ~np.isnan(flat).any(1)
        k = self.aligner.cfg.num_points
        points, iterations = np.full((len(flat), k, 2), np.nan, np.float32), np.zeros(len(flat))
        keep = [~np.isnan(b).any(1) for b in boxes]
        aligned = self.aligner.align_arrays(images, [Faces(b[m], np.ones(m.sum())) for b, m in zip(boxes, keep)])
        points[found] = np.concatenate([a.landmarks for a in aligned])
        iterations[found] = np.concatenate([a.iterations for a in aligned])
        return points, iterations


def _detector(cache: dict, name: str, device: str):
    from ..detect import FaceDetector

    if name not in cache:
        cache[name] = FaceDetector(weights=name, device=device)
    return cache[name]


def _chunk_inputs(chunk: list[tuple[Path, list[int]]], faces: list[LandmarkFace], detectors: dict, errors: list[str]):
    """Images, per-image face indices and per-detector ``(boxes, landmarks)`` matches of one chunk
    of images (``detectors`` empty: no detection, for the box protocol alone)."""
    from ..align.matching import matched_detections
    from ..io import load_image

    images, groups = [], []
    for path, index in chunk:
        try:
            images.append(load_image(path))
        except (ValueError, FileNotFoundError, OSError) as exc:
            errors.append(f"{path}: {exc}")
            continue
        groups.append(index)
    matches = {
        name: [
            matched_detections([faces[i] for i in index], found)
            for index, found in zip(groups, det.detect_arrays(images))
        ]
        for name, det in detectors.items()
    }
    return images, groups, matches


def run_models(
    models: list[LandmarkModel],
    faces: list[LandmarkFace],
    protocols: list[str],
    detector: str,
    detectors: dict,
    quiet: bool,
) -> tuple[dict, list[int], list[str]]:
    """``({(model, protocol): (points, iterations)}, kept face indices, errors)`` over all faces."""
    from tqdm import tqdm

    by_image: dict[Path, list[int]] = {}
    for i, face in enumerate(faces):
        by_image.setdefault(face.image, []).append(i)
    items = list(by_image.items())
    results: dict = {}
    kept: list[int] = []
    errors: list[str] = []
    for start in tqdm(range(0, len(items), CHUNK), unit="chunk", disable=quiet, file=sys.stderr, desc="landmarks"):
        images, groups, matches = _chunk_inputs(
            items[start : start + CHUNK], faces, detectors if "detect" in protocols else {}, errors
        )
        if not groups:
            continue
        kept += [i for g in groups for i in g]
        annotated = [np.stack([faces[i].box for i in g]).astype(np.float32) for g in groups]
        for model in models:
            for protocol in protocols:
                if model.is_detector and protocol == "box":
                    continue
                if protocol == "box":
                    out = model.predict(images, annotated, [])
                else:
                    own = matches[model.name if model.is_detector else detector]
                    out = model.predict(images, [b for b, _ in own], [p for _, p in own])
                results.setdefault((model.name, protocol), []).append(out)
    merged = {
        key: (np.concatenate([p for p, _ in v]), np.concatenate([it for _, it in v])) for key, v in results.items()
    }
    return merged, kept, errors


def results_table(summaries: dict[tuple[str, str], LandmarkSummary]) -> str:
    """Markdown: model | protocol | faces | missed | NME (3 normalisations) | fail@0.1 | AUC@0.1 | steps."""
    lines = [
        "| model | protocol | faces | missed | NME inter-ocular % | NME inter-pupil % | NME face % | "
        "failure@0.1 % | AUC@0.1 | mean steps |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for (name, protocol), s in summaries.items():
        steps = "-" if np.isnan(s.mean_iterations) else f"{s.mean_iterations:.2f}"
        lines.append(
            f"| {name} | {protocol} | {s.faces} | {s.missed} | "
            + " | ".join(f"{100 * s.nme[k]:.2f}" for k in NORMALIZATIONS)
            + f" | {100 * s.failure_rate:.2f} | {s.auc:.3f} | {steps} |"
        )
    return "\n".join(lines)


@dataclass
class Report:
    """The scores of every (model, protocol): overall, per pose bucket, and per-face inter-ocular
    errors for the CED plots (overall and per bucket)."""

    summaries: dict[tuple[str, str], LandmarkSummary]
    by_pose: dict[tuple[str, str], dict[str, LandmarkSummary]]
    curves: dict[str, np.ndarray]
    pose_curves: dict[str, dict[str, np.ndarray]]

    @classmethod
    def of(cls, results: dict, faces: list[LandmarkFace], detector_models: set[str]) -> Report:
        buckets = face_buckets(np.stack([f.points for f in faces])) if faces else None
        report = cls({}, {}, {}, {})
        for key, (points, iterations) in results.items():
            errs = face_errors(points, faces)
            steps = None if key[0] in detector_models else iterations
            report.summaries[key] = summarize(errs, steps)
            label = f"{key[0]} ({key[1]})"
            report.curves[label] = errs["inter-ocular"]
            if buckets is not None:
                report.by_pose[key] = bucket_summaries(errs, steps, buckets)
                for index, name in enumerate(POSE_BUCKETS):
                    if (buckets == index).any():
                        report.pose_curves.setdefault(name, {})[label] = errs["inter-ocular"][buckets == index]
        return report

    def to_json(self, args: argparse.Namespace, faces: int, errors: list[str]) -> dict:
        """The ``--json`` report: the dataset, the overall and the per-pose scores."""
        return {
            "dataset": {
                "format": args.format,
                "annotations": str(args.annotations),
                "split": args.split,
                "faces": faces,
            },
            "detector": args.detector,
            "failed_images": errors,
            "results": [{"model": k[0], "protocol": k[1], **s.to_dict()} for k, s in self.summaries.items()],
            "by_pose": [
                {"model": k[0], "protocol": k[1], "yaw": bucket, **s.to_dict()}
                for k, buckets in self.by_pose.items()
                for bucket, s in buckets.items()
            ],
        }


def _plot(report: Report, path: str, what: str) -> None:
    """The CED of every model at ``path``, and one per pose bucket beside it (``<stem>-yaw-<i>.png``)."""
    from .plots import plot_ced

    faces = len(next(iter(report.curves.values()), []))
    plot_ced(report.curves, path, title=f"CED, {what} ({faces} faces)")
    target = Path(path)
    for index, (bucket, curves) in enumerate(report.pose_curves.items()):
        count = len(next(iter(curves.values())))
        plot_ced(
            curves,
            target.with_name(f"{target.stem}-yaw-{index}{target.suffix}"),
            title=f"CED, {what}, yaw {bucket} ({count} faces)",
        )


def cmd_eval_landmarks(args: argparse.Namespace) -> int:
    """``facecascade eval landmarks``: see the module docstring."""
    from ..data.landmarks import read_landmark_faces, split_faces

    detectors: dict = {}
    try:
        faces = read_landmark_faces(args.format, Path(args.annotations), as_written=args.as_written)
        faces = split_faces(faces, args.split, args.val_fraction)
        faces = faces[: args.limit] if args.limit else faces
        protocols = list(PROTOCOLS) if args.protocol == "both" else [args.protocol]
        if "detect" in protocols:
            _detector(detectors, args.detector, args.device)
        models = [LandmarkModel(w, detectors, args.steps, args.device) for w in dict.fromkeys(args.weights or ["dcrn"])]
    except (ValueError, FileNotFoundError, NotADirectoryError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not faces:
        print(f"error: no annotated faces in {args.annotations} (split {args.split})", file=sys.stderr)
        return 1
    try:
        results, kept, errors = run_models(models, faces, protocols, args.detector, detectors, args.quiet)
        kept_faces = [faces[i] for i in kept]
        report = Report.of(results, kept_faces, {m.name for m in models if m.is_detector})
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for error in errors:
        print(f"error: {error}", file=sys.stderr)
    table = results_table(report.summaries) + (
        f"\n\nBy head pose (yaw from the annotated points):\n\n{pose_table(report.by_pose)}" if report.by_pose else ""
    )
    print(table, file=sys.stderr if args.json == "-" else sys.stdout)
    if args.json:
        from ..outputs import write_json_atomic

        write_json_atomic(args.json, report.to_json(args, len(kept_faces), errors))
    if args.plot:
        _plot(report, args.plot, f"{args.format} {args.split}")
    if errors:
        print(f"{len(errors)} image(s) could not be read", file=sys.stderr)
    return 1 if errors else 0


def add_landmarks_parser(what: argparse._SubParsersAction) -> None:
    """Register ``facecascade eval landmarks``."""
    p = what.add_parser(
        "landmarks",
        help="NME / failure rate / CED of landmark models",
        description="Score aligners (and detectors' own landmarks) on annotated faces: NME normalised "
        "inter-ocular, inter-pupil and by face size, failure rate and AUC at 0.1, mean "
        "refinement steps; protocols: annotated box and end to end from the detector.",
    )
    p.add_argument("--format", required=True, choices=LANDMARK_FORMATS)
    p.add_argument(
        "--annotations",
        required=True,
        metavar="PATH",
        help="MTFL list, CelebA folder (or its landmarks list), or a .pts file / folder",
    )
    p.add_argument(
        "--weights",
        nargs="+",
        action="extend",
        metavar="NAME_OR_PATH",
        help="aligner weights (dcrn, a checkpoint) or detector weights (mtcnn, mtcnn-original, ...: "
        "their own landmarks) (default: dcrn)",
    )
    p.add_argument("--protocol", choices=(*PROTOCOLS, "both"), default="both")
    p.add_argument("--detector", default="mtcnn", help="detector whose boxes the aligners start from (detect protocol)")
    p.add_argument("--steps", default="auto", help="aligner iterations: auto (as trained), dynamic, or a number")
    p.add_argument(
        "--as-written",
        action="store_true",
        help="score against the list's coordinates as written (MTFL's AFLW part is 1-based and is "
        "otherwise moved to 0-based, as LFW and CelebA are: facecascade.data.mtfl)",
    )
    p.add_argument("--split", choices=SPLITS, default="all")
    p.add_argument("--val-fraction", type=fraction, default=0.2)
    p.add_argument("--limit", type=positive_int, metavar="N", help="the first N faces only")
    p.add_argument("--device", default="cpu")
    p.add_argument("--json", metavar="OUT.json", help='write the report as JSON ("-" for stdout)')
    p.add_argument("--plot", metavar="CED.png", help="save the cumulative error distribution (inter-ocular)")
    p.add_argument("-q", "--quiet", action="store_true")
    p.set_defaults(func=cmd_eval_landmarks)
