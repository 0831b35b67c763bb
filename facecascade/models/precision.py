"""bfloat16 arithmetic for the cascade's convolutions and fc layers on CPUs that multiply bf16
natively (AVX512-BF16 or AMX).

The weight-heavy layers of P-Net, R-Net and O-Net (every conv and fc layer inside their
``nn.Sequential`` trunks) then take bf16 inputs and weights and return float32 (oneDNN
accumulates in float32); PReLU, pooling and the small output heads stay float32. On this project's
2-core AMD EPYC (Zen 5) that made the detector 13 % faster on a VGA photo and 17 % on a crowd
(README, "Speed"), and its answers on the original weights still match the reference
(`tests/test_parity.py`). ``precision="fp32"`` reproduces the reference's arithmetic.
"""

from __future__ import annotations

import copy

import torch
from torch import Tensor, nn

PRECISIONS = ("auto", "fp32", "bf16")


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
    return bool(getattr(cpu, "_is_avx512_bf16_supported", lambda: False)()
                or getattr(cpu, "_is_amx_tile_supported", lambda: False)())


def resolve_precision(precision: str, device: torch.device) -> str:
    """``"fp32"`` or ``"bf16"`` for a `PRECISIONS` choice: ``"auto"`` is bf16 only on CPUs that
    compute it natively (elsewhere bf16 convolutions are emulated and slower than float32)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision == "auto":
        return "bf16" if native_bf16(device) else "fp32"
    return precision


def with_bf16_layers(net: nn.Module) -> nn.Module:
    """A copy of ``net`` (``net`` itself is untouched) whose convolutions and fc layers inside
    ``nn.Sequential`` containers compute in bfloat16 (`BF16Compute`)."""
    net = copy.deepcopy(net)
    for seq in [m for m in net.modules() if isinstance(m, nn.Sequential)]:
        for name, child in seq.named_children():
            if isinstance(child, (nn.Conv2d, nn.Linear)):
                setattr(seq, name, BF16Compute(child.to(torch.bfloat16)))
    return net
