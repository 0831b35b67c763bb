"""A few steps of every data-parallel trainer on toy data, for tests/test_ddp.py.

Run as ``python tests/ddp_worker.py OUT ...`` (one process) or under ``torchrun --nproc_per_node=N``
(N processes, gloo); rank 0 saves each trained network's parameters to ``OUT/<trainer>.pt``.
``--epochs`` (``--steps`` for the detector, whose run is iteration-based) says how far this call
trains; a second call with a larger value resumes from the checkpoints in ``OUT``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository, for `tests.*`

from facecascade.distributed.ddp import barrier, current_world, init_from_env, leave
from facecascade.models import PNet
from facecascade.models.cascade_rcnn import CascadeRCNN, RCNNConfig
from facecascade.models.dcrn import DCRN
from facecascade.models.mcfa import MCFANet
from facecascade.train.dcrn import DCRNTrainConfig, fit_supervised
from facecascade.train.joint import JointConfig, JointTask, RegressionScale, make_optimizer
from facecascade.train.mcfa import MCFATrainConfig, fit_mcfa
from facecascade.train.rcnn import RCNNTrainConfig, train_rcnn
from facecascade.train.trainer import TrainConfig, fit, train_stage
from tests.test_cascade_rcnn import SMALL as RCNN_SMALL
from tests.test_cascade_rcnn import _squares
from tests.test_dcrn import SMALL as DCRN_SMALL
from tests.test_dcrn import _regions
from tests.test_joint import _cascade, _toy_windows
from tests.test_mcfa import SMALL as MCFA_SMALL
from tests.test_mcfa import _faces
from tests.test_train import _toy_samples

TRAINERS = ("pnet", "joint", "mcfa", "dcrn-gen", "dcrn-lrn", "rcnn")


def pnet(net: torch.nn.Module, out: Path, epochs: int, parts: int) -> None:
    """MTCNN's stage loop (online hard sample mining, low-resolution augmentation)."""
    cfg = TrainConfig(
        epochs=epochs, batch_size=64, samples_per_epoch=192, seed=0, low_res=0.5, low_res_min=6, micro_batches=parts
    )
    train_stage(net, _toy_samples(256, 12, np.random.default_rng(0)), None, cfg, out)


def joint(net: torch.nn.Module, out: Path, epochs: int, parts: int) -> None:
    """The joint cascade (gated branches) in the same loop."""
    samples = _toy_windows(192, np.random.default_rng(0))
    train = TrainConfig(epochs=epochs, batch_size=32, lr=0.01, samples_per_epoch=96, seed=0, micro_batches=parts)
    cfg = JointConfig(train=train)
    optimizer, scheduler = make_optimizer(net, cfg)
    task = JointTask(cfg, RegressionScale.fit(samples), torch.device("cpu"))
    fit(net, samples, None, train, out, task, optimizer, scheduler)


def mcfa(net: torch.nn.Module, out: Path, epochs: int, parts: int) -> None:
    """MCFA (BatchNorm, dropout, augmentation drawn per part)."""
    cfg = MCFATrainConfig(epochs=epochs, batch_size=8, seed=0, micro_batches=parts)
    fit_mcfa(net, _faces(24), _faces(4, seed=1), None, None, cfg, out, quiet=True)


def _dcrn_config(epochs: int, parts: int) -> DCRNTrainConfig:
    return DCRNTrainConfig(batch_size=8, gen_epochs=epochs, lrn_epochs=epochs, lrn_steps=2, micro_batches=parts)


def dcrn_gen(model: torch.nn.Module, out: Path, epochs: int, parts: int) -> None:
    assert isinstance(model, DCRN)
    fit_supervised(model, "gen", _regions(24), _regions(4, seed=1), _dcrn_config(epochs, parts), out, quiet=True)


def dcrn_lrn(model: torch.nn.Module, out: Path, epochs: int, parts: int) -> None:
    """The unrolled LRN phase (GEN frozen inside the wrapped module)."""
    assert isinstance(model, DCRN)
    fit_supervised(model, "lrn", _regions(24), _regions(4, seed=1), _dcrn_config(epochs, parts), out, quiet=True)


def rcnn(model: torch.nn.Module, out: Path, steps: int, parts: int) -> None:
    """Cascade R-CNN: 6 iterations in all, ``steps`` of them in this call."""

    def write_image(name: str, image: np.ndarray) -> Path:
        from PIL import Image

        path = out.parent / "rcnn-images" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if current_world().main and not path.is_file():
            Image.fromarray(image).save(path)
        return path

    records = _squares(write_image, 4)
    barrier()  # rank 0 has written the images
    assert isinstance(model, CascadeRCNN)
    cfg = RCNNTrainConfig(
        iterations=6, batch_size=4, lr=0.01, warmup=1, checkpoint_every=1, log_every=1, seed=0, micro_batches=parts
    )
    train_rcnn(model, records, cfg, out, quiet=True, steps=steps)


RUNS = {"pnet": pnet, "joint": joint, "mcfa": mcfa, "dcrn-gen": dcrn_gen, "dcrn-lrn": dcrn_lrn, "rcnn": rcnn}
NETS = {
    "pnet": lambda: PNet(landmarks=5),
    "joint": _cascade,
    "mcfa": lambda: MCFANet(MCFA_SMALL),
    "dcrn-gen": lambda: DCRN(DCRN_SMALL),
    "dcrn-lrn": lambda: DCRN(DCRN_SMALL),
    "rcnn": lambda: CascadeRCNN(RCNNConfig(mode="cascade", num_classes=2, **RCNN_SMALL)),
}


def parameters(net: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in net.named_parameters()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--micro-batches", type=int, default=0)
    parser.add_argument("--only", nargs="*", default=list(TRAINERS))
    args = parser.parse_args()
    torch.set_num_threads(1)
    world = init_from_env("cpu")
    out = Path(args.out)
    for name in args.only:
        torch.manual_seed(0)
        net = NETS[name]()
        start = parameters(net)
        RUNS[name](net, out / name, 3 * args.epochs if name == "rcnn" else args.epochs, args.micro_batches)
        if world.main:  # the parameters before and after
            torch.save({"start": start, "end": parameters(net)}, out / f"{name}.pt")
    leave()


if __name__ == "__main__":
    main()
