"""Photometric training augmentation for face crops: colour, blur, JPEG and occlusion.

Applied to ``(B, 3, S, S)`` float crops in 0..255 after the geometric warp; points do not move.
Each effect hits a random share of the batch (`Photometric`'s probabilities): the aligner meets
photos of any camera, compression and lighting, and faces behind hands, hair and glasses, while
LFW and CelebA are well-lit, mostly unoccluded celebrity photos.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor


@dataclass(frozen=True)
class Photometric:
    """Probability of each effect per crop (0: off) and its strength."""

    colour: float = 0.0  # brightness x U(1 -+ 0.3), contrast x U(1 -+ 0.3), channel gains x U(1 -+ 0.1)
    grey: float = 0.0  # to grey levels
    blur: float = 0.0  # a 3x3 or 5x5 box blur
    jpeg: float = 0.0  # re-encoded at JPEG quality 15-60
    occlusion: float = 0.0  # a rectangle of 15-40 % of the side, one flat random colour


NO_PHOTOMETRIC = Photometric()


def _colour(x: Tensor, rng: np.random.Generator) -> Tensor:
    n = len(x)
    brightness = torch.from_numpy(rng.uniform(0.7, 1.3, (n, 1, 1, 1))).to(x)
    contrast = torch.from_numpy(rng.uniform(0.7, 1.3, (n, 1, 1, 1))).to(x)
    gains = torch.from_numpy(rng.uniform(0.9, 1.1, (n, 3, 1, 1))).to(x)
    mean = x.mean((1, 2, 3), keepdim=True)
    return ((x - mean) * contrast + mean) * brightness * gains


def _grey(x: Tensor) -> Tensor:
    weights = x.new_tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
    return (x * weights).sum(1, keepdim=True).expand_as(x)


def _blur(x: Tensor, rng: np.random.Generator) -> Tensor:
    k = int(rng.choice([3, 5]))
    return F.avg_pool2d(x, k, stride=1, padding=k // 2, count_include_pad=False)


def _jpeg(x: Tensor, rng: np.random.Generator) -> Tensor:
    out = []
    for crop in x.clamp(0, 255).round().byte().permute(0, 2, 3, 1).cpu().numpy():
        buffer = io.BytesIO()
        Image.fromarray(crop).save(buffer, format="JPEG", quality=int(rng.integers(15, 61)))
        out.append(np.asarray(Image.open(buffer).convert("RGB")))
    return torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2).to(x)


def _occlude(x: Tensor, rng: np.random.Generator) -> Tensor:
    x = x.clone()
    size = x.shape[-1]
    for i in range(len(x)):
        h, w = (rng.uniform(0.15, 0.4, 2) * size).astype(int) + 1
        top, left = rng.integers(0, size - h + 1), rng.integers(0, size - w + 1)
        x[i, :, top : top + h, left : left + w] = torch.from_numpy(rng.uniform(0, 255, (3, 1, 1))).to(x)
    return x


def photometric(crops: Tensor, cfg: Photometric, rng: np.random.Generator | None) -> Tensor:
    """``crops (B, 3, S, S)`` float 0..255 with each effect of ``cfg`` on its random share of them."""
    if rng is None or cfg == NO_PHOTOMETRIC or len(crops) == 0:
        return crops
    effects = (
        (cfg.colour, lambda x: _colour(x, rng)),
        (cfg.grey, _grey),
        (cfg.blur, lambda x: _blur(x, rng)),
        (cfg.jpeg, lambda x: _jpeg(x, rng)),
        (cfg.occlusion, lambda x: _occlude(x, rng)),
    )
    out = crops
    for probability, effect in effects:
        chosen = torch.from_numpy(rng.random(len(out)) < probability).to(out.device)
        if probability > 0 and chosen.any():
            out = out.clone()
            out[chosen] = effect(out[chosen])
    return out.clamp(0, 255)
