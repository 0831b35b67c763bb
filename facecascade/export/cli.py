"""``facecascade export onnx --weights NAME --out DIR [--opset 18]``: a weights name's networks as
ONNX files and a manifest (`facecascade.export.to_onnx`). Exit 0 when files were written, 1 when
the weights have nothing that exports (the manifest says why), 2 for bad arguments or a missing
``onnx`` extra."""

from __future__ import annotations

import argparse
import json
import sys

from ..argtypes import positive_int
from .deps import MissingDependencyError
from .onnx_files import DEFAULT_OPSET


def _report(manifest: dict) -> int:
    """One line per written model and per model left out; the exit code."""
    for name, model in manifest["models"].items():
        shapes = ", ".join(f"{i['name']} {i['shape']}" for i in model["inputs"])
        print(f"{model['file']}: {name} ({shapes})")
    for name, reason in manifest["not_exported"].items():
        print(f"not exported: {name}: {reason}", file=sys.stderr)
    return 0 if manifest["models"] else 1


def cmd_export_onnx(args: argparse.Namespace) -> int:
    from .exporter import to_onnx

    try:
        path = to_onnx(args.weights, args.out, opset=args.opset)
    except MissingDependencyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (ValueError, KeyError, OSError) as exc:  # unknown weights, a file as --out, unreadable weights
        print(f"error: {exc.args[0] if isinstance(exc, KeyError) else exc}", file=sys.stderr)
        return 2
    code = _report(json.loads(path.read_text(encoding="utf-8")))
    print(f"manifest: {path}")
    return code


def add_export_parser(sub: argparse._SubParsersAction) -> None:
    export = sub.add_parser(
        "export", help="export networks to other formats", description="Export the networks of named weights."
    )
    formats = export.add_subparsers(dest="export_format", required=True)
    onnx = formats.add_parser(
        "onnx",
        help="ONNX files and a manifest.json to run them from (docs/export.md)",
        description="ONNX files (dynamic batch axis; P-Net also dynamic height and width) and a manifest.json "
        "with their inputs, outputs and SHA-256, and the settings to run them (docs/export.md). "
        'Needs pip install "facecascade[onnx]".',
    )
    onnx.add_argument(
        "--weights",
        required=True,
        help="named weights (mtcnn, mtcnn-joint, mtcnn-original, dcrn, mcfa; cascade-rcnn and faster-rcnn do not "
        "export) or a facecascade checkpoint path",
    )
    onnx.add_argument("--out", required=True, metavar="DIR", help="folder to write (created if missing)")
    onnx.add_argument("--opset", type=positive_int, default=DEFAULT_OPSET, help=f"ONNX opset (default {DEFAULT_OPSET})")
    onnx.set_defaults(func=cmd_export_onnx)
