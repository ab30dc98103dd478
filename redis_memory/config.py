"""Where to find Redis and how to talk to it: the settings, from arguments and the environment.

Precedence: ``client=`` or ``url=`` (or the original package's ``redis_hostname=`` /
``redis_port=``), then ``$REDIS_URL``, then ``$REDIS_HOST`` / ``$REDIS_PORT``, then the
embedded server (:mod:`redis_memory.server`). The backends these settings lead to are made
and shared by :mod:`redis_memory.connections`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from redis.backoff import NoBackoff
from redis.connection import parse_url
from redis.retry import Retry

from redis_memory.keys import DEFAULT_PREFIX, check_prefix
from redis_memory.redaction import redact

# redis-py never resends by itself: the backend does, with the write's operation id, so
# Redis applies it once (see Backend._send). A reply slower than socket_timeout (seconds;
# `?socket_timeout=` in the URL wins) counts as a lost connection.
POOL_OPTIONS: dict[str, Any] = {
    "protocol": 3,
    "retry": Retry(NoBackoff(), 0),
    "socket_connect_timeout": 10,
    "socket_timeout": float(os.environ.get("REDIS_MEMORY_SOCKET_TIMEOUT", "30")),
}


def cluster_wanted() -> bool:
    """Whether a URL names a Redis Cluster when ``cluster=`` is not given: ``$REDIS_CLUSTER`` is ``1``."""
    return os.environ.get("REDIS_CLUSTER", "").strip().lower() in ("1", "true", "yes")


def timeouts() -> dict[str, float]:
    """The connect and reply timeouts (seconds) of the connections the library opens; the
    asyncio clients use them too, so a reply slower than ``socket_timeout`` is a lost
    connection in both APIs."""
    return {name: POOL_OPTIONS[name] for name in ("socket_connect_timeout", "socket_timeout")}


def resolve_url(url: str | None = None, host: str | None = None, port: int | None = None) -> str:
    """The Redis URL to use, by the precedence in the module docstring; starts the embedded
    server when it is the one (see :func:`target` for the URL alone)."""
    return reachable(target(url, host, port))


def target(url: str | None = None, host: str | None = None, port: int | None = None) -> str:
    """The Redis URL to use, by the precedence in the module docstring, starting nothing: the
    embedded server is named by its socket (:func:`embedded_url`) and started on first use."""
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
    return embedded_url()


def embedded_url() -> str:
    """The URL of the embedded server of this data directory (which may not be running)."""
    from redis_memory.server import socket_path  # imported here: `python -m redis_memory.server` stays clean

    return f"unix://{socket_path()}"


def reachable(url: str) -> str:
    """``url``, with the embedded server started first when ``url`` is its socket (the
    drivers call it when they connect, so opening a memory starts nothing)."""
    if url == embedded_url():
        from redis_memory.server import ensure_server

        ensure_server()
    return url


_LOOPBACK = {"localhost", "127.0.0.1", "::1", "[::1]", "ip6-localhost", "ip6-loopback"}


def server_identity(settings: Mapping[str, Any]) -> str:
    """What names one server and database, whichever way it was spelled: the offline journal
    keys its writes by it, so ``redis://h:6379``, ``redis://h:6379/0``, ``localhost`` vs
    ``127.0.0.1`` and a ``client=`` to the same server all replay each other's writes.
    ``settings`` are a connection's keyword arguments (``redis.connection.parse_url`` of a URL,
    or a pool's ``connection_kwargs``); no credentials are part of it."""
    db = int(settings.get("db") or 0)
    path = settings.get("path")
    if path:
        return f"unix://{os.path.realpath(str(path))}?db={db}"
    host = str(settings.get("host") or "localhost").lower()
    host = "localhost" if host in _LOOPBACK else host
    return f"redis://{host}:{int(settings.get('port') or 6379)}/{db}"


def url_identity(url: str) -> str:
    """:func:`server_identity` of a Redis URL (the URL itself, without credentials, when
    redis-py cannot parse it)."""
    try:
        return server_identity(parse_url(url))  # type: ignore[no-untyped-call]
    except (ValueError, TypeError):
        return redact(url)


def resolve_prefix(prefix: str | None) -> str:
    """The key prefix: the argument, else ``$REDIS_PREFIX``, else ``memory:``."""
    if prefix is None:
        prefix = os.environ.get("REDIS_PREFIX", DEFAULT_PREFIX)
    return check_prefix(prefix)
