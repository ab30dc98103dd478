"""Atomic counters, compare-and-set, transactions (all or none, one round trip), clear, to_dict."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
import redis

from redis_memory import MISSING, ConcurrentModificationError, TransactionError, WrongTypeError
from tests import models, workers
from tests.conftest import MemoryFactory
from tests.servers import RedisProcess
from tests.test_concurrency import spawn
from tests.test_costs import delta

pytestmark = pytest.mark.on_cluster  # also on a Redis Cluster (tests/conftest.py)


def test_incr(memory: MemoryFactory, raw: redis.Redis) -> None:
    mem = memory()
    assert mem.incr("total_messages") == 1
    assert mem.incr("total_messages", 5) == 6
    assert mem.incr("total_messages", -2) == 4
    assert memory().total_messages == 4 and type(memory().total_messages) is int
    assert raw.hget(mem._space.hash_key, "total_messages") == "4"
    assert mem.incr("score", 0.5) == 0.5
    assert mem.incr("score", 2) == 2.5 and type(memory().score) is float
    mem.count_ = 10
    assert mem.incr("count_", 1.5) == 11.5 and type(memory().count_) is float


def test_incr_of_something_else_is_refused(memory: MemoryFactory) -> None:
    mem = memory()
    mem.state = "active"
    mem.items = [1]
    with pytest.raises(WrongTypeError):
        mem.incr("state")
    with pytest.raises(WrongTypeError):
        mem.incr("items")
    with pytest.raises(TypeError):
        mem.incr("n", "1")  # type: ignore[arg-type]
    assert memory().state == "active" and memory().items == [1] and not hasattr(memory(), "n")


def test_4_processes_x_250_incr_make_exactly_1000(memory: MemoryFactory, server: RedisProcess, prefix: str) -> None:
    spawn(workers.increment, 4, server.url, prefix, "counter", 250)
    assert memory("counter").total_messages == 1000


def test_compare_and_set(memory: MemoryFactory) -> None:
    mem = memory()
    assert mem.compare_and_set("state", MISSING, "active")
    assert not mem.compare_and_set("state", MISSING, "again")
    assert not mem.compare_and_set("state", "closed", "escalated")
    assert mem.compare_and_set("state", "active", "closed")
    assert memory().state == "closed"
    mem.n = 1
    assert not mem.compare_and_set("n", "1", 2)  # the str "1" is not the int 1
    assert mem.compare_and_set("n", 1, 2) and memory().n == 2


def test_a_transaction_is_one_round_trip(memory: MemoryFactory, raw: redis.Redis) -> None:
    mem = memory()
    mem.messages = [{"role": "system", "content": "s"}]  # (an empty list is read again: no key tracks it)
    mem.context = {"topic": "x"}
    with mem.transaction():
        mem.state = "new"  # the batch script is loaded

    def three_writes() -> None:
        with mem.transaction() as tx:
            mem.state = "active"
            mem.messages.append({"role": "user", "content": "hi"})
            mem.incr("total_messages")
        assert int(tx.results[2]) >= 1

    for _ in range(3):  # every transaction, not only the first after an assignment
        commands = delta(raw, three_writes)
        assert commands["evalsha"] == 1 and "hmget" not in commands and "lrange" not in commands
    system = [{"role": "system", "content": "s"}]
    assert memory().state == "active" and memory().messages == system + [{"role": "user", "content": "hi"}] * 3
    assert memory(separate=True).messages == system + [{"role": "user", "content": "hi"}] * 3
    assert memory().total_messages == 3


def test_a_transaction_whose_second_write_fails_leaves_the_first_unwritten(memory: MemoryFactory) -> None:
    mem = memory()
    mem.state = "before"
    mem.messages = []
    with pytest.raises(TypeError), mem.transaction():
        mem.state = "after"
        mem.messages.append(object())  # refused before anything is sent
    assert memory(cache=False).state == "before"

    held = mem.messages
    del memory(separate=True).messages  # the list is gone when the transaction commits
    with pytest.raises(ConcurrentModificationError), mem.transaction():
        mem.state = "after"
        held.append({"n": 1})  # checked on the server before anything is applied: fails
    assert memory(cache=False).state == "before"

    with pytest.raises(RuntimeError), mem.transaction():
        mem.state = "after"
        raise RuntimeError("the caller's own error")
    assert memory(cache=False).state == "before"


def test_transactions_see_changes_made_earlier_in_the_same_batch(memory: MemoryFactory) -> None:
    mem = memory()
    mem.doc = {"a": 1}
    with mem.transaction():
        mem.log = []  # assigned and ...
        mem.doc["b"] = 2
        mem.doc.update(c=3)  # ... several changes to one document compose
        mem.tags = {"x"}
        mem.incr("n", 2)
        mem.incr("n", 3)
    assert memory(cache=False).doc == {"a": 1, "b": 2, "c": 3}
    assert memory(cache=False).log == [] and memory().tags == {"x"} and memory().n == 5


def test_changes_that_need_a_reply_are_refused_in_a_transaction(memory: MemoryFactory) -> None:
    mem = memory()
    mem.log = [1, 2]
    mem.doc = {"a": 1}
    mem.tags = {"x"}
    for change in (lambda: mem.log.pop(), lambda: mem.doc.pop("a"), lambda: mem.doc.setdefault("z", 1),
                   lambda: mem.tags.pop()):  # fmt: skip
        with pytest.raises(TransactionError), mem.transaction():
            change()
    assert memory(cache=False).log == [1, 2] and memory(cache=False).doc == {"a": 1}


def test_clear_deletes_every_key(memory: MemoryFactory, raw: redis.Redis) -> None:
    mem = memory("odd ünïcode:{id}")
    mem.state, mem.messages, mem.context, mem.tags, mem.when = "x", [1], {"a": 1}, {"t"}, datetime.now()
    mem.профиль = [1]  # a non-ASCII name: its key is percent-encoded, in Lua too
    mem.profile = models.Profile(name="A", joined=datetime(2024, 1, 1, tzinfo=UTC))
    assert raw.keys(f"{mem._space.prefix}*{{*")
    mem.clear()
    assert raw.keys(f"{mem._space.prefix}*{{*") == []
    assert dir(memory("odd ünïcode:{id}")) == dir(memory("never"))


def test_to_dict_is_one_round_trip(memory: MemoryFactory, raw: redis.Redis) -> None:
    mem = memory()
    joined = datetime(2024, 1, 1, tzinfo=UTC)
    values = {f"s{n}": f"v{n}" for n in range(14)}
    values |= {"n": 3, "messages": [{"role": "user"}], "context": {"a": [1]}, "tags": {"t"},
               "id_": uuid.UUID(int=3), "profile": models.Profile(name="A", joined=joined)}  # fmt: skip
    for name, value in values.items():
        setattr(mem, name, value)
    assert len(values) == 20
    reader = memory(separate=True)
    reader.to_dict()  # scripts loaded
    commands = delta(raw, reader.to_dict)
    assert commands.get("evalsha") == 1 and "hmget" not in commands
    snapshot = reader.to_dict()
    assert snapshot == values
    assert type(snapshot["messages"]) is list and type(snapshot["context"]) is dict
    snapshot["messages"].append("local only")
    assert memory().messages == [{"role": "user"}]


def test_clear_then_a_change_in_one_transaction_is_refused_whole(memory: MemoryFactory, raw: redis.Redis) -> None:
    mem = memory()
    mem.log = [1]
    mem.state = "kept"
    with pytest.raises(ConcurrentModificationError), mem.transaction():
        mem.clear()
        mem.log.append(2)  # the list is gone by then: the whole batch is refused
    assert memory(cache=False).log == [1] and memory().state == "kept"
    with mem.transaction():
        mem.clear()
        mem.log = [3]  # assigning after clearing is fine
    assert memory(cache=False).to_dict() == {"log": [3]}


def test_names_the_async_api_uses_cannot_be_stored(memory: MemoryFactory) -> None:
    from redis_memory import ReservedNameError

    mem = memory()
    for name in ("names", "has", "delete", "aclose", "get", "set", "compare_and_set", "wait_for_new"):
        with pytest.raises(ReservedNameError):
            setattr(mem, name, 1)
