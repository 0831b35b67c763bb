"""Writes WIDER FACE's official MATLAB files for tests, in the official layout (scipy.io.savemat):
``event_list`` (E, 1) cell of strings; ``file_list`` (E, 1) cell, each an (N, 1) cell of strings;
``face_bbx_list`` (E, 1) cell, each an (N, 1) cell of (F, 4) ``x y w h`` double arrays;
``invalid_label_list`` the same with (F, 1) flags; a setting's ``gt_list`` the same with (K, 1)
1-based indices of the faces it keeps."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.io import savemat

# event -> [(file name without .jpg, [[x, y, w, h], ...], [invalid flag, ...])]
Events = dict[str, list[tuple[str, list[list[float]], list[int]]]]


def cell(items: list) -> np.ndarray:
    """An (n, 1) MATLAB cell array of ``items``."""
    out = np.empty((len(items), 1), dtype=object)
    for i, item in enumerate(items):
        out[i, 0] = item
    return out


def _names(events: Events) -> dict[str, np.ndarray]:
    return {
        "event_list": cell(list(events)),
        "file_list": cell([cell([name for name, _, _ in images]) for images in events.values()]),
    }


def write_ground_truth(path: Path, events: Events) -> Path:
    """``wider_face_val.mat``: names, boxes and invalid labels."""
    boxes = [cell([np.asarray(b, np.float64).reshape(-1, 4) for _, b, _ in images]) for images in events.values()]
    invalid = [cell([np.asarray(f, np.float64).reshape(-1, 1) for _, _, f in images]) for images in events.values()]
    path.parent.mkdir(parents=True, exist_ok=True)
    savemat(path, {**_names(events), "face_bbx_list": cell(boxes), "invalid_label_list": cell(invalid)})
    return path


def write_setting(path: Path, events: Events, kept: list[list[list[int]]], names: bool = True) -> Path:
    """A setting file (``wider_hard_val.mat``, ...): ``kept[event][image]`` 1-based face indices;
    ``names=False`` leaves ``event_list`` and ``file_list`` out (then ``wider_face_val.mat`` names them)."""
    gt_list = cell([cell([np.asarray(k, np.float64).reshape(-1, 1) for k in images]) for images in kept])
    path.parent.mkdir(parents=True, exist_ok=True)
    savemat(path, {**(_names(events) if names else {}), "gt_list": gt_list})
    return path
