"""Attribute set / get / delete, kinds, round trips, hasattr / dir, reassignment across kinds."""

from __future__ import annotations

import types
from decimal import Decimal

import pytest
import redis

import redis_memory
from redis_memory import InvalidNameError, MissingAttributeError, UnstorableValueError
from tests.conftest import MemoryFactory

pytestmark = pytest.mark.on_cluster  # also on a Redis Cluster (tests/conftest.py)


@pytest.mark.parametrize(
    "value",
    ["", "text", "ünïcødé ✓", "a\nb\x00c", 0, -7, 10**18, 10**40, -(10**30), 0.1, -2.5, 1e300, True, False, None],
)
def test_scalars_round_trip_with_their_type(memory: MemoryFactory, value: object) -> None:
    memory().value = value
    read = memory().value
    assert read == value
    assert type(read) is type(value)


def test_scalars_are_fields_of_the_object_hash_stored_index_friendly(memory: MemoryFactory, raw: redis.Redis) -> None:
    mem = memory("conv")
    mem.state, mem.count_, mem.score, mem.flag = "active", 42, 0.5, True
    key = mem._space.hash_key
    assert raw.type(key) == "hash"
    assert raw.hmget(key, ["state", "count_", "score", "flag"]) == ["active", "42", "0.5", "1"]
    assert raw.hget(key, "_kind:count_") == "int"


def test_list_is_a_redis_list_and_dict_a_document(memory: MemoryFactory, raw: redis.Redis, server) -> None:
    mem = memory("conv")
    mem.messages = [{"role": "user", "content": "Hi"}]
    mem.context = {"topic": "billing"}
    assert raw.type(mem._space.collection_key("messages")) == "list"
    assert raw.lrange(mem._space.collection_key("messages"), 0, -1) == ['{"role":"user","content":"Hi"}']
    expected = "ReJSON-RL" if server.modules else "string"
    assert raw.type(mem._space.collection_key("context")) == expected


def test_empty_list_is_remembered(memory: MemoryFactory) -> None:
    mem = memory()
    assert not hasattr(mem, "messages")
    mem.messages = []
    other = memory()
    assert hasattr(other, "messages")
    assert other.messages == []
    assert isinstance(other.messages, list)
    mem.empty = {}
    assert memory().empty == {}


def test_missing_attribute_raises_attribute_error(memory: MemoryFactory) -> None:
    mem = memory()
    with pytest.raises(AttributeError):
        _ = mem.nothing_here
    with pytest.raises(MissingAttributeError):
        _ = mem.nothing_here
    assert getattr(mem, "nothing_here", "default") == "default"
    assert not hasattr(mem, "not a valid name")


def test_delattr(memory: MemoryFactory, raw: redis.Redis) -> None:
    mem = memory()
    mem.a, mem.b, mem.c = 1, [1, 2], {"k": "v"}
    del mem.a, mem.b, mem.c
    assert not hasattr(memory(), "a") and not hasattr(memory(), "b") and not hasattr(memory(), "c")
    # only the log of recent operation ids is left, for an hour (exactly-once resends)
    assert raw.keys(f"{mem._space.prefix}*{{*") == [f"{mem._space.prefix}~ops{{c1}}"]
    with pytest.raises(AttributeError):
        del mem.a
    with pytest.raises(AttributeError):
        delattr(mem, "never stored")


def test_dir_lists_stored_attributes_and_class_names(memory: MemoryFactory) -> None:
    mem = memory()
    mem.user_name, mem.messages, mem.context = "Alice", [], {}
    names = dir(memory())
    assert {"user_name", "messages", "context", "conversation_id", "memory_id"} <= set(names)
    assert names == sorted(names)


@pytest.mark.parametrize(
    ("first", "second"),
    [("s", [1]), ([1, 2], "s"), ([1], {"a": 1}), ({"a": 1}, [2]), ({"a": 1}, 5), (5, {"b": [1]}), ([1], [])],
)
def test_reassigning_another_kind_replaces_the_structure(
    memory: MemoryFactory, raw: redis.Redis, first: object, second: object
) -> None:
    mem = memory()
    mem.x = first
    _ = mem.x  # a mirror exists; it must not survive the replacement
    mem.x = second
    assert memory().x == second
    assert mem.x == second
    keys = set(raw.keys(f"{mem._space.prefix}*{{*"))
    has_collection = isinstance(second, (list, dict)) and (second or isinstance(second, dict))
    assert (mem._space.collection_key("x") in keys) == bool(has_collection)


def test_underscore_names_stay_local(memory: MemoryFactory, raw: redis.Redis) -> None:
    mem = memory()
    mem._local = 5
    assert mem._local == 5
    assert not hasattr(memory(), "_local")
    assert raw.keys(f"{mem._space.prefix}*{{*") == []
    del mem._local
    assert not hasattr(mem, "_local")


def test_names_of_the_class_cannot_be_stored(memory: MemoryFactory) -> None:
    mem = memory()
    for name in ("conversation_id", "memory_id", "to_dict", "clear"):
        with pytest.raises(AttributeError):
            setattr(mem, name, 1)


def test_invalid_names_are_rejected(memory: MemoryFactory) -> None:
    mem = memory()
    for name in ("a b", "1abc", "a-b", "a:b", "x" * 201, ""):
        with pytest.raises(InvalidNameError):
            setattr(mem, name, 1)
    with pytest.raises(ValueError):
        setattr(mem, "bad name", 1)


@pytest.mark.parametrize(
    "value",
    [object(), {object()}, {(1, 2)}, bytearray(b"x"), (1, object()), ((1, 2),), complex(1, 2), float("nan"),
     float("inf"), Decimal("NaN"), {"k": {1}}, [object()], {1: "int key"}, [10**19], {"a": [float("nan")]},
     [b"bytes"], [(1, 2)]],
)  # fmt: skip
def test_unstorable_values_raise_before_anything_is_written(
    memory: MemoryFactory, raw: redis.Redis, value: object
) -> None:
    mem = memory()
    mem.x = "old"
    mem.messages = [{"n": 1}]
    before = {key: raw.dump(key) for key in raw.keys(f"{mem._space.prefix}*{{*")}
    with pytest.raises(UnstorableValueError):
        mem.x = value
    with pytest.raises(TypeError):
        mem.messages.append(value if not isinstance(value, (list, dict)) else object())
    assert memory().x == "old"
    assert {key: raw.dump(key) for key in raw.keys(f"{mem._space.prefix}*{{*")} == before


def test_with_block_returns_the_memory(memory: MemoryFactory) -> None:
    with memory() as mem:
        mem.state = "active"
    assert memory().state == "active"


def test_prefix_from_environment(server, monkeypatch: pytest.MonkeyPatch, prefix: str, raw: redis.Redis) -> None:
    monkeypatch.setenv("REDIS_PREFIX", prefix)
    mem = redis_memory.ConversationMemory("env", url=server.url)
    mem.x = 1
    assert sorted(raw.keys(f"{prefix}*")) == [f"{prefix}__meta__", f"{prefix}{{env}}", f"{prefix}~ops{{env}}"]


def test_public_names_match_all() -> None:
    modules = {name for name, value in vars(redis_memory).items() if isinstance(value, types.ModuleType)}
    public = {name for name in dir(redis_memory) if not name.startswith("_")} - modules
    assert public | {"__version__"} == set(redis_memory.__all__)
    assert len(redis_memory.__all__) == len(set(redis_memory.__all__))
