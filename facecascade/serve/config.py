"""What a `facecascade serve` instance runs and its limits."""

from __future__ import annotations

import os
from dataclasses import dataclass

from ..detect.backends import BACKENDS


@dataclass(frozen=True)
class ServeConfig:
    """Settings of the service (``facecascade serve --help`` names the same).

    Attributes:
        detector, aligner, attributes: the pipeline's weights (`FaceAnalyzer`'s arguments);
            ``aligner=None`` keeps the detector's landmarks, ``attributes=None`` gives none.
        min_face: the default smallest face side in pixels (a request may ask for another).
        fast: the detector's fast path by default (a request may ask for either).
        backend: what runs the detector's networks: ``torch``, ``onnxruntime`` or ``openvino``
            (`FaceDetector`'s ``backend``; docs/export.md).
        device: ``cpu``, ``cuda``, ...
        max_batch: most images run through the cascade as one batch.
        max_wait_ms: how long the first image of a batch waits for others (0: take only what is
            already queued).
        max_queue: most images waiting; a request beyond gets 503 with ``Retry-After``.
        workers: batch worker threads, each with its own copy of the models (0: two on a CPU with
            two cores or more, one on a GPU; see `worker_count`).
        max_bytes: largest accepted upload (413 beyond, from ``Content-Length`` before reading).
        max_pixels: largest accepted image, from its header before decoding (400 beyond).
        threads: PyTorch CPU threads (0: the cores shared out among the workers, `thread_count`).
    """

    detector: str = "mtcnn"
    aligner: str | None = None
    attributes: str | None = "mcfa"
    min_face: float = 20.0
    fast: bool = False
    backend: str = "torch"
    device: str = "cpu"
    max_batch: int = 8
    max_wait_ms: float = 5.0
    max_queue: int = 64
    workers: int = 0
    max_bytes: int = 20 * 1024 * 1024
    max_pixels: int = 40_000_000
    threads: int = 0

    def __post_init__(self) -> None:
        for name in ("max_batch", "max_bytes", "max_pixels"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.backend not in BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {self.backend!r}")
        if min(self.max_wait_ms, self.max_queue, self.threads, self.workers) < 0:
            raise ValueError("max_wait_ms, max_queue, threads and workers must be >= 0")

    def worker_count(self) -> int:
        """``workers``, or by default two on a CPU (on this project's 2-core machine two workers of
        one thread each served 1.3-1.6x the requests of one worker of two threads: one cascade
        gains little from a second thread; `benchmarks/load_serve.py`), one on a GPU."""
        if self.workers:
            return self.workers
        return 1 if self.device.startswith("cuda") else min(2, os.cpu_count() or 1)

    def thread_count(self) -> int:
        """``threads``, or by default the CPU's cores shared out among the workers."""
        return self.threads or max(1, (os.cpu_count() or 1) // self.worker_count())
