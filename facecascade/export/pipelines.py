"""The ``pipeline`` section of an export manifest: everything besides the networks that running
them needs (pixel normalisation, crop geometry, thresholds, pyramid and NMS settings, loops),
as numbers, with the formulas as short strings. docs/export.md spells out each algorithm."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from ..attributes.crops import ATTRIBUTE_MARGIN, LANDMARK_BOX_MIN_IOU
from ..data.caltech import CALTECH_BOXES
from ..data.celeba import CELEBA_ATTRIBUTES
from ..detect.border import BORDER_GREY, BORDER_SHARE, SMALL_IMAGE_SIDE
from ..detect.mtcnn import PIXEL_MEAN, PIXEL_SCALE, MTCNNConfig, checkpoint_settings, fast_preset
from ..models.dcrn import DCRNConfig
from ..models.mcfa import MCFAConfig
from ..models.mtcnn import ONet, PNet, RNet

DOCS = "docs/export.md"
NORMALISATION = {
    "channels": "RGB",
    "layout": "NCHW float32",
    "mean": PIXEL_MEAN,
    "scale": PIXEL_SCALE,
    "formula": "(pixel - mean) * scale",
}
BOX_CROP = (
    "the square of side max(x2 - x1, y2 - y1) * (1 + margin) centred on the box, scaled onto size x size with "
    "its top-left corner at crop coordinate -0.5 (pixel (i, j) sits at x = j, y = i); bilinear, black outside "
    "the image, rounded to uint8"
)


LANDMARK_CROP_BOX = {
    "from": "the face's 5 points (left eye, right eye, nose, mouth corners) when it has them",
    "coefficients": asdict(CALTECH_BOXES),
    "rule": "e = eye midpoint, m = mouth-corner midpoint, d = |m - e|, o = |right eye - left eye|; centre = "
    "e + shift * (m - e); width = w_mouth * d + w_eyes * o; height = h_mouth * d + h_eyes * o",
    "fallback": "the face's own box when it has no points, or when the points' box has IoU < min_iou with it",
    "min_iou": LANDMARK_BOX_MIN_IOU,
}


def _three(values: Any) -> list[float]:
    return [float(v) for v in values]


def _pyramid(cfg: MTCNNConfig) -> dict[str, Any]:
    return {
        "min_face_size": cfg.min_face_size,
        "scale_factor": cfg.scale_factor,
        "cell_size": PNet.window,
        "first_scale": "cell_size / min_face_size",
        "levels": "while min(height, width) * scale >= cell_size: keep scale; scale *= scale_factor",
        "level_size": "(int(height * scale + 1), int(width * scale + 1))",
        "resize": "area (each output pixel averages the input pixels its bin overlaps)",
    }


def _stages(cfg: MTCNNConfig, thresholds: list[float], landmarks: int) -> list[dict[str, Any]]:
    """Per stage: its model, window, face-probability threshold, NMS and calibration convention."""
    pnet = {"model": "pnet", "window": PNet.window, "stride": PNet.stride, "threshold": thresholds[0]}
    pnet |= {"nms_per_level": cfg.nms_level, "nms_per_image": cfg.nms_image, "calibration": "exclusive"}
    pnet["cell_box"] = "[floor((stride * col + 1) / scale), floor((stride * row + 1) / scale), " + (
        "floor((stride * col + window) / scale), floor((stride * row + window) / scale)] in float32 arithmetic"
    )
    rnet = {"model": "rnet", "window": RNet.window, "threshold": thresholds[1]}
    rnet |= {"nms": cfg.nms_image, "nms_mode": "iou", "calibration": "inclusive", "nms_refined": cfg.nms_refined}
    onet = {"model": "onet", "window": ONet.window, "threshold": thresholds[2]}
    onet |= {"nms": cfg.nms_output, "nms_mode": "min", "calibration": "inclusive", "landmarks": landmarks}
    onet["box_voting"] = cfg.box_voting
    onet["box_voting_rule"] = (
        "0: off; > 0: each box kept by the NMS becomes the mean of the calibrated O-Net boxes of its image "
        "whose IoU with it (continuous areas) is >= box_voting, itself included, weighted by their face probability; "
        "its landmarks stay its own"
    )
    return [pnet, rnet, onet]


def mtcnn_pipeline(meta: dict[str, Any], landmarks: int) -> dict[str, Any]:
    """The cascade's settings with the weights' own operating point (``meta["thresholds"]``)."""
    cfg = MTCNNConfig(**checkpoint_settings(meta))
    thresholds = _three(meta.get("thresholds", cfg.thresholds))
    preset = fast_preset(meta)
    keys = ("scale_factor", "nms_image", "nms_refined", "suppression", "suppression_kernel")
    fast = {k: preset.get(k, getattr(cfg, k)) for k in keys}  # the preset, or the standard path's value
    return {
        "type": "mtcnn-cascade",
        "algorithm": f"{DOCS}#running-the-cascade-from-the-manifest",
        "normalisation": NORMALISATION,
        "score": "softmax(logits, axis=1)[:, 1] (face probability)",
        "pyramid": _pyramid(cfg),
        "stages": _stages(cfg, thresholds, landmarks),
        "fast_path": {"thresholds": _three(meta.get("fast_thresholds", thresholds)), **fast},
        "small_images": {
            "max_side": SMALL_IMAGE_SIDE,
            "border_share": BORDER_SHARE,
            "grey": BORDER_GREY,
            "rule": "an image whose longer side <= max_side is searched inside a border of "
            "round(border_share * longer side) pixels of value grey on every side; subtract the border "
            "from the boxes and points found",
        },
        "engine_models": "pnet_stem + pnet_features equal pnet's trunk (its 1x1 heads are pnet's last layers); "
        "facecascade's engine runs them on all pyramid levels packed on one canvas",
    }


def dcrn_pipeline(cfg: DCRNConfig, meta: dict[str, Any], mean_shape: list[list[float]]) -> dict[str, Any]:
    """The aligner's crop, its start (GEN or the mean shape) and its refinement loop."""
    steps = meta.get("steps", "dynamic")
    return {
        "type": "dcrn-alignment",
        "algorithm": f"{DOCS}#dcrn-aligner",
        "normalisation": NORMALISATION,
        "crop": {"size": cfg.crop_size, "margin": cfg.crop_margin, "geometry": BOX_CROP},
        "points": "crop units: crop pixel = u * size - 0.5; order left eye, right eye, nose, mouth corners",
        "start": "gen" if meta.get("start", "gen") == "gen" else "mean_shape",
        "mean_shape": mean_shape,
        "history_size": cfg.history,
        "steps": steps,
        "max_iterations": cfg.max_iterations,
        "stop_threshold": cfg.stop_threshold,
        "flip_average": bool(meta.get("flip", False)),  # mean of the crop's points and its mirror's, swapped back
        "loop": "history = 0; repeat (max_iterations, or steps when fixed) for the faces still active: "
        "action, history = lrn_step(crops, points, history); points += action; "
        "dynamic: a face stops once sum(|action|) < stop_threshold",
    }


def mcfa_pipeline(cfg: MCFAConfig, meta: dict[str, Any], members: int = 1) -> dict[str, Any]:
    """The attribute crop, the attribute names, how to read the outputs and the test-time options
    of the checkpoint (`facecascade.attributes.tta`)."""
    names = list(meta.get("attributes") or CELEBA_ATTRIBUTES[: cfg.num_attributes])
    return {
        "type": "mcfa-attributes",
        "algorithm": f"{DOCS}#mcfa-attributes",
        "normalisation": NORMALISATION,
        "crop": {"size": cfg.sizes[2], "margin": ATTRIBUTE_MARGIN, "geometry": BOX_CROP},
        "crop_box": LANDMARK_CROP_BOX,
        "attribute_names": names,
        "probability": "sigmoid(attributes)",
        "ensemble_members": members,  # already averaged inside mcfa.onnx
        "flip_average": bool(meta.get("flip", False)),  # mean probability of the crop and its mirror
        "thresholds": meta.get("thresholds"),  # per attribute, or null: 0.5
    }
