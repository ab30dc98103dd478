"""Costs, measured by the server itself: commands run (INFO commandstats) and bytes moved
on our connection (CLIENT LIST tot-net-in / tot-net-out)."""

from __future__ import annotations

from collections.abc import Callable

import redis
import redis.cluster

from redis_memory import ConversationMemory
from tests.conftest import MemoryFactory


def calls(raw: redis.Redis | redis.cluster.RedisCluster) -> dict[str, int]:
    """Calls per command so far, scripts' inner commands included (on a cluster: summed over
    its primaries, so a test counts the same commands wherever its keys live)."""
    if not isinstance(raw, redis.cluster.RedisCluster):
        return {name.removeprefix("cmdstat_"): int(stat["calls"]) for name, stat in raw.info("commandstats").items()}
    totals: dict[str, int] = {}
    for stats in raw.info("commandstats", target_nodes=redis.cluster.RedisCluster.PRIMARIES).values():
        for name, stat in stats.items():
            totals[name.removeprefix("cmdstat_")] = totals.get(name.removeprefix("cmdstat_"), 0) + int(stat["calls"])
    return totals


def server_stat(raw: redis.Redis | redis.cluster.RedisCluster, section: str, field: str) -> int:
    """An ``INFO`` counter of the server (on a cluster: added over its primaries)."""
    if not isinstance(raw, redis.cluster.RedisCluster):
        return int(raw.info(section)[field])
    return sum(
        int(info[field]) for info in raw.info(section, target_nodes=redis.cluster.RedisCluster.PRIMARIES).values()
    )


def delta(raw: redis.Redis, action: Callable[[], object]) -> dict[str, int]:
    before = calls(raw)
    action()
    after = calls(raw)
    changed = {name: after[name] - before.get(name, 0) for name in after}
    changed = {name: count for name, count in changed.items() if count}
    # our own INFO calls (one per primary on a cluster)
    changed["info"] = changed.get("info", 0) - (3 if isinstance(raw, redis.cluster.RedisCluster) else 1)
    return {name: count for name, count in changed.items() if count}


def traffic(raw: redis.Redis, mem: ConversationMemory, action: Callable[[], object]) -> tuple[int, int]:
    """Bytes (sent to the server, received from it) on the memory's connection during ``action``."""
    client_id = mem._backend.execute("CLIENT", "ID")

    def totals() -> tuple[int, int]:
        (info,) = raw.client_list(client_id=[client_id])
        return int(info["tot-net-in"]), int(info["tot-net-out"])

    start = totals()
    action()
    end = totals()
    return end[0] - start[0], end[1] - start[1]


def test_append_is_one_round_trip_and_o1_bytes_whatever_the_history(memory: MemoryFactory, raw: redis.Redis) -> None:
    mem = memory()
    mem.messages = [{"role": "user", "content": f"message {n}"} for n in range(10)]
    message = {"role": "user", "content": "one more"}

    def append() -> None:
        mem.messages.append(message)

    append()  # the first call on a server may load the script (SCRIPT LOAD)
    short = traffic(raw, mem, append)
    # HGET: this writer's last operation (a resend?); HMGET: the kind, searchable? Then RPUSH,
    # LLEN (which keeps the key tracked), and the writer's seq with the reply is logged (HSET +
    # HPEXPIRE of that one field): exactly once under resends
    expected = {"evalsha": 1, "hget": 1, "hmget": 1, "rpush": 1, "llen": 1, "time": 1, "hset": 1, "hpexpire": 1}
    assert delta(raw, append) == expected
    mem.messages.extend([{"role": "user", "content": f"message {n}"} for n in range(5_000)])
    _ = mem.messages
    long = traffic(raw, mem, append)
    assert short[0] == long[0]  # the same request
    assert abs(short[1] - long[1]) <= 3  # the reply is the new length (a few more digits), not the history
    assert long[1] < 50


def test_scalar_set_and_get_are_one_round_trip_each(memory: MemoryFactory, raw: redis.Redis) -> None:
    mem = memory()
    mem.state = "active"
    assert mem.state == "active"  # scripts loaded

    def set_state() -> None:
        mem.state = "closed"

    def get_state() -> None:
        assert mem.state == "closed"

    # HGET: op id seen before? was it a searchable list? HSET: the value; when it was assigned
    # (TIME, last writer wins on journal replays); the op id and its reply (+ HPEXPIRE)
    expected = {"evalsha": 1, "hget": 2, "del": 1, "hset": 3, "time": 1, "hpexpire": 1}
    assert delta(raw, set_state) == expected
    assert delta(raw, get_state) == {"hmget": 1}


def test_reading_never_writes(memory: MemoryFactory, raw: redis.Redis) -> None:
    mem = memory()
    mem.messages = [{"n": 1}]
    mem.context = {"a": {"b": [1]}}
    mem.state = "x"
    reader = memory(separate=True, cache=False)
    writes = {"set", "hset", "del", "rpush", "lset", "json.set", "json.del", "hdel", "json.arrappend", "unlink"}

    def read_everything() -> None:
        assert reader.messages == [{"n": 1}]
        assert reader.context == {"a": {"b": [1]}}
        assert reader.state == "x"
        assert hasattr(reader, "context") and "state" in dir(reader)

    assert not set(delta(raw, read_everything)) & writes


def test_a_mirrored_list_is_read_without_a_round_trip(memory: MemoryFactory, raw: redis.Redis) -> None:
    mem = memory()
    mem.messages = [{"n": n} for n in range(100)]
    _ = mem.messages

    def read() -> None:
        assert len(mem.messages) == 100

    assert traffic(raw, mem, read) == (0, 0)
