"""Latency of redis-memory against raw redis-py doing the same command, in one run.

One private redis-server (with RedisJSON and RediSearch, on a unix socket in a temporary
directory) is started for the run and stopped at the end; every key lives under a fresh
prefix. For each case the library and raw redis-py take their samples in small alternating
batches (the order rotates every round), so machine noise hits every side alike; each
operation is timed on its own, and the table shows medians and 90th percentiles in
microseconds.

Every side talks to the same server over the same kind of connection: a unix socket, with
the hiredis parser. The library uses its shared backend (one RESP3 connection with client
tracking). Raw redis-py is measured two ways:

* ``raw``: ``redis.Redis(unix_socket_path=..., single_connection_client=True)``, one dedicated
  connection like the library's; the acceptance checks use this, the stricter baseline;
* ``pool``: ``redis.Redis(unix_socket_path=...)`` with its defaults (a connection pool, which
  checks a connection out and back in around every command), for information.

Raw commands: append = ``RPUSH key json.dumps(message)`` (a raw user encodes the message too);
set = ``HSET hash state x``; get = ``HGET hash state``; full read = ``LRANGE key 0 -1`` then
``json.loads`` of each element.

The three append cases (history 0, 1,000 and 10,000) are measured in one interleaved run, so
the 10,000-vs-0 check compares figures taken in the same time windows. Histories are held at
their size: after each batch of appends the list is cut back again (untimed), through the
library (``pop()``) for the library's list and with LTRIM for the raw one. For the full read of
a list whose mirror is not valid, another client rewrites element 0 (LSET, untimed) before each
library read, so the library must take the invalidation and run a real LRANGE; every such read
is checked to return the new element 0.

Two whole-object cases (fewer samples: ``--atomic-samples``, default 1,000):

* ``3-write transaction``: ``with mem.transaction(): mem.state = "active";
  mem.messages.append(msg); mem.incr("total_messages")`` against raw redis-py sending the same
  three writes as one MULTI/EXEC pipeline (``pipeline(transaction=True)``: HSET, RPUSH of
  ``json.dumps(msg)``, HINCRBY; one round trip). Both lists are held at 10 messages as above
  (library ``pop()`` / LTRIM after each batch; the library's trim reads the list, so the first
  transaction of each batch may find it mirrored); an information row does the same at 1,000.
* ``to_dict() of 20 attributes``: a conversation of 16 scalars (strings, int, float, bool, an
  aware datetime, a UUID), an int counter (``incr``), a list of 10 messages, a dict and a set,
  against raw redis-py reading the same data (a hash, a list, a RedisJSON document, a set) with
  HGETALL + LRANGE + JSON.GET + SMEMBERS in one non-transactional pipeline, then decoding it
  to the same Python values. Every sample of both sides is checked to equal the stored values.

redis-py pipelines always take a connection from the client's pool (``single_connection_client``
does not apply to them), so for these two cases ``raw`` and ``pool`` run the same code.

Both whole-object cases are also checked not by timing but by the server's own counts
(``INFO commandstats``): after a warm-up that loads the scripts, each of several consecutive
transactions, and each of several ``to_dict()`` calls, must run exactly one EVALSHA; for
``to_dict()`` every other command counted must be one that ``snapshot.lua`` itself calls.

Queries (skipped with ``--skip-queries``): ``ConversationMemory.find(state="active",
last_activity__lt=cutoff, limit=10)`` and ``count(...)`` with the same filters, over conversations
stored the library's way (one hash ``<prefix>{<id>}`` each: ``state``, ``last_activity`` as epoch
seconds, ``total_messages`` and their ``_kind:<name>`` fields), written with raw redis-py pipelines
and checked to read back through the library. With RediSearch they run at 1,000, 10,000 and
100,000 conversations (one prefix grown in steps, so its index grows too; FT.INFO ``num_docs`` is
checked before timing; the first ``find()``, which creates the index, is not timed), against the
same FT.SEARCH sent by hand; without it (a second private server started without modules) the SCAN
fallback runs at 1,000 and 10,000 (its once-per-server RuntimeWarning is silenced). The table shows
medians in milliseconds and their growth from one size to the next; at 1,000 and 10,000 both
servers must give the same count and the same ids for ``sort_by="-last_activity"`` (PASS/FAIL).

Offline journal (no server): a ConversationMemory on a URL that refuses connections, its
backend set to fail over at once (``retry_for = 0``) into a fresh SQLite journal in a temporary
directory; after the first write has failed over, ``--journal-writes`` (default 5,000) writes
(``mem.state = ...`` and ``mem.incr("turns")`` alternately) are timed as they are journaled, and
``stats()[url]["journal_depth"]`` must count every write. The online append cases must journal
nothing (``stats()[url]["journaled"] == 0``). ``--only-journal`` runs just this section.

Run: ``make bench`` or ``.venv/bin/python bench/bench.py [--samples N]``. The exit code is 0
whatever the figures are (it is a report), unless the benchmark itself fails.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import random
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import redis

import redis_memory
from redis_memory import ConversationMemory, config
from redis_memory.journal import Journal
from redis_memory.keys import KeySpace

REPO_ROOT = Path(__file__).resolve().parent.parent
HISTORY_SIZES = (0, 1_000, 10_000)
READ_SIZE = 1_000
JOURNAL_RATE_LIMIT = 5_000  # journaled writes per second while Redis is unreachable
APPEND_GROWTH_LIMIT = 1.2  # append at 10k within 1.2x of append at 0
RAW_RATIO_LIMIT = 1.5  # append, set and get within 1.5x of raw redis-py
SIDES = ("lib", "raw", "pool")
TRANSACTION_HISTORIES = (10, 1_000)  # the first is the checked row; the second is information
ROUND_TRIP_CALLS = 5  # consecutive calls checked by INFO commandstats, after a warm-up
CONVERSATION_MESSAGES = 10

# The original package (redis-memory 0.4.3), from the design brief.
ORIGINAL_FIGURES = (
    ("append one message, history 0 / 1k / 10k", "3.5 / 6.4 / 44 ms", "0.14 ms (RPUSH)"),
    ("set / get one scalar", "1.4 / 1.4 ms", "0.13 / 0.15 ms (HSET / HGET)"),
)

Op = Callable[[], Any]
Hook = Callable[[], None]


def message(index: int) -> dict[str, Any]:
    """A chat message of a realistic size (about 130 bytes of JSON)."""
    return {
        "role": "user" if index % 2 == 0 else "assistant",
        "content": f"Message number {index}: could you summarise what we decided about the deployment plan?",
        "n": index,
    }


def encode(value: object) -> str:
    """JSON text the way the library stores a list element (compact, UTF-8)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


@dataclass
class Side:
    """One side of a case: the timed operation and its untimed hooks."""

    op: Op
    before_each: Hook | None = None  # untimed, before every sample
    check: Callable[[Any], None] | None = None  # untimed, given every sample's result
    after_batch: Hook | None = None  # untimed, after every batch

    def run_batch(self, count: int) -> list[int]:
        """Take ``count`` samples; return their durations in nanoseconds."""
        op, before, check = self.op, self.before_each, self.check
        clock = time.perf_counter_ns
        durations: list[int] = []
        for _ in range(count):
            if before is not None:
                before()
            start = clock()
            result = op()
            durations.append(clock() - start)
            if check is not None:
                check(result)
        if self.after_batch is not None:
            self.after_batch()
        return durations


def _us(nanoseconds: float) -> float:
    return nanoseconds / 1000


@dataclass
class Result:
    """The samples of one case, in nanoseconds, per side (``lib``, ``raw``, ``pool``)."""

    name: str
    info: bool = False  # shown in the table, but no acceptance check uses it
    samples: dict[str, list[int]] = field(default_factory=lambda: {side: [] for side in SIDES})
    rounds: list[dict[str, float]] = field(default_factory=list)  # each round's batch median per side

    def median(self, side: str) -> float:
        """Median of ``side`` in microseconds."""
        return _us(statistics.median(self.samples[side]))

    def p90(self, side: str) -> float:
        """90th percentile of ``side`` in microseconds."""
        return _us(statistics.quantiles(self.samples[side], n=10, method="inclusive")[8])

    def ratio(self, side: str = "raw") -> float:
        """Library median / ``side`` median."""
        return self.median("lib") / self.median(side)

    @property
    def paired_ratio(self) -> float:
        """Median over rounds of (library batch median / raw batch median): robust to slow phases."""
        return statistics.median(medians["lib"] / medians["raw"] for medians in self.rounds)

    def row(self) -> tuple[str, ...]:
        """The table row (microseconds and ratios)."""
        return (
            self.name + (" (info)" if self.info else ""),
            f"{self.median('lib'):.1f}",
            f"{self.p90('lib'):.1f}",
            f"{self.median('raw'):.1f}",
            f"{self.p90('raw'):.1f}",
            _ratio_text(self.ratio()),
            _ratio_text(self.paired_ratio),
            f"{self.median('pool'):.1f}",
            _ratio_text(self.ratio("pool")),
        )


def _ratio_text(ratio: float) -> str:
    return f"{ratio:.2f}x" if ratio >= 0.1 else f"{ratio:.4f}x"


def measure(
    cases: dict[str, dict[str, Side]], samples: int, batch: int, warmup: int, info: bool = False
) -> list[Result]:
    """Take a batch from every side of every case in turn, the order rotating each round; warm up first.

    Cases measured together share their time windows, so they can be compared with each other
    (append at 10,000 against append at 0) as fairly as with their raw baselines.
    """
    order = [(case, side) for case in cases for side in SIDES]
    results = {case: Result(case, info=info) for case in cases}
    for targets, count in (({case: Result(case) for case in cases}, warmup), (results, samples)):
        for index in range(max(1, count // batch)):
            shift = index % len(order)
            medians: dict[str, dict[str, float]] = {case: {} for case in cases}
            for case, side in order[shift:] + order[:shift]:
                durations = cases[case][side].run_batch(batch)
                targets[case].samples[side] += durations
                medians[case][side] = statistics.median(durations)
            for case in cases:
                targets[case].rounds.append(medians[case])
    sys.stdout.write(f"  measured {', '.join(cases)}\n")
    sys.stdout.flush()
    return list(results.values())


def paired_growth(later: Result, first: Result) -> float:
    """Median over shared rounds of (library batch median of ``later`` / that of ``first``)."""
    return statistics.median(a["lib"] / b["lib"] for a, b in zip(later.rounds, first.rounds, strict=True))


def fill(client: redis.Redis, key: str, size: int) -> None:
    """RPUSH ``size`` messages onto ``key`` with raw redis-py, in chunks."""
    for first in range(0, size, 1000):
        client.rpush(key, *(encode(message(i)) for i in range(first, min(size, first + 1000))))


def command_calls(client: redis.Redis) -> dict[str, int]:
    """Calls per command so far (INFO commandstats; commands run inside scripts included)."""
    stats = client.info("commandstats")
    return {name.removeprefix("cmdstat_"): int(stat["calls"]) for name, stat in stats.items()}


def command_delta(client: redis.Redis, action: Callable[[], object]) -> dict[str, int]:
    """The commands the server ran during ``action()``, but for the INFO that took the first count."""
    before = command_calls(client)
    action()
    after = command_calls(client)
    changed = {name: count - before.get(name, 0) for name, count in after.items()}
    changed["info"] = changed.get("info", 0) - 1
    return {name: count for name, count in changed.items() if count}


def script_commands(path: str) -> set[str]:
    """The commands a Lua script of the library calls (``redis.call('X', ...)``), as commandstats names them."""
    source = resources.files("redis_memory").joinpath(path).read_text("utf-8")
    return {name.lower() for name in re.findall(r"redis\.call\(\s*'([^']+)'", source)}


def delta_text(delta: dict[str, int]) -> str:
    """``evalsha 1, lrange 1, ...``: a command delta, EVALSHA first."""
    ordered = sorted(delta.items(), key=lambda item: (item[0] != "evalsha", item[0]))
    return ", ".join(f"{name} {count}" for name, count in ordered) or "nothing"


# The 20-attribute conversation of the to_dict() case: 16 scalars, a counter and 3 collections.
CONVERSATION_STRINGS = {
    "state": "active",
    "user_name": "Ada Lovelace",
    "assistant_name": "helper",
    "model": "gpt-4o-mini",
    "language": "en",
    "locale": "en_GB",
    "channel": "web",
    "topic": "deployment plan",
    "title": "Rolling out the new billing service",
    "summary": "The user wants a staged rollout with a canary in one region first.",
}
CONVERSATION_SCALARS: dict[str, Any] = {
    **CONVERSATION_STRINGS,
    "priority": 2,
    "max_tokens": 1024,
    "temperature": 0.7,
    "escalated": False,
    "started_at": datetime(2024, 5, 1, 12, 30, 15, tzinfo=UTC),
    "session_id": uuid.UUID("6f1c1d2e-3b4a-4c5d-8e9f-0a1b2c3d4e5f"),
}
CONVERSATION_COUNTER = 37  # total_messages, set with incr()
CONVERSATION_CONTEXT = {"customer": {"id": 4711, "plan": "pro"}, "region": "eu-west-1", "open_tickets": [12, 19]}
CONVERSATION_TAGS = {"billing", "deployment", "urgent"}


def conversation_values() -> dict[str, Any]:
    """The 20 attributes as Python values, as ``to_dict()`` must return them."""
    values = {
        **CONVERSATION_SCALARS,
        "total_messages": CONVERSATION_COUNTER,
        "messages": [message(i) for i in range(CONVERSATION_MESSAGES)],
        "context": CONVERSATION_CONTEXT,
        "tags": set(CONVERSATION_TAGS),
    }
    assert len(values) == 20
    return values


def _raw_field(value: object) -> str:
    """How a raw redis-py user stores a scalar in a hash field."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


# How the raw side decodes each hash field (a raw user knows the schema).
RAW_DECODERS: dict[bytes, Callable[[bytes], Any]] = {
    **{name.encode(): bytes.decode for name in CONVERSATION_STRINGS},
    b"priority": int,
    b"max_tokens": int,
    b"total_messages": int,
    b"temperature": float,
    b"escalated": lambda value: value == b"1",
    b"started_at": lambda value: datetime.fromisoformat(value.decode()),
    b"session_id": lambda value: uuid.UUID(value.decode()),
}


class Bench:
    """The cases, all on one server, under one fresh key prefix."""

    def __init__(self, url: str, socket: str, args: argparse.Namespace) -> None:
        """Open the raw clients (nothing is written until a case runs)."""
        self.url = url
        self.raw = redis.Redis(unix_socket_path=socket, single_connection_client=True)
        self.pool = redis.Redis(unix_socket_path=socket)
        self.writer = redis.Redis(unix_socket_path=socket)  # "another client": invalidates mirrors
        self.samples, self.read_samples, self.batch, self.warmup = (
            args.samples,
            args.read_samples,
            args.batch,
            args.warmup,
        )
        self.atomic_samples = args.atomic_samples
        self.prefix = f"bench-{uuid.uuid4().hex[:10]}:"
        self.results: list[Result] = []
        self.stale_reads = 0
        self.round_trips: list[tuple[bool, str, str]] = []  # (passed, check, detail)
        self.online_journaled = -1  # writes the online append cases journaled (must be 0)

    def close(self) -> None:
        """Close the raw clients."""
        for client in (self.raw, self.pool, self.writer):
            client.close()

    def memory(self, conversation_id: str) -> ConversationMemory:
        """A conversation of this run (on the library's shared backend for the server)."""
        return ConversationMemory(conversation_id, url=self.url, prefix=self.prefix)

    def raw_key(self, name: str) -> str:
        """A key for the raw sides, under this run's prefix."""
        return f"{self.prefix}raw:{name}"

    def _measure(self, cases: dict[str, dict[str, Side]], samples: int, info: bool = False) -> None:
        self.results += measure(cases, samples, self.batch, self.warmup, info=info)

    def appends(self) -> None:
        """Append at every history size, all interleaved with each other and with raw RPUSH."""
        cases, checks = {}, []
        for history in HISTORY_SIZES:
            sides, check = self._append_sides(history)
            cases[f"append, history {history:,}"] = sides
            checks.append(check)
        self._measure(cases, self.samples)
        for check in checks:
            check()
        self.online_journaled = config.stats()[config.backend_for(url=self.url).label]["journaled"]

    def _append_sides(self, history: int) -> tuple[dict[str, Side], Hook]:
        """``mem.messages.append(msg)`` (attribute access every time) vs RPUSH of the same JSON."""
        mem = self.memory(f"append-{history}")
        mem.messages = [message(i) for i in range(history)]
        key = self.raw_key(f"append-{history}")
        fill(self.raw, key, history)
        msg = message(history)

        def library_op() -> None:
            mem.messages.append(msg)

        def library_trim() -> None:
            held = mem.messages
            while len(held) > history:
                held.pop()

        def raw_side(client: redis.Redis) -> Side:
            def op() -> None:
                client.rpush(key, json.dumps(msg, ensure_ascii=False, separators=(",", ":")))

            def trim() -> None:
                if history:
                    client.ltrim(key, 0, history - 1)
                else:
                    client.delete(key)

            return Side(op, after_batch=trim)

        def check() -> None:
            if len(mem.messages) != history or self.raw.llen(key) != history:
                raise AssertionError(f"history {history} did not stay at its size")

        sides = {"lib": Side(library_op, after_batch=library_trim), "raw": raw_side(self.raw)}
        sides["pool"] = raw_side(self.pool)
        return sides, check

    def scalars(self) -> None:
        """``mem.state = "x"`` vs HSET, and ``mem.state`` vs HGET."""
        mem = self.memory("scalars")
        mem.state = "x"
        key = self.raw_key("scalars")
        self.raw.hset(key, "state", "x")

        def library_set() -> None:
            mem.state = "x"

        def library_get() -> Any:
            return mem.state

        def raw_set(client: redis.Redis) -> Side:
            return Side(lambda: client.hset(key, "state", "x"))

        def raw_get(client: redis.Redis) -> Side:
            return Side(lambda: client.hget(key, "state"))

        sets = {"lib": Side(library_set), "raw": raw_set(self.raw), "pool": raw_set(self.pool)}
        self._measure({"set scalar": sets}, self.samples)
        gets = {"lib": Side(library_get), "raw": raw_get(self.raw), "pool": raw_get(self.pool)}
        self._measure({"get scalar": gets}, self.samples)
        if mem.state != "x" or self.raw.hget(key, "state") != b"x":
            raise AssertionError("the scalar was not stored")

    def full_read(self) -> None:
        """``list(mem.messages)`` of 1,000 messages: mirror invalidated by another client, then mirrored."""
        mem = self.memory("read")
        mem.messages = [message(i) for i in range(READ_SIZE)]
        library_key = KeySpace(self.prefix, "read").collection_key("messages")
        raw_key = self.raw_key("read")
        fill(self.raw, raw_key, READ_SIZE)
        writer = self.writer
        variants = [message(0), {**message(0), "content": "edited by another client"}]
        texts = [encode(variant) for variant in variants]
        turn = [0]

        def invalidate() -> None:
            turn[0] ^= 1
            writer.lset(library_key, 0, texts[turn[0]])

        def check(items: list[Any]) -> None:
            if len(items) != READ_SIZE:
                raise AssertionError(f"read {len(items)} messages, expected {READ_SIZE}")
            if dict(items[0]) != variants[turn[0]]:
                self.stale_reads += 1

        def library_read() -> list[Any]:
            return list(mem.messages)

        def raw_side(client: redis.Redis, rewrite: bool) -> Side:
            def op() -> list[Any]:
                return [json.loads(item) for item in client.lrange(raw_key, 0, -1)]

            def before() -> None:  # the same untimed extra command as the library side's
                writer.lset(raw_key, 0, texts[turn[0]])

            return Side(op, before_each=before if rewrite else None)

        invalid = {"lib": Side(library_read, before_each=invalidate, check=check)}
        invalid |= {"raw": raw_side(self.raw, True), "pool": raw_side(self.pool, True)}
        self._measure({f"full read {READ_SIZE:,}, mirror invalid": invalid}, self.read_samples)
        mirrored = {"lib": Side(library_read), "raw": raw_side(self.raw, False), "pool": raw_side(self.pool, False)}
        self._measure({f"full read {READ_SIZE:,}, mirrored": mirrored}, self.read_samples, info=True)

    def transactions(self) -> None:
        """Three writes in ``mem.transaction()`` vs one MULTI/EXEC pipeline; then the round-trip check."""
        for number, history in enumerate(TRANSACTION_HISTORIES):
            sides, check = self._transaction_sides(history)
            name = "3-write transaction" + (f", history {history:,}" if number else "")
            self._measure({name: sides}, self.atomic_samples, info=number > 0)
            check()
        self._transaction_round_trips()

    def _transaction_sides(self, history: int) -> tuple[dict[str, Side], Hook]:
        mem = self.memory(f"tx-{history}")
        mem.state = "new"
        mem.messages = [message(i) for i in range(history)]
        hash_key, list_key = self.raw_key(f"tx-{history}"), self.raw_key(f"tx-{history}:messages")
        self.raw.hset(hash_key, "state", "new")
        fill(self.raw, list_key, history)
        msg = message(history)

        def library_op() -> None:
            with mem.transaction():
                mem.state = "active"
                mem.messages.append(msg)
                mem.incr("total_messages")

        def library_trim() -> None:
            held = mem.messages
            while len(held) > history:
                held.pop()

        def raw_side(client: redis.Redis) -> Side:
            def op() -> None:
                pipe = client.pipeline(transaction=True)
                pipe.hset(hash_key, "state", "active")
                pipe.rpush(list_key, json.dumps(msg, ensure_ascii=False, separators=(",", ":")))
                pipe.hincrby(hash_key, "total_messages", 1)
                pipe.execute()

            def trim() -> None:
                client.ltrim(list_key, 0, history - 1)

            return Side(op, after_batch=trim)

        def check() -> None:
            if len(mem.messages) != history or self.raw.llen(list_key) != history:
                raise AssertionError(f"transaction history {history} did not stay at its size")
            if mem.state != "active" or not mem.total_messages > 0 or self.raw.hget(hash_key, "state") != b"active":
                raise AssertionError("the transaction's writes were not stored")

        sides = {"lib": Side(library_op, after_batch=library_trim), "raw": raw_side(self.raw)}
        sides["pool"] = raw_side(self.pool)
        return sides, check

    def _transaction_round_trips(self) -> None:
        """Each of several consecutive transactions, after a warm-up one, must run one EVALSHA."""
        history = TRANSACTION_HISTORIES[0]
        mem = self.memory("tx-round-trips")
        mem.messages = [message(i) for i in range(history)]
        msg = message(history)

        def transaction() -> None:
            with mem.transaction():
                mem.state = "active"
                mem.messages.append(msg)
                mem.incr("total_messages")

        transaction()  # warm-up: the batch script is loaded
        deltas = [command_delta(self.writer, transaction) for _ in range(ROUND_TRIP_CALLS)]
        counts = [delta.get("evalsha", 0) for delta in deltas]
        if mem.total_messages != 1 + ROUND_TRIP_CALLS or len(mem.messages) != history + 1 + ROUND_TRIP_CALLS:
            raise AssertionError("the checked transactions were not all applied")
        self.round_trips.append(
            (
                all(count == 1 for count in counts),
                f"3-write transaction costs one round trip: EVALSHA per transaction {counts} "
                f"({ROUND_TRIP_CALLS} consecutive transactions after a warm-up one; must all be 1)",
                f"server commands of the last one (scripts' inner commands included): {delta_text(deltas[-1])}",
            )
        )

    def snapshots(self) -> None:
        """``mem.to_dict()`` of 20 attributes vs one pipeline of HGETALL + LRANGE + JSON.GET + SMEMBERS."""
        values = conversation_values()
        mem = self.memory("snapshot")
        for name, value in values.items():
            if name != "total_messages":
                setattr(mem, name, value)
        mem.incr("total_messages", CONVERSATION_COUNTER)
        hash_key = self.raw_key("snapshot")
        list_key, doc_key, set_key = (f"{hash_key}:{name}" for name in ("messages", "context", "tags"))
        fields = {name: _raw_field(value) for name, value in CONVERSATION_SCALARS.items()}
        fields["total_messages"] = str(CONVERSATION_COUNTER)
        self.raw.hset(hash_key, mapping=fields)  # type: ignore[arg-type]
        fill(self.raw, list_key, CONVERSATION_MESSAGES)
        self.raw.execute_command("JSON.SET", doc_key, "$", encode(CONVERSATION_CONTEXT))  # type: ignore[no-untyped-call]
        self.raw.sadd(set_key, *CONVERSATION_TAGS)

        def check(result: dict[str, Any]) -> None:
            if result != values:
                raise AssertionError(f"a snapshot differs from the stored values: {result!r}")

        def raw_side(client: redis.Redis) -> Side:
            def op() -> dict[str, Any]:
                pipe = client.pipeline(transaction=False)
                pipe.hgetall(hash_key)
                pipe.lrange(list_key, 0, -1)
                pipe.execute_command("JSON.GET", doc_key)  # type: ignore[no-untyped-call]
                pipe.smembers(set_key)
                scalars, items, document, members = pipe.execute()
                result = {field.decode(): RAW_DECODERS[field](value) for field, value in scalars.items()}
                result["messages"] = [json.loads(item) for item in items]
                result["context"] = json.loads(document)
                result["tags"] = {member.decode() for member in members}
                return result

            return Side(op, check=check)

        sides = {"lib": Side(mem.to_dict, check=check), "raw": raw_side(self.raw), "pool": raw_side(self.pool)}
        self._measure({"to_dict() of 20 attributes": sides}, self.atomic_samples)
        self._snapshot_round_trips(mem)

    def _snapshot_round_trips(self, mem: ConversationMemory) -> None:
        """Each of several ``to_dict()`` calls must run one EVALSHA and only what ``snapshot.lua`` runs."""
        mem.to_dict()  # warm-up: the snapshot script is loaded
        inner = script_commands("lua/snapshot.lua")
        deltas = [command_delta(self.writer, mem.to_dict) for _ in range(ROUND_TRIP_CALLS)]
        counts = [delta.get("evalsha", 0) for delta in deltas]
        others = sorted({name for delta in deltas for name in delta if name != "evalsha" and name not in inner})
        self.round_trips.append(
            (
                all(count == 1 for count in counts) and not others,
                f"to_dict() of 20 attributes costs one round trip: EVALSHA per call {counts} "
                f"({ROUND_TRIP_CALLS} calls after a warm-up one; must all be 1); commands other than "
                f"EVALSHA and those snapshot.lua calls: {', '.join(others) or 'none'}",
                f"server commands of the last one (scripts' inner commands included): {delta_text(deltas[-1])}",
            )
        )


# -- queries: find() / count() with RediSearch and with the SCAN fallback ----------------------

QUERY_SIZES = (1_000, 10_000, 100_000)  # conversations under one prefix, grown in steps (RediSearch)
FALLBACK_SIZES = (1_000, 10_000)  # the same conversations on a server without RediSearch
QUERY_STATES = ("active", "closed", "paused")
QUERY_START = datetime(2025, 1, 1, tzinfo=UTC)
QUERY_SPAN = 10_000_000  # last_activity: distinct whole seconds in [start, start + span)
QUERY_CUTOFF = QUERY_START + timedelta(seconds=QUERY_SPAN // 2)  # about half are older
QUERY_SEED = 20250101
POPULATE_CHUNK = 1_000  # HSET commands per pipeline
QUERY_BATCH = 5


@dataclass(frozen=True)
class QueryRow:
    """One stored conversation of the query cases."""

    conversation_id: str
    state: str
    seconds: int  # last_activity, whole seconds after QUERY_START
    total_messages: int

    @property
    def last_activity(self) -> datetime:
        return QUERY_START + timedelta(seconds=self.seconds)

    def hash_fields(self) -> dict[str, str]:
        """The hash fields exactly as the library writes these three scalars (see redis_memory.scalars)."""
        epoch = int(QUERY_START.timestamp()) + self.seconds
        return {
            "state": self.state,
            "_kind:state": "str",
            "last_activity": f"{epoch}.000000",
            "_kind:last_activity": "datetime:UTC",
            "total_messages": str(self.total_messages),
            "_kind:total_messages": "int",
        }


def query_rows(count: int) -> list[QueryRow]:
    """``count`` conversations, the same on every run: random states, distinct last_activity."""
    rng = random.Random(QUERY_SEED)
    seconds = rng.sample(range(QUERY_SPAN), count)
    return [
        QueryRow(f"q{index:06d}", rng.choice(QUERY_STATES), seconds[index], rng.randrange(200))
        for index in range(count)
    ]


def populate(client: redis.Redis, prefix: str, rows: list[QueryRow]) -> None:
    """HSET every row's hash ``<prefix>{<id>}`` with raw redis-py, in pipelines of POPULATE_CHUNK commands."""
    for first in range(0, len(rows), POPULATE_CHUNK):
        pipe = client.pipeline(transaction=False)
        for row in rows[first : first + POPULATE_CHUNK]:
            pipe.hset(KeySpace(prefix, row.conversation_id).hash_key, mapping=row.hash_fields())  # type: ignore[arg-type]
        pipe.execute()


def _field(info: Any, name: str) -> Any:
    """A field of an FT.INFO reply (a dict or a flat list, bytes or str keys)."""
    if isinstance(info, list):
        info = dict(zip(info[::2], info[1::2], strict=False))
    value = info.get(name, info.get(name.encode()))
    return value.decode() if isinstance(value, bytes) else value


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


@dataclass
class QueryResult:
    """The samples of one query case at one size, in nanoseconds (``raw``: FT.SEARCH by hand, if any)."""

    server: str
    case: str
    size: int
    matches: int
    lib: list[int]
    raw: list[int] | None = None
    info: bool = False

    def median(self, side: str = "lib") -> float:
        """Median in milliseconds."""
        samples = self.lib if side == "lib" else self.raw
        assert samples is not None
        return statistics.median(samples) / 1e6

    def p90(self) -> float:
        """90th percentile of the library in milliseconds."""
        return statistics.quantiles(self.lib, n=10, method="inclusive")[8] / 1e6


def time_rotating(ops: dict[str, Op], samples: int, warmup: int, batch: int = QUERY_BATCH) -> dict[str, list[int]]:
    """Batches of every op in turn, the order rotating each round; warm-up batches first (not kept)."""
    names = list(ops)
    kept: dict[str, list[int]] = {name: [] for name in names}
    for count, keep in ((warmup, False), (samples, True)):
        for index in range(-(-count // batch)):
            shift = index % len(names)
            for name in names[shift:] + names[:shift]:
                durations = Side(ops[name]).run_batch(batch)
                if keep:
                    kept[name] += durations
    return kept


class QueryBench:
    """``ConversationMemory.find / count`` over 1k-100k conversations: RediSearch, then the SCAN fallback."""

    def __init__(self, search_server: Any, plain_server: Any, prefix: str, args: argparse.Namespace) -> None:
        """Both servers must be running; nothing is written until :meth:`run`."""
        self.servers = {"RediSearch": search_server, "SCAN fallback": plain_server}
        self.raws = {name: redis.Redis(unix_socket_path=str(server.socket)) for name, server in self.servers.items()}
        self.single = redis.Redis(unix_socket_path=str(search_server.socket), single_connection_client=True)
        self.prefix = prefix
        self.samples, self.big_samples, self.scan_samples = (
            args.query_samples,
            args.big_query_samples,
            args.scan_samples,
        )
        self.rows = query_rows(QUERY_SIZES[-1])
        self.results: list[QueryResult] = []
        self.checks: list[tuple[bool, str]] = []
        self.commands: dict[str, str] = {}
        self.populate_seconds: dict[int, float] = {}
        self.index_name = ""

    def close(self) -> None:
        """Close the raw clients."""
        for client in (*self.raws.values(), self.single):
            client.close()

    def find(self, server: str, **options: Any) -> list[ConversationMemory]:
        return ConversationMemory.find(
            url=self.servers[server].url,
            prefix=self.prefix,
            state="active",
            last_activity__lt=QUERY_CUTOFF,
            **options,
        )

    def count(self, server: str) -> int:
        return ConversationMemory.count(
            url=self.servers[server].url, prefix=self.prefix, state="active", last_activity__lt=QUERY_CUTOFF
        )

    def expected(self, size: int) -> tuple[int, list[str]]:
        """The answer computed in Python: (count, the 10 newest ids)."""
        cutoff = int((QUERY_CUTOFF - QUERY_START).total_seconds())
        found = [row for row in self.rows[:size] if row.state == "active" and row.seconds < cutoff]
        newest = sorted(found, key=lambda row: row.seconds, reverse=True)[:10]
        return len(found), [row.conversation_id for row in newest]

    def run(self) -> None:
        """Grow the conversations in steps; measure at every size; compare the two servers."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # the fallback's once-per-server warning
            stored = 0
            for size in QUERY_SIZES:
                servers = [name for name in self.servers if name == "RediSearch" or size in FALLBACK_SIZES]
                started = time.monotonic()
                for name in servers:
                    populate(self.raws[name], self.prefix, self.rows[stored:size])
                self.populate_seconds[size] = time.monotonic() - started
                if not stored:
                    self._check_layout()
                stored = size
                self._search_cases(size)
                if size in FALLBACK_SIZES:
                    self._fallback_cases(size)
                self._compare(size, servers)
                sys.stdout.write(f"  measured queries at {size:,} conversations\n")
                sys.stdout.flush()

    def _check_layout(self) -> None:
        """The raw hashes read back through the library, and equal what the library itself writes."""
        for server in self.servers:
            for row in (self.rows[0], self.rows[1], self.rows[QUERY_SIZES[0] - 1]):
                mem = ConversationMemory(row.conversation_id, url=self.servers[server].url, prefix=self.prefix)
                got = (mem.state, mem.last_activity, mem.total_messages)
                if got != (row.state, row.last_activity, row.total_messages) or mem.last_activity.tzinfo is not UTC:
                    raise AssertionError(f"{row.conversation_id} reads back as {got!r}, not {row!r}")
        row = self.rows[0]
        scratch = f"{self.prefix}layout:"
        mem = ConversationMemory(row.conversation_id, url=self.servers["RediSearch"].url, prefix=scratch)
        mem.state, mem.last_activity, mem.total_messages = row.state, row.last_activity, row.total_messages
        written = self.raws["RediSearch"].hgetall(KeySpace(scratch, row.conversation_id).hash_key)
        if {_text(k): _text(v) for k, v in written.items()} != row.hash_fields():
            raise AssertionError(f"the library writes {written!r}, the bench {row.hash_fields()!r}")
        mem.clear()

    def _wait_for_docs(self, size: int) -> None:
        """FT.INFO num_docs must reach ``size`` (and indexing be done) before anything is timed."""
        deadline = time.monotonic() + 60
        while True:
            info = self.single.execute_command("FT.INFO", self.index_name)  # type: ignore[no-untyped-call]
            docs, indexing = int(float(_field(info, "num_docs"))), int(float(_field(info, "indexing") or 0))
            if docs == size and not indexing:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"the index holds {docs} documents (indexing {indexing}), expected {size}")
            time.sleep(0.05)

    def _search_cases(self, size: int) -> None:
        server = "RediSearch"
        if not self.index_name:
            self.find(server)  # creates the index (and waits for it): never timed
            names = [_text(name) for name in self.single.execute_command("FT._LIST")]  # type: ignore[no-untyped-call]
            mine = [name for name in names if name.startswith(f"{self.prefix}idx:")]
            if len(mine) != 1:
                raise AssertionError(f"expected one index under {self.prefix}, found {names}")
            self.index_name = mine[0]
            delta = command_delta(self.raws[server], lambda: self.find(server))
            self.commands["find"] = delta_text(delta)
            self.commands["count"] = delta_text(command_delta(self.raws[server], lambda: self.count(server)))
        self._wait_for_docs(size)
        cutoff = repr(float(QUERY_CUTOFF.timestamp()))
        query = f"@state:{{$s}} @last_activity:[-inf ({cutoff}]"
        base = ("FT.SEARCH", self.index_name, query, "NOCONTENT", "VERBATIM", "PARAMS", "2", "s", "active")
        base += ("DIALECT", "2")
        raw = self.single

        def raw_find() -> Any:
            return raw.execute_command(*base, "LIMIT", "0", "10")  # type: ignore[no-untyped-call]

        def raw_count() -> Any:
            return raw.execute_command(*base, "LIMIT", "0", "0")  # type: ignore[no-untyped-call]

        def raw_sorted() -> Any:
            return raw.execute_command(*base, "SORTBY", "last_activity", "DESC", "LIMIT", "0", "10")  # type: ignore[no-untyped-call]

        ops: dict[str, Op] = {
            "find": lambda: self.find(server, limit=10),
            "count": lambda: self.count(server),
            "find sorted": lambda: self.find(server, limit=10, sort_by="-last_activity"),
            "raw find": raw_find,
            "raw count": raw_count,
            "raw find sorted": raw_sorted,
        }
        expected_count, _ = self.expected(size)
        raw_total = raw_count()
        raw_total = _field(raw_total, "total_results") if isinstance(raw_total, dict) else raw_total[0]
        found = self.find(server, limit=10)
        cutoff_epoch = QUERY_CUTOFF.timestamp()
        if (
            int(raw_total) != expected_count
            or len(found) != min(10, expected_count)
            or any(m.state != "active" or not m.last_activity.timestamp() < cutoff_epoch for m in found)
        ):
            raise AssertionError(f"RediSearch at {size:,}: the timed queries do not give the expected answer")
        samples = self.samples if size < QUERY_SIZES[-1] else self.big_samples
        timed = time_rotating(ops, samples, warmup=2 * QUERY_BATCH)
        for case, info in (("find", False), ("count", False), ("find sorted", True)):
            self.results.append(
                QueryResult(server, case, size, expected_count, timed[case], timed[f"raw {case}"], info=info)
            )

    def _fallback_cases(self, size: int) -> None:
        server = "SCAN fallback"
        expected_count, _ = self.expected(size)
        ops: dict[str, Op] = {"find": lambda: self.find(server, limit=10), "count": lambda: self.count(server)}
        samples = self.scan_samples if size > FALLBACK_SIZES[0] else self.samples // 4
        timed = time_rotating(ops, samples, warmup=2, batch=2)
        for case in ops:
            self.results.append(QueryResult(server, case, size, expected_count, timed[case]))

    def _compare(self, size: int, servers: list[str]) -> None:
        """Same count and same 10 newest ids (sort_by="-last_activity") on every server, and as computed."""
        expected = self.expected(size)
        answers = {
            name: (self.count(name), [m.conversation_id for m in self.find(name, sort_by="-last_activity")])
            for name in servers
        }
        if len(servers) > 1:
            (first, a), (second, b) = answers.items()
            self.checks.append(
                (
                    a == b == expected,
                    f"{size:,} conversations: {first} and {second} agree: count {a[0]:,} / {b[0]:,} "
                    f"(computed {expected[0]:,}); find(sort_by='-last_activity', limit=10) ids "
                    f"{'identical' if a[1] == b[1] else 'DIFFER'} ({a[1][0]} ... {a[1][-1]})"
                    f"{'' if a[1] == expected[1] else '; not the computed ids'}",
                )
            )
        else:
            ((name, answer),) = answers.items()
            self.checks.append(
                (
                    answer == expected,
                    f"{size:,} conversations: {name} gives the computed answer: count {answer[0]:,} "
                    f"(computed {expected[0]:,}), the 10 newest ids "
                    f"{'identical' if answer[1] == expected[1] else 'DIFFER'}",
                )
            )

    def report(self) -> None:
        """The queries table, the growth between sizes and the cross-server checks."""
        out = sys.stdout.write
        out(
            '\nqueries: ConversationMemory.find(state="active", last_activity__lt=cutoff, limit=10) and '
            "count(...) with the same filters, milliseconds\n"
        )
        populated = ", ".join(f"{size:,} in {seconds:.1f} s" for size, seconds in self.populate_seconds.items())
        out(
            "  conversations stored the library's way (one hash each: state, last_activity, total_messages + "
            f"_kind fields), populated with raw pipelines (up to {populated}); about 1 in 6 match\n"
        )
        out(
            f"  RediSearch: {self.samples} samples per case ({self.big_samples} at {QUERY_SIZES[-1]:,}), the index "
            f"grown with the data (FT.INFO num_docs checked before timing); SCAN fallback: a server without "
            f"modules, {self.samples // 4} samples at {FALLBACK_SIZES[0]:,}, "
            f"{self.scan_samples} at {FALLBACK_SIZES[-1]:,}\n"
        )
        out(
            "  raw = the same FT.SEARCH sent by hand with redis-py (single connection); sorted = "
            'find(..., sort_by="-last_activity"); growth = median / median at the previous size\n\n'
        )
        header = ("case", "conversations", "matches", "lib med", "lib p90", "raw med", "lib/raw", "growth")
        rows = [header]
        previous: dict[tuple[str, str], QueryResult] = {}
        for result in self.results:
            key = (result.server, result.case)
            before = previous.get(key)
            previous[key] = result
            growth = f"{result.median() / before.median():.2f}x" if before else "-"
            rows.append(
                (
                    f"{result.server}: {result.case}" + (" (info)" if result.info else ""),
                    f"{result.size:,}",
                    f"{result.matches:,}",
                    f"{result.median():.3f}",
                    f"{result.p90():.3f}",
                    f"{result.median('raw'):.3f}" if result.raw else "-",
                    f"{result.median() / result.median('raw'):.2f}x" if result.raw else "-",
                    growth,
                )
            )
        widths = [max(len(row[column]) for row in rows) for column in range(len(header))]
        ordered = [rows[0], *sorted(rows[1:], key=lambda row: (row[0].startswith("SCAN"), "(info)" in row[0], row[0]))]
        for number, row in enumerate(ordered):
            cells = [
                row[0].ljust(widths[0]),
                *(cell.rjust(width) for cell, width in zip(row[1:], widths[1:], strict=True)),
            ]
            out("  " + "  ".join(cells) + "\n")
            if number == 0:
                out("  " + "  ".join("-" * width for width in widths) + "\n")

        out("\n  growth of the median with the number of conversations\n")
        for server, case in dict.fromkeys((r.server, r.case) for r in self.results):
            series = [r for r in self.results if (r.server, r.case) == (server, case)]
            steps = ", ".join(
                f"{a.size:,} -> {b.size:,}: {b.median() / a.median():.2f}x" for a, b in itertools.pairwise(series)
            )
            whole = series[-1].median() / series[0].median()
            out(
                f"    {server} {case}: {steps}"
                + (f"; {series[-1].size // series[0].size}x the conversations: {whole:.2f}x" if len(series) > 2 else "")
                + "\n"
            )
        out("\n  server commands per call with RediSearch (INFO commandstats, not timed)\n")
        for case, text in self.commands.items():
            out(f"    {case}(): {text}\n")

        out("\nqueries: same answers with RediSearch and with the SCAN fallback\n")
        for passed, text in self.checks:
            out(check_line(passed, text))


def print_table(results: list[Result]) -> None:
    """The results table (microseconds)."""
    header = ("case", "lib med", "lib p90", "raw med", "raw p90", "lib/raw", "paired", "pool med", "lib/pool")
    rows = [header, *(result.row() for result in results)]
    widths = [max(len(row[column]) for row in rows) for column in range(len(header))]
    for number, row in enumerate(rows):
        cells = [row[0].ljust(widths[0]), *(cell.rjust(width) for cell, width in zip(row[1:], widths[1:], strict=True))]
        sys.stdout.write("  " + "  ".join(cells) + "\n")
        if number == 0:
            sys.stdout.write("  " + "  ".join("-" * width for width in widths) + "\n")


def check_line(ok: bool, text: str) -> str:
    """One acceptance check, PASS or FAIL."""
    return f"  [{'PASS' if ok else 'FAIL'}] {text}\n"


def library_revision() -> str:
    """The git commit of the working tree and whether ``redis_memory/`` differs from it (read-only git)."""
    environment = {**os.environ, "GIT_OPTIONAL_LOCKS": "0"}
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, env=environment
        )
        diff = subprocess.run(
            ["git", "diff", "--quiet", "HEAD", "--", "redis_memory"],
            cwd=REPO_ROOT,
            capture_output=True,
            env=environment,
        )
    except OSError:
        return "unknown revision"
    if head.returncode != 0:
        return "unknown revision"
    return f"commit {head.stdout.strip()}" + (" + uncommitted changes in redis_memory/" if diff.returncode else "")


def report(bench: Bench, server_version: str) -> None:
    """Print the environment, the table, the acceptance checks and the original package's figures."""
    out = sys.stdout.write
    by_name = {result.name: result for result in bench.results}
    appends = [by_name[f"append, history {size:,}"] for size in HISTORY_SIZES]
    scalars = [by_name["set scalar"], by_name["get scalar"]]

    out("\nredis-memory vs raw redis-py: same private server, same unix socket, microseconds\n")
    out(
        f"  redis-server {server_version}, Python {platform.python_version()}, redis-py {redis.__version__}, "
        f"redis-memory {redis_memory.__version__} ({library_revision()})\n"
    )
    out(
        f"  {bench.samples} samples per side per case ({bench.read_samples} for full reads) after "
        f"{bench.warmup} warm-up, in rotating batches of {bench.batch}\n"
    )
    out("  raw  = redis.Redis(unix_socket_path=..., single_connection_client=True): RESP2, one connection\n")
    out("  pool = redis.Redis(unix_socket_path=...) defaults: RESP2, connection pool (information only)\n")
    out("  commands: append RPUSH json.dumps(msg); set HSET; get HGET; full read LRANGE 0 -1 + json.loads each\n")
    out(
        f"  {bench.atomic_samples} samples per side for the transaction and to_dict() cases; transaction: "
        "MULTI HSET RPUSH HINCRBY EXEC pipelined; to_dict(): HGETALL LRANGE JSON.GET SMEMBERS pipelined + decoding\n"
    )
    out("  paired = median over rounds of (lib batch median / raw batch median)\n\n")
    print_table(bench.results)
    if bench.stale_reads:
        out(f"\n  WARNING: {bench.stale_reads} invalidated full reads returned a stale element 0\n")
    else:
        out("\n  every invalidated full read returned the other client's new element 0\n")

    out("\nacceptance checks (ratios of medians; raw = single-connection redis-py)\n")
    first, last = appends[0], appends[-1]
    growth = last.median("lib") / first.median("lib")
    out(
        check_line(
            growth <= APPEND_GROWTH_LIMIT,
            f"append at {HISTORY_SIZES[-1]:,} within {APPEND_GROWTH_LIMIT}x of append at {HISTORY_SIZES[0]}: "
            f"{last.median('lib'):.1f} / {first.median('lib'):.1f} us = {growth:.2f}x "
            f"(paired {paired_growth(last, first):.2f}x)",
        )
    )
    for result in [*appends, *scalars]:
        out(
            check_line(
                result.ratio() <= RAW_RATIO_LIMIT,
                f"{result.name} within {RAW_RATIO_LIMIT}x of raw redis-py: {result.median('lib'):.1f} / "
                f"{result.median('raw'):.1f} us = {result.ratio():.2f}x (paired {result.paired_ratio:.2f}x); "
                f"vs the default pooled client {result.ratio('pool'):.2f}x "
                f"({'within' if result.ratio('pool') <= RAW_RATIO_LIMIT else 'over'} {RAW_RATIO_LIMIT}x)",
            )
        )

    out(
        check_line(
            bench.online_journaled == 0,
            f"journal overhead online: {bench.online_journaled} journaled writes, no journal I/O "
            "(stats()[url]['journaled'] after the append cases)",
        )
    )

    out("\none round trip (counted by the server, INFO commandstats, not timed)\n")
    for passed, text, detail in bench.round_trips:
        out(check_line(passed, text))
        out(f"         {detail}\n")
    for name in ("3-write transaction", "to_dict() of 20 attributes"):
        result = by_name[name]
        out(
            f"  {name} vs raw redis-py in one pipelined round trip: {result.median('lib'):.1f} / "
            f"{result.median('raw'):.1f} us = {result.ratio():.2f}x (paired {result.paired_ratio:.2f}x)\n"
        )

    out("\nfor context: the original package (redis-memory 0.4.3), from DESIGN.md (loopback TCP Redis)\n")
    for workload, original, raw_figure in ORIGINAL_FIGURES:
        out(f"  {workload}: {original}; raw redis-py {raw_figure}\n")
    shown = " / ".join(f"{result.median('lib') / 1000:.3f}" for result in appends)
    out(
        f"  this run, redis-memory: append {shown} ms; set / get "
        f"{scalars[0].median('lib') / 1000:.3f} / {scalars[1].median('lib') / 1000:.3f} ms\n"
    )


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (connections to it are refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def offline_journal(writes: int) -> None:
    """Time writes journaled to SQLite while Redis refuses connections; check the journal's depth."""
    out = sys.stdout.write
    url = f"redis://127.0.0.1:{free_port()}/0"
    with tempfile.TemporaryDirectory(prefix="rm-journal-") as directory:
        backend = config.backend_for(url=url)
        backend.retry_for = 0  # fail over to the journal at once
        journal = backend.journal = Journal(Path(directory) / "journal.sqlite3")
        try:
            mem = ConversationMemory("journal-bench", url=url, prefix=f"bench-{uuid.uuid4().hex[:10]}:")
            mem.state = "first"  # refused: fails over to the journal (later writes queue behind it)
            if config.stats()[url]["journal_depth"] != 1:
                raise AssertionError("the first offline write was not journaled")
            clock = time.perf_counter
            start = clock()
            for i in range(writes):
                if i % 2:
                    mem.incr("turns")
                else:
                    mem.state = f"s{i}"
            seconds = clock() - start
            depth = config.stats()[url]["journal_depth"]
            last_state = mem.state  # the last known value, served offline
        finally:
            with backend._lock:  # the replay thread, on its next attempt, finds itself "forked" and stops
                backend._pid = -2
            journal.close()
    rate = writes / seconds
    out(f"\noffline journal: {url} refuses connections; writes journaled to SQLite (WAL, synchronous=NORMAL)\n")
    out(
        f"  {writes:,} writes (mem.state = ... / mem.incr('turns') alternately) after the first fail-over: "
        f"{seconds:.3f} s, {1e6 * seconds / writes:.0f} us per write\n"
    )
    out(
        check_line(
            rate >= JOURNAL_RATE_LIMIT, f"journaled writes while offline >= {JOURNAL_RATE_LIMIT:,}/s: {rate:,.0f}/s"
        )
    )
    expected_state = f"s{writes - 2 + writes % 2}" if writes else "first"
    out(
        check_line(
            depth == writes + 1 and last_state == expected_state,
            f"journal_depth {depth:,} == {writes + 1:,} writes made (the first fail-over + {writes:,}); "
            f"last known state {last_state!r}",
        )
    )


def redis_process_class() -> Any:
    """``tests.servers.RedisProcess``, importable once the repository root is on ``sys.path``."""
    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))
    from tests.servers import RedisProcess

    return RedisProcess


def main(argv: list[str] | None = None) -> int:
    """Start a private server, run every case, print the report, stop the server."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--samples", type=int, default=3000, help="samples per side per case (default 3000)")
    parser.add_argument("--read-samples", type=int, default=2000, help="samples per side, full reads (default 2000)")
    parser.add_argument(
        "--atomic-samples", type=int, default=1000, help="samples per side, transaction and to_dict (default 1000)"
    )
    parser.add_argument("--batch", type=int, default=10, help="samples per batch (default 10)")
    parser.add_argument("--warmup", type=int, default=300, help="warm-up samples per side per case (default 300)")
    parser.add_argument("--skip-queries", action="store_true", help="skip the find() / count() cases")
    parser.add_argument(
        "--query-samples", type=int, default=200, help="samples per query case, RediSearch at 1k and 10k (default 200)"
    )
    parser.add_argument(
        "--big-query-samples", type=int, default=100, help="samples per query case, RediSearch at 100k (default 100)"
    )
    parser.add_argument(
        "--scan-samples", type=int, default=20, help="samples per query case, SCAN fallback at 10k (default 20)"
    )
    parser.add_argument(
        "--journal-writes", type=int, default=5000, help="writes timed in the offline journal (default 5000)"
    )
    parser.add_argument("--only-journal", action="store_true", help="run only the offline journal section")
    args = parser.parse_args(argv)

    started = time.monotonic()
    if args.only_journal:
        try:
            offline_journal(args.journal_writes)
        finally:
            config.reset()
        sys.stdout.write(f"\n(total {time.monotonic() - started:.0f} s)\n")
        return 0

    with tempfile.TemporaryDirectory(prefix="rm-bench-") as directory:
        server = redis_process_class()(Path(directory) / "srv", modules=True).start()
        plain: Any = None
        bench: Bench | None = None
        queries: QueryBench | None = None
        try:
            bench = Bench(server.url, str(server.socket), args)
            version = str(bench.raw.info("server")["redis_version"])
            sys.stdout.write(f"benchmarking on a private redis-server {version} at {server.socket}\n")
            bench.appends()
            bench.scalars()
            bench.full_read()
            bench.transactions()
            bench.snapshots()
            report(bench, version)
            if not args.skip_queries:
                plain = redis_process_class()(Path(directory) / "plain", modules=False).start()
                queries = QueryBench(server, plain, f"{bench.prefix}q:", args)
                sys.stdout.write("\nqueries: find() / count() with RediSearch and with the SCAN fallback\n")
                queries.run()
                queries.report()
            offline_journal(args.journal_writes)
        finally:
            config.reset()
            if queries is not None:
                queries.close()
            if bench is not None:
                bench.close()
            if plain is not None:
                plain.stop()
            server.stop()
    sys.stdout.write(f"\n(total {time.monotonic() - started:.0f} s)\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
