"""Detection speed: facecascade vs facenet-pytorch's MTCNN, same weights, same images, one run.

Images (640x480, from ../shared/data/dlib_faces as in ../shared/peers.md):
  * ``2008_002506.jpg`` upscaled to 640x480 (3 faces);
  * ``bald_guys.jpg`` resized to 640 px wide and centre-cropped to 480 rows (crowded, ~24 faces).

Both libraries get the same PIL image, ``min_face_size=20`` and the original MTCNN weights.
Calls alternate between the libraries so machine noise hits both alike; the median of
``--calls`` timed calls after ``--warmup`` is reported for each thread count, with the ratio.

    python benchmarks/bench_detect.py [--threads 1 2] [--calls 20] [--data ../shared/data]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch
from PIL import Image


def bench_images(data: Path) -> dict[str, Image.Image]:
    small = Image.open(data / "dlib_faces" / "2008_002506.jpg").convert("RGB").resize((640, 480), Image.BILINEAR)
    crowd = Image.open(data / "dlib_faces" / "bald_guys.jpg").convert("RGB")
    crowd = crowd.resize((640, round(640 * crowd.height / crowd.width)), Image.BILINEAR)
    top = (crowd.height - 480) // 2
    return {"2008_002506 (3 faces)": small, "bald_guys (crowd)": crowd.crop((0, top, 640, top + 480))}


def time_alternating(fns: dict[str, callable], calls: int, warmup: int) -> dict[str, float]:
    """Median milliseconds per call of each function, calls interleaved."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(calls):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append((time.perf_counter() - start) * 1000)
    return {name: statistics.median(ts) for name, ts in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[1].parent / "shared" / "data")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    args = parser.parse_args()

    from facenet_pytorch import MTCNN

    from facecascade import FaceDetector

    ours = FaceDetector(weights="mtcnn-original", min_face_size=20)
    ref = MTCNN(keep_all=True, min_face_size=20, device="cpu")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads available; median of {args.calls} calls")
    print("| image | threads | facenet-pytorch ms | facecascade ms | speed-up | faces (ref / ours) |")
    print("|---|---|---|---|---|---|")
    for name, image in bench_images(args.data).items():
        found_ref = ref.detect(image)[0]
        n_ref = 0 if found_ref is None else len(found_ref)
        n_ours = len(ours.detect(image))
        for threads in args.threads:
            torch.set_num_threads(threads)
            ms = time_alternating({"ref": lambda: ref.detect(image), "ours": lambda: ours.detect(image)},
                                  args.calls, args.warmup)
            print(f"| {name} | {threads} | {ms['ref']:.1f} | {ms['ours']:.1f} | "
                  f"{ms['ref'] / ms['ours']:.2f}x | {n_ref} / {n_ours} |", flush=True)


if __name__ == "__main__":
    main()
