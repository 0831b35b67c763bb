"""Per-stage time and window counts of the cascade for engine settings, on the VGA benchmark images.

Each setting is ``NAME:key=value,key=value`` over `facecascade.detect.mtcnn.MTCNNConfig` fields
(numbers, true/false, strings, or tuples of numbers written a/b/c); calls are interleaved across settings, 1 thread,
median of ``--calls`` after 3 warm-up calls. This is where the docs' per-stage figures of the fast path
and of patch reuse come from:

    python benchmarks/stage_times.py --weights mtcnn std \\
        fast:suppression=block,scale_factor=0.58,nms_image=0.5 \\
        fast+reuse:suppression=block,scale_factor=0.58,nms_image=0.5,patch_reuse=true \\
        std+reuse:patch_reuse=true
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_detect import bench_images


def _value(text: str):
    """``"true"``/``"false"`` -> bool, then int, float, or the string itself."""
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def parse_setting(text: str) -> tuple[str, dict]:
    """``"name:a=1,b=true,c=block,t=0.4/0.1/0.2,s=pnet/onet"`` -> ``("name", {"a": 1, "b": True,
    "c": "block", "t": (0.4, 0.1, 0.2), "s": ("pnet", "onet")})``; ``s=onet/`` is a 1-tuple."""
    name, _, body = text.partition(":")
    settings = {}
    for item in filter(None, body.split(",")):
        key, _, value = item.partition("=")
        settings[key] = tuple(_value(v) for v in value.split("/") if v) if "/" in value else _value(value)
    return name, settings


def timed_stages(cascade, image: np.ndarray) -> tuple[list[float], list[int]]:
    """One detection of ``image``: ms of prepare, P-Net, R-Net and O-Net, and the windows after
    P-Net, after R-Net and after O-Net (the faces)."""
    with torch.inference_mode():
        marks = [time.perf_counter()]
        batch = cascade.prepare([image])
        marks.append(time.perf_counter())
        proposed = cascade.propose(batch)
        marks.append(time.perf_counter())
        refined = cascade.refine(batch, proposed)
        marks.append(time.perf_counter())
        final, _ = cascade.output(batch, refined)
        marks.append(time.perf_counter())
    return list(np.diff(marks) * 1000), [len(proposed.boxes), len(refined.boxes), len(final.boxes)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("settings", nargs="+", help="NAME:key=value,... (NAME alone: the defaults)")
    parser.add_argument("--weights", default="mtcnn")
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[1].parent / "shared" / "data")
    parser.add_argument("--calls", type=int, default=12)
    args = parser.parse_args()

    from facecascade import FaceDetector

    torch.set_num_threads(1)
    cascades = {}
    for text in args.settings:
        name, settings = parse_setting(text)
        cascades[name] = FaceDetector(weights=args.weights).cascade.reconfigure(**settings)
    print(f"weights {args.weights!r}, 1 thread, median of {args.calls} interleaved calls")
    print("| image | setting | prepare ms | P-Net ms | R-Net ms | O-Net ms | total ms | windows after P / R / O |")
    print("|---|---|---:|---:|---:|---:|---:|---|")
    for image_name, image in bench_images(args.data).items():
        array = np.asarray(image)
        times = {name: [] for name in cascades}
        windows = {}
        for call in range(args.calls + 3):
            for name, cascade in cascades.items():
                ms, counts = timed_stages(cascade, array)
                if call >= 3:
                    times[name].append(ms)
                windows[name] = " / ".join(map(str, counts))
        for name, rows in times.items():
            stages = [statistics.median(r[i] for r in rows) for i in range(4)]
            cells = " | ".join(f"{v:.1f}" for v in stages)
            print(f"| {image_name} | {name} | {cells} | {sum(stages):.1f} | {windows[name]} |", flush=True)


if __name__ == "__main__":
    main()
