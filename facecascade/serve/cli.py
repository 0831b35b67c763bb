"""``facecascade serve``: the service on a host and port, run by uvicorn."""

from __future__ import annotations

import argparse
import sys

from ..detect.backends import BACKENDS
from .config import ServeConfig


def _optional(value: str) -> str | None:
    return None if value.lower() == "none" else value


def config_from_args(args: argparse.Namespace) -> ServeConfig:
    return ServeConfig(
        detector=args.detector,
        aligner=args.aligner,
        attributes=args.attributes,
        min_face=args.min_face,
        fast=args.fast,
        backend=args.backend,
        device=args.device,
        max_batch=args.max_batch,
        max_wait_ms=args.max_wait_ms,
        max_queue=args.max_queue,
        workers=args.workers,
        max_bytes=args.max_bytes,
        max_pixels=args.max_pixels,
        threads=args.threads,
    )


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from .app import create_app

    try:
        config = config_from_args(args)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    app = create_app(config)
    print(f"facecascade serve: http://{args.host}:{args.port}/ (API docs at /docs)", file=sys.stderr)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level, timeout_graceful_shutdown=10)
    return 0


def add_serve_parser(sub: argparse._SubParsersAction) -> None:
    d = ServeConfig()
    p = sub.add_parser(
        "serve",
        help="an HTTP service and a web page for the whole pipeline",
        description="Serve POST /v1/detect and /v1/analyze (JSON, or a drawn JPEG), /healthz, /v1/models, "
        "/metrics and a web page at /, batching concurrent requests through the cascade.",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument("--detector", default=d.detector, help=f"detector weights (default {d.detector})")
    p.add_argument("--aligner", type=_optional, default=d.aligner, help="aligner weights, e.g. dcrn (default none)")
    p.add_argument(
        "--attributes", type=_optional, default=d.attributes, help="attribute weights or none (default mcfa)"
    )
    p.add_argument("--min-face", type=float, default=d.min_face, help="default smallest face side in pixels (20)")
    p.add_argument("--fast", action="store_true", help="the detector's fast path by default")
    p.add_argument("--device", default=d.device, help="cpu, cuda, ... (default cpu)")
    p.add_argument(
        "--backend", choices=BACKENDS, default=d.backend, help="what runs the detector's networks (default torch)"
    )
    p.add_argument(
        "--workers",
        type=int,
        default=d.workers,
        help="batch worker threads, each with its models (0: 2 on CPU, 1 on GPU)",
    )
    p.add_argument("--max-batch", type=int, default=d.max_batch, help="most images per batch (8; 1: no batching)")
    p.add_argument("--max-wait-ms", type=float, default=d.max_wait_ms, help="longest wait to fill a batch (5 ms)")
    p.add_argument("--max-queue", type=int, default=d.max_queue, help="most images waiting before 503 (64)")
    p.add_argument("--max-bytes", type=int, default=d.max_bytes, help="largest upload in bytes (20 MiB)")
    p.add_argument("--max-pixels", type=int, default=d.max_pixels, help="largest image in pixels (40 M)")
    p.add_argument("--threads", type=int, default=d.threads, help="PyTorch CPU threads (0: cores / workers)")
    p.add_argument("--log-level", default="info", help="uvicorn's log level (default info)")
    p.set_defaults(func=cmd_serve)
