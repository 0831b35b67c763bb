"""Landmark refinement cost: DCRN's dynamic stop against fixed LRN iterations, same weights, same faces.

Faces: the first ``--faces`` validation-split faces of MTFL (LFW) with their annotated boxes. For each
mode, `FaceAligner.align_arrays` runs over all of them (crops included), in batches of
``--batch-size`` faces; modes alternate within each round, the median of ``--rounds`` is reported
with the NME (inter-ocular) of the same call and the speed ratio to 8 fixed iterations (GEN-LRN-8):

* ``GEN``: ``steps=0``, the global estimate alone;
* ``GEN-LRN-8``: ``steps=8``;
* ``DCRN``: dynamic (Eq. 3 at test time), as shipped.

    python benchmarks/bench_align.py [--weights dcrn] [--threads 1 2] [--rounds 5] [--faces 512]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from facecascade.align import FaceAligner
from facecascade.data.landmarks import normalizers, read_landmark_faces, split_faces
from facecascade.eval.landmark_metrics import nme
from facecascade.io import load_image
from facecascade.structures import Faces


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[1].parent / "shared" / "data")
    parser.add_argument("--weights", default="dcrn")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--faces", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()

    faces = split_faces(read_landmark_faces("mtfl", args.data / "mtfl" / "lfw_5590_landmarks.txt"), "val")[: args.faces]
    images = [load_image(f.image) for f in faces]
    boxes = [Faces(f.box[None], np.ones(1)) for f in faces]
    truth = np.stack([f.points for f in faces])
    norm = normalizers(truth, None, "inter-ocular")
    modes = {
        name: FaceAligner(args.weights, steps=steps, batch_size=args.batch_size)
        for name, steps in (("GEN", 0), ("GEN-LRN-8", 8), ("DCRN", "dynamic"))
    }
    print(
        f"torch {torch.__version__}; {len(faces)} MTFL validation faces, annotated boxes; weights {args.weights}; "
        f"median of {args.rounds} rounds"
    )
    print("| threads | mode | ms / face | mean steps | NME % | speed vs GEN-LRN-8 |")
    print("|---|---|---:|---:|---:|---:|")
    for threads in args.threads:
        torch.set_num_threads(threads)
        times: dict[str, list[float]] = {m: [] for m in modes}
        results = {}
        for round_ in range(args.rounds + 1):  # round 0 warms up
            for mode, aligner in modes.items():
                start = time.perf_counter()
                out = aligner.align_arrays(images, boxes)
                if round_:
                    times[mode].append((time.perf_counter() - start) / len(faces) * 1000)
                results[mode] = out
        base = statistics.median(times["GEN-LRN-8"])
        for mode, out in results.items():
            points = np.concatenate([f.landmarks for f in out])
            steps = np.concatenate([f.iterations for f in out]).mean()
            ms = statistics.median(times[mode])
            print(
                f"| {threads} | {mode} | {ms:.2f} | {steps:.2f} | {100 * nme(points, truth, norm).mean():.2f} | "
                f"{base / ms:.2f}x |",
                flush=True,
            )


if __name__ == "__main__":
    main()
