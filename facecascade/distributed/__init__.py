"""Running facecascade on more than one process or machine.

* `analyze_dataset`: batch inference (detector, aligner, attributes) as a Ray Data job
  (``facecascade analyze PATH... --ray``; docs/ray.md). Ray is optional
  (``pip install "facecascade[ray]"``): it is imported only when the function is called.
* `facecascade.distributed.ddp`: data-parallel training with `torch.distributed`
  (``torchrun --nproc_per_node=N -m facecascade train ...``; docs/distributed-training.md).
"""

from __future__ import annotations

from typing import Any

__all__ = ["analyze_dataset"]


def __getattr__(name: str) -> Any:
    """Lazy exports: importing this package does not import Ray."""
    if name == "analyze_dataset":
        from .ray_analyze import analyze_dataset

        return analyze_dataset
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
