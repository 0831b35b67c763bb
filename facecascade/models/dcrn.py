"""DCRN (Zhang et al., ICME 2019): a global landmark estimate refined by a learned local cascade.

* `GEN` (Global Estimation Network, Table 1): four blocks of two 3x3 convs + 2x2 max-pool with
  w, 2w, 4w, 8w channels (the paper: w = 64), fc ``hidden`` (512), fc 2K. Input: a face crop
  normalised from a box. We add BatchNorm after each conv so it trains from scratch on our small
  data, and regress offsets from a mean shape (a buffer), which starts training at a sane shape.
* `LocalRegressor` (LRN, the actor): state ``s_t = (p_t, d_t)``, the K patches around the current
  points and a history-of-actions vector; returns the shape increment ``a_t = Δx_t`` and
  ``d_{t+1}``.
* `Critic`: ``Q(s, a)`` from the same kind of state features concatenated with the action; used in
  training only.

Points are in crop units (`facecascade.ops.patches`): ``(0, 0)`` / ``(1, 1)`` are the crop's
corners. Nothing here assumes K = 5 (but the patch encoder has per-point filters, so a model is
built for one K).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import Tensor, nn

from ..ops.patches import extract_patches


@dataclass(frozen=True)
class DCRNConfig:
    """Architecture and inference settings; defaults sized for a 2-core CPU (paper values noted)."""

    num_points: int = 5  # K
    crop_size: int = 64  # S: side of the normalised face crop (paper: 256)
    crop_margin: float = 0.3  # the box's enclosing square grows by this share before cropping
    gen_width: int = 16  # channels of GEN's first block; later blocks 2w, 4w, 8w (paper: 64)
    gen_hidden: int = 256  # GEN's fc layer (paper: 512)
    patch_size: int = 16  # samples per patch side (paper: 30 pixels of a 256 crop)
    patch_extent: float = 0.25  # patch side in crop units
    lrn_width: int = 16  # patch-encoder channels per point
    history: int = 128  # d_t, the history-of-actions feature (paper: 512)
    lrn_hidden: int = 256  # LRN / critic fc width
    action_scale: float = 0.05  # raw action outputs are multiplied by this (crop units)
    max_iterations: int = 10  # the paper forces a stop after 10 iterations
    alpha2: float = 3.0  # Eq. 3 stop rule: ||a||_1 < alpha2 * K, in pixels of a ...
    reference_size: int = 256  # ... reference_size crop, as in the paper (Table 2: 3.0 on 300W)

    def __post_init__(self) -> None:
        if self.num_points < 1 or self.crop_size < 16 or self.crop_size % 16:
            raise ValueError("need num_points >= 1 and crop_size a multiple of 16 (>= 16)")
        if self.patch_size % 4:
            raise ValueError("patch_size must be a multiple of 4")

    @property
    def stop_threshold(self) -> float:
        """The Eq. 3 action threshold ``alpha2 * K`` converted to crop units (L1 over 2K values)."""
        return self.alpha2 * self.num_points / self.reference_size

    def to_dict(self) -> dict:
        return asdict(self)


def normalize_crops(crops: Tensor) -> Tensor:
    """uint8-range ``(B, 3, S, S)`` crops to the network's input range (about [-1, 1])."""
    return (crops.float() - 127.5) / 128.0


class GEN(nn.Module):
    """Global estimation: ``(B, 3, S, S)`` normalised crops -> ``(B, K, 2)`` points (crop units)."""

    mean_shape: Tensor  # buffer ``(K, 2)``, registered in __init__

    def __init__(self, cfg: DCRNConfig):
        super().__init__()
        layers: list[nn.Module] = []
        channels = 3
        for block in range(4):
            width = cfg.gen_width * 2**block
            for _ in range(2):
                layers += [
                    nn.Conv2d(channels, width, 3, padding=1, bias=False),
                    nn.BatchNorm2d(width),
                    nn.ReLU(inplace=True),
                ]
                channels = width
            layers.append(nn.MaxPool2d(2))
        self.features = nn.Sequential(*layers)
        side = cfg.crop_size // 16
        self.fc = nn.Sequential(
            nn.Flatten(),
            nn.Linear(channels * side * side, cfg.gen_hidden),
            nn.ReLU(inplace=True),
            nn.Linear(cfg.gen_hidden, 2 * cfg.num_points),
        )
        head = self.fc[-1]
        assert isinstance(head, nn.Linear)
        nn.init.zeros_(head.weight)
        nn.init.zeros_(head.bias)
        self.register_buffer("mean_shape", torch.full((cfg.num_points, 2), 0.5))

    def forward(self, crops: Tensor) -> Tensor:
        return self.mean_shape + self.fc(self.features(crops)).view(crops.shape[0], -1, 2)


class StateEncoder(nn.Module):
    """Features of a state ``(patches (B, K, 3, P, P), history (B, D))`` -> ``(B, hidden)``.

    Grouped convolutions give every point its own filters (eyes and mouth corners look different)
    in one batched call; their outputs are concatenated with the history.
    """

    def __init__(self, cfg: DCRNConfig):
        super().__init__()
        k, w = cfg.num_points, cfg.lrn_width
        self.convs = nn.Sequential(
            nn.Conv2d(3 * k, w * k, 3, padding=1, groups=k),
            nn.ReLU(inplace=True),
            nn.Conv2d(w * k, w * k, 3, padding=1, groups=k),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Conv2d(w * k, 2 * w * k, 3, padding=1, groups=k),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
        )
        side = cfg.patch_size // 4
        self.fc = nn.Sequential(nn.Linear(2 * w * k * side * side + cfg.history, cfg.lrn_hidden), nn.ReLU(inplace=True))

    def forward(self, patches: Tensor, history: Tensor) -> Tensor:
        b, k, c, p, _ = patches.shape
        local = self.convs(patches.reshape(b, k * c, p, p)).flatten(1)
        return self.fc(torch.cat([local, history], dim=1))


class LocalRegressor(nn.Module):
    """LRN, the actor ``mu(s)``: ``(patches, history) -> (action (B, K, 2) crop units, next history)``."""

    def __init__(self, cfg: DCRNConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder = StateEncoder(cfg)
        self.hidden = nn.Sequential(nn.Linear(cfg.lrn_hidden, cfg.lrn_hidden), nn.ReLU(inplace=True))
        self.action = nn.Linear(cfg.lrn_hidden, 2 * cfg.num_points)
        self.next_history = nn.Linear(cfg.lrn_hidden, cfg.history)
        nn.init.zeros_(self.action.weight)
        nn.init.zeros_(self.action.bias)

    def forward(self, patches: Tensor, history: Tensor) -> tuple[Tensor, Tensor]:
        h = self.hidden(self.encoder(patches, history))
        action = self.action(h).view(h.shape[0], -1, 2) * self.cfg.action_scale
        return action, torch.tanh(self.next_history(h))


class Critic(nn.Module):
    """``Q(s, a)``: state features concatenated with the action (scaled to about unit range)."""

    def __init__(self, cfg: DCRNConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder = StateEncoder(cfg)
        self.head = nn.Sequential(
            nn.Linear(cfg.lrn_hidden + 2 * cfg.num_points, cfg.lrn_hidden),
            nn.ReLU(inplace=True),
            nn.Linear(cfg.lrn_hidden, 1),
        )

    def forward(self, patches: Tensor, history: Tensor, action: Tensor) -> Tensor:
        a = action.flatten(1) / self.cfg.action_scale
        return self.head(torch.cat([self.encoder(patches, history), a], dim=1)).squeeze(1)


class DCRN(nn.Module):
    """GEN followed by LRN iterations; the critic is not part of it.

    ``forward(crops, steps=None)`` runs the dynamic cascade: a face stops when its last action is
    small (Eq. 3 at test time, where NME is taken as 0) or after ``max_iterations``. ``steps=m``
    runs exactly m iterations for every face (GEN-LRN-m); ``steps=0`` is GEN alone.
    ``use_gen=False`` starts from the mean shape instead (the LRN-m baseline).
    """

    def __init__(self, cfg: DCRNConfig):
        super().__init__()
        self.cfg = cfg
        self.gen = GEN(cfg)
        self.lrn = LocalRegressor(cfg)

    def patches(self, crops: Tensor, points: Tensor) -> Tensor:
        return extract_patches(crops, points, self.cfg.patch_size, self.cfg.patch_extent)

    def start(self, crops: Tensor, use_gen: bool = True) -> Tensor:
        """Initial points ``x_0 (B, K, 2)``: GEN's estimate, or the mean shape."""
        if use_gen:
            return self.gen(crops)
        return self.gen.mean_shape.expand(len(crops), -1, -1).clone()

    def step(self, crops: Tensor, points: Tensor, history: Tensor) -> tuple[Tensor, Tensor]:
        """One LRN iteration: ``(action, next history)`` at ``points``."""
        return self.lrn(self.patches(crops, points), history)

    def forward(self, crops: Tensor, steps: int | None = None, use_gen: bool = True) -> tuple[Tensor, Tensor]:
        """``(points (B, K, 2) crop units, iterations (B,) long)`` for normalised crops."""
        points = self.start(crops, use_gen)
        iterations = torch.zeros(len(crops), dtype=torch.long, device=crops.device)
        history = crops.new_zeros(len(crops), self.cfg.history)
        limit = self.cfg.max_iterations if steps is None else steps
        active = torch.arange(len(crops), device=crops.device)
        for _ in range(limit):
            if len(active) == 0:
                break
            action, history_next = self.step(crops[active], points[active], history[active])
            points = points.index_copy(0, active, points[active] + action)
            history = history.index_copy(0, active, history_next)
            iterations[active] += 1
            if steps is None:
                active = active[action.abs().flatten(1).sum(1) >= self.cfg.stop_threshold]
        return points, iterations
