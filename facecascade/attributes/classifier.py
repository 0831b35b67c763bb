"""`AttributeClassifier`: the 40 CelebA attributes of faces, from MCFA's final sub-network."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from ..data.celeba import CELEBA_ATTRIBUTES
from ..detect.devices import resolve_device
from ..detect.fallback import DetectFirst
from ..detect.mtcnn import normalize_pixels
from ..io import ImageInput, load_image
from ..models.mcfa_weights import load_mcfa_members
from ..ops.align import box_transforms, warp_crops
from ..structures import Faces
from .crops import attribute_boxes, attribute_transforms, checked_crop_source
from .tta import flip_average, meta_thresholds, shift_to_threshold


class AttributeClassifier:
    """Attribute probabilities for faces, from an MCFA network (`facecascade.models.mcfa`).

    Args:
        weights: ``"mcfa"`` (shipped in the package; see its model card) or an MCFA checkpoint path.
        device: ``"cpu"``, ``"cuda"``, ...
        batch_size: face crops per forward pass.
        flip: average the probabilities of each crop and its mirror image; ``None``: as the
            checkpoint's meta says (``"flip"``, off when absent).
        thresholds: remap each attribute's probability so that its decision threshold, chosen on
            held-out faces and stored in the checkpoint's meta (``"thresholds"``), becomes 0.5
            (`facecascade.attributes.tta`); ``None``: when the checkpoint has them; ``False``: the
            network's own probabilities.
        detector: finds the faces of an image given without boxes (`predict`): a `FaceDetector`
            or its weights, built on first use.
        crop_from: ``"landmarks"``: each face's crop is placed by its 5 points, with the rule that
            made the training crops (`facecascade.attributes.crops.attribute_boxes`; its box when it
            has no points or they disagree with the box); ``"boxes"``: by its box.

    Example:
        >>> clf = AttributeClassifier()
        >>> faces = clf.predict("face.jpg")          # detected first; the whole image if no face is found
        >>> faces = clf.predict("photo.jpg", FaceDetector().detect("photo.jpg"))
        >>> dict(zip(faces.attribute_names, faces.attributes[0]))
    """

    def __init__(
        self,
        weights: str | os.PathLike = "mcfa",
        device: str | torch.device = "cpu",
        batch_size: int = 64,
        flip: bool | None = None,
        thresholds: bool | None = None,
        detector: Any = "mtcnn",
        crop_from: str = "landmarks",
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.device = resolve_device(device)
        members, self.meta = load_mcfa_members(weights)
        self.members = [m.to(self.device) for m in members]  # several: an ensemble, probabilities averaged
        self.net = net = self.members[0]
        self.names = tuple(self.meta.get("attributes") or CELEBA_ATTRIBUTES[: net.cfg.num_attributes])
        self.size = net.cfg.sizes[2]
        self.batch_size = batch_size
        self.crop_from = checked_crop_source(crop_from)
        self.detect_first = DetectFirst(detector, self.device)  # built on first use
        self.flip = bool(self.meta.get("flip", False)) if flip is None else flip
        self.thresholds = None if thresholds is False else meta_thresholds(self.meta, len(self.names))
        if thresholds and self.thresholds is None:
            raise ValueError(f"{weights} has no decision thresholds in its meta")

    def __repr__(self) -> str:
        return (
            f"AttributeClassifier(attributes={len(self.names)}, device='{self.device}', flip={self.flip}, "
            f"thresholds={self.thresholds is not None}, crop_from='{self.crop_from}')"
        )

    def predict(self, image: ImageInput, faces: Faces | None = None, bgr: bool = False) -> Faces:
        """``faces`` with ``attributes (N, 40)`` probabilities and ``attribute_names`` filled in.

        ``faces=None``: the faces the detector finds (best first; the crop the model was trained
        on), or, when it finds none, the whole image as one face crop, with a
        `facecascade.detect.fallback.NoFaceFoundWarning`."""
        array = load_image(image, bgr=bgr)
        if faces is None:
            detected, found = self.detect_first.faces([array])
            faces = detected[0] if found[0] else None
        return self.predict_arrays([array], [faces] if faces is not None else None)[0]

    def predict_arrays(self, images: list[np.ndarray], faces: Sequence[Faces] | None = None) -> list[Faces]:
        """`predict` for RGB ``uint8 (H, W, 3)`` arrays; ``faces`` one `Faces` per image, or
        ``None``: each image is one face crop, its centred square (no detector runs here)."""
        if faces is None:
            faces = [Faces.whole_image(a) for a in images]
            crops = [warp_crops(a, box_transforms(f.boxes, self.size), self.size) for a, f in zip(images, faces)]
        else:
            crops = [
                warp_crops(a, attribute_transforms(attribute_boxes(f, self.crop_from), self.size), self.size)
                for a, f in zip(images, faces)
            ]
        probabilities = self._probabilities(np.concatenate(crops)) if crops else np.zeros((0, len(self.names)))
        out, start = [], 0
        for f in faces:
            out.append(f.with_attributes(probabilities[start : start + len(f)], self.names))
            start += len(f)
        return out

    def _probabilities(self, crops: np.ndarray) -> np.ndarray:
        """``(N, d)`` attribute probabilities for ``(N, S, S, 3)`` uint8 crops, with the test-time
        options (flip averaging, then the decision thresholds' remap)."""
        p = flip_average(self._network_probabilities, crops) if self.flip else self._network_probabilities(crops)
        return p if self.thresholds is None else shift_to_threshold(p, self.thresholds)

    @torch.inference_mode()
    def _network_probabilities(self, crops: np.ndarray) -> np.ndarray:
        """``(N, d)`` attribute probabilities of L_Net (its sigmoid; the members' mean for an ensemble)
        for ``(N, S, S, 3)`` uint8 crops."""
        parts = []
        for i in range(0, len(crops), self.batch_size):
            x = normalize_pixels(
                torch.from_numpy(crops[i : i + self.batch_size]).to(self.device).permute(0, 3, 1, 2).float()
            )
            parts.append(torch.stack([torch.sigmoid(m(x)[-1].attributes) for m in self.members]).mean(0).cpu())
        return torch.cat(parts).numpy() if parts else np.zeros((0, len(self.names)), np.float32)
