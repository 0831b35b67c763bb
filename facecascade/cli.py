"""Command line: ``facecascade detect IMAGE_OR_DIR... [--json OUT] [--draw DIR]``.

A file that cannot be read is reported on one line (``error: <path>: <reason>``) and skipped; the
run goes on and the exit code is 1 if any input failed (2 for bad arguments).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from .detect.detector import DEFAULT_WEIGHTS
from .io import IMAGE_EXTENSIONS, image_files, load_image
from .structures import Faces


def _inputs(paths: Sequence[str]) -> Iterator[Path]:
    """Files named on the command line, and image files below named folders (recursive, sorted)."""
    for p in paths:
        path = Path(p)
        if path.is_dir():
            yield from image_files(path)
        else:
            yield path


def _write_json_atomic(path: Path, payload: object) -> None:
    """Write JSON to a temporary file beside ``path`` and rename it: never a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(payload, f, indent=1)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def draw_faces(image: np.ndarray, faces: Faces):
    """A PIL image of ``image`` with boxes, scores and landmarks drawn."""
    from PIL import Image, ImageDraw

    canvas = Image.fromarray(image)
    draw = ImageDraw.Draw(canvas)
    width = max(1, round(max(image.shape[:2]) / 400))
    for box, score, points in zip(faces.boxes, faces.scores, faces.landmarks):
        draw.rectangle([float(v) for v in box], outline=(0, 255, 0), width=width)
        draw.text((float(box[0]), float(box[1]) - 10 * width), f"{score:.2f}", fill=(0, 255, 0))
        r = 1.5 * width
        for (x, y), colour in zip(points, [(255, 0, 0), (0, 0, 255), (255, 255, 0), (255, 0, 255), (0, 255, 255)]):
            draw.ellipse([x - r, y - r, x + r, y + r], fill=colour)
    return canvas


def _json_key(path: Path, seen: set[str]) -> str:
    """The file's base name, or its full path when another input already has that name."""
    key = path.name if path.name not in seen else str(path)
    seen.add(key)
    return key


def cmd_detect(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from .detect import FaceDetector

    try:
        detector = FaceDetector(weights=args.weights, device=args.device, min_face_size=args.min_face,
                                thresholds=args.thresholds, fast=args.fast)
    except (ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    files = list(_inputs(args.inputs))
    results: dict[str, list] = {}
    seen: set[str] = set()
    failed = 0
    show_bar = len(files) > 1 and not args.quiet
    for path in tqdm(files, unit="img", disable=not show_bar, file=sys.stderr):
        try:
            image = load_image(path)
        except (ValueError, FileNotFoundError) as exc:
            failed += 1
            tqdm.write(f"error: {path}: {exc}", file=sys.stderr)
            continue
        faces = detector.detect_arrays([image])[0]
        key = _json_key(path, seen)
        results[key] = faces.to_dicts()
        if not args.json and not args.quiet:
            tqdm.write(f"{path}: {len(faces)} face{'s' if len(faces) != 1 else ''}", file=sys.stdout)
        if args.draw:
            out = Path(args.draw) / key.replace(os.sep, "_")  # same name and format as the input
            out.parent.mkdir(parents=True, exist_ok=True)
            draw_faces(image, faces).save(out)
    if args.json:
        if args.json == "-":
            json.dump(results, sys.stdout, indent=1)
            sys.stdout.write("\n")
        else:
            _write_json_atomic(Path(args.json), results)
    if failed:
        print(f"{failed} of {len(files)} input(s) failed", file=sys.stderr)
    if not files:
        print("error: no image files found in the given paths "
              f"(extensions: {', '.join(sorted(IMAGE_EXTENSIONS))})", file=sys.stderr)
        return 1
    return 1 if failed else 0


def _thresholds(text: str) -> tuple[float, float, float]:
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected three numbers like 0.6,0.7,0.7, got {text!r}") from exc
    if len(values) != 3:
        raise argparse.ArgumentTypeError(f"expected three numbers like 0.6,0.7,0.7, got {text!r}")
    return values  # type: ignore[return-value]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="facecascade", description="Faces from photos with cascaded CNNs.")
    sub = parser.add_subparsers(dest="command", required=True)
    detect = sub.add_parser("detect", help="detect faces and 5 landmarks",
                            description="Detect faces and 5 landmarks in images and folders of images.")
    detect.add_argument("inputs", nargs="+", metavar="IMAGE_OR_DIR")
    detect.add_argument("--weights", default=DEFAULT_WEIGHTS,
                        help=f"named weights (mtcnn, mtcnn-joint, mtcnn-original) or a checkpoint path "
                             f"(default: {DEFAULT_WEIGHTS})")
    detect.add_argument("--min-face", type=float, default=20.0, help="smallest face side in pixels (default 20)")
    detect.add_argument("--thresholds", type=_thresholds, default=None,
                        help="per-stage face probabilities, e.g. 0.6,0.7,0.7 (default: the weights' own)")
    detect.add_argument("--fast", action="store_true",
                        help="FaceCraft's fast path: max-pool suppression, coarser pyramid; faster, answers differ "
                             "slightly (README, \"Fast path\")")
    detect.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ...")
    detect.add_argument("--json", metavar="OUT.json",
                        help='write {"<file name>": [{"box", "score", "landmarks"}, ...]} ("-" for stdout)')
    detect.add_argument("--draw", metavar="OUT_DIR", help="save images with boxes and landmarks drawn")
    detect.add_argument("-q", "--quiet", action="store_true", help="no per-image lines, no progress bar")
    detect.set_defaults(func=cmd_detect)
    from .eval.cli import add_eval_parser
    from .train.cli import add_train_parser

    add_eval_parser(sub)
    add_train_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
