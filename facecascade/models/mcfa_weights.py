"""MCFA checkpoints: ``{"state_dict", "config" (MCFAConfig fields), "meta"}``, read with
``torch.load(weights_only=True)``; the shipped ``"mcfa"`` is the registry entry of kind
``attributes`` (`facecascade.registry`; see ``facecascade/weights/MODEL_CARD_mcfa.md``).

An ensemble is one checkpoint: the first network's weights as usual, the others' state dicts in
``meta["ensemble"]`` (same `MCFAConfig`); `load_mcfa_members` builds them all."""

from __future__ import annotations

import os
from typing import Any

from .checkpoints import load_model, save_checkpoint
from .mcfa import MCFAConfig, MCFANet

KIND = "attributes"
ENSEMBLE = "ensemble"  # the meta key of the other members' state dicts


def save_mcfa(path: str | os.PathLike, net: MCFANet, meta: dict[str, Any] | None = None) -> None:
    """Write ``net``'s weights, its `MCFAConfig` and ``meta`` (attribute names, training data ...)."""
    save_checkpoint(path, net, net.cfg, meta)


def load_mcfa(weights: str | os.PathLike) -> tuple[MCFANet, dict[str, Any]]:
    """``(net in eval mode, meta)`` for a registered name of `KIND` or a checkpoint path."""
    net, meta = load_model(weights, KIND, "an MCFA", MCFANet, MCFAConfig)
    assert isinstance(net, MCFANet)
    return net, meta


def save_mcfa_ensemble(path: str | os.PathLike, nets: list[MCFANet], meta: dict[str, Any] | None = None) -> None:
    """`save_mcfa` of ``nets[0]`` with the other networks' weights in ``meta["ensemble"]``."""
    if any(n.cfg != nets[0].cfg for n in nets):
        raise ValueError("the members of an MCFA ensemble must share one MCFAConfig")
    save_mcfa(path, nets[0], {**(meta or {}), ENSEMBLE: [n.state_dict() for n in nets[1:]]})


def load_mcfa_members(weights: str | os.PathLike) -> tuple[list[MCFANet], dict[str, Any]]:
    """``(networks in eval mode, meta without the members' weights)``: one network, or every member
    of an ensemble checkpoint."""
    net, meta = load_mcfa(weights)
    members = [net]
    for state in meta.pop(ENSEMBLE, []):
        member = MCFANet(net.cfg)
        member.load_state_dict(state)
        members.append(member.eval())
    return members, meta
