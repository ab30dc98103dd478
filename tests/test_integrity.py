"""Values at the edges of the data model: refused before anything is written, with an error
of the documented tree, or stored exactly; never a silent change of another key."""

from __future__ import annotations

from typing import Any

import pytest
import redis

from redis_memory import InvalidValueError, RedisMemoryError, UnstorableValueError
from redis_memory.jsontext import MAX_DEPTH
from tests.conftest import MemoryFactory

pytestmark = pytest.mark.on_cluster  # also on a Redis Cluster (tests/conftest.py)


def nested(levels: int, container: type = dict) -> Any:
    value: Any = 1
    for _ in range(levels):
        value = {"a": value} if container is dict else [value]
    return value


def circular_list() -> list[Any]:
    loop: list[Any] = []
    loop.append(loop)
    return loop


def circular_dict() -> dict[str, Any]:
    loop: dict[str, Any] = {}
    loop["self"] = loop
    return loop


def snapshot(raw: redis.Redis, prefix: str) -> dict[str, bytes | None]:
    return {key: raw.dump(key) for key in sorted(raw.keys(f"{prefix}*"))}


@pytest.mark.parametrize("key", [" name", "  name", " "])
def test_a_dict_key_with_a_leading_space_is_refused_and_changes_nothing(
    memory: MemoryFactory, raw: redis.Redis, prefix: str, key: str
) -> None:
    mem = memory()
    mem.profile = {"name": "Alice"}
    before = snapshot(raw, prefix)
    with pytest.raises(UnstorableValueError, match="starts with a space"):
        mem.profile[key] = "Bob"
    with pytest.raises(UnstorableValueError, match="starts with a space"):
        mem.profile.update({key: "Bob"})
    with pytest.raises(UnstorableValueError, match="starts with a space"):
        mem.other = {"inner": {key: 1}}
    with pytest.raises(KeyError):
        del mem.profile[key]
    assert snapshot(raw, prefix) == before
    assert memory(separate=True).profile == {"name": "Alice"} == mem.profile


def test_other_whitespace_in_dict_keys_is_kept_exactly(memory: MemoryFactory) -> None:
    mem = memory()
    mem.profile = {"name": 1}
    for key in ("name ", "\tname", "na me", "\u00a0name", "\u3000name", "\nname"):
        mem.profile[key] = key
    expected = {"name": 1, **{key: key for key in ("name ", "\tname", "na me", "\u00a0name", "\u3000name", "\nname")}}
    assert memory(separate=True, cache=False).profile == expected


@pytest.mark.parametrize("container", [dict, list])
def test_the_deepest_value_redis_takes_is_stored_and_one_level_more_is_refused(
    memory: MemoryFactory, raw: redis.Redis, prefix: str, container: type
) -> None:
    mem = memory()
    mem.profile = {"old": True}
    mem.history = ["old"]
    deepest = nested(MAX_DEPTH - 1, container)
    mem.profile = {"deep": deepest}  # MAX_DEPTH containers in all
    assert memory(separate=True, cache=False).profile == {"deep": deepest}
    mem.profile = {"old": True}
    before = snapshot(raw, prefix)
    for attempt in (
        lambda: setattr(mem, "profile", {"deep": nested(MAX_DEPTH, container)}),
        lambda: setattr(mem, "history", [nested(MAX_DEPTH + 1, container)]),  # each element is a value
        lambda: mem.history.append(nested(MAX_DEPTH + 1, container)),  # an element is a value of its own
        lambda: mem.profile.__setitem__("deep", nested(MAX_DEPTH + 1, container)),  # so is a path value
    ):
        with pytest.raises(UnstorableValueError, match="nested more than"):
            attempt()
    assert snapshot(raw, prefix) == before
    reader = memory(separate=True, cache=False)
    assert reader.profile == {"old": True} and reader.history == ["old"]


@pytest.mark.parametrize("make", [circular_list, circular_dict])
def test_a_value_that_contains_itself_is_refused(memory: MemoryFactory, make: Any) -> None:
    mem = memory()
    mem.profile = {"kept": 1}
    for attempt in (
        lambda: setattr(mem, "profile", {"loop": make()}),
        lambda: setattr(mem, "items", [make()]),
        lambda: mem.profile.__setitem__("loop", make()),
        lambda: setattr(mem, "profile", make()) if isinstance(make(), dict) else mem.profile.update(x=make()),
    ):
        with pytest.raises(UnstorableValueError):
            attempt()
    assert memory(separate=True, cache=False).profile == {"kept": 1}


@pytest.mark.parametrize(
    "attempt",
    [
        lambda mem: mem.profile.__setitem__("\ud800", 1),
        lambda mem: mem.profile.__setitem__("ok", "\udfff"),
        lambda mem: mem.profile.update({"a": ["\ud800"]}),
        lambda mem: mem.messages.append({"content": "\ud800"}),
        lambda mem: mem.incr("turns", 2**63),
        lambda mem: mem.incr("turns", -(2**63) - 1),
        lambda mem: setattr(mem, "big", [10**5000]),
        lambda mem: mem.profile.__setitem__("big", 10**5000),
        lambda mem: setattr(mem, "turns", 10**5000),
    ],
)
def test_unstorable_inputs_raise_a_documented_error_and_write_nothing(
    memory: MemoryFactory, raw: redis.Redis, prefix: str, attempt: Any
) -> None:
    mem = memory()
    mem.profile = {"name": "Alice"}
    mem.messages = [{"content": "hi"}]
    mem.turns = 1
    before = snapshot(raw, prefix)
    with pytest.raises((UnstorableValueError, InvalidValueError)) as caught:
        attempt(mem)
    assert isinstance(caught.value, RedisMemoryError) and isinstance(caught.value, TypeError | ValueError)
    assert snapshot(raw, prefix) == before


def test_an_incr_whose_sum_leaves_64_bits_is_refused_and_keeps_the_value(memory: MemoryFactory) -> None:
    mem = memory()
    mem.turns = 2**62
    mem.incr("turns", 2**62 - 1)  # exactly the largest 64-bit integer
    with pytest.raises(UnstorableValueError, match="64-bit"):
        mem.incr("turns", 1)
    assert memory(separate=True).turns == 2**63 - 1
    mem.turns = -(2**63) + 5
    mem.incr("turns", -5)
    with pytest.raises(UnstorableValueError, match="64-bit"):
        mem.incr("turns", -1)
    assert memory(separate=True).turns == -(2**63)
    mem.turns = -(2**62)
    with pytest.raises(UnstorableValueError, match="64-bit"):
        mem.incr("turns", -(2**62) - 1)
    assert memory(separate=True).turns == -(2**62)
