"""The models a batch worker runs: one `FaceAnalyzer` per (endpoint, smallest face, fast path),
built on first use and kept (a few at most), so that requests asking for other options are
batched apart and never rebuild the default pipeline."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from typing import NamedTuple

import numpy as np

from ..analyze import FaceAnalyzer
from ..structures import Faces
from .config import ServeConfig

KEEP = 4  # pipelines kept per worker beyond the defaults (least recently used dropped)


class PipelineKey(NamedTuple):
    """What a request asks for: ``endpoint`` "detect" (detector only) or "analyze" (the whole
    pipeline), the smallest face side in pixels and the fast path."""

    endpoint: str
    min_face: float
    fast: bool


class Pipelines:
    """A worker's analyzers by `PipelineKey`; call it as the batcher's runner."""

    def __init__(self, config: ServeConfig) -> None:
        self.config = config
        self._built: OrderedDict[PipelineKey, FaceAnalyzer] = OrderedDict()

    def defaults(self) -> list[PipelineKey]:
        return [PipelineKey(endpoint, self.config.min_face, self.config.fast) for endpoint in ("detect", "analyze")]

    def warm(self) -> Pipelines:
        """Build the default pipelines and run each once on a VGA noise image, with a stand-in face
        for the aligner and the attribute model: a worker starts with its models loaded and its first calls made
        (the first real request otherwise took 1-1.5 s instead of ~50 ms, measured on this CPU)."""
        noise = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)
        face = Faces(np.array([[200, 100, 400, 350]], np.float32), np.array([1.0], np.float32))
        for key in self.defaults():
            analyzer = self.get(key)
            analyzer.analyze_arrays([noise])
            if analyzer.aligner is not None:
                analyzer.aligner.align_arrays([noise], [face])
            if analyzer.attributes is not None:
                analyzer.attributes.predict_arrays([noise], [face])
        return self

    def get(self, key: PipelineKey) -> FaceAnalyzer:
        if key not in self._built:
            full = key.endpoint == "analyze"
            self._built[key] = FaceAnalyzer(
                detector=self.config.detector,
                aligner=self.config.aligner if full else None,
                attributes=self.config.attributes if full else None,
                device=self.config.device,
                min_face_size=key.min_face,
                fast=key.fast,
                batch_size=self.config.max_batch,
                backend=self.config.backend,
            )
            extra = [k for k in self._built if k not in self.defaults()]
            if len(extra) > KEEP:
                del self._built[extra[0]]
        self._built.move_to_end(key)
        return self._built[key]

    def __call__(self, key: Hashable, images: list[np.ndarray]) -> list[Faces]:
        assert isinstance(key, PipelineKey)
        return self.get(key).analyze_arrays(images)
