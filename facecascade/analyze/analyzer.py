"""`FaceAnalyzer`: one call from photos to faces, landmarks and attributes.

The analyzer chains three parts, each optional:

1. a detector (`FaceDetector`: boxes, scores, 5 landmarks), or none: the whole image is one face
   (for photos that are already face crops);
2. an aligner that refines the landmarks: any object with
   ``align_arrays(images, faces) -> list[Faces]``;
3. an attribute model: any object with ``predict_arrays(images, faces) -> list[Faces]`` that
   fills ``Faces.attributes`` and ``Faces.attribute_names``.

Parts are given as built objects or by the name of shipped weights: detectors ``"mtcnn"`` (the
default), ``"mtcnn-joint"`` and ``"mtcnn-original"`` (from facenet-pytorch), the attribute model
``"mcfa"`` (the default), the DCRN aligner ``"dcrn"`` (off by default: MTCNN's own landmarks are
kept unless refined landmarks are asked for).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any, Protocol, overload, runtime_checkable

import numpy as np
from PIL import Image

from ..detect.detector import DEFAULT_WEIGHTS, FaceDetector, is_batch
from ..io import ImageInput, load_image
from ..structures import Faces


@runtime_checkable
class Aligner(Protocol):
    def align_arrays(self, images: list[np.ndarray], faces: list[Faces]) -> list[Faces]:
        """The same faces with refined landmarks, for RGB ``uint8 (H, W, 3)`` images."""


@runtime_checkable
class AttributeModel(Protocol):
    def predict_arrays(self, images: list[np.ndarray], faces: list[Faces] | None) -> list[Faces]:
        """The same faces with ``attributes (N, A)`` and ``attribute_names`` filled in; with
        ``faces=None`` each image is one face crop (`Faces.whole_image`)."""


def _face_aligner(weights: str, device: str) -> Aligner:
    from ..align import FaceAligner

    return FaceAligner(weights, device=device)


def _attribute_classifier(weights: str, device: str) -> AttributeModel:
    from ..attributes import AttributeClassifier

    return AttributeClassifier(weights, device=device)


# Per part: the names of its shipped weights (a builder makes a part from one, or from a checkpoint path).
ALIGNER_WEIGHTS: tuple[str, ...] = ("dcrn",)
ATTRIBUTE_WEIGHTS: tuple[str, ...] = ("mcfa",)


def _part(
    spec: Any, role: str, protocol: type, known: tuple[str, ...], build: Callable[[str, str], Any], device: str
) -> Any:
    """``None`` (part off), a built object that follows ``protocol``, or what ``build`` makes of
    a name in ``known`` or a checkpoint path."""
    if spec is None or spec is False or spec == "none":
        return None
    if isinstance(spec, str):
        if spec in known or spec.endswith(".pt") or os.path.isfile(spec):
            return build(spec, device)
        raise ValueError(f"unknown {role} {spec!r}; named weights available: {sorted(known) or 'none yet'}")
    if not isinstance(spec, protocol):
        raise ValueError(
            f"{role} must be None, a name, or an object with "
            f"{', '.join(m for m in vars(protocol) if not m.startswith('_'))}; got {type(spec).__name__}"
        )
    return spec


class FaceAnalyzer:
    """Faces, landmarks (refined when an aligner is set) and attributes from photos.

    Args:
        detector: named detector weights (``"mtcnn"``, the default; ``"mtcnn-joint"``;
            ``"mtcnn-original"``; a checkpoint path), a built `FaceDetector`, or ``None``: each
            image is one face crop.
        aligner: ``None`` (off, the default: the detector's landmarks), ``"dcrn"`` (refined
            landmarks, `FaceAligner`), a DCRN checkpoint path, or an object with ``align_arrays``.
        attributes: ``"mcfa"`` (the default: 40 CelebA attributes), another name or checkpoint path
            of MCFA weights, an object with ``predict_arrays``, or ``None`` (off).
        device: ``"cpu"``, ``"cuda"``, ... for the parts built from names.
        min_face_size, thresholds, fast, backend: the detector's settings (see `FaceDetector`), used
            when ``detector`` is a name.
        batch_size: images per batch through each part.

    Example:
        >>> analyzer = FaceAnalyzer()
        >>> faces = analyzer.analyze("photo.jpg")
        >>> faces.boxes, faces.landmarks, faces.crops("photo.jpg", size=112).shape
    """

    def __init__(
        self,
        detector: str | os.PathLike | FaceDetector | None = DEFAULT_WEIGHTS,
        aligner: Any = None,
        attributes: Any = "mcfa",
        device: str = "cpu",
        min_face_size: float = 20.0,
        thresholds: Sequence[float] | None = None,
        fast: bool = False,
        batch_size: int = 8,
        backend: str = "torch",
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if isinstance(detector, (str, os.PathLike)) and detector != "none":
            detector = FaceDetector(
                weights=detector,
                device=device,
                min_face_size=min_face_size,
                thresholds=thresholds,
                fast=fast,
                batch_size=batch_size,
                backend=backend,
            )
        elif detector == "none":
            detector = None
        elif detector is not None and not isinstance(detector, FaceDetector):
            raise ValueError(f"detector must be a weights name, a FaceDetector or None; got {type(detector).__name__}")
        self.detector: FaceDetector | None = detector
        self.aligner = _part(aligner, "aligner", Aligner, ALIGNER_WEIGHTS, _face_aligner, device)
        self.attributes = _part(
            attributes, "attributes", AttributeModel, ATTRIBUTE_WEIGHTS, _attribute_classifier, device
        )
        self.batch_size = batch_size

    def __repr__(self) -> str:
        parts = [
            f"detector={self.detector!r}",
            f"aligner={type(self.aligner).__name__ if self.aligner else None}",
            f"attributes={type(self.attributes).__name__ if self.attributes else None}",
        ]
        return f"FaceAnalyzer({', '.join(parts)})"

    @overload
    def analyze(self, images: list[Any] | tuple[Any, ...], bgr: bool = False) -> list[Faces]: ...
    @overload
    def analyze(self, images: str | os.PathLike[str] | Image.Image, bgr: bool = False) -> Faces: ...
    @overload
    def analyze(self, images: ImageInput, bgr: bool = False) -> Faces | list[Faces]: ...  # a list for a 4-D batch

    def analyze(self, images: ImageInput | Sequence[ImageInput], bgr: bool = False) -> Faces | list[Faces]:
        """`Faces` for one image, or a list of `Faces` for a list (or 4-D batch) of images.

        Args:
            images: a path, ``PIL.Image``, RGB ``uint8 (H, W, 3)`` array, ``(C, H, W)`` tensor, or a
                list of these (sizes may differ).
            bgr: arrays/tensors hold BGR channels (OpenCV); files and PIL images are always RGB.
        """
        if not is_batch(images):
            return self.analyze_arrays([load_image(images, bgr=bgr)])[0]
        return self.analyze_arrays([load_image(im, bgr=bgr) for im in images])

    def analyze_arrays(self, arrays: list[np.ndarray]) -> list[Faces]:
        """`analyze` for RGB ``uint8 (H, W, 3)`` arrays that are already loaded, in batches."""
        out: list[Faces] = []
        for start in range(0, len(arrays), self.batch_size):
            out.extend(self._analyze_batch(arrays[start : start + self.batch_size]))
        return out

    def _analyze_batch(self, arrays: list[np.ndarray]) -> list[Faces]:
        # faces=None: no detector, each image is one face crop (the attribute model then crops
        # the image itself, not the margin it adds around a detector's box)
        faces = None if self.detector is None else self.detector.detect_arrays(arrays)
        if self.aligner is not None:
            faces = self.aligner.align_arrays(
                arrays, faces if faces is not None else [Faces.whole_image(a) for a in arrays]
            )
        if self.attributes is not None:
            faces = self.attributes.predict_arrays(arrays, faces)
        return faces if faces is not None else [Faces.whole_image(a) for a in arrays]
