"""Training the DCRN aligner: supervised GEN, supervised LRN-m, then DDPG fine-tuning (Algorithm 1).

Phases (each resumable from its own ``last.pt``, logged to its own ``log.csv``):

1. ``gen``: GEN alone, loss = NME (Eq. 1).
2. ``lrn``: GEN frozen, LRN unrolled for ``lrn_steps`` iterations from GEN's estimate (GEN-LRN-m,
   the paper's pre-training) or from the mean shape (``use_gen=False``: the LRN-m baseline); loss =
   the mean NME after each iteration, points detached between iterations (each iteration learns to
   refine what the previous ones leave).
3. ``ddpg``: the LRN (actor) fine-tuned with DDPG against a critic Q(s, a): episodes start at GEN's
   estimate, rewards and termination per `facecascade.train.ddpg`. The critic first learns the
   pre-trained policy's values alone (``critic_warmup`` updates) so the first actor updates follow
   a meaningful gradient.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, NamedTuple, TypedDict

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm import tqdm

from ..distributed.ddp import Part, barrier, data_parallel
from ..models.dcrn import DCRN, Critic, normalize_crops
from .dcrn_data import NO_AUGMENT, Augment, FaceRegions, crop_batch, nme_loss, ocular_distance
from .ddpg import ReplayBuffer, RLConfig, reward, soft_update
from .trainer import CsvLog, _checkpoint, _resume, log_training, log_validation, optimizer_step


@dataclass(frozen=True)
class DCRNTrainConfig:
    """Training hyper-parameters (Adam, as the paper; batch 128 there, smaller here for the CPU)."""

    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-4
    gen_epochs: int = 30
    lrn_epochs: int = 15
    lrn_steps: int = 8  # m of GEN-LRN-m pre-training (the paper's ablation uses 8)
    start_noise: float = 0.03  # LRN training starts at GEN's points + N(0, s^2), s ~ U(0, this), crop units
    augment: Augment = field(default_factory=Augment)
    sources: tuple[str, ...] = ("lfw", "celeba", "aflw")  # `facecascade.train.dcrn_recipe.LANDMARK_SOURCES`
    init: str = ""  # a DCRN checkpoint (path or "dcrn") the GEN and LRN phases start from ("": new networks)
    # DDPG
    rl: RLConfig = field(default_factory=RLConfig)
    episodes: int = 300  # episode batches of `envs` faces each
    envs: int = 64
    updates_per_step: int = 1
    actor_lr: float = 1e-5
    critic_lr: float = 1e-4
    noise: float = 0.04  # Gaussian exploration, in units of the action scale (keep it
    # well below the stop threshold, or no exploring episode ends)
    q_weight: float = 0.1  # actor loss: q_weight * -Q / mean|Q| + bc_weight * NME of the ...
    bc_weight: float = 1.0  # ... action against the true correction (TD3+BC-style anchor)
    critic_warmup: int = 300  # critic-only updates before the actor moves
    buffer: int = 20_000
    eval_every: int = 25  # episodes between validation rows / checkpoints
    seed: int = 0
    threads: int = 0
    micro_batches: int = (
        0  # GEN/LRN: parts of each batch over the processes (0: one each; `facecascade.distributed.ddp`)
    )


def _cosine(optimizer, total: int):
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 0.5 * (1 + math.cos(math.pi * min(1.0, s / total))))


def batch(regions: FaceRegions, index: np.ndarray, aug: Augment, rng, device) -> tuple[Tensor, Tensor]:
    crops, points = crop_batch(regions, index, aug, rng, device)
    return normalize_crops(crops), points


@torch.no_grad()
def predict(
    model: DCRN,
    regions: FaceRegions,
    steps: int | None = None,
    use_gen: bool = True,
    batch_size: int = 256,
    device: torch.device | str = "cpu",
) -> tuple[Tensor, Tensor, Tensor]:
    """``(points, truth, iterations)`` for every face of ``regions`` without augmentation."""
    model.eval()
    out, truth, iters = [], [], []
    for start in range(0, len(regions), batch_size):
        crops, points = batch(
            regions, np.arange(start, min(start + batch_size, len(regions))), NO_AUGMENT, None, device
        )
        pred, it = model(crops, steps, use_gen)
        out.append(pred.cpu())
        truth.append(points.cpu())
        iters.append(it.cpu())
    return torch.cat(out), torch.cat(truth), torch.cat(iters)


def evaluate(
    model: DCRN,
    regions: FaceRegions,
    steps: int | None = None,
    use_gen: bool = True,
    device: torch.device | str = "cpu",
) -> dict[str, float]:
    """Mean NME (inter-ocular), failure rate at 0.1 and mean iterations on ``regions``."""
    pred, truth, iters = predict(model, regions, steps, use_gen, device=device)
    errors = nme_loss(pred, truth)
    return {
        "nme": float(errors.mean()),
        "failure": float((errors > 0.1).float().mean()),
        "iterations": float(iters.float().mean()),
    }


def perturb(points: Tensor, scale: float) -> Tensor:
    """Points moved by Gaussian noise whose standard deviation is drawn per face from U(0, scale).

    GEN is about as accurate on the training faces as on new ones, so LRN trained only on GEN's
    exact outputs sees almost nothing to correct and learns to stand still (GEN-LRN-8 then equals
    GEN: measured 4.17 % vs 4.17 % NME); starting from perturbed estimates it learns to refine."""
    if scale <= 0:
        return points
    sigma = torch.rand(len(points), 1, 1, device=points.device, dtype=points.dtype) * scale
    return points + torch.randn_like(points) * sigma


def unrolled_loss(
    model: DCRN, crops: Tensor, truth: Tensor, steps: int, use_gen: bool, start_noise: float = 0.0
) -> Tensor:
    """Mean over ``steps`` LRN iterations of the batch's mean NME (GEN frozen, points detached);
    GEN's estimate is perturbed by `perturb` (``start_noise``)."""
    with torch.no_grad():
        points = model.start(crops, use_gen)
        if use_gen:
            points = perturb(points, start_noise)
    history = crops.new_zeros(len(crops), model.cfg.history)
    losses = []
    for _ in range(steps):
        action, history = model.step(crops, points, history)
        moved = points + action
        losses.append(nme_loss(moved, truth).mean())
        points = moved.detach()
    return torch.stack(losses).mean()


def fit_supervised(
    model: DCRN,
    phase: str,
    train: FaceRegions,
    val: FaceRegions,
    cfg: DCRNTrainConfig,
    out: Path,
    use_gen: bool = True,
    device: torch.device | str = "cpu",
    quiet: bool = False,
) -> DCRN:
    """Phase ``gen`` or ``lrn`` (see the module docstring); checkpoints to ``out/last.pt``."""
    if phase not in ("gen", "lrn"):
        raise ValueError(f"phase must be gen or lrn, got {phase!r}")
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    net = model.gen if phase == "gen" else model.lrn
    epochs = cfg.gen_epochs if phase == "gen" else cfg.lrn_epochs
    steps = max(1, len(train) // cfg.batch_size)
    optimizer = torch.optim.Adam(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    scheduler = _cosine(optimizer, epochs * steps)
    start = _resume(out / "last.pt", net, optimizer, scheduler, rng)
    model.to(device)
    trained = model.gen if phase == "gen" else UnrolledLRN(model, cfg.lrn_steps, use_gen, cfg.start_noise)
    parallel = data_parallel(trained, cfg.micro_batches)
    world = parallel.world
    log, began = (
        (CsvLog(out / "log.csv", ("total", "nme", "failure", "iterations")) if world.main else None),
        time.time(),
    )

    def loss_of(module: nn.Module, part: Part) -> Loss:
        crops, truth = batch(train, part.index, cfg.augment, part.rng, device)
        return Loss(nme_loss(module(crops), truth).mean() if phase == "gen" else module(crops, truth))

    for epoch in range(start, epochs):
        model.train()
        model.gen.train(phase == "gen")  # a frozen GEN keeps its BatchNorm statistics
        order = rng.permutation(len(train))
        bar = tqdm(range(steps), desc=f"{out.name} {epoch + 1}/{epochs}", disable=quiet or not world.main, leave=False)
        for step in bar:
            index = order[step * cfg.batch_size : (step + 1) * cfg.batch_size]
            terms = optimizer_step(parallel, optimizer, scheduler, index, loss_of, cfg.seed, epoch * steps + step)
            if step % 20 == 0:
                log_training(log, parallel, terms, epoch, step, scheduler, began)
        if log is not None:
            metrics = evaluate(model, val, 0 if phase == "gen" else cfg.lrn_steps, use_gen, device)
            log_validation(log, out.name, epoch + 1, steps, began, metrics, quiet)
            _checkpoint(out / "last.pt", net, optimizer, scheduler, epoch + 1, rng)
    barrier()
    model.eval()
    return model


class Loss(NamedTuple):
    """A one-term loss, as `facecascade.distributed.ddp.DataParallel.backward` takes it."""

    total: Tensor


class UnrolledLRN(nn.Module):
    """`unrolled_loss` as a module (``forward(crops, truth) -> loss``), so that
    `DistributedDataParallel` can wrap the LRN phase (GEN inside it stays frozen)."""

    def __init__(self, model: DCRN, steps: int, use_gen: bool, start_noise: float):
        super().__init__()
        self.model, self.steps, self.use_gen, self.start_noise = model, steps, use_gen, start_noise

    def forward(self, crops: Tensor, truth: Tensor) -> Tensor:
        return unrolled_loss(self.model, crops, truth, self.steps, self.use_gen, self.start_noise)


@dataclass
class Agent:
    """DDPG's four networks and two optimisers."""

    actor: torch.nn.Module
    critic: Critic
    target_actor: torch.nn.Module
    target_critic: Critic
    actor_opt: torch.optim.Optimizer
    critic_opt: torch.optim.Optimizer

    @classmethod
    def create(cls, model: DCRN, cfg: DCRNTrainConfig, device) -> Agent:
        critic = Critic(model.cfg).to(device)
        return cls(
            model.lrn,
            critic,
            copy.deepcopy(model.lrn),
            copy.deepcopy(critic),
            torch.optim.Adam(model.lrn.parameters(), lr=cfg.actor_lr),
            torch.optim.Adam(critic.parameters(), lr=cfg.critic_lr),
        )

    def networks(self) -> dict[str, torch.nn.Module]:
        return {
            "actor": self.actor,
            "critic": self.critic,
            "target_actor": self.target_actor,
            "target_critic": self.target_critic,
        }


def ddpg_update(agent: Agent, buffer: ReplayBuffer, cfg: DCRNTrainConfig, train_actor: bool) -> tuple[float, float]:
    """One critic (and actor) step on a sampled minibatch; soft target updates. ``(critic loss,
    actor loss)``; the actor loss is NaN during the critic warm-up.

    The actor follows the critic's policy gradient (Algorithm 1), normalised by the mean |Q| and
    anchored to the supervised correction (truth - points) as in TD3+BC (Fujimoto & Gu, 2021):
    plain DDPG drove the pre-trained actor off the faces within a few dozen updates here."""
    b = buffer.sample(cfg.batch_size)
    with torch.no_grad():
        next_action, _ = agent.target_actor(b["next_patches"], b["next_history"])
        target_q = agent.target_critic(b["next_patches"], b["next_history"], next_action)
        y = b["reward"] + cfg.rl.gamma * (1 - b["done"]) * target_q
    critic_loss = F.mse_loss(agent.critic(b["patches"], b["history"], b["action"]), y)
    agent.critic_opt.zero_grad(set_to_none=True)
    critic_loss.backward()
    agent.critic_opt.step()
    actor_loss = float("nan")
    if train_actor:
        action, _ = agent.actor(b["patches"], b["history"])
        q = agent.critic(b["patches"], b["history"], action)
        anchor = (action - b["correction"]).norm(dim=2).mean(1) / b["ocular"].clamp_min(1e-3)
        loss = cfg.q_weight * -q.mean() / q.abs().mean().detach().clamp_min(1e-6) + cfg.bc_weight * anchor.mean()
        agent.actor_opt.zero_grad(set_to_none=True)
        loss.backward()
        agent.actor_opt.step()
        actor_loss = float(loss.detach())
        soft_update(agent.target_actor, agent.actor, cfg.rl.tau)
    soft_update(agent.target_critic, agent.critic, cfg.rl.tau)
    return float(critic_loss.detach()), actor_loss


def rollout(
    model: DCRN, agent: Agent, crops: Tensor, truth: Tensor, buffer: ReplayBuffer, cfg: DCRNTrainConfig, on_step
) -> dict[str, float]:
    """One batch of episodes from GEN's estimate, with exploration noise; every transition goes
    to ``buffer`` and ``on_step()`` (the DDPG updates) runs after each environment step."""
    mcfg, rl = model.cfg, replace(cfg.rl, max_iterations=model.cfg.max_iterations)
    with torch.no_grad():
        points = perturb(model.gen(crops), cfg.start_noise)
    history = crops.new_zeros(len(crops), mcfg.history)
    error = nme_loss(points, truth)
    active = torch.arange(len(crops), device=crops.device)
    total_reward, steps = torch.zeros(len(crops), device=crops.device), torch.zeros(len(crops), device=crops.device)
    for t in range(1, rl.max_iterations + 1):
        with torch.no_grad():
            patches = model.patches(crops[active], points[active])
            action, next_history = agent.actor(patches, history[active])
            action = action + torch.randn_like(action) * cfg.noise * mcfg.action_scale
            moved = points[active] + action
            new_error = nme_loss(moved, truth[active])
            r, done = reward(error[active], new_error, action, t, rl, mcfg.stop_threshold)
            buffer.add(
                patches=patches,
                history=history[active],
                action=action,
                reward=r,
                next_patches=model.patches(crops[active], moved),
                next_history=next_history,
                done=done.float(),
                correction=truth[active] - points[active],
                ocular=ocular_distance(truth[active]),
            )
        points[active], history[active], error[active] = moved, next_history, new_error
        total_reward[active] += r
        steps[active] += 1
        active = active[~done]
        on_step()
        if len(active) == 0:
            break
    return {"return": float(total_reward.mean()), "steps": float(steps.mean()), "final_nme": float(error.mean())}


class _Progress(TypedDict):
    """DDPG updates done so far and the last critic and actor losses (`fit_ddpg`)."""

    updates: int
    critic: float
    actor: float


def fit_ddpg(
    model: DCRN,
    train: FaceRegions,
    val: FaceRegions,
    cfg: DCRNTrainConfig,
    out: Path,
    device: torch.device | str = "cpu",
    quiet: bool = False,
) -> DCRN:
    """Algorithm 1 on top of a pre-trained ``model`` (GEN frozen); keeps the actor with the lowest
    validation NME among the checkpoints. Resumes the networks from ``out/last.pt`` (the replay
    buffer starts empty again).

    Not data-parallel (an update follows every environment step on one shared replay buffer;
    `facecascade.distributed.ddp` shares out supervised batches, not this loop): under
    ``torchrun`` the recipe runs it on rank 0 alone (`facecascade.train.dcrn_recipe.run_phase`)."""
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    model.to(device).eval()
    agent = Agent.create(model, cfg, device)
    start, updates = _resume_agent(out / "last.pt", agent)
    buffer = ReplayBuffer(cfg.buffer, device)
    log = CsvLog(
        out / "log.csv", ("total", "critic", "actor", "return", "steps", "final_nme", "nme", "failure", "iterations")
    )
    if not (out / "best.pt").is_file():  # the pre-trained actor is the first candidate: DDPG must beat it
        _save_best(out, model, evaluate(model, val, None, True, device)["nme"], 0)
    began, best = time.time(), _best_score(out)
    counter: _Progress = {"updates": updates, "critic": float("nan"), "actor": float("nan")}

    def on_step() -> None:
        if len(buffer) < cfg.batch_size:
            return
        for _ in range(cfg.updates_per_step):
            counter["critic"], counter["actor"] = ddpg_update(
                agent, buffer, cfg, counter["updates"] >= cfg.critic_warmup
            )
            counter["updates"] += 1

    for episode in tqdm(range(start, cfg.episodes), desc=f"{out.name} ddpg", disable=quiet, leave=False):
        crops, truth = batch(train, rng.choice(len(train), cfg.envs, replace=False), cfg.augment, rng, device)
        stats = rollout(model, agent, crops, truth, buffer, cfg, on_step)
        if (episode + 1) % 5 == 0:
            log.write(
                epoch=episode + 1,
                step=counter["updates"],
                split="train",
                critic=counter["critic"],
                actor=counter["actor"],
                seconds=round(time.time() - began, 1),
                **stats,
            )
        if (episode + 1) % cfg.eval_every == 0 or episode + 1 == cfg.episodes:
            metrics = evaluate(model, val, None, True, device)
            log_validation(log, out.name, episode + 1, counter["updates"], began, metrics, quiet)
            if metrics["nme"] < best:
                best = metrics["nme"]
                _save_best(out, model, best, episode + 1)
            _save_agent(out / "last.pt", agent, episode + 1, counter["updates"])
    if (out / "best.pt").is_file():
        model.lrn.load_state_dict(torch.load(out / "best.pt", map_location=device, weights_only=True)["lrn"])
    return model.eval()


def _save_best(out: Path, model: DCRN, nme: float, episode: int) -> None:
    """The actor with the best validation NME so far (``episode`` 0: the pre-trained one)."""
    torch.save({"lrn": model.lrn.state_dict(), "nme": nme, "episode": episode}, out / "best.pt")


def _best_score(out: Path) -> float:
    path = out / "best.pt"
    return float(torch.load(path, weights_only=True)["nme"]) if path.is_file() else float("inf")


def _save_agent(path: Path, agent: Agent, episode: int, updates: int) -> None:
    state: dict[str, Any] = {name: net.state_dict() for name, net in agent.networks().items()}
    state.update(
        actor_opt=agent.actor_opt.state_dict(),
        critic_opt=agent.critic_opt.state_dict(),
        episode=episode,
        updates=updates,
    )
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    tmp.replace(path)


def _resume_agent(path: Path, agent: Agent) -> tuple[int, int]:
    if not path.is_file():
        return 0, 0
    state = torch.load(path, map_location="cpu", weights_only=True)
    for name, net in agent.networks().items():
        net.load_state_dict(state[name])
    agent.actor_opt.load_state_dict(state["actor_opt"])
    agent.critic_opt.load_state_dict(state["critic_opt"])
    return int(state["episode"]), int(state["updates"])


def config_dict(cfg: DCRNTrainConfig) -> dict:
    return asdict(cfg)
