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
        """Build the default pipelines now (a worker starts with its models loaded)."""
        for key in self.defaults():
            self.get(key)
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
            )
            extra = [k for k in self._built if k not in self.defaults()]
            if len(extra) > KEEP:
                del self._built[extra[0]]
        self._built.move_to_end(key)
        return self._built[key]

    def __call__(self, key: Hashable, images: list[np.ndarray]) -> list[Faces]:
        assert isinstance(key, PipelineKey)
        return self.get(key).analyze_arrays(images)
