"""Small, pure tensor operations the cascades are built from: box geometry, box coding,
non-maximum suppression, the image pyramid and batched exact area resampling."""

from .boxes import box_area, box_iou, clip_boxes, crop_windows, nms, square_boxes
from .coding import apply_offsets, decode_landmarks, encode_landmarks, encode_offsets
from .pyramid import CanvasLayout, pack_levels, pyramid_scales
from .resample import IntegralImages, resize_area

__all__ = [
    "CanvasLayout",
    "IntegralImages",
    "apply_offsets",
    "box_area",
    "box_iou",
    "clip_boxes",
    "crop_windows",
    "decode_landmarks",
    "encode_landmarks",
    "encode_offsets",
    "nms",
    "pack_levels",
    "pyramid_scales",
    "resize_area",
    "square_boxes",
]
