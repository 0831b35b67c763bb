"""Head pose from 5 landmarks: a rigid 3D mean shape fitted under scaled orthographic projection.

The 5 points (image-left eye centre, image-right eye centre, nose tip, image-left and image-right
mouth corner) of a generic face, in inter-ocular units (x to the image's right, y down, z towards
the camera), from average facial proportions (mouth about 0.8 inter-ocular distances wide, 1.1
below the eyes; the nose tip 0.55 below the eyes and 0.5 in front of them). `fit_pose` searches
yaw and pitch on a grid and solves roll, scale and shift in closed form (a 2D similarity fit of
the projected shape), which is exact enough to sort faces into the pose buckets of the
landmark report (|yaw| under 30, 30-60, over 60 degrees) and to turn a face's points in yaw for the
aligner's pose augmentation (`rotate_yaw`).

Sign: positive yaw moves the nose tip towards the image's right.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

MEAN_SHAPE_3D = np.array(
    [[-0.5, 0.0, 0.0], [0.5, 0.0, 0.0], [0.0, 0.55, 0.5], [-0.4, 1.1, 0.1], [0.4, 1.1, 0.1]], np.float64
)
YAW_GRID = np.radians(np.arange(-90.0, 90.1, 2.0))
PITCH_GRID = np.radians(np.arange(-40.0, 40.1, 5.0))
POSE_BUCKETS = ("<30", "30-60", ">60")  # |yaw| in degrees


class Pose(NamedTuple):
    """Per face ``(N,)``: yaw and pitch in degrees; the similarity ``(N, 2, 2)`` rotation-and-scale
    and ``(N, 2)`` shift that map the rotated, projected mean shape onto the points."""

    yaw: np.ndarray
    pitch: np.ndarray
    linear: np.ndarray
    shift: np.ndarray


def rotation(yaw: np.ndarray, pitch: np.ndarray) -> np.ndarray:
    """``(..., 3, 3)`` rotation: pitch about x, then yaw about y (radians)."""
    cy, sy, cp, sp = np.cos(yaw), np.sin(yaw), np.cos(pitch), np.sin(pitch)
    one, zero = np.ones_like(yaw), np.zeros_like(yaw)
    about_y = np.stack(
        [np.stack([cy, zero, sy], -1), np.stack([zero, one, zero], -1), np.stack([-sy, zero, cy], -1)], -2
    )
    about_x = np.stack(
        [np.stack([one, zero, zero], -1), np.stack([zero, cp, -sp], -1), np.stack([zero, sp, cp], -1)], -2
    )
    return about_y @ about_x


def projected(yaw: np.ndarray, pitch: np.ndarray) -> np.ndarray:
    """``(..., 5, 2)`` the mean shape rotated and projected orthographically."""
    return (MEAN_SHAPE_3D @ np.swapaxes(rotation(yaw, pitch), -1, -2))[..., :2]


def similarity_fit(source: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Least-squares 2D similarity from ``source (..., K, 2)`` onto ``target (..., K, 2)``:
    ``(linear (..., 2, 2), shift (..., 2), squared residual (...,))``."""
    s_mean, t_mean = source.mean(-2, keepdims=True), target.mean(-2, keepdims=True)
    s, t = source - s_mean, target - t_mean
    norm = (s**2).sum((-1, -2)).clip(1e-12)
    a = (s * t).sum((-1, -2)) / norm  # scale * cos
    b = (s[..., 0] * t[..., 1] - s[..., 1] * t[..., 0]).sum(-1) / norm  # scale * sin
    linear = np.stack([np.stack([a, -b], -1), np.stack([b, a], -1)], -2)
    fitted = s @ np.swapaxes(linear, -1, -2)
    residual = ((fitted - t) ** 2).sum((-1, -2))
    shift = (t_mean - s_mean @ np.swapaxes(linear, -1, -2))[..., 0, :]
    return linear, shift, residual


def fit_pose(points: np.ndarray) -> Pose:
    """The pose of each face from its ``(N, 5, 2)`` points (image pixels, the 5-point order above)."""
    points = np.asarray(points, np.float64).reshape(-1, 5, 2)
    yaw, pitch = np.meshgrid(YAW_GRID, PITCH_GRID, indexing="ij")
    shapes = projected(yaw.ravel(), pitch.ravel())  # (G, 5, 2)
    _, _, residual = similarity_fit(shapes[None], points[:, None])  # (N, G)
    best = residual.argmin(1)
    linear, shift, _ = similarity_fit(shapes[best], points)
    return Pose(np.degrees(yaw.ravel()[best]), np.degrees(pitch.ravel()[best]), linear, shift)


def estimate_yaw(points: np.ndarray) -> np.ndarray:
    """``(N,)`` yaw in degrees of ``(N, 5, 2)`` points (`fit_pose`)."""
    return fit_pose(points).yaw


def pose_bucket(yaw: np.ndarray) -> np.ndarray:
    """``(N,)`` index into `POSE_BUCKETS` of each yaw (degrees)."""
    return np.digitize(np.abs(np.asarray(yaw)), [30.0, 60.0])


def rotate_yaw(points: np.ndarray, delta: np.ndarray, pose: Pose | None = None) -> np.ndarray:
    """``(N, 5, 2)`` points of the same faces turned by ``delta (N,)`` more degrees of yaw: the
    fitted mean shape's projection moves, and each face keeps its own offsets from that fit."""
    points = np.asarray(points, np.float64).reshape(-1, 5, 2)
    pose = fit_pose(points) if pose is None else pose
    yaw, pitch = np.radians(pose.yaw), np.radians(pose.pitch)
    turned = np.radians(np.clip(pose.yaw + delta, -89.0, 89.0))
    moved = (projected(turned, pitch) - projected(yaw, pitch)) @ np.swapaxes(pose.linear, -1, -2)
    return points + moved
