"""One training recipe by 1 process and by ``torchrun --nproc_per_node=N`` processes, in one run.

Both runs cut each global batch into the same number of parts (``--micro-batches N``), so they take
the same steps; what differs is the wall time. The single process gets all the machine's threads,
each of the N processes ``threads / N`` (torchrun's default is 1). The largest weight difference
is printed: with different thread counts the float sums inside the convolutions round differently
and long runs drift apart (docs/distributed-training.md); with equal threads the runs are equal.

    python3 benchmarks/bench_ddp.py --out runs/bench-ddp -- \\
        train mtcnn --stage rnet --reuse RUN --epochs 1 --samples-per-epoch 768000 -q

(``RUN``: an earlier ``facecascade train mtcnn`` run with R-Net's samples and a trained P-Net.)
Prints a Markdown table; each run's log stays in ``OUT/<1-process|N-processes>/``.
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import time
from pathlib import Path

import torch


def run(command: list[str], out: Path, processes: int, threads: int) -> float:
    """Seconds of wall time of ``facecascade <command> --out out --micro-batches processes``."""
    launcher = [sys.executable]
    if processes > 1:
        launcher += ["-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}"]
    args = [*launcher, "-m", "facecascade", *command, "--out", str(out), "--micro-batches", str(processes)]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    began = time.perf_counter()
    subprocess.run(args, check=True, env=env, stdout=subprocess.DEVNULL)
    return time.perf_counter() - began


def train_seconds(out: Path) -> float:
    """The training loop's own seconds: the last training row of the log (before validation)."""
    logs = sorted(out.rglob("log.csv"))
    rows = [r for r in csv.DictReader(logs[-1].open()) if r["split"] == "train"]
    return float(rows[-1]["seconds"])


def largest_difference(a: Path, b: Path) -> float:
    """The largest parameter difference between the two runs' last checkpoints."""
    first = torch.load(sorted(a.rglob("last.pt"))[-1], weights_only=True)
    second = torch.load(sorted(b.rglob("last.pt"))[-1], weights_only=True)
    nets = [s.get("net", s.get("model")) for s in (first, second)]
    return max(float((nets[0][k].double() - nets[1][k].double()).abs().max()) for k in nets[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="a new folder for both runs")
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- then the facecascade train command")
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    cores = os.cpu_count() or 1
    n = args.processes
    single, multi = Path(args.out) / "1-process", Path(args.out) / f"{n}-processes"
    wall = {single: run(command, single, 1, cores), multi: run(command, multi, n, max(1, cores // n))}
    print(f"`facecascade {' '.join(command)}`, {cores} cores, torch {torch.__version__}\n")
    print("| run | threads per process | wall time (s) | training loop (s) | speed-up (loop) |")
    print("|---|---:|---:|---:|---:|")
    base = train_seconds(single)
    for folder, processes in ((single, 1), (multi, n)):
        loop = train_seconds(folder)
        threads = cores if processes == 1 else max(1, cores // n)
        print(f"| {folder.name} | {threads} | {wall[folder]:.1f} | {loop:.1f} | {base / loop:.2f}x |")
    print(f"\nlargest weight difference between the two runs: {largest_difference(single, multi):.2e}")


if __name__ == "__main__":
    main()
