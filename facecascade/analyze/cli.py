"""``facecascade analyze PATH... [--json OUT] [--csv OUT] [--coco OUT] [--draw DIR] [--video]``.

Images, folders (recursive) and videos (frame by frame) through `FaceAnalyzer`, in batches, with
the next images decoded in a background thread. A file that cannot be read is reported on one
line (``error: <path>: <reason>``) and skipped; the run finishes the rest, writes its outputs
(each atomically: complete or not at all) and exits with 1 and a count of the failures
(2 for bad arguments).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from pathlib import Path

from tqdm import tqdm

from ..argtypes import positive_int, stage_thresholds
from ..detect.detector import DEFAULT_WEIGHTS
from ..outputs import AtomicFile, CocoWriter, CsvWriter, JsonLinesWriter, Record
from .runner import run_files
from .sources import input_files

DRAW_FORMATS = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".bmp": "BMP", ".webp": "WEBP"}


class DrawnImages:
    """Saves drawn images into a folder: ``<name>`` for images (PNG when the input's format is
    not one we write), ``<video stem>/<frame>.jpg`` for frames; a repeated name gets ``_2``,
    ``_3`` ... Each file is written under a temporary name and renamed when complete."""

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)
        self._taken: set[Path] = set()

    def path_for(self, record: Record) -> Path:
        source = Path(record.source)
        if record.frame is not None:
            return self._unique(self.folder / source.stem / f"{record.frame:06d}.jpg")
        suffix = source.suffix.lower() if source.suffix.lower() in DRAW_FORMATS else ".png"
        return self._unique(self.folder / f"{source.stem}{suffix}")

    def _unique(self, path: Path) -> Path:
        candidate, n = path, 1
        while candidate in self._taken:
            n += 1
            candidate = path.with_name(f"{path.stem}_{n}{path.suffix}")
        self._taken.add(candidate)
        return candidate

    def save(self, record: Record, image) -> Path:
        from ..viz import draw_faces

        path = self.path_for(record)
        with AtomicFile(path, binary=True) as out:
            draw_faces(image, record.faces).save(out.file, format=DRAW_FORMATS[path.suffix])
        return path


def _writers(args: argparse.Namespace, stack: contextlib.ExitStack) -> list:
    writers = []
    for path, kind in ((args.json, JsonLinesWriter), (args.csv, CsvWriter), (args.coco, CocoWriter)):
        if path:
            writers.append(stack.enter_context(kind(path)))
    return writers


def _build_analyzer(args: argparse.Namespace):
    from .analyzer import FaceAnalyzer

    return FaceAnalyzer(
        detector=args.detector,
        aligner=args.aligner,
        attributes=args.attributes,
        device=args.device,
        min_face_size=args.min_face,
        thresholds=args.thresholds,
        fast=args.fast,
        batch_size=args.batch_size,
    )


def cmd_analyze(args: argparse.Namespace) -> int:
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    try:
        analyzer = _build_analyzer(args)
    except (ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    files = list(input_files(args.inputs, videos=args.video))
    drawn = DrawnImages(args.draw) if args.draw else None
    lines = not (args.quiet or args.json == "-")
    with contextlib.ExitStack() as stack:
        writers = _writers(args, stack)

        def on_record(record: Record, image) -> None:
            for writer in writers:
                writer.write(record)
            if drawn is not None:
                drawn.save(record, image)
            if lines:
                where = record.source if record.frame is None else f"{record.source}#{record.frame}"
                n = len(record.faces)
                tqdm.write(f"{where}: {n} face{'s' if n != 1 else ''}", file=sys.stdout)

        summary = run_files(
            files,
            analyzer.analyze_arrays,
            on_record,
            batch_size=args.batch_size,
            video=args.video,
            every=args.every,
            progress=not args.quiet,
        )
    return summary.exit_code()


def add_analyze_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "analyze",
        help="faces, landmarks and attributes in images, folders and videos",
        description="Faces, landmarks (refined when an aligner is set) and attributes in images, "
        "folders (recursive) and video files (frame by frame).",
    )
    p.add_argument("inputs", nargs="+", metavar="PATH")
    p.add_argument("--json", metavar="OUT.jsonl", help='JSON lines, one object per image/frame ("-": stdout)')
    p.add_argument("--csv", metavar="OUT.csv", help="one row per face")
    p.add_argument("--coco", metavar="OUT.json", help="COCO-format images, annotations (with scores) and categories")
    p.add_argument("--draw", metavar="DIR", help="save images with boxes, landmarks and top attributes drawn")
    p.add_argument(
        "--video",
        action="store_true",
        help="read named files of any non-image extension as videos, and include videos found "
        "in folders (named .mp4/.mov/.avi/.mkv/... files are always read as videos)",
    )
    p.add_argument("--every", type=positive_int, default=1, metavar="N", help="analyse one video frame in N")
    p.add_argument(
        "--detector",
        default=DEFAULT_WEIGHTS,
        help=f"detector weights (mtcnn, mtcnn-joint, mtcnn-original, a checkpoint path) or 'none': "
        f"each image is one face crop (default: {DEFAULT_WEIGHTS})",
    )
    p.add_argument(
        "--aligner", default=None, help="refine the landmarks with aligner weights: dcrn or a checkpoint (default: off)"
    )
    p.add_argument(
        "--attributes",
        default="mcfa",
        help="attribute weights (mcfa, an MCFA checkpoint path) or 'none' (default: mcfa)",
    )
    p.add_argument("--min-face", type=float, default=20.0, help="smallest face side in pixels (default 20)")
    p.add_argument(
        "--thresholds", type=stage_thresholds, default=None, help="detector stage thresholds, e.g. 0.6,0.7,0.7"
    )
    p.add_argument(
        "--fast", action="store_true", help='the detector\'s fast path (docs/models/facecraft.md, "Fast path")'
    )
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ...")
    p.add_argument("--batch-size", type=positive_int, default=8, help="images per batch (default 8)")
    p.add_argument("--threads", type=positive_int, default=None, help="CPU threads for torch (default: torch's)")
    p.add_argument("-q", "--quiet", action="store_true", help="no per-image lines, no progress bar")
    p.set_defaults(func=cmd_analyze)
