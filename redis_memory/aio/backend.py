"""The async driver: runs the core's operations on redis-py's asyncio client.

The operations are :mod:`redis_memory.core`'s, unchanged; this driver awaits each request
instead of blocking. It keeps no mirrors (an async read is always one round trip), so it
needs no client tracking, and takes its connections from an asyncio connection pool, one
per event loop.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable
from typing import Any, TypeVar

import redis.asyncio
import redis.exceptions

from redis_memory.backend import Backend
from redis_memory.core import Command, Core, Op, Request, advance, public_error, redact_url, script_table
from redis_memory.errors import RedisConnectionError

T = TypeVar("T")


class AsyncBackend(Core):
    """The async counterpart of :class:`redis_memory.backend.Backend` (no mirrors)."""

    mirroring = False

    def __init__(
        self,
        client_factory: Callable[[], redis.asyncio.Redis],
        label: str,
        waiter: Callable[[], Backend] | None = None,
    ) -> None:
        """Prepare a backend; ``client_factory()`` makes the client of each event loop, and
        ``waiter()`` the sync backend of the same server that blocking waits run on."""
        super().__init__()
        self.label = redact_url(label)  # never shows a password
        self.waiter = waiter
        self._client_factory = client_factory
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, redis.asyncio.Redis] = (
            weakref.WeakKeyDictionary()
        )

    def _client(self) -> redis.asyncio.Redis:
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:
            client = self._clients[loop] = self._client_factory()
        return client

    async def _execute(self, request: Request) -> Any:
        client: Any = self._client()
        if isinstance(request, Command):
            return await client.execute_command(*request.args)
        sha, source = script_table()[request.name]
        try:
            return await client.execute_command("EVALSHA", sha, len(request.keys), *request.keys, *request.args)
        except redis.exceptions.NoScriptError:
            await client.execute_command("SCRIPT", "LOAD", source)
            return await client.execute_command("EVALSHA", sha, len(request.keys), *request.keys, *request.args)

    async def drive(self, op: Op[T]) -> T:
        """Run a core operation to its end, awaiting each request."""
        reply: Any = None
        error: Exception | None = None
        while True:
            done, value = advance(op, reply, error)
            if done:
                result: T = value
                return result
            reply, error = None, None
            try:
                reply = await self._execute(value)
            except redis.exceptions.RedisError as exc:
                error = public_error(exc)
                error.__cause__ = exc
            except OSError as exc:
                error = RedisConnectionError(f"cannot reach Redis at {self.label}: {exc}")
                error.__cause__ = exc

    async def aclose(self) -> None:
        """Close the client of the running event loop."""
        client = self._clients.pop(asyncio.get_running_loop(), None)
        if client is not None:
            await client.aclose()
