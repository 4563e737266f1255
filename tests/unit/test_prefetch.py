"""vdreid.data.prefetch.ahead: the same items in order, built ahead, errors and early exits."""

from __future__ import annotations

import threading
import time

import pytest

from vdreid.data.prefetch import ahead


def test_yields_every_item_in_order():
    assert list(ahead(iter(range(50)), depth=2)) == list(range(50))
    assert list(ahead([])) == []


def test_the_next_item_is_built_while_the_consumer_works():
    built: list[int] = []

    def items():
        for i in range(3):
            built.append(i)
            yield i

    stream = ahead(items())
    assert next(stream) == 0
    deadline = time.monotonic() + 5
    while len(built) < 2 and time.monotonic() < deadline:  # item 1 is made without asking
        time.sleep(0.01)
    assert built[:2] == [0, 1]
    assert list(stream) == [1, 2]


def test_an_error_while_producing_is_raised_at_its_place():
    def items():
        yield 1
        raise ValueError("bad batch 2")

    stream = ahead(items())
    assert next(stream) == 1
    with pytest.raises(ValueError, match="bad batch 2"):
        next(stream)


def test_leaving_early_stops_the_thread():
    def endless():
        i = 0
        while True:
            yield i
            i += 1

    before = threading.active_count()
    stream = ahead(endless(), depth=1)
    assert [next(stream) for _ in range(3)] == [0, 1, 2]
    stream.close()
    assert threading.active_count() == before
