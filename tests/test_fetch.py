"""``fetch(ids, fields)``: the same fields of many objects in two round trips at most (issue 12)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from redis_memory import ConversationMemory, InvalidNameError, ReservedNameError, aio, connections
from tests.conftest import MemoryFactory
from tests.servers import RedisProcess

pytestmark = pytest.mark.on_cluster  # also on a Redis Cluster (tests/conftest.py)


def test_fetch_reads_the_fields_of_many_conversations_in_two_round_trips(
    memory: MemoryFactory, server: RedisProcess, prefix: str
) -> None:
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    for n in range(50):
        mem = memory(f"c{n}")
        mem.state = "active" if n % 2 else "closed"
        mem.last_activity = when
        mem.total = n
        if n % 5 == 0:
            mem.messages = [{"role": "user", "content": f"hi {n}"}]
            mem.profile = {"n": n}
            mem.tags = {"vip"}
    ids = [f"c{n}" for n in range(50)] + ["never-stored"]
    fields = ["state", "last_activity", "total", "messages", "profile", "tags", "missing"]
    backend = connections.backend_for(url=server.url)
    before = backend.stats.counts["round_trips"]
    rows = ConversationMemory.fetch(ids, fields, url=server.url, prefix=prefix)
    servers = len(backend.primaries()) if hasattr(backend, "primaries") else 1  # a cluster: each primary
    assert backend.stats.counts["round_trips"] - before == 2 * servers  # not one per object or attribute
    assert rows["never-stored"] == {}
    assert rows["c3"] == {"state": "active", "last_activity": when, "total": 3}
    assert rows["c10"] == {
        "state": "closed",
        "last_activity": when,
        "total": 10,
        "messages": [{"role": "user", "content": "hi 10"}],
        "profile": {"n": 10},
        "tags": {"vip"},
    }
    rows["c10"]["messages"].append({"role": "user"})  # plain data: changing it writes nothing
    assert len(memory("c10").messages) == 1
    before = backend.stats.counts["round_trips"]
    only_scalars = ConversationMemory.fetch(ids[:20], ["state"], url=server.url, prefix=prefix)
    assert backend.stats.counts["round_trips"] - before == servers  # scalars only: one round trip (per primary)
    assert only_scalars["c1"] == {"state": "active"} and len(only_scalars) == 20


def test_fetch_refuses_a_name_that_cannot_be_stored_before_sending_anything(prefix: str) -> None:
    with pytest.raises(InvalidNameError):
        ConversationMemory.fetch(["a"], ["_private"], prefix=prefix)
    with pytest.raises(ReservedNameError):
        ConversationMemory.fetch(["a"], ["find"], prefix=prefix)
    assert ConversationMemory.fetch([], ["state"], prefix=prefix) == {}


def test_the_asyncio_api_fetches_the_same_rows(memory: MemoryFactory, server: RedisProcess, prefix: str) -> None:
    for n in range(10):
        mem = memory(f"a{n}")
        mem.state = f"s{n}"
        mem.messages = [{"n": n}]
    ids = [f"a{n}" for n in range(10)]
    expected = ConversationMemory.fetch(ids, ["state", "messages"], url=server.url, prefix=prefix)

    async def main() -> dict[str, dict[str, object]]:
        try:
            return await aio.ConversationMemory.fetch(ids, ["state", "messages"], url=server.url, prefix=prefix)
        finally:
            await aio.aclose()

    assert asyncio.run(main()) == expected
    assert expected["a4"] == {"state": "s4", "messages": [{"n": 4}]}
