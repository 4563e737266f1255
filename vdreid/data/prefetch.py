"""Input preparation overlapped with the step: a one-item-ahead thread.

``ahead(items)`` yields what ``items`` yields, in order, while a background
thread already computes the next ``depth`` items. The training loop feeds
it the batch assembler (gather from the decoded-image cache, augment), so
batch k + 1 is built while the backend runs step k: numpy's copies release
the GIL, and a GPU step returns before the device finishes. Each batch is
a pure function of (seed, epoch, step, rank) (vdreid.data.batch), so
building it early changes nothing in the run. An exception raised while
producing an item is raised again where that item would have been
yielded; closing the generator early stops the thread.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")

_DONE = object()


def ahead(items: Iterable[T], depth: int = 1) -> Iterator[T]:
    """``items`` in order, computed up to ``depth`` items ahead in a thread."""
    slots: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def offer(entry: tuple) -> bool:
        """Queue ``entry`` once there is room; False if the consumer has left."""
        while not stop.is_set():
            try:
                slots.put(entry, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not offer((item, None)):
                    return
            offer((_DONE, None))
        except BaseException as exc:  # handed to the consumer, raised there
            offer((_DONE, exc))

    worker = threading.Thread(target=produce, name="vdreid-prefetch", daemon=True)
    worker.start()
    try:
        while True:
            item, error = slots.get()
            if error is not None:
                raise error
            if item is _DONE:
                return
            yield item
    finally:
        stop.set()
        worker.join()
