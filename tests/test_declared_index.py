"""Indexes from a declared class: attributes marked ``Indexed`` are what ``find`` / ``count`` /
``cleanup`` of that class filter and sort on, with RediSearch and with the SCAN fallback alike,
the answers checked against the same answers computed in Python."""

from __future__ import annotations

import asyncio
import enum
import uuid
import warnings
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any, ClassVar, Literal

import pytest
import redis

from redis_memory import (
    Conversation,
    ConversationMemory,
    Indexed,
    InvalidNameError,
)
from redis_memory.search.index import conversation_index, spec_for
from tests.servers import RedisProcess

pytestmark = pytest.mark.on_cluster  # also on a Redis Cluster (tests/conftest.py)

START = datetime(2025, 1, 1, tzinfo=UTC)


class Priority(enum.Enum):
    LOW = "low"
    HIGH = "high"


class Ticket(ConversationMemory):
    status: Annotated[Literal["open", "closed"], Indexed()]
    team: Annotated[str, Indexed(sortable=True)]
    summary: Annotated[str, Indexed(full_text_search=True)]
    opened: Annotated[datetime, Indexed(sortable=True)]
    due: Annotated[date | None, Indexed()]
    score: Annotated[int, Indexed(sortable=True)]
    weight: Annotated[float, Indexed()]
    urgent: Annotated[bool, Indexed()]
    priority: Annotated[Priority, Indexed()]
    ref: Annotated[uuid.UUID, Indexed()]
    note: str  # declared, not indexed


TEAMS = ["billing", "support", "sales"]


@pytest.fixture
def quiet() -> Iterator[None]:
    """The fallback warns once per server; these tests ignore it."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


@pytest.fixture
def tickets(server: RedisProcess, prefix: str, quiet: None) -> list[dict[str, Any]]:
    rows = []
    for n in range(24):
        row = {
            "id": f"t{n:02d}",
            "status": "open" if n % 3 else "closed",
            "team": TEAMS[n % 3],
            "summary": f"Refund for order {n}" if n % 2 else f"Login trouble {n}",
            "opened": (START + timedelta(days=n)).isoformat(),  # ISO text: stored as a time
            "due": date(2025, 2, 1) + timedelta(days=n % 5),
            "score": str(n),  # coerced to an int by the declaration
            "weight": n / 10,
            "urgent": n % 4 == 0,
            "priority": Priority.HIGH if n % 2 else Priority.LOW,
            "ref": uuid.UUID(int=n),
            "note": f"note {n}",
        }
        mem = Ticket(row["id"], url=server.url, prefix=prefix)
        for name, value in row.items():
            if name != "id":
                setattr(mem, name, value)
        rows.append(row)
    return rows


def found(server: RedisProcess, prefix: str, **query: Any) -> list[str]:
    return [mem.memory_id for mem in Ticket.find(url=server.url, prefix=prefix, limit=None, **query)]


def test_the_spec_comes_from_the_declared_markers() -> None:
    spec = spec_for(Ticket)
    assert spec.label == "ticket"
    assert spec.fields == {
        "status": "TAG",
        "team": "TAG",
        "summary": "TEXT",
        "opened": "NUMERIC",
        "due": "NUMERIC",
        "score": "NUMERIC",
        "weight": "NUMERIC",
        "urgent": "TAG",
        "priority": "TAG",
        "ref": "TAG",
    }
    assert spec.sortable == {"team", "opened", "score"}
    assert spec_for(Ticket) is spec  # cached per class
    assert spec_for(Conversation) == conversation_index() and spec_for(ConversationMemory) == conversation_index()


def test_filters_on_declared_fields(server: RedisProcess, prefix: str, tickets: list[dict[str, Any]]) -> None:
    def expect(keep: Any) -> set[str]:
        return {row["id"] for row in tickets if keep(row)}

    assert set(found(server, prefix, status="open")) == expect(lambda r: r["status"] == "open")
    assert set(found(server, prefix, team__in=["billing", "sales"], status="closed")) == expect(
        lambda r: r["team"] in ("billing", "sales") and r["status"] == "closed"
    )
    assert set(found(server, prefix, team__startswith="sup")) == expect(lambda r: r["team"] == "support")
    assert set(found(server, prefix, summary__contains="refund")) == expect(lambda r: "Refund" in r["summary"])
    cutoff = START + timedelta(days=10)
    assert set(found(server, prefix, opened__lt=cutoff)) == {f"t{n:02d}" for n in range(10)}
    assert set(found(server, prefix, due__gte=date(2025, 2, 4))) == expect(lambda r: r["due"] >= date(2025, 2, 4))
    assert set(found(server, prefix, score__gt=20, weight__lte=2.2)) == {"t21", "t22"}
    assert set(found(server, prefix, urgent=True)) == expect(lambda r: r["urgent"])
    assert set(found(server, prefix, priority=Priority.HIGH)) == expect(lambda r: r["priority"] is Priority.HIGH)
    assert found(server, prefix, ref=uuid.UUID(int=7)) == ["t07"]
    assert Ticket.count(url=server.url, prefix=prefix, status="closed", urgent=False) == len(
        expect(lambda r: r["status"] == "closed" and not r["urgent"])
    )
    with pytest.raises(InvalidNameError):  # declared but not indexed
        Ticket.count(url=server.url, prefix=prefix, note="note 1")
    with pytest.raises(InvalidNameError):  # indexed by the default schema, not by this class
        Ticket.count(url=server.url, prefix=prefix, state="active")


def test_sort_offset_and_limit_on_declared_fields(
    server: RedisProcess, prefix: str, tickets: list[dict[str, Any]]
) -> None:
    newest = Ticket.find(url=server.url, prefix=prefix, status="open", sort_by="-opened", offset=2, limit=5)
    open_ids = [row["id"] for row in reversed(tickets) if row["status"] == "open"]
    assert [mem.memory_id for mem in newest] == open_ids[2:7]
    by_score = found(server, prefix, team="support", sort_by="score")
    assert by_score == [row["id"] for row in tickets if row["team"] == "support"]
    assert newest[0].opened == datetime.fromisoformat(tickets[int(open_ids[2][1:])]["opened"])
    with pytest.raises(ValueError):
        Ticket.find(url=server.url, prefix=prefix, sort_by="nowhere")


def test_cleanup_on_a_declared_datetime(server: RedisProcess, prefix: str, tickets: list[dict[str, Any]]) -> None:
    age = datetime.now(UTC) - (START + timedelta(days=5, hours=12))
    assert sorted(Ticket.cleanup(age, field="opened", dry_run=True, url=server.url, prefix=prefix)) == [
        f"t{n:02d}" for n in range(6)
    ]
    assert Ticket.count(url=server.url, prefix=prefix) == 24
    removed = Ticket.cleanup(age, field="opened", url=server.url, prefix=prefix)
    assert sorted(removed) == [f"t{n:02d}" for n in range(6)]
    assert Ticket.count(url=server.url, prefix=prefix) == 18
    with pytest.raises(InvalidNameError):
        Ticket.cleanup(age, field="team", url=server.url, prefix=prefix)


def test_a_declared_datetime_is_stored_as_an_epoch_number(
    server: RedisProcess, prefix: str, raw: redis.Redis, tickets: list[dict[str, Any]]
) -> None:
    mem = Ticket("t03", url=server.url, prefix=prefix)
    assert raw.hget(mem._space.hash_key, "opened") == str(f"{(START + timedelta(days=3)).timestamp():.6f}")
    assert mem.opened == START + timedelta(days=3)


def test_the_default_and_a_declared_class_keep_their_own_indexes(
    server: RedisProcess, prefix: str, quiet: None
) -> None:
    plain = ConversationMemory("c1", url=server.url, prefix=prefix)
    plain.state = "active"
    ticket = Ticket("t1", url=server.url, prefix=prefix)
    ticket.status = "open"
    assert [mem.memory_id for mem in ConversationMemory.find(url=server.url, prefix=prefix, state="active")] == ["c1"]
    assert [mem.memory_id for mem in Ticket.find(url=server.url, prefix=prefix, status="open")] == ["t1"]
    assert Conversation.count(url=server.url, prefix=prefix, state="active") == 1


def test_an_index_marker_on_an_unindexable_type_is_refused() -> None:
    with pytest.raises(InvalidNameError, match="cannot be indexed"):

        class Lists(ConversationMemory):
            tags: Annotated[list[str], Indexed()]

    with pytest.raises(InvalidNameError, match="full_text_search"):

        class Numbers(ConversationMemory):
            count_of: Annotated[int, Indexed(full_text_search=True)]

    with pytest.raises(ValueError):  # InvalidNameError is a ValueError

        class Dicts(ConversationMemory):
            profile: Annotated[dict[str, int], Indexed()]


def test_objects_written_through_asyncio_are_found_by_the_declared_index(
    server: RedisProcess, prefix: str, quiet: None
) -> None:
    from redis_memory import aio

    async def write() -> None:
        for n in range(6):
            mem = aio.ConversationMemory(f"a{n}", url=server.url, prefix=prefix)
            await mem.set("status", "open" if n % 2 else "closed")
            await mem.set("team", TEAMS[n % 3])
            await mem.set("opened", START + timedelta(hours=n))
            await mem.set("score", n)
            await mem.aclose()

    asyncio.run(write())
    newest_open = Ticket.find(url=server.url, prefix=prefix, status="open", sort_by="-opened", limit=2)
    assert [mem.memory_id for mem in newest_open] == ["a5", "a3"]
    assert Ticket.count(url=server.url, prefix=prefix, score__gte=2, team__in=["billing", "sales"]) == 3


def test_the_index_label_comes_from_the_class() -> None:
    class Messages(ConversationMemory):  # not the library's message index
        topic: Annotated[str, Indexed()]

    class Named(ConversationMemory):
        index_label: ClassVar[str] = "Support_Tickets"
        topic: Annotated[str, Indexed()]

    class BadLabel(ConversationMemory):
        index_label: ClassVar[str] = "a:b"
        topic: Annotated[str, Indexed()]

    assert spec_for(Messages).label == "messages_memory"
    assert spec_for(Named).label == "support_tickets"
    assert spec_for(Named).alias("p:") == "p:idx:support_tickets"
    with pytest.raises(InvalidNameError):
        spec_for(BadLabel)
