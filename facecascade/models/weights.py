"""Named weights for the MTCNN cascade, and our checkpoint format.

``load_mtcnn("mtcnn-original")`` reads Zhang et al.'s original weights (MIT licence) from an
installed ``facenet-pytorch`` package, which carries them converted to PyTorch
(``facenet_pytorch/data/{pnet,rnet,onet}.pt``); they are never copied into this repository.
``load_mtcnn(path)`` reads a checkpoint written by `save_mtcnn` (``{"pnet": state_dict, "rnet":
..., "onet": ..., "meta": {...}}``). Every file is read with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import Tensor

from ..registry import is_registered, list_weights, resolve_weights, weights_info
from .joint import JointCascade, StageOf24, StageOf48
from .mtcnn import ONet, PNet, RNet

# facenet-pytorch parameter names -> ours, per network.
_FACENET_KEYS = {
    "pnet": {
        "conv1": "stem.0",
        "prelu1": "stem.1",
        "conv2": "body.1",
        "prelu2": "body.2",
        "conv3": "body.3",
        "prelu3": "body.4",
        "conv4_1": "cls",
        "conv4_2": "box",
    },
    "rnet": {
        "conv1": "trunk.0",
        "prelu1": "trunk.1",
        "conv2": "trunk.3",
        "prelu2": "trunk.4",
        "conv3": "trunk.6",
        "prelu3": "trunk.7",
        "dense4": "fc.0",
        "prelu4": "fc.1",
        "dense5_1": "cls",
        "dense5_2": "box",
    },
    "onet": {
        "conv1": "trunk.0",
        "prelu1": "trunk.1",
        "conv2": "trunk.3",
        "prelu2": "trunk.4",
        "conv3": "trunk.6",
        "prelu3": "trunk.7",
        "conv4": "trunk.9",
        "prelu4": "trunk.10",
        "dense5": "fc.0",
        "prelu5": "fc.1",
        "dense6_1": "cls",
        "dense6_2": "box",
        "dense6_3": "landmarks",
    },
}
# The first fc layer of the converted Caffe nets reads features flattened as (W, H, C);
# ours flattens PyTorch's (C, H, W). Both R-Net and O-Net flatten a 3x3 map.
_TRANSPOSED_FC = {"rnet": ("dense4", 3), "onet": ("dense5", 3)}

# The detector names of the registry (`facecascade.registry`) and what each is.
NAMED_WEIGHTS = {name: weights_info(name).description for name in list_weights("detector")}


class MTCNNNets(NamedTuple):
    """The three stages of a cascade, in evaluation mode (for a joint cascade, the later two are
    its test-time stages, `facecascade.models.joint.StageOf24` / `StageOf48`)."""

    pnet: PNet
    rnet: RNet | StageOf24
    onet: ONet | StageOf48


def _unflip_fc(weight: Tensor, side: int) -> Tensor:
    out_features, flat = weight.shape
    channels = flat // (side * side)
    return weight.reshape(out_features, side, side, channels).permute(0, 3, 2, 1).reshape(out_features, flat)


def convert_facenet_state(net: str, state: dict[str, Tensor]) -> dict[str, Tensor]:
    """Rename a facenet-pytorch ``state_dict`` of ``net`` (pnet/rnet/onet) to our layout."""
    mapping = _FACENET_KEYS[net]
    out = {}
    for key, value in state.items():
        layer, param = key.rsplit(".", 1)
        if layer not in mapping:
            raise ValueError(f"unexpected parameter {key!r} in facenet-pytorch {net} weights")
        if net in _TRANSPOSED_FC and layer == _TRANSPOSED_FC[net][0] and param == "weight":
            value = _unflip_fc(value, _TRANSPOSED_FC[net][1])
        out[f"{mapping[layer]}.{param}"] = value
    return out


def landmark_points(state: dict[str, Tensor]) -> int:
    """Points of the landmark head in ``state`` (0 without one)."""
    bias = state.get("landmarks.bias")
    return 0 if bias is None else bias.numel() // 2


def _build(states: dict[str, dict[str, Tensor]], source: str) -> MTCNNNets:
    def points(name: str) -> int:
        return landmark_points(states.get(name, {}))

    nets = MTCNNNets(PNet(landmarks=points("pnet")), RNet(landmarks=points("rnet")), ONet(landmarks=points("onet")))
    for name, net in zip(MTCNNNets._fields, nets):
        try:
            net.load_state_dict(states[name])
        except (RuntimeError, TypeError, AttributeError) as exc:
            raise ValueError(f"{source}: the {name} weights do not fit {type(net).__name__}: {exc}") from exc
        net.eval().requires_grad_(False)
    return nets


def _load_original(files: list[Path]) -> MTCNNNets:
    """The facenet-pytorch files ``files`` (pnet, rnet, onet: `weights_files`) in our layout."""
    states = {}
    for net, path in zip(MTCNNNets._fields, files):
        raw = torch.load(path, map_location="cpu", weights_only=True)
        states[net] = convert_facenet_state(net, raw)
    return _build(states, "weights 'mtcnn-original'")


def _load_checkpoint(path: Path) -> tuple[MTCNNNets, dict[str, Any]]:
    """The cascade in the existing file ``path`` (`weights_files` has found it) and its ``meta``."""
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # unpickling errors have no common base class
        raise ValueError(f"cannot read '{path}' as a weights-only torch checkpoint: {exc}") from exc
    if not isinstance(checkpoint, dict) or not set(MTCNNNets._fields) <= checkpoint.keys():
        raise ValueError(f"'{path}' is not a facecascade MTCNN checkpoint (needs pnet, rnet, onet)")
    nets = _build(checkpoint, f"'{path}'")
    if "context24" in checkpoint:
        nets = MTCNNNets(*_joint(nets, checkpoint, f"'{path}'").stage_nets())
    return nets, dict(checkpoint.get("meta") or {})


def _joint(nets: MTCNNNets, checkpoint: dict[str, Any], source: str) -> JointCascade:
    assert isinstance(nets.rnet, RNet) and isinstance(nets.onet, ONet)  # `_build`'s plain stages
    joint = JointCascade(nets.pnet, nets.rnet, nets.onet, share=True)
    assert joint.context24 is not None and joint.context48 is not None  # share=True makes them
    try:
        joint.context24.load_state_dict(checkpoint["context24"])
        joint.context48.load_state_dict(checkpoint["context48"])
    except (RuntimeError, KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"{source}: the joint context weights do not fit: {exc}") from exc
    return joint.eval().requires_grad_(False)


def weights_files(weights: str | os.PathLike) -> list[Path]:
    """The file(s) behind a detector name (checked against the registry's SHA-256) or a checkpoint
    path: `facecascade.registry.resolve_weights`, whose errors say what is wrong."""
    return resolve_weights(weights, "detector")


def weights_fingerprint(weights: str | os.PathLike) -> str:
    """SHA-256 (hex) of the bytes of `weights_files`: the same for the same weights under any
    name or path, different when a file is replaced."""
    digest = hashlib.sha256()
    for path in weights_files(weights):
        digest.update(path.read_bytes())
    return digest.hexdigest()


def load_mtcnn_with_meta(weights: str | os.PathLike) -> tuple[MTCNNNets, dict[str, Any]]:
    """`load_mtcnn` and the checkpoint's ``meta`` dict (``{}`` for the original weights); a
    checkpoint may recommend its own operating point there as ``meta["thresholds"]``. A registered
    name's files are checked against their SHA-256 first (`facecascade.registry.resolve_weights`)."""
    files = weights_files(weights)
    if is_registered(weights) and weights_info(str(weights)).source == "facenet-pytorch":
        return _load_original(files), {}
    return _load_checkpoint(files[0])


def load_mtcnn(weights: str | os.PathLike) -> MTCNNNets:
    """Load a cascade by name (see `NAMED_WEIGHTS`, `facecascade.list_weights("detector")`) or from a
    checkpoint path (`save_mtcnn`)."""
    return load_mtcnn_with_meta(weights)[0]


def save_mtcnn(path: str | os.PathLike, nets: MTCNNNets | JointCascade, meta: dict[str, Any] | None = None) -> None:
    """Write ``nets`` (three stages, or a joint cascade) as one checkpoint that `load_mtcnn` reads
    back; a joint cascade with shared features adds its context layers."""
    stages = (nets.pnet, nets.rnet, nets.onet)
    checkpoint: dict[str, Any] = {name: net.state_dict() for name, net in zip(MTCNNNets._fields, stages)}
    if isinstance(nets, JointCascade) and nets.context24 is not None and nets.context48 is not None:  # shared
        checkpoint["context24"] = nets.context24.state_dict()
        checkpoint["context48"] = nets.context48.state_dict()
    checkpoint["meta"] = dict(meta or {})
    torch.save(checkpoint, path)
