"""Where to find Redis: explicit arguments, then the environment, then the embedded server.

Precedence: ``client=`` or ``url=`` (or the original package's ``redis_hostname=`` /
``redis_port=``), then ``$REDIS_URL``, then ``$REDIS_HOST`` / ``$REDIS_PORT``, then the
embedded server (:mod:`redis_memory.server`). Every memory object that resolves to the same
server in one process shares one :class:`~redis_memory.backend.Backend`: one connection,
not one per operation. The asyncio API (:mod:`redis_memory.aio`) makes its own backends and
has them counted here (:func:`count`), so :func:`stats` covers both APIs.
"""

from __future__ import annotations

import os
import threading
import weakref
from typing import Any, Protocol

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from redis_memory.backend import Backend
from redis_memory.core import Stats
from redis_memory.keys import DEFAULT_PREFIX, check_prefix
from redis_memory.proxies.list import RedisList
from redis_memory.proxies.set import RedisSet

_FACTORIES: dict[str, Any] = {"list": RedisList, "set": RedisSet}
_lock = threading.Lock()
_by_url: dict[str, Backend] = {}
_by_client: weakref.WeakKeyDictionary[redis.Redis, Backend] = weakref.WeakKeyDictionary()


class Counted(Protocol):
    """What :func:`stats` reads of a backend (sync or async)."""

    label: str
    stats: Stats
    backlog: int


_counted: weakref.WeakSet[Counted] = weakref.WeakSet()  # the asyncio API's backends, while they live

# redis-py never resends by itself: the backend does, with the write's operation id, so
# Redis applies it once (see Backend._send). A reply slower than socket_timeout (seconds;
# `?socket_timeout=` in the URL wins) counts as a lost connection.
_POOL_OPTIONS: dict[str, Any] = {
    "protocol": 3,
    "retry": Retry(NoBackoff(), 0),
    "socket_connect_timeout": 10,
    "socket_timeout": float(os.environ.get("REDIS_MEMORY_SOCKET_TIMEOUT", "30")),
}


def timeouts() -> dict[str, float]:
    """The connect and reply timeouts (seconds) of the connections the library opens; the
    asyncio clients use them too, so a reply slower than ``socket_timeout`` is a lost
    connection in both APIs."""
    return {name: _POOL_OPTIONS[name] for name in ("socket_connect_timeout", "socket_timeout")}


def resolve_url(url: str | None = None, host: str | None = None, port: int | None = None) -> str:
    """The Redis URL to use, by the precedence in the module docstring (may start the embedded server)."""
    if url:
        return url
    if host or port:
        return f"redis://{host or 'localhost'}:{int(port or 6379)}/0"
    env_url = os.environ.get("REDIS_URL")
    if env_url:
        return env_url
    env_host, env_port = os.environ.get("REDIS_HOST"), os.environ.get("REDIS_PORT")
    if env_host or env_port:
        return f"redis://{env_host or 'localhost'}:{int(env_port or 6379)}/0"
    from redis_memory.server import ensure_server  # imported here: `python -m redis_memory.server` stays clean

    return f"unix://{ensure_server()}"


def resolve_prefix(prefix: str | None) -> str:
    """The key prefix: the argument, else ``$REDIS_PREFIX``, else ``memory:``."""
    if prefix is None:
        prefix = os.environ.get("REDIS_PREFIX", DEFAULT_PREFIX)
    return check_prefix(prefix)


def backend_for(
    *, url: str | None = None, client: redis.Redis | None = None, host: str | None = None, port: int | None = None
) -> Backend:
    """The shared backend for these connection settings (created on first use)."""
    if client is not None:
        with _lock:
            found = _by_client.get(client)
            if found is None:
                found = _by_client[client] = Backend(_pool_from_client(client), repr(client), _FACTORIES)
                weakref.finalize(client, found.close)  # the client is gone: so is our connection to its server
            return found
    resolved = resolve_url(url, host, port)
    with _lock:
        found = _by_url.get(resolved)
        if found is None:
            pool_factory = lambda: redis.ConnectionPool.from_url(resolved, **_POOL_OPTIONS)  # noqa: E731
            found = _by_url[resolved] = Backend(pool_factory, resolved, _FACTORIES)
        return found


def _pool_from_client(client: redis.Redis) -> Any:
    pool = client.connection_pool
    options = {**pool.connection_kwargs, **_POOL_OPTIONS}
    return lambda: redis.ConnectionPool(connection_class=pool.connection_class, **options)


def count(backend: Counted) -> None:
    """Report ``backend`` (one of the asyncio API's) in :func:`stats` for as long as it lives."""
    with _lock:
        _counted.add(backend)


def stats() -> dict[str, dict[str, Any]]:
    """What each server's backends in this process have done: operations, round trips,
    resends after a lost connection (``retries``), journaled / replayed writes, conflicts
    dropped on replay, errors, ``journal_depth`` (writes waiting for Redis) and latency per
    operation (count, mean and max in ms). Keyed by server (URL or client).

    The sync and the asyncio API's backends are keyed alike, by their label (the URL, or the
    client's repr); backends with the same label (the two APIs on one URL) are reported as
    one entry: counts added, latencies combined."""
    with _lock:
        backends: list[Counted] = [*_by_url.values(), *_by_client.values(), *_counted]
    merged: dict[str, tuple[Stats, int]] = {}
    for backend in backends:
        total, depth = merged.get(backend.label, (Stats(), 0))
        merged[backend.label] = (total.add(backend.stats), depth + backend.backlog)
    return {label: {**total.snapshot(), "journal_depth": depth} for label, (total, depth) in merged.items()}


def reset() -> None:
    """Close every shared backend of this process (tests and long-lived apps switching servers)."""
    with _lock:
        backends = [*_by_url.values(), *_by_client.values()]
        _by_url.clear()
        _by_client.clear()
    for backend in backends:
        backend.close()
