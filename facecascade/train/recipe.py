"""The MTCNN training recipe on the shared data: samples per stage, then the stage, in order.

    P-Net: random windows of the training images + landmark faces -> train P-Net
    R-Net: windows mined by the trained P-Net + perturbed faces + landmark faces -> train R-Net
    O-Net: windows mined by P-Net and R-Net + perturbed faces + landmark faces -> train O-Net

Detection images: the training split (`facecascade.data.split_records`, 20 % validation by file
name hash) of WIDER FACE train (``invalid`` faces ignored), face_mask (VOC boxes, moved to WIDER's
box convention by `facecascade.data.conventions.FACE_MASK_TO_WIDER`) and Caltech WebFaces (boxes
derived from points, fitted to WIDER-trained MTCNN boxes). Landmark faces: the training splits of
CelebA and MTFL (5 points, boxes derived from the points).
Everything lands in ``out/``: ``samples/<stage>/{train,val}``, ``<stage>/`` (checkpoints, log.csv,
``<stage>.pt``) and, when all three exist, ``mtcnn.pt`` (a `facecascade.models.save_mtcnn` file).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from ..data import select_split
from ..data.conventions import FACE_MASK_TO_WIDER, BoxConvention
from ..data.formats import read_dataset
from ..data.records import FaceRecord
from ..detect.mtcnn import MTCNNCascade, MTCNNConfig, fast_preset
from ..distributed.ddp import main_first, main_only
from ..io import load_image
from ..models import MTCNNNets, ONet, PNet, RNet, save_mtcnn
from ..models.weights import landmark_points, load_mtcnn
from .generate import SamplingConfig, mined_boxes, negative_boxes, perturbed_boxes, pnet_samples, window_samples
from .losses import TaskWeights
from .operating_point import choose_thresholds
from .samples import SampleArrays, load_samples, mirror_record, save_samples
from .trainer import TrainConfig, config_dict, train_stage
from .unlabeled import MIN_SCORE, cached_unlabeled, mark_unlabeled

STAGES = ("pnet", "rnet", "onet")
# Sample sets: the three stages', and the joint cascade's (`facecascade.train.joint`): 48x48 crops
# of P-Net's candidates, which its x12 gate narrows for x24 and x48 during training.
SAMPLE_SETS = (*STAGES, "joint")
WINDOW = {"pnet": 12, "rnet": 24, "onet": 48, "joint": 48}
MINED_BY = {"rnet": "pnet", "onet": "rnet", "joint": "pnet"}  # last stage run to mine candidates
# Mining keeps what the trained earlier stages pass at thresholds no higher than the operating
# points tried (`operating_point.CANDIDATE_THRESHOLDS`), so later stages train on the candidates
# they meet at inference, and O-Net sees enough hard negatives: a well-trained R-Net passes few
# non-faces at 0.7 (1.6k negatives against 44k positives in our first run). The proposal cap
# only bounds the work of barely trained stages (quick runs): on 600 training images of each
# detection set, our second run's P-Net at 0.4 proposed at most ~700 boxes per image (from at most
# ~1,400 passing cells; measured at 0.4, not at the 0.3 used here).
# Mined from 12 px faces up (pyramid from min_face_size 12): R-Net and O-Net meet the small
# candidates a detector run for crowds (min_face_size 10-12) gives them.
MINING = MTCNNConfig(
    min_face_size=12.0, thresholds=(0.3, 0.1, 0.7), max_proposals=2000, precision="fp32"
)  # same on every CPU
# Share of R-Net/O-Net training samples replayed at a small face's resolution (`train.augment`).
LOW_RES = {"pnet": 0.0, "rnet": 0.5, "onet": 0.5}
TASK_WEIGHTS = {
    "pnet": TaskWeights(1.0, 0.5, 0.5),
    "rnet": TaskWeights(1.0, 0.5, 0.5),
    "onet": TaskWeights(1.0, 0.5, 1.0),
}  # the paper's alphas


# Sources whose boxes train box regression: WIDER FACE's own and face_mask's moved into its
# convention. Caltech, CelebA and MTFL boxes are a fixed function of 4-5 points (`CALTECH_BOXES`):
# right on average, but not where a face's box is, so their faces train face/non-face only.
BOX_SOURCES = ("wider", "voc")


@dataclass(frozen=True)
class Recipe:
    data: Path
    out: Path
    epochs: dict[str, int] = field(default_factory=lambda: {"pnet": 30, "rnet": 15, "onet": 12})
    samples_per_epoch: dict[str, int] = field(
        default_factory=lambda: {"pnet": 200_000, "rnet": 120_000, "onet": 60_000}
    )
    ohem: bool = True
    landmarks: bool = True
    low_res: bool = True  # low-resolution augmentation of R-Net and O-Net (`LOW_RES`)
    seed: int = 0
    limit: int = 0  # images per dataset (0 = all): quick runs and tests
    device: str = "cpu"
    reuse: Path | None = None  # read earlier stages and samples from this run if not in ``out``
    tuning_images: int = 150  # val-tune images per detection set for choosing the thresholds
    ignore_unlabeled: str | None = None  # weights that flag faces left unannotated (`train.unlabeled`)
    ignore_min_score: float = MIN_SCORE  # ... from this face probability on
    sampling: SamplingConfig = field(default_factory=lambda: SamplingConfig(box_sources=BOX_SOURCES))
    wider: bool = True  # WIDER FACE train among the detection sets
    box_conventions: bool = True  # face_mask's boxes moved to WIDER's convention
    init: str | None = None  # weights each stage starts from (fine-tuning); None: from scratch
    lr: float = 0.0  # AdamW peak learning rate of every stage (0: `TrainConfig`'s 1e-3)
    micro_batches: int = 0  # parts of each batch over the processes (0: one each; `facecascade.distributed.ddp`)

    def find(self, relative: str) -> Path:
        """``out/relative``, or the reused run's when only that one has it."""
        mine = self.out / relative
        if not mine.exists() and self.reuse is not None and (self.reuse / relative).exists():
            return self.reuse / relative
        return mine


def _in_wider_convention(records: list[FaceRecord], convention: BoxConvention) -> list[FaceRecord]:
    return [replace(r, boxes=convention(r.boxes)) for r in records]


def detection_sets(recipe: Recipe) -> list[list[FaceRecord]]:
    """The detection sets, all splits: WIDER FACE train (when ``recipe.wider``), face_mask (its boxes
    in WIDER's convention when ``recipe.box_conventions``), Caltech WebFaces."""
    d = recipe.data
    face_mask = read_dataset("voc", d / "face_mask" / "annotations", d / "face_mask" / "images")
    if recipe.box_conventions:
        face_mask = _in_wider_convention(face_mask, FACE_MASK_TO_WIDER)
    sets = [
        face_mask,
        read_dataset(
            "caltech", d / "caltech_webfaces" / "WebFaces_GroundThruth.txt", d / "caltech_webfaces" / "images"
        ),
    ]
    if recipe.wider:
        wider = d / "wider_face"
        sets.append(
            read_dataset(
                "wider", wider / "wider_face_split" / "wider_face_train_bbx_gt.txt", wider / "WIDER_train" / "images"
            )
        )
    return sets


def datasets(recipe: Recipe, split: str) -> list[FaceRecord]:
    """Detection records (`detection_sets`) then landmark records (celeba, mtfl) of ``split``."""
    d = recipe.data
    sets = detection_sets(recipe)
    if recipe.landmarks:
        sets += [read_dataset("celeba", d / "celeba"), read_dataset("mtfl", d / "mtfl" / "lfw_5590_landmarks.txt")]
    out = []
    for records in sets:
        chosen = select_split(records, split, seed=recipe.seed)
        out += chosen[: recipe.limit] if recipe.limit else chosen
    return out


def sampled_records(recipe: Recipe, split: str) -> list[FaceRecord]:
    """`datasets`, with the faces ``recipe.ignore_unlabeled`` finds on the detection images and no
    annotation covers added as ignored faces (`facecascade.train.unlabeled`; cached in
    ``out/unlabeled_<split>.json``). Thresholds are still chosen on the plain annotations."""
    records = datasets(recipe, split)
    if not recipe.ignore_unlabeled:
        return records
    detection = [r for r in records if r.landmarks is None]
    boxes = cached_unlabeled(
        detection, recipe.ignore_unlabeled, recipe.out / f"unlabeled_{split}.json", min_score=recipe.ignore_min_score
    )
    return mark_unlabeled(records, boxes)


# Detection sources whose images are used twice, as they are and mirrored (others: one of the
# two at random). WIDER FACE is the benchmark's convention and has most of the small faces, but
# only ~1,000 training images here against Caltech's 5,000.
BOTH_VIEWS = ("wider",)


def _views(image: np.ndarray, record: FaceRecord, rng: np.random.Generator):
    """The image and its mirror for landmark faces (flips with landmark swapping) and `BOTH_VIEWS`
    sources; other detection images are mirrored at random, half of the time."""
    if record.landmarks is not None or record.source in BOTH_VIEWS:
        yield image, record
        yield mirror_record(image, record)
    else:
        yield mirror_record(image, record) if rng.random() < 0.5 else (image, record)


def generate_samples(recipe: Recipe, stage: str, split: str, nets: MTCNNNets | None) -> SampleArrays:
    """Samples for ``stage`` (one of `SAMPLE_SETS`) from the ``split`` images (mining with
    ``nets`` for all but P-Net)."""
    rng = np.random.default_rng(recipe.seed + SAMPLE_SETS.index(stage) + (100 if split == "val" else 0))
    cascade = None
    if stage != "pnet":
        assert nets is not None, f"{stage} samples are mined with the earlier stages"
        cascade = MTCNNCascade(nets, MINING, torch.device(recipe.device))
    parts, failed = [], 0
    for record in tqdm(sampled_records(recipe, split), desc=f"{stage} samples ({split})", unit="img"):
        try:
            image = load_image(record.image)
        except (ValueError, FileNotFoundError) as exc:
            failed += 1
            tqdm.write(f"error: {record.image}: {exc}")
            continue
        for view, rec in _views(image, record, rng):
            if stage == "pnet":
                parts.append(pnet_samples(view, rec, rng, recipe.sampling))
                continue
            boxes = perturbed_boxes(rec, rng, recipe.sampling)
            if rec.landmarks is None:
                assert cascade is not None  # built for every stage but P-Net
                mined = mined_boxes(cascade, view, MINED_BY[stage])
                boxes = torch.cat([boxes, mined, negative_boxes(view, rec, rng, recipe.sampling)])
            else:
                landmark_boxes = perturbed_boxes(rec, rng, recipe.sampling, landmark=True)
                parts.append(window_samples(view, rec, landmark_boxes, WINDOW[stage], rng, recipe.sampling, True))
            parts.append(window_samples(view, rec, boxes, WINDOW[stage], rng, recipe.sampling))
    if failed:
        tqdm.write(f"{failed} image(s) could not be read and were skipped")
    return SampleArrays.concat(parts, WINDOW[stage])


def stage_samples(recipe: Recipe, stage: str, split: str, nets: MTCNNNets | None) -> SampleArrays:
    """``out/samples/<stage>/<split>`` (or the reused run's), generated first if missing (by rank 0
    of a multi-process run; the others read what it wrote)."""
    with main_first():
        try:
            return load_samples(recipe.find(f"samples/{stage}/{split}"))
        except FileNotFoundError:
            pass
        folder = recipe.out / "samples" / stage / split
        samples = generate_samples(recipe, stage, split, nets)
        save_samples(folder, samples)
        (folder / "counts.json").write_text(json.dumps(samples.counts(), indent=1))
        return load_samples(folder)


NETS = {"pnet": PNet, "rnet": RNet, "onet": ONet}


def _new_net(stage: str, init: str | None = None):
    """A fresh stage, or one starting from the same stage of the cascade ``init`` (fine-tuning;
    a landmark head that cascade lacks starts fresh). The landmark head is always there (the "no
    landmark task" ablation gives it a zero loss weight), so every trained cascade has O-Net
    landmarks to output."""
    net = NETS[stage](landmarks=5)
    if init is not None:
        start = getattr(load_mtcnn(init), stage).state_dict()
        result = net.load_state_dict(start, strict=False)
        if result.unexpected_keys or any(not k.startswith("landmarks.") for k in result.missing_keys):
            raise ValueError(f"--init {init}: its {stage} does not fit: {result}")
    return net


def _load_stage(recipe: Recipe, stage: str):
    path = recipe.find(f"{stage}/{stage}.pt")
    if not path.is_file():
        raise FileNotFoundError(f"{path} missing: train the {stage} stage first (--stage {stage})")
    state = torch.load(path, map_location="cpu", weights_only=True)
    net = NETS[stage](landmarks=landmark_points(state))
    net.load_state_dict(state)
    return net.eval()


def _earlier_nets(recipe: Recipe, stage: str) -> MTCNNNets | None:
    """The trained stages that mine ``stage``'s samples (`MINED_BY`), untrained ones after them."""
    if stage == "pnet":
        return None
    pnet = _load_stage(recipe, "pnet")
    rnet = _load_stage(recipe, "rnet") if MINED_BY[stage] == "rnet" else RNet()
    return MTCNNNets(pnet, rnet.eval(), ONet().eval())


def stage_config(recipe: Recipe, stage: str) -> TrainConfig:
    """The stage's training settings; the ablations switch off hard sample mining (``keep=1``)
    or the landmark task (zero weight, no landmark faces drawn)."""
    weights = TASK_WEIGHTS[stage] if recipe.landmarks else TASK_WEIGHTS[stage]._replace(landmark=0.0)
    return TrainConfig(
        epochs=recipe.epochs[stage],
        samples_per_epoch=recipe.samples_per_epoch[stage],
        keep=0.7 if recipe.ohem else 1.0,
        weights=weights,
        seed=recipe.seed,
        ratio=(3.0, 1.0, 1.0, 2.0 if recipe.landmarks else 0.0),
        batch_size=256 if stage != "onet" else 128,
        low_res=LOW_RES[stage] if recipe.low_res else 0.0,
        micro_batches=recipe.micro_batches,
        lr=recipe.lr if recipe.lr > 0 else TrainConfig.lr,
    )


def run_stage(recipe: Recipe, stage: str, quiet: bool = False) -> Path:
    """Generate (or reuse) the stage's samples, train it (resuming), save ``out/<stage>/<stage>.pt``."""
    began = time.time()
    nets = _earlier_nets(recipe, stage)
    train = stage_samples(recipe, stage, "train", nets)
    val = stage_samples(recipe, stage, "val", nets)
    cfg = stage_config(recipe, stage)
    torch.manual_seed(recipe.seed)
    net = train_stage(
        _new_net(stage, recipe.init), train, val, cfg, recipe.out / stage, torch.device(recipe.device), quiet
    )
    path = recipe.out / stage / f"{stage}.pt"
    main_only(_save_stage, recipe, stage, net, began, train, val, cfg)
    return path


def _save_stage(
    recipe: Recipe,
    stage: str,
    net: torch.nn.Module,
    began: float,
    train: SampleArrays,
    val: SampleArrays,
    cfg: TrainConfig,
) -> None:
    """``out/<stage>/<stage>.pt`` and its ``summary.json`` (samples, settings, time so far)."""
    torch.save(net.cpu().state_dict(), recipe.out / stage / f"{stage}.pt")
    summary = recipe.out / stage / "summary.json"
    seconds = time.time() - began
    if summary.is_file():  # a resumed run adds its time to the earlier runs'
        seconds += json.loads(summary.read_text()).get("seconds", 0.0)
    info = {
        "stage": stage,
        "train_samples": train.counts(),
        "val_samples": val.counts(),
        "config": config_dict(cfg),
        "seconds": round(seconds, 1),
    }
    summary.write_text(json.dumps(info, indent=1))


def operating_point(
    recipe: Recipe, nets: MTCNNNets, fast: bool = False, settings: Mapping[str, Any] | None = None
) -> tuple[tuple[float, ...], dict[str, float]]:
    """Stage thresholds chosen on ``recipe.tuning_images`` images of each detection set's
    ``val-tune`` half (never trained on; the ``val-report`` half stays untouched by the choice),
    with the checkpoint's own engine ``settings`` (``meta["settings"]``, e.g. box voting).
    The annotations are the sets' own (face_mask's not moved: AP@0.5 is what is chosen for)."""
    plain = replace(recipe, box_conventions=False)
    per_set = [select_split(s, "val-tune", seed=recipe.seed)[: recipe.tuning_images] for s in detection_sets(plain)]
    own = dict(settings or {})
    preset = fast_preset({"settings": own}) if fast else own  # the fast path's own (FaceDetector(fast=True))
    return choose_thresholds(nets, per_set, device=torch.device(recipe.device), preset=preset or None)


def operating_points(recipe: Recipe, nets: MTCNNNets, settings: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The checkpoint meta of both operating points (`operating_point`, standard and fast path):
    ``thresholds``, ``fast_thresholds`` and every candidate's mean AP (``*_tried``)."""
    thresholds, tried = operating_point(recipe, nets, settings=settings)
    fast, fast_tried = operating_point(recipe, nets, fast=True, settings=settings)
    return {
        "thresholds": list(thresholds),
        "thresholds_tried": tried,
        "fast_thresholds": list(fast),
        "fast_thresholds_tried": fast_tried,
    }


def pack(recipe: Recipe) -> Path:
    """``out/mtcnn.pt``: the three trained stages as one cascade checkpoint, with the stage
    thresholds chosen on validation images for the standard and the fast path
    (`facecascade.train.operating_point`)."""
    nets = MTCNNNets(*(_load_stage(recipe, s) for s in STAGES))
    meta = {
        "recipe": "facecascade train mtcnn",
        "data": (
            ("wider_face train + " if recipe.wider else "")
            + "face_mask + caltech_webfaces (train split), celeba + mtfl landmarks (train split); research use only"
        ),
        "wider": recipe.wider,
        "box_conventions": recipe.box_conventions,
        "init": recipe.init,
        "lr": recipe.lr or TrainConfig.lr,
        "box_sources": list(recipe.sampling.box_sources or ()) or "all",
        "ohem": recipe.ohem,
        "landmarks": recipe.landmarks,
        "seed": recipe.seed,
        "ignore_unlabeled": recipe.ignore_unlabeled,
        "ignore_min_score": recipe.ignore_min_score if recipe.ignore_unlabeled else None,
        **operating_points(recipe, nets),
    }
    path = recipe.out / "mtcnn.pt"
    save_mtcnn(path, nets, meta)
    return path
