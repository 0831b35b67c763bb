"""`AttributeClassifier`: the 40 CelebA attributes of faces, from MCFA's final sub-network."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import torch

from ..data.celeba import CELEBA_ATTRIBUTES
from ..detect.devices import resolve_device
from ..detect.mtcnn import normalize_pixels
from ..io import ImageInput, load_image
from ..models.mcfa_weights import load_mcfa
from ..ops.align import box_transforms, warp_crops
from ..structures import Faces
from .crops import attribute_transforms


class AttributeClassifier:
    """Attribute probabilities for faces, from an MCFA network (`facecascade.models.mcfa`).

    Args:
        weights: ``"mcfa"`` (shipped in the package; see its model card) or an MCFA checkpoint path.
        device: ``"cpu"``, ``"cuda"``, ...
        batch_size: face crops per forward pass.

    Example:
        >>> clf = AttributeClassifier()
        >>> faces = clf.predict("face_crop.jpg")                       # the whole image is the face
        >>> faces = clf.predict("photo.jpg", FaceDetector().detect("photo.jpg"))
        >>> dict(zip(faces.attribute_names, faces.attributes[0]))
    """

    def __init__(
        self, weights: str | os.PathLike = "mcfa", device: str | torch.device = "cpu", batch_size: int = 64
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.device = resolve_device(device)
        net, self.meta = load_mcfa(weights)
        self.net = net.to(self.device)
        self.names = tuple(self.meta.get("attributes") or CELEBA_ATTRIBUTES[: net.cfg.num_attributes])
        self.size = net.cfg.sizes[2]
        self.batch_size = batch_size

    def __repr__(self) -> str:
        return f"AttributeClassifier(attributes={len(self.names)}, device='{self.device}')"

    def predict(self, image: ImageInput, faces: Faces | None = None, bgr: bool = False) -> Faces:
        """``faces`` with ``attributes (N, 40)`` probabilities and ``attribute_names`` filled in;
        ``faces=None``: the whole image is one face crop (its box is the image)."""
        array = load_image(image, bgr=bgr)
        return self.predict_arrays([array], [faces] if faces is not None else None)[0]

    def predict_arrays(self, images: list[np.ndarray], faces: Sequence[Faces] | None = None) -> list[Faces]:
        """`predict` for RGB ``uint8 (H, W, 3)`` arrays; ``faces`` one `Faces` per image, or ``None``."""
        if faces is None:
            faces = [Faces.whole_image(a) for a in images]
            crops = [warp_crops(a, box_transforms(f.boxes, self.size), self.size) for a, f in zip(images, faces)]
        else:
            crops = [warp_crops(a, attribute_transforms(f.boxes, self.size), self.size) for a, f in zip(images, faces)]
        probabilities = self._probabilities(np.concatenate(crops)) if crops else np.zeros((0, len(self.names)))
        out, start = [], 0
        for f in faces:
            out.append(f.with_attributes(probabilities[start : start + len(f)], self.names))
            start += len(f)
        return out

    @torch.inference_mode()
    def _probabilities(self, crops: np.ndarray) -> np.ndarray:
        """``(N, d)`` attribute probabilities of L_Net for ``(N, S, S, 3)`` uint8 crops."""
        parts = []
        for i in range(0, len(crops), self.batch_size):
            x = torch.from_numpy(crops[i : i + self.batch_size]).to(self.device).permute(0, 3, 1, 2).float()
            parts.append(torch.sigmoid(self.net(normalize_pixels(x))[-1].attributes).cpu())
        return torch.cat(parts).numpy() if parts else np.zeros((0, len(self.names)), np.float32)
