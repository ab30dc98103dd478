"""Keys holding a Redis type the library did not write: every operation is a
WrongTypeError and leaves the key as it is."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
import redis

from redis_memory import ConversationMemory, WrongTypeError
from tests.servers import RedisProcess

pytestmark = pytest.mark.on_cluster  # also on a Redis Cluster (tests/conftest.py)


@dataclass
class Corruption:
    """An attribute stored by the library, then its key replaced with raw redis-py, and the
    operations that must each raise WrongTypeError and leave the key as it is. Each
    operation gets a memory that reads from Redis and the proxy read before the change."""

    name: str
    value: Any
    replace: Callable[[redis.Redis, str], Any]
    operations: list[tuple[str, Callable[[ConversationMemory, Any], Any]]]


CORRUPTIONS = [
    Corruption(
        "messages",
        [1, 2],
        lambda raw, key: raw.set(key, "a plain string"),
        [
            ("read", lambda mem, old: mem.messages),
            ("len", lambda mem, old: len(mem.messages)),
            ("append", lambda mem, old: old.append(3)),
            ("extend", lambda mem, old: old.extend([3, 4])),
            ("insert", lambda mem, old: old.insert(1, 9)),
            ("pop", lambda mem, old: old.pop()),
            ("pop0", lambda mem, old: old.pop(0)),
            ("setitem", lambda mem, old: old.__setitem__(0, 7)),
            ("trim", lambda mem, old: old.trim(last=1)),
            ("clear", lambda mem, old: old.clear()),
            ("incr", lambda mem, old: mem.incr("messages")),
            ("to_dict", lambda mem, old: mem.to_dict()),
        ],
    ),
    Corruption(
        "tags",
        {"a", "b"},
        lambda raw, key: raw.rpush(key, "a", "b"),
        [
            ("read", lambda mem, old: mem.tags),
            ("add", lambda mem, old: old.add("c")),
            ("discard", lambda mem, old: old.discard("a")),
            ("remove", lambda mem, old: old.remove("a")),
            ("pop", lambda mem, old: old.pop()),
            ("to_dict", lambda mem, old: mem.to_dict()),
        ],
    ),
    Corruption(
        "profile",
        {"name": "Alice", "prefs": {"tone": "casual"}},
        lambda raw, key: raw.hset(key, mapping={"name": "Alice", "prefs": "{}"}),
        [
            ("read", lambda mem, old: mem.profile),
            ("setitem", lambda mem, old: old.__setitem__("age", 30)),
            ("nested", lambda mem, old: old["prefs"].__setitem__("tone", "formal")),
            ("update", lambda mem, old: old.update(city="Paris")),
            ("pop", lambda mem, old: old.pop("name")),
            ("to_dict", lambda mem, old: mem.to_dict()),
        ],
    ),
]


@pytest.mark.parametrize("corruption", CORRUPTIONS, ids=[c.name for c in CORRUPTIONS])
def test_a_collection_key_of_another_type_is_a_wrong_type_error_and_stays(
    memory: Callable[..., ConversationMemory], raw: redis.Redis, corruption: Corruption
) -> None:
    mem = memory()
    setattr(mem, corruption.name, corruption.value)
    old = getattr(mem, corruption.name)  # a proxy read before the key was replaced
    key = mem._space.collection_key(corruption.name)
    raw.delete(key)
    corruption.replace(raw, key)
    before = (raw.dump(key), raw.hgetall(mem._space.hash_key))
    for label, operation in corruption.operations:
        with pytest.raises(WrongTypeError):
            operation(memory(cache=False), old)
        assert (raw.dump(key), raw.hgetall(mem._space.hash_key)) == before, f"{label} changed the key"
    # Assigning a whole new value replaces whatever the key held, as documented.
    setattr(mem, corruption.name, corruption.value)
    assert getattr(memory(cache=False), corruption.name) == corruption.value


def test_a_json_document_where_a_list_is_expected(modules_server: RedisProcess, prefix: str) -> None:
    mem = ConversationMemory("c1", url=modules_server.url, prefix=prefix)
    mem.messages = [1]
    old = mem.messages
    key = mem._space.collection_key("messages")
    with modules_server.client() as raw:
        raw.delete(key)
        raw.execute_command("JSON.SET", key, "$", "[1, 2]")
        before = raw.dump(key)
        fresh = ConversationMemory("c1", url=modules_server.url, prefix=prefix, cache=False)
        for operation in (lambda: fresh.messages, lambda: old.append(3), lambda: old.pop(), fresh.to_dict):
            with pytest.raises(WrongTypeError):
                operation()
            assert raw.dump(key) == before


def test_an_object_hash_of_another_type_is_a_wrong_type_error_and_stays(
    memory: Callable[..., ConversationMemory], raw: redis.Redis
) -> None:
    mem = memory()
    raw.set(mem._space.hash_key, "not a hash")
    operations = [
        lambda: mem.state,
        lambda: setattr(mem, "state", "x"),
        lambda: setattr(mem, "messages", [1]),
        lambda: mem.incr("n"),
        lambda: mem.compare_and_set("state", "a", "b"),
        lambda: delattr(mem, "state"),
        lambda: dir(mem),
        mem.to_dict,
        mem.clear,  # observed: clear() cannot remove it either
    ]
    for operation in operations:
        with pytest.raises(WrongTypeError):
            operation()
        assert raw.get(mem._space.hash_key) == "not a hash"
    assert raw.keys(f"{mem._space.hash_key}*") == [mem._space.hash_key]
