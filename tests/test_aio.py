"""The asyncio API: the same behaviours as the sync suite, on the same servers."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
import redis

from redis_memory import (
    MISSING,
    ConcurrentModificationError,
    ConversationMemory,
    MissingAttributeError,
    TransactionError,
    UnstorableValueError,
    aio,
)
from tests import models
from tests.servers import RedisProcess

pytestmark = pytest.mark.on_cluster  # also on a Redis Cluster (tests/conftest.py)


def run(test: Callable[[], Awaitable[Any]]) -> Any:
    async def main() -> Any:
        try:
            return await test()
        finally:
            await aio.aclose()

    return asyncio.run(main())


@pytest.fixture
def amemory(server: RedisProcess, prefix: str) -> Callable[..., aio.ConversationMemory]:
    def factory(conversation_id: str = "c1", **kwargs: Any) -> aio.ConversationMemory:
        return aio.ConversationMemory(conversation_id, url=server.url, prefix=prefix, **kwargs)

    return factory


@pytest.fixture
def smemory(server: RedisProcess, prefix: str) -> Callable[..., ConversationMemory]:
    def factory(conversation_id: str = "c1") -> ConversationMemory:
        return ConversationMemory(conversation_id, url=server.url, prefix=prefix, cache=False)

    return factory


VALUES = ["text", 10**18, 1.5, True, None, datetime(2025, 12, 24, tzinfo=UTC), uuid.UUID(int=7),
          Decimal("1.10"), models.Color.RED, b"\x00", (1, "a"), [1, {"a": [2]}], {"k": {"n": 1}}, {"x", 1},
          models.Profile(name="A", joined=datetime(2024, 1, 1, tzinfo=UTC))]  # fmt: skip


@pytest.mark.parametrize("value", VALUES, ids=repr)
def test_values_round_trip_and_are_shared_with_the_sync_api(amemory, smemory, value: object) -> None:
    async def main() -> None:
        mem = amemory()
        await mem.set("value", value)
        read = await amemory().get("value")
        assert read == value and type(read) is type(value)
        assert smemory().value == value
        assert await mem.has("value") and "value" in await mem.names()
        await mem.delete("value")
        assert not await mem.has("value")
        with pytest.raises(AttributeError):
            await mem.get("value")
        assert await mem.get("value", "default") == "default"

    run(main)


def test_list_operations(amemory, smemory) -> None:
    async def main() -> None:
        mem = amemory()
        await mem.set("messages", [])
        await mem.messages.append({"role": "user", "content": "Hi"})
        await mem.messages.extend([1, 2, 3])
        await mem.messages.insert(0, "first")
        assert await mem.messages.pop() == 3
        assert await mem.messages.pop(0) == "first"
        assert await mem.get("messages") == [{"role": "user", "content": "Hi"}, 1, 2]
        await mem.messages.trim(last=2)
        assert smemory().messages == [1, 2]
        await mem.messages.clear()
        assert await mem.get("messages") == []
        with pytest.raises(UnstorableValueError):
            await mem.messages.append(object())
        await mem.set("messages", "now a string")
        with pytest.raises(ConcurrentModificationError):
            await mem.messages.append("x")

    run(main)


def test_200_concurrent_appends_lose_nothing_and_keep_order(amemory) -> None:
    async def main() -> None:
        mem = amemory()
        await mem.set("messages", [])

        async def writer(worker: int) -> None:
            for n in range(50):
                await amemory().messages.append([worker, n])

        await asyncio.gather(*(writer(w) for w in range(4)))
        messages = await mem.get("messages")
        assert len(messages) == 200
        for worker in range(4):
            assert [n for w, n in messages if w == worker] == list(range(50))

    run(main)


def test_dict_operations_at_paths(amemory, smemory) -> None:
    async def main() -> None:
        mem = amemory()
        await mem.set("user_profile", {"name": "Alice", "preferences": {"tone": "casual"}, "tags": []})
        await mem.user_profile["preferences"].set_key("tone", "formal")
        await mem.user_profile.update(city="Paris", lang="en")
        await mem.user_profile["tags"].append("vip")
        assert await mem.user_profile.setdefault("name", "Bob") == "Alice"
        assert await mem.user_profile.pop_key("lang") == "en"
        await mem.user_profile.delete_key("city")
        assert smemory().user_profile == {"name": "Alice", "preferences": {"tone": "formal"}, "tags": ["vip"]}
        assert await mem.user_profile["preferences"].get() == {"tone": "formal"}
        await mem.user_profile["preferences"].clear()
        assert (await mem.get("user_profile"))["preferences"] == {}

        async def update(worker: int) -> None:
            for n in range(25):
                await amemory().user_profile.set_key(f"w{worker}_{n}", n)

        await asyncio.gather(*(update(w) for w in range(4)))
        assert {key for key in await mem.get("user_profile") if key.startswith("w")} == {
            f"w{w}_{n}" for w in range(4) for n in range(25)
        }

    run(main)


def test_sets_counters_and_compare_and_set(amemory) -> None:
    async def main() -> None:
        mem = amemory()
        await mem.set("tags", {"a"})
        await mem.tags.add("b", "c")
        await mem.tags.discard("a")
        with pytest.raises(KeyError):
            await mem.tags.remove("zzz")
        assert await mem.get("tags") == {"b", "c"}
        await asyncio.gather(*(amemory().incr("total_messages") for _ in range(100)))
        assert await mem.get("total_messages") == 100
        assert await mem.compare_and_set("state", MISSING, "active")
        assert not await mem.compare_and_set("state", "closed", "x")
        assert await mem.compare_and_set("state", "active", "closed")
        assert await mem.get("state") == "closed"

    run(main)


def test_transactions_are_all_or_none(amemory, smemory, raw: redis.Redis) -> None:
    async def main() -> None:
        mem = amemory()
        await mem.set("state", "before")
        await mem.set("messages", [])
        async with mem.transaction() as tx:
            await mem.set("state", "active")
            await mem.messages.append({"n": 1})
            await mem.incr("total_messages")
        assert tx.results[2] in ("1", b"1")
        assert smemory().state == "active" and smemory().messages == [{"n": 1}]
        await smemory_delete(smemory, "messages")
        with pytest.raises(ConcurrentModificationError):
            async with mem.transaction():
                await mem.set("state", "after")
                await mem.messages.append({"n": 2})
        assert await mem.get("state") == "active"
        with pytest.raises(TransactionError):
            async with mem.transaction():
                await mem.set("messages", [1])
                await mem.messages.pop()

    run(main)


async def smemory_delete(smemory: Callable[..., ConversationMemory], name: str) -> None:
    delattr(smemory(), name)


def test_transactions_of_concurrent_tasks_do_not_mix(amemory) -> None:
    async def main() -> None:
        first, second = amemory("one"), amemory("one")
        entered, written = asyncio.Event(), asyncio.Event()

        async def long_transaction() -> None:
            async with first.transaction():
                await first.set("a", 1)
                entered.set()
                await written.wait()  # open until the other task has written and read

        async def plain_write() -> None:
            await entered.wait()
            try:
                await second.set("b", 2)  # another task: not part of the open transaction
                assert await second.get("b") == 2
                assert await second.get("a", None) is None
            finally:
                written.set()

        await asyncio.gather(long_transaction(), plain_write())
        assert await first.get("a") == 1

    run(main)


def test_expiry_bounds_clear_and_to_dict(amemory, raw: redis.Redis) -> None:
    async def main() -> None:
        mem = amemory("bounded", max_messages=5, ttl=600)
        await mem.set("messages", [])
        for n in range(20):
            await mem.messages.append(n)
        assert await mem.get("messages") == list(range(15, 20))
        await mem.set("state", "active")
        keys = raw.keys(f"{mem._space.prefix}*{{*")
        assert keys and all(0 < raw.pttl(key) <= 600_000 for key in keys)
        snapshot = await mem.to_dict()
        assert snapshot == {"messages": list(range(15, 20)), "state": "active"}
        await mem.clear()
        assert raw.keys(f"{mem._space.prefix}*{{*") == [] and await mem.to_dict() == {}

    run(main)


def test_names_and_assignment_rules(amemory) -> None:
    mem = amemory()
    with pytest.raises(TypeError):
        mem.state = "x"
    mem._local = 1
    assert mem._local == 1
    with pytest.raises(AttributeError):
        mem.__getattr__("memory_id")  # a name of the class itself
    with pytest.raises(ValueError):
        mem.__getattr__("not a name")

    async def main() -> None:
        with pytest.raises(MissingAttributeError):
            await mem.delete("never_stored")

    run(main)


def test_a_task_that_outlives_a_transaction_writes_at_once(amemory) -> None:
    async def main() -> None:
        mem = amemory("late")

        async def late() -> None:
            await asyncio.sleep(0.1)
            await mem.set("late", "written")  # the block has ended: not queued into it

        async with mem.transaction():
            await mem.set("a", 1)
            task = asyncio.create_task(late())
        await task
        assert await mem.get("late") == "written" and await mem.get("a") == 1

    run(main)


def test_wait_for_new_without_polling(amemory, smemory) -> None:
    async def main() -> None:
        mem = amemory("waiting")
        await mem.set("messages", [{"n": 0}])

        async def append_later() -> None:
            await asyncio.sleep(0.3)
            smemory("waiting").messages.append({"n": 1})

        task = asyncio.create_task(append_later())
        new = await mem.messages.wait_for_new(timeout=30)
        await task
        assert new == [{"n": 1}] and type(new[0]) is dict
        assert await mem.messages.wait_for_new(after=0, timeout=5) == [{"n": 0}, {"n": 1}]
        assert await mem.messages.wait_for_new(timeout=0.1) == []

    run(main)
