"""Command line: ``facecascade detect IMAGE_OR_DIR... [--json OUT] [--draw DIR]``, and the
``analyze``, ``eval``, ``train``, ``serve``, ``weights`` and ``export`` subcommands (their own modules).

A file that cannot be read is reported on one line (``error: <path>: <reason>``) and skipped; the
run goes on and the exit code is 1 if any input failed (2 for bad arguments).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from tqdm import tqdm

from .analyze.sources import input_files
from .argtypes import stage_thresholds
from .detect.backends import BACKENDS
from .detect.detector import DEFAULT_WEIGHTS
from .outputs import Record, write_json_atomic


def _json_key(path: Path, seen: set[str]) -> str:
    """The file's base name, or its full path when another input already has that name."""
    key = path.name if path.name not in seen else str(path)
    seen.add(key)
    return key


def cmd_detect(args: argparse.Namespace) -> int:
    from .analyze.cli import DrawnImages
    from .analyze.runner import run_files
    from .detect import FaceDetector

    try:
        detector = FaceDetector(
            weights=args.weights,
            device=args.device,
            min_face_size=args.min_face,
            thresholds=args.thresholds,
            fast=args.fast,
            backend=args.backend,
            box_convention=args.box_convention,
        )
        aligner = None
        if args.refine:
            from .align import FaceAligner

            aligner = FaceAligner(args.refine, device=args.device)
    except (ValueError, FileNotFoundError, ImportError) as exc:  # ImportError: a backend's missing package
        print(f"error: {exc}", file=sys.stderr)
        return 2
    files = list(input_files(args.inputs))
    results: dict[str, list] = {}
    seen: set[str] = set()
    drawn = DrawnImages(args.draw) if args.draw else None

    def on_record(record: Record, image) -> None:
        results[_json_key(Path(record.source), seen)] = record.faces.to_dicts()
        if not args.json and not args.quiet:
            n = len(record.faces)
            tqdm.write(f"{record.source}: {n} face{'s' if n != 1 else ''}", file=sys.stdout)
        if drawn is not None:
            drawn.save(record, image)

    def process(arrays):  # the detector's faces, their landmarks refined when asked
        faces = detector.detect_arrays(arrays)
        return faces if aligner is None else aligner.align_arrays(arrays, faces)

    summary = run_files(files, process, on_record, batch_size=detector.batch_size, progress=not args.quiet)
    if args.json:
        write_json_atomic(args.json, results)
    return summary.exit_code()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="facecascade", description="Faces from photos with cascaded CNNs.")
    sub = parser.add_subparsers(dest="command", required=True)
    detect = sub.add_parser(
        "detect",
        help="detect faces and 5 landmarks",
        description="Detect faces and 5 landmarks in images and folders of images.",
    )
    detect.add_argument("inputs", nargs="+", metavar="IMAGE_OR_DIR")
    detect.add_argument(
        "--weights",
        default=DEFAULT_WEIGHTS,
        help="named weights (mtcnn, mtcnn-joint, mtcnn-original, cascade-rcnn, faster-rcnn) or a checkpoint path "
        f"(default: {DEFAULT_WEIGHTS})",
    )
    detect.add_argument(
        "--box-convention",
        default=None,
        metavar="NAME",
        help="cascade-rcnn / faster-rcnn: draw boxes the way a training source does: wider (default), voc "
        "(face_mask) or caltech",
    )
    detect.add_argument("--min-face", type=float, default=20.0, help="smallest face side in pixels (default 20)")
    detect.add_argument(
        "--thresholds",
        type=stage_thresholds,
        default=None,
        help="per-stage face probabilities, e.g. 0.6,0.7,0.7 (default: the weights' own)",
    )
    detect.add_argument(
        "--fast",
        action="store_true",
        help="FaceCraft's fast path: max-pool suppression, coarser pyramid; faster, answers differ "
        'slightly (docs/models/facecraft.md, "Fast path")',
    )
    detect.add_argument(
        "--refine",
        nargs="?",
        const="dcrn",
        metavar="ALIGNER",
        help="refine the 5 landmarks with the DCRN aligner (dcrn, or a checkpoint path); "
        "adds each face's refinement iterations to the output",
    )
    detect.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ...")
    detect.add_argument(
        "--backend",
        choices=BACKENDS,
        default="torch",
        help='what runs the networks (default torch; onnxruntime, openvino: pip install "facecascade[onnx]", '
        "docs/export.md)",
    )
    detect.add_argument(
        "--json",
        metavar="OUT.json",
        help='write {"<file name>": [{"box", "score", "landmarks"}, ...]} ("-" for stdout)',
    )
    detect.add_argument("--draw", metavar="OUT_DIR", help="save images with boxes and landmarks drawn")
    detect.add_argument("-q", "--quiet", action="store_true", help="no per-image lines, no progress bar")
    detect.set_defaults(func=cmd_detect)
    from .analyze.cli import add_analyze_parser
    from .eval.cli import add_eval_parser
    from .export.cli import add_export_parser
    from .serve.cli import add_serve_parser
    from .train.cli import add_train_parser
    from .weights_cli import add_weights_parser

    add_analyze_parser(sub)
    add_eval_parser(sub)
    add_train_parser(sub)
    add_serve_parser(sub)
    add_weights_parser(sub)
    add_export_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
