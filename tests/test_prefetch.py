"""Reading ahead in a thread: same order, errors where they happened, early exit stops it."""

import threading
import time

import pytest

from facecascade.analyze.prefetch import prefetch


def test_order_is_kept():
    assert list(prefetch(range(100), depth=3)) == list(range(100))
    assert list(prefetch(iter([]), depth=2)) == []
    assert list(prefetch(range(5), depth=0)) == list(range(5))


def test_exception_is_raised_where_the_item_would_come():
    def items():
        yield 1
        yield 2
        raise OSError("disk gone")

    got = []
    with pytest.raises(OSError, match="disk gone"):
        for x in prefetch(items(), depth=4):
            got.append(x)
    assert got == [1, 2]


def test_it_reads_ahead_and_stops_when_the_consumer_leaves():
    produced = []

    def items():
        for i in range(1000):
            produced.append(i)
            yield i

    it = prefetch(items(), depth=2)
    assert next(it) == 0
    time.sleep(0.2)
    assert 2 <= len(produced) <= 5  # ahead by about the queue depth, not to the end
    it.close()
    assert not any(t.name == "facecascade-prefetch" and t.is_alive() for t in threading.enumerate())
    assert len(produced) < 10
