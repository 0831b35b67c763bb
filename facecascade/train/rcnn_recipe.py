"""`facecascade train rcnn`: a two-stage detector (Cascade R-CNN or a Table 1 baseline) on the
training split of the shared face sets (face_mask VOC boxes + Caltech WebFaces, and WIDER FACE
train with ``wider=True``), or on any dataset `facecascade.data.read_dataset` reads (COCO for many
classes). Trains into ``out/<name>/`` (resumable; `run_name`) and packs ``out/<name>.pt``
(`save_rcnn` format). A detector fed by the MTCNN cascade (``proposals="mtcnn"``) gets the
cascade's boxes of every training image from ``out/proposals.npz`` (made on the first run)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import torch

from ..data import select_split
from ..data.coco import category_classes
from ..data.formats import read_dataset
from ..data.records import FaceRecord
from ..distributed.ddp import main_only
from ..models.cascade_rcnn import CascadeRCNN, RCNNConfig
from ..models.checkpoints import config_fields
from ..models.rcnn_weights import load_rcnn, save_rcnn
from .rcnn import RCNNTrainConfig, load_backbone_and_rpn, train_rcnn
from .rcnn_proposals import cached_proposals, load_proposals

FACE_DATA_NOTE = (
    "face_mask (VOC boxes) + Caltech 10,000 Web Faces (boxes from its points), train split; research use only"
)
WIDER_DATA_NOTE = (
    "WIDER FACE train (the shared 1,239-image subset) + face_mask (VOC boxes) + Caltech 10,000 Web Faces "
    "(boxes from its points), facecascade's train split of each; research use only"
)
SOURCES = ("wider", "voc", "caltech")  # `FaceRecord.source` of the sets, WIDER's convention first


def face_records(data: Path, split: str, seed: int = 0, wider: bool = False) -> list[FaceRecord]:
    """The ``split`` of face_mask and Caltech WebFaces (the MTCNN recipe's detection sets), and of
    the WIDER FACE train images with ``wider``."""
    sets = [
        read_dataset("voc", data / "face_mask" / "annotations", data / "face_mask" / "images"),
        read_dataset(
            "caltech", data / "caltech_webfaces" / "WebFaces_GroundThruth.txt", data / "caltech_webfaces" / "images"
        ),
    ]
    if wider:
        folder = data / "wider_face"
        annotations = folder / "wider_face_split" / "wider_face_train_bbx_gt.txt"
        sets.append(read_dataset("wider", annotations, folder / "WIDER_train" / "images"))
    return [r for records in sets for r in select_split(records, split, seed=seed)]


def run_name(model_cfg: RCNNConfig, train_cfg: RCNNTrainConfig) -> str:
    """``<mode>-<rpn>`` for a detector with its own RPN, ``<mode>-mtcnn-<features>`` without."""
    if model_cfg.proposals == "rpn":
        return f"{model_cfg.mode}-{train_cfg.rpn}"
    return f"{model_cfg.mode}-{model_cfg.proposals}-{model_cfg.features}"


def num_classes(records: list[FaceRecord]) -> int:
    """Classes a detector for ``records`` predicts (1 for faces)."""
    return max((int(r.classes.max()) for r in records if len(r)), default=1)


def run_rcnn(
    records: list[FaceRecord],
    out: Path,
    model_cfg: RCNNConfig,
    train_cfg: RCNNTrainConfig,
    data_note: str,
    class_names: list[str] | None = None,
    quiet: bool = False,
    steps: int = 0,
    init: str | None = None,
) -> Path:
    """Train one detector on ``records`` (at most ``steps`` more steps when > 0) and pack it;
    returns the packed weights' path. ``init``: weights whose backbone and RPN start the model."""
    model_cfg = replace(model_cfg, num_classes=max(model_cfg.num_classes, num_classes(records)))
    name = run_name(model_cfg, train_cfg)
    model = CascadeRCNN(model_cfg)
    if init is not None:
        load_backbone_and_rpn(model, load_rcnn(init)[0])
    elif train_cfg.rpn == "frozen":
        raise ValueError("rpn='frozen' trains heads on another detector's backbone and RPN: give init")
    proposals = None
    if model_cfg.proposals == "mtcnn":
        cache = out / "proposals.npz"
        main_only(cached_proposals, records, model_cfg.proposal_source, cache, quiet)
        proposals = load_proposals(cache, model_cfg.proposal_source)
    last = train_rcnn(model, records, train_cfg, out / name, quiet, steps, proposals)
    path = out / f"{name}.pt"
    main_only(_pack, model, last, path, class_names or ["face"] * model_cfg.num_classes, data_note, train_cfg)
    return path


def _pack(
    model: CascadeRCNN, last: Path, path: Path, classes: list[str], data_note: str, train_cfg: RCNNTrainConfig
) -> None:
    """The last checkpoint's model packed as weights at ``path``."""
    model.load_state_dict(torch.load(last, map_location="cpu", weights_only=True)["model"])
    save_rcnn(
        path,
        model,
        {
            "classes": classes,
            "data": data_note,
            "train": config_fields(train_cfg),
            "recipe": "facecascade train rcnn",
        },
    )


def coco_class_names(annotations: Path) -> list[str]:
    """Category names of a COCO json in class order (`category_classes`)."""
    import json

    data = json.loads(Path(annotations).read_text(encoding="utf-8"))
    names = {c["id"]: c.get("name", str(c["id"])) for c in data.get("categories", [])}
    return [names.get(category, str(category)) for category in category_classes(data)]
