"""``facecascade analyze PATH... [--json OUT] [--csv OUT] [--coco OUT] [--parquet OUT] [--draw DIR] [--video]
[--ray [ADDRESS]]``.

Images, folders (recursive) and videos (frame by frame) through `FaceAnalyzer`, in batches, with
the next images decoded in a background thread. A file that cannot be read is reported on one
line (``error: <path>: <reason>``) and skipped; the run finishes the rest, writes its outputs
(each atomically: complete or not at all) and exits with 1 and a count of the failures
(2 for bad arguments). With ``--ray`` the images go through a Ray Data job instead
(`facecascade.distributed.analyze_dataset`): bad files are reported the same way, but exit 0
unless ``--strict``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from pathlib import Path
from typing import Any

from tqdm import tqdm

from ..argtypes import non_negative, positive_int, stage_thresholds
from ..detect.backends import BACKENDS
from ..detect.detector import DEFAULT_WEIGHTS
from ..outputs import AtomicFile, CocoWriter, CsvWriter, JsonLinesWriter, ParquetWriter, Record, write_failure
from .runner import error_line, run_files
from .sources import Item, input_files

DRAW_FORMATS = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".bmp": "BMP", ".webp": "WEBP"}
RAY_DEFAULTS = {"actors": 2, "actor_cpus": 1.0, "actor_gpus": 0.0}  # --actors, --actor-cpus, --actor-gpus: --ray only


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
    kinds = (JsonLinesWriter, CsvWriter, CocoWriter, ParquetWriter)
    for path, kind in zip((args.json, args.csv, args.coco, args.parquet), kinds):
        if path:
            writers.append(stack.enter_context(kind(path)))
    return writers


def _analyzer_options(args: argparse.Namespace) -> dict[str, Any]:
    """`FaceAnalyzer`'s keyword arguments from the command line."""
    return {
        "detector": args.detector,
        "aligner": args.aligner,
        "attributes": args.attributes,
        "device": args.device,
        "min_face_size": args.min_face,
        "thresholds": args.thresholds,
        "fast": args.fast,
        "batch_size": args.batch_size,
        "backend": args.backend,
    }


def _build_analyzer(args: argparse.Namespace):
    from .analyzer import FaceAnalyzer

    return FaceAnalyzer(**_analyzer_options(args))


def _record_handler(args: argparse.Namespace, writers: list) -> Any:
    """``on_record(record)``: into every writer, and ``<file>: N faces`` on stdout unless ``-q`` or
    ``--json -``."""
    lines = not (args.quiet or args.json == "-")

    def on_record(record: Record) -> None:
        for writer in writers:
            writer.write(record)
        if lines:
            where = record.source if record.frame is None else f"{record.source}#{record.frame}"
            n = len(record.faces)
            tqdm.write(f"{where}: {n} face{'s' if n != 1 else ''}", file=sys.stdout)

    return on_record


def cmd_analyze(args: argparse.Namespace) -> int:
    if args.ray is not None:
        return _cmd_analyze_ray(args)
    ray_only = [f"--{name.replace('_', '-')}" for name in RAY_DEFAULTS if getattr(args, name) is not None]
    if ray_only:
        print(f"error: {', '.join(ray_only)} need --ray", file=sys.stderr)
        return 2
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    try:
        analyzer = _build_analyzer(args)
    except (ValueError, FileNotFoundError, ImportError) as exc:  # ImportError: a backend's missing package
        print(f"error: {exc}", file=sys.stderr)
        return 2
    files = list(input_files(args.inputs, videos=args.video))
    drawn = DrawnImages(args.draw) if args.draw else None
    with contextlib.ExitStack() as stack:
        try:
            writers = _writers(args, stack)
        except ImportError as exc:  # --parquet without pyarrow
            print(f"error: {exc}", file=sys.stderr)
            return 2
        handle = _record_handler(args, writers)

        def on_record(record: Record, image) -> None:
            handle(record)
            if drawn is not None:
                drawn.save(record, image)

        summary = run_files(
            files,
            analyzer.analyze_arrays,
            on_record,
            batch_size=args.batch_size,
            video=args.video,
            every=args.every,
            progress=not args.quiet,
            on_error=lambda item: write_failure(writers, item.source, item.error or "unreadable", item.frame),
        )
    return summary.exit_code()


def _ray_usage_problem(args: argparse.Namespace) -> str | None:
    """Why these arguments cannot run on Ray, if they cannot."""
    if args.draw or args.video or args.every != 1:
        return "--draw, --video and --every are not available with --ray"
    if args.ray != "local" and os.path.exists(args.ray):
        return (
            f"--ray took {args.ray!r} as the address of a Ray cluster: put --ray after the paths, or write --ray=local"
        )
    return None


def _ray_resources(args: argparse.Namespace) -> dict[str, Any]:
    """``actors``, ``actor_cpus``, ``actor_gpus``: as given, or their defaults."""
    return {
        name: default if getattr(args, name) is None else getattr(args, name) for name, default in RAY_DEFAULTS.items()
    }


def _cmd_analyze_ray(args: argparse.Namespace) -> int:
    """``--ray``: the images as a Ray Data job; bad files exit 0 unless ``--strict``."""
    from ..distributed.ray_analyze import analyze_dataset, require_ray

    problem = _ray_usage_problem(args)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    try:
        require_ray()
        with contextlib.ExitStack() as stack:
            writers = _writers(args, stack)

            def on_error(item: Item) -> None:
                print(error_line(item.source, item.error or "unreadable"), file=sys.stderr)
                write_failure(writers, item.source, item.error or "unreadable")

            summary = analyze_dataset(
                args.inputs,
                analyzer=_analyzer_options(args),
                batch_size=args.batch_size,
                **_ray_resources(args),
                threads=args.threads,
                address=None if args.ray == "local" else args.ray,
                progress=not args.quiet,
                on_record=_record_handler(args, writers),
                on_error=on_error,
            )
    except (ImportError, ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return summary.exit_code(strict=args.strict)


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
    p.add_argument(
        "--parquet",
        metavar="OUT.parquet",
        help="one row per face and one per failed input (with its error); needs pyarrow (docs/ray.md)",
    )
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
    p.add_argument(
        "--backend", choices=BACKENDS, default="torch", help="what runs the detector's networks (docs/export.md)"
    )
    p.add_argument("--batch-size", type=positive_int, default=8, help="images per batch (default 8)")
    p.add_argument(
        "--threads", type=positive_int, default=None, help="torch CPU threads (per actor with --ray; default: torch's)"
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no per-image lines, no progress bar")
    _add_ray_arguments(p)
    p.set_defaults(func=cmd_analyze)


def _add_ray_arguments(p: argparse.ArgumentParser) -> None:
    ray = p.add_argument_group('Ray (docs/ray.md; needs pip install "facecascade[ray]")')
    ray.add_argument(
        "--ray",
        nargs="?",
        const="local",
        default=None,
        metavar="ADDRESS",
        help="run as a Ray Data job: on a new local Ray instance (no ADDRESS), or on the cluster at "
        "ADDRESS ('auto', HOST:6379, ray://HOST:10001). PATHs may also be URIs Ray reads (s3://...). "
        "Put it after the PATHs (or write --ray=local). Bad files are reported but exit 0 unless --strict",
    )
    ray.add_argument(
        "--strict",
        action="store_true",
        help="with --ray: exit 1 when any input failed (without --ray that is always so)",
    )
    ray.add_argument(
        "--actors", type=positive_int, default=None, help="with --ray: actors, each with one analyzer (default 2)"
    )
    ray.add_argument(
        "--actor-cpus", type=non_negative, default=None, help="with --ray: CPUs each actor reserves (default 1)"
    )
    ray.add_argument(
        "--actor-gpus",
        type=non_negative,
        default=None,
        help="with --ray: GPUs each actor reserves (default 0; 1 with --device cuda)",
    )
