"""``Memory`` and ``ConversationMemory``: attribute access mapped onto Redis structures.

``mem.x = value`` picks the structure from the value's kind (see :mod:`redis_memory.codec`);
``mem.x`` reads it back (a scalar, a :class:`~redis_memory.proxies.list.RedisList`, or a
:class:`~redis_memory.proxies.document.RedisDict`); ``del mem.x`` removes it. Names starting
with ``_`` stay on the Python object, as in the original package. No Redis command is built
here: everything goes through the backend and the proxies.
"""

from __future__ import annotations

import uuid
from types import TracebackType
from typing import Any

import redis

from redis_memory import codec
from redis_memory.backend import Backend
from redis_memory.config import backend_for, resolve_prefix
from redis_memory.errors import InvalidNameError, MissingAttributeError, ReservedNameError
from redis_memory.keys import DEFAULT_ID, KeySpace, check_name, normalize_id
from redis_memory.proxies.document import wrap

# Names that methods of this or a coming release use; they cannot be stored attributes.
RESERVED_NAMES = frozenset(
    {"clear", "close", "count", "find", "get", "ids", "incr", "refresh", "set", "to_dict", "transaction"}
)


class Memory:
    """Shared, durable state in Redis with plain attribute access.

    >>> mem = Memory("agent-1")                 # doctest: +SKIP
    >>> mem.messages = []                       # a Redis List
    >>> mem.messages.append({"role": "user", "content": "Hi"})   # RPUSH, one round trip
    >>> mem.state = "active"                    # a field of the object's hash

    Connection: ``client=`` (a ``redis.Redis``), ``url=``, the original package's
    ``redis_hostname=``/``redis_port=``, then ``$REDIS_URL``, ``$REDIS_HOST``/``$REDIS_PORT``,
    then the embedded server. Keys start with ``prefix`` (else ``$REDIS_PREFIX``, else
    ``memory:``); every object's keys share one hash tag, ``<prefix>{<id>}``.
    """

    _space: KeySpace
    _backend: Backend
    _cache: bool

    def __init__(
        self,
        memory_id: str | int | uuid.UUID = DEFAULT_ID,
        *,
        url: str | None = None,
        client: redis.Redis | None = None,
        prefix: str | None = None,
        redis_hostname: str | None = None,
        redis_port: int | None = None,
        redis_prefix: str | None = None,
        cache: bool = True,
    ) -> None:
        """Open the memory ``memory_id`` (nothing is read until an attribute is).

        ``cache=False`` makes every read of a list or dict a round trip instead of serving
        the server-invalidated mirror (see docs/design.md, "Reads").
        """
        space = KeySpace(resolve_prefix(prefix if prefix is not None else redis_prefix), normalize_id(memory_id))
        backend = backend_for(url=url, client=client, host=redis_hostname, port=redis_port)
        object.__setattr__(self, "_space", space)
        object.__setattr__(self, "_backend", backend)
        object.__setattr__(self, "_cache", cache)

    @property
    def memory_id(self) -> str:
        """The id this memory is stored under."""
        return self._space.object_id

    # -- attribute protocol ---------------------------------------------------------------------

    def __getattr__(self, name: str) -> Any:
        """Read stored attribute ``name``: one round trip (none for a mirrored list or dict)."""
        if name.startswith("_"):
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        try:
            check_name(name)
        except InvalidNameError:
            raise MissingAttributeError(f"{type(self).__name__!r} object has no attribute {name!r}") from None
        found = self._backend.read(self._space, name, cached=self._cache)
        if found is None:
            raise MissingAttributeError(f"{type(self).__name__!r} object has no stored attribute {name!r}")
        kind, value = found
        if kind in (codec.LIST, codec.SET):
            return value.value  # the mirror's RedisList / RedisSet itself
        if kind == codec.DICT:
            return wrap(self._backend, self._space, name, value.value)
        if kind.startswith(codec.MODEL_PREFIX):
            return codec.read_model(kind, value.value)  # a snapshot: assign it again to store changes
        return value

    def __setattr__(self, name: str, value: Any) -> None:
        """Store ``value`` as attribute ``name`` (replacing any old value atomically)."""
        if name.startswith("_"):
            object.__setattr__(self, name, value)
            return
        self._check_storable_name(name)
        rebound = getattr(value, "rebound_to", None)
        if rebound is not None and rebound(self._backend, self._space, name):
            return  # ``mem.x += ...`` / ``mem.x |= ...`` already wrote through: nothing to rewrite
        self._backend.assign(self._space, name, value)

    def __delattr__(self, name: str) -> None:
        """Delete stored attribute ``name``; ``AttributeError`` if it is not stored."""
        if name.startswith("_"):
            object.__delattr__(self, name)
            return
        try:
            self._check_storable_name(name)
        except (InvalidNameError, ReservedNameError):
            raise MissingAttributeError(f"{type(self).__name__!r} object has no stored attribute {name!r}") from None
        if not self._backend.delete(self._space, name):
            raise MissingAttributeError(f"{type(self).__name__!r} object has no stored attribute {name!r}")

    def __dir__(self) -> list[str]:
        """The class's own names plus every stored attribute (HKEYS; one round trip)."""
        return sorted(set(super().__dir__()) | set(self._backend.names(self._space)))

    def _check_storable_name(self, name: str) -> None:
        check_name(name)
        if name in RESERVED_NAMES or hasattr(type(self), name):
            raise ReservedNameError(f"{name!r} is a name of {type(self).__name__} itself and cannot be stored")

    # -- context manager --------------------------------------------------------------------------

    def __enter__(self) -> Memory:
        """``with Memory(...) as mem:`` returns the memory itself."""
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Nothing is buffered: every write reached Redis before its statement returned."""
        return None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._space.object_id!r})"


class ConversationMemory(Memory):
    """The memory of one conversation, shared by every process that opens the same id."""

    def __init__(
        self,
        conversation_id: str | int | uuid.UUID,
        *,
        url: str | None = None,
        client: redis.Redis | None = None,
        prefix: str | None = None,
        redis_hostname: str | None = None,
        redis_port: int | None = None,
        redis_prefix: str | None = None,
        cache: bool = True,
    ) -> None:
        """Open conversation ``conversation_id`` (nothing is read until an attribute is)."""
        super().__init__(
            conversation_id,
            url=url,
            client=client,
            prefix=prefix,
            redis_hostname=redis_hostname,
            redis_port=redis_port,
            redis_prefix=redis_prefix,
            cache=cache,
        )

    @property
    def conversation_id(self) -> str:
        """The conversation's id."""
        return self._space.object_id

    def __repr__(self) -> str:
        return f"ConversationMemory(conversation_id={self._space.object_id!r})"
