"""What the namespace fuzz and the security probes found in ``redis_memory/``, pinned: values
it cannot store are refused with its own errors (lone surrogates, huge ints, filters beyond
float range, infinite incr sums), floats in RedisJSON documents read back exactly where
RedisJSON can hold them (one limit of RedisJSON stays pinned by an ``xfail(strict=True)``),
undecodable stored values are library errors, and journaled writes are counted."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis

from redis_memory import (
    ConversationMemory,
    InvalidNameError,
    RedisConnectionError,
    RedisMemoryError,
    UnstorableValueError,
    stats,
)
from tests.servers import RedisProcess
from tests.tls import free_port

pytestmark = pytest.mark.on_cluster  # also on a Redis Cluster (tests/conftest.py)

pytest_plugins = ["tests.security"]


@pytest.mark.parametrize(
    "value", ["\ud800", ["\ud800"], {"k": "\ud800"}, {"\ud800"}], ids=["str", "list", "dict", "set"]
)
def test_a_lone_surrogate_in_a_value_is_unstorable(memory: Callable[..., ConversationMemory], value: Any) -> None:
    mem = memory()
    with pytest.raises(UnstorableValueError):
        mem.x = value
    assert mem.to_dict() == {}


@pytest.mark.parametrize("where", ["value", "id"])
def test_an_int_too_long_for_str_is_refused_by_the_library(
    memory: Callable[..., ConversationMemory], where: str
) -> None:
    huge = 10**5000
    if where == "id":
        with pytest.raises(InvalidNameError):
            memory(huge)
    else:
        with pytest.raises(UnstorableValueError):
            memory().x = huge


def test_a_numeric_filter_beyond_float_range_is_refused(server: RedisProcess, prefix: str) -> None:
    with pytest.raises(UnstorableValueError):
        ConversationMemory.find(url=server.url, prefix=prefix, confidence__lt=10**400)


def test_incr_never_stores_a_float_that_reads_back_infinite(memory: Callable[..., ConversationMemory]) -> None:
    mem = memory()
    mem.f = 1e308
    with contextlib.suppress(RedisMemoryError):
        mem.incr("f", 1e308)
    assert math.isfinite(memory(cache=False).f)


# RedisJSON 2.8 parses numbers inexactly (serde_json's fast parser). codec.json_float writes
# each float as a text it parses exactly; these need it (the plain repr would come back changed)
EXACT_FLOATS = [1.266189364069868e-154, 6.55288592398131e-22, 4.4462105605076063e-13, 5.691075034743235e-08, 1e300]


@pytest.mark.parametrize("number", EXACT_FLOATS)
def test_a_float_in_a_document_round_trips_exactly(modules_server: RedisProcess, prefix: str, number: float) -> None:
    mem = ConversationMemory("c1", url=modules_server.url, prefix=prefix)
    mem.doc = {"x": number, "y": [number]}
    mem.doc["z"] = number  # a path update
    again = ConversationMemory("c1", url=modules_server.url, prefix=prefix, cache=False).doc
    assert (again["x"], again["y"][0], again["z"]) == (number, number, number)


def test_redisjson_parses_numbers_as_codec_says(modules_server: RedisProcess, prefix: str) -> None:
    import random
    import struct

    from redis_memory.codec import _serde_float

    generator = random.Random(1)
    numbers = [generator.random() * 10 ** generator.randint(-30, 30) for _ in range(2000)]
    numbers += [struct.unpack("d", struct.pack("Q", generator.getrandbits(62)))[0] for _ in range(2000)]
    texts = [repr(number) for number in numbers if math.isfinite(number)]
    client = modules_server.client()
    client.execute_command("JSON.SET", f"{prefix}floats", "$", "[" + ",".join(texts) + "]")
    import json

    stored = json.loads(client.execute_command("JSON.GET", f"{prefix}floats", "$"))[0]
    assert stored == [_serde_float(text) for text in texts]
    assert sum(value != float(text) for value, text in zip(stored, texts, strict=True)) > 0  # it is inexact


@pytest.mark.xfail(
    strict=True,
    reason="about 1 float in 700 (969.2411624622509) has no decimal text RedisJSON 2.8 parses exactly: "
    "a dict attribute on RedisJSON holds its neighbour (lists and servers without RedisJSON are exact)",
)
def test_a_float_redisjson_cannot_hold(modules_server: RedisProcess, prefix: str) -> None:
    mem = ConversationMemory("c1", url=modules_server.url, prefix=prefix)
    mem.doc = {"x": 969.2411624622509}
    assert ConversationMemory("c1", url=modules_server.url, prefix=prefix, cache=False).doc["x"] == 969.2411624622509


@pytest.mark.parametrize("case", ["list-element", "document", "int-field"])
def test_a_stored_value_that_does_not_decode_is_a_library_error(
    memory: Callable[..., ConversationMemory], raw: redis.Redis, case: str
) -> None:
    mem = memory()
    if case == "list-element":
        mem.messages = [1]
        raw.rpush(mem._space.collection_key("messages"), "not json {")
        name = "messages"
    elif case == "document":
        mem.doc = {"a": 1}
        raw.delete(mem._space.collection_key("doc"))
        raw.set(mem._space.collection_key("doc"), "not json {")
        name = "doc"
    else:
        mem.n = 1
        raw.hset(mem._space.hash_key, "n", "abc")
        name = "n"
    with pytest.raises(RedisMemoryError):
        getattr(memory(cache=False), name)
    with pytest.raises(RedisMemoryError):
        memory(cache=False).to_dict()


def test_a_journaled_write_is_counted_until_it_is_replayed(fresh_backends: Path, prefix: str) -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"  # nobody listens: writes are journaled, as documented
    mem = ConversationMemory("c1", url=url, prefix=prefix)
    mem.state = "journaled"
    assert stats()[url]["journal_depth"] == 1
    with pytest.raises(RedisConnectionError):
        mem.to_dict()  # reads are not journaled
    assert stats()[url]["journal_depth"] == 1


def test_a_key_no_dict_attribute_can_hold_is_simply_missing(memory: Callable[..., ConversationMemory]) -> None:
    mem = memory()
    mem.doc = {"a": 1}
    assert mem.doc.get('x"y') is None and 'x"y' not in mem.doc
    assert mem.doc.pop('x"y', "default") == "default"
    with pytest.raises(KeyError):
        del mem.doc['x"y']


@pytest.mark.parametrize("empty", [[], set()], ids=["list", "set"])
@pytest.mark.parametrize("change", ["delete", "replace", "delete-keys"])
def test_an_empty_collection_changed_elsewhere_is_never_served_stale(
    memory: Callable[..., ConversationMemory], raw: redis.Redis, empty: Any, change: str
) -> None:
    """Found by the namespace fuzz: an empty list or set has no key in Redis, so no change made
    by another process was ever invalidated and the local copy was served on."""
    mem = memory("c1")
    mem.items = type(empty)()
    assert mem.items == empty  # read (and copied) here
    other = memory("c1", separate=True)
    if change == "delete":
        del other.items
    elif change == "replace":
        other.items = "now a text"
    else:  # every key of the object deleted by hand, as a test's cleanup or an operator does
        for key in raw.keys(f"{mem._space.hash_key}*"):
            raw.delete(key)
    if change == "replace":
        assert mem.items == "now a text"
    else:
        assert not hasattr(mem, "items")
