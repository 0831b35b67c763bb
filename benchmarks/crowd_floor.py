"""How fast can the standard path be on a VGA photo and keep its answers? A floor from measured parts.

Every O-Net window that passes O-Net's threshold goes into the final NMS and, with box voting, into the
mean of its face's box, so dropping any of them can change the answer; windows that fail it change
nothing. This script measures, per weights and photo (1 thread, median of ``--calls`` calls after 3
warm-up calls): the time of each stage, the windows reaching R-Net and O-Net, the O-Net windows that
pass, and

    floor = prepare + P-Net + passing x (R-Net ms per window + O-Net ms per window)

the time of the cascade if R-Net and O-Net ran on the passing windows alone (an oracle that knew
them in advance, at the per-window cost the engine has now). A target below the floor needs cheaper
networks or fewer P-Net cells, not a better choice of windows:

    python benchmarks/crowd_floor.py --weights mtcnn mtcnn-original mtcnn-joint --setting refined90:nms_refined=0.9

(``--setting``: the first weights again with `MTCNNConfig` changes, written as in ``stage_times.py``.)
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_detect import bench_images
from stage_times import parse_setting, timed_stages


def passing_windows(cascade, image: np.ndarray) -> int:
    """O-Net windows above O-Net's threshold: the cascade with its final NMS and voting switched off
    (intersection over the smaller box is never above 1) returns every one of them."""
    keep_all = cascade.reconfigure(nms_output=1.0, box_voting=0.0)
    return len(keep_all.detect([image])[0])


def floor_row(cascade, image: np.ndarray, calls: int) -> dict[str, float]:
    """The measured parts of the module docstring's floor, and the floor."""
    runs = [timed_stages(cascade, image) for _ in range(calls + 3)][3:]
    prepare, pnet, rnet, onet = (statistics.median(r[0][i] for r in runs) for i in range(4))
    into_r, into_o, _ = runs[-1][1]
    passing = passing_windows(cascade, image)
    per_window = rnet / max(into_r, 1) + onet / max(into_o, 1)
    return {
        "prepare": prepare,
        "pnet": pnet,
        "rnet": rnet,
        "onet": onet,
        "total": prepare + pnet + rnet + onet,
        "into_r": into_r,
        "into_o": into_o,
        "passing": passing,
        "floor": prepare + pnet + passing * per_window,
    }


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", nargs="+", default=["mtcnn"])
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[1].parent / "shared" / "data")
    parser.add_argument("--calls", type=int, default=12)
    parser.add_argument("--setting", nargs="*", default=[], metavar="NAME:key=value,...")
    args = parser.parse_args(argv)

    from facecascade import FaceDetector

    torch.set_num_threads(1)
    print(f"1 thread, median of {args.calls} calls; windows: into R-Net / into O-Net / passing O-Net")
    print("| weights | image | prepare + P-Net ms | R-Net ms | O-Net ms | total ms | windows | floor ms |")
    print("|---|---|---:|---:|---:|---:|---|---:|")
    cascades = {weights: FaceDetector(weights=weights).cascade for weights in args.weights}
    for text in args.setting:
        name, settings = parse_setting(text)
        cascades[f"{args.weights[0]} {name}"] = cascades[args.weights[0]].reconfigure(**settings)
    rows = []
    for label, cascade in cascades.items():
        for image_name, image in bench_images(args.data).items():
            row = floor_row(cascade, np.asarray(image), args.calls)
            rows.append({"weights": label, "image": image_name, **row})
            print(
                f"| {label} | {image_name} | {row['prepare'] + row['pnet']:.1f} | {row['rnet']:.1f} | "
                f"{row['onet']:.1f} | {row['total']:.1f} | {row['into_r']} / {row['into_o']} / {row['passing']} | "
                f"{row['floor']:.1f} |",
                flush=True,
            )
    return rows


if __name__ == "__main__":
    main()
