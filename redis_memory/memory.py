"""``Memory`` and ``ConversationMemory``: attribute access mapped onto Redis structures.

``mem.x = value`` picks the structure from the value's kind (see :mod:`redis_memory.codec`);
``mem.x`` reads it back (a scalar, a :class:`~redis_memory.proxies.list.RedisList`, or a
:class:`~redis_memory.proxies.document.RedisDict`); ``del mem.x`` removes it. Names starting
with ``_`` stay on the Python object, as in the original package. No Redis command is built
here: everything goes through the backend and the proxies.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import timedelta
from types import TracebackType
from typing import TYPE_CHECKING, Any, ClassVar, Self, TypeVar

import redis
import redis.cluster

from redis_memory import codec, schema
from redis_memory.backend import Backend
from redis_memory.config import resolve_prefix
from redis_memory.connections import backend_for
from redis_memory.errors import InvalidNameError, MissingAttributeError, ReservedNameError
from redis_memory.keys import DEFAULT_ID, KeySpace, check_name, normalize_id
from redis_memory.proxies.document import wrap

if TYPE_CHECKING:
    from redis_memory.search.messages import MessageMatch

T = TypeVar("T")

# Names that methods of this or a coming release use; they cannot be stored attributes.
RESERVED_NAMES = frozenset(
    {
        "aclose",
        "clear",
        "close",
        "compare_and_set",
        "count",
        "count_messages",
        "delete",
        "fetch",
        "find",
        "get",
        "has",
        "ids",
        "incr",
        "index_messages",
        "names",
        "refresh",
        "search_messages",
        "set",
        "to_dict",
        "transaction",
        "wait_for_new",
    }
)


def storable_name(cls: type, name: str) -> str:
    """``name`` if memories of ``cls`` can store it: a valid name that is neither reserved (by
    either API) nor one of the class's own; else InvalidNameError / ReservedNameError."""
    check_name(name)
    if name in RESERVED_NAMES or hasattr(cls, name):
        raise ReservedNameError(f"{name!r} is a name of {cls.__name__} itself and cannot be stored")
    return name


def fetch_targets(
    cls: type, ids: Iterable[str | int | uuid.UUID], fields: Sequence[str], prefix: str | None
) -> tuple[list[KeySpace], list[str]]:
    """The objects (each once, in order) and attribute names a ``fetch()`` reads, checked
    before anything is sent (both APIs)."""
    names = [storable_name(cls, name) for name in fields]
    spaces = list(dict.fromkeys(KeySpace(resolve_prefix(prefix), normalize_id(found)) for found in ids))
    return spaces, names


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()
"""``compare_and_set(name, MISSING, value)``: set only if ``name`` is not stored."""


class Transaction:
    """What ``with mem.transaction() as tx:`` gives: ``tx.results`` holds the replies of the
    queued changes, in order, once the block has committed."""

    def __init__(self) -> None:
        """An open transaction with no results yet."""
        self.results: list[Any] = []


def _milliseconds(ttl: timedelta | float | None) -> int | None:
    if ttl is None:
        return None
    seconds = ttl.total_seconds() if isinstance(ttl, timedelta) else ttl
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not seconds > 0:
        raise ValueError(f"ttl must be a positive timedelta or number of seconds, not {ttl!r}")
    return max(1, round(seconds * 1000))


def _either(name: str, value: T | None, alias: str, other: T | None) -> T | None:
    """``value``, else ``other``: two spellings of one setting (the originals' ``redis_*`` and
    ``dragonflydb_*``); giving both, with different values, is a ``ValueError``."""
    if value is not None and other is not None and value != other:
        raise ValueError(f"{name}={value!r} and {alias}={other!r} name the same setting: pass one of them")
    return other if value is None else value


def _first(*values: str | None) -> str | None:
    """The first of ``values`` that is given (not None)."""
    return next((value for value in values if value is not None), None)


def _checked_bounds(bounds: Mapping[str, int]) -> dict[str, int]:
    for name, bound in bounds.items():
        check_name(name)
        if type(bound) is not int or bound < 1:
            raise ValueError(f"the bound of {name!r} must be an int >= 1, not {bound!r}")
    return dict(bounds)


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
        client: redis.Redis | redis.cluster.RedisCluster | None = None,
        cluster: bool | None = None,
        prefix: str | None = None,
        redis_hostname: str | None = None,
        redis_port: int | None = None,
        redis_prefix: str | None = None,
        db_prefix: str | None = None,
        dragonflydb_hostname: str | None = None,
        dragonflydb_port: int | None = None,
        dragonflydb_prefix: str | None = None,
        cache: bool = True,
        ttl: timedelta | float | None = None,
        bounds: Mapping[str, int] | None = None,
        offline: str = "journal",
        wait_replicas: int = 0,
    ) -> None:
        """Open the memory ``memory_id`` (nothing is read until an attribute is).

        The original packages' arguments do what they did there (docs/migrating.md):
        ``redis_hostname`` / ``redis_port`` (``redis-memory``) and ``dragonflydb_hostname`` /
        ``dragonflydb_port`` (``synced_memory.dragonflydb``) name the server, as ``url=``
        would, and override ``$REDIS_URL`` and ``$REDIS_HOST`` / ``$REDIS_PORT`` (where the
        originals let ``$REDIS_HOST`` override them); ``redis_prefix``, ``dragonflydb_prefix``
        and ``db_prefix`` (``synced-memory``'s) are the key prefix, as ``prefix=`` is: the
        first of ``prefix``, ``redis_prefix``, ``dragonflydb_prefix``, ``db_prefix`` given is
        used, else ``$REDIS_PREFIX``, else ``memory:``.

        ``cache=False`` makes every read of a list or dict a round trip instead of serving
        the server-invalidated mirror (see docs/design.md, "Reads"). ``ttl`` (a timedelta or
        seconds) expires every key of the object together, ``ttl`` after the last write this
        process makes through it (sliding). ``bounds={"messages": 50}`` keeps only the last 50
        elements of that list attribute, trimmed by the same script that appends.
        ``wait_replicas=N``: each write waits (``WAIT``, at most 2 s) until N replicas of its
        primary have it, and raises :class:`~redis_memory.errors.ReplicationError` if fewer
        do: an acknowledged write then survives the loss of that primary (docs/cluster.md).
        ``cluster=True`` (default: ``$REDIS_CLUSTER`` is ``1``), or a
        ``client=redis.cluster.RedisCluster(...)``: the server is a Redis Cluster, and each
        object's operations go to the primary holding its slot (docs/cluster.md).
        ``offline="journal"`` (the default): while Redis cannot be reached, writes go to the
        durable offline journal and are replayed when it returns (docs/reliability.md);
        ``offline="raise"``: they raise :class:`~redis_memory.errors.RedisConnectionError`.
        """
        chosen = _first(prefix, redis_prefix, dragonflydb_prefix, db_prefix)
        space = KeySpace(resolve_prefix(chosen), normalize_id(memory_id))
        host = _either("redis_hostname", redis_hostname, "dragonflydb_hostname", dragonflydb_hostname)
        port = _either("redis_port", redis_port, "dragonflydb_port", dragonflydb_port)
        backend = backend_for(url=url, client=client, host=host, port=port, cluster=cluster)
        object.__setattr__(self, "_space", space)
        object.__setattr__(self, "_backend", backend)
        object.__setattr__(self, "_cache", cache)
        validators = schema.element_validators(type(self))
        if offline not in ("journal", "raise"):
            raise ValueError(f"offline must be 'journal' or 'raise', not {offline!r}")
        if type(wait_replicas) is not int or wait_replicas < 0:
            raise ValueError(f"wait_replicas must be an int >= 0, not {wait_replicas!r}")
        settings = ttl is not None or bounds or validators or offline == "raise" or wait_replicas
        if settings or space.hash_key in backend._raise_offline:
            backend.configure(
                space,
                _milliseconds(ttl),
                _checked_bounds(bounds or {}),
                validators,
                offline=offline,
                wait_replicas=wait_replicas,
            )

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Check a subclass's declared attributes (see :mod:`redis_memory.schema`)."""
        super().__init_subclass__(**kwargs)
        try:
            names = schema.declared(cls)
        except NameError:  # an annotation names a class defined later: checked on first use
            return
        for name in names:
            check_name(name)
            if name in RESERVED_NAMES or any(name in vars(base) for base in cls.__mro__):
                raise TypeError(
                    f"{cls.__name__}.{name}: a declared attribute can have no default and no name the class uses itself"
                )

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
        self._backend.assign(self._space, name, schema.validate(type(self), name, value))

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
        storable_name(type(self), name)

    # -- whole-object operations ------------------------------------------------------------------

    def incr(self, name: str, amount: int | float = 1) -> int | float | None:
        """Add ``amount`` to numeric attribute ``name`` atomically and return the new value.

        HINCRBY (HINCRBYFLOAT for floats); one round trip. A missing attribute starts at 0.
        Inside :meth:`transaction` the change is queued and None is returned (the value is in
        the transaction's ``results``).
        """
        self._check_storable_name(name)
        return self._backend.incr(self._space, name, amount)

    def compare_and_set(self, name: str, expected: object, new: object) -> bool:
        """Set scalar attribute ``name`` to ``new`` only if it still holds ``expected``.

        ``expected=MISSING`` means "only if it is not stored". One round trip (a Lua check and
        HSET); returns False, writing nothing, when the attribute holds anything else.
        """
        self._check_storable_name(name)
        missing = expected is MISSING
        return self._backend.compare_and_set(self._space, name, expected, new, missing=missing)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """``with mem.transaction():`` applies every write inside as one step, or none of them.

        Writes are queued and sent at the end of the block as one EVALSHA, where every change
        is checked before any is applied. An exception in the block discards them. Reads in
        the block see the state before it; changes that return a value from Redis
        (``pop``, ``setdefault``...) raise :class:`~redis_memory.errors.TransactionError`.
        """
        transaction = Transaction()
        with self._backend.transaction(self._space) as results:
            transaction.results = results
            yield transaction

    def clear(self) -> None:
        """Delete every attribute, that is every key of this object, atomically (one round trip)."""
        self._backend.clear_all(self._space)

    @classmethod
    def fetch(
        cls,
        ids: Iterable[str | int | uuid.UUID],
        fields: Sequence[str],
        *,
        url: str | None = None,
        client: redis.Redis | None = None,
        prefix: str | None = None,
    ) -> dict[str, dict[str, Any]]:
        """Attributes ``fields`` of many objects at once, as plain data: ``{id: {name: value}}``
        (an attribute an object does not store is left out of its dict; an id not stored gets
        ``{}``). One pipelined round trip (HMGET per object), plus one for the list, set, dict
        and model attributes among them: the fields of a page of ``find()`` results, or of a
        dashboard's conversations, without a round trip per attribute. Reads Redis as it is
        (no mirror). ``InvalidNameError`` for a name that cannot be stored, before anything is
        sent."""
        spaces, names = fetch_targets(cls, ids, fields, prefix)
        if not spaces or not names:
            return {space.object_id: {} for space in spaces}
        rows = backend_for(url=url, client=client).fetch(spaces, names)
        return {space.object_id: row for space, row in zip(spaces, rows, strict=True)}

    def to_dict(self) -> dict[str, Any]:
        """A plain snapshot of every stored attribute, read in one round trip.

        Lists, dicts and sets come back as plain, mutable ``list``/``dict``/``set`` objects;
        typed values and models with their types.
        """
        return self._backend.snapshot(self._space)

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
    """The memory of one conversation, shared by every process that opens the same id.

    Set ``index_messages = True`` on a subclass (or pass ``index_messages=True``) to make
    ``messages`` searchable with :meth:`search_messages`.
    """

    index_messages: ClassVar[bool] = False
    """Opt-in message search for this schema: every change to ``messages`` made through it
    also keeps a searchable copy of each message (see :mod:`redis_memory.search.messages`)."""

    def __init__(
        self,
        conversation_id: str | int | uuid.UUID,
        redis_hostname: str | None = None,
        redis_port: int | None = None,
        redis_prefix: str | None = None,
        *,
        url: str | None = None,
        client: redis.Redis | redis.cluster.RedisCluster | None = None,
        cluster: bool | None = None,
        prefix: str | None = None,
        db_prefix: str | None = None,
        dragonflydb_hostname: str | None = None,
        dragonflydb_port: int | None = None,
        dragonflydb_prefix: str | None = None,
        cache: bool = True,
        ttl: timedelta | float | None = None,
        max_messages: int | None = None,
        bounds: Mapping[str, int] | None = None,
        index_messages: bool | None = None,
        offline: str = "journal",
        wait_replicas: int = 0,
    ) -> None:
        """Open conversation ``conversation_id`` (nothing is read until an attribute is).

        ``max_messages=N`` keeps only the last N elements of ``messages`` (same as
        ``bounds={"messages": N}``). ``index_messages=True`` (default: the class's
        :attr:`index_messages`) makes ``messages`` searchable: the next change to it through
        this object (an append, an assignment or any list operation) copies every message it
        holds into the message index, and from then on every process's changes keep the
        copies in step, in the same Lua call. ``redis_hostname``, ``redis_port`` and
        ``redis_prefix`` can be passed by position after the id, as the original
        ``ConversationMemory(conversation_id, redis_hostname, redis_port, redis_prefix)`` took
        them. See :class:`Memory` for the other arguments.
        """
        if max_messages is not None:
            bounds = {**(bounds or {}), "messages": max_messages}
        super().__init__(
            conversation_id,
            url=url,
            client=client,
            cluster=cluster,
            prefix=prefix,
            redis_hostname=redis_hostname,
            redis_port=redis_port,
            redis_prefix=redis_prefix,
            db_prefix=db_prefix,
            dragonflydb_hostname=dragonflydb_hostname,
            dragonflydb_port=dragonflydb_port,
            dragonflydb_prefix=dragonflydb_prefix,
            cache=cache,
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

    # -- queries (redis_memory.search) -------------------------------------------------------------

    @classmethod
    def find(
        cls,
        *,
        sort_by: str | None = None,
        limit: int | None = 10,
        offset: int = 0,
        url: str | None = None,
        client: redis.Redis | None = None,
        prefix: str | None = None,
        **filters: object,
    ) -> list[Self]:
        """The conversations matching every keyword filter, as memory objects (nothing read).

        ``find(state="active", last_activity__lt=cutoff, current_topic__in=["billing"],
        sort_by="-last_activity", limit=20)``; operators ``__ne __in __startswith __gt __gte __lt
        __lte __contains`` (see :mod:`redis_memory.search.filters`), on the fields the default
        conversation schema indexes. One FT.SEARCH with RediSearch (the index is created on
        first use); without it a SCAN of every object, with a warning. ``limit=None``: all.
        Without ``sort_by`` the order is unspecified.
        """
        from redis_memory.search import api

        return api.find(
            cls, filters, sort_by=sort_by, limit=limit, offset=offset, url=url, client=client, prefix=prefix
        )[1]

    @classmethod
    def find_raw(
        cls,
        query: str,
        *,
        params: dict[str, str] | None = None,
        limit: int = 10,
        offset: int = 0,
        url: str | None = None,
        client: redis.Redis | None = None,
        prefix: str | None = None,
    ) -> list[Self]:
        """The conversations a RediSearch query written by hand finds (dialect 2), on the
        conversation index: ``find_raw("@state:{$s} @total_messages:[10 +inf]", params={"s":
        "active"})``. Pass user values as ``params``, never inside ``query``. Needs RediSearch
        (``ServerError`` without it)."""
        from redis_memory.search import api

        return api.find_raw(cls, query, params, limit=limit, offset=offset, url=url, client=client, prefix=prefix)

    @classmethod
    def count(
        cls,
        *,
        url: str | None = None,
        client: redis.Redis | None = None,
        prefix: str | None = None,
        **filters: object,
    ) -> int:
        """How many conversations match the filters (see :meth:`find`)."""
        from redis_memory.search import api

        return api.find(cls, filters, sort_by=None, limit=0, offset=0, url=url, client=client, prefix=prefix)[0]

    @classmethod
    def ids(cls, *, url: str | None = None, client: redis.Redis | None = None, prefix: str | None = None) -> list[str]:
        """Every stored object's id under the prefix, sorted (SCAN, never KEYS)."""
        from redis_memory.search import api

        return api.ids(url, client, prefix)

    @classmethod
    def cleanup(
        cls,
        older_than: timedelta,
        *,
        field: str = "last_activity",
        dry_run: bool = False,
        url: str | None = None,
        client: redis.Redis | None = None,
        prefix: str | None = None,
    ) -> list[str]:
        """Delete every key of each conversation whose ``field`` (a stored datetime) is older
        than ``older_than``; return their ids (``dry_run=True``: only return them)."""
        from redis_memory.search import api

        return api.cleanup(cls, older_than, field=field, dry_run=dry_run, url=url, client=client, prefix=prefix)

    @classmethod
    def search_messages(
        cls,
        text: str | None = None,
        *,
        limit: int | None = 10,
        offset: int = 0,
        url: str | None = None,
        client: redis.Redis | None = None,
        prefix: str | None = None,
        **filters: object,
    ) -> list[MessageMatch]:
        """The messages of searchable conversations (see :attr:`index_messages`) holding every
        word of ``text``: ``search_messages("refund", role="user")`` gives
        :class:`~redis_memory.search.messages.MessageMatch` objects (``conversation_id``,
        ``attribute``, ``message``), ordered by conversation id, then position.

        Filters as in :meth:`find`, on ``role``, ``content`` (``content__contains``),
        ``conversation`` (an id; ``conversation__in=[...]``) and ``attribute``. Words match
        whole, in any case, unstemmed. One FT.SEARCH and one FT.AGGREGATE with RediSearch;
        without it a SCAN of every copy, with a warning. ``limit=None``: all.
        """
        from redis_memory.search import api

        return api.search_messages(text, filters, limit=limit, offset=offset, url=url, client=client, prefix=prefix)[1]

    @classmethod
    def count_messages(
        cls,
        text: str | None = None,
        *,
        url: str | None = None,
        client: redis.Redis | None = None,
        prefix: str | None = None,
        **filters: object,
    ) -> int:
        """How many messages :meth:`search_messages` would find."""
        from redis_memory.search import api

        return api.search_messages(text, filters, limit=0, offset=0, url=url, client=client, prefix=prefix)[0]

    def __repr__(self) -> str:
        return f"ConversationMemory(conversation_id={self._space.object_id!r})"
