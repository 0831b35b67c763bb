"""The MTCNN cascade written from an export's manifest and docs/export.md alone (NumPy and ONNX
Runtime, one pyramid level at a time, no facecascade code): what a user of another language would
write. `tests/test_export.py` checks that it finds the faces `FaceDetector` finds."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort


def area_resize(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """``(H, W, C)`` -> ``(height, width, C)`` float64: output cell i averages input rows
    floor(i H / n) .. ceil((i + 1) H / n) - 1 (and columns alike)."""
    table = np.zeros((image.shape[0] + 1, image.shape[1] + 1, image.shape[2]))
    table[1:, 1:] = image.astype(np.float64).cumsum(0).cumsum(1)
    r0, r1 = (np.arange(height) * image.shape[0]) // height, -((-(np.arange(height) + 1) * image.shape[0]) // height)
    c0, c1 = (np.arange(width) * image.shape[1]) // width, -((-(np.arange(width) + 1) * image.shape[1]) // width)
    total = table[r1][:, c1] - table[r0][:, c1] - table[r1][:, c0] + table[r0][:, c0]
    return total / ((r1 - r0)[:, None, None] * (c1 - c0)[None, :, None])


def nms(boxes: np.ndarray, scores: np.ndarray, threshold: float, mode: str = "iou") -> np.ndarray:
    """Greedy NMS, best first; "iou": areas (x2 - x1)(y2 - y1); "min": overlap over the smaller
    box with inclusive areas (x2 - x1 + 1)(y2 - y1 + 1)."""
    extra = 1.0 if mode == "min" else 0.0
    x1, y1, x2, y2 = boxes.T
    area = (x2 - x1 + extra) * (y2 - y1 + extra)
    order, keep = np.argsort(-scores, kind="stable"), []
    while len(order):
        i, rest = order[0], order[1:]
        keep.append(i)
        w = np.clip(np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]) + extra, 0, None)
        h = np.clip(np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]) + extra, 0, None)
        inter = w * h
        overlap = inter / np.minimum(area[i], area[rest]) if mode == "min" else inter / (area[i] + area[rest] - inter)
        order = rest[overlap <= threshold]
    return np.array(keep, dtype=np.int64)


def vote(boxes: np.ndarray, scores: np.ndarray, keep: np.ndarray, threshold: float) -> np.ndarray:
    """The manifest's box voting: each kept box, the score-weighted mean of the boxes at IoU >= threshold."""
    kept = boxes[keep]
    ix = np.clip(
        np.minimum(kept[:, None, 2], boxes[None, :, 2]) - np.maximum(kept[:, None, 0], boxes[None, :, 0]), 0, None
    )
    iy = np.clip(
        np.minimum(kept[:, None, 3], boxes[None, :, 3]) - np.maximum(kept[:, None, 1], boxes[None, :, 1]), 0, None
    )
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    inter = ix * iy
    weights = (inter / (area[keep][:, None] + area[None, :] - inter) >= threshold) * scores[None, :]
    return weights @ boxes / weights.sum(1, keepdims=True)


def calibrate(boxes: np.ndarray, offsets: np.ndarray, inclusive: bool) -> np.ndarray:
    extra = 1.0 if inclusive else 0.0
    w, h = boxes[:, 2] - boxes[:, 0] + extra, boxes[:, 3] - boxes[:, 1] + extra
    return boxes + offsets * np.stack([w, h, w, h], 1)


def square(boxes: np.ndarray) -> np.ndarray:
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    side = np.maximum(w, h)
    x1, y1 = boxes[:, 0] + w * 0.5 - side * 0.5, boxes[:, 1] + h * 0.5 - side * 0.5
    return np.stack([x1, y1, x1 + side, y1 + side], 1)


class ManifestCascade:
    """Faces ``(boxes (N, 4), scores (N,), landmarks (N, 5, 2))`` of an RGB uint8 image."""

    def __init__(self, folder: Path) -> None:
        manifest = json.loads((folder / "manifest.json").read_text())
        self.p = manifest["pipeline"]
        self.sessions = {
            s["model"]: ort.InferenceSession(str(folder / manifest["models"][s["model"]]["file"]))
            for s in self.p["stages"]
        }

    def _normalise(self, pixels: np.ndarray) -> np.ndarray:  # (..., H, W, 3) -> (..., 3, H, W) float32
        norm = self.p["normalisation"]
        return np.moveaxis((pixels - norm["mean"]) * norm["scale"], -1, -3).astype(np.float32)

    def _run(self, model: str, x: np.ndarray) -> list[np.ndarray]:
        session = self.sessions[model]
        return session.run(None, {session.get_inputs()[0].name: x})

    def _scales(self, height: int, width: int) -> list[float]:
        pyramid, scales = self.p["pyramid"], []
        scale = pyramid["cell_size"] / pyramid["min_face_size"]
        short = min(height, width) * scale
        while short >= pyramid["cell_size"]:
            scales.append(scale)
            scale *= pyramid["scale_factor"]
            short *= pyramid["scale_factor"]
        return scales

    def _level(self, image: np.ndarray, scale: float, stage: dict) -> np.ndarray:
        """P-Net boxes ``(K, 9)`` x1 y1 x2 y2 score offsets of one level, after NMS within it."""
        h, w = int(image.shape[0] * scale + 1), int(image.shape[1] * scale + 1)
        logits, offsets = self._run("pnet", self._normalise(area_resize(image, h, w))[None])[:2]
        z = logits[0] - logits[0].max(0)
        prob = np.exp(z[1]) / np.exp(z).sum(0)
        rows, cols = np.nonzero(prob >= stage["threshold"])
        x, y, scale = (
            stage["stride"] * cols.astype(np.float32),
            stage["stride"] * rows.astype(np.float32),
            np.float32(scale),
        )
        win = stage["window"]  # float32 arithmetic, as the manifest's cell_box says
        boxes = np.stack(
            [
                np.floor((x + 1) / scale),
                np.floor((y + 1) / scale),
                np.floor((x + win) / scale),
                np.floor((y + win) / scale),
            ],
            1,
        )
        found = np.concatenate([boxes, prob[rows, cols, None], offsets[0][:, rows, cols].T], 1)
        return found[nms(found[:, :4], found[:, 4], stage["nms_per_level"])] if len(found) else found

    def _crops(self, image: np.ndarray, boxes: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
        """Normalised crops of the boxes' windows and which boxes had one."""
        t = np.trunc(boxes)
        x0, y0 = np.maximum(t[:, 0] - 1, 0), np.maximum(t[:, 1] - 1, 0)
        x1, y1 = np.minimum(t[:, 2], image.shape[1]), np.minimum(t[:, 3], image.shape[0])
        ok = (x1 > x0) & (y1 > y0)
        crops = [
            area_resize(image[int(b) : int(d), int(a) : int(c)], size, size)
            for a, b, c, d in zip(x0[ok], y0[ok], x1[ok], y1[ok])
        ]
        return self._normalise(np.stack(crops)) if crops else np.zeros((0, 3, size, size), np.float32), ok

    def _score(self, logits: np.ndarray) -> np.ndarray:
        z = logits - logits.max(1, keepdims=True)
        return np.exp(z[:, 1]) / np.exp(z).sum(1)

    def __call__(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        small = self.p["small_images"]
        longer = max(image.shape[:2])
        pad = round(small["border_share"] * longer) if longer <= small["max_side"] else 0
        if pad:
            image = np.pad(image, ((pad, pad), (pad, pad), (0, 0)), constant_values=small["grey"])
        boxes, scores, points = self._detect(image)
        return boxes - pad, scores, points - pad

    def _detect(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        pnet, rnet, onet = self.p["stages"]
        empty = (np.zeros((0, 4)), np.zeros(0), np.zeros((0, 5, 2)))
        found = np.concatenate(
            [self._level(image, s, pnet) for s in self._scales(*image.shape[:2])] or [np.zeros((0, 9))]
        )
        found = found[nms(found[:, :4], found[:, 4], pnet["nms_per_image"])] if len(found) else found
        boxes = square(calibrate(found[:, :4], found[:, 5:], inclusive=False))
        for stage in (rnet, onet):
            crops, ok = self._crops(image, boxes, stage["window"])
            if not len(crops):
                return empty
            logits, offsets, *rest = self._run(stage["model"], crops)
            scores, boxes = self._score(logits), boxes[ok]
            passed = scores > stage["threshold"]
            boxes, scores, offsets = boxes[passed], scores[passed], offsets[passed]
            if stage is rnet:
                keep = nms(boxes, scores, stage["nms"])
                boxes, scores = square(calibrate(boxes[keep], offsets[keep], inclusive=True)), scores[keep]
                if stage.get("nms_refined", 0.0) > 0:  # NMS of the squared windows before O-Net
                    boxes = boxes[nms(boxes, scores, stage["nms_refined"])]
        w, h = boxes[:, 2] - boxes[:, 0] + 1, boxes[:, 3] - boxes[:, 1] + 1
        points = boxes[:, None, :2] - 1 + rest[0][passed] * np.stack([w, h], 1)[:, None]
        boxes = calibrate(boxes, offsets, inclusive=True)
        keep = nms(boxes, scores, onet["nms"], mode="min")
        voting = onet.get("box_voting", 0.0)
        return (vote(boxes, scores, keep, voting) if voting > 0 else boxes[keep]), scores[keep], points[keep]
