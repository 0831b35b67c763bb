"""`facecascade train mcfa`: MCFA on the shared data, one variant per call.

Faces: the shared CelebA copy (9,000 aligned 89 x 109 images; attributes, 5 landmarks, boxes
derived from them), split 80/20 by `facecascade.data.split_records`. Non-faces: patches of the
training (validation) split's face_mask and Caltech WebFaces photos that overlap no face, the same
for every variant (cached in ``out/negatives_*.npy``). Writes ``out/<variant>-<weighting>.pt`` (an
`facecascade.models.mcfa_weights` checkpoint) and ``out/<variant>-<weighting>/report.json``.

`tune_test_time` switches on a checkpoint's test-time options (`facecascade.attributes.tta`):
flip averaging, and per-attribute decision thresholds chosen on a split the reported number does
not come from (``val-tune``, reported on ``val-report``; or ``train``).
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ..data import read_dataset, select_split
from ..data.celeba import CELEBA_ATTRIBUTES
from ..distributed.ddp import main_first, main_only
from ..models.mcfa import MCFANet
from ..models.mcfa_weights import load_mcfa_members, save_mcfa, save_mcfa_ensemble
from .mcfa import VARIANTS, MCFATrainConfig, attribute_accuracy, config_dict, evaluate, fit_mcfa, predict_faces
from .mcfa_data import FaceSet, load_faces, negatives_cached

NEGATIVES = {"train": 6000, "val": 1500}
DATA_NOTE = (
    "CelebA (shared 89x109 copy, train split) faces; non-faces from face_mask and Caltech WebFaces "
    "(train split); research use only"
)


THRESHOLD_SPLITS = ("val-tune", "train")


def celeba_faces(data: Path, split: str, limit: int = 0) -> FaceSet:
    records = select_split(read_dataset("celeba", data / "celeba"), split)
    return load_faces(records[:limit] if limit else records, CELEBA_ATTRIBUTES)


def background(data: Path, split: str, out: Path, size: int, limit: int = 0) -> np.ndarray:
    """The split's non-face patches (cached)."""
    records = select_split(
        read_dataset("voc", data / "face_mask" / "annotations", data / "face_mask" / "images"), split
    ) + select_split(
        read_dataset(
            "caltech", data / "caltech_webfaces" / "WebFaces_GroundThruth.txt", data / "caltech_webfaces" / "images"
        ),
        split,
    )
    count = min(NEGATIVES[split], limit) if limit else NEGATIVES[split]
    with main_first():  # rank 0 of a multi-process run samples and caches them, the others read the cache
        return negatives_cached(
            out / f"negatives_{split}_{count}.npy", records, count, size, seed=1 if split == "val" else 0
        )


def report(val_logits: Tensor, train: FaceSet, val: FaceSet) -> dict:
    """Per-attribute validation accuracy of L_Net's attribute logits ``val_logits``, the mean, and
    the majority-class baseline (each attribute's more frequent value in the training split)."""
    acc = attribute_accuracy(val_logits, torch.from_numpy(val.attributes))
    majority = (train.attributes.mean(0) >= 0.5).astype(np.float32)
    base = (val.attributes == majority).mean(0)
    return {
        "mean_accuracy": float(acc.mean()),
        "majority_mean_accuracy": float(base.mean()),
        "per_attribute": {
            n: {"accuracy": float(a), "majority": float(b)} for n, a, b in zip(val.names, acc.tolist(), base.tolist())
        },
    }


def run_mcfa(
    data: Path,
    out: Path,
    variant: str = "mcfa",
    weighting: str = "dynamic",
    cfg: MCFATrainConfig | None = None,
    limit: int = 0,
    quiet: bool = False,
    flip: bool = False,
    thresholds_from: str | None = None,
    init: str | Path | None = None,
) -> Path:
    """Train one variant; returns the path of its weights, with the test-time options
    (`tune_test_time`) ``flip`` and thresholds chosen on the split ``thresholds_from`` if given.
    ``init``: start from this MCFA checkpoint's weights (a warm restart: its training continued
    with a new learning-rate cycle) instead of random ones."""
    cfg = replace(cfg or MCFATrainConfig(), tasks=VARIANTS[variant], weighting=weighting)
    name = f"{variant}-{weighting}"
    net = MCFANet() if init is None else load_mcfa_members(init)[0][0].train()
    size = net.cfg.sizes[2]
    train, val = celeba_faces(data, "train", limit), celeba_faces(data, "val", limit // 4 if limit else 0)
    negatives = {s: background(data, s, out, size, limit) for s in ("train", "val")}
    fit_mcfa(
        net,
        train,
        val,
        negatives["train"] if "fd" in cfg.tasks else None,
        negatives["val"],
        cfg,
        out / name,
        quiet=quiet,
    )
    path = out / f"{name}.pt"
    main_only(_report_and_save, net, train, val, negatives["val"], cfg, out / name, path, variant, weighting, init)
    if flip or thresholds_from:
        main_only(tune_test_time, path, data, path, flip, thresholds_from, limit)
    return path


def tune_test_time(
    weights: str | Path,
    data: Path,
    out: Path,
    flip: bool,
    thresholds_from: str | None,
    limit: int = 0,
    ensemble: tuple[str | Path, ...] = (),
) -> dict:
    """Write the checkpoint ``weights`` to ``out`` with its test-time meta: ``"flip"``, and
    ``"thresholds"`` chosen (`choose_thresholds`, on box crops, after flip averaging when ``flip``)
    on the CelebA split ``thresholds_from`` (one of `THRESHOLD_SPLITS`; None: no thresholds).
    ``ensemble``: more checkpoints whose networks join it (probabilities averaged; thresholds are
    then chosen for the ensemble). Returns the new meta (without the members' weights)."""
    from ..attributes import AttributeClassifier
    from ..attributes.tta import choose_thresholds
    from ..eval.attributes import predict_records

    nets, meta = load_mcfa_members(weights)
    nets += [net for extra in ensemble for net in load_mcfa_members(extra)[0]]
    meta = {k: v for k, v in meta.items() if k not in ("thresholds", "thresholds_from")} | {"flip": flip}
    if len(nets) > 1:
        meta["ensemble_of"] = [str(weights), *map(str, ensemble)]
    save_mcfa_ensemble(out, nets, meta)  # the members, before the thresholds are chosen for them all
    if thresholds_from is not None:
        if thresholds_from not in THRESHOLD_SPLITS:
            raise ValueError(f"thresholds_from must be one of {THRESHOLD_SPLITS}, got {thresholds_from!r}")
        records = select_split(read_dataset("celeba", data / "celeba"), thresholds_from)[: limit or None]
        probabilities, _ = predict_records(AttributeClassifier(out, flip=flip, thresholds=False), records, "box")
        labels = np.concatenate([r.attributes for r in records])
        meta["thresholds"] = choose_thresholds(probabilities, labels).tolist()
        meta["thresholds_from"] = f"{thresholds_from} split of the shared CelebA copy ({len(records)} faces, box crops)"
        save_mcfa_ensemble(out, nets, meta)
    return meta


def _report_and_save(
    net: MCFANet,
    train: FaceSet,
    val: FaceSet,
    negatives: np.ndarray,
    cfg: MCFATrainConfig,
    folder: Path,
    path: Path,
    variant: str,
    weighting: str,
    init: str | Path | None = None,
) -> None:
    """``folder/report.json`` (validation accuracy per attribute, the other metrics) and the weights."""
    size = net.cfg.sizes[2]
    outs = predict_faces(net, val, size)  # once, for both reports
    result = {**report(outs[2].attributes, train, val), **evaluate(net, val, negatives, size, outs)}
    result.update(
        variant=variant, weighting=weighting, config=config_dict(cfg), train_faces=len(train), val_faces=len(val)
    )
    (folder / "report.json").write_text(json.dumps(result, indent=1))
    save_mcfa(
        path,
        net,
        {
            "attributes": list(CELEBA_ATTRIBUTES),
            "data": DATA_NOTE,
            "variant": variant,
            "weighting": weighting,
            "val_mean_accuracy": result["mean_accuracy"],
            "recipe": "facecascade train mcfa",
            **({"init": str(init)} if init is not None else {}),
        },
    )
