"""The sync driver: one tracked connection that runs the core's operations.

Each :class:`Backend` owns one RESP3 connection per process with client-side tracking on
(``CLIENT TRACKING ON NOLOOP``). Reading a collection attribute keeps a *mirror* of it; the
server pushes an invalidation on this same connection as soon as any other client changes
the key, and pending pushes are read before a mirror is used and before every reply, so a
mirror is only served while no other writer has touched the key. Our own writes run as Lua
scripts that end by reading the key again, which keeps the key tracked, and update the
mirror in place. That is what lets ``mem.messages`` be a real ``list`` with its items filled
in, at zero round trips, while ``mem.messages.append(x)`` costs one round trip.

What each operation does lives in :mod:`redis_memory.core` (shared with the async API); this
module only runs it, and translates every redis-py exception (``errors.translate``).
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

import hiredis
import redis
import redis.exceptions

from redis_memory import codec, observer
from redis_memory.core.mirror import Mirror, ProxyFactory
from redis_memory.core.operations import Core
from redis_memory.core.replies import public_error
from redis_memory.core.requests import Command, Op, Pipeline, Request, Script, advance, is_write, text
from redis_memory.core.retry import LOST, default_retry_for, resend_delays, resendable
from redis_memory.core.scripts import script_table
from redis_memory.docops import DocOp
from redis_memory.errors import RedisConnectionError, ServerError, translate
from redis_memory.journal import Journal, journal_for
from redis_memory.keys import KeySpace
from redis_memory.redaction import redact
from redis_memory.replay import REPLAY_WAIT, JournalReplay

logger = logging.getLogger(__name__)

T = TypeVar("T")
_LOST = LOST  # reset, closed, timed out, refused (core.resendable says what is sent again)
_BACKENDS: weakref.WeakSet[Backend] = weakref.WeakSet()  # every backend of this process, for fork()
_TIMEOUTS = ("socket_timeout", "socket_connect_timeout")
_MIN_WAIT = 0.25  # the least a capped request waits for its reply


def _close_enough(applied: float | None, wanted: float | None) -> bool:
    """Whether a timeout already applied can stand for the one wanted: never more than a
    quarter second longer, nor more than a second shorter."""
    if applied is None or wanted is None:
        return applied == wanted
    return wanted - 1.0 <= applied <= wanted + 0.25


def _least(configured: float | None, cap: float) -> float:
    """The shorter of a configured timeout (None: none) and ``cap`` (at least :data:`_MIN_WAIT`)."""
    cap = max(cap, _MIN_WAIT)
    return cap if configured is None else min(configured, cap)


def _forked() -> None:
    """In a child just forked: no mirror or last known value of the parent is served (another
    process may change any key from now on, and the child has no tracked connection yet)."""
    for backend in list(_BACKENDS):
        backend.forget_all()


os.register_at_fork(after_in_child=_forked)


def default_journal() -> Journal | None:
    """The journal writes go to while Redis cannot be reached (None: ``REDIS_MEMORY_OFFLINE=raise``)."""
    if os.environ.get("REDIS_MEMORY_OFFLINE", "journal") == "raise":
        return None
    return journal_for()


def check_version(hello: Any, label: str) -> None:
    """Refuse a server older than 7.4 (the scripts use hash field expiry, HPEXPIRE) before
    anything is sent: a script failing halfway would leave a write half made. ``hello``: the
    connection's HELLO reply."""
    if not isinstance(hello, dict):
        return
    version = hello.get(b"version") or hello.get("version")
    if not isinstance(version, (bytes, str)):
        return
    shown = text(version)
    found = tuple(int(part) for part in shown.split(".")[:2] if part.isdigit())
    if len(found) == 2 and found < (7, 4):
        raise ServerError(f"Redis at {label} is version {shown}: redis-memory needs Redis 7.4 or later")


class Backend(JournalReplay, Core):
    """The connection, scripts and mirrors shared by every memory object of one Redis server.

    One instance per server per process (see :mod:`redis_memory.config`); safe to use from
    several threads (one lock serialises the connection) and across ``fork()`` (a child
    process opens its own connection on first use).
    """

    def __init__(
        self,
        pool_factory: Callable[[], redis.ConnectionPool],
        label: str,
        factories: dict[str, ProxyFactory] | None = None,
        max_mirrors: int = 1024,
        server_id: str | None = None,
    ):
        """Prepare a backend; nothing connects until the first operation. ``server_id`` names
        the server and database in the offline journal (see :func:`config.server_identity`;
        default: the label)."""
        super().__init__(factories, max_mirrors)
        self.label = redact(label, mask="***")  # never shows a password
        self._pool_factory = pool_factory
        self._lock = threading.RLock()
        self._pid = -1
        self._client: redis.Redis | None = None
        self._connection: Any = None
        self._waiting: redis.ConnectionPool | None = None  # connections that block in wait_list
        self._waiting_pid = -1
        self.server_id = server_id or self.label
        self.journal = default_journal()
        self.retry_for = default_retry_for()
        self._flusher: threading.Thread | None = None
        self._next_adoption = math.inf  # set at the first connection
        self._outage: float | None = None  # when the current loss of the connection began
        self._down = False  # a request gave up on Redis: until it answers, no request waits
        _BACKENDS.add(self)
        self._backlog_pid = os.getpid()  # the process self.backlog counts for

    # -- connection -----------------------------------------------------------------------

    def _ensure(self, timeout: float | None = None) -> redis.Redis:
        """The tracked connection of this process, connected (and reconnected) at once;
        ``timeout`` caps the seconds connecting and the handshake may take (see :meth:`_capped`)."""
        if self._client is not None and self._pid == os.getpid():
            return self._client
        self._mirrors.clear()
        self._client = None  # a connection inherited through fork() is never touched again
        if self._backlog_pid != os.getpid():  # a forked child: the journal's entries are its parent's
            self.backlog, self._flusher, self._backlog_pid = 0, None, os.getpid()
        pool = self._pool_factory()
        configured = {name: pool.connection_kwargs.get(name) for name in _TIMEOUTS}
        if timeout is not None:
            pool.connection_kwargs.update({name: _least(value, timeout) for name, value in configured.items()})
        client = redis.Redis(connection_pool=pool, single_connection_client=True)  # connects
        connection: Any = client.connection
        pool.connection_kwargs.update(configured)  # the cap was for connecting now, not for later
        for name, value in configured.items():
            setattr(connection, name, value)
        if connection._sock is not None:
            connection._sock.settimeout(configured["socket_timeout"])
        connection._rm_configured = connection._rm_applied = dict(configured)  # see _capped
        connection.register_connect_callback(self._on_connect)
        self._on_connect(connection)
        first = self._pid != os.getpid()
        self._client, self._connection, self._pid = client, connection, os.getpid()
        if first and self.journal is not None:
            self._adopt()
        return client

    def _capped(self, timeout: float | None) -> contextlib.AbstractContextManager[None]:
        """Wait at most ``timeout`` seconds for each reply (and connection) from now on, instead
        of the configured socket timeout (None: the configured one again): a write that can be
        journaled, or a replay, never hangs on an unresponsive server for longer than the
        resend window. Applied lazily: the socket's timeout is changed only when it is not
        already within a fraction of a second of the one wanted (no syscall per write)."""
        connection = self._connection
        if connection is None:
            return contextlib.nullcontext()
        configured = getattr(connection, "_rm_configured", None)
        if configured is None:
            configured = connection._rm_configured = {name: getattr(connection, name) for name in _TIMEOUTS}
        wanted = configured if timeout is None else {name: _least(value, timeout) for name, value in configured.items()}
        applied = getattr(connection, "_rm_applied", configured)
        if any(not _close_enough(applied[name], wanted[name]) for name in _TIMEOUTS):
            for name, value in wanted.items():
                setattr(connection, name, value)
            if connection._sock is not None:
                connection._sock.settimeout(wanted["socket_timeout"])
            connection._rm_applied = wanted
        return contextlib.nullcontext()

    def _on_connect(self, connection: Any) -> None:
        """(Re)connected: turn tracking on for this connection and forget every mirror."""
        self._mirrors.clear()
        check_version(connection.handshake_metadata, self.label)
        connection.send_command("CLIENT", "TRACKING", "ON", "NOLOOP")
        connection.read_response()
        connection._parser.set_invalidation_push_handler(self._on_invalidate)

    def _on_invalidate(self, message: Sequence[Any]) -> None:
        keys = message[1] if len(message) > 1 else None
        if keys is None:  # FLUSHALL / FLUSHDB / tracking table overflow
            self._mirrors.clear()
            return
        for key in keys:
            self._mirrors.pop(text(key), None)

    def _drain(self) -> None:
        """Read every invalidation already sent to us, so no stale mirror is served.

        A connection the server closed (restart, timeout) reads as EOF here, so it is dropped
        and the next command reconnects instead of failing. One non-blocking poll.
        """
        connection = self._connection
        if not connection.is_connected:
            self._mirrors.clear()
            return
        try:
            while connection.can_read(timeout=0):
                connection.read_response(push_request=True, timeout=0, disconnect_on_error=True)
        except redis.exceptions.TimeoutError:
            pass
        except (redis.exceptions.ConnectionError, OSError):
            self._mirrors.clear()
            connection.disconnect()

    def _lost(self) -> None:
        """The connection failed: no mirror can be trusted; the next command reconnects."""
        self._mirrors.clear()
        if self._connection is not None:
            self._connection.disconnect()

    def close(self) -> None:
        """Close this process's connection; the next operation reconnects."""
        with self._lock:
            client, self._client = self._client, None
            self._mirrors.clear()
            if client is not None and self._pid == os.getpid():
                client.close()
                client.connection_pool.disconnect()
            waiting, self._waiting = self._waiting, None
            if waiting is not None and self._waiting_pid == os.getpid():
                waiting.disconnect()

    # -- running operations -----------------------------------------------------------------

    def _execute(self, request: Request) -> Any:
        connection = self._connection
        if isinstance(request, Command):
            connection.send_command(*request.args)
            return connection.read_response()
        if isinstance(request, Pipeline):
            return self._pipelined(request)
        sha, source = script_table()[request.name]
        # Every argument is str: hiredis packs them directly, as redis-py does internally.
        packed = hiredis.pack_command(("EVALSHA", sha, len(request.keys), *request.keys, *request.args))  # type: ignore[arg-type]
        connection.send_packed_command([packed], check_health=False)
        try:
            return connection.read_response()
        except redis.exceptions.NoScriptError:
            connection.send_command("SCRIPT", "LOAD", source)
            connection.read_response()
            connection.send_packed_command([packed], check_health=False)
            return connection.read_response()

    def _pipelined(self, request: Pipeline) -> list[Any]:
        """Send every request of ``request``, then read every reply: one round trip. An error
        reply stands as its exception; scripts Redis does not have are loaded, and the
        pipeline (read-only) sent again."""
        connection, table = self._connection, script_table()
        for _ in range(2):
            packed = []
            for item in request.requests:
                args = (
                    item.args
                    if isinstance(item, Command)
                    else ("EVALSHA", table[item.name][0], len(item.keys), *item.keys, *item.args)
                )
                packed.append(hiredis.pack_command(tuple(args)))  # type: ignore[arg-type]
            connection.send_packed_command(packed, check_health=False)
            replies: list[Any] = []
            for _ in packed:
                try:
                    replies.append(connection.read_response())
                except redis.exceptions.ResponseError as exc:
                    replies.append(exc)
            missing = {
                item.name
                for item, reply in zip(request.requests, replies, strict=True)
                if isinstance(reply, redis.exceptions.NoScriptError) and isinstance(item, Script)
            }
            if not missing:
                return replies
            for name in missing:
                connection.send_command("SCRIPT", "LOAD", table[name][1])
                connection.read_response()
        return replies

    def _translated(self, exc: Exception) -> Exception:
        """The public error for a redis-py or socket error; a lost connection drops the mirrors."""
        if isinstance(exc, _LOST):
            self._lost()
            if isinstance(exc, OSError):
                return RedisConnectionError(f"cannot reach Redis at {self.label}: {exc}")
        return public_error(exc)

    def drive(self, op: Op[T], *, drain: bool = True) -> T:
        """Run a core operation to its end on the tracked connection, under the lock.

        ``drain=False`` skips the poll for pending invalidations before the first request
        (invalidations that arrive before a reply are handled while reading it anyway). A
        request that meets a lost connection is sent again (see :meth:`_send`).
        """
        if observer.active is not None:
            op = observer.active.traced(self, op)
        started = time.perf_counter()
        with self._lock:
            self.stats.counts["operations"] += 1
            if time.monotonic() >= self._next_adoption:
                self._adopt()  # every few seconds: writes left by a process that crashed meanwhile
            reply: Any = None
            error: Exception | None = None
            first = True
            while True:
                done, value = advance(op, reply, error)
                if done:
                    result: T = value
                    self.stats.timed(getattr(op, "__name__", "op"), time.perf_counter() - started)
                    return result
                reply, error = None, None
                try:
                    reply = self._send(value, drain and first)
                except (redis.exceptions.RedisError, OSError) as exc:
                    error = self._translated(exc)
                    error.__cause__ = exc
                    self.stats.counts["errors"] += 1
                first = False

    def _send(self, request: Request, drain: bool) -> Any:
        """Send one request and read its reply. When the connection is lost (reset, closed,
        timed out, refused), reconnect and send it again, with backoff, for up to
        ``retry_for`` seconds (not at all while writes wait in the journal): a write carries
        an operation id, so Redis applies it once however many times it arrives.

        A write (which can be journaled) waits for each reply no longer than what is left of
        that window, and any request waits at most a second while writes wait in the journal
        (Redis was found unreachable): an unresponsive server costs the window, not the
        socket timeout. Once a request has given up, later ones try once, without waiting,
        until Redis answers again (a circuit breaker: an outage stalls one write, not each).
        The first loss of an outage is logged as a warning, and so is its end."""
        down = self.backlog > 0 or self._down  # known unreachable: one try, no waiting (a breaker)
        window = 0.0 if down else self.retry_for
        deadline = time.monotonic() + window
        writing = is_write(request)
        delays: Iterator[float] | None = None  # made at the first resend
        while True:
            remaining = deadline - time.monotonic()
            cap = remaining if writing else (REPLAY_WAIT if down else None)
            try:
                self._ensure(cap)
                with self._capped(cap):
                    if drain:
                        self._drain()
                    self.stats.counts["round_trips"] += 1
                    reply = self._execute(request)
            except _LOST as exc:
                self._lost()
                if not resendable(request, exc):  # a refusal (not an outage), FT.CURSOR
                    raise
                self._lost_at(exc, window)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    self._down = True  # until Redis answers again, requests do not wait
                    raise
                self.stats.counts["retries"] += 1
                delays = delays or resend_delays()
                time.sleep(min(next(delays), remaining))
                continue
            self._answered()
            return reply

    def _lost_at(self, exc: BaseException, window: float) -> None:
        """Log the first loss of an outage as a warning (later ones at debug level)."""
        if self._outage is None:
            self._outage = time.monotonic()
            logger.warning(
                "lost the connection to %s (%s): resending for up to %.1f s, then %s",
                self.label,
                redact(str(exc)),
                window,
                "journaling writes"
                if getattr(self.journal_keeper(), "journal", None)
                else "raising RedisConnectionError",
            )
        else:
            logger.debug("still no connection to %s (%s)", self.label, redact(str(exc)))

    def _answered(self) -> None:
        """Redis answered: if it had been unreachable, the outage is over (logged, counted)."""
        self._down = False
        if self._outage is not None:
            logger.warning("reconnected to %s after %.1f s", self.label, time.monotonic() - self._outage)
            self._outage = None
            self.stats.counts["reconnects"] += 1

    def fetch(self, spaces: Sequence[KeySpace], names: Sequence[str]) -> list[dict[str, Any]]:
        """See :meth:`Core.g_fetch`."""
        return self.drive(self.g_fetch(spaces, names))

    def execute(self, *args: Any) -> Any:
        """Run one raw command (for the library's own modules; users never need it)."""
        return self.drive(_command(args))

    def execute_many(self, commands: Sequence[tuple[Any, ...]]) -> list[Any]:
        """Run several raw commands (reads) in one round trip (pipelined; not atomic)."""
        with self._lock:
            try:
                self._ensure()
                self._drain()
                connection = self._connection
                self.stats.counts["round_trips"] += 1
                connection.send_packed_command(connection.pack_commands(commands))
                return [connection.read_response() for _ in commands]
            except (redis.exceptions.RedisError, OSError) as exc:
                raise self._translated(exc) from exc

    @contextlib.contextmanager
    def transaction(self, space: KeySpace) -> Iterator[list[Any]]:
        """Queue this thread's writes to ``space`` and send them as one batch at the end.

        The batch is one EVALSHA (``lua/batch.lua``): every op is checked before any is
        applied, so either all of them happen or none. Yields the list that receives the ops'
        replies after the commit. An exception in the block discards the queue.
        """
        self.begin(space)
        results: list[Any] = []
        try:
            yield results
        except BaseException:
            self.end(space)
            raise
        results.extend(self.drive(self.g_commit(space, self.end(space))))

    # -- the operations, for the sync API (see redis_memory.core for what each does) -------------

    def read(self, space: KeySpace, name: str, cached: bool = True) -> tuple[str, Any] | None:
        """See :meth:`Core.g_read` (a valid mirror is served without starting an operation).

        While Redis cannot be reached, or this process's journaled writes wait for it, the
        last known value (with those writes applied) is served when there is one."""
        keeper = self.journal_keeper()
        if keeper is not None and keeper.journals_behind(space):
            known, found = self.known(space, name)
            if known:
                return found
        try:
            return self._read(space, name, cached)
        except RedisConnectionError:
            known, found = self.known(space, name)
            if not known:
                raise
            logger.info("Redis at %s unreachable: serving the last known value of %r", self.label, name)
            return found

    def _read(self, space: KeySpace, name: str, cached: bool) -> tuple[str, Any] | None:
        if cached and self._mirrors:
            with self._lock:
                if self._client is not None and self._pid == os.getpid():
                    self._drain()
                    mirror = self._mirror(space.collection_key(name))
                    if mirror is not None:
                        return mirror.kind, mirror
        return self.drive(self.g_read(space, name, cached))

    def assign(self, space: KeySpace, name: str, value: object) -> None:
        """See :meth:`Core.g_assign`."""
        self.drive(self.g_assign(space, name, value))

    def delete(self, space: KeySpace, name: str) -> bool:
        """See :meth:`Core.g_delete`."""
        return self.drive(self.g_delete(space, name))

    def names(self, space: KeySpace) -> list[str]:
        """See :meth:`Core.g_names`."""
        return self.drive(self.g_names(space))

    def incr(self, space: KeySpace, name: str, amount: int | float) -> int | float | None:
        """See :meth:`Core.g_incr`."""
        return self.drive(self.g_incr(space, name, amount))

    def compare_and_set(self, space: KeySpace, name: str, expected: object, new: object, *, missing: bool) -> bool:
        """See :meth:`Core.g_compare_and_set`."""
        return self.drive(self.g_compare_and_set(space, name, expected, new, missing=missing))

    def clear_all(self, space: KeySpace) -> int:
        """See :meth:`Core.g_clear`."""
        return self.drive(self.g_clear(space))

    def snapshot(self, space: KeySpace) -> dict[str, Any]:
        """See :meth:`Core.g_snapshot`."""
        return self.drive(self.g_snapshot(space))

    def push(self, space: KeySpace, name: str, raws: list[str], elements: list[Any]) -> Mirror | None:
        """See :meth:`Core.g_push` (no poll first: appending follows a read that polled)."""
        return self.drive(self.g_push(space, name, raws, elements), drain=False)

    def list_op(
        self, space: KeySpace, name: str, op: str, args: Sequence[str], update: Callable[[list[Any], list[Any]], None]
    ) -> tuple[Any, Mirror | None]:
        """See :meth:`Core.g_list_op`."""
        return self.drive(self.g_list_op(space, name, op, args, update))

    def set_op(self, space: KeySpace, name: str, op: str, members: Sequence[str]) -> tuple[Any, Mirror | None]:
        """See :meth:`Core.g_set_op`."""
        return self.drive(self.g_set_op(space, name, op, members))

    def doc_ops(self, space: KeySpace, name: str, ops: list[DocOp]) -> list[Any]:
        """See :meth:`Core.g_doc_ops`."""
        return self.drive(self.g_doc_ops(space, name, ops))

    # -- waiting -------------------------------------------------------------------------------

    def wait_list(self, space: KeySpace, name: str, after: int, timeout: float | None) -> list[Any]:
        """Block until list attribute ``name`` has more than ``after`` elements; return those
        past ``after`` ([] on timeout). No polling: a connection of its own reads LLEN with
        client tracking on, then sleeps on its socket until Redis pushes the key's next
        invalidation (any change to the list), and reads again."""
        key = space.collection_key(name)
        deadline = math.inf if timeout is None else time.monotonic() + timeout
        pool = self._waiting_pool()
        connection: Any = pool.get_connection()
        try:
            connection._parser.set_invalidation_push_handler(lambda message: None)
            connection.send_command("CLIENT", "TRACKING", "ON")
            connection.read_response()
            while True:
                connection.send_command("LLEN", key)  # a tracked read: the next change is pushed
                if int(connection.read_response()) > after:
                    connection.send_command("LRANGE", key, after, -1)
                    return codec.loads_elements(connection.read_response())
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return []
                if connection.can_read(timeout=min(remaining, 60.0)):
                    connection.read_response(push_request=True)
        except redis.exceptions.RedisError as exc:
            connection.disconnect()
            raise translate(exc) from exc
        finally:
            if connection.is_connected:
                try:
                    connection.send_command("CLIENT", "TRACKING", "OFF")
                    connection.read_response()
                except redis.exceptions.RedisError:
                    connection.disconnect()
            pool.release(connection)

    def _waiting_pool(self) -> redis.ConnectionPool:
        with self._lock:
            if self._waiting is None or self._waiting_pid != os.getpid():
                self._waiting = self._pool_factory()
                self._waiting_pid = os.getpid()
            return self._waiting


def _command(args: tuple[Any, ...]) -> Op[Any]:
    reply = yield Command(args)
    return reply
