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

import copy
import functools
import hashlib
import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
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
    translate,
)
from redis_memory.keys import KeySpace, kind_field, parse_kind_field

logger = logging.getLogger(__name__)

T = TypeVar("T")
_SCRIPTS = ("get", "assign", "delete", "push", "list_op", "set_op", "doc_op", "doc_cas")
_CAS_ATTEMPTS = 100
_CODES: dict[str, Callable[[str], Exception]] = {
    "RMKIND": ConcurrentModificationError,
    "RMCAS": ConcurrentModificationError,
    "RMPATH": ConcurrentModificationError,
    "RMNOKEY": MissingKeyError,
    "RMNOINDEX": MissingIndexError,
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
    """``name -> (sha1, source)`` of the package's Lua scripts, read on first use."""
    table = {}
    for name in _SCRIPTS:
        source = resources.files("redis_memory").joinpath("lua", f"{name}.lua").read_text("utf-8")
        table[name] = (hashlib.sha1(source.encode()).hexdigest(), source)
    return table


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
            reply = self._script("get", [space.hash_key, key], [name, kind_field(name), json_flag])
            if not reply:
                return None
            kind, value = _text(reply[0]), reply[1]
            structure = codec.structure_of(kind)
            if structure == codec.LIST:
                items = self._proxy(kind, space, name, codec.loads_elements(value or []))
                return kind, self._remember(key, Mirror(kind, items))
            if structure == codec.SET:
                members = {codec.loads(member) for member in value or []}
                return kind, self._remember(key, Mirror(kind, self._proxy(kind, space, name, members)))
            if structure == codec.JSON_DOC:
                if value is None:
                    raise ServerError(f"the document of attribute {name!r} is missing from Redis")
                as_json = _text(reply[2]) == "json"
                document = codec.loads(value)[0] if as_json else codec.loads(value)
                return kind, self._remember(key, Mirror(kind, document, raw=None if as_json else value))
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
        if structure == codec.LIST:
            payload, elements = codec.encode_elements(value)  # type: ignore[arg-type]
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
            args = [name, kind_field(name), kind, structure, json_flag, *payload]
            self._script("assign", [space.hash_key, key], args)
            if mirror is not None:
                if self.json_module:
                    mirror.raw = None
                self._remember(key, mirror)

        self.run(action)

    def delete(self, space: KeySpace, name: str) -> bool:
        """Delete attribute ``name`` of any kind; False when it was not stored. One EVALSHA."""
        key = space.collection_key(name)

        def action(client: redis.Redis) -> bool:
            self._mirrors.pop(key, None)
            return bool(self._script("delete", [space.hash_key, key], [name, kind_field(name)]))

        return self.run(action)

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
                length = self._script("push", [space.hash_key, key], [kind_field(name), *raws])
            except redis.exceptions.RedisError as exc:
                self.forget(key)
                raise self._translated(exc) from exc
            except OSError as exc:
                self._lost()
                raise RedisConnectionError(f"cannot reach Redis at {self.label}: {exc}") from exc
            mirror = self._mirrors.get(key)
            if mirror is None:
                return None
            if mirror.intact() and len(mirror.value) + len(elements) == length:
                list.extend(mirror.value, elements)
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
            reply = self._script("list_op", [space.hash_key, key], [kind_field(name), op, *args])
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
            reply = self._script("set_op", [space.hash_key, key], [kind_field(name), op, *members])
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

    def forget(self, key: str) -> None:
        """Drop the mirror of ``key`` (after a failed compare-and-set, for instance)."""
        with self._lock:
            self._mirrors.pop(key, None)

    # -- dicts ----------------------------------------------------------------------------------

    def doc_ops(self, space: KeySpace, name: str, ops: list[DocOp]) -> list[Any]:
        """Apply path-level changes to dict attribute ``name``, all or none; return the results.

        With RedisJSON: one EVALSHA of JSON.SET / JSON.DEL / JSON.ARRAPPEND ... at the changed
        paths, O(size of the change). Without: the ops are applied to the stored text, which is
        written back by compare-and-set (one EVALSHA, O(size of the document)), retried after a
        re-read if another writer got there first.
        """
        if self.json_module:
            return self._doc_ops_module(space, name, ops)
        return self._doc_ops_cas(space, name, ops)

    def _doc_ops_module(self, space: KeySpace, name: str, ops: list[DocOp]) -> list[Any]:
        key = space.collection_key(name)
        args = [kind_field(name), str(len(ops))]
        for op in ops:
            args.extend(op.script_args())

        def action(client: redis.Redis) -> list[Any]:
            reply = self._script("doc_op", [space.hash_key, key], args)
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
                self._script("doc_cas", [space.hash_key, key], [kind_field(name), expected, text])

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
