"""The whole-object cases: a 3-write transaction and ``to_dict()`` of 20 attributes, timed and counted.

Each is timed against raw redis-py sending the same work in one pipeline, then checked by the
server's own counts (``INFO commandstats``) to cost one EVALSHA per call; the results and those
checks are left on the run's ``common.Bench`` for ``report.report()``.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import redis
from common import Bench, Hook, Side, command_delta, delta_text, encode, fill, hold_at, message, script_commands

from redis_memory import ConversationMemory

TRANSACTION_HISTORIES = (10, 1_000)  # the first is the checked row; the second is information
ROUND_TRIP_CALLS = 5  # consecutive calls checked by INFO commandstats, after a warm-up
CONVERSATION_MESSAGES = 10

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


def transactions(bench: Bench) -> None:
    """Three writes in ``mem.transaction()`` vs one MULTI/EXEC pipeline; then the round-trip check."""
    for number, history in enumerate(TRANSACTION_HISTORIES):
        sides, check = _transaction_sides(bench, history)
        name = "3-write transaction" + (f", history {history:,}" if number else "")
        bench.measure({name: sides}, bench.atomic_samples, info=number > 0)
        check()
    _transaction_round_trips(bench)


def _three_writes(mem: ConversationMemory, msg: dict[str, Any]) -> Hook:
    """The library's 3-write transaction on ``mem``: set the state, append ``msg``, count it."""

    def transaction() -> None:
        with mem.transaction():
            mem.state = "active"
            mem.messages.append(msg)
            mem.incr("total_messages")

    return transaction


def _transaction_sides(bench: Bench, history: int) -> tuple[dict[str, Side], Hook]:
    mem = bench.memory(f"tx-{history}")
    mem.state = "new"
    mem.messages = [message(i) for i in range(history)]
    hash_key, list_key = bench.raw_key(f"tx-{history}"), bench.raw_key(f"tx-{history}:messages")
    bench.raw.hset(hash_key, "state", "new")
    fill(bench.raw, list_key, history)
    msg = message(history)

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
        if len(mem.messages) != history or bench.raw.llen(list_key) != history:
            raise AssertionError(f"transaction history {history} did not stay at its size")
        if mem.state != "active" or not mem.total_messages > 0 or bench.raw.hget(hash_key, "state") != b"active":
            raise AssertionError("the transaction's writes were not stored")

    sides = {"lib": Side(_three_writes(mem, msg), after_batch=hold_at(mem, history)), "raw": raw_side(bench.raw)}
    sides["pool"] = raw_side(bench.pool)
    return sides, check


def _transaction_round_trips(bench: Bench) -> None:
    """Each of several consecutive transactions, after a warm-up one, must run one EVALSHA."""
    history = TRANSACTION_HISTORIES[0]
    mem = bench.memory("tx-round-trips")
    mem.messages = [message(i) for i in range(history)]
    transaction = _three_writes(mem, message(history))

    transaction()  # warm-up: the batch script is loaded
    deltas = [command_delta(bench.writer, transaction) for _ in range(ROUND_TRIP_CALLS)]
    counts = [delta.get("evalsha", 0) for delta in deltas]
    if mem.total_messages != 1 + ROUND_TRIP_CALLS or len(mem.messages) != history + 1 + ROUND_TRIP_CALLS:
        raise AssertionError("the checked transactions were not all applied")
    bench.round_trips.append(
        (
            all(count == 1 for count in counts),
            f"3-write transaction costs one round trip: EVALSHA per transaction {counts} "
            f"({ROUND_TRIP_CALLS} consecutive transactions after a warm-up one; must all be 1)",
            f"server commands of the last one (scripts' inner commands included): {delta_text(deltas[-1])}",
        )
    )


def snapshots(bench: Bench) -> None:
    """``mem.to_dict()`` of 20 attributes vs one pipeline of HGETALL + LRANGE + JSON.GET + SMEMBERS."""
    values = conversation_values()
    mem = bench.memory("snapshot")
    for name, value in values.items():
        if name != "total_messages":
            setattr(mem, name, value)
    mem.incr("total_messages", CONVERSATION_COUNTER)
    hash_key = bench.raw_key("snapshot")
    list_key, doc_key, set_key = (f"{hash_key}:{name}" for name in ("messages", "context", "tags"))
    fields = {name: _raw_field(value) for name, value in CONVERSATION_SCALARS.items()}
    fields["total_messages"] = str(CONVERSATION_COUNTER)
    bench.raw.hset(hash_key, mapping=fields)  # type: ignore[arg-type]
    fill(bench.raw, list_key, CONVERSATION_MESSAGES)
    bench.raw.execute_command("JSON.SET", doc_key, "$", encode(CONVERSATION_CONTEXT))  # type: ignore[no-untyped-call]
    bench.raw.sadd(set_key, *CONVERSATION_TAGS)

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

    sides = {"lib": Side(mem.to_dict, check=check), "raw": raw_side(bench.raw), "pool": raw_side(bench.pool)}
    bench.measure({"to_dict() of 20 attributes": sides}, bench.atomic_samples)
    _snapshot_round_trips(bench, mem)


def _snapshot_round_trips(bench: Bench, mem: ConversationMemory) -> None:
    """Each of several ``to_dict()`` calls must run one EVALSHA and only what ``snapshot.lua`` runs."""
    mem.to_dict()  # warm-up: the snapshot script is loaded
    inner = script_commands("lua/snapshot.lua")
    deltas = [command_delta(bench.writer, mem.to_dict) for _ in range(ROUND_TRIP_CALLS)]
    counts = [delta.get("evalsha", 0) for delta in deltas]
    others = sorted({name for delta in deltas for name in delta if name != "evalsha" and name not in inner})
    bench.round_trips.append(
        (
            all(count == 1 for count in counts) and not others,
            f"to_dict() of 20 attributes costs one round trip: EVALSHA per call {counts} "
            f"({ROUND_TRIP_CALLS} calls after a warm-up one; must all be 1); commands other than "
            f"EVALSHA and those snapshot.lua calls: {', '.join(others) or 'none'}",
            f"server commands of the last one (scripts' inner commands included): {delta_text(deltas[-1])}",
        )
    )
