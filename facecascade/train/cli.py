"""``facecascade train mtcnn|joint|mcfa|dcrn|rcnn ...``: the recipes, on one process or, under
``torchrun``, data-parallel over several (`facecascade.distributed.ddp`)."""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from ..argtypes import checked, fraction, positive_int
from .unlabeled import MIN_SCORE

smoothing = checked(float, lambda v: 0.0 <= v < 0.5, "a number in [0, 0.5)")


def _given(**options) -> dict:
    """The options given on the command line: a 0 (the parsers' default) means "the recipe's"."""
    return {k: v for k, v in options.items() if v}


def _no_data(data: Path) -> bool:
    """True, after saying so, when the data folder is missing."""
    if data.is_dir():
        return False
    print(f"error: data folder not found: {data}", file=sys.stderr)
    return True


def _weights_load(weights: str | None, option: str) -> bool:
    """True when ``weights`` is None or loads as an MTCNN cascade; else False, after saying why
    (naming the command-line ``option``)."""
    if weights is None:
        return True
    from ..models.weights import load_mtcnn_with_meta

    try:
        load_mtcnn_with_meta(weights)
    except (ValueError, FileNotFoundError) as exc:
        print(f"error: {option}: {exc}", file=sys.stderr)
        return False
    return True


def distributed(command: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Run a training command in the process group ``torchrun`` describes (if any): ``--device
    cuda`` becomes each process's own GPU, ``--micro-batches`` is checked against the number of
    processes, and only rank 0 writes to standard output (errors still come from every rank)."""

    @functools.wraps(command)
    def run(args: argparse.Namespace) -> int:
        from ..distributed.ddp import device_for, init_from_env, leave

        parts = getattr(args, "micro_batches", 0)
        processes = int(os.environ.get("WORLD_SIZE", "1"))
        if parts and parts < processes:
            print(f"error: --micro-batches {parts} is fewer than the {processes} processes", file=sys.stderr)
            return 2
        world = init_from_env(args.device)
        args.device = device_for(args.device, world)
        try:
            with contextlib.ExitStack() as stack:
                if not world.main:
                    stack.enter_context(contextlib.redirect_stdout(stack.enter_context(open(os.devnull, "w"))))
                return command(args)
        finally:
            leave()

    return run


def cmd_train_mtcnn(args: argparse.Namespace) -> int:
    from ..distributed.ddp import main_only
    from .recipe import STAGES, Recipe, pack, run_stage

    recipe = Recipe(
        data=Path(args.data),
        out=Path(args.out),
        ohem=not args.no_ohem,
        landmarks=not args.no_landmarks,
        low_res=not args.no_low_res,
        seed=args.seed,
        limit=args.limit,
        device=args.device,
        reuse=Path(args.reuse) if args.reuse else None,
        tuning_images=args.tuning_images,
        ignore_unlabeled=args.ignore_unlabeled,
        ignore_min_score=args.ignore_min_score,
        init=args.init,
        lr=args.lr,
        wider=not args.no_wider,
        box_conventions=not args.no_box_conventions,
        micro_batches=args.micro_batches,
    )
    if args.all_box_sources:
        recipe = replace(recipe, sampling=replace(recipe.sampling, box_sources=None))
    if args.epochs:
        recipe = replace(recipe, epochs=dict.fromkeys(STAGES, args.epochs))
    if args.samples_per_epoch:
        recipe = replace(recipe, samples_per_epoch=dict.fromkeys(STAGES, args.samples_per_epoch))
    if _no_data(recipe.data) or not all(
        _weights_load(w, flag) for w, flag in ((args.ignore_unlabeled, "--ignore-unlabeled"), (args.init, "--init"))
    ):
        return 2
    stages = STAGES if args.stage == "all" else (args.stage,)
    try:
        for stage in stages:
            path = run_stage(recipe, stage, quiet=args.quiet)
            print(f"{stage}: {path}")
        if all(recipe.find(f"{s}/{s}.pt").is_file() for s in STAGES):
            print(f"cascade: {main_only(pack, recipe)}")  # rank 0 packs (the others print nothing)
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def _float_items(items: list[str], option: str, example: str) -> dict[str, float] | None:
    """``NAME=NUMBER`` items as a dict, or None after saying which item is malformed."""
    out = {}
    for item in items:
        name, _, value = item.partition("=")
        try:
            out[name] = float(value)
        except ValueError:
            print(f"error: {option} {item!r}: expected {example}", file=sys.stderr)
            return None
    return out


def cmd_train_interpolate(args: argparse.Namespace) -> int:
    from ..detect.mtcnn import checkpoint_settings
    from ..models.weights import save_mtcnn
    from .interpolate import interpolate_cascade, recalibrated

    alphas = _float_items(args.alpha, "--alpha", "STAGE=ALPHA, e.g. onet=0.5")
    given = _float_items(args.settings, "--settings", "FIELD=NUMBER, e.g. box_voting=0.6")
    if alphas is None or given is None:
        return 2
    if not all(_weights_load(w, f) for w, f in ((args.start, "--start"), (args.tuned, "--tuned"))):
        return 2
    if args.data is not None and _no_data(Path(args.data)):
        return 2
    try:
        nets, meta = interpolate_cascade(args.start, args.tuned, alphas)
        settings = {
            **checkpoint_settings(meta),
            **checkpoint_settings({"settings": given}),
        }  # the tuned's, then --settings
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.data is not None:
        meta = recalibrated(nets, meta, Path(args.data), settings)
    elif settings:
        meta = {**meta, "settings": settings}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_mtcnn(out, nets, meta)
    print(f"cascade: {out}")
    return 0


def cmd_train_joint(args: argparse.Namespace) -> int:
    from .joint import JointConfig
    from .joint_recipe import run_joint
    from .recipe import Recipe

    recipe = Recipe(
        data=Path(args.data),
        out=Path(args.out),
        seed=args.seed,
        limit=args.limit,
        device=args.device,
        reuse=Path(args.reuse) if args.reuse else None,
        tuning_images=args.tuning_images,
    )
    cfg = JointConfig(share=not args.separate, landmarks=not args.no_landmarks)
    train = replace(
        cfg.train,
        seed=args.seed,
        micro_batches=args.micro_batches,
        **_given(epochs=args.epochs, samples_per_epoch=args.samples_per_epoch, lr=args.lr),
    )
    if args.no_landmarks:  # no landmark faces drawn either, as in the MTCNN ablation
        train = replace(train, ratio=(*train.ratio[:3], 0.0))
    cfg = replace(cfg, train=train)
    if _no_data(recipe.data):
        return 2
    try:
        print(f"cascade: {run_joint(recipe, cfg, args.init, quiet=args.quiet)}")
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def cmd_train_mcfa(args: argparse.Namespace) -> int:
    from .mcfa import AUGMENTS, MCFATrainConfig
    from .mcfa_recipe import run_mcfa

    cfg = MCFATrainConfig(
        seed=args.seed,
        micro_batches=args.micro_batches,
        threads=args.threads or 0,
        label_smoothing=args.label_smoothing,
        **AUGMENTS[args.augment],
        **_given(epochs=args.epochs, box_weight=args.box_weight, landmark_weight=args.landmark_weight, lr=args.lr),
    )
    if _no_data(Path(args.data)):
        return 2
    try:
        path = run_mcfa(
            Path(args.data),
            Path(args.out),
            args.variant,
            args.weighting,
            cfg,
            args.limit,
            args.quiet,
            args.test_flip,
            _threshold_split(args.thresholds),
            args.init,
        )
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"weights: {path}")
    return 0


def _threshold_split(choice: str) -> str | None:
    return None if choice == "none" else choice


def cmd_mcfa_test_time(args: argparse.Namespace) -> int:
    from .mcfa_recipe import tune_test_time

    if _no_data(Path(args.data)):
        return 2
    try:
        meta = tune_test_time(
            args.weights,
            Path(args.data),
            Path(args.out),
            args.test_flip,
            _threshold_split(args.thresholds),
            ensemble=tuple(args.ensemble),
        )
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    members = len(meta.get("ensemble_of", [args.weights]))
    thresholds = meta.get("thresholds_from", "none")
    print(f"weights: {args.out} ({members} network(s), flip: {meta['flip']}, thresholds: {thresholds})")
    return 0


def cmd_train_dcrn(args: argparse.Namespace) -> int:
    from ..models.dcrn import DCRNConfig
    from .dcrn import DCRNTrainConfig
    from .dcrn_data import AUGMENTS
    from .dcrn_recipe import PHASES, run_phase

    if _no_data(Path(args.data)):
        return 2
    try:
        cfg = DCRNConfig(
            crop_size=args.crop_size,
            gen_width=args.gen_width,
            gen_hidden=args.gen_hidden,
            lrn_width=args.lrn_width,
            history=args.history,
            alpha2=args.alpha2,
        )
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    tcfg = replace(
        DCRNTrainConfig(
            seed=args.seed,
            threads=args.threads,
            micro_batches=args.micro_batches,
            augment=AUGMENTS[args.augment],
            sources=tuple(args.sources),
            init=args.init or "",
        ),
        **_given(
            gen_epochs=args.epochs,
            lrn_epochs=args.lrn_epochs,
            episodes=args.episodes,
            batch_size=args.batch_size,
            q_weight=args.q_weight,
            lr=args.lr,
        ),
    )
    phases = PHASES if args.phase == "all" else (args.phase,)
    try:
        for phase in phases:
            report = run_phase(phase, Path(args.data), Path(args.out), cfg, tcfg, args.device, args.limit, args.quiet)
            print(f"{phase}: {report}")
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def cmd_train_rcnn(args: argparse.Namespace) -> int:
    from ..data.formats import read_dataset
    from ..models.cascade_heads import HeadsConfig
    from ..models.cascade_rcnn import RCNNConfig
    from ..models.proposal_source import ProposalSource
    from .rcnn import RCNNTrainConfig
    from .rcnn_recipe import FACE_DATA_NOTE, SOURCES, WIDER_DATA_NOTE, coco_class_names, face_records, run_rcnn

    train = _given(iterations=args.iterations, batch_size=args.batch_size, lr=args.lr, min_box=args.min_box)
    sizes = _given(min_size=args.min_size, max_size=args.max_size, crop_side=args.crop_side)
    heads = HeadsConfig(**_given(rois_per_image=args.rois))
    variant = {
        "proposals": args.proposals,
        "proposal_source": ProposalSource(weights=args.proposal_weights),
        "features": args.features,
        "conventions": (SOURCES if args.wider else SOURCES[1:]) if args.conventions else (),
    }
    try:
        if args.format:
            if not args.annotations:
                raise ValueError("--format needs --annotations")
            records = read_dataset(args.format, args.annotations, args.images)
            names = coco_class_names(Path(args.annotations)) if args.format == "coco" else None
            note = f"{args.format} data from {args.annotations}"
        else:
            records, names = face_records(Path(args.data), "train", wider=args.wider), None  # one split for every seed
            note = WIDER_DATA_NOTE if args.wider else FACE_DATA_NOTE
        records = records[: args.limit] if args.limit else records
        path = run_rcnn(
            records,
            Path(args.out),
            RCNNConfig(mode=args.mode, heads=heads, **variant, **sizes),
            RCNNTrainConfig(
                rpn=args.rpn, seed=args.seed, threads=args.threads, micro_batches=args.micro_batches, **train
            ),
            note,
            names,
            args.quiet,
            args.steps,
            args.init,
        )
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"weights: {path}")
    return 0


def _common_options(parser: argparse.ArgumentParser, out: str) -> None:
    parser.add_argument(
        "--data",
        default=str(Path(__file__).resolve().parents[3] / "shared" / "data"),
        help="the shared data folder (face_mask, caltech_webfaces, celeba, mtfl)",
    )
    parser.add_argument("--out", default=out, help="samples, checkpoints, logs and the packed weights")
    parser.add_argument("--epochs", type=int, default=0, help="epochs (per stage; default: the recipe's)")
    parser.add_argument("--samples-per-epoch", type=int, default=0)
    parser.add_argument(
        "--reuse", metavar="RUN_DIR", help="take samples (and earlier stages) from this run when --out lacks them"
    )
    parser.add_argument("--limit", type=int, default=0, help="images per dataset (0: all)")
    parser.add_argument(
        "--tuning-images",
        type=int,
        default=150,
        help="images of each detection set's val-tune half for choosing the stage thresholds",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    _micro_batches_option(parser)
    parser.add_argument("-q", "--quiet", action="store_true")


def _dcrn_data_options(parser: argparse.ArgumentParser) -> None:
    """`facecascade train dcrn`'s data, augmentation and starting-point options."""
    from .dcrn_recipe import LANDMARK_SOURCES

    parser.add_argument(
        "--sources",
        nargs="+",
        choices=list(LANDMARK_SOURCES),
        default=list(LANDMARK_SOURCES),
        help="landmark sets to train and validate on (default: all: MTFL LFW, CelebA, MTFL AFLW)",
    )
    parser.add_argument(
        "--augment",
        choices=["paper", "pose"],
        default="pose",
        help="paper: rotation +-20 deg, scale 10 %%, shift 6 %%, mirror; pose (default): rotation +-30, "
        "scale 15 %%, shift 10 %%, out-of-plane turns +-25 deg (half the faces), colour, blur, JPEG, occluders",
    )
    parser.add_argument(
        "--init", default=None, metavar="WEIGHTS", help="start GEN and LRN from these DCRN weights (e.g. dcrn)"
    )
    parser.add_argument("--lr", type=float, default=0.0, help="Adam learning rate (default 1e-3)")


def _mcfa_options(parser: argparse.ArgumentParser) -> None:
    """`facecascade train mcfa`'s regularisation and thread options (defaults: the first recipe's)."""
    from .mcfa import AUGMENTS

    parser.add_argument(
        "--label-smoothing",
        type=smoothing,
        default=0.0,
        metavar="EPS",
        help="attribute targets 0 / 1 become EPS/2, 1-EPS/2 (in [0, 0.5); default 0)",
    )
    parser.add_argument(
        "--augment",
        choices=sorted(AUGMENTS),
        default="standard",
        help="standard: shift 8 %%, scale 0.9-1.1, mirror; strong: shift 12 %%, scale 0.85-1.15, "
        "rotation +-10 deg, colour jitter (half the crops), blur (20 %%), occluding rectangles (25 %%) "
        "(default standard)",
    )
    parser.add_argument("--threads", type=positive_int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--lr", type=float, default=0.0, help="AdamW peak learning rate (default 0.002)")
    parser.add_argument(
        "--init",
        metavar="WEIGHTS",
        help="start from this MCFA checkpoint's weights (a warm restart: a new cosine cycle of --epochs)",
    )
    _test_time_options(parser)


def _test_time_options(parser: argparse.ArgumentParser) -> None:
    """The test-time options written into an MCFA checkpoint's meta (`facecascade.attributes.tta`)."""
    from .mcfa_recipe import THRESHOLD_SPLITS

    parser.add_argument(
        "--test-flip",
        action="store_true",
        help="the checkpoint averages each crop's probabilities with its mirror image's at inference",
    )
    parser.add_argument(
        "--thresholds",
        choices=("none", *THRESHOLD_SPLITS),
        default="none",
        help="per-attribute decision thresholds chosen on this CelebA split and stored in the checkpoint "
        "(val-tune: then report on val-report; default none: 0.5)",
    )


def _micro_batches_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--micro-batches",
        type=int,
        default=0,
        metavar="M",
        help="cut each batch into M parts, shared out over the torchrun processes (default: one per "
        "process); the same M gives the same training on any number of processes (docs: Distributed training)",
    )


def _add_mcfa_test_time_parser(what: argparse._SubParsersAction) -> None:
    """``facecascade train mcfa-test-time``: an MCFA checkpoint's test-time options, no training."""
    test_time = what.add_parser(
        "mcfa-test-time",
        help="switch on an MCFA checkpoint's test-time options (flip, decision thresholds)",
        description="Copy an MCFA checkpoint to --out with flip averaging and / or per-attribute "
        "decision thresholds chosen on a CelebA split in its meta (no training).",
    )
    test_time.add_argument("weights", help="an MCFA checkpoint (or a registered name)")
    test_time.add_argument("--out", required=True, help="the new checkpoint (may be the same file)")
    test_time.add_argument(
        "--ensemble",
        nargs="+",
        default=[],
        metavar="WEIGHTS",
        help="more MCFA checkpoints (same architecture) averaged with the first: one checkpoint, one pass each",
    )
    test_time.add_argument(
        "--data",
        default=str(Path(__file__).resolve().parents[3] / "shared" / "data"),
        help="the shared data folder (celeba)",
    )
    _test_time_options(test_time)
    test_time.set_defaults(func=cmd_mcfa_test_time)


def add_train_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``facecascade train``."""
    parser = sub.add_parser("train", help="train models")
    what = parser.add_subparsers(dest="what", required=True)
    mtcnn = what.add_parser(
        "mtcnn",
        help="train the MTCNN cascade (P-Net, R-Net, O-Net) on the shared data",
        description="Train MTCNN by the paper's recipe; stages resume from out/<stage>/last.pt.",
    )
    mtcnn.add_argument("--stage", choices=["pnet", "rnet", "onet", "all"], default="all")
    _common_options(mtcnn, "runs/mtcnn")
    mtcnn.add_argument("--no-ohem", action="store_true", help="ablation: no online hard sample mining")
    mtcnn.add_argument("--no-landmarks", action="store_true", help="ablation: no landmark task")
    mtcnn.add_argument(
        "--no-low-res", action="store_true", help="ablation: no low-resolution augmentation of R-Net and O-Net samples"
    )
    mtcnn.add_argument(
        "--ignore-unlabeled",
        metavar="WEIGHTS",
        help="weights (e.g. mtcnn-original, as for the shipped mtcnn) whose confident detections that no "
        "annotation covers become ignored faces when sampling (missing annotations)",
    )
    mtcnn.add_argument(
        "--ignore-min-score",
        type=fraction,
        default=MIN_SCORE,
        metavar="P",
        help=f"face probability from which --ignore-unlabeled's detections count as faces "
        f"(default {MIN_SCORE}; 0.95 for mtcnn-original, model card)",
    )
    mtcnn.add_argument(
        "--init",
        metavar="WEIGHTS",
        help="start each stage from this cascade's (fine-tuning, e.g. mtcnn-original; default: from scratch)",
    )
    mtcnn.add_argument(
        "--lr",
        type=float,
        default=0.0,
        help="AdamW peak learning rate of each stage (default 1e-3; lower to fine-tune lightly)",
    )
    mtcnn.add_argument("--no-wider", action="store_true", help="ablation: no WIDER FACE train images")
    mtcnn.add_argument(
        "--all-box-sources",
        action="store_true",
        help="ablation: every source's faces train box regression (default: WIDER FACE's and face_mask's only)",
    )
    mtcnn.add_argument(
        "--no-box-conventions", action="store_true", help="ablation: face_mask's boxes as annotated (not WIDER's)"
    )
    mtcnn.set_defaults(func=distributed(cmd_train_mtcnn))
    interpolate = what.add_parser(
        "interpolate",
        help="a cascade between a starting one and its fine-tuned copy (WiSE-FT weight interpolation)",
        description="Each named stage becomes (1 - ALPHA) * start + ALPHA * tuned (docs: models/mtcnn.md); "
        "the other stages and the meta are the tuned cascade's.",
    )
    interpolate.add_argument("--start", required=True, metavar="WEIGHTS", help="the cascade fine-tuning started from")
    interpolate.add_argument("--tuned", required=True, metavar="WEIGHTS", help="the fine-tuned cascade")
    interpolate.add_argument(
        "--alpha", nargs="+", required=True, metavar="STAGE=ALPHA", help="e.g. onet=0.5 (1: the tuned stage)"
    )
    interpolate.add_argument(
        "--settings",
        nargs="*",
        default=[],
        metavar="FIELD=NUMBER",
        help="engine settings the weights carry (meta['settings']; MTCNNConfig fields; added to the tuned "
        "weights' own), e.g. box_voting=0.6",
    )
    interpolate.add_argument(
        "--data",
        default=None,
        help="the shared data folder: choose the stage thresholds anew on its val-tune halves "
        "(as `train mtcnn` does; default: keep the tuned weights' thresholds)",
    )
    interpolate.add_argument("--out", required=True, help="the cascade file to write")
    interpolate.set_defaults(func=cmd_train_interpolate)
    joint = what.add_parser(
        "joint",
        help="train the 12/24/48 cascade as one network (FaceCraft)",
        description="Joint training of the cascade from trained stages; resumes from "
        "out/joint/last.pt (out/separate/ with --separate).",
    )
    _common_options(joint, "runs/joint")
    joint.add_argument(
        "--init",
        default="mtcnn",
        help="stages to start from: named weights or a `facecascade train mtcnn` checkpoint (default: mtcnn)",
    )
    joint.add_argument("--lr", type=float, default=0.0, help="SGD learning rate (default: 0.001, the paper's)")
    joint.add_argument(
        "--separate",
        action="store_true",
        help="baseline: fine-tune the three stages separately (no shared features), same loop",
    )
    joint.add_argument("--no-landmarks", action="store_true", help="ablation: no landmark task in any branch")
    joint.set_defaults(func=distributed(cmd_train_joint))
    from .mcfa import VARIANTS

    mcfa = what.add_parser(
        "mcfa",
        help="train the MCFA attribute cascade (S/M/L_Net) on CelebA",
        description="Train one MCFA variant; resumes from out/<variant>-<weighting>/last.pt.",
    )
    _common_options(mcfa, "runs/mcfa")
    mcfa.add_argument(
        "--variant",
        choices=list(VARIANTS),
        default="mcfa",
        help="tasks trained with the attributes: mcfa (all), fac (none), fll+fac, fd+fac",
    )
    mcfa.add_argument("--weighting", choices=["dynamic", "equal"], default="dynamic")
    mcfa.add_argument("--box-weight", type=float, default=0.0, help="box loss weight (default 1)")
    mcfa.add_argument("--landmark-weight", type=float, default=0.0, help="landmark loss weight (default 1)")
    _mcfa_options(mcfa)
    mcfa.set_defaults(func=distributed(cmd_train_mcfa))
    _add_mcfa_test_time_parser(what)
    rcnn = what.add_parser(
        "rcnn",
        help="train a two-stage detector (Cascade R-CNN or a Table 1 baseline)",
        description="Train Cascade R-CNN (or --mode baseline|iterative|integral) on the "
        "face sets' training split, or on --format/--annotations data; resumes "
        "from out/<mode>-<rpn>/last.pt and packs out/<mode>-<rpn>.pt.",
    )
    rcnn.add_argument(
        "--data",
        default=str(Path(__file__).resolve().parents[3] / "shared" / "data"),
        help="the shared data folder (face_mask, caltech_webfaces)",
    )
    rcnn.add_argument("--out", default="runs/rcnn")
    rcnn.add_argument("--mode", choices=["cascade", "baseline", "iterative", "integral"], default="cascade")
    rcnn.add_argument(
        "--rpn",
        choices=["joint", "separate", "frozen"],
        default="joint",
        help="RPN and heads trained end to end, or one after the other (FaceCraft §5), or the heads alone on "
        "the backbone and RPN of --init (frozen)",
    )
    rcnn.add_argument("--init", default=None, help="weights whose backbone and RPN the model starts from")
    rcnn.add_argument(
        "--proposals",
        choices=["rpn", "mtcnn"],
        default="rpn",
        help="the detector's own RPN, or boxes of the shipped MTCNN cascade refined by the heads (FaceCraft)",
    )
    rcnn.add_argument(
        "--proposal-weights",
        default="mtcnn",
        metavar="WEIGHTS",
        help="the MTCNN weights that make the proposals (default mtcnn; the shipped heads: mtcnn-2026-12-05)",
    )
    rcnn.add_argument(
        "--features",
        choices=["fpn", "crops"],
        default="fpn",
        help="RoI features from the shared ResNet-FPN, or a small CNN on each box's crop (--proposals mtcnn)",
    )
    rcnn.add_argument("--conventions", action="store_true", help="a box regressor per source (its box convention)")
    rcnn.add_argument("--wider", action="store_true", help="WIDER FACE train among the training sets")
    rcnn.add_argument("--crop-side", type=int, default=0, help="--features crops: crop side in pixels (default 48)")
    rcnn.add_argument("--rois", type=int, default=0, help="sampled boxes per image and stage (default 256)")
    rcnn.add_argument("--min-box", type=float, default=0.0, help="faces smaller are not learned (default 4 px)")
    rcnn.add_argument("--iterations", type=int, default=0, help="SGD steps (default 4000)")
    rcnn.add_argument("--batch-size", type=int, default=0, help="images per step (default 2)")
    rcnn.add_argument("--lr", type=float, default=0.0, help="learning rate (default 0.02)")
    rcnn.add_argument("--min-size", type=int, default=0, help="shorter image side when resized (default 512)")
    rcnn.add_argument("--max-size", type=int, default=0, help="longer side at most (default 768)")
    rcnn.add_argument("--format", default=None, help="another dataset: its format (e.g. coco) ...")
    rcnn.add_argument("--annotations", default=None, help="... its annotations ...")
    rcnn.add_argument("--images", default=None, help="... and its images (all of it is trained on)")
    rcnn.add_argument(
        "--steps",
        type=int,
        default=0,
        help="stop after this many steps in this call (a time-boxed session; rerun to continue)",
    )
    rcnn.add_argument("--limit", type=int, default=0, help="training images (0: all)")
    rcnn.add_argument("--seed", type=int, default=0)
    rcnn.add_argument("--threads", type=int, default=0)
    rcnn.add_argument("--device", default="cpu", help=argparse.SUPPRESS)  # the detector trains on the CPU
    _micro_batches_option(rcnn)
    rcnn.add_argument("-q", "--quiet", action="store_true")
    rcnn.set_defaults(func=distributed(cmd_train_rcnn))
    dcrn = what.add_parser(
        "dcrn",
        help="train the DCRN landmark aligner (GEN, LRN-m, DDPG) on MTFL + CelebA",
        description="Train DCRN phase by phase (gen, lrn = GEN-LRN-m, lrn-mean = the LRN-m "
        "baseline, ddpg = DCRN); each resumes from out/<phase>/last.pt and is "
        "skipped when its checkpoint exists.",
    )
    _common_options(dcrn, "runs/dcrn")
    dcrn.add_argument("--phase", choices=["all", "gen", "lrn", "lrn-mean", "ddpg"], default="all")
    dcrn.add_argument("--lrn-epochs", type=int, default=0, help="epochs of the LRN phases (--epochs: GEN's)")
    dcrn.add_argument("--episodes", type=int, default=0, help="DDPG episode batches")
    dcrn.add_argument("--batch-size", type=int, default=0)
    dcrn.add_argument("--crop-size", type=int, default=64, help="face crop side (multiple of 16)")
    dcrn.add_argument("--gen-width", type=int, default=16, help="GEN's first-block channels (paper: 64)")
    dcrn.add_argument("--gen-hidden", type=int, default=256, help="GEN's fc width (paper: 512)")
    dcrn.add_argument("--lrn-width", type=int, default=16, help="LRN patch-encoder channels per point")
    dcrn.add_argument("--history", type=int, default=128, help="history-of-actions feature size (paper: 512)")
    dcrn.add_argument("--alpha2", type=float, default=3.0, help="stop rule: ||a||_1 < alpha2 * K px of a 256 crop")
    dcrn.add_argument(
        "--q-weight",
        type=float,
        default=0.0,
        help="DDPG actor loss: weight of the critic term against the supervised anchor (default 0.1)",
    )
    dcrn.add_argument("--threads", type=int, default=0, help="torch threads (0: leave as is)")
    _dcrn_data_options(dcrn)
    dcrn.set_defaults(func=distributed(cmd_train_dcrn))
