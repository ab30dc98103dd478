"""The single-operation cases: append at three history sizes, set / get a scalar, full read of a list.

Each runs the library against raw redis-py (``raw`` and ``pool``) doing the same command, on the
run's ``common.Bench``, and leaves its results there for ``report.report()``.
"""

from __future__ import annotations

import json
from typing import Any

import redis
from common import Bench, Hook, Side, encode, fill, hold_at, message

from redis_memory import connections
from redis_memory.keys import KeySpace

HISTORY_SIZES = (0, 1_000, 10_000)
READ_SIZE = 1_000


def appends(bench: Bench) -> None:
    """Append at every history size, all interleaved with each other and with raw RPUSH."""
    cases, checks = {}, []
    for history in HISTORY_SIZES:
        sides, check = _append_sides(bench, history)
        cases[f"append, history {history:,}"] = sides
        checks.append(check)
    bench.measure(cases, bench.samples)
    for check in checks:
        check()
    bench.online_journaled = connections.stats()[connections.backend_for(url=bench.url).label]["journaled"]


def _append_sides(bench: Bench, history: int) -> tuple[dict[str, Side], Hook]:
    """``mem.messages.append(msg)`` (attribute access every time) vs RPUSH of the same JSON."""
    mem = bench.memory(f"append-{history}")
    mem.messages = [message(i) for i in range(history)]
    key = bench.raw_key(f"append-{history}")
    fill(bench.raw, key, history)
    msg = message(history)

    def library_op() -> None:
        mem.messages.append(msg)

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
        if len(mem.messages) != history or bench.raw.llen(key) != history:
            raise AssertionError(f"history {history} did not stay at its size")

    sides = {"lib": Side(library_op, after_batch=hold_at(mem, history)), "raw": raw_side(bench.raw)}
    sides["pool"] = raw_side(bench.pool)
    return sides, check


def scalars(bench: Bench) -> None:
    """``mem.state = "x"`` vs HSET, and ``mem.state`` vs HGET."""
    mem = bench.memory("scalars")
    mem.state = "x"
    key = bench.raw_key("scalars")
    bench.raw.hset(key, "state", "x")

    def library_set() -> None:
        mem.state = "x"

    def library_get() -> Any:
        return mem.state

    def raw_set(client: redis.Redis) -> Side:
        return Side(lambda: client.hset(key, "state", "x"))

    def raw_get(client: redis.Redis) -> Side:
        return Side(lambda: client.hget(key, "state"))

    sets = {"lib": Side(library_set), "raw": raw_set(bench.raw), "pool": raw_set(bench.pool)}
    bench.measure({"set scalar": sets}, bench.samples)
    gets = {"lib": Side(library_get), "raw": raw_get(bench.raw), "pool": raw_get(bench.pool)}
    bench.measure({"get scalar": gets}, bench.samples)
    if mem.state != "x" or bench.raw.hget(key, "state") != b"x":
        raise AssertionError("the scalar was not stored")


def full_read(bench: Bench) -> None:
    """``list(mem.messages)`` of 1,000 messages: mirror invalidated by another client, then mirrored."""
    mem = bench.memory("read")
    mem.messages = [message(i) for i in range(READ_SIZE)]
    library_key = KeySpace(bench.prefix, "read").collection_key("messages")
    raw_key = bench.raw_key("read")
    fill(bench.raw, raw_key, READ_SIZE)
    writer = bench.writer
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
            bench.stale_reads += 1

    def library_read() -> list[Any]:
        return list(mem.messages)

    def raw_side(client: redis.Redis, rewrite: bool) -> Side:
        def op() -> list[Any]:
            return [json.loads(item) for item in client.lrange(raw_key, 0, -1)]

        def before() -> None:  # the same untimed extra command as the library side's
            writer.lset(raw_key, 0, texts[turn[0]])

        return Side(op, before_each=before if rewrite else None)

    invalid = {"lib": Side(library_read, before_each=invalidate, check=check)}
    invalid |= {"raw": raw_side(bench.raw, True), "pool": raw_side(bench.pool, True)}
    bench.measure({f"full read {READ_SIZE:,}, mirror invalid": invalid}, bench.read_samples)
    mirrored = {"lib": Side(library_read), "raw": raw_side(bench.raw, False), "pool": raw_side(bench.pool, False)}
    bench.measure({f"full read {READ_SIZE:,}, mirrored": mirrored}, bench.read_samples, info=True)
