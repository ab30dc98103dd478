"""What the ports of the original packages' test files share (``tests/test_original_*.py``).

The originals (``redis-memory`` 0.4.3, ``synced-memory`` 0.1.3) open ``Memory()`` with no
arguments against a Redis named by ``REDIS_HOST``/``REDIS_PORT``, delete every key under the
default prefix around each test, read what was stored with a raw client (the JSON blob
``{"value": ..., "last_modified": ...}`` at ``<prefix><name>``), and make Redis unreachable by
pointing ``REDIS_HOST`` at a host that does not exist. Here, against our real test servers:

- :func:`original_env` (used by every test of the ports) points ``REDIS_URL`` at the test's
  server (each test runs twice: with RedisJSON + RediSearch and without) and ``REDIS_PREFIX``
  at a fresh prefix, a clean namespace as the deleting was for, so ``Memory()`` with no
  arguments works as in the originals.
- :func:`get_value` is what any other reader finds in Redis for attribute ``name`` of
  ``Memory()``: the public behaviour the raw reads of the stored blob stood for. Its
  ``last_modified`` (the original's write timestamp, used only to resolve conflicts when a
  queue is flushed) has no public counterpart; the ports assert what it was for, that the
  newest write is the one every reader sees.
- :func:`outage`: the test's memories reach the server through a :class:`FaultProxy`;
  ``outage.down()`` makes Redis unreachable (every connection refused) where the originals set
  ``REDIS_HOST=nonexistent-host``, and ``outage.up()`` brings the same server back where they
  set it back to ``redis``. The original's write queue (``mem._queue``) is our offline journal:
  its length is ``journaled()`` (``redis_memory.stats()``'s ``journal_depth``), and flushing it
  (``_flush_queue()``) is the journal's replay, which ``flushed()`` waits for.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import redis_memory
from redis_memory import Memory, connections
from tests.faultproxy import FaultProxy
from tests.servers import RedisProcess

RETRY_FOR = "0.2"  # seconds the first write of an outage resends before it is journaled
ORIGINAL_TIMEOUT = 0.5  # the original's Memory._timeout, in seconds

GetValue = Callable[..., Any]


@pytest.fixture
def original_env(server: RedisProcess, prefix: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """``Memory()`` reaches this test's server, under this test's own prefix."""
    monkeypatch.setenv("REDIS_URL", server.url)
    monkeypatch.setenv("REDIS_PREFIX", prefix)
    monkeypatch.delenv("REDIS_HOST", raising=False)
    monkeypatch.delenv("REDIS_PORT", raising=False)
    monkeypatch.setenv("REDIS_MEMORY_HOME", str(tmp_path / "home"))  # the offline journal of this test


@pytest.fixture
def get_value(server: RedisProcess, prefix: str) -> GetValue:
    """``get_value(name, prefix=...)``: the value of attribute ``name`` of ``Memory()`` as a
    separate reader finds it in Redis (plain data; None if not stored). The default prefix is
    the test's own (where the originals had ``memory:``)."""

    def _get(key: str, prefix: str = prefix) -> Any:
        return Memory(url=server.url, prefix=prefix, cache=False).to_dict().get(key)

    return _get


class Outage:
    """Redis made unreachable and brought back, for the memories the test opens (see above)."""

    def __init__(self, proxy: FaultProxy) -> None:
        self.proxy = proxy

    def down(self) -> None:
        """Every connection to Redis is refused from now on (open ones are reset)."""
        self.proxy.refuse()

    def up(self) -> None:
        """Redis answers again (the same server, with everything it held)."""
        self.proxy.refuse(False)

    def journaled(self) -> int:
        """How many writes wait in the offline journal for Redis (the original's ``len(_queue)``)."""
        return int(redis_memory.stats().get(self.proxy.url, {}).get("journal_depth", 0))

    def flushed(self, timeout: float = 15.0) -> bool:
        """Wait until every journaled write has reached Redis (the original's ``_flush_queue()``)."""
        deadline = time.monotonic() + timeout
        while self.journaled() and time.monotonic() < deadline:
            time.sleep(0.05)
        return not self.journaled()


@pytest.fixture
def outage(server: RedisProcess, monkeypatch: pytest.MonkeyPatch, original_env: None) -> Iterator[Outage]:
    """The test's ``Memory()`` objects go through a proxy that can make Redis unreachable."""
    with FaultProxy(server.socket) as proxy:
        monkeypatch.setenv("REDIS_URL", proxy.url)
        monkeypatch.setenv("REDIS_MEMORY_RETRY_FOR", RETRY_FOR)
        control = Outage(proxy)
        yield control
        control.up()  # what the test left journaled drains now, not into a later test's server
        control.flushed()
        connections.reset()
