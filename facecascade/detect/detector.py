"""`FaceDetector`: the public face detection entry point."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeGuard, cast, overload

import numpy as np
import torch
from PIL import Image

from ..io import ImageInput, load_image
from ..models.weights import load_mtcnn_with_meta
from ..structures import Faces
from .backends import BACKENDS, runtime_stages
from .border import SMALL_IMAGE_SIDE, with_borders, without_border
from .devices import resolve_device
from .mtcnn import MTCNNCascade, MTCNNConfig, checkpoint_settings, fast_preset
from .two_stage import TwoStageDetector, is_rcnn_weights

TWO_STAGE_MIN_SCORE = 0.5  # faces a two-stage detector reports through FaceDetector (eval keeps all)
DEFAULT_WEIGHTS = "mtcnn"  # facecascade's own weights, shipped in the package (weights/MODEL_CARD.md)


def _check_options(backend: str, precision: str, fast: bool, two_stage: bool) -> None:
    """``ValueError`` for an unknown backend, or options the weights' kind or the backend lack."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if two_stage and fast:
        raise ValueError("fast=True is the MTCNN cascade's fast path; two-stage weights have none")
    if two_stage and backend != "torch":
        raise ValueError(f"backend {backend!r}: two-stage detectors run in PyTorch only (they do not export to ONNX)")
    if backend != "torch" and precision == "bf16":
        raise ValueError(f"precision='bf16' is the torch backend's; backend {backend!r} computes in float32")


def is_batch(images: Any) -> TypeGuard[Iterable[ImageInput]]:
    if isinstance(images, (list, tuple)):
        return True
    return getattr(images, "ndim", 0) == 4  # (N, H, W, C) array or (N, C, H, W) tensor


class FaceDetector:
    """Detect faces with 5 landmarks using an MTCNN cascade.

    Args:
        weights: a name (``"mtcnn"``, the default: facecascade's own weights, shipped in the
            package; ``"mtcnn-joint"``: the same stages fine-tuned as one network (FaceCraft);
            ``"mtcnn-original"``: Zhang et al.'s weights, read from an installed facenet-pytorch;
            ``"cascade-rcnn"`` / ``"faster-rcnn"``: the two-stage detectors, our MTCNN's boxes
            refined by R-CNN heads, whose faces score at least 0.5 and keep the 5 points MTCNN
            found (two-stage checkpoints with an RPN of their own get them from the DCRN aligner);
            the MTCNN options below do not apply to them) or the path of a facecascade checkpoint
            of either kind.
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ...
        min_face_size: smallest face side to search for, in pixels (sets the pyramid's first scale).
        thresholds: face probability a window needs to pass P-Net, R-Net and O-Net; ``None``: the
            weights' own operating point if their checkpoint records one (``meta["fast_thresholds"]``
            for ``fast=True`` when recorded, else ``meta["thresholds"]``), else (0.6, 0.7, 0.7).
        scale_factor: ratio between pyramid levels (``None``: 0.709, the paper's, or with
            ``fast=True`` 0.58, the preset's, unless the weights' fast settings name another).
        batch_size: images packed into one cascade pass by `detect` on a list.
        fast: FaceCraft's fast path (`facecascade.detect.mtcnn.FAST_PATH`: max-pool suppression
            after P-Net instead of NMS, a coarser pyramid, NMS at 0.55, with the weights' own changes
            to it, ``meta["fast_settings"]``): about 1.3-2x faster, answers differ slightly
            (docs/models/facecraft.md, "Fast path").
        precision: ``"auto"`` runs the stages of ``MTCNNConfig.bf16_stages`` (O-Net; all three on
            the fast path) in bfloat16 on CPUs with native bf16 (AVX512-BF16 / AMX) and everything
            else in float32; ``"fp32"``: float32 throughout (the reference's arithmetic);
            ``"bf16"``: those stages in bf16 on any CPU (`facecascade.models.precision`).
        backend: what runs the three networks: ``"torch"`` (the default, with the native CPU
            kernels), ``"onnxruntime"`` or ``"openvino"`` (float32, CPU; ONNX Runtime also on CUDA
            with ``onnxruntime-gpu``): the same engine on the weights exported to ONNX once and
            cached (`facecascade.detect.backends`; ``pip install "facecascade[onnx]"``, plus
            ``openvino``). MTCNN weights only; ``precision`` applies to ``"torch"``.
        small_image_side: images whose longer side is at most this many pixels (face crops,
            thumbnails) are searched inside a grey border of 20 % of that side, so that a face
            filling or overflowing the frame is found (`facecascade.detect.border`); boxes and
            landmarks may then reach past the image's edges, as the face does. 0: never.
        box_convention: two-stage weights with a box regressor per training source only (the
            shipped ``"cascade-rcnn"``): boxes drawn the way that source draws them, ``"wider"``
            (WIDER FACE, hairline to chin: the default), ``"voc"`` (face_mask) or ``"caltech"``
            (Caltech WebFaces); ``FaceDetector(...).box_conventions`` lists them.

    Example:
        >>> det = FaceDetector()                      # weights="mtcnn"; fast=True for speed
        >>> faces = det.detect("photo.jpg")
        >>> faces.boxes, faces.scores, faces.landmarks
    """

    def __init__(
        self,
        weights: str | os.PathLike = DEFAULT_WEIGHTS,
        device: str | torch.device = "cpu",
        min_face_size: float = 20.0,
        thresholds: Sequence[float] | None = None,
        scale_factor: float | None = None,
        batch_size: int = 8,
        fast: bool = False,
        precision: str = "auto",
        backend: str = "torch",
        small_image_side: int = SMALL_IMAGE_SIDE,
        box_convention: str | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if small_image_side < 0:
            raise ValueError(f"small_image_side must be >= 0, got {small_image_side}")
        self.small_image_side = int(small_image_side)
        two_stage = is_rcnn_weights(weights)
        _check_options(backend, precision, fast, two_stage)
        self.device = resolve_device(device)
        self.weights, self.fast, self.batch_size, self.backend = weights, bool(fast), batch_size, backend
        self.two_stage: TwoStageDetector | None = None
        self.cascade: MTCNNCascade | None = None
        if two_stage:  # a two-stage detector: its own pipeline; DCRN landmarks when it has its own RPN
            self.two_stage = TwoStageDetector(
                weights, device=self.device, aligner="dcrn", min_score=TWO_STAGE_MIN_SCORE, convention=box_convention
            )
            return
        if box_convention is not None:
            raise ValueError(f"{weights!r} has one box convention; box_convention is for two-stage weights")
        nets, meta = load_mtcnn_with_meta(weights)
        if thresholds is None:  # the weights' own operating point (the fast path's, for fast=True)
            thresholds = meta.get("thresholds", MTCNNConfig.thresholds)
            if fast:
                thresholds = meta.get("fast_thresholds", thresholds)
        preset = fast_preset(meta) if fast else checkpoint_settings(meta)  # with the weights' own settings
        if scale_factor is not None:
            preset["scale_factor"] = float(scale_factor)
        config = MTCNNConfig(
            min_face_size=float(min_face_size),
            thresholds=cast("tuple[float, float, float]", tuple(float(t) for t in thresholds)),  # MTCNNConfig checks
            precision=precision,
            **preset,
        )
        stages = None if backend == "torch" else runtime_stages(weights, nets, backend, self.device)
        self.cascade = MTCNNCascade(nets, config, self.device, stages)

    @property
    def box_conventions(self) -> tuple[str, ...]:
        """The box conventions ``box_convention`` can name (empty: the weights have one)."""
        return () if self.two_stage is None else self.two_stage.conventions

    @property
    def config(self) -> MTCNNConfig:
        if self.cascade is None:
            raise AttributeError(f"{self.weights!r} is a two-stage detector: it has no MTCNN config")
        return self.cascade.config

    def __repr__(self) -> str:
        if self.cascade is None:
            return f"FaceDetector(weights={self.weights!r}, device='{self.device}')  # two-stage"
        c = self.config
        return (
            f"FaceDetector(weights={self.weights!r}, device='{self.device}', min_face_size={c.min_face_size:g}, "
            f"thresholds={c.thresholds}, scale_factor={c.scale_factor:g}, fast={self.fast}, backend={self.backend!r})"
        )

    @overload
    def detect(self, images: list[Any] | tuple[Any, ...], bgr: bool = False) -> list[Faces]: ...
    @overload
    def detect(self, images: str | os.PathLike[str] | Image.Image, bgr: bool = False) -> Faces: ...
    @overload
    def detect(self, images: ImageInput, bgr: bool = False) -> Faces | list[Faces]: ...  # a list for a 4-D batch

    def detect(self, images: ImageInput | Sequence[ImageInput], bgr: bool = False) -> Faces | list[Faces]:
        """Faces in one image, or a list of `Faces` for a list (or 4-D batch) of images.

        Args:
            images: a path, ``PIL.Image``, RGB ``uint8`` ``(H, W, 3)`` array, ``(C, H, W)`` tensor,
                or a list of these (sizes may differ).
            bgr: arrays/tensors hold BGR channels (OpenCV); files and PIL images are always RGB.

        Returns:
            `Faces` with ``boxes (N, 4)`` x1, y1, x2, y2 pixels, ``scores (N,)`` and
            ``landmarks (N, 5, 2)``, sorted by descending score; zero-length arrays when none.
        """
        if not is_batch(images):
            return self.detect_arrays([load_image(images, bgr=bgr)])[0]
        return self.detect_arrays([load_image(im, bgr=bgr) for im in images])

    def detect_arrays(self, arrays: list[np.ndarray]) -> list[Faces]:
        """`detect` for RGB ``uint8 (H, W, 3)`` arrays that are already loaded, in batches."""
        run: Callable[[list[np.ndarray]], list[Faces]]
        if self.cascade is not None:
            run = self.cascade.detect
        else:
            assert self.two_stage is not None  # __init__ builds one of the two
            run = self.two_stage.detect_arrays
        bordered, widths = with_borders(arrays, self.small_image_side)
        out: list[Faces] = []
        for start in range(0, len(bordered), self.batch_size):
            out.extend(run(bordered[start : start + self.batch_size]))
        return [without_border(faces, width) for faces, width in zip(out, widths)]
