"""Faults between the asyncio API and a real redis-server: lost replies, requests that never
arrive, replies that come too late, a server that refuses every connection. The async driver
sends a request again after a lost connection, as the sync one does, and a resent write is
applied once (its operation id); past ``retry_for`` it raises ``RedisConnectionError`` (it
journals nothing).

The faults come from tests/faultproxy.py, in front of the session's servers (conftest.py).
Each test opens the memories through a URL of its own (``client_name=`` in the query), so
each has an async backend, and counters, of its own.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import redis

import redis_memory
from redis_memory import AccessDeniedError, ConversationMemory, RedisConnectionError, aio, connections
from redis_memory.core.requests import Command, Op
from redis_memory.redaction import redact
from tests.faultproxy import FaultProxy
from tests.servers import RedisProcess
from tests.test_aio import run
from tests.test_faults import free_port


@pytest.fixture
def proxy(server: RedisProcess) -> Iterator[FaultProxy]:
    with FaultProxy(str(server.socket)) as running:
        yield running


@pytest.fixture
def url(proxy: FaultProxy, prefix: str) -> str:
    """The proxy's URL, made this test's own (a fresh async backend: its own counters)."""
    return f"{proxy.url}/0?client_name={prefix.rstrip(':')}"


def counts(url: str) -> dict[str, Any]:
    label = redact(url, mask="***")  # stats() never shows a password
    return redis_memory.stats().get(label, {"retries": 0, "round_trips": 0, "operations": 0, "errors": 0})


def cuts(proxy: FaultProxy) -> int:
    return proxy.stats["cut_after_forward"] + proxy.stats["cut_before_forward"]


def test_appends_from_tasks_in_two_event_loops_under_cuts_lose_nothing_and_duplicate_nothing(
    proxy: FaultProxy, url: str, prefix: str, raw: redis.Redis
) -> None:
    """4 tasks in this thread's loop and 2 in another thread's append 130 each (780 in all)
    while the proxy drops replies of applied writes and requests before they reach Redis."""
    count = 130
    run(lambda: aio.ConversationMemory("faults", url=url, prefix=prefix).set("messages", []))
    proxy.cut_after_forward(0.03, seed=1, match=b"EVALSHA")  # applied, reply lost
    proxy.cut_before_forward(0.02, seed=2, match=b"EVALSHA")  # never reaches Redis

    async def writer(worker: int) -> list[int]:
        mem = aio.ConversationMemory("faults", url=url, prefix=prefix)
        acknowledged = []
        for i in range(count):
            await mem.messages.append({"w": worker, "i": i})
            acknowledged.append(i)
        return acknowledged

    async def writers(workers: range) -> list[list[int]]:
        return list(await asyncio.gather(*(writer(w) for w in workers)))

    with ThreadPoolExecutor(1) as other:
        theirs = other.submit(run, lambda: writers(range(4, 6)))
        ours = run(lambda: writers(range(4)))
        acknowledged = ours + theirs.result(timeout=300)
    proxy.heal()
    stored = [json.loads(item) for item in raw.lrange(f"{prefix}{{faults}}:messages", 0, -1)]
    assert acknowledged == [list(range(count))] * 6
    for worker in range(6):
        assert [m["i"] for m in stored if m["w"] == worker] == list(range(count)), f"worker {worker}"
    assert len(stored) == 6 * count  # once each, in order
    assert proxy.stats["cut_after_forward"] > 0 and proxy.stats["cut_before_forward"] > 0
    assert counts(url)["retries"] == cuts(proxy)  # each cut cost one resend, and only that
    assert counts(url)["errors"] == 0


def test_incr_under_cuts_counts_each_call_once(proxy: FaultProxy, url: str, prefix: str, raw: redis.Redis) -> None:
    proxy.cut_after_forward(0.05, seed=3, match=b"EVALSHA")
    proxy.cut_before_forward(0.03, seed=4, match=b"EVALSHA")

    async def counter() -> list[int | float | None]:
        mem = aio.ConversationMemory("counted", url=url, prefix=prefix)
        return [await mem.incr("turns") for _ in range(50)]

    async def counters() -> list[list[int | float | None]]:
        return list(await asyncio.gather(*(counter() for _ in range(4))))

    replies = [reply for replies in run(counters) for reply in replies]
    assert sorted(replies) == list(range(1, 201))  # a resent incr gets its first reply back
    assert raw.hget(f"{prefix}{{counted}}", "turns") == "200"
    assert cuts(proxy) > 0 and counts(url)["retries"] == cuts(proxy)


def test_a_write_whose_reply_is_lost_returns_normally_and_is_applied_once(
    proxy: FaultProxy, url: str, prefix: str, server: RedisProcess
) -> None:
    async def main() -> None:
        mem = aio.ConversationMemory("c1", url=url, prefix=prefix)
        await mem.set("messages", [])  # the scripts are loaded
        proxy.cut_after_forward(1.0, count=1, match=b"EVALSHA")
        await mem.set("state", "after the cut")
        proxy.cut_after_forward(1.0, count=1, match=b"EVALSHA")
        await mem.messages.append("once")
        direct = aio.ConversationMemory("c1", url=server.url, prefix=prefix)  # past the proxy
        assert await direct.get("state") == "after the cut"
        assert await direct.get("messages") == ["once"]  # sent twice, applied once

    run(main)
    assert proxy.stats["cut_after_forward"] == 2
    assert counts(url)["retries"] == 2 and counts(url)["errors"] == 0


def test_a_refusing_server_raises_after_retry_for_and_a_bounded_number_of_resends(
    proxy: FaultProxy, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDIS_MEMORY_RETRY_FOR", "0.3")  # read when the backend is made
    url = f"{proxy.url}/0?client_name={prefix.rstrip(':')}"

    async def main() -> None:
        mem = aio.ConversationMemory("c1", url=url, prefix=prefix, offline="raise")  # writes raise, not journal
        await mem.set("state", "up")
        proxy.refuse(True)
        with pytest.raises(RedisConnectionError):
            await mem.set("state", "down")
        with pytest.raises(RedisConnectionError):
            await mem.incr("turns")
        assert 2 <= counts(url)["retries"] <= 2 * 12  # backoff 5, 10, 20... ms: about 6 each
        assert counts(url)["errors"] == 2
        proxy.refuse(False)
        assert await mem.get("state") == "up"  # the refused writes never reached Redis
        assert await mem.get("turns", None) is None

    run(main)
    tries = counts(url)["retries"] + 2
    assert tries - 2 <= proxy.stats["refused"] <= tries  # each resend did try a new connection


def test_a_late_reply_is_never_read_as_the_next_requests(proxy: FaultProxy, prefix: str) -> None:
    """A reply that arrives after socket_timeout stays behind on its connection, which is
    closed: the next requests, on another connection, read their own replies."""
    url = f"{proxy.url}/0?socket_timeout=0.1&client_name={prefix.rstrip(':')}"

    async def main() -> None:
        mem = aio.ConversationMemory("c1", url=url, prefix=prefix)
        await mem.set("a", "A")
        await mem.set("b", "B")
        mem._backend.retry_for = 0.0  # one try: it times out, its reply still on the way
        proxy.delay(0.3)
        with pytest.raises(RedisConnectionError):
            await mem.names()  # (a get of "a" would serve its last known value)
        proxy.heal()
        mem._backend.retry_for = 3.0
        assert [await mem.get("b"), await mem.get("a"), sorted(await mem.names())] == ["B", "A", ["a", "b"]]
        assert await mem.incr("turns", 5) == 5

    run(main)


def test_a_refused_password_is_never_resent(tmp_path: Path, prefix: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_MEMORY_RETRY_FOR", "30")  # a resend loop would hang here
    server = RedisProcess(tmp_path / "auth", modules=False, port=free_port()).start()
    server.client().config_set("requirepass", "s3cret")
    url = f"redis://:wrong@127.0.0.1:{server.port}/0"
    try:

        async def main() -> None:
            with pytest.raises(AccessDeniedError, match="refused"):
                await aio.ConversationMemory("c1", url=url, prefix=prefix).set("state", "x")

        run(main)
        assert counts(url)["retries"] == 0 and counts(url)["errors"] == 1
    finally:
        server.stop()


def _cursor_read() -> Op[Any]:
    reply = yield Command(("FT.CURSOR", "READ", "no-such-index", "1"))
    return reply


def test_ft_cursor_is_not_resent(proxy: FaultProxy, url: str, prefix: str) -> None:
    """A resent FT.CURSOR READ would skip a page: it fails at once instead."""

    async def main() -> None:
        mem = aio.ConversationMemory("c1", url=url, prefix=prefix)
        await mem.set("state", "up")
        proxy.cut_before_forward(1.0, count=1, match=b"FT.CURSOR")
        with pytest.raises(RedisConnectionError):
            await mem._backend.drive(_cursor_read())

    run(main)
    assert proxy.stats["cut_before_forward"] == 1 and counts(url)["retries"] == 0


def test_stats_report_the_async_backend_merged_with_the_sync_one_of_the_same_url(
    server: RedisProcess, prefix: str
) -> None:
    sync = ConversationMemory("c1", url=server.url, prefix=prefix)
    sync_backend = connections.backend_for(url=server.url)
    sync.state = "sync"  # the sync backend exists and has counted

    mem = aio.ConversationMemory("c1", url=server.url, prefix=prefix)
    async_backend = mem._backend  # shared by every async memory of the URL: counted before
    before = async_backend.stats.counts["operations"]

    async def main() -> None:
        await mem.set("state", "async")
        await mem.incr("turns")

    run(main)
    figures = redis_memory.stats()[server.url]
    for name in ("operations", "round_trips", "retries", "errors"):
        assert figures[name] == sync_backend.stats.counts[name] + async_backend.stats.counts[name], name
    assert async_backend.stats.counts["operations"] == before + 2
    assert figures["latency_ms"]["g_incr"]["count"] >= 1 and figures["journal_depth"] == sync_backend.backlog


def test_two_event_loops_share_the_counters_of_one_backend(server: RedisProcess, prefix: str) -> None:
    url = f"{server.url}?client_name={prefix.rstrip(':')}"

    async def main() -> None:
        await asyncio.gather(*(aio.ConversationMemory("c1", url=url, prefix=prefix).incr("n") for _ in range(50)))

    threads = [threading.Thread(target=run, args=(main,)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert counts(url)["operations"] == 200 and counts(url)["latency_ms"]["g_incr"]["count"] == 200
