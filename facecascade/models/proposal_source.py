"""Where a two-stage detector's proposals come from when it has no RPN of its own
(`RCNNConfig.proposals == "mtcnn"`): a facecascade MTCNN detector at a fixed operating point.

The detector's heads are trained on this source's boxes (`facecascade.train.rcnn_proposals`) and
must get the same kind of boxes at inference, so the source's settings are part of the
detector's config and are stored with its weights."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ProposalSource:
    """MTCNN weights (a name or checkpoint path), their stage thresholds and smallest face side."""

    weights: str = "mtcnn"
    thresholds: tuple[float, float, float] = (0.3, 0.2, 0.02)
    min_face: float = 20.0

    def __post_init__(self) -> None:
        if len(self.thresholds) != 3 or not all(0.0 <= t <= 1.0 for t in self.thresholds):
            raise ValueError(f"thresholds must be three probabilities, got {self.thresholds}")
        if not self.min_face > 0:
            raise ValueError(f"min_face must be > 0, got {self.min_face}")

    def detector(self, device="cpu", **options):
        """The MTCNN `FaceDetector` that makes the proposals (loads its weights); ``options``: other
        `FaceDetector` arguments (``small_image_side``)."""
        from ..detect.detector import FaceDetector

        return FaceDetector(
            weights=self.weights, device=device, thresholds=self.thresholds, min_face_size=self.min_face, **options
        )
