"""A forked child (multiprocessing, pre-fork workers) never serves its parent's mirrors."""

from __future__ import annotations

import multiprocessing
import multiprocessing.synchronize

import pytest
import redis

from tests.conftest import MemoryFactory
from tests.servers import RedisProcess

pytestmark = pytest.mark.on_cluster  # also on a Redis Cluster (tests/conftest.py)


def _child_reads(memory: MemoryFactory, go: multiprocessing.synchronize.Event, out: multiprocessing.Queue) -> None:
    go.wait(30)
    mem = memory()
    out.put((list(mem.messages), dict(mem.profile), sorted(mem.tags), mem.state))


def test_a_child_forked_after_reads_sees_what_others_wrote_since(
    memory: MemoryFactory, server: RedisProcess, prefix: str, raw: redis.Redis
) -> None:
    mem = memory()
    mem.messages = [{"n": 1}]
    mem.profile = {"a": 1}
    mem.tags = {"x"}
    mem.state = "one"
    assert list(mem.messages) == [{"n": 1}] and mem.profile == {"a": 1} and mem.tags == {"x"}  # mirrored
    context = multiprocessing.get_context("fork")
    go, out = context.Event(), context.Queue()
    child = context.Process(target=_child_reads, args=(memory, go, out))
    child.start()
    other = memory(separate=True)  # another process's writes, after the fork
    other.messages.append({"n": 2})
    other.profile["b"] = 2
    other.tags.add("y")
    other.state = "two"
    go.set()
    seen = out.get(timeout=60)
    child.join(30)
    assert child.exitcode == 0
    assert seen == ([{"n": 1}, {"n": 2}], {"a": 1, "b": 2}, ["x", "y"], "two")
