"""The networks as ONNX graphs: small ``nn.Module`` wrappers with named tensor inputs and outputs.

Each `Graph` names its inputs (with symbolic axes such as ``"batch"``) and outputs. Its module is an
*export copy* of the network (`export_copy`): the engine's CPU-specific layers (the strided-maxima
`CeilMaxPool2d`, the in-place `PReLU`) become the standard layers they equal, which every ONNX
runtime has (``MaxPool`` with ``ceil_mode=1``, ``PRelu``).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ..models.dcrn import DCRN
from ..models.layers import CeilMaxPool2d, Net
from ..models.mcfa import MCFANet
from ..models.mtcnn import ONet, PNet, RNet, StageOutput

Shape = tuple[int | str, ...]  # an int per fixed axis, a name of `AXES` per dynamic one
# Dynamic axes: (size of the example inputs, smallest size). Batch 2 because torch.export specialises
# sizes 0 and 1; odd spatial sizes exercise ceil-mode pooling; P-Net needs a 12 x 12 window.
AXES = {"batch": (2, 1), "height": (37, 12), "width": (45, 12), "stem_height": (35, 10), "stem_width": (43, 10)}


@dataclass(frozen=True)
class Graph:
    """One ONNX file to write: ``module(*inputs)`` returns the outputs, in ``outputs`` order."""

    name: str  # file stem and manifest key
    module: nn.Module
    inputs: dict[str, Shape]  # input name -> shape
    outputs: tuple[str, ...]
    role: str  # what the graph computes, for the manifest


def _plain(layer: nn.Module) -> nn.Module | None:
    """The standard layer equal to one of ours, or ``None`` for a layer that stays."""
    if isinstance(layer, CeilMaxPool2d):
        return nn.MaxPool2d(layer.kernel, layer.stride, ceil_mode=True)
    if isinstance(layer, nn.PReLU) and type(layer) is not nn.PReLU:
        plain = nn.PReLU(layer.num_parameters)
        plain.weight = layer.weight
        return plain
    return None


def export_copy(net: Net) -> Net:
    """A copy of ``net`` in evaluation mode with every `CeilMaxPool2d` and `PReLU` replaced by
    ``nn.MaxPool2d(ceil_mode=True)`` / ``nn.PReLU`` (same results; see the module docstring)."""
    net = copy.deepcopy(net).eval().requires_grad_(False)
    for parent in list(net.modules()):
        for name, child in list(parent.named_children()):
            plain = _plain(child)
            if plain is not None:
                setattr(parent, name, plain)
    return net


def _outputs(out: StageOutput) -> tuple[Tensor, ...]:
    return tuple(t for t in out if t is not None)


def _stage_outputs(net: nn.Module) -> tuple[str, ...]:
    return ("logits", "offsets", "landmarks") if getattr(net, "num_landmarks", 0) else ("logits", "offsets")


class _StageGraph(nn.Module):
    """A cascade stage (`PNet`, `RNet`, `ONet` or a joint cascade's test-time stage) with its
    `StageOutput` as a tuple of tensors."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = export_copy(net)

    def forward(self, x: Tensor) -> tuple[Tensor, ...]:
        return _outputs(self.net(x))


def mtcnn_graphs(nets: tuple[nn.Module, nn.Module, nn.Module]) -> list[Graph]:
    """P-Net (fully convolutional), R-Net and O-Net, and P-Net cut in two after its first PReLU
    (``pnet_stem``, ``pnet_features``: what facecascade's own engine runs on its packed canvas)."""
    pnet, rnet, onet = nets
    assert isinstance(pnet, PNet)  # every cascade's stage 1
    image: Shape = ("batch", 3, "height", "width")
    return [
        Graph("pnet", _StageGraph(pnet), {"image": image}, _stage_outputs(pnet), "stage 1 on a whole pyramid level"),
        Graph(
            "rnet",
            _StageGraph(rnet),
            {"crops": ("batch", 3, RNet.window, RNet.window)},
            _stage_outputs(rnet),
            "stage 2",
        ),
        Graph(
            "onet",
            _StageGraph(onet),
            {"crops": ("batch", 3, ONet.window, ONet.window)},
            _stage_outputs(onet),
            "stage 3",
        ),
        Graph("pnet_stem", export_copy(pnet.stem), {"image": image}, ("stem",), "P-Net conv1 + PReLU (engine)"),
        Graph(
            "pnet_features",
            export_copy(pnet.body),
            {"stem": ("batch", 10, "stem_height", "stem_width")},
            ("features",),
            "P-Net pool + conv2 + conv3 to its 32 features (engine)",
        ),
    ]


class _LRNStep(nn.Module):
    """One DCRN local refinement step: patches around the points, then the LRN actor."""

    def __init__(self, dcrn: DCRN) -> None:
        super().__init__()
        self.dcrn = copy.deepcopy(dcrn).eval().requires_grad_(False)

    def forward(self, crops: Tensor, points: Tensor, history: Tensor) -> tuple[Tensor, Tensor]:
        return self.dcrn.step(crops, points, history)


def dcrn_graphs(dcrn: DCRN) -> list[Graph]:
    """GEN (crops -> points) and one LRN step (crops, points, history -> action, next history)."""
    cfg = dcrn.cfg
    crops: Shape = ("batch", 3, cfg.crop_size, cfg.crop_size)
    step_inputs = {"crops": crops, "points": ("batch", cfg.num_points, 2), "history": ("batch", cfg.history)}
    return [
        Graph("gen", copy.deepcopy(dcrn.gen).eval(), {"crops": crops}, ("points",), "global estimate"),
        Graph("lrn_step", _LRNStep(dcrn), step_inputs, ("action", "next_history"), "one local refinement step"),
    ]


class _MCFAFinal(nn.Module):
    """MCFA's three sub-networks with the final (L_Net) outputs; the dynamic loss weights, a
    training device, are left out. An ensemble's ``attributes`` are the logits of its members' mean
    probabilities (its other outputs are the first member's)."""

    def __init__(self, nets: list[MCFANet]) -> None:
        super().__init__()
        self.nets = nn.ModuleList(copy.deepcopy(n).eval().requires_grad_(False) for n in nets)

    def forward(self, crops: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        finals = [net(crops)[-1] for net in self.nets]
        attributes = finals[0].attributes
        if len(finals) > 1:
            mean = torch.stack([torch.sigmoid(f.attributes) for f in finals]).mean(0).clamp(1e-7, 1 - 1e-7)
            attributes = torch.log(mean) - torch.log1p(-mean)
        return finals[0].logits, finals[0].box, finals[0].landmarks, attributes


def mcfa_graphs(nets: list[MCFANet]) -> list[Graph]:
    """The attribute network (or ensemble) on ``(batch, 3, L, L)`` crops, L_Net's outputs."""
    side = nets[0].cfg.sizes[2]
    outputs = ("logits", "box", "landmarks", "attributes")
    return [Graph("mcfa", _MCFAFinal(nets), {"crops": ("batch", 3, side, side)}, outputs, "attributes (L_Net)")]


def example_inputs(graph: Graph) -> tuple[Tensor, ...]:
    """Random inputs of ``graph``'s shapes, dynamic axes at their example sizes (`AXES`)."""
    generator = torch.Generator().manual_seed(0)
    return tuple(
        torch.randn(*(AXES[d][0] if isinstance(d, str) else d for d in shape), generator=generator)
        for shape in graph.inputs.values()
    )
