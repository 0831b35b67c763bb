"""`FaceAligner`: landmarks refined by DCRN from face boxes (a detector's, or given)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from ..data.landmarks import flip_permutation
from ..detect.devices import resolve_device
from ..detect.fallback import DetectFirst
from ..io import ImageInput, load_image
from ..models.dcrn import normalize_crops
from ..models.dcrn_weights import load_dcrn
from ..ops.align import box_transforms, invert_transforms, mirror_crops, transform_points, warp_crops
from ..ops.patches import from_crop_units
from ..structures import Faces


class FaceAligner:
    """Landmarks for face boxes: GEN's global estimate refined by LRN iterations that stop by
    themselves (`facecascade.models.dcrn`).

    Args:
        weights: ``"dcrn"`` (shipped; see its model card) or a DCRN checkpoint path.
        device: ``"cpu"``, ``"cuda"``, ...
        steps: ``"auto"`` (default): what the checkpoint was trained for (``"dcrn"``: dynamic);
            ``"dynamic"``: each face stops when its last step is small (Eq. 3 at test time), at
            most ``max_iterations``; an int m: exactly m LRN steps for every face (0: GEN alone).
        batch_size: faces per forward pass.
        flip: average each face's points with those of its mirrored crop (swapped back), about 2x
            the cost; ``None``: as the checkpoint's meta says (``"flip"``; off when absent). A
            face's ``iterations`` are then the larger of the two passes'.
        detector: finds the faces of an image given without boxes (`align`): a `FaceDetector`
            or its weights, built on first use.

    Example:
        >>> faces = FaceDetector().detect("photo.jpg")
        >>> faces = FaceAligner().align("photo.jpg", faces)      # or align("face.jpg"): detected first
        >>> faces.landmarks, faces.iterations          # (N, K, 2) pixels, (N,) steps used
    """

    def __init__(
        self,
        weights: str | os.PathLike = "dcrn",
        device: str | torch.device = "cpu",
        steps: int | str = "auto",
        batch_size: int = 128,
        detector: Any = "mtcnn",
        flip: bool | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.device = resolve_device(device)
        model, self.meta = load_dcrn(weights)
        self.model = model.to(self.device)
        self.cfg = model.cfg
        self.steps, self.batch_size = (
            _steps(self.meta.get("steps", "dynamic") if steps == "auto" else steps),
            batch_size,
        )
        self.use_gen = self.meta.get("start", "gen") == "gen"  # LRN-m baselines start at the mean shape
        self.detect_first = DetectFirst(detector, self.device)  # built on first use
        self.flip = bool(self.meta.get("flip", False)) if flip is None else bool(flip)
        self.mirror = flip_permutation(self.cfg.num_points) if self.flip else None  # ValueError: no pairs known

    def __repr__(self) -> str:
        mode = "dynamic" if self.steps is None else f"steps={self.steps}"
        return f"FaceAligner(points={self.cfg.num_points}, {mode}, flip={self.flip}, device='{self.device}')"

    def align(self, image: ImageInput, faces: Faces | np.ndarray | None = None, bgr: bool = False) -> Faces:
        """``faces`` (or boxes ``(N, 4)`` x1 y1 x2 y2 pixels, scored 1) with refined ``landmarks
        (N, K, 2)`` in image pixels and ``iterations (N,)``.

        ``faces=None``: the faces the detector finds (best first), or, when it finds none, the
        whole image as one face, with a `facecascade.detect.fallback.NoFaceFoundWarning`."""
        array = load_image(image, bgr=bgr)
        if faces is None:
            faces = self.detect_first.faces([array])[0][0]
        elif not isinstance(faces, Faces):
            boxes = np.asarray(faces, np.float32).reshape(-1, 4)
            faces = Faces(boxes, np.ones(len(boxes), np.float32))
        return self.align_arrays([array], [faces])[0]

    def align_arrays(self, images: list[np.ndarray], faces: Sequence[Faces]) -> list[Faces]:
        """`align` for RGB ``uint8 (H, W, 3)`` arrays, one `Faces` per image."""
        size = self.cfg.crop_size
        transforms = [box_transforms(f.boxes, size, self.cfg.crop_margin) for f in faces]
        crops = [warp_crops(a, t, size) for a, t in zip(images, transforms)]
        points, iterations = (
            self._points(np.concatenate(crops)) if crops else (np.zeros((0, self.cfg.num_points, 2)), np.zeros(0))
        )
        out, start = [], 0
        for f, t in zip(faces, transforms):
            n = len(f)
            image_px = transform_points(invert_transforms(t), from_crop_units(points[start : start + n], size))
            out.append(f.with_landmarks(image_px.astype(np.float32), iterations[start : start + n]))
            start += n
        return out

    def _points(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``((N, K, 2) crop units, (N,) iterations)`` for ``(N, S, S, 3)`` uint8 crops, averaged
        with the mirrored crops' (swapped back) when ``flip``."""
        points, iterations = self._network_points(crops)
        if self.mirror is None:
            return points, iterations
        mirrored, steps = self._network_points(mirror_crops(crops))
        mirrored = mirrored[:, self.mirror]
        mirrored[..., 0] = 1.0 - mirrored[..., 0]  # crop units: x -> 1 - x mirrors the crop
        return (points + mirrored) / 2, np.maximum(iterations, steps)

    @torch.inference_mode()
    def _network_points(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        points, iterations = [], []
        for i in range(0, len(crops), self.batch_size):
            x = torch.from_numpy(crops[i : i + self.batch_size]).to(self.device).permute(0, 3, 1, 2)
            p, it = self.model(normalize_crops(x), self.steps, self.use_gen)
            points.append(p.cpu().numpy())
            iterations.append(it.cpu().numpy())
        if not points:
            return np.zeros((0, self.cfg.num_points, 2), np.float32), np.zeros(0, np.int64)
        return np.concatenate(points), np.concatenate(iterations)


def _steps(steps: int | str) -> int | None:
    """``None`` for dynamic iterations, else a fixed count >= 0."""
    if steps == "dynamic":
        return None
    if isinstance(steps, str) and steps.isdigit():
        steps = int(steps)
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 0:
        raise ValueError(f"steps must be 'auto', 'dynamic' or an int >= 0, got {steps!r}")
    return steps
