"""The reinforcement-learning pieces of DCRN training (Zhang et al., ICME 2019, §3.2, Algorithm 1).

Pure functions for the termination criterion G (Eq. 3) and the reward r (Eq. 4), a replay buffer
of batched transitions, and DDPG's soft target update (Lillicrap et al., 2015).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn


@dataclass(frozen=True)
class RLConfig:
    """Table 2 of the paper as defaults (alpha2 is per dataset there: 3.0 / 2.0 / 1.5)."""

    alpha1: float = 0.07  # G: NME below this ...
    alpha2: float = 3.0  # ... and ||a||_1 < alpha2 * K (pixels of a 256 crop; see DCRNConfig)
    beta1: float = 0.03  # r = +1 when NME shrinks by at least beta1 (relative)
    beta2: float = -0.02  # r = -1 when NME grows by at least -beta2 (relative)
    gamma: float = 0.9  # discount
    tau: float = 0.8  # soft target update
    terminal_reward: float = 10.0
    timeout_reward: float = -10.0
    max_iterations: int = 10


def terminated(nme: Tensor, action: Tensor, cfg: RLConfig, threshold: float) -> Tensor:
    """Eq. 3, ``(B,)`` bool: NME below alpha1 and the action's L1 norm below ``threshold``
    (alpha2 * K in the action's units). At test time pass ``nme = 0``."""
    return (nme < cfg.alpha1) & (action.abs().flatten(1).sum(1) < threshold)


def step_reward(previous_nme: Tensor, nme: Tensor, cfg: RLConfig) -> Tensor:
    """Eq. 4 for a state that is not terminal: +1 for a clear improvement, -1 for a clear
    deterioration, 0 otherwise."""
    better = (1 - cfg.beta1) * previous_nme >= nme
    worse = (1 - cfg.beta2) * previous_nme <= nme
    return better.float() - (worse & ~better).float()


def reward(
    previous_nme: Tensor, nme: Tensor, action: Tensor, iteration: int, cfg: RLConfig, threshold: float
) -> tuple[Tensor, Tensor]:
    """``(reward, done)`` for the state reached after ``iteration`` actions (1-based): +10 and done
    at a terminal state; otherwise Eq. 4, except -10 and done once ``max_iterations`` is reached."""
    done = terminated(nme, action, cfg, threshold)
    r = torch.where(done, torch.full_like(nme, cfg.terminal_reward), step_reward(previous_nme, nme, cfg))
    if iteration >= cfg.max_iterations:
        r = torch.where(done, r, torch.full_like(nme, cfg.timeout_reward))
        done = torch.ones_like(done)
    return r, done


class ReplayBuffer:
    """A ring buffer of transitions, each a dict of same-length tensors, stored on ``device`` in
    ``dtype`` for floats (half precision halves the memory of image patches)."""

    def __init__(self, capacity: int, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float16):
        if capacity < 1:
            raise ValueError("capacity must be >= 1")
        self.capacity, self.device, self.dtype = capacity, torch.device(device), dtype
        self.storage: dict[str, Tensor] = {}
        self.size = self.cursor = 0

    def __len__(self) -> int:
        return self.size

    def _allocate(self, batch: dict[str, Tensor]) -> None:
        for key, value in batch.items():
            dtype = self.dtype if value.is_floating_point() else value.dtype
            self.storage[key] = torch.zeros((self.capacity, *value.shape[1:]), dtype=dtype, device=self.device)

    def add(self, **batch: Tensor) -> None:
        """Append ``n`` transitions (tensors of length n); the oldest are overwritten when full."""
        lengths = {len(v) for v in batch.values()}
        if len(lengths) != 1:
            raise ValueError(f"transition fields differ in length: {sorted(lengths)}")
        if not self.storage:
            self._allocate(batch)
        if set(batch) != set(self.storage):
            raise ValueError(f"fields {sorted(batch)} differ from the buffer's {sorted(self.storage)}")
        n = lengths.pop()
        where = (self.cursor + torch.arange(n)) % self.capacity
        for key, value in batch.items():
            self.storage[key][where.to(self.device)] = value.detach().to(self.device, self.storage[key].dtype)
        self.cursor = (self.cursor + n) % self.capacity
        self.size = min(self.size + n, self.capacity)

    def sample(
        self, n: int, generator: torch.Generator | None = None, dtype: torch.dtype = torch.float32
    ) -> dict[str, Tensor]:
        """``n`` transitions drawn uniformly with replacement; floats come back as ``dtype``."""
        if self.size == 0:
            raise ValueError("cannot sample from an empty replay buffer")
        index = torch.randint(self.size, (n,), generator=generator).to(self.device)
        return {k: (v[index].to(dtype) if v.is_floating_point() else v[index]) for k, v in self.storage.items()}


@torch.no_grad()
def soft_update(target: nn.Module, source: nn.Module, tau: float) -> None:
    """``target <- tau * source + (1 - tau) * target`` for every parameter and float buffer."""
    for t, s in zip(target.state_dict().values(), source.state_dict().values()):
        if t.is_floating_point():
            t.mul_(1 - tau).add_(s, alpha=tau)
        else:
            t.copy_(s)
