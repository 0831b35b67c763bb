"""Folder throughput of ``facecascade analyze`` (images/s), 1 and 2 threads, beside facenet-pytorch.

The images: the photos of ../shared/data/dlib_faces and the first ``--mask-images`` of
face_mask/images (mixed sizes, 1 to 30 faces). Each mode reads the files from disk and decodes them:

* ``facecascade detect``: what ``facecascade analyze DIR --attributes none`` does (`run_files`:
  decoding a batch ahead in a thread, batches of ``--batch-size``, the detector alone);
* ``facecascade full``: every shipped part (detector, DCRN aligner, attributes), as
  ``facecascade analyze DIR --aligner dcrn`` runs them, plus a 112 x 112 aligned crop per face, as
  a recognition pipeline needs;
* ``facenet-pytorch``: the peer's ``MTCNN(keep_all=True).detect`` over the same files, one
  image per call (its batch mode needs equal sizes), original weights.

Modes alternate within each round so machine noise hits all alike; the median of ``--rounds``
is reported with the ratio to facenet-pytorch.

    python benchmarks/bench_analyze.py [--threads 1 2] [--rounds 3] [--batch-size 8]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch
from PIL import Image

from facecascade import FaceAnalyzer
from facecascade.analyze.analyzer import ALIGNER_WEIGHTS, ATTRIBUTE_WEIGHTS
from facecascade.analyze.runner import run_files
from facecascade.io import image_files


def bench_files(data: Path, mask_images: int) -> list[Path]:
    return image_files(data / "dlib_faces", recursive=False) + image_files(data / "face_mask" / "images")[:mask_images]


def facecascade_run(files: list[Path], analyzer: FaceAnalyzer, crops: bool) -> Callable[[], int]:
    def on_record(record, image) -> None:
        if crops:
            record.faces.crops(image, size=112)

    def run() -> int:
        return run_files(
            files, analyzer.analyze_arrays, on_record, batch_size=analyzer.batch_size, progress=False
        ).analysed

    return run


def facenet_run(files: list[Path]) -> Callable[[], int]:
    from facenet_pytorch import MTCNN

    mtcnn = MTCNN(keep_all=True, min_face_size=20, device="cpu")

    def run() -> int:
        for path in files:
            with Image.open(path) as img:
                mtcnn.detect(img.convert("RGB"))
        return len(files)

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[1].parent / "shared" / "data")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--mask-images", type=int, default=36)
    parser.add_argument("--batch-size", type=int, default=8)
    args = parser.parse_args()

    files = bench_files(args.data, args.mask_images)
    full_parts = {"aligner": next(iter(ALIGNER_WEIGHTS), None), "attributes": next(iter(ATTRIBUTE_WEIGHTS), None)}
    detect_only = FaceAnalyzer(aligner=None, attributes=None, batch_size=args.batch_size)
    modes = {
        "facenet-pytorch": facenet_run(files),
        "facecascade detect": facecascade_run(files, detect_only, crops=False),
        "facecascade full": facecascade_run(files, FaceAnalyzer(batch_size=args.batch_size, **full_parts), crops=True),
    }
    print(
        f"torch {torch.__version__}; {len(files)} images; full pipeline parts: {full_parts} + 112 px aligned crops; "
        f"median of {args.rounds} rounds"
    )
    print("| threads | " + " | ".join(f"{m} img/s" for m in modes) + " | detect / facenet | full / facenet |")
    print("|---|" + "---|" * (len(modes) + 2))
    for threads in args.threads:
        torch.set_num_threads(threads)
        for run in modes.values():
            run()  # warm-up
        rates: dict[str, list[float]] = {m: [] for m in modes}
        for _ in range(args.rounds):
            for mode, run in modes.items():
                start = time.perf_counter()
                count = run()
                rates[mode].append(count / (time.perf_counter() - start))
        med = {m: statistics.median(r) for m, r in rates.items()}
        base = med["facenet-pytorch"]
        print(
            f"| {threads} | "
            + " | ".join(f"{med[m]:.1f}" for m in modes)
            + f" | {med['facecascade detect'] / base:.2f}x | {med['facecascade full'] / base:.2f}x |",
            flush=True,
        )


if __name__ == "__main__":
    main()
