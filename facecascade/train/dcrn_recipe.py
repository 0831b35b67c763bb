"""The DCRN training recipe behind ``facecascade train dcrn``: data, phases, checkpoints.

Data: the 5-point faces of MTFL's LFW part, CelebA and MTFL's AFLW part (large head poses)
(``DATA/mtfl/lfw_5590_landmarks.txt``, ``DATA/celeba``, ``DATA/mtfl/aflw_half/aflw_landmarks.txt``;
`LANDMARK_SOURCES`), split by the project's image-name hash (80 % train / 20 % val, the split every
other model uses). Caltech WebFaces is left out: it marks one mouth point, not two corners, so its
faces do not share our 5-point definition. Crops are normalised from the boxes our ``mtcnn``
detector puts on each face (the boxes the aligner is given in use); faces it misses use the box
derived from their points (`facecascade.data.boxfit`) so that training still sees them.

Outputs in ``OUT``: ``regions_{train,val}.npz`` (cached crops), one folder per phase with
``last.pt`` / ``log.csv``, and the checkpoints ``gen.pt`` (GEN), ``gen-lrn-8.pt`` (GEN-LRN-m),
``lrn-8.pt`` (LRN-m from the mean shape) and ``dcrn.pt`` (after DDPG). Phase ``lrn`` starts its
LRN from ``lrn-8.pt`` when that exists (``all`` trains it first).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch

from ..data.landmarks import LandmarkFace, read_landmark_faces, split_faces
from ..distributed.ddp import main_first, main_only
from ..models.dcrn import DCRN, DCRNConfig
from ..models.dcrn_weights import load_dcrn, save_dcrn
from .dcrn import DCRNTrainConfig, config_dict, evaluate, fit_ddpg, fit_supervised
from .dcrn_data import FaceRegions, crop_batch

PHASES = ("gen", "lrn-mean", "lrn", "ddpg")
# name: (reader format, path under the data folder, times each training face is listed). AFLW's
# large poses are 1,200 of ~10,500 training faces: listed 3 times (each draw augmented afresh).
LANDMARK_SOURCES = {
    "lfw": ("mtfl", "mtfl/lfw_5590_landmarks.txt", 1),
    "celeba": ("celeba", "celeba", 1),
    "aflw": ("mtfl", "mtfl/aflw_half/aflw_landmarks.txt", 3),
}
SOURCE_NAMES = {"lfw": "MTFL LFW part", "celeba": "CelebA aligned", "aflw": "MTFL AFLW part (aflw_half)"}


def data_note(sources: tuple[str, ...]) -> str:
    """The checkpoint's data statement for faces of ``sources``."""
    names = " + ".join(SOURCE_NAMES[s] for s in sources)
    return (
        f"{names} (shared copies), training split; research use only; crops normalised from "
        "facecascade 'mtcnn' detector boxes"
    )


def landmark_faces(data: Path, split: str, sources: tuple[str, ...] = tuple(LANDMARK_SOURCES)) -> list[LandmarkFace]:
    """The faces of ``sources`` (`LANDMARK_SOURCES`) in ``split`` (``train``, ``val`` or ``all``),
    a source's training faces listed as many times as `LANDMARK_SOURCES` says."""
    unknown = set(sources) - set(LANDMARK_SOURCES)
    if unknown:
        raise ValueError(f"unknown landmark sources {sorted(unknown)}; known: {', '.join(LANDMARK_SOURCES)}")
    faces = []
    for name in sources:
        kind, path, repeat = LANDMARK_SOURCES[name]
        faces += split_faces(read_landmark_faces(kind, data / path), split) * (repeat if split == "train" else 1)
    return faces


def training_boxes(faces: list[LandmarkFace], detector: str, quiet: bool) -> tuple[np.ndarray, float]:
    """Detector boxes for ``faces`` (the derived box where the detector misses): ``(boxes, share found)``."""
    from ..align.matching import detect_and_match
    from ..detect import FaceDetector

    matches, errors = detect_and_match(faces, FaceDetector(weights=detector), quiet=quiet)
    for error in errors:
        print(f"error: {error}", file=sys.stderr)
    derived = np.stack([f.box for f in faces]) if faces else np.zeros((0, 4), np.float32)
    return np.where(matches.found[:, None], matches.boxes, derived), float(matches.found.mean()) if faces else 0.0


def regions_for(
    data: Path,
    split: str,
    cfg: DCRNConfig,
    out: Path,
    detector: str = "mtcnn",
    limit: int = 0,
    quiet: bool = False,
    sources: tuple[str, ...] = tuple(LANDMARK_SOURCES),
) -> FaceRegions:
    """Cached crops of the ``split`` faces (``out/regions_<split>.npz``; made by rank 0 of a
    multi-process run, read by the others)."""
    with main_first():
        cache = out / f"regions_{split}.npz"
        if cache.is_file():
            return FaceRegions.load(cache, cfg)
        faces = landmark_faces(data, split, sources)
        if limit:
            faces = faces[:: max(1, len(faces) // limit)][:limit]
        boxes, found = training_boxes(faces, detector, quiet)
        regions, errors = FaceRegions.from_faces(faces, boxes, cfg)
        for error in errors:
            print(f"error: {error}", file=sys.stderr)
        if not quiet:
            print(f"{split}: {len(regions)} faces, {found:.1%} found by '{detector}'", file=sys.stderr)
        out.mkdir(parents=True, exist_ok=True)
        regions.save(cache)
        return regions


def mean_shape(regions: FaceRegions) -> torch.Tensor:
    """Mean ``(K, 2)`` points of the un-augmented crops, in crop units."""
    _, points = crop_batch(regions, np.arange(len(regions)))
    return points.mean(0)


def _phase_model(source: Path | None, phase: str, cfg: DCRNConfig, train: FaceRegions, init: DCRN | None) -> DCRN:
    """The starting model of a phase: a new one (``source=None``; ``init``'s weights when given)
    or the checkpoint it builds on."""
    if source is None:
        if init is not None:
            return init
        model = DCRN(cfg)
        model.gen.mean_shape.copy_(mean_shape(train))
        return model
    if not source.is_file():
        raise FileNotFoundError(f"phase {phase} needs {source}: train the phase that writes it first")
    model, _ = load_dcrn(source)
    return model


def _start_lrn(model: DCRN, init: DCRN | None, lrn_mean: Path) -> None:
    """The LRN of phase ``lrn`` starts from ``init``'s LRN (fine-tuning) or else from LRN-m's
    when it exists (a curriculum: LRN-m already refines from the far-off mean shape)."""
    start = init if init is not None else (load_dcrn(lrn_mean)[0] if lrn_mean.is_file() else None)
    if start is not None:
        model.lrn.load_state_dict(start.lrn.state_dict())


def run_phase(
    phase: str,
    data: Path,
    out: Path,
    cfg: DCRNConfig,
    tcfg: DCRNTrainConfig,
    device: str = "cpu",
    limit: int = 0,
    quiet: bool = False,
) -> Path:
    """Train one phase (skipped when its checkpoint exists) and return the checkpoint path."""
    names = {
        "gen": "gen.pt",
        "lrn": f"gen-lrn-{tcfg.lrn_steps}.pt",
        "lrn-mean": f"lrn-{tcfg.lrn_steps}.pt",
        "ddpg": "dcrn.pt",
    }
    target = out / names[phase]
    source = {"gen": None, "lrn": "gen", "lrn-mean": "gen", "ddpg": "lrn"}[phase]
    if target.is_file():
        return target
    if tcfg.threads:
        torch.set_num_threads(tcfg.threads)
    init = load_dcrn(tcfg.init)[0] if tcfg.init else None  # read once, for the phase's start
    if init is not None:
        cfg = init.cfg  # fine-tuning keeps the architecture it starts from
    train = regions_for(data, "train", cfg, out, limit=limit, quiet=quiet, sources=tcfg.sources)
    val = regions_for(data, "val", cfg, out, limit=limit // 4 if limit else 0, quiet=quiet, sources=tcfg.sources)
    model = _phase_model(None if source is None else out / names[source], phase, cfg, train, init).to(device)
    if phase == "lrn":
        _start_lrn(model, init, out / names["lrn-mean"])
    if phase == "ddpg":  # not data-parallel: rank 0 alone, the other processes wait (`fit_ddpg`)
        model = main_only(fit_ddpg, model, train, val, tcfg, out / phase, device, quiet) or model
    else:
        fit_supervised(
            model,
            "gen" if phase == "gen" else "lrn",
            train,
            val,
            tcfg,
            out / phase,
            use_gen=phase != "lrn-mean",
            device=device,
            quiet=quiet,
        )
    main_only(_save_phase, phase, model, val, tcfg, target, device, len(train))
    return target


def _save_phase(
    phase: str, model: DCRN, val: FaceRegions, tcfg: DCRNTrainConfig, target: Path, device: str, num_train: int
) -> None:
    """The phase's weights at ``target`` with their validation metrics, also as ``<target>.json``."""
    steps = {"gen": 0, "lrn": tcfg.lrn_steps, "lrn-mean": tcfg.lrn_steps, "ddpg": None}[phase]
    use_gen = phase != "lrn-mean"
    metrics = evaluate(model, val, steps, use_gen, device)
    meta = {
        "variant": {
            "gen": "GEN",
            "lrn": f"GEN-LRN-{tcfg.lrn_steps}",
            "lrn-mean": f"LRN-{tcfg.lrn_steps}",
            "ddpg": "DCRN",
        }[phase],
        "start": "gen" if use_gen else "mean",
        "steps": "dynamic" if steps is None else steps,
        "data": data_note(tcfg.sources),
        "val_crops": metrics,
        "train": config_dict(tcfg),
        "num_train": num_train,
    }
    save_dcrn(target, model.cpu(), meta)
    target.with_suffix(".json").write_text(json.dumps(meta, indent=2, default=str))
