"""`Faces`: the one result type every facecascade model returns.

Conventions (the same in every docstring of the library):

* ``boxes``: ``float32 (N, 4)``, ``x1, y1, x2, y2`` in pixels of the input image.
* ``scores``: ``float32 (N,)``, face probability of the last cascade stage.
* ``landmarks``: ``float32 (N, K, 2)``, ``(x, y)`` pixels. For K = 5 the order is
  image-left eye, image-right eye, nose, image-left mouth corner, image-right mouth corner
  (what MTCNN and RetinaFace users expect; "left" means left in the picture).
* ``attributes``: ``float32 (N, A)`` probabilities, named by ``attribute_names`` (A = 0: none).
* An image without faces gives arrays of shape ``(0, 4)``, ``(0,)``, ``(0, K, 2)``; never ``None``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

LANDMARK_NAMES_5 = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")


@dataclass(eq=False)
class Faces:
    """Faces found in one image.

    Args:
        boxes: ``(N, 4)`` x1, y1, x2, y2 in pixels.
        scores: ``(N,)`` face probabilities in [0, 1].
        landmarks: ``(N, K, 2)`` x, y in pixels; ``None`` means no landmarks (K = 0).
        attributes: ``(N, A)`` probabilities in [0, 1]; ``None`` means none (A = 0).
        attribute_names: the A attribute names, in column order.
        iterations: ``(N,)`` int, refinement iterations an aligner spent on each face's landmarks;
            ``None`` when no aligner ran.
    """

    boxes: np.ndarray
    scores: np.ndarray
    # landmarks, attributes: ``None`` (the default) becomes an empty array in `__post_init__`, never read back
    landmarks: np.ndarray = None  # type: ignore[assignment]  # None: no landmarks (K = 0)
    attributes: np.ndarray = None  # type: ignore[assignment]  # None: no attributes (A = 0)
    attribute_names: Sequence[str] = field(default=())
    iterations: np.ndarray | None = None

    def __post_init__(self) -> None:
        boxes = np.asarray(self.boxes, dtype=np.float32)
        if boxes.size == 0:
            boxes = boxes.reshape(0, 4)
        if boxes.ndim != 2 or boxes.shape[1] != 4:
            raise ValueError(f"Faces.boxes must have shape (N, 4), got {boxes.shape}")
        self.boxes = np.ascontiguousarray(boxes)
        n = len(boxes)
        self.scores = np.ascontiguousarray(np.asarray(self.scores, dtype=np.float32).reshape(-1))
        if len(self.scores) != n:
            raise ValueError(f"Faces.scores has {len(self.scores)} entries for {n} boxes")
        if self.landmarks is None:
            self.landmarks = np.zeros((n, 0, 2), np.float32)
        landmarks = np.asarray(self.landmarks, dtype=np.float32)
        if landmarks.ndim != 3 or landmarks.shape[0] != n or landmarks.shape[2] != 2:
            raise ValueError(f"Faces.landmarks must have shape ({n}, K, 2), got {landmarks.shape}")
        self.landmarks = np.ascontiguousarray(landmarks)
        self._check_attributes(n)
        if self.iterations is not None:
            self.iterations = np.asarray(self.iterations, np.int64).reshape(-1)
            if len(self.iterations) != n:
                raise ValueError(f"Faces.iterations has {len(self.iterations)} entries for {n} faces")

    def _check_attributes(self, n: int) -> None:
        self.attribute_names = tuple(str(name) for name in self.attribute_names)
        if self.attributes is None:
            self.attributes = np.zeros((n, len(self.attribute_names)), np.float32)
        attributes = np.asarray(self.attributes, dtype=np.float32)
        if attributes.ndim != 2 or attributes.shape != (n, len(self.attribute_names)):
            raise ValueError(
                f"Faces.attributes must have shape ({n}, {len(self.attribute_names)}) "
                f"(one column per name), got {attributes.shape}"
            )
        self.attributes = np.ascontiguousarray(attributes)

    @classmethod
    def empty(cls, num_landmarks: int = 5) -> Faces:
        """No faces: arrays of shape (0, 4), (0,), (0, num_landmarks, 2)."""
        return cls(
            np.zeros((0, 4), np.float32), np.zeros((0,), np.float32), np.zeros((0, num_landmarks, 2), np.float32)
        )

    @classmethod
    def whole_image(cls, image: np.ndarray) -> Faces:
        """One face covering all of ``image (H, W, ...)`` (score 1, no landmarks): a photo that
        is already a face crop."""
        h, w = image.shape[:2]
        return cls(np.array([[0, 0, w, h]], np.float32), np.ones(1, np.float32))

    def __len__(self) -> int:
        return len(self.boxes)

    def __getitem__(self, index: Any) -> Faces:
        """Select faces with an int, slice, index array or boolean mask; always returns `Faces`."""
        if isinstance(index, (int, np.integer)):
            index = [int(index)]
        return Faces(
            self.boxes[index],
            self.scores[index],
            self.landmarks[index],
            self.attributes[index],
            self.attribute_names,
            None if self.iterations is None else self.iterations[index],
        )

    def __repr__(self) -> str:
        extra = f", attributes={len(self.attribute_names)}" if self.attribute_names else ""
        return f"Faces(n={len(self)}, landmarks={self.landmarks.shape[1]}{extra})"

    def with_landmarks(self, landmarks: np.ndarray, iterations: np.ndarray | None = None) -> Faces:
        """The same faces with other ``(N, K, 2)`` landmarks (e.g. refined by an aligner, which
        also gives the ``(N,)`` iterations it spent)."""
        return Faces(self.boxes, self.scores, landmarks, self.attributes, self.attribute_names, iterations)

    def with_attributes(self, attributes: np.ndarray, names: Sequence[str]) -> Faces:
        """The same faces with ``(N, A)`` attribute probabilities named by ``names``."""
        return Faces(self.boxes, self.scores, self.landmarks, attributes, names, self.iterations)

    def crops(self, image: Any, size: int = 112, align: bool = True, margin: float = 0.0) -> np.ndarray:
        """One ``(size, size, 3)`` RGB ``uint8`` crop per face: ``(N, size, size, 3)``.

        Args:
            image: the image these faces were found in (anything `load_image` accepts).
            size: crop side in pixels.
            align: with 5 landmarks, a similarity warp that puts them where face-recognition
                models expect them (`facecascade.ops.align.ARCFACE_112`, scaled to ``size``);
                otherwise, or with ``align=False``, the box's enclosing square, grown by ``margin``.
        """
        from .io import load_image
        from .ops.align import ARCFACE_112, box_transforms, similarity_transforms, warp_crops

        if size < 1:
            raise ValueError(f"crop size must be >= 1, got {size}")
        array = load_image(image)
        if align and self.landmarks.shape[1] == 5:
            transforms = similarity_transforms(self.landmarks, ARCFACE_112 * (size / 112.0))
        else:
            transforms = box_transforms(self.boxes, size, margin)
        return warp_crops(array, transforms, size)

    def to_dicts(self) -> list[dict[str, Any]]:
        """JSON-ready list: ``[{"box": [x1, y1, x2, y2], "score": s, "landmarks": [[x, y], ...]}]``.

        ``"landmarks"`` is left out when the model gives none (K = 0), ``"iterations"`` when no
        aligner ran, ``"attributes"``
        (``{name: probability}``) when there are none.
        """
        out = []
        for i in range(len(self)):
            item: dict[str, Any] = {"box": [float(v) for v in self.boxes[i]], "score": float(self.scores[i])}
            if self.landmarks.shape[1]:
                item["landmarks"] = [[float(x), float(y)] for x, y in self.landmarks[i]]
            if self.iterations is not None:
                item["iterations"] = int(self.iterations[i])
            if self.attribute_names:
                item["attributes"] = {name: float(p) for name, p in zip(self.attribute_names, self.attributes[i])}
            out.append(item)
        return out
