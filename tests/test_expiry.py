"""Expiry (one sliding TTL for every key of a conversation) and bounded lists."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
import redis

from redis_memory import ConversationMemory
from tests.servers import RedisProcess

pytestmark = pytest.mark.on_cluster  # also on a Redis Cluster (tests/conftest.py)


@pytest.fixture
def open_memory(server: RedisProcess, prefix: str):  # type: ignore[no-untyped-def]
    def factory(conversation_id: str = "c1", **kwargs: object) -> ConversationMemory:
        return ConversationMemory(conversation_id, url=server.url, prefix=prefix, **kwargs)  # type: ignore[arg-type]

    return factory


def test_every_key_gets_the_ttl_and_every_write_refreshes_all_of_them(open_memory, raw: redis.Redis) -> None:
    mem = open_memory(ttl=timedelta(minutes=5))
    mem.state = "active"
    mem.messages = [{"n": 0}]
    mem.context = {"topic": "billing"}
    mem.tags = {"a"}
    keys = raw.keys(f"{mem._space.prefix}*{{*")
    assert len(keys) == 5  # hash, 3 collections, the log of operation ids
    assert all(0 < raw.pttl(key) <= 300_000 for key in keys)
    context_key = mem._space.collection_key("context")
    raw.pexpire(context_key, 50_000)
    mem.messages.append({"n": 1})  # a write to another key of the conversation...
    assert raw.pttl(context_key) > 250_000  # ...slides the expiry of all of them
    mem.incr("total_messages")
    mem.context["topic"] = "refunds"
    assert all(raw.pttl(key) > 250_000 for key in raw.keys(f"{mem._space.prefix}*{{*"))


def test_a_conversation_with_a_ttl_is_gone_after_expiry_with_all_its_keys(open_memory, raw: redis.Redis) -> None:
    mem = open_memory("short", ttl=0.3)
    mem.state, mem.messages, mem.context, mem.tags = "active", [1], {"a": 1}, {"t"}
    assert mem.messages == [1]  # mirrored
    deadline = time.monotonic() + 20
    while raw.keys(f"{mem._space.prefix}*{{*") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert raw.keys(f"{mem._space.prefix}*{{*") == []
    again = open_memory("short")
    assert not hasattr(again, "state") and not hasattr(again, "messages")
    assert not hasattr(mem, "messages")  # expiry invalidated the mirror too


def test_touching_keys_keeps_their_mirrors_tracked(open_memory, server: RedisProcess) -> None:
    mem = open_memory("tracked", ttl=60)
    other = ConversationMemory("tracked", client=server.client(), prefix=mem._space.prefix)
    mem.context = {"v": 0}
    assert mem.context == {"v": 0}  # mirrored
    for n in range(1, 20):
        mem.state = f"s{n}"  # PEXPIREs (and re-reads) the context key
        other.context["v"] = n
        other.turn = n
        assert mem.turn == n
        assert mem.context == {"v": n}


def test_max_messages_keeps_the_last_50_in_order(open_memory, server: RedisProcess) -> None:
    mem = open_memory("bounded", max_messages=50)
    mem.messages = [{"n": n} for n in range(70)]
    assert [m["n"] for m in mem.messages] == list(range(20, 70))
    for n in range(70, 1070):
        mem.messages.append({"n": n})
    expected = list(range(1020, 1070))
    assert [m["n"] for m in mem.messages] == expected  # the mirror
    fresh = ConversationMemory("bounded", client=server.client(), prefix=mem._space.prefix)
    assert [m["n"] for m in fresh.messages] == expected
    mem.messages.extend({"n": n} for n in range(1070, 1080))
    mem.messages.insert(0, {"n": -1})  # grows the list, so it is trimmed too
    assert len(ConversationMemory("bounded", url=server.url, prefix=mem._space.prefix, cache=False).messages) == 50


def test_other_lists_are_not_bounded_and_bounds_are_checked(open_memory) -> None:
    mem = open_memory("b2", bounds={"log": 3})
    mem.messages = list(range(10))
    mem.log = list(range(10))
    assert len(mem.messages) == 10 and mem.log == [7, 8, 9]
    for bad in ({"log": 0}, {"log": "3"}, {"not a name": 3}):
        with pytest.raises(ValueError):
            open_memory("b3", bounds=bad)
    with pytest.raises(ValueError):
        open_memory("b3", ttl=-1)


def test_trim(open_memory) -> None:
    mem = open_memory("trim")
    mem.messages = list(range(10))
    mem.messages.trim(last=3)
    assert mem.messages == [7, 8, 9]
    assert open_memory("trim", cache=False).messages == [7, 8, 9]
    mem.messages.trim(last=0)
    assert open_memory("trim", cache=False).messages == [] and hasattr(mem, "messages")
    with pytest.raises(ValueError):
        mem.messages.trim(last=-1)


def test_a_later_memory_without_a_ttl_keeps_the_earlier_ttl(open_memory, raw: redis.Redis) -> None:
    first = open_memory("kept", ttl=600)
    open_memory("kept", max_messages=5)  # says nothing about expiry
    first.state = "x"
    assert 0 < raw.pttl(first._space.hash_key) <= 600_000
