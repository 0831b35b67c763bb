"""Load test of ``facecascade serve`` over loopback: throughput and latency, batched vs unbatched.

For each server setting the script starts ``facecascade serve`` as a subprocess on a free port
(``--threads`` PyTorch threads, uvicorn log level ``warning``), waits for ``GET /healthz``, warms
it up with one request per image, then for each client count runs that many client threads (one
``httpx.Client`` each, one connection each) that ``POST /v1/<endpoint>`` the photos as raw
``image/jpeg`` bodies, back to back, for ``--seconds`` or until ``--max-requests`` have been sent.
A client checks the clock before each request, so the requests in flight at the end are still
answered and counted; the window ends when the last client has its answer.

The images: the PASCAL VOC photos of ``--data``/dlib_faces (375 to 500 px, 1 to 7 faces) and the
first ``--mask-images`` of face_mask/images (crowded street scenes, 300 to 600 px), cycled; each
client starts at another image so that batches mix them.

One markdown row per (setting, clients):

* req/s: 200 answers per second of the window; p50/p95/p99: latency of the 200 answers (ms,
  client side: send to last byte);
* errors: answers other than 200 by status, and requests without an answer (timeouts, resets)
  by exception type;
* sent / answered: every request sent must get exactly one answer (``ok`` when they match);
* mean batch: images per cascade batch over the window, from the server's ``/metrics``
  (``facecascade_batch_size_sum`` / ``_count``, differences before and after);
* CPU % server / clients: CPU time of the server process and of this one (the clients) over the
  window, in % of one core (Linux /proc); their sum near 100 x the number of cores means the
  machine is saturated, so throughput can only grow by spending less CPU per request;
* healthy after: the server process still runs and ``/healthz`` answers 200.

Before each setting's rows, an HTML comment line gives the seconds from starting the server to
``/healthz`` 200 (models loaded and warmed) and the server's time for the first photo.

Settings: ``default`` (the server's defaults: ``--max-batch 8 --max-wait-ms 5``, two workers of
one thread each on a 2-core CPU), ``batched`` (the same batching, one worker), ``unbatched``
(``--max-batch 1 --max-wait-ms 0``, one worker: one image at a time through the cascade), or
``NAME:MAX_BATCH:MAX_WAIT_MS`` and optionally ``:WORKERS`` (batch worker threads, each with its
models; default 1). ``--tiny-queue`` (on unless ``--no-tiny-queue``) adds a row with
``--max-queue 2`` (the defaults otherwise) and ``--tiny-clients`` clients: the server must answer the excess with 503 (+
``Retry-After``), never time out or crash; these clients wait ``min(Retry-After, --max-backoff)``
after a 503 (all other rows: no waiting). After the table, the ratio of batched to unbatched
throughput at each client count.

The clients run on the same machine as the server (and share its cores): on a small machine
they take CPU time from it, more so with many clients. Default run: 3 settings x 3 client counts
x 10 s + the tiny-queue row + 4 server starts: about 2 minutes.

    python benchmarks/load_serve.py [--clients 1 8 32] [--seconds 10] [--max-requests 5000]
        [--endpoint analyze|detect] [--threads 0] [--settings default batched unbatched] [--no-tiny-queue]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import os
import platform
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import torch

from facecascade import __version__
from facecascade.io import image_files

# name: (max batch, max wait ms, max queue, workers); workers 0: the server's default (2 on CPU)
PRESETS = {"default": (8, 5.0, 64, 0), "batched": (8, 5.0, 64, 1), "unbatched": (1, 0.0, 64, 1)}
SERVE = [sys.executable, "-c", "from facecascade.cli import main; raise SystemExit(main())", "serve"]


@dataclass(frozen=True)
class Setting:
    name: str
    max_batch: int
    max_wait_ms: float
    max_queue: int = 64
    workers: int = 1


def parse_setting(text: str) -> Setting:
    """``batched``, ``unbatched`` or ``NAME:MAX_BATCH:MAX_WAIT_MS[:WORKERS]``."""
    if text in PRESETS:
        return Setting(text, *PRESETS[text])
    parts = text.split(":")
    if len(parts) not in (3, 4):
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected one of {sorted(PRESETS)} or NAME:MAX_BATCH:MAX_WAIT_MS[:WORKERS]"
        )
    workers = int(parts[3]) if len(parts) == 4 else 1
    return Setting(parts[0], int(parts[1]), float(parts[2]), workers=workers)


def ratios(rates: dict[tuple[str, int], float], clients: list[int]) -> None:
    """Each setting's throughput over ``unbatched`` (one request at a time), per client count."""
    names = [n for n in dict.fromkeys(name for name, _ in rates) if n not in ("unbatched", "tiny queue")]
    if not any(name == "unbatched" for name, _ in rates) or not names:
        return
    print("\n| clients | unbatched req/s | " + " | ".join(f"{n} req/s (x unbatched)" for n in names) + " |")
    print("|---:|---:|" + "---:|" * len(names))
    for count in clients:
        base = rates["unbatched", count]
        cells = [f"{rates[n, count]:.1f} ({rates[n, count] / base:.2f}x)" for n in names]
        print(f"| {count} | {base:.1f} | " + " | ".join(cells) + " |")


def bench_images(data: Path, mask_images: int) -> list[tuple[str, bytes]]:
    """(name, JPEG bytes) of the VOC photos of dlib_faces and the first ``mask_images`` of face_mask."""
    voc = [p for p in image_files(data / "dlib_faces", recursive=False) if re.fullmatch(r"\d{4}_\d{6}", p.stem)]
    files = voc + image_files(data / "face_mask" / "images")[:mask_images]
    if len(files) < 8:
        raise SystemExit(f"found {len(files)} images under {data}; need at least 8 (see --data)")
    return [(p.name, p.read_bytes()) for p in files]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def server(setting: Setting, args: argparse.Namespace, log: Path) -> Iterator[tuple[str, subprocess.Popen]]:
    """A running ``facecascade serve`` with ``setting``: (base URL, process); stopped on exit."""
    port = free_port()
    command = [
        *SERVE,
        "--port", str(port),
        "--max-batch", str(setting.max_batch),
        "--max-wait-ms", str(setting.max_wait_ms),
        "--max-queue", str(setting.max_queue),
        "--workers", str(setting.workers),
        "--threads", str(args.threads),
        "--log-level", "warning",
    ]  # fmt: skip
    with log.open("w") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    began = time.monotonic()
    try:
        deadline = began + args.start_timeout
        while True:
            if process.poll() is not None:
                raise SystemExit(f"server {setting.name} exited ({process.returncode}):\n{log.read_text()[-3000:]}")
            if time.monotonic() > deadline:
                raise SystemExit(
                    f"server {setting.name} not ready in {args.start_timeout} s:\n{log.read_text()[-3000:]}"
                )
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            time.sleep(0.2)
        print(f"<!-- {setting.name}: /healthz 200 after {time.monotonic() - began:.1f} s -->", flush=True)
        yield base, process
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def batch_totals(base: str) -> tuple[float, float]:
    """(sum, count) of the server's facecascade_batch_size histogram."""
    text = httpx.get(f"{base}/metrics", timeout=10).text
    found = dict(re.findall(r"^facecascade_batch_size_(sum|count) (\S+)$", text, re.MULTILINE))
    return float(found.get("sum", 0)), float(found.get("count", 0))


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` (all its threads) from /proc; NaN elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


def healthy(base: str, process: subprocess.Popen) -> bool:
    if process.poll() is not None:
        return False
    try:
        return httpx.get(f"{base}/healthz", timeout=10).status_code == 200
    except httpx.HTTPError:
        return False


@dataclass
class Tally:
    """What the clients of one cell saw (shared, under ``lock``)."""

    sent: int = 0
    answered: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)  # seconds, 200 answers
    lock: threading.Lock = field(default_factory=threading.Lock)

    def take_ticket(self, limit: int) -> bool:
        with self.lock:
            if self.sent >= limit:
                return False
            self.sent += 1
            return True


def client(
    url: str,
    images: list[tuple[str, bytes]],
    start: int,
    tally: Tally,
    stop_at: float,
    backoff: bool,
    args: argparse.Namespace,
) -> None:
    """Post the images from ``start`` on, one at a time, until ``stop_at`` or the request limit."""
    i = start
    with httpx.Client(timeout=args.request_timeout) as http:
        while time.monotonic() < stop_at and tally.take_ticket(args.max_requests):
            _, body = images[i % len(images)]
            i += 1
            began = time.perf_counter()
            try:
                response = http.post(url, content=body, headers={"Content-Type": "image/jpeg"})
            except httpx.HTTPError as exc:  # no answer: counted as sent, not answered
                with tally.lock:
                    tally.statuses[type(exc).__name__] += 1
                continue
            seconds = time.perf_counter() - began
            with tally.lock:
                tally.answered += 1
                tally.statuses[str(response.status_code)] += 1
                if response.status_code == 200:
                    tally.latencies.append(seconds)
            if response.status_code == 503 and backoff:
                time.sleep(min(float(response.headers.get("retry-after", "1")), args.max_backoff))


def percentile(values: list[float], q: int) -> float:
    if len(values) < 2:
        return values[0] if values else float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


@dataclass
class Result:
    """One row of the table."""

    rate: float  # 200 answers per second
    p50: float
    p95: float
    p99: float
    errors: str
    sent: int
    answered: int
    mean_batch: float
    cpu: str  # "server / clients" in % of one core
    healthy: bool


def run_cell(
    base: str,
    process: subprocess.Popen,
    clients: int,
    images: list[tuple[str, bytes]],
    backoff: bool,
    args: argparse.Namespace,
) -> Result:
    url = f"{base}/v1/{args.endpoint}"
    sum0, count0 = batch_totals(base)
    tally = Tally()
    server_cpu, own = cpu_seconds(process.pid), os.times()
    began = time.monotonic()
    stop_at = began + args.seconds
    threads = [
        threading.Thread(target=client, args=(url, images, k * len(images) // clients, tally, stop_at, backoff, args))
        for k in range(clients)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - began
    server_cpu = cpu_seconds(process.pid) - server_cpu
    client_cpu = sum(os.times()[:2]) - sum(own[:2])
    sum1, count1 = batch_totals(base)
    ms = [s * 1000 for s in tally.latencies]
    return Result(
        rate=tally.statuses.get("200", 0) / elapsed,
        p50=percentile(ms, 50),
        p95=percentile(ms, 95),
        p99=percentile(ms, 99),
        errors=", ".join(f"{k}: {v}" for k, v in sorted(tally.statuses.items()) if k != "200") or "none",
        sent=tally.sent,
        answered=tally.answered,
        mean_batch=(sum1 - sum0) / (count1 - count0) if count1 > count0 else float("nan"),
        cpu=f"{100 * server_cpu / elapsed:.0f} / {100 * client_cpu / elapsed:.0f}",
        healthy=healthy(base, process),
    )


def row(setting: Setting, clients: int, r: Result) -> str:
    match = "ok" if r.sent == r.answered else "**MISMATCH**"
    return (
        f"| {setting.name} | {setting.max_batch} | {setting.max_wait_ms:g} | {setting.max_queue} "
        f"| {setting.workers} | {clients} | {r.rate:.1f} | {r.p50:.0f} | {r.p95:.0f} | {r.p99:.0f} | {r.errors} "
        f"| {r.sent} / {r.answered} {match} | {r.mean_batch:.2f} | {r.cpu} | {'yes' if r.healthy else '**NO**'} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[1].parent / "shared" / "data")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each cell (default 10)")
    parser.add_argument("--max-requests", type=int, default=5000, help="most requests per cell (default 5000)")
    parser.add_argument("--endpoint", choices=["analyze", "detect"], default="analyze")
    parser.add_argument(
        "--threads", type=int, default=0, help="PyTorch threads of the server (0, default: cores / workers)"
    )
    parser.add_argument(
        "--settings",
        type=parse_setting,
        nargs="*",
        default=[parse_setting(name) for name in ("default", "batched", "unbatched")],
        help="default, batched, unbatched or NAME:MAX_BATCH:MAX_WAIT_MS[:WORKERS] (default: all three; "
        "none: the tiny-queue row only)",
    )
    parser.add_argument(
        "--tiny-queue", action=argparse.BooleanOptionalAction, default=True, help="add the --max-queue 2 row (on)"
    )
    parser.add_argument("--tiny-clients", type=int, default=32, help="clients of the tiny-queue row (32)")
    parser.add_argument("--max-backoff", type=float, default=0.1, help="tiny-queue: longest wait after a 503 (s)")
    parser.add_argument("--mask-images", type=int, default=7, help="face_mask images besides dlib_faces' (7)")
    parser.add_argument("--request-timeout", type=float, default=60.0, help="client timeout per request (s)")
    parser.add_argument("--start-timeout", type=float, default=180.0, help="wait for /healthz at most (s)")
    args = parser.parse_args()

    images = bench_images(args.data, args.mask_images)
    load = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    print(
        f"facecascade {__version__}, torch {torch.__version__}, Python {platform.python_version()}; "
        f"{os.cpu_count()} CPUs; {datetime.date.today()}; load average before {load}; "
        f"POST /v1/{args.endpoint}, {len(images)} images cycled; server --threads {args.threads}; "
        f"{args.seconds:g} s or {args.max_requests} requests per row\n"
    )
    header = (
        "| setting | max batch | max wait ms | max queue | workers | clients | req/s | p50 ms | p95 ms | p99 ms "
        "| errors | sent / answered | mean batch | CPU % server / clients | healthy after |"
    )
    print(header)
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|---:|---:|---|")
    plan = [(s, args.clients, False) for s in args.settings]
    if args.tiny_queue:
        batch, wait, _, workers = PRESETS["default"]
        tiny = Setting("tiny queue", batch, wait, max_queue=2, workers=workers)
        plan.append((tiny, [args.tiny_clients], True))
    rates: dict[tuple[str, int], float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for setting, client_counts, backoff in plan:
            with server(setting, args, Path(tmp) / "serve.log") as (base, process):
                warm = httpx.Client(timeout=args.request_timeout)
                for name, body in images:  # warm-up: every image once, and the first-call costs
                    answer = warm.post(
                        f"{base}/v1/{args.endpoint}", content=body, headers={"Content-Type": "image/jpeg"}
                    )
                    if name == images[0][0]:
                        print(f"<!-- {setting.name}: first request {answer.headers.get('X-Process-Time-Ms')} ms -->")
                warm.close()
                for clients in client_counts:
                    result = run_cell(base, process, clients, images, backoff, args)
                    rates[setting.name, clients] = result.rate
                    print(row(setting, clients, result), flush=True)
    ratios(rates, args.clients)
    print(f"\nload average after: {' / '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
