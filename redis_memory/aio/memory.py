"""``redis_memory.aio``: the same memories for asyncio.

Attribute syntax cannot await, so reads and writes are methods: ``await mem.get("state")``,
``await mem.set("state", "active")``. ``mem.<name>`` gives a handle on one attribute whose
methods change it in place: ``await mem.messages.append(msg)`` (one RPUSH round trip),
``await mem.tags.add("vip")``, ``await mem.profile["preferences"].set_key("tone", "formal")``.
Every operation is :mod:`redis_memory.core`'s, shared with the sync API; values come back as
plain, mutable Python objects.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
import weakref
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from datetime import timedelta
from typing import Any, ClassVar

import redis.asyncio
import redis.asyncio.cluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from redis_memory import codec, config, connections
from redis_memory.aio.backend import AsyncBackend
from redis_memory.aio.cluster import AsyncClusterBackend
from redis_memory.config import reachable, resolve_prefix, target
from redis_memory.connections import backend_for
from redis_memory.core.requests import QUEUED, Command, Op, text
from redis_memory.docops import DocOp, Path
from redis_memory.errors import MissingAttributeError, MissingIndexError, RedisConnectionError
from redis_memory.keys import DEFAULT_ID, KeySpace, normalize_id
from redis_memory.memory import MISSING, Transaction, _checked_bounds, _milliseconds, fetch_targets, storable_name

_BACKENDS: dict[str, AsyncBackend] = {}


def _backend_for(
    url: str | None,
    client: redis.asyncio.Redis | redis.asyncio.cluster.RedisCluster | None,
    cluster: bool | None = None,
) -> Any:
    if isinstance(client, redis.asyncio.cluster.RedisCluster):
        return _cluster_for_client(client)
    if client is None:
        resolved = target(url)
        wanted = cluster if cluster is not None else (config.cluster_wanted() or resolved in _CLUSTERS)
        if wanted:
            return _cluster_for_url(resolved)
    if client is not None:
        own = AsyncBackend(lambda: client, repr(client))
        connections.count(own)
        return own
    resolved = target(url)  # nothing starts until the backend connects
    found = _BACKENDS.get(resolved)
    if found is None:
        found = _BACKENDS[resolved] = AsyncBackend(
            lambda: redis.asyncio.Redis.from_url(reachable(resolved), **_client_options()),
            resolved,
            lambda: backend_for(url=resolved),
        )
        connections.count(found)
    return found


_CLUSTERS: dict[str, AsyncClusterBackend] = {}
# A cluster client's backend, while the client lives (closed by aclose() too).
_CLIENT_CLUSTERS: weakref.WeakKeyDictionary[redis.asyncio.cluster.RedisCluster, AsyncClusterBackend] = (
    weakref.WeakKeyDictionary()
)


def _cluster_for_url(resolved: str) -> AsyncClusterBackend:
    found = _CLUSTERS.get(resolved)
    if found is None:
        options = {**redis.connection.parse_url(resolved), **_client_options()}  # type: ignore[no-untyped-call]
        options.pop("db", None)
        found = _CLUSTERS[resolved] = AsyncClusterBackend(
            lambda: redis.asyncio.cluster.RedisCluster.from_url(resolved),
            resolved,
            options,
            lambda: backend_for(url=resolved, cluster=True),
        )
    return found


_NODE_OPTIONS = ("username", "password", "credential_provider", "client_name", "ssl_keyfile", "ssl_certfile",
                 "ssl_cert_reqs", "ssl_ca_certs", "ssl_check_hostname")  # fmt: skip


def _cluster_for_client(client: redis.asyncio.cluster.RedisCluster) -> AsyncClusterBackend:
    """The one backend of every memory opened with this cluster client (its primaries'
    connections are the library's own, closed by :func:`aclose`); it holds the client weakly."""
    found = _CLIENT_CLUSTERS.get(client)
    if found is not None:
        return found
    given = client.connection_kwargs
    options: dict[str, Any] = {name: given[name] for name in _NODE_OPTIONS if name in given}
    if given.get("connection_class") is redis.asyncio.connection.SSLConnection:
        options["connection_class"] = redis.asyncio.connection.SSLConnection
    options.update(_client_options())
    owner = weakref.ref(client)
    found = AsyncClusterBackend(lambda: _alive(owner), repr(client), options, owns_client=False)
    _CLIENT_CLUSTERS[client] = found
    return found


def _alive(owner: weakref.ref[redis.asyncio.cluster.RedisCluster]) -> redis.asyncio.cluster.RedisCluster:
    client = owner()
    if client is None:
        raise RedisConnectionError("the Redis Cluster client these memories were opened with was closed and dropped")
    return client


def _client_options() -> dict[str, Any]:
    # redis-py never resends by itself (the backend does, with the write's operation id),
    # and a reply slower than socket_timeout is a lost connection, as in the sync API.
    return {"retry": Retry(NoBackoff(), 0), **config.timeouts()}


async def aclose() -> None:
    """Close the connections the shared async backends opened in the running event loop.

    Await it before the loop ends (``asyncio.run`` ends it) so no connection outlives it.
    """
    backends: list[AsyncBackend | AsyncClusterBackend] = [
        *_BACKENDS.values(),
        *_CLUSTERS.values(),
        *_CLIENT_CLUSTERS.values(),
    ]
    for backend in backends:
        await backend.aclose()
    _CLIENT_CLUSTERS.clear()  # (a cluster client's backend holds it: memories opened later make a new one)


def _plain(kind: str, value: Any) -> Any:
    """A read's value as plain Python data (lists, dicts, sets thawed; models rebuilt)."""
    if kind in (codec.LIST, codec.DICT):
        return codec.thaw(value.value)
    if kind == codec.SET:
        return set(value.value)
    if kind.startswith(codec.MODEL_PREFIX):
        return codec.read_model(kind, value.value)
    return value


class Memory:
    """Shared, durable state in Redis, for asyncio (see the module docstring).

    Connection and arguments as :class:`redis_memory.Memory`; ``client=`` takes a
    ``redis.asyncio.Redis``.
    """

    _space: KeySpace
    _backend: AsyncBackend

    def __init__(
        self,
        memory_id: str | int | uuid.UUID = DEFAULT_ID,
        *,
        url: str | None = None,
        client: redis.asyncio.Redis | redis.asyncio.cluster.RedisCluster | None = None,
        cluster: bool | None = None,
        prefix: str | None = None,
        ttl: timedelta | float | None = None,
        bounds: Mapping[str, int] | None = None,
        offline: str = "journal",
        wait_replicas: int = 0,
    ) -> None:
        """Open the memory ``memory_id`` (nothing is read until you ask). ``offline`` as in
        :class:`redis_memory.Memory`: ``"journal"`` (writes that cannot reach Redis go to the
        offline journal, through a URL) or ``"raise"`` (they raise ``RedisConnectionError``).
        ``cluster=`` / ``client=redis.asyncio.cluster.RedisCluster(...)`` and
        ``wait_replicas=`` as there (docs/cluster.md)."""
        if offline not in ("journal", "raise"):
            raise ValueError(f"offline must be 'journal' or 'raise', not {offline!r}")
        object.__setattr__(self, "_space", KeySpace(resolve_prefix(prefix), normalize_id(memory_id)))
        object.__setattr__(self, "_backend", _backend_for(url, client, cluster))
        if type(wait_replicas) is not int or wait_replicas < 0:
            raise ValueError(f"wait_replicas must be an int >= 0, not {wait_replicas!r}")
        settings = ttl is not None or bounds or offline == "raise" or wait_replicas
        if settings or self._space.hash_key in self._backend._raise_offline:
            self._backend.configure(
                self._space,
                _milliseconds(ttl),
                _checked_bounds(bounds or {}),
                offline=offline,
                wait_replicas=wait_replicas,
            )

    @property
    def memory_id(self) -> str:
        """The id this memory is stored under."""
        return self._space.object_id

    def _name(self, name: str) -> str:
        return storable_name(type(self), name)

    async def get(self, name: str, default: Any = MISSING) -> Any:
        """The value of attribute ``name`` as plain data (``default``, else AttributeError, if
        not stored). One round trip for a scalar; two for a collection (HMGET, then its read)."""
        found = await self._backend.read(self._space, self._name(name))
        if found is None:
            if default is MISSING:
                raise MissingAttributeError(f"{type(self).__name__!r} object has no stored attribute {name!r}")
            return default
        return _plain(*found)

    async def set(self, name: str, value: Any) -> None:
        """Store ``value`` as attribute ``name``, replacing any old value atomically."""
        await self._backend.drive(self._backend.g_assign(self._space, self._name(name), value))

    async def delete(self, name: str) -> None:
        """Delete attribute ``name``; AttributeError if it is not stored."""
        if not await self._backend.drive(self._backend.g_delete(self._space, self._name(name))):
            raise MissingAttributeError(f"{type(self).__name__!r} object has no stored attribute {name!r}")

    async def has(self, name: str) -> bool:
        """True when attribute ``name`` is stored (one or two round trips, as :meth:`get`)."""
        return await self._backend.read(self._space, self._name(name)) is not None

    async def names(self) -> list[str]:
        """The names of every stored attribute (HKEYS; one round trip)."""
        return await self._backend.drive(self._backend.g_names(self._space))

    async def incr(self, name: str, amount: int | float = 1) -> int | float | None:
        """Add ``amount`` atomically and return the new value (see :meth:`redis_memory.Memory.incr`)."""
        return await self._backend.drive(self._backend.g_incr(self._space, self._name(name), amount))

    async def compare_and_set(self, name: str, expected: object, new: object) -> bool:
        """Set scalar ``name`` to ``new`` only if it still holds ``expected`` (or MISSING)."""
        missing = expected is MISSING
        return await self._backend.drive(
            self._backend.g_compare_and_set(self._space, self._name(name), expected, new, missing=missing)
        )

    async def clear(self) -> None:
        """Delete every key of this object atomically (one round trip)."""
        await self._backend.drive(self._backend.g_clear(self._space))

    async def aclose(self) -> None:
        """Close this memory's connections in the running event loop (they reopen on use)."""
        await self._backend.aclose()

    @classmethod
    async def fetch(
        cls,
        ids: Iterable[str | int | uuid.UUID],
        fields: Sequence[str],
        *,
        url: str | None = None,
        client: redis.asyncio.Redis | None = None,
        prefix: str | None = None,
    ) -> dict[str, dict[str, Any]]:
        """As :meth:`redis_memory.Memory.fetch`: attributes ``fields`` of many objects, as
        plain data, in two pipelined round trips at most."""
        spaces, names = fetch_targets(cls, ids, fields, prefix)
        if not spaces or not names:
            return {space.object_id: {} for space in spaces}
        rows = await _backend_for(url, client).fetch(spaces, names)
        return {space.object_id: row for space, row in zip(spaces, rows, strict=True)}

    async def to_dict(self) -> dict[str, Any]:
        """A plain snapshot of every stored attribute, read in one round trip."""
        return await self._backend.drive(self._backend.g_snapshot(self._space))

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        """``async with mem.transaction():`` applies every write inside as one step, or none
        (one round trip at the end; see :meth:`redis_memory.Memory.transaction`)."""
        backend = self._backend
        backend.begin(self._space)
        transaction = Transaction()
        try:
            yield transaction
        except BaseException:
            backend.end(self._space)
            raise
        transaction.results.extend(await backend.drive(backend.g_commit(self._space, backend.end(self._space))))

    def __getattr__(self, name: str) -> Attribute:
        """``mem.<name>``: a handle on one attribute (no I/O)."""
        if name.startswith("_"):
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        return Attribute(self._backend, self._space, self._name(name), ())

    def __setattr__(self, name: str, value: Any) -> None:
        """Names starting with ``_`` stay local; stored attributes are set with ``await mem.set()``."""
        if name.startswith("_"):
            object.__setattr__(self, name, value)
            return
        raise TypeError(f"assignment cannot be awaited: use `await mem.set({name!r}, value)`")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._space.object_id!r})"


class ConversationMemory(Memory):
    """The memory of one conversation, for asyncio."""

    index_messages: ClassVar[bool] = False
    """Opt-in message search, as :attr:`redis_memory.ConversationMemory.index_messages`."""

    def __init__(
        self,
        conversation_id: str | int | uuid.UUID,
        *,
        url: str | None = None,
        client: redis.asyncio.Redis | redis.asyncio.cluster.RedisCluster | None = None,
        cluster: bool | None = None,
        prefix: str | None = None,
        ttl: timedelta | float | None = None,
        max_messages: int | None = None,
        bounds: Mapping[str, int] | None = None,
        index_messages: bool | None = None,
        offline: str = "journal",
        wait_replicas: int = 0,
    ) -> None:
        """Open conversation ``conversation_id``; ``max_messages`` bounds ``messages``;
        ``index_messages`` as in :class:`redis_memory.ConversationMemory` (search with its
        ``search_messages``)."""
        if max_messages is not None:
            bounds = {**(bounds or {}), "messages": max_messages}
        super().__init__(
            conversation_id,
            url=url,
            client=client,
            cluster=cluster,
            prefix=prefix,
            ttl=ttl,
            bounds=bounds,
            offline=offline,
            wait_replicas=wait_replicas,
        )
        if type(self).index_messages if index_messages is None else index_messages:
            from redis_memory.search.messages import message_fields

            self._backend.configure(self._space, search={"messages": message_fields()})

    @property
    def conversation_id(self) -> str:
        """The conversation's id."""
        return self._space.object_id

    def __repr__(self) -> str:
        return f"ConversationMemory(conversation_id={self._space.object_id!r})"


def _length(key: str) -> Op[Any]:
    length = yield Command(("LLEN", key))
    return length


def _element(key: str, index: int) -> Op[tuple[int, Any]]:
    """``(position, stored text)`` of element ``index`` (negative: from the end) of a list;
    text None when out of range. LLEN + LINDEX."""
    length = int((yield Command(("LLEN", key))))
    position = index + length if index < 0 else index
    if not 0 <= position < length:
        return position, None
    raw = yield Command(("LINDEX", key, position))
    return position, raw


def _no_update(items: list[Any], reply: Any) -> None:
    """Async reads keep no mirror: nothing to update locally."""


class Attribute:
    """A handle on one attribute (or, after ``[key]``, on a place inside a dict attribute).

    List, set and dict methods: each is one atomic round trip, checked against the stored
    kind (``ConcurrentModificationError`` if the attribute is not of that kind any more).
    """

    def __init__(self, backend: AsyncBackend, space: KeySpace, name: str, path: Path) -> None:
        """Bind to attribute ``name`` at ``path`` (no I/O)."""
        self._backend, self._space, self._name, self._path = backend, space, name, path

    def __getitem__(self, key: str | int) -> Attribute:
        """A handle on ``key`` inside this dict (or index inside a list in a dict)."""
        return Attribute(self._backend, self._space, self._name, (*self._path, key))

    async def get(self) -> Any:
        """The value here, as plain data."""
        found = await self._backend.read(self._space, self._name)
        if found is None:
            raise MissingAttributeError(f"attribute {self._name!r} is not stored")
        value = _plain(*found)
        for part in self._path:
            value = value[part]
        return value

    # -- lists --------------------------------------------------------------------------------

    async def append(self, value: Any) -> None:
        """Append one element: RPUSH (a list attribute) or JSON.ARRAPPEND (a list in a dict)."""
        await self.extend([value])

    async def extend(self, values: Iterable[Any]) -> None:
        """Append every element atomically (one round trip)."""
        items = list(values)
        if self._path:
            await self._doc([DocOp("arrappend", self._path, None, item) for item in items])
            return
        raws, elements = codec.encode_elements(items)
        if raws:
            await self._backend.drive(self._backend.g_push(self._space, self._name, raws, elements))

    async def insert(self, index: int, value: Any) -> None:
        """Insert before ``index`` (counted from the start as stored now)."""
        if self._path:
            await self._doc([DocOp("arrinsert", self._path, index, value)])
            return
        raw, _ = codec.encode_element(value)
        await self._list("insert", [str(max(0, index)), raw])

    async def pop(self, index: int = -1) -> Any:
        """Remove and return the last element (``index=-1``: RPOP) or the first (``0``: LPOP)."""
        if index not in (0, -1):
            raise ValueError("async pop takes index -1 (the last element) or 0 (the first)")
        reply = await self._list("popright" if index == -1 else "popleft", [])
        return None if reply is QUEUED else codec.loads(reply[1])

    @contextlib.asynccontextmanager
    async def edit(self, index: int) -> AsyncIterator[Any]:
        """``async with mem.messages.edit(i) as element:`` change a dict or list element in place.

        As :meth:`redis_memory.RedisList.edit`: ``element`` is a plain, mutable copy of element
        ``i`` (read with LLEN + LINDEX: two round trips; a negative ``i`` counts from the end as
        the list is now); when the block ends normally and the copy changed, it is written back
        by one EVALSHA (``ops/list.lua`` ``set``) only if Redis still holds, at that position,
        the element read, else ``ConcurrentModificationError``. An exception in the block, or
        an unchanged copy, writes nothing. ``MissingIndexError`` when ``i`` is out of range;
        ``TypeError`` for an element that is not a dict or a list.
        """
        if self._path:
            raise TypeError("edit() changes an element of a list attribute, not a place inside a dict")
        if type(index) is not int:
            raise TypeError(f"list indices must be integers, not {type(index).__name__}")
        key = self._space.collection_key(self._name)
        position, raw = await self._backend.drive(self._backend.on_object(self._space, lambda: _element(key, index)))
        if raw is None:
            raise MissingIndexError("list index out of range")
        element = codec.loads(raw)
        if not isinstance(element, (dict, list)):
            raise TypeError(f"element {position} of {self._name!r} is a {type(element).__name__}: set it instead")
        self._backend.check_edit(self._space, self._name, position)
        expected = text(raw)  # compared with the stored text itself
        draft = codec.thaw(element)
        yield draft
        new_raw, _ = codec.encode_element(draft)
        if new_raw != codec.dumps(element):
            self._backend.check_edit(self._space, self._name, position)  # the block may have queued changes
            await self._list("set", [str(position), expected, new_raw])

    async def wait_for_new(self, after: int | None = None, timeout: float | None = None) -> list[Any]:
        """Wait, without polling, until the list holds more than ``after`` elements (default:
        as many as it holds now) and return those past ``after`` (``[]`` after ``timeout``).

        The same wait as :meth:`redis_memory.RedisList.wait_for_new` (a connection of its own
        sleeps until Redis pushes the list's next change), run in a worker thread. Needs the
        memory opened with ``url=`` (or the environment), not ``client=``.
        """
        if self._path:
            raise TypeError("wait_for_new() waits on a list attribute, not on a place inside a dict")
        if self._backend.waiter is None:
            raise TypeError("wait_for_new() needs the memory opened with url= (or REDIS_URL), not client=")
        if after is None:
            key = self._space.collection_key(self._name)
            after = int(await self._backend.drive(self._backend.on_object(self._space, lambda: _length(key))))
        if type(after) is not int or after < 0:
            raise ValueError(f"after must be an int >= 0, not {after!r}")
        waiter = self._backend.waiter()
        items = await asyncio.to_thread(waiter.wait_list, self._space, self._name, after, timeout)
        return [codec.thaw(item) for item in items]

    async def trim(self, *, last: int) -> None:
        """Keep only the last ``last`` elements (LTRIM)."""
        if type(last) is not int or last < 0:
            raise ValueError(f"last must be an int >= 0, not {last!r}")
        await self._list("trim", [str(last)])

    async def clear(self) -> None:
        """Empty this list, set or dict; the attribute keeps its kind (one round trip after
        reading the kind)."""
        if self._path:
            await self._doc([DocOp("replace", self._path, None, {} if isinstance(await self.get(), dict) else [])])
            return
        found = await self._backend.drive(self._backend.g_read(self._space, self._name))
        kind = found[0] if found is not None else None
        if kind == codec.LIST:
            await self._list("clear", [])
        elif kind == codec.SET:
            await self._backend.drive(self._backend.g_set_op(self._space, self._name, "clear", []))
        elif kind == codec.DICT:
            await self._doc([DocOp("replace", (), None, {})])
        else:
            raise TypeError(f"attribute {self._name!r} is not a list, set or dict")

    async def _list(self, op: str, args: list[str]) -> Any:
        reply, _ = await self._backend.drive(self._backend.g_list_op(self._space, self._name, op, args, _no_update))
        return reply

    # -- sets -----------------------------------------------------------------------------------

    async def add(self, *members: Any) -> None:
        """Add members to a set attribute: SADD; one round trip."""
        await self._backend.drive(self._backend.g_set_op(self._space, self._name, "add", codec.set_members(members)))

    async def discard(self, *members: Any) -> None:
        """Remove members from a set attribute if present: SREM; one round trip."""
        await self._backend.drive(
            self._backend.g_set_op(self._space, self._name, "discard", codec.set_members(members))
        )

    async def remove(self, member: Any) -> None:
        """Remove a member of a set attribute; KeyError if absent."""
        await self._backend.drive(
            self._backend.g_set_op(self._space, self._name, "remove", codec.set_members([member]))
        )

    # -- dicts ----------------------------------------------------------------------------------

    async def set_key(self, key: str, value: Any) -> None:
        """``d[key] = value`` at this place of a dict attribute: JSON.SET at the path."""
        codec.check_key(key, addressable=True)
        codec.check_json(value, addressable=True)
        await self._doc([DocOp("set", self._path, key, value)])

    async def update(self, values: Mapping[str, Any] = {}, **more: Any) -> None:
        """Set several keys here in one atomic step, like ``dict.update``."""
        pairs = {**values, **more}
        for key, value in pairs.items():
            codec.check_key(key, addressable=True)
            codec.check_json(value, addressable=True)
        if pairs:
            await self._doc([DocOp("set", self._path, key, value) for key, value in pairs.items()])

    async def delete_key(self, key: str) -> None:
        """``del d[key]`` here; KeyError if Redis has no such key."""
        await self._doc([DocOp("del", self._path, codec.check_key(key, addressable=True))])

    async def pop_key(self, key: str) -> Any:
        """Remove ``key`` here and return its value (read and deleted atomically)."""
        return (await self._doc([DocOp("pop", self._path, codec.check_key(key, addressable=True))]))[0]

    async def setdefault(self, key: str, default: Any = None) -> Any:
        """Return the value at ``key`` here, first storing ``default`` if absent (atomic)."""
        codec.check_json(default, addressable=True)
        return (await self._doc([DocOp("setnx", self._path, codec.check_key(key, addressable=True), default)]))[0]

    async def _doc(self, ops: list[DocOp]) -> list[Any]:
        return await self._backend.drive(self._backend.g_doc_ops(self._space, self._name, ops))
