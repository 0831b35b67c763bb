"""What a `facecascade serve` instance runs and its limits."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ServeConfig:
    """Settings of the service (``facecascade serve --help`` names the same).

    Attributes:
        detector, aligner, attributes: the pipeline's weights (`FaceAnalyzer`'s arguments);
            ``aligner=None`` keeps the detector's landmarks, ``attributes=None`` gives none.
        min_face: the default smallest face side in pixels (a request may ask for another).
        fast: the detector's fast path by default (a request may ask for either).
        device: ``cpu``, ``cuda``, ...
        max_batch: most images run through the cascade as one batch.
        max_wait_ms: how long the first image of a batch waits for others (0: take only what is
            already queued).
        max_queue: most images waiting; a request beyond gets 503 with ``Retry-After``.
        workers: batch worker threads, each with its own copy of the models.
        max_bytes: largest accepted upload (413 beyond, from ``Content-Length`` before reading).
        max_pixels: largest accepted image, from its header before decoding (400 beyond).
        threads: PyTorch CPU threads (0: PyTorch's default).
    """

    detector: str = "mtcnn"
    aligner: str | None = None
    attributes: str | None = "mcfa"
    min_face: float = 20.0
    fast: bool = False
    device: str = "cpu"
    max_batch: int = 8
    max_wait_ms: float = 5.0
    max_queue: int = 64
    workers: int = 1
    max_bytes: int = 20 * 1024 * 1024
    max_pixels: int = 40_000_000
    threads: int = 0

    def __post_init__(self) -> None:
        for name in ("max_batch", "workers", "max_bytes", "max_pixels"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.max_wait_ms < 0 or self.max_queue < 0 or self.threads < 0:
            raise ValueError("max_wait_ms, max_queue and threads must be >= 0")
