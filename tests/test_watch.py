"""Waiting for new messages from other processes, without polling."""

from __future__ import annotations

import threading
import time

import pytest
import redis

from tests.conftest import MemoryFactory
from tests.test_costs import calls

pytestmark = pytest.mark.on_cluster  # also on a Redis Cluster (tests/conftest.py)


def test_wait_for_new_returns_what_another_writer_appended(memory: MemoryFactory, raw: redis.Redis) -> None:
    mem = memory()
    mem.messages = [{"n": 0}]
    writer = memory(separate=True)

    def append_later() -> None:
        time.sleep(0.3)
        writer.messages.append({"n": 1})
        writer.messages.append({"n": 2})

    thread = threading.Thread(target=append_later)
    before = calls(raw).get("llen", 0)
    thread.start()
    new = mem.messages.wait_for_new(timeout=30)
    thread.join()
    assert new[0] == {"n": 1}  # the first append wakes the waiter; it may already see the second
    assert new in ([{"n": 1}], [{"n": 1}, {"n": 2}])
    # no polling: the waiter read the length once, then once more after the wake-up
    # (plus the scripts' own LLENs for the two appends)
    assert calls(raw).get("llen", 0) - before <= 2 + 2


def test_wait_for_new_after_an_index_and_timeouts(memory: MemoryFactory) -> None:
    mem = memory()
    mem.messages = [1, 2, 3]
    assert mem.messages.wait_for_new(after=1, timeout=5) == [2, 3]  # already there: no wait
    started = time.monotonic()
    assert mem.messages.wait_for_new(timeout=0.2) == []
    assert time.monotonic() - started >= 0.2
    assert memory().messages == [1, 2, 3]


def test_a_wait_on_an_empty_list_wakes_on_the_first_append(memory: MemoryFactory) -> None:
    mem = memory()
    mem.messages = []
    result: list[object] = []
    thread = threading.Thread(target=lambda: result.extend(memory(separate=True).messages.wait_for_new(timeout=30)))
    thread.start()
    time.sleep(0.2)
    mem.messages.append("hello")
    thread.join(timeout=30)
    assert result == ["hello"]
