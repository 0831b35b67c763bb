"""``facecascade train joint``: the joint cascade on the shared data, from trained stages.

    samples: 48x48 windows of the training images (P-Net's candidates at the mining thresholds,
             windows around faces, random windows, landmark faces), mined by the initial P-Net
    train:   `JointCascade` initialised from the stages of ``init`` (default: the shipped "mtcnn"
             weights), trained with the joint loss (`facecascade.train.joint`)
    pack:    stage thresholds chosen on the val-tune halves, as for MTCNN, into ``<out>/<name>.pt``

With ``share=False`` the same steps fine-tune the three stages separately on the same windows
and steps: the baseline of the joint-vs-separate comparison.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path

import torch

from ..distributed.ddp import main_only
from ..models.joint import JointCascade
from ..models.mtcnn import ONet, RNet
from ..models.weights import MTCNNNets, load_mtcnn_with_meta, save_mtcnn
from .joint import JointConfig, JointTask, RegressionScale, make_optimizer
from .recipe import Recipe, operating_point, stage_samples
from .samples import SampleArrays
from .trainer import fit


def initial_cascade(init: str | Path, share: bool) -> JointCascade:
    """A trainable joint cascade whose branches are the stages of ``init`` (named weights or a
    checkpoint with landmark heads on all three stages, as `facecascade train mtcnn` writes)."""
    nets, _ = load_mtcnn_with_meta(init)
    if not all(isinstance(n, torch.nn.Module) and hasattr(n, "cls") for n in nets):
        raise ValueError(f"{init}: a joint cascade starts from three plain stages, not a joint checkpoint")
    assert isinstance(nets.rnet, RNet) and isinstance(nets.onet, ONet)  # plain stages, as just checked
    return JointCascade(nets.pnet, nets.rnet, nets.onet, share=share).requires_grad_(True)


def run_joint(recipe: Recipe, cfg: JointConfig, init: str | Path = "mtcnn", quiet: bool = False) -> Path:
    """Samples, training (resuming) and packing; returns the packed checkpoint's path."""
    began = time.time()
    name = "joint" if cfg.share else "separate"
    net = initial_cascade(init, cfg.share)
    miners = MTCNNNets(net.pnet.eval(), net.rnet.eval(), net.onet.eval())
    train = stage_samples(recipe, "joint", "train", miners)
    val = stage_samples(recipe, "joint", "val", miners)
    scale = RegressionScale.fit(train) if cfg.normalize_targets else RegressionScale.identity()
    device = torch.device(recipe.device)
    torch.manual_seed(recipe.seed)
    optimizer, scheduler = make_optimizer(net.to(device), cfg)
    fit(
        net,
        train,
        val,
        cfg.train,
        recipe.out / name,
        JointTask(cfg, scale, device),
        optimizer,
        scheduler,
        device,
        quiet,
    )
    path = recipe.out / f"mtcnn-{name}.pt"
    main_only(_pack_joint, recipe, cfg, net, scale, init, began, train, val, path)
    return path


def _pack_joint(
    recipe: Recipe,
    cfg: JointConfig,
    net: JointCascade,
    scale: RegressionScale,
    init: str | Path,
    began: float,
    train: SampleArrays,
    val: SampleArrays,
    path: Path,
) -> None:
    """The trained cascade with its operating point at ``path``, and ``summary.json``."""
    name = "joint" if cfg.share else "separate"
    net = net.cpu().eval().requires_grad_(False)
    thresholds, tried = operating_point(recipe, MTCNNNets(*net.stage_nets()))
    meta = {
        "recipe": f"facecascade train joint{'' if cfg.share else ' --separate'}",
        "init": str(init),
        "data": "face_mask + caltech_webfaces (train split), celeba + mtfl landmarks (train split); research use only",
        "share": cfg.share,
        "landmarks": cfg.landmarks,
        "gates": list(cfg.gates),
        "regression_scale": scale.weight.tolist(),
        "seed": recipe.seed,
        "thresholds": list(thresholds),
        "thresholds_tried": tried,
    }
    save_mtcnn(path, net, meta)
    summary = {
        "config": _config_dict(cfg),
        "train_samples": train.counts(),
        "val_samples": val.counts(),
        "seconds": round(time.time() - began, 1),
        "thresholds": list(thresholds),
    }
    (recipe.out / name / "summary.json").write_text(json.dumps(summary, indent=1))


def _config_dict(cfg: JointConfig) -> dict:
    d = asdict(cfg)
    d["train"]["weights"] = list(cfg.train.weights)
    return d
