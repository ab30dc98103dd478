"""Typed values keep their type: datetimes, dates, UUIDs, Decimals, Enums, bytes, tuples,
pydantic models (documents) and sets (Redis Sets)."""

from __future__ import annotations

import multiprocessing
import uuid
import zoneinfo
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pydantic
import pytest
import redis

from redis_memory import RedisSet, UnknownTypeError, UnstorableValueError
from tests import models
from tests.conftest import MemoryFactory
from tests.servers import RedisProcess

pytestmark = pytest.mark.on_cluster  # also on a Redis Cluster (tests/conftest.py)

PARIS = zoneinfo.ZoneInfo("Europe/Paris")

TYPED = [
    datetime(2025, 12, 24, 10, 0, tzinfo=UTC),
    datetime(2025, 12, 24, 10, 0, 0, 999999, tzinfo=PARIS),
    datetime(2025, 7, 1, 23, 59, tzinfo=PARIS),  # summer time
    datetime(2025, 12, 24, 10, 0, tzinfo=timezone(timedelta(hours=5, minutes=30))),
    datetime(1969, 7, 20, 20, 17, 40, 1),  # naive, before the epoch
    datetime(9999, 12, 31, 23, 59, 59, 999999),
    date(2025, 12, 24),
    date(1, 1, 1),
    uuid.UUID("12345678-1234-5678-1234-567812345678"),
    Decimal("12345678901234567890.000000000001"),
    Decimal("-0.10"),
    models.Color.RED,
    models.Priority.HIGH,
    b"\x00\xff binary",
    b"",
    (1, "two", [3], {"four": 4}, None),
    (),
]


@pytest.mark.parametrize("value", TYPED, ids=repr)
def test_typed_scalars_round_trip_with_their_type(memory: MemoryFactory, value: object) -> None:
    memory().value = value
    read = memory(separate=True).value
    assert read == value
    assert type(read) is type(value)
    if isinstance(value, datetime):
        assert read.tzinfo == value.tzinfo or (read.tzinfo is None and value.tzinfo is None)
        assert read.utcoffset() == value.utcoffset()


def test_datetimes_and_dates_are_stored_as_epoch_numbers(memory: MemoryFactory, raw: redis.Redis) -> None:
    mem = memory()
    mem.last_activity = datetime(2025, 12, 24, 10, 0, 0, 500000, tzinfo=UTC)
    mem.day = date(1970, 1, 2)
    mem.naive = datetime(1970, 1, 1, 0, 0, 1)
    fields = raw.hgetall(mem._space.hash_key)
    assert fields["last_activity"] == "1766570400.500000" and fields["_kind:last_activity"] == "datetime:UTC"
    assert fields["day"] == "86400" and fields["naive"] == "1.000000"
    mem.amount = Decimal("9.99")
    mem.id_ = uuid.UUID(int=1)
    assert raw.hget(mem._space.hash_key, "amount") == "9.99"
    assert raw.hget(mem._space.hash_key, "id_") == "00000000-0000-0000-0000-000000000001"


def test_unstorable_typed_values(memory: MemoryFactory) -> None:
    mem = memory()
    mem.value = "old"
    import datetime as dt_module

    class NoOffset(dt_module.tzinfo):
        def utcoffset(self, moment: object) -> None:
            return None

    for bad in (datetime(2025, 1, 1, tzinfo=NoOffset()), Decimal("Infinity"), (object(),), ((1,),)):
        with pytest.raises(UnstorableValueError):
            mem.value = bad
    assert memory().value == "old"


def test_pydantic_models_are_documents_read_back_as_models(
    memory: MemoryFactory, raw: redis.Redis, server: RedisProcess
) -> None:
    mem = memory()
    profile = models.Profile(name="Alice", joined=datetime(2024, 1, 2, tzinfo=UTC), tags=["a", "b"])
    mem.profile = profile
    read = memory(separate=True).profile
    assert isinstance(read, models.Profile) and read == profile
    assert raw.type(mem._space.collection_key("profile")) == ("ReJSON-RL" if server.modules else "string")
    assert raw.hget(mem._space.hash_key, "_kind:profile") == "model:tests.models:Profile"


def test_a_model_that_does_not_round_trip_is_refused(memory: MemoryFactory) -> None:
    class Lossy(pydantic.BaseModel):
        value: object  # dumps to JSON, validates back as a plain dict: not equal

    mem = memory()
    mem.x = 1
    with pytest.raises(UnstorableValueError):
        mem.x = Lossy(value=uuid.UUID(int=5))
    assert memory().x == 1


def test_a_class_this_process_has_not_imported_is_a_clear_error(memory: MemoryFactory, raw: redis.Redis) -> None:
    mem = memory()
    mem.color = models.Color.RED
    raw.hset(mem._space.hash_key, "_kind:color", "enum:some.module.never.imported:Color")
    with pytest.raises(UnknownTypeError, match=r"import some\.module\.never\.imported"):
        _ = memory().color


def test_a_datetime_and_a_model_written_in_one_process_read_back_in_another(
    memory: MemoryFactory, server: RedisProcess, prefix: str
) -> None:
    context = multiprocessing.get_context("spawn")
    process = context.Process(target=models.write_typed, args=(server.url, prefix, "typed"))
    process.start()
    process.join(timeout=60)
    assert process.exitcode == 0
    mem = memory("typed")
    assert mem.last_activity == datetime(2025, 12, 24, 10, 15, 30, 123456, tzinfo=UTC)
    assert type(mem.last_activity) is datetime and mem.last_activity.tzinfo is UTC
    assert mem.profile == models.Profile(name="Alice", joined=datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC), tags=["vip"])
    assert mem.color is models.Color.GREEN


def test_sets_are_redis_sets(memory: MemoryFactory, raw: redis.Redis) -> None:
    mem = memory()
    mem.tags = {"billing", "urgent"}
    key = mem._space.collection_key("tags")
    assert raw.type(key) == "set" and raw.smembers(key) == {'"billing"', '"urgent"'}
    tags = mem.tags
    assert isinstance(tags, RedisSet) and isinstance(tags, set) and tags == {"billing", "urgent"}
    tags.add("vip")
    tags.discard("urgent")
    tags.discard("never there")
    tags |= {"a", "b"}
    tags -= {"a"}
    assert memory(separate=True).tags == {"billing", "vip", "b"}
    assert tags.has("vip") and not tags.has("urgent")
    with pytest.raises(KeyError):
        tags.remove("nope")
    tags.remove("b")
    popped = tags.pop()
    model = {"billing", "vip"} - {popped}
    assert popped in {"billing", "vip"} and memory(cache=False).tags == model
    tags &= {"billing"}
    model &= {"billing"}
    tags ^= {"x", "billing"}
    model ^= {"x", "billing"}
    assert tags == model and memory(cache=False).tags == model
    tags.clear()
    assert memory(cache=False).tags == set() and hasattr(memory(), "tags")
    with pytest.raises(KeyError):
        tags.pop()
    mem.empty = set()
    assert memory().empty == set()
    mem.numbers = frozenset({1, 2.5, None, "x"})
    assert memory(separate=True).numbers == {1, 2.5, None, "x"}


def test_set_members_must_be_json_scalars(memory: MemoryFactory) -> None:
    mem = memory()
    mem.tags = {"a"}
    with pytest.raises(UnstorableValueError):
        mem.tags = {(1, 2)}
    with pytest.raises(UnstorableValueError):
        mem.tags.add(b"bytes")
    assert memory().tags == {"a"}


def test_concurrent_set_adds_lose_nothing(memory: MemoryFactory) -> None:
    a, b = memory(), memory(separate=True)
    a.seen = set()
    for n in range(50):
        a.seen.add(f"a{n}")
        b.seen.add(f"b{n}")
    assert memory(cache=False).seen == {f"a{n}" for n in range(50)} | {f"b{n}" for n in range(50)}
