"""The dynamic batcher with stand-in runners: batches fill up to ``max_batch`` within
``max_wait_ms``, pipelines are run apart, a failing batch fails only its requests, a full queue
refuses at once, a request whose client went away does not disturb the worker."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Hashable

import numpy as np
import pytest

from facecascade.serve.batcher import DynamicBatcher, QueueFull
from facecascade.structures import Faces


class Recorder:
    """A runner that answers each image with one face whose score is the image's first pixel."""

    def __init__(self, gate: threading.Event | None = None, fail_on: Hashable = None) -> None:
        self.batches: list[tuple[Hashable, list[int]]] = []
        self.gate, self.fail_on = gate, fail_on

    def __call__(self, key: Hashable, images: list[np.ndarray]) -> list[Faces]:
        if self.gate is not None:
            self.gate.wait(5)
        self.batches.append((key, [int(im[0, 0, 0]) for im in images]))
        if key == self.fail_on:
            raise RuntimeError("this pipeline is broken")
        return [Faces(np.array([[0, 0, 1, 1]]), np.array([im[0, 0, 0] / 255])) for im in images]


def _image(value: int) -> np.ndarray:
    return np.full((4, 4, 3), value, np.uint8)


def _run(batcher: DynamicBatcher, coroutine_factory):
    batcher.start()
    try:
        return asyncio.run(coroutine_factory())
    finally:
        batcher.stop()


def test_concurrent_requests_become_batches_and_keys_run_apart():
    recorder = Recorder()
    batcher = DynamicBatcher(lambda: recorder, max_batch=4, max_wait_ms=300, max_queue=16)

    async def requests():
        jobs = [batcher.submit("a" if i != 2 else "b", _image(i)) for i in range(6)]
        return await asyncio.gather(*jobs)

    results = _run(batcher, requests)
    assert [float(r.scores[0]) * 255 for r in results] == pytest.approx(range(6))  # each its own answer
    assert recorder.batches == [("a", [0, 1, 3]), ("b", [2]), ("a", [4, 5])]  # 4 taken, then the rest


def test_a_failing_batch_fails_its_requests_only():
    recorder = Recorder(fail_on="bad")
    batcher = DynamicBatcher(lambda: recorder, max_batch=8, max_wait_ms=100)

    async def requests():
        return await asyncio.gather(
            batcher.submit("bad", _image(1)), batcher.submit("good", _image(2)), return_exceptions=True
        )

    bad, good = _run(batcher, requests)
    assert isinstance(bad, RuntimeError) and "broken" in str(bad)
    assert isinstance(good, Faces) and len(good) == 1


def test_a_full_queue_refuses_at_once_and_drains():
    gate = threading.Event()
    batcher = DynamicBatcher(lambda: Recorder(gate), max_batch=1, max_wait_ms=0, max_queue=2)

    async def requests():
        first = asyncio.ensure_future(batcher.submit("k", _image(1)))
        await asyncio.sleep(0.05)
        for _ in range(500):  # until the worker has taken it (it is then held at the gate)
            if batcher.depth() == 0:
                break
            await asyncio.sleep(0.01)
        assert batcher.depth() == 0
        waiting = [asyncio.ensure_future(batcher.submit("k", _image(v))) for v in (2, 3)]
        await asyncio.sleep(0.05)
        assert batcher.depth() == 2
        with pytest.raises(QueueFull, match="limit is 2"):
            await batcher.submit("k", _image(4))
        gate.set()
        return await asyncio.gather(first, *waiting)

    assert len(_run(batcher, requests)) == 3


def test_a_request_whose_client_left_does_not_disturb_the_worker():
    gate = threading.Event()
    recorder = Recorder(gate)
    batcher = DynamicBatcher(lambda: recorder, max_batch=2, max_wait_ms=0)

    async def requests():
        gone = asyncio.ensure_future(batcher.submit("k", _image(1)))
        await asyncio.sleep(0.05)
        gone.cancel()  # what the server does when the client disconnects
        gate.set()
        await asyncio.sleep(0.1)
        return await batcher.submit("k", _image(2))

    assert float(_run(batcher, requests).scores[0]) == pytest.approx(2 / 255)


def test_a_runner_that_cannot_load_fails_start():
    def broken():
        raise FileNotFoundError("no weights here")

    batcher = DynamicBatcher(broken, workers=2)
    with pytest.raises(FileNotFoundError, match="no weights"):
        batcher.start()
