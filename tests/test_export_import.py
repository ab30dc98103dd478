"""Export to JSON Lines and import back: every kind and type round-trips exactly."""

from __future__ import annotations

import io
import json
import uuid
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import redis

from redis_memory import ConversationMemory, InvalidValueError, ObjectExistsError
from redis_memory.migrations.exporting import export_jsonl, import_jsonl
from tests.models import Color, Priority, Profile
from tests.servers import RedisProcess


class Chat(ConversationMemory):
    """A conversation class declaring a list of models."""

    notes: list[Profile]


JOINED = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)


def fill(url: str, prefix: str) -> None:
    """Objects of every kind and type under ``prefix``."""
    mem = Chat("c/1: é", url=url, prefix=prefix)
    mem.state = "active ✓ ünïcode"
    mem.turns = 3
    mem.big = 2**100
    mem.score = 2.0
    mem.ratio = 0.1
    mem.done = False
    mem.closed_at = None
    mem.aware = datetime(2025, 12, 24, 10, 0, 0, 500000, tzinfo=UTC)
    mem.zoned = datetime(2025, 6, 1, 8, 30, tzinfo=ZoneInfo("Europe/Paris"))
    mem.offset = datetime(2025, 6, 1, 8, 30, tzinfo=timezone(timedelta(hours=-5)))
    mem.naive = datetime(2025, 1, 1, 12, 0)
    mem.day = date(2024, 2, 29)
    mem.ref = uuid.UUID("12345678-1234-5678-1234-567812345678")
    mem.amount = Decimal("9.90")
    mem.blob = b"\x00\xffbytes"
    mem.pair = (1, "two", [3])
    mem.color = Color.GREEN
    mem.priority = Priority.HIGH
    mem.last_activity = "2025-12-24T10:15:30+01:00"
    mem.messages = [{"role": "user", "content": "Hi ü"}, {"role": "assistant", "content": "1.0", "n": 1.0}]
    mem.empty_list = []
    mem.profile = {"name": "Alice", "nested": {"deep": [1, 2.5, {"x": None}]}, "flag": True}
    mem.empty_dict = {}
    mem.tags = {"vip", 3, 1.5, None, True}
    mem.empty_set = set()
    mem.model = Profile(name="Bob", joined=JOINED, tags=["a"], score=1.0)
    mem.notes = [Profile(name="Carol", joined=JOINED)]
    other = ConversationMemory(42, url=url, prefix=prefix, ttl=timedelta(hours=2))
    other.state = "expiring"
    other.messages = ["plain"]
    searchable = ConversationMemory("s1", url=url, prefix=prefix, index_messages=True)
    searchable.messages = [{"role": "user", "content": "Find ME please"}]
    searchable.messages.append({"role": "assistant", "content": "found"})


def snapshot(url: str, prefix: str, ids: list[str]) -> dict[str, dict[str, Any]]:
    """Every attribute of every object, read through the public API, with its type."""
    found = {}
    for one in ids:
        mem = Chat(one, url=url, prefix=prefix)
        values = {name: getattr(mem, name) for name in sorted(mem.to_dict())}
        found[one] = {name: (type(value), _plain(value)) for name, value in values.items()}
    return found


def _plain(value: Any) -> Any:
    if isinstance(value, list):
        return [(type(item), _plain(item)) for item in value]
    if isinstance(value, dict):
        return {key: (type(item), _plain(item)) for key, item in value.items()}
    if isinstance(value, datetime):
        return (value, value.tzinfo)
    return value


def exported(**options: Any) -> str:
    out = io.StringIO()
    export_jsonl(out, **options)
    return out.getvalue()


IDS = ["42", "c/1: é", "s1"]


@pytest.mark.parametrize("target_kind", ["modules", "plain"])
def test_round_trip_between_servers(
    server: RedisProcess, servers: dict[str, RedisProcess], prefix: str, target_kind: str
) -> None:
    fill(server.url, prefix)
    text = exported(url=server.url, prefix=prefix)
    lines = text.splitlines()
    assert json.loads(lines[0])["format"] == "redis-memory-export"
    assert [json.loads(line)["id"] for line in lines[1:]] == IDS
    target = servers[target_kind]
    report = import_jsonl(io.StringIO(text), url=target.url, prefix=prefix + "copy:")
    assert (report.objects, report.verified, report.dry_run, report.problems) == (3, True, False, [])
    assert snapshot(target.url, prefix + "copy:", IDS) == snapshot(server.url, prefix, IDS)
    again = exported(url=target.url, prefix=prefix + "copy:")
    assert again.splitlines()[1:] == lines[1:]  # byte-identical, the header's prefix aside
    client = redis.Redis.from_url(target.url)
    assert 0 < client.pttl(f"{prefix}copy:{{42}}") <= 2 * 3600 * 1000
    assert client.pexpiretime(f"{prefix}copy:{{42}}:messages") == client.pexpiretime(f"{prefix}copy:{{42}}")
    assert client.pttl(f"{prefix}copy:{{s1}}") == -1
    found = ConversationMemory.search_messages("find me", url=target.url, prefix=prefix + "copy:")
    assert [(match.conversation_id, match.message["content"]) for match in found] == [("s1", "Find ME please")]
    client.close()


@pytest.mark.on_cluster
def test_second_export_is_byte_identical(server: RedisProcess, prefix: str) -> None:
    fill(server.url, prefix)
    text = exported(url=server.url, prefix=prefix)
    import_jsonl(io.StringIO(text), url=server.url, prefix=prefix + "b:")
    import_jsonl(io.StringIO(exported(url=server.url, prefix=prefix + "b:")), url=server.url, prefix=prefix + "c:")
    assert exported(url=server.url, prefix=prefix + "c:").splitlines()[1:] == text.splitlines()[1:]
    assert exported(url=server.url, prefix=prefix) == text


def test_import_into_non_empty_refuses_and_changes_nothing(server: RedisProcess, prefix: str) -> None:
    fill(server.url, prefix)
    text = exported(url=server.url, prefix=prefix)
    target = prefix + "t:"
    kept = ConversationMemory("s1", url=server.url, prefix=target)
    kept.state = "mine"
    client = redis.Redis.from_url(server.url)
    before = sorted(client.scan_iter(f"{target}*"))
    with pytest.raises(ObjectExistsError, match="s1"):
        import_jsonl(io.StringIO(text), url=server.url, prefix=target)
    assert sorted(client.scan_iter(f"{target}*")) == before
    assert ConversationMemory("s1", url=server.url, prefix=target).to_dict() == {"state": "mine"}
    dry = import_jsonl(io.StringIO(text), url=server.url, prefix=target, overwrite=True, dry_run=True)
    assert (dry.dry_run, dry.objects, dry.replaced, dry.verified) == (True, 3, 1, False)
    assert sorted(client.scan_iter(f"{target}*")) == before
    report = import_jsonl(io.StringIO(text), url=server.url, prefix=target, overwrite=True)
    assert (report.replaced, report.verified) == (1, True)
    assert not hasattr(ConversationMemory("s1", url=server.url, prefix=target), "state")
    assert exported(url=server.url, prefix=target).splitlines()[1:] == text.splitlines()[1:]
    client.close()


def test_export_of_chosen_ids_and_progress(server: RedisProcess, prefix: str) -> None:
    fill(server.url, prefix)
    calls: list[tuple[int, int | None]] = []
    text = exported(url=server.url, prefix=prefix, ids=["s1", "missing"], progress=lambda *a: calls.append(a))
    assert [json.loads(line)["id"] for line in text.splitlines()[1:]] == ["s1"]
    assert calls == [(2, 2)]


def test_bad_input_raises_before_writing(server: RedisProcess, prefix: str) -> None:
    client = redis.Redis.from_url(server.url)
    header = json.dumps({"format": "redis-memory-export", "version": 1, "layout": 1, "prefix": "x:"})
    good = json.dumps({"id": "a", "attributes": {"n": {"kind": "int", "value": "1"}}})
    for body, pattern in [
        ("", "no header"),
        ('{"format": "other"}\n', "header"),
        (f"{header}\n{good}\nnot json\n", "line 3"),
        (f"{header}\n{good}\n" + json.dumps({"id": "b", "attributes": {"n": {"kind": "int", "value": "x"}}}), "int"),
        (f"{header}\n{good}\n{good}\n", "twice"),
    ]:
        with pytest.raises((InvalidValueError, TypeError), match=pattern):
            import_jsonl(io.StringIO(body), url=server.url, prefix=prefix)
    assert list(client.scan_iter(f"{prefix}*")) == []
    client.close()


def test_expired_objects_are_skipped_and_progress_reported(server: RedisProcess, prefix: str) -> None:
    header = json.dumps({"format": "redis-memory-export", "version": 1, "layout": 1, "prefix": "x:"})
    gone = {"id": "gone", "attributes": {"n": {"kind": "int", "value": "1"}}, "expires_at_ms": 1}
    kept = {"id": "kept", "attributes": {"n": {"kind": "float", "value": "1.0"}}}
    calls: list[tuple[int, int | None]] = []
    text = "\n".join([header, json.dumps(gone), json.dumps(kept)]) + "\n"
    report = import_jsonl(io.StringIO(text), url=server.url, prefix=prefix, progress=lambda *a: calls.append(a))
    assert (report.objects, report.skipped, report.verified) == (1, 1, True)
    assert calls == [(1, 1)]
    assert ConversationMemory("kept", url=server.url, prefix=prefix).n == 1.0
    assert type(ConversationMemory("kept", url=server.url, prefix=prefix).n) is float
    assert not hasattr(ConversationMemory("gone", url=server.url, prefix=prefix), "n")
    empty = json.dumps({"id": "e", "attributes": {}})
    with pytest.raises(InvalidValueError, match="at least one attribute"):
        import_jsonl(io.StringIO(f"{header}\n{empty}\n"), url=server.url, prefix=prefix + "e:")
