"""find / count / ids / cleanup: one suite, run with RediSearch and with the SCAN fallback,
checked against the same answers computed in Python."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from redis_memory import ConversationMemory, InvalidNameError, UnstorableValueError
from redis_memory.search.filters import escape, words
from tests.servers import RedisProcess

pytestmark = pytest.mark.on_cluster  # also on a Redis Cluster (tests/conftest.py)

STATES = ["active", "closed", "paused"]
TOPICS = ["billing", "technical support", "refunds & returns", "billing"]
START = datetime(2025, 1, 1, tzinfo=UTC)


@pytest.fixture
def quiet() -> Iterator[None]:
    """The fallback warns once per server (tested below); the other tests ignore it."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


@pytest.fixture
def people(server: RedisProcess, prefix: str, quiet: None) -> list[dict[str, Any]]:
    rows = []
    for n in range(30):
        row = {
            "id": f"c{n:02d}",
            "state": STATES[n % 3],
            "current_topic": TOPICS[n % 4],
            "last_activity": START + timedelta(days=n),
            "total_messages": n,
            "confidence": n / 30,
            "user_name": f"user{n % 5}",
            "summary": f"Customer asked about invoice {n} and a Refund" if n % 2 else f"Greeting number {n}",
        }
        mem = ConversationMemory(row["id"], url=server.url, prefix=prefix)
        for name, value in row.items():
            if name != "id":
                setattr(mem, name, value)
        mem.messages = [{"role": "user", "content": "hi"}]  # collections are not hashes: not matched
        rows.append(row)
    return rows


Find = Callable[..., list[str]]


@pytest.fixture
def find(server: RedisProcess, prefix: str, quiet: None) -> Find:
    def run(**kwargs: Any) -> list[str]:
        return [mem.conversation_id for mem in ConversationMemory.find(url=server.url, prefix=prefix, **kwargs)]

    return run


def ids_where(rows: list[dict[str, Any]], keep: Callable[[dict[str, Any]], bool]) -> set[str]:
    return {row["id"] for row in rows if keep(row)}


def test_every_filter_kind(people: list[dict[str, Any]], find: Find) -> None:
    cutoff = START + timedelta(days=10)
    cases: list[tuple[dict[str, Any], Callable[[dict[str, Any]], bool]]] = [
        ({"state": "active"}, lambda r: r["state"] == "active"),
        ({"state__ne": "active"}, lambda r: r["state"] != "active"),
        ({"state__in": ["closed", "paused"]}, lambda r: r["state"] in ("closed", "paused")),
        ({"current_topic": "refunds & returns"}, lambda r: r["current_topic"] == "refunds & returns"),
        ({"current_topic": "technical support", "state": "closed"},
         lambda r: r["current_topic"] == "technical support" and r["state"] == "closed"),
        ({"last_activity__lt": cutoff}, lambda r: r["last_activity"] < cutoff),
        ({"last_activity__lte": cutoff}, lambda r: r["last_activity"] <= cutoff),
        ({"last_activity__gt": cutoff}, lambda r: r["last_activity"] > cutoff),
        ({"last_activity__gte": cutoff, "total_messages__lt": 20},
         lambda r: r["last_activity"] >= cutoff and r["total_messages"] < 20),
        ({"total_messages": 7}, lambda r: r["total_messages"] == 7),
        ({"total_messages__ne": 7}, lambda r: r["total_messages"] != 7),
        ({"confidence__gte": 0.5}, lambda r: r["confidence"] >= 0.5),
        ({"summary__contains": "refund"}, lambda r: "refund" in words(r["summary"])),
        ({"summary__contains": "INVOICE 7"}, lambda r: {"invoice", "7"} <= set(words(r["summary"]))),
        ({"summary__contains": "refunds"}, lambda r: False),  # no stemming: words match exactly
        ({"user_name": "nobody"}, lambda r: False),
        ({"current_topic__startswith": "bill"}, lambda r: r["current_topic"].startswith("bill")),
        ({"current_topic__startswith": "refunds &"}, lambda r: r["current_topic"].startswith("refunds &")),
        ({"user_name__startswith": "user1", "state__ne": "closed"},
         lambda r: r["user_name"].startswith("user1") and r["state"] != "closed"),
        ({"user_name__startswith": "zzz"}, lambda r: False),
        ({}, lambda r: True),
    ]  # fmt: skip
    for filters, keep in cases:
        assert set(find(limit=None, **filters)) == ids_where(people, keep), filters


def test_sorting_and_paging(people: list[dict[str, Any]], find: Find, server: RedisProcess, prefix: str) -> None:
    newest = find(state="active", sort_by="-last_activity", limit=None)
    expected = [
        r["id"] for r in sorted(people, key=lambda r: r["last_activity"], reverse=True) if r["state"] == "active"
    ]
    assert newest == expected
    assert find(state="active", sort_by="-last_activity", limit=3) == expected[:3]
    assert find(state="active", sort_by="-last_activity", limit=3, offset=3) == expected[3:6]
    assert find(sort_by="total_messages", limit=4) == ["c00", "c01", "c02", "c03"]
    assert ConversationMemory.count(url=server.url, prefix=prefix, state="active") == len(expected)
    assert ConversationMemory.count(url=server.url, prefix=prefix) == 30
    found = ConversationMemory.find(url=server.url, prefix=prefix, total_messages=5)
    assert found[0].summary == "Customer asked about invoice 5 and a Refund"  # loaded on access


def test_bad_queries_are_refused(people: list[dict[str, Any]], find: Find) -> None:
    with pytest.raises(InvalidNameError):
        find(colour="red")  # not an indexed field
    with pytest.raises(InvalidNameError):
        find(state__gt="a")  # ranges need a NUMERIC field
    with pytest.raises(InvalidNameError):
        find(summary="x")  # TEXT fields are matched by words
    with pytest.raises(InvalidNameError):
        find(state__like="x")
    with pytest.raises(UnstorableValueError):
        find(state__in="active")  # a list is needed
    with pytest.raises(ValueError):
        find(sort_by="colour")
    with pytest.raises(ValueError):
        find(limit=-1)


def test_the_fallback_warns_once(plain_url: str, prefix: str) -> None:
    from redis_memory.search import index

    index._warned.discard(plain_url)
    with pytest.warns(RuntimeWarning, match="RediSearch is not loaded"):
        ConversationMemory.find(url=plain_url, prefix=prefix, state="x")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ConversationMemory.find(url=plain_url, prefix=prefix, state="x")  # no second warning


@pytest.fixture
def plain_url(servers: dict[str, RedisProcess]) -> str:
    return servers["plain"].url


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(values=st.lists(st.text(min_size=1, max_size=12).filter(lambda v: "\x1f" not in v), min_size=1, max_size=5))
def test_any_value_matches_literally(server: RedisProcess, quiet: None, values: list[str]) -> None:
    import uuid

    prefix = f"h{uuid.uuid4().hex[:8]}:"
    stored = {}
    for n, value in enumerate(values):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            continue
        ConversationMemory(f"h{n}", url=server.url, prefix=prefix).state = value
        stored[f"h{n}"] = value

    def tag(text: str) -> str:  # as RediSearch indexes a TAG: up to a NUL, whitespace around it trimmed
        return text.split("\x00", 1)[0].strip(" \t\n\r\x0b\x0c")

    for value in set(stored.values()):
        expected = {key for key, stored_value in stored.items() if tag(stored_value) == tag(value) != ""}
        found = {
            mem.conversation_id
            for mem in ConversationMemory.find(url=server.url, prefix=prefix, state=value, limit=None)
        }
        assert found == expected, (value, escape(value))
        for cut in range(len(tag(value)) + 1):
            start = tag(value)[:cut]
            starting = {
                key for key, stored_value in stored.items() if tag(stored_value) and tag(stored_value).startswith(start)
            }
            by_prefix = ConversationMemory.find(url=server.url, prefix=prefix, state__startswith=start, limit=None)
            assert {mem.conversation_id for mem in by_prefix} == starting, (value, start)
        others = {
            mem.conversation_id
            for mem in ConversationMemory.find(url=server.url, prefix=prefix, state__ne=value, limit=None)
        }
        assert others == set(stored) - expected


def test_cleanup_removes_every_key_of_old_conversations(
    server: RedisProcess, prefix: str, raw: redis.Redis, quiet: None
) -> None:
    now = datetime.now(UTC)
    for conversation_id, age in (("old", 30), ("recent", 1)):
        mem = ConversationMemory(conversation_id, url=server.url, prefix=prefix)
        mem.last_activity = now - timedelta(days=age)
        mem.state = "active"
        mem.messages = [{"role": "user", "content": "hi"}]
        mem.context = {"topic": "billing"}
        mem.tags = {"vip"}
    assert ConversationMemory.cleanup(timedelta(days=7), dry_run=True, url=server.url, prefix=prefix) == ["old"]
    assert len(raw.keys(f"{prefix}{{old}}*")) == 4
    assert ConversationMemory.cleanup(timedelta(days=7), url=server.url, prefix=prefix) == ["old"]
    assert raw.keys(f"{prefix}{{old}}*") == []
    assert len(raw.keys(f"{prefix}{{recent}}*")) == 4
    assert ConversationMemory.ids(url=server.url, prefix=prefix) == ["recent"]


def test_ids_never_uses_keys(server: RedisProcess, prefix: str, raw: redis.Redis) -> None:
    from tests.test_costs import delta

    for name in ("a", "b:c", "{x}"):
        ConversationMemory(name, url=server.url, prefix=prefix).n = 1
    commands = delta(raw, lambda: ConversationMemory.ids(url=server.url, prefix=prefix))
    assert "keys" not in commands and commands.get("scan", 0) >= 1
    assert ConversationMemory.ids(url=server.url, prefix=prefix) == sorted(["a", "b:c", "{x}"])


def test_a_seed_style_string_datetime_is_found_and_a_non_time_text_left_out_the_same_way(
    server: RedisProcess, prefix: str, quiet: None
) -> None:
    # The seed stores last_activity as ISO text: it is stored as a time (tests/test_time_texts.py).
    # A text that is no time in a NUMERIC field: RediSearch does not index that hash, and the
    # fallback leaves it out the same way.
    ConversationMemory("text", url=server.url, prefix=prefix).last_activity = "2025-12-24T10:15:00"
    ConversationMemory("typed", url=server.url, prefix=prefix).last_activity = START
    ConversationMemory("words", url=server.url, prefix=prefix).last_activity = "Christmas Eve"
    found = ConversationMemory.find(url=server.url, prefix=prefix, limit=None)
    assert sorted(m.conversation_id for m in found) == ["text", "typed"]


def test_a_raw_query_with_parameters(
    modules_server: RedisProcess, prefix: str, servers: dict[str, RedisProcess]
) -> None:
    from redis_memory import ServerError

    for n in range(5):
        mem = ConversationMemory(f"r{n}", url=modules_server.url, prefix=prefix)
        mem.state, mem.total_messages = ("active" if n % 2 else "closed"), n
    found = ConversationMemory.find_raw(
        "@state:{$s} @total_messages:[2 +inf]", params={"s": "active"}, url=modules_server.url, prefix=prefix
    )
    assert [m.conversation_id for m in found] == ["r3"]
    with pytest.raises(ServerError, match="needs RediSearch"):
        ConversationMemory.find_raw("*", url=servers["plain"].url, prefix=prefix)


def test_limit_none_returns_every_match_past_ten_thousand(modules_server: RedisProcess, prefix: str) -> None:
    # FT.SEARCH stops at MAXSEARCHRESULTS (10,000): limit=None streams them all instead.
    client = modules_server.client()
    pipe = client.pipeline(transaction=False)
    for n in range(10_050):
        pipe.hset(f"{prefix}{{m{n}}}", mapping={"state": "bulk", "_kind:state": "str", "total_messages": n,
                                                "_kind:total_messages": "int"})  # fmt: skip
    pipe.execute()
    found = ConversationMemory.find(url=modules_server.url, prefix=prefix, state="bulk", limit=None)
    assert len(found) == 10_050
    ordered = ConversationMemory.find(
        url=modules_server.url, prefix=prefix, state="bulk", sort_by="-total_messages", limit=None, offset=5
    )
    assert [m.conversation_id for m in ordered[:2]] == ["m10044", "m10043"] and len(ordered) == 10_045
    assert ConversationMemory.count(url=modules_server.url, prefix=prefix, state="bulk") == 10_050
