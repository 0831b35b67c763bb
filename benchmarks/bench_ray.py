"""Images/s of ``facecascade analyze --ray`` (a pool of actors, 1 torch thread each) beside the
single-process command, on the same files with the same settings (the default pipeline: detector
and attributes), all in one run.

Each mode is the whole command, end to end, as a user runs it (``facecascade.cli.main``): models
loaded, every file read and decoded, JSON lines written. The modes:

* ``single, default threads``: ``facecascade analyze FILES --json OUT`` (torch's own thread count);
* ``single, 2 threads``: the same with ``--threads 2``;
* ``--ray, new local Ray``: ``--ray --actors N --threads 1``: the command starts a local Ray
  instance (and stops it), then starts its actors;
* ``--ray, Ray already up``: the same joining a Ray instance this script started beforehand (what
  a cluster run pays: actors and their models, no Ray start).

The images: the first ``--images`` of face_mask/images (crowded street scenes, 1 to 30 faces);
their bytes are read once before timing so every mode finds them in the page cache.

    nice python benchmarks/bench_ray.py [--images 500] [--actors 2] [--batch-size 8]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import platform
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch

from facecascade.cli import main as cli
from facecascade.io import image_files


def timed(run: Callable[[], int]) -> float:
    """Seconds of one run; a non-zero exit code is an error (stderr kept quiet: Ray logs there)."""
    start = time.perf_counter()
    with contextlib.redirect_stderr(io.StringIO()) as err:
        code = run()
    if code != 0:
        raise SystemExit(f"the run exited with {code}:\n{err.getvalue()[-2000:]}")
    return time.perf_counter() - start


@contextlib.contextmanager
def ray_up(actors: int) -> Iterator[None]:
    """A local Ray instance, started before the timing begins (the command joins it)."""
    import ray

    ray.init(num_cpus=max(os.cpu_count() or 1, actors), include_dashboard=False)
    try:
        yield
    finally:
        ray.shutdown()


def modes(files: list[str], out: Path, args: argparse.Namespace) -> dict[str, tuple[str, Callable[[], int], Any]]:
    """Name -> (threads column, the run, the context it runs in)."""
    base = ["analyze", *files, "--json", str(out / "r.jsonl"), "--batch-size", str(args.batch_size), "-q"]
    ray = [*base, "--ray", "--actors", str(args.actors), "--threads", "1"]
    default_threads = torch.get_num_threads()
    per_actor = f"1 per actor x {args.actors}"

    def single(threads: int) -> Callable[[], int]:
        def run() -> int:
            torch.set_num_threads(threads)  # `--threads` would stay set for the next mode
            return cli(base)

        return run

    return {
        "single process, default threads": (str(default_threads), single(default_threads), contextlib.nullcontext()),
        "single process, `--threads 2`": ("2", single(2), contextlib.nullcontext()),
        f"`--ray`, new local Ray, {args.actors} actors": (per_actor, lambda: cli(ray), contextlib.nullcontext()),
        f"`--ray`, Ray already up, {args.actors} actors": (per_actor, lambda: cli(ray), ray_up(args.actors)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[1].parent / "shared" / "data")
    parser.add_argument("--images", type=int, default=500)
    parser.add_argument("--actors", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=8)
    args = parser.parse_args()

    files = [str(p) for p in image_files(args.data / "face_mask" / "images")[: args.images]]
    for path in files:
        Path(path).read_bytes()  # into the page cache
    print(
        f"{len(files)} face_mask images; default pipeline (detector + attributes), batch size {args.batch_size}; "
        f"torch {torch.__version__}; {os.cpu_count()} CPUs ({platform.processor() or platform.machine()})"
    )
    print("| mode | torch threads | seconds | images/s | vs single process, default threads |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        timed(lambda: cli(["analyze", *files[:8], "--json", str(Path(tmp) / "warm.jsonl"), "-q"]))  # warm-up
        base_rate = None
        for name, (threads, run, context) in modes(files, Path(tmp), args).items():
            with context:
                seconds = timed(run)
            rate = len(files) / seconds
            base_rate = base_rate or rate
            print(f"| {name} | {threads} | {seconds:.1f} | {rate:.1f} | {rate / base_rate:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
