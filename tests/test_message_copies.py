"""Message copies (``index_messages``): the copy of each message stays in step with its list
through every kind of change, by any writer, with or without opting in, in transactions,
under concurrency and failed changes, with expiry and cleanup, and through the async API;
on a server with RediSearch and on one without (SCAN fallback)."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from redis_memory import ConcurrentModificationError, ConversationMemory, MessageMatch, aio
from redis_memory.keys import encode_part
from tests.conftest import MemoryFactory
from tests.message_search import _has, check_copies, check_not_searchable, copy_keys, found, message, searchable
from tests.servers import RedisProcess

pytestmark = pytest.mark.on_cluster  # also on a Redis Cluster (tests/conftest.py)

pytest_plugins = ["tests.message_search"]


class Searchable(ConversationMemory):
    index_messages = True


# -- the invariant, through a random sequence of changes ----------------------------------------


@dataclass
class World:
    raw: redis.Redis
    prefix: str
    conversation_id: str
    mem: ConversationMemory  # opted in, mirrored
    other: ConversationMemory  # never opted in, a connection of its own
    bounded: ConversationMemory  # opted in, max_messages=3, a connection of its own
    n: int = 0

    def next(self) -> Any:
        self.n += 1
        return message(self.n)


def _transaction(w: World) -> None:
    with w.mem.transaction():
        lst = w.mem.messages
        lst.append(w.next())
        lst.extend([w.next(), w.next()])
        if lst:
            lst[0] = w.next()  # checked against the list before the appends


def _to_scalar(w: World) -> None:
    w.mem.messages = "not a list any more"
    check_not_searchable(w.raw, w.prefix, w.conversation_id)
    w.mem.messages = [w.next()]


def _delete(w: World) -> None:
    del w.mem.messages
    check_not_searchable(w.raw, w.prefix, w.conversation_id)
    w.mem.messages = []


def _clear_all(w: World) -> None:
    w.mem.clear()
    assert list(w.raw.scan_iter(match=f"{w.prefix}*{{{encode_part(w.conversation_id)}}}*", count=10_000)) == []
    w.mem.messages = [w.next(), w.next()]


def _if_any(change: Callable[[World, Any], None], at_least: int = 1) -> Callable[[World], None]:
    def run(w: World) -> None:
        lst = w.mem.messages
        if len(lst) >= at_least:
            change(w, lst)

    return run


def _other_transaction(w: World) -> None:
    with w.other.transaction():
        w.other.messages.extend([w.next(), w.next()])


def _iadd(w: World) -> None:
    w.mem.messages += [w.next(), w.next()]


def _assign(w: World) -> None:
    w.mem.messages = [w.next() for _ in range(w.n % 4)]


def _other_assign(w: World) -> None:
    w.other.messages = [w.next(), w.next()]  # a list replaced by a list stays searchable


OPS: dict[str, Callable[[World], None]] = {
    "append": lambda w: w.mem.messages.append(w.next()),
    "extend": lambda w: w.mem.messages.extend([w.next(), w.next(), w.next()]),
    "iadd": _iadd,
    "pop": _if_any(lambda w, lst: lst.pop()),
    "pop0": _if_any(lambda w, lst: lst.pop(0)),
    "del_middle": _if_any(lambda w, lst: lst.__delitem__(len(lst) // 2), at_least=3),
    "insert_middle": lambda w: w.mem.messages.insert(len(w.mem.messages) // 2, w.next()),
    "insert_front": lambda w: w.mem.messages.insert(0, w.next()),
    "set": _if_any(lambda w, lst: lst.__setitem__(len(lst) // 2, w.next())),
    "slice": _if_any(lambda w, lst: lst.__setitem__(slice(1, 3), [w.next()])),
    "reverse": lambda w: w.mem.messages.reverse(),
    "clear": lambda w: w.mem.messages.clear(),
    "trim": lambda w: w.mem.messages.trim(last=2),
    "assign": _assign,
    "transaction": _transaction,
    "to_scalar": _to_scalar,
    "delete": _delete,
    "clear_all": _clear_all,
    "other_append": lambda w: w.other.messages.append(w.next()),
    "other_pop0": lambda w: w.other.messages.pop(0) if w.other.messages else None,
    "other_insert": lambda w: w.other.messages.insert(1, w.next()),
    "other_assign": _other_assign,
    "other_transaction": _other_transaction,
    "bounded_append": lambda w: w.bounded.messages.append(w.next()),
    "bounded_extend": lambda w: w.bounded.messages.extend([w.next(), w.next()]),
}


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=st.lists(st.sampled_from(sorted(OPS)), max_size=25))
def test_the_copies_follow_every_change_to_the_list(
    server: RedisProcess, prefix: str, raw: redis.Redis, memory: MemoryFactory, quiet: None, ops: list[str]
) -> None:
    conversation_id = f"c {uuid.uuid4().hex[:8]}"
    mem = ConversationMemory(conversation_id, url=server.url, prefix=prefix, index_messages=True)
    world = World(
        raw,
        prefix,
        conversation_id,
        mem,
        memory(conversation_id, separate=True),
        searchable(server, prefix, conversation_id, max_messages=3),
    )
    mem.messages = [world.next(), world.next()]
    stored = check_copies(raw, prefix, conversation_id)
    for op in ops:
        OPS[op](world)
        stored = check_copies(raw, prefix, conversation_id)
        assert mem.messages == stored, op
    matches = found(server, prefix, conversation=conversation_id)
    assert [(m.conversation_id, m.attribute, m.message) for m in matches] == [
        (conversation_id, "messages", item) for item in stored
    ]
    assert ConversationMemory.count_messages(url=server.url, prefix=prefix, conversation=conversation_id) == len(stored)


# -- opting in -------------------------------------------------------------------------------------


def test_only_conversations_that_opted_in_are_searchable(
    server: RedisProcess, prefix: str, raw: redis.Redis, memory: MemoryFactory, quiet: None
) -> None:
    never = ConversationMemory("never", url=server.url, prefix=prefix)
    never.messages = [{"role": "user", "content": "refund please"}]
    never.messages.append({"role": "user", "content": "refund now"})
    assert found(server, prefix, "refund") == []
    check_not_searchable(raw, prefix, "never")

    other = memory("late", separate=True)  # never opts in
    other.messages = [message(0), message(1)]
    other.messages.append(message(5))
    late = searchable(server, prefix, "late")
    assert found(server, prefix, "refund") == []  # opening it changes nothing yet
    late.messages.append(message(10))  # its next append copies what the list holds
    assert [m.message for m in found(server, prefix, "refund")] == [message(0), message(5), message(10)]
    check_copies(raw, prefix, "late")

    other.messages.append(message(15))  # the flag lives in Redis: this process's appends are copied too
    other.messages.extend([message(20), "refund in a plain string"])
    assert found(server, prefix, "refund", conversation="late")[-3:] == [
        MessageMatch("late", "messages", m) for m in (message(15), message(20), "refund in a plain string")
    ]
    assert check_copies(raw, prefix, "late") == other.messages

    sub = Searchable("sub", url=server.url, prefix=prefix)
    sub.messages = [{"role": "user", "content": "a refund for the subclass"}]
    by_subclass = Searchable.search_messages("refund", url=server.url, prefix=prefix)
    assert [m.conversation_id for m in by_subclass] == ["late"] * 6 + ["sub"]
    check_copies(raw, prefix, "sub")
    Searchable("off", url=server.url, prefix=prefix, index_messages=False).messages = ["refund"]  # opts out
    check_not_searchable(raw, prefix, "off")


@pytest.mark.parametrize("change", ["set", "insert", "pop", "pop0", "del", "clear", "trim"])
def test_any_first_change_through_an_opted_in_memory_makes_the_list_searchable(
    server: RedisProcess, prefix: str, raw: redis.Redis, memory: MemoryFactory, quiet: None, change: str
) -> None:
    memory("x", separate=True).messages = [message(0), message(1), message(5)]
    lst = searchable(server, prefix, "x").messages
    if change == "set":
        lst[0] = message(10)
    elif change == "insert":
        lst.insert(1, message(10))
    elif change == "pop":
        lst.pop()
    elif change == "pop0":
        lst.pop(0)
    elif change == "del":
        del lst[1]
    elif change == "clear":
        lst.clear()
    else:
        lst.trim(last=1)
    check_copies(raw, prefix, "x")
    assert len(found(server, prefix, conversation="x")) == raw.llen(f"{prefix}{{x}}:messages")


# -- concurrency and failed changes ---------------------------------------------------------------


def test_concurrent_writers_keep_the_copies_in_step(
    server: RedisProcess, prefix: str, raw: redis.Redis, quiet: None
) -> None:
    searchable(server, prefix, "busy").messages = []
    errors: list[BaseException] = []

    def work(worker: int) -> None:
        try:
            mem = ConversationMemory("busy", client=server.client(), prefix=prefix, index_messages=worker % 2 == 0)
            for n in range(60):
                mem.messages.append({"role": "user", "content": f"worker{worker} message{n}"})
                if n % 3 == 2:
                    mem.messages.pop(0 if worker % 2 else -1)  # never empty: 3 appends per pop
                if n % 20 == 19:
                    mem.messages.insert(1, {"role": "assistant", "content": f"inserted by {worker}"})
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(worker,)) for worker in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    stored = check_copies(raw, prefix, "busy")
    assert len(stored) == 4 * (60 - 20 + 3)
    assert [m.message for m in found(server, prefix)] == stored
    assert [m.message for m in found(server, prefix, "worker0")] == [m for m in stored if _has(m, "worker0")]


def test_a_failed_change_leaves_no_copy(
    server: RedisProcess, prefix: str, raw: redis.Redis, memory: MemoryFactory, quiet: None
) -> None:
    first = searchable(server, prefix, "f")
    first.messages = [message(0)]
    held_opted_in = first.messages
    held_other = memory("f", separate=True).messages
    ConversationMemory("f", client=server.client(), prefix=prefix).messages = "replaced by another writer"
    for held in (held_opted_in, held_other):  # op:push and the lean push.lua
        with pytest.raises(ConcurrentModificationError):
            held.append(message(5))
    check_not_searchable(raw, prefix, "f")
    assert found(server, prefix) == []

    first.messages = [message(0), message(1)]
    held = first.messages
    memory("f", separate=True).messages[0] = message(10)  # element 0 changed behind held's back...
    with pytest.raises(ConcurrentModificationError), first.transaction():
        first.messages.append(message(15))
        held[0] = message(20)  # ...so this compare-and-set fails, and the append with it
    assert check_copies(raw, prefix, "f") == [message(10), message(1)]


# -- expiry and cleanup ---------------------------------------------------------------------------


def test_copies_get_the_ttl_and_every_write_refreshes_it(server: RedisProcess, prefix: str, raw: redis.Redis) -> None:
    mem = searchable(server, prefix, "t", ttl=60)
    mem.messages = [message(0), message(1)]
    mem.messages.append(message(2))
    mem.messages.pop(0)
    mem.messages.insert(1, message(3))
    check_copies(raw, prefix, "t")
    keys = copy_keys(raw, prefix, "t")
    assert len(keys) == 3
    for key in keys:
        raw.pexpire(key, 1_000)
    mem.state = "active"  # any write slides the expiry of every key, copies included
    assert all(50_000 < raw.pttl(key) <= 60_000 for key in keys)


def test_a_copy_written_without_the_ttl_still_expires_with_its_conversation(
    server: RedisProcess, prefix: str, raw: redis.Redis, memory: MemoryFactory
) -> None:
    searchable(server, prefix, "t", ttl=60).messages = [message(0)]
    other = memory("t", separate=True)  # no ttl: it does not refresh the expiry, as documented...
    other.messages.append(message(1))
    other.messages[0] = message(2)
    assert raw.pttl(f"{prefix}{{t}}:messages") > 0  # ...and the list keeps its expiry
    assert all(raw.pttl(key) > 0 for key in copy_keys(raw, prefix, "t"))  # the copies must too


def test_cleanup_deletes_the_copies_too(server: RedisProcess, prefix: str, raw: redis.Redis, quiet: None) -> None:
    now = datetime.now(UTC)
    for conversation_id, age in (("old", 30), ("recent", 1)):
        mem = ConversationMemory(conversation_id, url=server.url, prefix=prefix, index_messages=True)
        mem.last_activity = now - timedelta(days=age)
        mem.messages = [message(0), message(1)]
        mem.messages.append(message(2))
        mem.messages.pop(0)
    assert len(copy_keys(raw, prefix, "old")) == 2
    assert ConversationMemory.cleanup(timedelta(days=7), url=server.url, prefix=prefix) == ["old"]
    recent_copies = {f"{prefix}#m{{recent}}:messages:{n}" for n in (1, 2)}
    left = set(raw.scan_iter(match=f"{prefix}*", count=10_000)) - {f"{prefix}__meta__"}
    oplog = f"{prefix}~ops{{recent}}"  # its log of recent operation ids (exactly once)
    assert left == {f"{prefix}{{recent}}", f"{prefix}{{recent}}:messages", oplog, *recent_copies}
    assert [m.conversation_id for m in found(server, prefix)] == ["recent", "recent"]


# -- the async API ---------------------------------------------------------------------------------------


def test_the_async_api_keeps_the_copies_too(server: RedisProcess, prefix: str, raw: redis.Redis, quiet: None) -> None:
    async def main() -> None:
        try:
            mem = aio.ConversationMemory("async", url=server.url, prefix=prefix, index_messages=True)
            await mem.set("messages", [message(0)])
            await mem.messages.append(message(1))
            await mem.messages.extend([message(2), message(3)])
            await mem.messages.insert(1, message(5))
            assert await mem.messages.pop() == message(3)
            assert await mem.messages.pop(0) == message(0)
            async with mem.transaction():
                await mem.messages.append(message(10))
            late = aio.ConversationMemory("async-late", url=server.url, prefix=prefix)
            await late.set("messages", [message(0)])
            await aio.ConversationMemory(
                "async-late", url=server.url, prefix=prefix, index_messages=True
            ).messages.append(message(1))
        finally:
            await aio.aclose()

    asyncio.run(main())
    stored = check_copies(raw, prefix, "async")
    assert stored == [message(5), message(1), message(2), message(10)]
    assert check_copies(raw, prefix, "async-late") == [message(0), message(1)]
    assert [(m.conversation_id, m.message) for m in found(server, prefix, "refund")] == [
        ("async", message(5)),
        ("async", message(10)),
        ("async-late", message(0)),
    ]
