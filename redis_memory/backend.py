"""The one place that talks to Redis: a tracked connection, the Lua scripts, local mirrors.

Each :class:`Backend` owns one RESP3 connection per process with client-side tracking on
(``CLIENT TRACKING ON NOLOOP``). Reading a collection attribute keeps a *mirror* of it; the
server pushes an invalidation on this same connection as soon as any other client changes
the key, and pending pushes are read before a mirror is used and before every reply, so a
mirror is only served while no other writer has touched the key. Our own writes run as Lua
scripts that end by reading the key again, which keeps the key tracked, and update the
mirror in place. That is what lets ``mem.messages`` be a real ``list`` with its items filled
in, at zero round trips, while ``mem.messages.append(x)`` costs one RPUSH round trip.

Every redis-py exception is translated here (:func:`redis_memory.errors.translate`).
"""

from __future__ import annotations

import contextlib
import copy
import functools
import hashlib
import logging
import math
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any, TypeVar

import hiredis
import redis
import redis.exceptions

from redis_memory import codec
from redis_memory.docops import DocOp, apply_ops
from redis_memory.errors import (
    ConcurrentModificationError,
    MissingIndexError,
    MissingKeyError,
    RedisConnectionError,
    ServerError,
    TransactionError,
    UnstorableValueError,
    WrongTypeError,
    translate,
)
from redis_memory.keys import KeySpace, kind_field, parse_kind_field

logger = logging.getLogger(__name__)

T = TypeVar("T")
_READ_SCRIPTS = ("get", "snapshot")
_OPS = ("assign", "delete", "push", "list", "set", "doc", "doc_cas", "incr", "cas", "clear")
# Ops whose reply a caller needs at once: they cannot be queued in a transaction.
_NEEDS_REPLY = {"list": {"popright", "popleft", "delete"}, "set": {"pop"}}
_DOC_NEEDS_REPLY = {"setnx", "pop", "arrpop"}


class _Queued:
    """The reply of an op queued in a transaction (sent when the transaction commits)."""

    def __repr__(self) -> str:
        return "QUEUED"


QUEUED: Any = _Queued()
_CAS_ATTEMPTS = 100
_CODES: dict[str, Callable[[str], Exception]] = {
    "RMKIND": ConcurrentModificationError,
    "RMCAS": ConcurrentModificationError,
    "RMPATH": ConcurrentModificationError,
    "RMNOKEY": MissingKeyError,
    "RMNOINDEX": MissingIndexError,
    "RMTYPE": WrongTypeError,
}


# Makes the object a list or set mirror holds and users receive: (backend, space, name, items).
ProxyFactory = Callable[["Backend", KeySpace, str, Any], Any]


@dataclass(eq=False, slots=True)
class Mirror:
    """A local copy of one collection key, valid while the key stays in the backend's table.

    ``value`` is, for a list or a set, the object handed to users (a ``RedisList`` or
    ``RedisSet`` made by the backend's proxy factories), so reading it copies nothing; for a
    dict or a model, the plain document. ``raw`` is the stored document text (documents
    without RedisJSON, for compare-and-set).
    """

    kind: str
    value: Any
    raw: bytes | None = None
    shape: tuple[int, int, int] = (0, 0, 0)
    deadline: float = math.inf  # time.monotonic() by which the key may have expired

    def seal(self) -> Mirror:
        """Record the value's shape after a change this library made (see :func:`_shape`)."""
        self.shape = _shape(self.value)
        return self

    def intact(self) -> bool:
        """False when the list or set was changed behind the library's back (see :func:`_shape`)."""
        return _shape(self.value) == self.shape


def _shape(items: Any) -> tuple[int, int, int]:
    """Length and ends of a list (length of a set): O(1), and different after most C-level
    changes that bypass the methods (``heapq.heappush``, ``list.append(x, ...)``, ``heapify``...)."""
    if isinstance(items, list):
        return (len(items), id(items[0]), id(items[-1])) if items else (0, 0, 0)
    if isinstance(items, (set, frozenset)):
        return (len(items), 0, 0)
    return (0, 0, 0)


@functools.cache
def _script_table() -> dict[str, tuple[str, str]]:
    """``name -> (sha1, source)`` of the scripts, composed from ``lua/`` on first use.

    Each write op lives once, in ``lua/ops/<op>.lua``; ``op:<op>`` is ``lib.lua`` + that op +
    ``single.lua``, and ``batch`` is ``lib.lua`` + every op + ``batch.lua`` (transactions).
    """
    folder = resources.files("redis_memory").joinpath("lua")

    def read(path: str) -> str:
        return folder.joinpath(path).read_text("utf-8")

    sources = {name: read(f"{name}.lua") for name in _READ_SCRIPTS}
    lib = read("lib.lua")
    ops = {name: read(f"ops/{name}.lua") for name in _OPS}
    for name, body in ops.items():
        sources[f"op:{name}"] = "\n".join((lib, body, read("single.lua")))
    sources["batch"] = "\n".join((lib, *ops.values(), read("batch.lua")))
    return {name: (hashlib.sha1(source.encode()).hexdigest(), source) for name, source in sources.items()}


def _text(value: bytes | str) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else value


class Backend:
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
    ):
        """Prepare a backend; nothing connects until the first operation.

        ``factories[kind](backend, space, name, items)`` makes the object a list or set mirror
        holds (and users receive); by default the plain ``list`` or ``set``.
        """
        self.label = label
        self._pool_factory = pool_factory
        self._factories = factories or {}
        self._max_mirrors = max_mirrors
        self._lock = threading.RLock()
        self._pid = -1
        self._client: redis.Redis | None = None
        self._connection: Any = None
        self._mirrors: OrderedDict[str, Mirror] = OrderedDict()
        self._json_module: bool | None = None
        self._ttls: dict[str, int] = {}
        self._bounds: dict[tuple[str, str], int] = {}
        self._local = threading.local()
        self._waiting: redis.ConnectionPool | None = None  # connections that block in wait_list
        self._waiting_pid = -1

    # -- connection -----------------------------------------------------------------------

    def _ensure(self) -> redis.Redis:
        if self._client is not None and self._pid == os.getpid():
            return self._client
        self._mirrors.clear()
        self._client = None  # a connection inherited through fork() is never touched again
        client = redis.Redis(connection_pool=self._pool_factory(), single_connection_client=True)
        connection: Any = client.connection
        connection.register_connect_callback(self._on_connect)
        self._on_connect(connection)
        self._client, self._connection, self._pid = client, connection, os.getpid()
        return client

    def _on_connect(self, connection: Any) -> None:
        """(Re)connected: turn tracking on for this connection and forget every mirror."""
        self._mirrors.clear()
        connection.send_command("CLIENT", "TRACKING", "ON", "NOLOOP")
        connection.read_response()
        connection._parser.set_invalidation_push_handler(self._on_invalidate)

    def _on_invalidate(self, message: Sequence[Any]) -> None:
        keys = message[1] if len(message) > 1 else None
        if keys is None:  # FLUSHALL / FLUSHDB / tracking table overflow
            self._mirrors.clear()
            return
        for key in keys:
            self._mirrors.pop(_text(key), None)

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

    def _mirror(self, key: str) -> Mirror | None:
        """The valid mirror of ``key``, if any (``run`` has read pending invalidations)."""
        mirror = self._mirrors.get(key)
        if mirror is None:
            return None
        if mirror.deadline <= time.monotonic():  # Redis hides an expired key before it deletes it
            del self._mirrors[key]
            return None
        if not mirror.intact():
            logger.warning("the list at %s was changed without writing to Redis; reading it again", key)
            del self._mirrors[key]
            return None
        self._mirrors.move_to_end(key)
        return mirror

    def _script(self, name: str, keys: Sequence[str], args: Sequence[str]) -> Any:
        """EVALSHA ``lua/<name>.lua`` straight on the tracked connection (SCRIPT LOAD if needed)."""
        sha, source = _script_table()[name]
        connection = self._connection
        # Every argument is str: hiredis packs them directly, as redis-py does internally.
        packed = hiredis.pack_command(("EVALSHA", sha, len(keys), *keys, *args))  # type: ignore[arg-type]
        connection.send_packed_command([packed], check_health=False)
        try:
            return connection.read_response()
        except redis.exceptions.NoScriptError:
            connection.send_command("SCRIPT", "LOAD", source)
            connection.read_response()
            connection.send_packed_command([packed], check_health=False)
            return connection.read_response()

    def run(self, action: Callable[[redis.Redis], T]) -> T:
        """Run ``action(client)`` under the lock, translating redis-py errors to ours."""
        with self._lock:
            try:
                client = self._ensure()
                self._drain()
                return action(client)
            except redis.exceptions.RedisError as exc:
                raise self._translated(exc) from exc
            except OSError as exc:
                self._lost()
                raise RedisConnectionError(f"cannot reach Redis at {self.label}: {exc}") from exc

    def _translated(self, exc: redis.exceptions.RedisError) -> Exception:
        """The public error for a redis-py one (our scripts' codes included)."""
        if isinstance(exc, redis.exceptions.ResponseError):
            code, _, message = str(exc).partition(" ")
            factory = _CODES.get(code)
            if factory is not None:
                return factory(message)
        elif isinstance(exc, (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)):
            self._lost()
        return translate(exc)

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

    @property
    def json_module(self) -> bool:
        """True when the server has RedisJSON loaded (asked once, then remembered)."""
        if self._json_module is None:

            def probe(client: Any) -> bool:
                try:
                    client.execute_command("JSON.TYPE", "memory:__probe__")
                except redis.exceptions.ResponseError:
                    return False
                return True

            self._json_module = self.run(probe)
        return self._json_module

    def execute(self, *args: Any) -> Any:
        """Run one raw command (for the library's own modules; users never need it)."""
        return self.run(lambda client: client.execute_command(*args))  # type: ignore[no-untyped-call]

    # -- configuration, ops, transactions -------------------------------------------------------

    def configure(self, space: KeySpace, ttl_ms: int = 0, bounds: dict[str, int] | None = None) -> None:
        """Set the sliding expiry of an object and the size bounds of its lists (no I/O).

        Every later write to the object, from this process, refreshes the expiry of all its
        keys and trims a bounded list in the same script.
        """
        with self._lock:
            if ttl_ms > 0:
                self._ttls[space.hash_key] = ttl_ms
            else:
                self._ttls.pop(space.hash_key, None)
            for name, bound in (bounds or {}).items():
                self._bounds[(space.hash_key, name)] = bound

    def bound(self, space: KeySpace, name: str) -> int:
        """The size bound of list attribute ``name`` (0: none)."""
        return self._bounds.get((space.hash_key, name), 0)

    def _queue(self, space: KeySpace) -> list[tuple[str, str, list[str]]] | None:
        queues: dict[str, list[tuple[str, str, list[str]]]] = getattr(self._local, "queues", {})
        return queues.get(space.hash_key)

    def _op(self, name: str, space: KeySpace, key: str, args: Sequence[str]) -> Any:
        """Run write op ``lua/ops/<name>.lua`` on ``key`` (one EVALSHA), or queue it when this
        thread has a transaction open on the object (then return :data:`QUEUED`)."""
        queue = self._queue(space)
        if queue is not None:
            if name in _NEEDS_REPLY and args[1] in _NEEDS_REPLY[name]:
                raise TransactionError("this change returns a value from Redis: make it outside the transaction")
            queue.append((name, key, list(args)))
            return QUEUED
        ttl = self._ttls.get(space.hash_key, 0)
        sent = time.monotonic()
        reply = self._script(f"op:{name}", [space.hash_key, key], [str(ttl), *args])
        if ttl:
            self._slide(space, sent + ttl / 1000)
        return reply

    def _slide(self, space: KeySpace, deadline: float) -> None:
        """Our write refreshed the expiry of every key of the object: so do their mirrors."""
        prefix = space.hash_key + ":"
        for key, mirror in self._mirrors.items():
            if key.startswith(prefix):
                mirror.deadline = deadline

    @contextlib.contextmanager
    def transaction(self, space: KeySpace) -> Iterator[list[Any]]:
        """Queue this thread's writes to ``space`` and send them as one batch at the end.

        The batch is one EVALSHA (``lua/batch.lua``): every op is checked before any is
        applied, so either all of them happen or none. Yields the list that receives the ops'
        replies after the commit. An exception in the block discards the queue.
        """
        queues: dict[str, list[tuple[str, str, list[str]]]] = self._local.__dict__.setdefault("queues", {})
        if space.hash_key in queues:
            raise TransactionError("a transaction is already open on this memory in this thread")
        queue: list[tuple[str, str, list[str]]] = []
        queues[space.hash_key] = queue
        results: list[Any] = []
        documents: dict[str, tuple[str, str, Any]] = self._local.__dict__.setdefault("documents", {})
        try:
            yield results
            for key, (name, expected, document) in list(documents.items()):
                if key.startswith(space.hash_key + ":"):
                    queue.append(("doc_cas", key, [kind_field(name), expected, codec.dumps(document)]))
        finally:
            del queues[space.hash_key]
            for key in [key for key in documents if key.startswith(space.hash_key + ":")]:
                del documents[key]
        if queue:
            results.extend(self._commit(space, queue))

    def _commit(self, space: KeySpace, queue: list[tuple[str, str, list[str]]]) -> list[Any]:
        keys: list[str] = []
        args: list[str] = [str(self._ttls.get(space.hash_key, 0)), str(len(queue))]
        for name, key, op_args in queue:
            if key not in keys:
                keys.append(key)
            args += [name, str(keys.index(key) + 2), str(len(op_args)), *op_args]

        def action(client: redis.Redis) -> list[Any]:
            sent = time.monotonic()
            try:
                return list(self._script("batch", [space.hash_key, *keys], args))
            finally:
                for key in keys:
                    self._mirrors.pop(key, None)
                ttl = self._ttls.get(space.hash_key, 0)
                if ttl:
                    self._slide(space, sent + ttl / 1000)

        return self.run(action)

    # -- mirrors ----------------------------------------------------------------------------

    def _remember(self, key: str, mirror: Mirror) -> Mirror:
        mirror.seal()
        self._mirrors[key] = mirror
        self._mirrors.move_to_end(key)
        while len(self._mirrors) > self._max_mirrors:
            self._mirrors.popitem(last=False)
        return mirror

    def _proxy(self, kind: str, space: KeySpace, name: str, items: Any) -> Any:
        factory = self._factories.get(kind)
        return items if factory is None else factory(self, space, name, items)

    # -- attributes ---------------------------------------------------------------------------

    def read(self, space: KeySpace, name: str, cached: bool = True) -> tuple[str, Any] | None:
        """Read one attribute: ``(kind, scalar)`` or ``(kind, Mirror)``; None when not stored.

        A mirrored collection costs no round trip when ``cached``; a scalar one HMGET; a
        collection not mirrored one HMGET then one EVALSHA (HGET + LRANGE, JSON.GET or GET;
        O(size of the value)).
        """
        key = space.collection_key(name)

        def action(client: redis.Redis) -> tuple[str, Any] | None:
            mirror = self._mirror(key) if cached else None
            if mirror is not None:
                return mirror.kind, mirror
            connection = self._connection
            connection.send_command("HMGET", space.hash_key, name, kind_field(name))
            value, kind = connection.read_response()
            if kind is None:
                return None
            kind = _text(kind)
            if codec.structure_of(kind) == codec.HASH:
                return kind, codec.decode_scalar(kind, _text(value) if value is not None else "")
            json_flag = "1" if self.json_module else "0"
            sent = time.monotonic()
            reply = self._script("get", [space.hash_key, key], [name, kind_field(name), json_flag])
            if not reply:
                return None
            kind, value, form, pttl = _text(reply[0]), reply[1], _text(reply[2]), int(reply[3])
            deadline = sent + pttl / 1000 if pttl >= 0 else math.inf
            structure = codec.structure_of(kind)
            if structure == codec.LIST:
                items = self._proxy(kind, space, name, codec.loads_elements(value or []))
                return kind, self._remember(key, Mirror(kind, items, deadline=deadline))
            if structure == codec.SET:
                members = self._proxy(kind, space, name, {codec.loads(member) for member in value or []})
                return kind, self._remember(key, Mirror(kind, members, deadline=deadline))
            if structure == codec.JSON_DOC:
                if value is None:
                    raise ServerError(f"the document of attribute {name!r} is missing from Redis")
                as_json = form == "json"
                document = codec.loads(value)[0] if as_json else codec.loads(value)
                mirror = Mirror(kind, document, raw=None if as_json else value, deadline=deadline)
                return kind, self._remember(key, mirror)
            return kind, codec.decode_scalar(kind, _text(value) if value is not None else "")

        return self.run(action)

    def assign(self, space: KeySpace, name: str, value: object) -> None:
        """Store ``value`` as attribute ``name``, replacing any old value of any kind.

        One EVALSHA: DEL + HSET for a scalar, + RPUSH for a list, + JSON.SET (or SET) for a
        dict; O(size of the value). The value is checked and encoded before anything is sent.
        """
        kind = codec.classify(value)
        structure = codec.structure_of(kind)
        key = space.collection_key(name)
        mirror: Mirror | None = None
        bound = self.bound(space, name)
        if structure == codec.LIST:
            payload, elements = codec.encode_elements(value)  # type: ignore[arg-type]
            if bound:
                payload, elements = payload[-bound:], elements[-bound:]
            mirror = Mirror(kind, self._proxy(kind, space, name, elements))
        elif structure == codec.SET:
            payload = codec.set_members(value)  # type: ignore[arg-type]
            members = {codec.loads(member) for member in payload}
            mirror = Mirror(kind, self._proxy(kind, space, name, members))
        elif structure == codec.JSON_DOC:
            if isinstance(value, dict):
                document, text = value, codec.dumps(value, addressable=True)
            else:
                document = codec.model_document(value)  # type: ignore[arg-type]
                text = codec.dumps(document)
            payload = [text]
            mirror = Mirror(kind, codec.loads(text), raw=text.encode())
        else:
            payload = [codec.encode_scalar(value)[1]]

        def action(client: redis.Redis) -> None:
            json_flag = "1" if self.json_module else "0"
            self._mirrors.pop(key, None)
            args = [name, kind_field(name), kind, structure, json_flag, str(bound), *payload]
            sent = time.monotonic()
            if self._op("assign", space, key, args) is QUEUED:
                return
            if mirror is not None:
                if self.json_module:
                    mirror.raw = None
                ttl = self._ttls.get(space.hash_key, 0)
                if ttl:
                    mirror.deadline = sent + ttl / 1000
                self._remember(key, mirror)

        self.run(action)

    def delete(self, space: KeySpace, name: str) -> bool:
        """Delete attribute ``name`` of any kind; False when it was not stored. One EVALSHA.

        In a transaction the deletion is queued and True is returned.
        """
        key = space.collection_key(name)

        def action(client: redis.Redis) -> bool:
            self._mirrors.pop(key, None)
            reply = self._op("delete", space, key, [name, kind_field(name)])
            return reply is QUEUED or bool(reply)

        return self.run(action)

    def incr(self, space: KeySpace, name: str, amount: int | float) -> int | float | None:
        """Add ``amount`` to a numeric attribute atomically (HINCRBY / HINCRBYFLOAT; a missing
        attribute starts at 0). One EVALSHA. Returns the new value (None when queued)."""
        if type(amount) not in (int, float) or (type(amount) is float and not math.isfinite(amount)):
            raise UnstorableValueError(f"incr needs an int or a finite float, not {amount!r}")
        number_kind = "float" if type(amount) is float else "int"
        args = [name, kind_field(name), repr(amount), number_kind]
        reply = self.run(lambda client: self._op("incr", space, space.collection_key(name), args))
        if reply is QUEUED:
            return None
        text = _text(reply)
        return float(text) if ("." in text or "e" in text or number_kind == "float") else int(text)

    def compare_and_set(self, space: KeySpace, name: str, expected: object, new: object, *, missing: bool) -> bool:
        """Store scalar ``new`` only if attribute ``name`` still holds scalar ``expected`` (or is
        not stored, when ``missing``). One EVALSHA; False when it held something else."""
        expected_kind, expected_text = ("", "") if missing else codec.encode_scalar(expected)
        new_kind, new_text = codec.encode_scalar(new)
        args = [name, kind_field(name), expected_kind, expected_text, new_kind, new_text]
        key = space.collection_key(name)
        try:
            self.run(lambda client: self._op("cas", space, key, args))
        except ConcurrentModificationError:
            return False
        self.forget(key)
        return True

    def clear_all(self, space: KeySpace) -> int:
        """Delete every key of the object (its collections, then its hash) atomically; one
        EVALSHA, O(number of attributes). Returns the number of keys deleted (0 when queued)."""

        def action(client: redis.Redis) -> int:
            for key in [key for key in self._mirrors if key.startswith(space.hash_key + ":")]:
                del self._mirrors[key]
            reply = self._op("clear", space, space.hash_key, [])
            return 0 if reply is QUEUED else int(reply)

        return self.run(action)

    def snapshot(self, space: KeySpace) -> dict[str, Any]:
        """Every attribute as plain data, read in one round trip (``snapshot.lua``)."""
        json_flag = "1" if self.json_module else "0"
        reply = self.run(lambda client: self._script("snapshot", [space.hash_key], [json_flag]))
        fields = reply[0]
        flat = dict(zip(fields[::2], fields[1::2], strict=True)) if isinstance(fields, list) else fields
        flat = {_text(field): value for field, value in flat.items()}
        result: dict[str, Any] = {}
        collections = {_text(item[0]): item[1:] for item in reply[1:]}
        for field, kind_raw in flat.items():
            name = parse_kind_field(field)
            if name is None:
                continue
            kind = _text(kind_raw)
            structure = codec.structure_of(kind)
            if structure == codec.HASH:
                value = flat.get(name)
                result[name] = codec.decode_scalar(kind, _text(value) if value is not None else "")
            elif structure == codec.LIST:
                result[name] = [codec.loads(item) for item in collections.get(name, [[]])[0] or []]
            elif structure == codec.SET:
                result[name] = {codec.loads(item) for item in collections.get(name, [[]])[0] or []}
            else:
                raw, form = collections[name]
                document = codec.loads(raw)[0] if _text(form) == "json" else codec.loads(raw)
                result[name] = codec.read_model(kind, document) if kind != codec.DICT else document
        return result

    def names(self, space: KeySpace) -> list[str]:
        """The names of every stored attribute. HKEYS; one round trip, O(number of fields)."""
        fields = self.run(lambda client: client.hkeys(space.hash_key))
        names = (parse_kind_field(_text(field)) for field in fields)
        return sorted(name for name in names if name is not None)

    # -- lists ----------------------------------------------------------------------------------

    def push(self, space: KeySpace, name: str, raws: list[str], elements: list[Any]) -> Mirror | None:
        """Append encoded elements (and their read-only copies, for the mirror). One EVALSHA of
        ``push.lua``: HGET (kind check) + RPUSH + LLEN; O(k). Returns the valid mirror, if any."""
        key = space.collection_key(name)
        with self._lock:
            try:
                self._ensure()
                bound = self.bound(space, name)
                length = self._op("push", space, key, [kind_field(name), str(bound), *raws])
                if length is QUEUED:
                    return QUEUED  # type: ignore[no-any-return]
            except redis.exceptions.RedisError as exc:
                self.forget(key)
                raise self._translated(exc) from exc
            except OSError as exc:
                self._lost()
                raise RedisConnectionError(f"cannot reach Redis at {self.label}: {exc}") from exc
            mirror = self._mirrors.get(key)
            if mirror is None:
                return None
            expected = len(mirror.value) + len(elements)
            if mirror.intact() and (length == expected or (bound and length == bound <= expected)):
                list.extend(mirror.value, elements)
                if bound and len(mirror.value) > bound:
                    list.__delitem__(mirror.value, slice(0, len(mirror.value) - bound))  # no write-through
                mirror.seal()
                return mirror
            del self._mirrors[key]
            return None

    def list_op(
        self,
        space: KeySpace,
        name: str,
        op: str,
        args: Sequence[str],
        update: Callable[[list[Any], list[Any]], None],
    ) -> tuple[list[Any], Mirror | None]:
        """Run one ``list_op.lua`` operation; one EVALSHA.

        When the list's mirror is still valid after the reply (no other writer touched the key
        since it was read: their invalidations arrive before our reply), ``update(items, reply)``
        applies the same change to it. Returns the reply and the mirror (None if not valid).
        """
        key = space.collection_key(name)

        def action(client: redis.Redis) -> tuple[list[Any], Mirror | None]:
            reply = self._op("list", space, key, [kind_field(name), op, str(self.bound(space, name)), *args])
            if reply is QUEUED:
                return reply, None
            mirror = self._mirrors.get(key)
            if mirror is not None and not mirror.intact():
                del self._mirrors[key]
                mirror = None
            if mirror is not None:
                update(mirror.value, reply)
                mirror.seal()
                if len(mirror.value) != int(reply[0]):  # defensive: never keep a wrong mirror
                    self._mirrors.pop(key, None)
                    mirror = None
            return reply, mirror

        try:
            return self.run(action)
        except ConcurrentModificationError:
            self.forget(key)
            raise

    def set_op(self, space: KeySpace, name: str, op: str, members: Sequence[str]) -> tuple[list[Any], Mirror | None]:
        """Run one ``set_op.lua`` operation (SADD / SREM / SPOP / DEL, then SCARD); one EVALSHA.

        The valid mirror, if any, gets the same change. Returns the reply and that mirror.
        """
        key = space.collection_key(name)

        def action(client: redis.Redis) -> tuple[list[Any], Mirror | None]:
            reply = self._op("set", space, key, [kind_field(name), op, *members])
            if reply is QUEUED:
                return reply, None
            mirror = self._mirrors.get(key)
            if mirror is not None and not mirror.intact():
                del self._mirrors[key]
                mirror = None
            if mirror is not None:
                if op == "add":
                    set.update(mirror.value, (codec.loads(member) for member in members))
                elif op in ("remove", "discard"):
                    set.difference_update(mirror.value, (codec.loads(member) for member in members))
                elif op == "pop":
                    set.discard(mirror.value, codec.loads(reply[1]))
                else:
                    set.clear(mirror.value)
                mirror.seal()
                if len(mirror.value) != int(reply[0]):  # e.g. 1 and True: distinct in Redis, equal here
                    del self._mirrors[key]
                    mirror = None
            return reply, mirror

        try:
            return self.run(action)
        except ConcurrentModificationError:
            self.forget(key)
            raise

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
            assert self._waiting is not None
            return self._waiting

    def forget(self, key: str) -> None:
        """Drop the mirror of ``key`` (after a failed compare-and-set, for instance)."""
        with self._lock:
            self._mirrors.pop(key, None)

    # -- dicts ----------------------------------------------------------------------------------

    def doc_ops(self, space: KeySpace, name: str, ops: list[DocOp]) -> list[Any]:
        """See :meth:`_doc_ops`; refuses, in a transaction, the ops whose result is needed now."""
        if self._queue(space) is not None and any(op.op in _DOC_NEEDS_REPLY for op in ops):
            raise TransactionError("this change returns a value from Redis: make it outside the transaction")
        return self._doc_ops(space, name, ops)

    def _doc_ops(self, space: KeySpace, name: str, ops: list[DocOp]) -> list[Any]:
        """Apply path-level changes to dict attribute ``name``, all or none; return the results.

        With RedisJSON: one EVALSHA of JSON.SET / JSON.DEL / JSON.ARRAPPEND ... at the changed
        paths, O(size of the change). Without: the ops are applied to the stored text, which is
        written back by compare-and-set (one EVALSHA, O(size of the document)), retried after a
        re-read if another writer got there first.
        """
        if self.json_module:
            return self._doc_ops_module(space, name, ops)
        return self._doc_ops_cas(space, name, ops)

    def _doc_ops_in_transaction(self, space: KeySpace, name: str, key: str, ops: list[DocOp]) -> list[Any]:
        """Without RedisJSON, a transaction changes a working copy of each document; the copy
        is written by one compare-and-set against the text first read, at commit."""
        documents: dict[str, tuple[str, str, Any]] = self._local.__dict__.setdefault("documents", {})
        if key not in documents:
            found = self.read(space, name)
            if found is None or found[0] != codec.DICT or found[1].raw is None:
                raise ConcurrentModificationError("the attribute was deleted or replaced by another writer")
            documents[key] = (name, hashlib.sha1(found[1].raw).hexdigest(), copy.deepcopy(found[1].value))
        apply_ops(documents[key][2], ops)
        return [QUEUED] * len(ops)

    def _doc_ops_module(self, space: KeySpace, name: str, ops: list[DocOp]) -> list[Any]:
        key = space.collection_key(name)
        args = [kind_field(name), str(len(ops))]
        for op in ops:
            args.extend(op.script_args())

        def action(client: redis.Redis) -> list[Any]:
            reply = self._op("doc", space, key, args)
            if reply is QUEUED:
                return [QUEUED] * len(ops)
            results: list[Any] = []
            for op, raw in zip(ops, reply, strict=True):
                if op.op in ("setnx", "pop"):
                    results.append(codec.loads(raw)[0])
                elif op.op == "arrpop":
                    results.append(codec.loads(raw))
                elif op.op in ("arrappend", "arrinsert"):
                    results.append(int(raw))
                else:
                    results.append(None)
            mirror = self._mirrors.get(key)
            if mirror is not None:
                try:
                    apply_ops(mirror.value, ops)
                except Exception:  # the mirror disagrees: drop it rather than trust it
                    self._mirrors.pop(key, None)
            return results

        try:
            return self.run(action)
        except ConcurrentModificationError:
            self.forget(key)
            raise

    def _doc_ops_cas(self, space: KeySpace, name: str, ops: list[DocOp]) -> list[Any]:
        key = space.collection_key(name)
        if self._queue(space) is not None:
            return self._doc_ops_in_transaction(space, name, key, ops)
        for _attempt in range(_CAS_ATTEMPTS):
            found = self.read(space, name)
            if found is None or found[0] != codec.DICT:
                raise ConcurrentModificationError("the attribute was deleted or replaced by another writer")
            mirror: Mirror = found[1]
            assert mirror.raw is not None
            document = copy.deepcopy(mirror.value)
            results = apply_ops(document, ops)  # raises MissingKeyError etc. before any write
            text = codec.dumps(document)
            expected = hashlib.sha1(mirror.raw).hexdigest()

            def action(client: redis.Redis, text: str = text, expected: str = expected) -> None:
                self._op("doc_cas", space, key, [kind_field(name), expected, text])

            try:
                self.run(action)
            except ConcurrentModificationError as exc:
                self.forget(key)
                if "deleted or replaced" in str(exc):
                    raise
                continue
            with self._lock:
                if self._mirrors.get(key) is mirror:
                    mirror.value, mirror.raw = document, text.encode()
            return results
        raise ConcurrentModificationError(f"dict attribute {name!r} kept changing; gave up after {_CAS_ATTEMPTS} tries")
