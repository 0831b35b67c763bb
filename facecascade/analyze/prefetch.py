"""Read ahead in a background thread: decoding the next images overlaps the network's work."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")
_DONE = object()


class _Raised:
    def __init__(self, exc: BaseException):
        self.exc = exc


def _put(q: queue.Queue, item: object, stop: threading.Event) -> bool:
    """Put ``item`` unless the consumer has gone; False when it has."""
    while not stop.is_set():
        try:
            q.put(item, timeout=0.05)
            return True
        except queue.Full:
            continue
    return False


def prefetch(items: Iterable[T], depth: int = 4) -> Iterator[T]:
    """``items`` in the same order, produced up to ``depth`` ahead by a background thread.

    An exception raised while producing is re-raised here, where the item would have come;
    leaving the loop early stops the thread.
    """
    if depth < 1:
        yield from items
        return
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                if not _put(q, item, stop):
                    return
        except BaseException as exc:  # handed to the consumer, which re-raises it
            _put(q, _Raised(exc), stop)
            return
        _put(q, _DONE, stop)

    thread = threading.Thread(target=produce, name="facecascade-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            item = q.get()
            if item is _DONE:
                return
            if isinstance(item, _Raised):
                raise item.exc
            yield item
    finally:
        stop.set()
        thread.join(timeout=5)
