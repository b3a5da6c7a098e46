"""Reading ahead and writing behind in one background thread, so file work overlaps
computing.

Polars and pyarrow release the GIL while they decode, encode, compress and write, so on
a machine with two cores a thread writing the previous part of a table runs while the
main thread validates the next. At most one item waits in either direction, so memory
holds at most one part more than without the thread.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Generator, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
_DONE = object()


def read_ahead(items: Iterator[T]) -> Generator[T, None, None]:
    """`items`, with the next one produced in a background thread while the caller works
    on the current one. An exception in the producer is raised to the caller."""
    handoff: queue.Queue[object] = queue.Queue(maxsize=1)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                if not _put(handoff, item, stop):
                    return
            _put(handoff, _DONE, stop)
        except BaseException as error:  # handed to the consumer, raised there
            _put(handoff, _Failure(error), stop)

    producer = threading.Thread(target=produce, name="read-ahead", daemon=True)
    producer.start()
    try:
        while (item := handoff.get()) is not _DONE:
            if isinstance(item, _Failure):
                raise item.error
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        producer.join()


class WriteBehind:
    """Calls run one at a time in a background thread, in the order given; `submit`
    waits for the previous call first, and `wait` for the last (both re-raise a failure)."""

    def __init__(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="write-behind")
        self._pending: Future[None] | None = None

    def submit(self, call: Callable[[], None]) -> None:
        self.wait()
        self._pending = self._executor.submit(call)

    def wait(self) -> None:
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()

    def close(self) -> None:
        """Wait for the last call (ignoring its failure: the caller is giving up) and stop."""
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.exception()  # waits; its failure, if any, was or will be reported elsewhere
        self._executor.shutdown()


class _Failure:
    def __init__(self, error: BaseException) -> None:
        self.error = error


def _put(handoff: queue.Queue[object], item: object, stop: threading.Event) -> bool:
    """Hand `item` over unless the consumer stopped (False)."""
    while not stop.is_set():
        try:
            handoff.put(item, timeout=0.1)
            return True
        except queue.Full:
            continue
    return False
