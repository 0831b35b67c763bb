"""The jointly trained 12/24/48 cascade (FaceCraft, Qin et al., §4.1 and Fig. 1).

One network takes a 48x48 window and average-pools it to 24x24 and 12x12. Its three branches are
the three MTCNN stages (`facecascade.models.mtcnn`), so that the joint network starts from, and
is tested with, separately trained stages:

* **x12**: P-Net on the 12x12 view; its last conv feature (``1x1x32``; the paper's is ``1x1x16``,
  ours keeps MTCNN's P-Net) is the branch feature ``f12``;
* **x12-24**: R-Net on the 24x24 view; its fc feature (``24fc``, 128) is concatenated with ``f12``
  into ``12-24fc`` (160), which feeds the branch's heads;
* **x12-24-48**: O-Net on the 48x48 view; its fc feature (``48fc``, 256) concatenated with
  ``12-24fc`` (416 in all) feeds the final heads.

Each later branch's heads read the concatenation as ``W [h; context] = W_h h + W_c context``:
``W_h`` is the stage's own head (`_WindowNet.cls/box/landmarks`) and ``W_c`` a context layer
(`ContextHeads`) whose weights start at zero, so a joint network initialised from separately
trained stages first gives exactly their answers (the paper initialises the same way, §4.2).

At test time the cascade runs stage by stage as MTCNN does (§4.3): `JointCascade.stage_nets`
returns P-Net and two window networks that compute the context from the window they are given,
reusing the shared branch weights, and plug into `facecascade.detect.mtcnn.MTCNNCascade`.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .mtcnn import ONet, PNet, RNet, StageOutput


class ContextHeads(nn.Module):
    """The extra input columns of a branch's heads: a linear map of the context features to face
    logits (2), box offsets (4) and landmarks (2K), added to the stage's own head outputs."""

    def __init__(self, features: int, landmarks: int) -> None:
        super().__init__()
        self.num_landmarks = landmarks
        self.linear = nn.Linear(features, 6 + 2 * landmarks, bias=False)
        nn.init.zeros_(self.linear.weight)

    def forward(self, own: StageOutput, context: Tensor) -> StageOutput:
        extra = self.linear(context)
        logits = own.logits + extra[:, :2]
        offsets = own.offsets + extra[:, 2:6]
        points = own.landmarks
        if points is not None and self.num_landmarks:
            points = points + extra[:, 6:].view(-1, 2, self.num_landmarks).transpose(1, 2)
        return StageOutput(logits, offsets, points)


class JointOutputs(NamedTuple):
    """What the joint network predicts for a batch of 48x48 windows, per branch."""

    x12: StageOutput  # logits (N, 2), offsets (N, 4), landmarks (N, K, 2) or None
    x24: StageOutput
    x48: StageOutput


class JointCascade(nn.Module):
    """The three MTCNN stages as the branches of one network (see the module docstring).

    Args:
        pnet, rnet, onet: the branches (e.g. separately trained stages).
        share: ``True`` (joint): the later branches' heads also read the earlier branches'
            features; ``False``: no context layers, so the branches are three separate networks
            (the baseline for the joint-vs-separate comparison, trained by the same loop).
    """

    def __init__(self, pnet: PNet, rnet: RNet, onet: ONet, share: bool = True) -> None:
        super().__init__()
        self.pnet, self.rnet, self.onet = pnet, rnet, onet
        self.share = share
        f12 = pnet.cls.in_channels
        f24 = rnet.cls.in_features
        self.context24 = ContextHeads(f12, rnet.num_landmarks) if share else None
        self.context48 = ContextHeads(f12 + f24, onet.num_landmarks) if share else None

    # -- branch features -----------------------------------------------------------------------
    def feature12(self, x12: Tensor) -> Tensor:
        """``f12 (N, 32)``: P-Net's last conv feature of 12x12 windows."""
        return self.pnet.trunk(x12).flatten(1)

    def branch24(self, x24: Tensor, f12: Tensor | None) -> tuple[StageOutput, Tensor]:
        """x12-24 outputs and its ``12-24fc`` feature (``24fc`` alone without sharing)."""
        h24 = self.rnet.features(x24)
        out = self.rnet.heads(h24)
        if self.context24 is None:
            return out, h24
        assert f12 is not None  # sharing: the context layers read it
        return self.context24(out, f12), torch.cat([f12, h24], 1)

    def branch48(self, x48: Tensor, f1224: Tensor | None) -> StageOutput:
        """x12-24-48 outputs from the 48x48 windows and the ``12-24fc`` feature."""
        out = self.onet.heads(self.onet.features(x48))
        return out if self.context48 is None else self.context48(out, f1224)

    # -- training ------------------------------------------------------------------------------
    def forward(self, x48: Tensor) -> JointOutputs:
        """All three branches on normalised ``(N, 3, 48, 48)`` windows."""
        x24 = F.avg_pool2d(x48, 2)
        feats12 = self.pnet.trunk(F.avg_pool2d(x24, 2))  # (N, 32, 1, 1)
        p = self.pnet.heads(feats12)
        points12 = None if p.landmarks is None else p.landmarks[..., 0, 0]
        out12 = StageOutput(p.logits[:, :, 0, 0], p.offsets[:, :, 0, 0], points12)
        out24, f1224 = self.branch24(x24, feats12.flatten(1))
        return JointOutputs(out12, out24, self.branch48(x48, f1224))

    # -- testing -------------------------------------------------------------------------------
    def stage_nets(self) -> tuple[PNet, RNet | StageOf24, ONet | StageOf48]:
        """P-Net and the x24/x48 test-time stages (`StageOf24`, `StageOf48`); without sharing,
        simply the three stages."""
        if not self.share:
            return self.pnet, self.rnet, self.onet
        return self.pnet, StageOf24(self), StageOf48(self)


class _TestStage(nn.Module):
    """A later stage of a joint cascade as the inference engine runs it: windows in, outputs out."""

    window: int
    branch: str  # the stage network whose landmark head the outputs use

    def __init__(self, joint: JointCascade) -> None:
        super().__init__()
        self.joint = joint
        self.num_landmarks = getattr(joint, self.branch).num_landmarks


class StageOf24(_TestStage):
    """Test-time stage 2: 24x24 windows in, the x12-24 branch's outputs out (``f12`` computed from
    the window pooled to 12x12)."""

    window, branch = 24, "rnet"

    def forward(self, x24: Tensor) -> StageOutput:
        return self.joint.branch24(x24, self.joint.feature12(F.avg_pool2d(x24, 2)))[0]


class StageOf48(_TestStage):
    """Test-time stage 3: 48x48 windows in, the final branch's outputs out (the context computed
    from the window pooled to 24x24 and 12x12)."""

    window, branch = 48, "onet"

    def forward(self, x48: Tensor) -> StageOutput:
        joint = self.joint
        x24 = F.avg_pool2d(x48, 2)
        f12 = joint.feature12(F.avg_pool2d(x24, 2))
        return joint.branch48(x48, joint.branch24(x24, f12)[1])
