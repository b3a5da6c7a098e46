"""Read-ahead and write-behind (node/background.py): every item, in order, and a failure
on either side reaches the caller."""

from __future__ import annotations

import functools
from collections.abc import Iterator

import pytest

from node.background import WriteBehind, read_ahead


def test_read_ahead_yields_every_item_in_order() -> None:
    assert list(read_ahead(iter(range(50)))) == list(range(50))


def test_a_failure_while_reading_ahead_is_raised_to_the_reader() -> None:
    def failing() -> Iterator[int]:
        yield 1
        raise OSError("disk gone")

    items = read_ahead(failing())
    assert next(items) == 1
    with pytest.raises(OSError, match="disk gone"):
        next(items)


def test_a_reader_that_stops_early_stops_the_producer() -> None:
    produced: list[int] = []

    def counting() -> Iterator[int]:
        for item in range(1000):
            produced.append(item)
            yield item

    items = read_ahead(counting())
    assert next(items) == 0
    items.close()  # joins the producer
    assert len(produced) <= 3  # the current item, one waiting, one being handed over


def test_write_behind_runs_calls_in_order_and_reports_a_failure() -> None:
    done: list[int] = []
    behind = WriteBehind()
    for item in range(5):
        behind.submit(functools.partial(done.append, item))
    behind.wait()
    assert done == list(range(5))

    def fail() -> None:
        raise OSError("no space")

    behind.submit(fail)
    with pytest.raises(OSError, match="no space"):
        behind.submit(lambda: done.append(99))
    behind.close()
    assert 99 not in done
