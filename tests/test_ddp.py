"""Data-parallel training (`facecascade.distributed.ddp`): every trainer run by ``torchrun`` in 2
gloo processes takes the same steps as 1 process on the same global batches (the same parts,
accumulated), a checkpoint written by 2 processes resumes in 1 (and one written by 1 in 2), rank 0
alone logs, and ``torchrun -m facecascade train`` runs a recipe end to end on real images."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from facecascade.cli import main
from facecascade.distributed.ddp import World, current_world, data_parallel, part_seed, parts_of

from .shared_data import require

WORKER = Path(__file__).with_name("ddp_worker.py")
TRAINERS = ("pnet", "joint", "mcfa", "dcrn-gen", "dcrn-lrn", "rcnn")


def _run(args: list[str], processes: int = 1) -> None:
    """The worker (or a facecascade command, ``-m facecascade``) in 1 process or under torchrun."""
    launcher = [sys.executable]
    if processes > 1:
        launcher += ["-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(launcher + args, capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


def _parameters(folder: Path, name: str) -> dict[str, dict[str, torch.Tensor]]:
    return torch.load(folder / f"{name}.pt", weights_only=True)


# -- the parts of a global batch -------------------------------------------------------------------


def test_parts_cover_the_batch_once_whatever_the_number_of_processes():
    index = np.arange(10) * 3
    for size in (1, 2, 3):
        parts = [p for rank in range(size) for p in parts_of(index, 3, World(rank, size), seed=7, step=4)]
        assert sorted(p.number for p in parts) == [0, 1, 2]
        by_number = {p.number: p for p in parts}
        assert np.concatenate([by_number[m].index for m in range(3)]).tolist() == index.tolist()
        # a part's generator depends on (seed, step, part) only, not on who computes it
        assert by_number[1].rng.random() == np.random.default_rng(part_seed(7, 4, 1)).random()
    assert [p.number for p in parts_of(index, 4, World(1, 2), 0, 0)] == [1, 3]
    assert part_seed(0, 1, 2) != part_seed(0, 2, 1)


def test_one_process_is_a_world_of_one():
    assert current_world() == World() and World().main and not World().distributed
    parallel = data_parallel(torch.nn.Linear(2, 1), micro_batches=3)
    assert parallel.model is parallel.net and parallel.micro_batches == 3


def test_accumulated_parts_give_the_gradient_of_their_mean_loss():
    """One process, 2 parts: the gradient of the mean of the parts' mean losses, by hand."""
    torch.manual_seed(0)
    net = torch.nn.Linear(3, 1, bias=False)
    x, y = torch.randn(6, 3), torch.randn(6, 1)

    def loss_of(model, part):
        i = torch.from_numpy(part.index)
        return {"total": ((model(x[i]) - y[i]) ** 2).mean()}

    terms = data_parallel(net, micro_batches=2).backward(np.arange(6), loss_of, seed=0, step=0)
    expected = torch.zeros(1, 3)
    for half in (slice(0, 3), slice(3, 6)):  # d/dw mean((xw - y)^2) = 2/n * (xw - y)^T x, halved over 2 parts
        expected += (2 / 3 * (x[half] @ net.weight.detach().T - y[half]).T @ x[half]) / 2
    torch.testing.assert_close(net.weight.grad, expected)
    assert terms.names == ("total",) and terms.sums.shape == (1,)


def test_fewer_parts_than_processes_is_refused(monkeypatch, tmp_path):
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert main(["train", "mcfa", "--data", str(tmp_path), "--micro-batches", "1"]) == 2


# -- 2 gloo processes against 1 ------------------------------------------------------------------


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """Epoch 1 of every trainer by 2 processes and by 1 process with 2 parts per batch; then epoch 2
    of each, resumed crosswise (the 2-process checkpoints by 1 process and the other way round)."""
    two, one = tmp_path_factory.mktemp("two"), tmp_path_factory.mktemp("one")
    _run([str(WORKER), str(two), "--epochs", "1"], processes=2)
    _run([str(WORKER), str(one), "--epochs", "1", "--micro-batches", "2"])
    first = {name: (_parameters(two, name), _parameters(one, name)) for name in TRAINERS}
    torch.save(first, two.parent / "epoch1.pt")
    _run([str(WORKER), str(two), "--epochs", "2", "--micro-batches", "2"])  # resumed by 1 process
    _run([str(WORKER), str(one), "--epochs", "2"], processes=2)  # resumed by 2
    return {"two": two, "one": one, "epoch1": two.parent / "epoch1.pt"}


def _assert_same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-5, atol=1e-6, msg=key)


@pytest.mark.slow
@pytest.mark.parametrize("name", TRAINERS)
def test_two_processes_take_the_steps_of_one(runs, name):
    two, one = torch.load(runs["epoch1"], weights_only=True)[name]
    _assert_same(two["start"], one["start"])
    _assert_same(two["end"], one["end"])
    moved = max(float((two["end"][k] - two["start"][k]).abs().max()) for k in two["end"])
    assert moved > 1e-4  # the steps did change the weights


@pytest.mark.slow
@pytest.mark.parametrize("name", TRAINERS)
def test_a_checkpoint_resumes_in_another_number_of_processes(runs, name):
    two = _parameters(runs["two"], name)["end"]  # 2 processes, then 1
    one = _parameters(runs["one"], name)["end"]  # 1 process, then 2
    _assert_same(two, one)
    first = torch.load(runs["epoch1"], weights_only=True)[name][0]["end"]
    assert any(not torch.equal(two[k], first[k]) for k in two)  # epoch 2 did train


@pytest.mark.slow
def test_rank_0_alone_logs_and_checkpoints(runs):
    for folder in (runs["two"], runs["one"]):
        rows = (folder / "pnet" / "log.csv").read_text().splitlines()
        assert rows[0].startswith("epoch,step,split")
        assert [r.split(",")[:3] for r in rows[1:]] == [["1", "0", "train"], ["2", "0", "train"]]
        assert torch.load(folder / "pnet" / "last.pt", weights_only=True)["epoch"] == 2
        assert not list(folder.rglob("*.tmp"))


@pytest.mark.slow
def test_torchrun_runs_a_recipe_from_the_command_line(tmp_path):
    data = require("face_mask").parent
    args = ["-m", "facecascade", "train", "rcnn", "--data", str(data), "--limit", "4", "--iterations", "2"]
    args += ["--batch-size", "2", "--min-size", "96", "--max-size", "128", "--out", str(tmp_path), "-q"]
    _run(args, processes=2)
    assert (tmp_path / "cascade-joint.pt").is_file()
    rows = (tmp_path / "cascade-joint" / "log.csv").read_text().splitlines()
    assert len(rows) == 2 and rows[1].startswith("all,2,train,")
