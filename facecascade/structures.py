"""`Faces`: the one result type every facecascade model returns.

Conventions (the same in every docstring of the library):

* ``boxes``: ``float32 (N, 4)``, ``x1, y1, x2, y2`` in pixels of the input image.
* ``scores``: ``float32 (N,)``, face probability of the last cascade stage.
* ``landmarks``: ``float32 (N, K, 2)``, ``(x, y)`` pixels. For K = 5 the order is
  image-left eye, image-right eye, nose, image-left mouth corner, image-right mouth corner
  (what MTCNN and RetinaFace users expect; "left" means left in the picture).
* An image without faces gives arrays of shape ``(0, 4)``, ``(0,)``, ``(0, K, 2)``; never ``None``.
"""

from __future__ import annotations

from dataclasses import dataclass
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
    """

    boxes: np.ndarray
    scores: np.ndarray
    landmarks: np.ndarray | None = None

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

    @classmethod
    def empty(cls, num_landmarks: int = 5) -> "Faces":
        """No faces: arrays of shape (0, 4), (0,), (0, num_landmarks, 2)."""
        return cls(np.zeros((0, 4), np.float32), np.zeros((0,), np.float32),
                   np.zeros((0, num_landmarks, 2), np.float32))

    def __len__(self) -> int:
        return len(self.boxes)

    def __getitem__(self, index: Any) -> "Faces":
        """Select faces with an int, slice, index array or boolean mask; always returns `Faces`."""
        if isinstance(index, (int, np.integer)):
            index = [int(index)]
        return Faces(self.boxes[index], self.scores[index], self.landmarks[index])

    def __repr__(self) -> str:
        return f"Faces(n={len(self)}, landmarks={self.landmarks.shape[1]})"

    def to_dicts(self) -> list[dict[str, Any]]:
        """JSON-ready list: ``[{"box": [x1, y1, x2, y2], "score": s, "landmarks": [[x, y], ...]}]``.

        ``"landmarks"`` is left out when the model gives none (K = 0).
        """
        out = []
        for i in range(len(self)):
            item: dict[str, Any] = {"box": [float(v) for v in self.boxes[i]],
                                    "score": float(self.scores[i])}
            if self.landmarks.shape[1]:
                item["landmarks"] = [[float(x), float(y)] for x, y in self.landmarks[i]]
            out.append(item)
        return out
