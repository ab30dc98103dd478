"""Where to find Redis and how to talk to it: the settings, from arguments and the environment.

Precedence: ``client=`` or ``url=`` (or the original package's ``redis_hostname=`` /
``redis_port=``), then ``$REDIS_URL``, then ``$REDIS_HOST`` / ``$REDIS_PORT``, then the
embedded server (:mod:`redis_memory.server`). The backends these settings lead to are made
and shared by :mod:`redis_memory.connections`.
"""

from __future__ import annotations

import os
from typing import Any

from redis.backoff import NoBackoff
from redis.retry import Retry

from redis_memory.keys import DEFAULT_PREFIX, check_prefix

# redis-py never resends by itself: the backend does, with the write's operation id, so
# Redis applies it once (see Backend._send). A reply slower than socket_timeout (seconds;
# `?socket_timeout=` in the URL wins) counts as a lost connection.
POOL_OPTIONS: dict[str, Any] = {
    "protocol": 3,
    "retry": Retry(NoBackoff(), 0),
    "socket_connect_timeout": 10,
    "socket_timeout": float(os.environ.get("REDIS_MEMORY_SOCKET_TIMEOUT", "30")),
}


def timeouts() -> dict[str, float]:
    """The connect and reply timeouts (seconds) of the connections the library opens; the
    asyncio clients use them too, so a reply slower than ``socket_timeout`` is a lost
    connection in both APIs."""
    return {name: POOL_OPTIONS[name] for name in ("socket_connect_timeout", "socket_timeout")}


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
