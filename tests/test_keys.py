"""Ids and names can never reach another object's keys; the encoding is reversible."""

from __future__ import annotations

import uuid

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from redis_memory import InvalidNameError
from redis_memory.keys import KeySpace, decode_part, encode_part, parse_hash_key
from tests.conftest import MemoryFactory

pytestmark = pytest.mark.on_cluster  # also on a Redis Cluster (tests/conftest.py)

HOSTILE_IDS = ["a}:messages", "*", "{x}", "a:b", "a", "a b", "line\nbreak", "tab\t", "[abc]", "?", "%41", "A",
               "x" * 1024, "ünï", "\\", "}{", "a}", "{", "memory:{a}"]  # fmt: skip


@given(st.text(min_size=1, max_size=300).filter(lambda text: text < "\ud800" or True))
def test_encoding_is_reversible_and_safe(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return
    encoded = encode_part(text)
    assert decode_part(encoded) == text
    assert not set(encoded) & set("{}:*?[]\\ \t\n\r")


def test_hash_key_parses_back() -> None:
    for object_id in HOSTILE_IDS:
        space = KeySpace("memory:", object_id)
        assert parse_hash_key(space.hash_key, "memory:") == object_id


def test_hostile_ids_stay_in_their_own_keys(memory: MemoryFactory, raw: redis.Redis, prefix: str) -> None:
    for index, object_id in enumerate(HOSTILE_IDS):
        mem = memory(object_id)
        mem.messages = [index]
        mem.n = index
    for index, object_id in enumerate(HOSTILE_IDS):
        mem = memory(object_id)
        assert mem.messages == [index] and mem.n == index
        assert mem.conversation_id == object_id
    keys = set(raw.keys(f"{prefix}*")) - {f"{prefix}__meta__"}  # and the layout record
    assert len(keys) == 3 * len(HOSTILE_IDS)  # hash, list, log of operation ids
    for key in keys:
        tag = key[len(prefix) :].split(":")[0].removeprefix("~ops")
        assert tag.startswith("{") and tag.endswith("}") and tag.count("{") == 1 and tag.count("}") == 1


def test_the_original_packages_collision_is_gone(memory: MemoryFactory) -> None:
    # In 0.4.3, conversation "a" attribute "b:messages" and conversation "a:b" attribute
    # "messages" were the same key.
    memory("a:b").messages = ["from a:b"]
    memory("a").messages = ["from a"]
    assert memory("a:b").messages == ["from a:b"]


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(object_id=st.text(min_size=1, max_size=40))
def test_any_id_touches_only_its_own_hash_tag(memory: MemoryFactory, raw: redis.Redis, object_id: str) -> None:
    try:
        object_id.encode("utf-8")
    except UnicodeEncodeError:
        with pytest.raises(InvalidNameError):
            memory(object_id)
        return
    mem = memory(object_id)
    mem.value = object_id
    mem.items = [object_id]
    hash_key = mem._space.hash_key
    assert set(raw.keys(f"{hash_key}*")) == {hash_key, f"{hash_key}:items"}
    assert memory(object_id).value == object_id
    del mem.value, mem.items
    assert raw.keys(f"{hash_key}*") == []


@pytest.mark.parametrize("bad", ["", "x" * 1025, None, 1.5, b"bytes", True])
def test_bad_ids_raise(memory: MemoryFactory, bad: object) -> None:
    with pytest.raises(InvalidNameError):
        memory(bad)


def test_int_and_uuid_ids(memory: MemoryFactory) -> None:
    identifier = uuid.uuid4()
    memory(identifier).x = 1
    assert memory(str(identifier)).x == 1
    memory(42).y = 2
    assert memory("42").y == 2
