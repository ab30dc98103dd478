"""What every operation does, without doing I/O: the core shared by the sync and async APIs.

Each operation is a generator: it yields a :class:`Script` (EVALSHA of one of the package's
Lua scripts) or a :class:`Command` (one plain Redis command), receives the reply, and
returns its result. A driver runs it: :class:`redis_memory.backend.Backend` on one tracked
connection, :class:`redis_memory.aio.backend.AsyncBackend` on redis-py's asyncio client.
Errors reach the generator already translated to the public ones (``errors.translate``).

The core also holds what both drivers need to know between operations: the mirrors (local
copies of collections kept valid by client tracking; the async driver keeps none), each
object's sliding expiry and list bounds, and the writes queued by open transactions.
"""

from __future__ import annotations

import contextvars
import functools
import hashlib
import itertools
import logging
import math
import os
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, TypeAlias, TypeVar
from urllib.parse import urlsplit

import redis.exceptions

from redis_memory import codec
from redis_memory.documents import QUEUED as QUEUED
from redis_memory.documents import DocumentOps
from redis_memory.errors import (
    ConcurrentModificationError,
    MissingIndexError,
    MissingKeyError,
    RedisConnectionError,
    ServerError,
    TransactionError,
    UnstorableValueError,
    WrongTypeError,
    access_denied,
    translate,
)
from redis_memory.keys import KeySpace, kind_field, parse_kind_field

logger = logging.getLogger(__name__)
T = TypeVar("T")

_STANDALONE = ("get", "snapshot", "push")  # push.lua: the lean hot path of ops/push.lua
_OPS = ("assign", "delete", "push", "list", "set", "doc", "doc_cas", "incr", "cas", "clear")
# Changes whose reply a caller needs at once: they cannot be queued in a transaction.
_NEEDS_REPLY = {"list": {"popright", "popleft", "delete"}, "set": {"pop"}}


class _FullScriptNeeded(Exception):
    """push.lua refused a searchable list (RMFULL), having written nothing: send op:push."""


# The error replies of our scripts: their first word is a code.
SCRIPT_ERRORS: dict[str, Callable[[str], Exception]] = {
    "RMFULL": _FullScriptNeeded,
    "RMKIND": ConcurrentModificationError,
    "RMCAS": ConcurrentModificationError,
    "RMPATH": ConcurrentModificationError,
    "RMNOKEY": MissingKeyError,
    "RMNOINDEX": MissingIndexError,
    "RMTYPE": WrongTypeError,
    "RMSTALE": ConcurrentModificationError,
    "RMVALUE": UnstorableValueError,
}
_WRITE_SCRIPTS = ("push", "batch")  # and every "op:<name>"


def is_write(request: Request) -> bool:
    """Whether ``request`` runs one of the write scripts (which carry an operation id)."""
    return isinstance(request, Script) and (request.name in _WRITE_SCRIPTS or request.name.startswith("op:"))


class Stats:
    """Counters of one backend (see :func:`redis_memory.stats`)."""

    def __init__(self) -> None:
        """All zero."""
        self.counts: dict[str, int] = dict.fromkeys(
            ("operations", "round_trips", "retries", "reconnects", "journaled", "replayed", "conflicts", "errors"), 0
        )
        self.latency: dict[str, list[float]] = {}  # op -> [count, total seconds, max seconds]

    def timed(self, name: str, seconds: float) -> None:
        """Record one operation's latency."""
        entry = self.latency.setdefault(name, [0, 0.0, 0.0])
        entry[0] += 1
        entry[1] += seconds
        entry[2] = max(entry[2], seconds)

    def add(self, other: Stats) -> Stats:
        """Add ``other``'s counts and latencies to these ones (two backends of one server
        reported as one); returns ``self``."""
        for name, count in list(other.counts.items()):
            self.counts[name] = self.counts.get(name, 0) + count
        for name, (times, total, most) in list(other.latency.items()):
            entry = self.latency.setdefault(name, [0, 0.0, 0.0])
            entry[0] += times
            entry[1] += total
            entry[2] = max(entry[2], most)
        return self

    def snapshot(self) -> dict[str, Any]:
        """The counters as plain data; latencies as count, mean and max in milliseconds."""
        return {
            **self.counts,
            "latency_ms": {
                name: {"count": int(count), "mean": 1000 * total / count if count else 0.0, "max": 1000 * most}
                for name, (count, total, most) in sorted(self.latency.items())
            },
        }


def redact_url(url: str) -> str:
    """``url`` as it may be shown (logs, warnings, errors, ``stats()`` keys, the journal): its
    password, in the user info or a ``password=`` parameter, replaced by ``***``."""
    if "@" not in url and "password" not in url.lower():
        return url  # nothing to hide: as given
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<a URL that does not parse>"
    netloc = parts.netloc
    if "@" in netloc:
        user_info, _, host = netloc.rpartition("@")
        user, colon, _ = user_info.partition(":")
        netloc = f"{user}{':***' if colon else ''}@{host}"
    query = "&".join(
        f"{item.partition('=')[0]}=***" if item.partition("=")[0].lower() == "password" else item
        for item in parts.query.split("&")
    )
    return parts._replace(netloc=netloc, query=query).geturl()


def public_error(exc: Exception) -> Exception:
    """The public error for a redis-py error (our scripts' error codes included)."""
    if isinstance(exc, redis.exceptions.ResponseError):
        code, _, message = str(exc).partition(" ")
        factory = SCRIPT_ERRORS.get(code)
        if factory is not None:
            return factory(message)
    if isinstance(exc, redis.exceptions.RedisError):
        return translate(exc)
    return exc


@dataclass(frozen=True, slots=True)
class Script:
    """A request: EVALSHA of script ``name`` (see :func:`script_table`)."""

    name: str
    keys: Sequence[str]
    args: Sequence[str]


@dataclass(frozen=True, slots=True)
class Command:
    """A request: one plain Redis command."""

    args: tuple[Any, ...]


Request: TypeAlias = Script | Command
Op: TypeAlias = Generator[Request, Any, T]


# A lost connection (reset, closed, timed out, refused): both drivers send the request again.
LOST = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError)
_NOT_RESENT = {"FT.CURSOR"}  # commands whose effect a resend would repeat (writes carry op ids)


def default_retry_for() -> float:
    """How many seconds a driver keeps resending a request after a lost connection:
    ``$REDIS_MEMORY_RETRY_FOR``, else 3 (read when a backend is made)."""
    return float(os.environ.get("REDIS_MEMORY_RETRY_FOR", "3"))


def resendable(request: Request, exc: BaseException) -> bool:
    """Whether ``request``, met by ``exc`` (one of :data:`LOST`), may be sent again: never
    after a refusal (credentials, TLS certificate: not an outage), nor FT.CURSOR (a resend
    would skip a page). A write may: it carries an operation id, so it is applied once."""
    if access_denied(exc):
        return False
    return not (isinstance(request, Command) and str(request.args[0]).upper() in _NOT_RESENT)


def resend_delays() -> Iterator[float]:
    """The waits between resends: 5 ms, doubling up to 250 ms."""
    delay = 0.005
    while True:
        yield delay
        delay = min(delay * 2, 0.25)


def advance(op: Op[Any], reply: Any, error: Exception | None) -> tuple[bool, Any]:
    """Step a running operation with the last reply (or error): ``(False, next request)``,
    or ``(True, result)`` once it has finished. The drivers' loops are built on it."""
    try:
        return False, (op.send(reply) if error is None else op.throw(error))
    except StopIteration as stop:
        return True, stop.value


# Makes the object a list or set mirror holds and users receive: (core, space, name, items).
ProxyFactory = Callable[["Core", KeySpace, str, Any], Any]


@dataclass(eq=False, slots=True)
class Mirror:
    """A local copy of one collection key, valid while the key stays in the core's table.

    ``value`` is, for a list or a set, the object handed to users (a ``RedisList`` or
    ``RedisSet`` made by the proxy factories), so reading it copies nothing; for a dict or a
    model, the plain document. ``raw`` is the stored document text (documents without
    RedisJSON, for compare-and-set). ``deadline`` is when the key may expire.
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
def script_table() -> dict[str, tuple[str, str]]:
    """``name -> (sha1, source)`` of the scripts, composed from ``lua/`` on first use.

    Each write op lives once, in ``lua/ops/<op>.lua``; ``op:<op>`` is ``lib.lua`` + that op +
    ``single.lua``, and ``batch`` is ``lib.lua`` + every op + ``batch.lua`` (transactions).
    """
    folder = resources.files("redis_memory").joinpath("lua")

    def read(path: str) -> str:
        return folder.joinpath(path).read_text("utf-8")

    sources = {name: read(f"{name}.lua") for name in _STANDALONE}
    lib = read("lib.lua")
    ops = {name: read(f"ops/{name}.lua") for name in _OPS}
    for name, body in ops.items():
        sources[f"op:{name}"] = "\n".join((lib, body, read("single.lua")))
    sources["batch"] = "\n".join((lib, *ops.values(), read("batch.lua")))
    return {name: (hashlib.sha1(source.encode()).hexdigest(), source) for name, source in sources.items()}


def text(value: bytes | str) -> str:
    """A reply as text."""
    return value.decode("utf-8") if isinstance(value, bytes) else value


@dataclass(eq=False)
class _Transaction:
    open: bool = True  # a task created inside the block keeps seeing it after the block ends
    queue: list[tuple[str, str, list[str]]] = field(default_factory=list)
    documents: dict[str, tuple[str, str, Any]] = field(default_factory=dict)  # key -> (name, sha1, doc)


# Open transactions of this thread or asyncio task: (id of the core, hash key) -> transaction.
_TRANSACTIONS: contextvars.ContextVar[dict[tuple[int, str], _Transaction] | None] = contextvars.ContextVar(
    "redis_memory_transactions", default=None
)


class Core(DocumentOps):
    """The operations (generators) and the state they share; see the module docstring."""

    mirroring = True

    def __init__(self, factories: dict[str, ProxyFactory] | None = None, max_mirrors: int = 1024) -> None:
        """Empty state. ``factories[kind](core, space, name, items)`` makes the object a list
        or set mirror holds (and users receive); by default the plain ``list`` or ``set``."""
        self._factories = factories or {}
        self._max_mirrors = max_mirrors
        self._mirrors: OrderedDict[str, Mirror] = OrderedDict()
        self._json_module: bool | None = None
        self._ttls: dict[str, int] = {}
        self._bounds: dict[tuple[str, str], int] = {}
        self._validators: dict[tuple[str, str], Callable[[Any], Any]] = {}
        self._search: dict[tuple[str, str], str] = {}
        self.journal: Any = None  # a redis_memory.journal.Journal, set by a driver that journals
        self.server_id = ""
        self.backlog = 0  # journaled writes of this process not yet replayed
        self._raise_offline: set[str] = set()
        self._known: OrderedDict[tuple[str, str], tuple[str, Any] | None] = OrderedDict()
        self._op_counter = itertools.count()
        self._op_prefix = ("", -1)
        self.stats = Stats()
        self._full_push: set[str] = set()  # searchable lists met by push.lua: op:push from now on

    # -- configuration --------------------------------------------------------------------------

    def configure(
        self,
        space: KeySpace,
        ttl_ms: int | None = None,
        bounds: dict[str, int] | None = None,
        validators: dict[str, Callable[[Any], Any]] | None = None,
        search: dict[str, Sequence[str]] | None = None,
        offline: str | None = None,
    ) -> None:
        """Set the sliding expiry of an object, the size bounds of its lists, the validators
        of their elements (declared ``list[X]`` attributes) and the lists to make searchable
        (``search={"messages": ["role", "content"]}``: the element fields to index); no I/O.

        Every later write to the object, from this process, refreshes the expiry of all its
        keys and trims a bounded list in the same script.
        """
        for name, validator in (validators or {}).items():
            self._validators[(space.hash_key, name)] = validator
        if ttl_ms is not None and ttl_ms > 0:
            self._ttls[space.hash_key] = ttl_ms
        elif ttl_ms is not None:
            self._ttls.pop(space.hash_key, None)
        for name, bound in (bounds or {}).items():
            self._bounds[(space.hash_key, name)] = bound
        for name, fields in (search or {}).items():
            self._search[(space.hash_key, name)] = ",".join(fields)
        if offline == "raise":
            self._raise_offline.add(space.hash_key)
        elif offline == "journal":
            self._raise_offline.discard(space.hash_key)
        elif offline is not None:
            raise ValueError(f"offline must be 'journal' or 'raise', not {offline!r}")

    def search_fields(self, space: KeySpace, name: str) -> str:
        """The element fields this process asks list ``name`` to index, comma-separated
        (``""``: none asked; the list may still be searchable, as recorded in Redis)."""
        return self._search.get((space.hash_key, name), "")

    def validate_element(self, space: KeySpace, name: str, value: Any) -> Any:
        """``value`` checked by the element validator of list ``name``, if one is declared."""
        validator = self._validators.get((space.hash_key, name))
        return value if validator is None else validator(value)

    def bound(self, space: KeySpace, name: str) -> int:
        """The size bound of list attribute ``name`` (0: none)."""
        return self._bounds.get((space.hash_key, name), 0)

    def g_json_flag(self, space: KeySpace) -> Op[str]:
        """``"1"`` when the server has RedisJSON loaded (asked once, then remembered). The probe,
        ``JSON.TYPE`` of the object's own hash, stays inside its namespace (an ACL user limited
        to it may send it): only an unknown command means no RedisJSON."""
        if self._json_module is None:
            try:
                yield Command(("JSON.TYPE", space.hash_key))
                self._json_module = True
            except (ServerError, WrongTypeError) as exc:  # WRONGTYPE: RedisJSON is there
                self._json_module = "unknown command" not in str(exc).lower()
        return "1" if self._json_module else "0"

    # -- mirrors ----------------------------------------------------------------------------------

    def _mirror(self, key: str) -> Mirror | None:
        """The valid mirror of ``key``, if any (the driver has read pending invalidations)."""
        mirror = self._mirrors.get(key)
        if mirror is None:
            return None
        if mirror.deadline <= time.monotonic():  # Redis hides an expired key before it deletes it
            del self._mirrors[key]
            return None
        if not mirror.intact():
            logger.warning("the list or set at %s was changed without writing to Redis; reading it again", key)
            del self._mirrors[key]
            return None
        self._mirrors.move_to_end(key)
        return mirror

    def _remember(self, key: str, mirror: Mirror) -> Mirror:
        mirror.seal()
        if self.mirroring:
            self._mirrors[key] = mirror
            self._mirrors.move_to_end(key)
            while len(self._mirrors) > self._max_mirrors:
                self._mirrors.popitem(last=False)
        return mirror

    def forget(self, key: str) -> None:
        """Drop the mirror of ``key`` (after a failed compare-and-set, for instance)."""
        self._mirrors.pop(key, None)

    def _proxy(self, kind: str, space: KeySpace, name: str, items: Any) -> Any:
        factory = self._factories.get(kind)
        return items if factory is None else factory(self, space, name, items)

    def _slide(self, space: KeySpace, deadline: float) -> None:
        """Our write refreshed the expiry of every key of the object: so do their mirrors."""
        prefix = space.hash_key + ":"
        for key, mirror in self._mirrors.items():
            if key.startswith(prefix):
                mirror.deadline = deadline

    # -- writes and transactions ------------------------------------------------------------------

    def _transaction(self, space: KeySpace) -> _Transaction | None:
        open_ones = _TRANSACTIONS.get()
        found = None if open_ones is None else open_ones.get((id(self), space.hash_key))
        return found if found is not None and found.open else None

    def _op(self, name: str, space: KeySpace, key: str, args: Sequence[str]) -> Op[Any]:
        """Run write op ``lua/ops/<name>.lua`` on ``key`` (one EVALSHA), or queue it when a
        transaction is open on the object (then return :data:`QUEUED`). While Redis cannot be
        reached the write is journaled instead (see :meth:`_write`), also returning QUEUED."""
        transaction = self._transaction(space)
        needs_reply = name in _NEEDS_REPLY and args[1] in _NEEDS_REPLY[name]
        if transaction is not None:
            if needs_reply:
                raise TransactionError("this change returns a value from Redis: make it outside the transaction")
            transaction.queue.append((name, key, list(args)))
            return QUEUED
        ttl = self._ttls.get(space.hash_key, 0)
        sent = time.monotonic()
        # clear keeps no operation id (it deletes the object's log of them): resending it is harmless
        op_id = "" if name == "clear" else self.next_op_id()
        lean = name == "push" and not ttl and not args[2] and key not in self._full_push
        keys, full_args = [space.hash_key, key], [str(ttl), op_id, "", *args]
        try:
            reply = yield from self._write(
                space, Script("push" if lean else f"op:{name}", keys, full_args), needs_reply
            )
        except _FullScriptNeeded:
            if len(self._full_push) >= 65536:
                self._full_push.clear()
            self._full_push.add(key)
            reply = yield from self._write(space, Script(f"op:{name}", keys, full_args), needs_reply)
        if reply is QUEUED:
            self._known_after(space, name, args)
        elif ttl:
            self._slide(space, sent + ttl / 1000)
        return reply

    def next_op_id(self) -> str:
        """A new operation id, unique across processes (a random token per process + a counter)."""
        token, pid = self._op_prefix
        if pid != os.getpid():
            token, pid = secrets.token_hex(6), os.getpid()
            self._op_prefix = (token, pid)
        return f"{token}:{next(self._op_counter)}"

    def _write(self, space: KeySpace, request: Script, needs_reply: bool = False) -> Op[Any]:
        """Send a write script, or journal it when Redis cannot be reached (and the object
        allows it): while this process has journaled writes for the server, every later write
        is journaled behind them, so they reach Redis in order. Returns :data:`QUEUED` when
        journaled."""
        journaling = self.journal is not None and space.hash_key not in self._raise_offline and not needs_reply
        if journaling and self.backlog:
            return self._journal_write(request)
        try:
            reply = yield request
        except RedisConnectionError:
            if not journaling:
                raise
            return self._journal_write(request)
        return reply

    def _journal_write(self, request: Script) -> Any:
        self.journal.append(self.server_id, request.name, list(request.keys), list(request.args))
        self.backlog += 1
        self.stats.counts["journaled"] += 1
        logger.info("Redis at %s is unreachable: write journaled (%d waiting)", self.server_id, self.backlog)
        self.journal_started()
        return QUEUED

    def journal_started(self) -> None:
        """Called after a write was journaled: the driver starts replaying when it can."""

    # -- last known values (served while Redis cannot be reached) -----------------------------------

    def _know(self, space: KeySpace, name: str, found: tuple[str, Any] | None) -> None:
        self._known[(space.hash_key, name)] = found
        self._known.move_to_end((space.hash_key, name))
        while len(self._known) > 4 * self._max_mirrors:
            self._known.popitem(last=False)

    def known(self, space: KeySpace, name: str) -> tuple[bool, tuple[str, Any] | None]:
        """``(True, value as g_read returns it)`` when this process knows attribute ``name``'s
        last value (read, or written while offline), ``(False, None)`` otherwise."""
        entry = (space.hash_key, name)
        return (True, self._known[entry]) if entry in self._known else (False, None)

    def _known_after(self, space: KeySpace, op: str, args: Sequence[str]) -> None:
        """A journaled write changes the last known value the way Redis will on replay."""
        name = args[0] if op in ("assign", "delete", "incr", "cas") else (parse_kind_field(args[0]) or "")
        entry = (space.hash_key, name)
        found = self._known.get(entry)
        if op == "delete":
            self._know(space, name, None)
        elif op == "assign" and args[3] == codec.HASH:
            self._know(space, name, (args[2], codec.decode_scalar(args[2], args[7])))
        elif op == "assign" and args[3] == codec.LIST:
            items = self._proxy(args[2], space, name, codec.loads_elements(raw.encode() for raw in args[7:]))
            self._know(space, name, (args[2], Mirror(args[2], items).seal()))
        elif op == "assign" and args[3] == codec.SET:
            members = self._proxy(args[2], space, name, {codec.loads(raw) for raw in args[7:]})
            self._know(space, name, (args[2], Mirror(args[2], members).seal()))
        elif op == "assign":
            self._know(space, name, (args[2], Mirror(args[2], codec.loads(args[7]))))
        elif op == "incr" and found is not None and codec.structure_of(found[0]) == codec.HASH:
            amount = float(args[2]) if args[3] == "float" or found[0] == "float" else int(args[2])
            self._know(space, name, ("float" if isinstance(amount, float) else found[0], found[1] + amount))
        elif op == "incr" and entry in self._known and found is None:
            self._know(space, name, (args[3], float(args[2]) if args[3] == "float" else int(args[2])))
        elif op == "push" and found is not None and isinstance(found[1], Mirror):
            list.extend(found[1].value, codec.loads_elements(raw.encode() for raw in args[3:]))
            found[1].seal()
        else:  # not worked out offline: unknown until Redis answers
            self._known.pop(entry, None)
            self._known.pop((space.hash_key, args[0]), None)

    def begin(self, space: KeySpace) -> None:
        """Open a transaction on ``space`` in the current thread or task (see :meth:`g_commit`).

        The table of open transactions is replaced, never changed in place: asyncio tasks
        share their parent's table by reference, and must not see each other's transactions.
        """
        open_ones = dict(_TRANSACTIONS.get() or {})
        found = open_ones.get((id(self), space.hash_key))
        if found is not None and found.open:
            raise TransactionError("a transaction is already open on this memory here")
        open_ones[(id(self), space.hash_key)] = _Transaction()
        _TRANSACTIONS.set(open_ones)

    def end(self, space: KeySpace) -> list[tuple[str, str, list[str]]]:
        """Close the transaction on ``space``; return its queued ops (documents changed without
        RedisJSON become one compare-and-set each)."""
        open_ones = dict(_TRANSACTIONS.get() or {})
        transaction = open_ones.pop((id(self), space.hash_key))
        transaction.open = False
        _TRANSACTIONS.set(open_ones)
        queue = transaction.queue
        for key, (name, expected, document) in transaction.documents.items():
            queue.append(("doc_cas", key, [kind_field(name), expected, codec.dumps(document)]))
        return queue

    def g_commit(self, space: KeySpace, queue: list[tuple[str, str, list[str]]]) -> Op[list[Any]]:
        """Send the queued ops as one batch (``lua/batch.lua``): all checked, then all applied."""
        if not queue:
            return []
        keys: list[str] = []
        ttl = self._ttls.get(space.hash_key, 0)
        op_id = "" if any(name == "clear" for name, _, _ in queue) else self.next_op_id()
        args: list[str] = [str(ttl), op_id, "", str(len(queue))]
        for name, key, op_args in queue:
            if key not in keys:
                keys.append(key)
            args += [name, str(keys.index(key) + 2), str(len(op_args)), *op_args]
        sent = time.monotonic()
        try:
            reply = yield from self._write(space, Script("batch", [space.hash_key, *keys], args))
        except BaseException:
            for key in keys:
                self._mirrors.pop(key, None)
            raise
        if reply is QUEUED:
            for key in keys:
                self._mirrors.pop(key, None)
            for name, _, op_args in queue:
                self._known_after(space, name, op_args)
            return [None] * len(queue)
        for (name, key, op_args), result in zip(queue, reply, strict=True):
            if name == "push":  # the mirror takes the appends, as after a single push
                elements = codec.loads_elements(raw.encode() for raw in op_args[3:])
                self._pushed(key, elements, int(op_args[1]), result)
            elif name not in ("incr", "cas"):  # those change the hash only
                self._mirrors.pop(key, None)
        if ttl:
            self._slide(space, sent + ttl / 1000)
        return list(reply)

    # -- attributes ---------------------------------------------------------------------------------

    def g_read(self, space: KeySpace, name: str, cached: bool = True) -> Op[tuple[str, Any] | None]:
        """Read one attribute: ``(kind, scalar)`` or ``(kind, Mirror)``; None when not stored.

        A mirrored collection costs no round trip when ``cached``; a scalar one HMGET; a
        collection not mirrored one HMGET then one EVALSHA (HGET + LRANGE, SMEMBERS, JSON.GET
        or GET; O(size of the value)). The answer is kept as the last known value, which is
        served while Redis cannot be reached.
        """
        found = yield from self._g_read(space, name, cached)
        self._know(space, name, found)
        return found

    def _g_read(self, space: KeySpace, name: str, cached: bool) -> Op[tuple[str, Any] | None]:
        key = space.collection_key(name)
        mirror = self._mirror(key) if cached else None
        if mirror is not None:
            return mirror.kind, mirror
        value, kind = yield Command(("HMGET", space.hash_key, name, kind_field(name)))
        if kind is None:
            return None
        kind = text(kind)
        if codec.structure_of(kind) == codec.HASH:
            return kind, codec.decode_scalar(kind, text(value) if value is not None else "")
        json_flag = yield from self.g_json_flag(space)
        sent = time.monotonic()
        reply = yield Script("get", [space.hash_key, key], [name, kind_field(name), json_flag])
        if not reply:
            return None
        kind, value, form, pttl = text(reply[0]), reply[1], text(reply[2]), int(reply[3])
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
            return kind, self._remember(key, Mirror(kind, document, raw=None if as_json else value, deadline=deadline))
        return kind, codec.decode_scalar(kind, text(value) if value is not None else "")

    def g_assign(self, space: KeySpace, name: str, value: object) -> Op[None]:
        """Store ``value`` as attribute ``name``, replacing any old value of any kind.

        One EVALSHA: DEL + HSET for a scalar, + RPUSH for a list, + JSON.SET (or SET) for a
        dict or model, + SADD for a set; O(size of the value). The value is checked and
        encoded before anything is sent.
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
            mirror = Mirror(kind, self._proxy(kind, space, name, {codec.loads(member) for member in payload}))
        elif structure == codec.JSON_DOC:
            document = value if isinstance(value, dict) else codec.model_document(value)  # type: ignore[arg-type]
            document_text = codec.dumps(document, addressable=isinstance(value, dict))
            payload = [document_text]
            mirror = Mirror(kind, codec.loads(document_text), raw=document_text.encode())
        else:
            payload = [codec.encode_scalar(value)[1]]
        json_flag = (yield from self.g_json_flag(space)) if structure == codec.JSON_DOC else "0"
        if json_flag == "1":  # RedisJSON parses it: floats written so that it reads them exactly
            payload = [codec.document_dumps(document)]
        self._mirrors.pop(key, None)
        fields = self.search_fields(space, name) if structure == codec.LIST else ""
        args = [name, kind_field(name), kind, structure, json_flag, str(bound), fields, *payload]
        sent = time.monotonic()
        if (yield from self._op("assign", space, key, args)) is QUEUED or mirror is None:
            return
        if json_flag == "1" or structure != codec.JSON_DOC:
            mirror.raw = None
        ttl = self._ttls.get(space.hash_key, 0)
        if ttl:
            mirror.deadline = sent + ttl / 1000
        self._remember(key, mirror)

    def g_delete(self, space: KeySpace, name: str) -> Op[bool]:
        """Delete attribute ``name`` of any kind; False when it was not stored. One EVALSHA.

        In a transaction the deletion is queued and True is returned.
        """
        key = space.collection_key(name)
        self._mirrors.pop(key, None)
        reply = yield from self._op("delete", space, key, [name, kind_field(name)])
        return reply is QUEUED or bool(reply)

    def g_names(self, space: KeySpace) -> Op[list[str]]:
        """The names of every stored attribute. HKEYS; one round trip, O(number of fields)."""
        fields = yield Command(("HKEYS", space.hash_key))
        names = (parse_kind_field(text(field)) for field in fields)
        return sorted(name for name in names if name is not None)

    def g_incr(self, space: KeySpace, name: str, amount: int | float) -> Op[int | float | None]:
        """Add ``amount`` to a numeric attribute atomically (HINCRBY / HINCRBYFLOAT; a missing
        attribute starts at 0). One EVALSHA. Returns the new value (None when queued)."""
        if type(amount) not in (int, float) or (type(amount) is float and not math.isfinite(amount)):
            raise UnstorableValueError(f"incr needs an int or a finite float, not {amount!r}")
        number_kind = "float" if type(amount) is float else "int"
        args = [name, kind_field(name), repr(amount), number_kind]
        reply = yield from self._op("incr", space, space.collection_key(name), args)
        if reply is QUEUED:
            return None
        value = text(reply)
        return float(value) if ("." in value or "e" in value or number_kind == "float") else int(value)

    def g_compare_and_set(
        self, space: KeySpace, name: str, expected: object, new: object, *, missing: bool
    ) -> Op[bool]:
        """Store scalar ``new`` only if attribute ``name`` still holds scalar ``expected`` (or is
        not stored, when ``missing``). One EVALSHA; False when it held something else."""
        expected_kind, expected_text = ("", "") if missing else codec.encode_scalar(expected)
        new_kind, new_text = codec.encode_scalar(new)
        args = [name, kind_field(name), expected_kind, expected_text, new_kind, new_text]
        key = space.collection_key(name)
        try:
            yield from self._op("cas", space, key, args)
        except ConcurrentModificationError:
            return False
        self.forget(key)
        return True

    def g_clear(self, space: KeySpace) -> Op[int]:
        """Delete every key of the object (its collections, then its hash) atomically; one
        EVALSHA, O(number of attributes). Returns the number of keys deleted (0 when queued)."""
        for key in [key for key in self._mirrors if key.startswith(space.hash_key + ":")]:
            del self._mirrors[key]
        reply = yield from self._op("clear", space, space.hash_key, [])
        return 0 if reply is QUEUED else int(reply)

    def g_snapshot(self, space: KeySpace) -> Op[dict[str, Any]]:
        """Every attribute as plain data, read in one round trip (``snapshot.lua``)."""
        json_flag = yield from self.g_json_flag(space)
        reply = yield Script("snapshot", [space.hash_key], [json_flag])
        fields = reply[0]
        flat = dict(zip(fields[::2], fields[1::2], strict=True)) if isinstance(fields, list) else fields
        flat = {text(name): value for name, value in flat.items()}
        collections = {text(item[0]): item[1:] for item in reply[1:]}
        result: dict[str, Any] = {}
        for field_name, kind_raw in flat.items():
            name = parse_kind_field(field_name)
            if name is None:
                continue
            kind = text(kind_raw)
            structure = codec.structure_of(kind)
            if structure == codec.HASH:
                value = flat.get(name)
                result[name] = codec.decode_scalar(kind, text(value) if value is not None else "")
            elif structure == codec.LIST:
                result[name] = [codec.loads(item) for item in collections.get(name, [[]])[0] or []]
            elif structure == codec.SET:
                result[name] = {codec.loads(item) for item in collections.get(name, [[]])[0] or []}
            else:
                raw, form = collections[name]
                document = codec.loads(raw)[0] if text(form) == "json" else codec.loads(raw)
                result[name] = codec.read_model(kind, document) if kind != codec.DICT else document
        return result

    # -- lists and sets -------------------------------------------------------------------------------

    def g_push(self, space: KeySpace, name: str, raws: list[str], elements: list[Any]) -> Op[Mirror | None]:
        """Append encoded elements (and their read-only copies, for the mirror). One EVALSHA of
        ``push.lua``: HGET (kind check) + RPUSH (+ LTRIM when bounded) + LLEN; O(k). Returns
        the valid mirror, if any (:data:`QUEUED` in a transaction)."""
        key = space.collection_key(name)
        bound = self.bound(space, name)
        try:
            fields = self.search_fields(space, name)
            length = yield from self._op("push", space, key, [kind_field(name), str(bound), fields, *raws])
        except ConcurrentModificationError:
            self.forget(key)
            raise
        if length is QUEUED:
            return QUEUED  # type: ignore[no-any-return]
        return self._pushed(key, elements, bound, length)

    def _pushed(self, key: str, elements: list[Any], bound: int, length: int) -> Mirror | None:
        """Apply appends that Redis acknowledged (new length ``length``) to the key's mirror;
        drop the mirror instead if the lengths disagree. Returns the mirror if still valid."""
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

    def g_list_op(
        self, space: KeySpace, name: str, op: str, args: Sequence[str], update: Callable[[list[Any], list[Any]], None]
    ) -> Op[tuple[Any, Mirror | None]]:
        """Run one ``ops/list.lua`` change; one EVALSHA.

        When the list's mirror is still valid after the reply (no other writer touched the key
        since it was read: their invalidations arrive before our reply), ``update(items, reply)``
        applies the same change to it. Returns the reply and the mirror (None if not valid).
        """
        key = space.collection_key(name)
        try:
            fields = self.search_fields(space, name)
            reply = yield from self._op(
                "list", space, key, [kind_field(name), op, str(self.bound(space, name)), fields, *args]
            )
        except ConcurrentModificationError:
            self.forget(key)
            raise
        if reply is QUEUED:
            return reply, None
        return reply, self._changed(key, lambda items: update(items, reply), int(reply[0]))

    def _changed(self, key: str, change: Callable[[Any], None], size: int) -> Mirror | None:
        """Apply a change Redis acknowledged to the key's valid mirror, if any; ``size`` is the
        collection's size Redis reported after it. A mirror that disagrees is dropped, never
        trusted. Returns the mirror if still valid."""
        mirror = self._mirrors.get(key)
        if mirror is None:
            return None
        if mirror.intact():
            change(mirror.value)
            mirror.seal()
            if len(mirror.value) == size:
                return mirror
        del self._mirrors[key]
        return None

    def g_set_op(self, space: KeySpace, name: str, op: str, members: Sequence[str]) -> Op[tuple[Any, Mirror | None]]:
        """Run one ``ops/set.lua`` change (SADD / SREM / SPOP / DEL, then SCARD); one EVALSHA.

        The valid mirror, if any, gets the same change. Returns the reply and that mirror.
        """
        key = space.collection_key(name)
        try:
            reply = yield from self._op("set", space, key, [kind_field(name), op, *members])
        except ConcurrentModificationError:
            self.forget(key)
            raise
        if reply is QUEUED:
            return reply, None

        def change(items: set[Any]) -> None:
            if op == "add":
                set.update(items, (codec.loads(member) for member in members))
            elif op in ("remove", "discard"):
                set.difference_update(items, (codec.loads(member) for member in members))
            elif op == "pop":
                set.discard(items, codec.loads(reply[1]))
            else:
                set.clear(items)

        # a size that disagrees can also mean 1 and True: distinct in Redis, equal here
        return reply, self._changed(key, change, int(reply[0]))
