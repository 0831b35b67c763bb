"""Throughput of the full cascade (boxes and 5 landmarks) on batches of VGA photos, per backend.

Images per second for batches of 1 to 256 640x480 photos (made from the shared face_mask and
dlib_faces photos, resized; different photos in a batch), on CUDA by default, for each inference
backend of `FaceDetector`; the MTCNN paper's 99 fps (VGA, Nvidia Titan Black, un-optimised MATLAB;
Zhang et al. 2016, section III-D) is printed as the reference line. Each point: warm-up calls,
then as many timed calls as fit in ``--seconds`` (at least one); CUDA synchronised around each.

    python3 benchmarks/bench_gpu.py                      # CUDA, torch and onnxruntime backends
    python3 benchmarks/bench_gpu.py --device cpu --batches 1 8 --seconds 2   # what CI runs

Prints a Markdown table with the device's name.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

PAPER_FPS = 99.0  # MTCNN (Zhang et al., 2016): VGA images on an Nvidia Titan Black
VGA = (640, 480)


def vga_photos(data: Path, count: int) -> list[np.ndarray]:
    """``count`` different photos (face_mask's, then dlib_faces'), resized to 640x480 RGB."""
    from facecascade.io import image_files

    paths = [*image_files(data / "face_mask" / "images"), *image_files(data / "dlib_faces")]
    if not paths:
        raise SystemExit(f"no photos under {data}: give --data, the shared data folder")
    return [np.asarray(Image.open(p).convert("RGB").resize(VGA)) for p in (paths * count)[:count]]


def synchronize(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def images_per_second(detector, batch: list[np.ndarray], device: str, seconds: float, warmup: int = 2) -> float:
    """Images per second of ``detector.detect(batch)`` after ``warmup`` calls."""
    for _ in range(warmup):
        detector.detect(batch)
    synchronize(device)
    calls, began = 0, time.perf_counter()
    while calls == 0 or time.perf_counter() - began < seconds:
        detector.detect(batch)
        synchronize(device)
        calls += 1
    return calls * len(batch) / (time.perf_counter() - began)


def device_name(device: str) -> str:
    if device.startswith("cuda"):
        return torch.cuda.get_device_name(torch.device(device))
    return f"CPU ({torch.get_num_threads()} threads)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[1].parent / "shared" / "data")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--weights", default="mtcnn")
    parser.add_argument("--backends", nargs="+", default=["torch", "onnxruntime"])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 2, 4, 8, 16, 32, 64, 128, 256])
    parser.add_argument("--seconds", type=float, default=5.0, help="timed seconds per point (at least one call)")
    parser.add_argument("--min-face", type=float, default=20.0)
    args = parser.parse_args()

    from facecascade import FaceDetector

    photos = vga_photos(args.data, max(args.batches))
    where = f"{device_name(args.device)}, torch {torch.__version__}"
    print(f"{where}, weights {args.weights!r}, min face {args.min_face:g} px")
    print(f"reference: the MTCNN paper's {PAPER_FPS:g} fps (VGA, Titan Black)\n")
    print("| backend | batch | images/s | x paper's 99 fps |")
    print("|---|---:|---:|---:|")
    for backend in args.backends:
        for size in args.batches:
            options = {} if backend == "torch" else {"backend": backend}
            detector = FaceDetector(
                args.weights, device=args.device, min_face_size=args.min_face, batch_size=size, **options
            )
            rate = images_per_second(detector, photos[:size], args.device, args.seconds)
            print(f"| {backend} | {size} | {rate:.1f} | {rate / PAPER_FPS:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
