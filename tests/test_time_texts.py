"""Times written the seed's way, as ISO-8601 text (``mem.last_activity =
datetime.now().isoformat()``), are queryable by time (issue 13): ``find``, ``count``,
``cleanup`` and sorting see them, with RediSearch and with the scan fallback, on one server and
on a cluster; reading the attribute gives back the text as it was stored."""

from __future__ import annotations

import warnings
from datetime import UTC, datetime, timedelta

import pytest

from redis_memory import ConversationMemory
from tests.conftest import MemoryFactory
from tests.servers import RedisProcess

pytestmark = pytest.mark.on_cluster  # also on a Redis Cluster (tests/conftest.py)

NOW = datetime.now(UTC)


def texts() -> dict[str, str]:
    """Conversation id -> its last_activity, written as text in every ISO form the seed's
    code and other clients produce."""
    return {
        "aware-old": (NOW - timedelta(days=10)).isoformat(),
        "naive-old": (NOW - timedelta(days=9)).replace(tzinfo=None).isoformat(),  # as datetime.now() gives
        "zulu-old": (NOW - timedelta(days=8)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "date-old": (NOW - timedelta(days=30)).date().isoformat(),
        "recent": (NOW - timedelta(hours=1)).isoformat(),
        "naive-recent": NOW.replace(tzinfo=None).isoformat(timespec="seconds"),
    }


def query(server: RedisProcess, prefix: str, **filters: object) -> list[str]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the scan fallback's, without RediSearch
        return [
            m.conversation_id for m in ConversationMemory.find(url=server.url, prefix=prefix, limit=None, **filters)
        ]


def test_iso_texts_of_time_fields_are_found_by_time_and_read_back_as_written(
    memory: MemoryFactory, server: RedisProcess, prefix: str
) -> None:
    for conversation_id, text in texts().items():
        mem = memory(conversation_id)
        mem.state = "active"
        mem.last_activity = text
        mem.created_at = text
    for conversation_id, text in texts().items():
        other = memory(conversation_id, separate=True)
        assert other.last_activity == text and type(other.last_activity) is str  # the text, as written
        assert other.to_dict()["created_at"] == text
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        stale = ConversationMemory.cleanup(older_than=timedelta(days=7), dry_run=True, url=server.url, prefix=prefix)
        assert sorted(stale) == ["aware-old", "date-old", "naive-old", "zulu-old"]
        assert ConversationMemory.count(url=server.url, prefix=prefix, state="active") == 6  # none left out
        ordered = ConversationMemory.find(sort_by="last_activity", limit=None, url=server.url, prefix=prefix)
    assert [m.conversation_id for m in ordered] == [
        "date-old", "aware-old", "naive-old", "zulu-old", "recent", "naive-recent"
    ]  # fmt: skip
    assert sorted(query(server, prefix, created_at__gte=NOW - timedelta(days=9, minutes=1))) == sorted(
        ["naive-old", "zulu-old", "recent", "naive-recent"]
    )


def test_the_seed_cleanup_finds_what_the_seed_chat_bot_wrote(
    memory: MemoryFactory, server: RedisProcess, prefix: str
) -> None:
    old = memory("chat-old")
    old.last_activity = (datetime.now() - timedelta(days=8)).isoformat()  # the seed's ChatBot, local time
    memory("chat-new").last_activity = datetime.now().isoformat()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        removed = ConversationMemory.cleanup(older_than=timedelta(days=7), url=server.url, prefix=prefix)
    assert removed == ["chat-old"]
    assert not hasattr(memory("chat-old", separate=True), "last_activity")
    assert isinstance(memory("chat-new", separate=True).last_activity, str)


def test_compare_and_set_and_transactions_see_the_text(memory: MemoryFactory) -> None:
    mem = memory()
    first, second = "2026-01-02T03:04:05", "2026-01-02T03:04:06+01:00"
    mem.last_activity = first
    assert not mem.compare_and_set("last_activity", "2026-01-02T03:04:05.000", second)  # another text
    assert mem.compare_and_set("last_activity", first, second)
    assert memory(separate=True).last_activity == second
    with mem.transaction():
        mem.last_activity = first
        mem.started_at = second
    assert (memory(separate=True).last_activity, memory(separate=True).started_at) == (first, second)


def test_other_texts_and_other_fields_stay_plain_text(memory: MemoryFactory, raw: object) -> None:
    mem = memory()
    mem.last_activity = "yesterday"  # not a time: a str, as before
    mem.summary = "2026-01-02T03:04:05"  # not a time field: a str
    again = memory(separate=True)
    assert again.last_activity == "yesterday" and again.summary == "2026-01-02T03:04:05"
    stored = raw.hgetall(mem._space.hash_key)  # type: ignore[attr-defined]
    assert stored["summary"] == "2026-01-02T03:04:05" and stored["_kind:summary"] == "str"
    mem.last_activity = "2026-01-02T03:04:05Z"
    stored = raw.hgetall(mem._space.hash_key)  # type: ignore[attr-defined]
    assert float(stored["last_activity"]) == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC).timestamp()
    assert stored["_kind:last_activity"] == "isotext:2026-01-02T03:04:05Z"
