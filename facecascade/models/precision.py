"""bfloat16 arithmetic for the cascade's convolutions and fc layers on CPUs that multiply bf16
natively (AVX512-BF16 or AMX).

`with_bf16_layers` copies a network so that its weight-heavy layers (every conv and fc layer inside
its ``nn.Sequential`` trunks) take bf16 inputs and weights and return float32 (oneDNN accumulates
in float32); PReLU, pooling and the small output heads stay float32. The cascade chooses the
stages (`facecascade.detect.mtcnn.MTCNNConfig.bf16_stages`). Measured on this project's 2-core AMD
EPYC (docs/models/mtcnn.md, "How the engine works"): O-Net in bf16 runs 16-20 % faster and keeps the reference's
answers on the original weights (730 of 730 faces of `tests/test_parity.py`, landmarks 0.02 px
apart), so the standard path uses it; in P-Net or R-Net bf16 changes which windows pass (93 % of
the reference's faces matched with all three), so only the fast path runs them in bf16.
``precision="fp32"`` keeps the reference's float32 arithmetic everywhere.
"""

from __future__ import annotations

import copy
from typing import TypeVar

import torch
from torch import Tensor, nn

PRECISIONS = ("auto", "fp32", "bf16")
Net = TypeVar("Net", bound=nn.Module)


class BF16Compute(nn.Module):
    """Runs ``layer`` (already converted to bfloat16) on a bfloat16 copy of its input and returns
    the result in the input's dtype."""

    def __init__(self, layer: nn.Module) -> None:
        super().__init__()
        self.layer = layer

    def forward(self, x: Tensor) -> Tensor:
        return self.layer(x.to(torch.bfloat16)).to(x.dtype)


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` is a CPU with bf16 dot-product instructions (AVX512-BF16 or AMX)."""
    if device.type != "cpu":
        return False
    cpu = torch.cpu
    return bool(
        getattr(cpu, "_is_avx512_bf16_supported", lambda: False)()
        or getattr(cpu, "_is_amx_tile_supported", lambda: False)()
    )


def resolve_precision(precision: str, device: torch.device) -> str:
    """``"fp32"`` or ``"bf16"`` for a `PRECISIONS` choice: ``"auto"`` is bf16 only on CPUs that
    compute it natively (elsewhere bf16 convolutions are emulated and slower than float32)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision == "auto":
        return "bf16" if native_bf16(device) else "fp32"
    return precision


def with_bf16_layers(net: Net) -> Net:
    """A copy of ``net`` (``net`` itself is untouched) whose convolutions and fc layers inside
    ``nn.Sequential`` containers compute in bfloat16 (`BF16Compute`)."""
    net = copy.deepcopy(net)
    for seq in [m for m in net.modules() if isinstance(m, nn.Sequential)]:
        for name, child in seq.named_children():
            if isinstance(child, (nn.Conv2d, nn.Linear)):
                setattr(seq, name, BF16Compute(child.to(torch.bfloat16)))
    return net
