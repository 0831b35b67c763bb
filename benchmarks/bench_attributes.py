"""Per-face cost of the attribute model on the CPU: one network on the crop alone against the
shipped test-time options (its ensemble members, each on the crop and its mirror), in one run.

    python benchmarks/bench_attributes.py [--weights mcfa] [--threads 1] [--faces 256]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from facecascade.attributes import AttributeClassifier


def ms_per_face(classifier: AttributeClassifier, crops: np.ndarray, repeats: int = 3) -> float:
    classifier._probabilities(crops[:64])  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        classifier._probabilities(crops)
        times.append(time.perf_counter() - start)
    return 1000 * min(times) / len(crops)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", default="mcfa")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--faces", type=int, default=256)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    crops = np.random.default_rng(0).integers(0, 256, (args.faces, 96, 96, 3), dtype=np.uint8)
    shipped = AttributeClassifier(args.weights)
    single = AttributeClassifier(args.weights, flip=False, thresholds=False)
    single.members = single.members[:1]
    base = ms_per_face(single, crops)
    full = ms_per_face(shipped, crops)
    print(f"{args.threads} thread(s), {args.faces} crops of 96 x 96")
    print(f"one network, no mirror: {base:.2f} ms per face")
    print(
        f"shipped ({len(shipped.members)} networks, mirror {shipped.flip}): {full:.2f} ms per face ({full / base:.1f}x)"
    )


if __name__ == "__main__":
    main()
