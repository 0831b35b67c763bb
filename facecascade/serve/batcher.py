"""Dynamic batching across requests, the way model servers (Triton, TorchServe) do it.

Requests put one image each on a bounded queue and await a future. Worker threads take the first
waiting image, wait up to ``max_wait_ms`` for more (up to ``max_batch``), and run each group of
images that share a pipeline (same endpoint and options) as one batch through the cascade; each
future then gets its image's faces or the batch's exception. A full queue refuses at once
(`QueueFull`), so load beyond capacity turns into 503 answers instead of a growing backlog.
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..structures import Faces

# Runs one batch: (pipeline key, images) -> one Faces per image. Each worker thread gets its own.
Runner = Callable[[Hashable, list[np.ndarray]], list[Faces]]


class QueueFull(Exception):
    """The queue holds ``max_queue`` images already."""


@dataclass
class _Job:
    key: Hashable
    image: np.ndarray
    future: asyncio.Future[Faces]
    loop: asyncio.AbstractEventLoop
    queued: float = field(default_factory=time.monotonic)


def _settle(future: asyncio.Future[Faces], result: Faces | None, error: BaseException | None) -> None:
    if future.done():  # the client went away and its request was cancelled
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)  # type: ignore[arg-type]  # result is set when error is None


def group_by_key(jobs: list[_Job]) -> list[list[_Job]]:
    """``jobs`` split by pipeline key, in order of first appearance."""
    groups: dict[Hashable, list[_Job]] = {}
    for job in jobs:
        groups.setdefault(job.key, []).append(job)
    return list(groups.values())


class DynamicBatcher:
    """A bounded queue of images and ``workers`` threads that run them in batches.

    Args:
        make_runner: called once in each worker thread for that thread's `Runner` (its own models).
        max_batch, max_wait_ms, max_queue, workers: see `facecascade.serve.ServeConfig`.
        on_batch: called with each batch's size (metrics).
    """

    def __init__(
        self,
        make_runner: Callable[[], Runner],
        max_batch: int = 8,
        max_wait_ms: float = 5.0,
        max_queue: int = 64,
        workers: int = 1,
        on_batch: Callable[[int], Any] | None = None,
    ) -> None:
        self.make_runner, self.max_batch, self.max_wait = make_runner, max_batch, max_wait_ms / 1000
        self.max_queue, self.workers, self.on_batch = max_queue, workers, on_batch
        self._queue: queue.Queue[_Job | None] = queue.Queue()
        self._outstanding = 0  # submitted, not yet answered (read without a lock: a hint only)
        self._threads: list[threading.Thread] = []
        self._ready = threading.Barrier(workers + 1)

    def depth(self) -> int:
        """Images waiting (not yet taken by a worker)."""
        return self._queue.qsize()

    def full(self) -> bool:
        """Whether `submit` would refuse now."""
        return self._queue.qsize() >= self.max_queue

    def start(self) -> None:
        """Start the workers and wait until each has built its runner (its models are loaded)."""
        errors: list[BaseException] = []
        for i in range(self.workers):
            thread = threading.Thread(target=self._work, args=(errors,), name=f"facecascade-batch-{i}", daemon=True)
            thread.start()
            self._threads.append(thread)
        self._ready.wait()
        if errors:
            self.stop()
            raise errors[0]

    def stop(self) -> None:
        """Let the workers finish what they hold and end."""
        for _ in self._threads:
            self._queue.put(None)
        for thread in self._threads:
            thread.join(timeout=30)
        self._threads.clear()

    async def submit(self, key: Hashable, image: np.ndarray) -> Faces:
        """The faces in ``image`` through the pipeline ``key``; `QueueFull` if the queue is full."""
        if self.full():
            raise QueueFull(f"{self._queue.qsize()} images are waiting (the limit is {self.max_queue})")
        loop = asyncio.get_running_loop()
        job = _Job(key, image, loop.create_future(), loop)
        self._outstanding += 1  # on the event loop's thread only
        try:
            self._queue.put(job)
            return await job.future
        finally:
            self._outstanding -= 1

    def _work(self, errors: list[BaseException]) -> None:
        try:
            run = self.make_runner()
        except BaseException as exc:  # reported by start(); the thread ends
            errors.append(exc)
            self._ready.wait()
            return
        self._ready.wait()
        while (batch := self._next_batch()) is not None:
            if self.on_batch is not None:
                self.on_batch(len(batch))
            for group in group_by_key(batch):
                self._run_group(run, group)

    def _next_batch(self) -> list[_Job] | None:
        """The first waiting job and those that arrive within ``max_wait`` (``None``: stop). With no
        other request outstanding nothing can join, so the worker does not wait (a lone client
        would only lose ``max_wait`` per request)."""
        first = self._queue.get()
        if first is None:
            return None
        wait = self.max_wait if self._outstanding > 1 else 0.0
        batch, deadline = [first], time.monotonic() + wait
        while len(batch) < self.max_batch:
            try:
                job = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            if job is None:  # stopping: put the signal back for this worker's next round
                self._queue.put(None)
                break
            batch.append(job)
        return batch

    @staticmethod
    def _run_group(run: Runner, group: list[_Job]) -> None:
        try:
            results = run(group[0].key, [job.image for job in group])
        except Exception as exc:  # the batch's error goes to each of its requests
            for job in group:
                job.loop.call_soon_threadsafe(_settle, job.future, None, exc)
            return
        for job, faces in zip(group, results):
            job.loop.call_soon_threadsafe(_settle, job.future, faces, None)
