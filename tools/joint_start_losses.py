"""Validation losses of a joint cascade *before* training: the starting row of the joint model
card's loss table (the trained rows come from each run's ``log.csv``).

    python tools/joint_start_losses.py runs/joint [--init mtcnn] [--windows 20000]

Uses the run's joint sample sets (``<run>/samples/joint/{train,val}``), the regression scale fitted
on its training windows as `facecascade train joint` does, and the same 20,000 evenly spread
validation windows as the training log.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from facecascade.train.joint import JointConfig, JointTask, RegressionScale
from facecascade.train.joint_recipe import initial_cascade
from facecascade.train.samples import load_samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path)
    parser.add_argument("--init", default="mtcnn")
    parser.add_argument("--windows", type=int, default=JointConfig().train.val_samples)
    args = parser.parse_args()
    samples = args.run / "samples" / "joint"
    task = JointTask(JointConfig(), RegressionScale.fit(load_samples(samples / "train")), torch.device("cpu"))
    metrics = task.evaluate(initial_cascade(args.init, share=True), load_samples(samples / "val"), args.windows)
    print(" ".join(f"{k} {v:.4f}" for k, v in metrics.items()))


if __name__ == "__main__":
    main()
