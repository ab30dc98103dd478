"""The operations on one memory object's attributes, and the state they share between calls.

A part of the core (:mod:`redis_memory.core`): configuration (expiry, bounds, validators,
searchable lists), the mirrors, write dispatch (queued in a transaction, journaled offline,
or sent with an operation id), and reads and writes of whole attributes. Lists and sets
(:mod:`~redis_memory.core.containers`), documents (:mod:`~redis_memory.core.documents`) and
the offline part (:mod:`~redis_memory.core.offline`) are mixed in.
"""

from __future__ import annotations

import logging
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

from redis_memory import codec
from redis_memory.core import transactions
from redis_memory.core.containers import CollectionOps
from redis_memory.core.documents import DocumentOps
from redis_memory.core.mirror import Mirror, MirrorTable, ProxyFactory
from redis_memory.core.offline import OfflineWrites
from redis_memory.core.replies import FullScriptNeeded, public_error
from redis_memory.core.requests import QUEUED, Command, Op, Pipeline, Script, text
from redis_memory.core.transactions import OpenTransaction, Queue
from redis_memory.core.writers import Writer, Writers
from redis_memory.counters import Stats
from redis_memory.errors import (
    ConcurrentModificationError,
    RedisConnectionError,
    ReplicationError,
    ServerError,
    TransactionError,
    UnstorableValueError,
    WrongTypeError,
)
from redis_memory.jsontext import check_int64
from redis_memory.keys import KeySpace, kind_field, parse_kind_field

logger = logging.getLogger(__name__)

REPLICA_WAIT_MS = 2000  # how long a write with wait_replicas waits for its replicas (WAIT)

# Changes whose reply a caller needs at once: they cannot be queued in a transaction.
_NEEDS_REPLY = {"list": {"popright", "popleft", "delete"}, "set": {"pop"}}


class Core(CollectionOps, DocumentOps, OfflineWrites):
    """The operations (generators) and the state they share; see the module docstring."""

    mirroring = True

    def __init__(self, factories: dict[str, ProxyFactory] | None = None, max_mirrors: int = 1024) -> None:
        """Empty state. ``factories[kind](core, space, name, items)`` makes the object a list
        or set mirror holds (and users receive); by default the plain ``list`` or ``set``."""
        self._factories = factories or {}
        self._max_mirrors = max_mirrors
        self._mirrors = MirrorTable(max_mirrors)
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
        self.writers = Writers()
        # Whose transactions this core's writes join: itself, or the cluster router that owns it
        # (so a transaction opened on the router is seen by the primary that runs its writes).
        self.transaction_owner: object = self
        self._wait_replicas: dict[str, int] = {}  # hash key -> replicas that must confirm each write
        self.stats = Stats()
        self._full_push: set[str] = set()  # searchable lists met by push.lua: op:push from now on
        # The prefixes whose layout record was checked (core/layout.py): shared by a cluster's
        # primaries, whose router checks it (``layout_by_router``), since the record lives in one slot.
        self.layouts: set[str] = set()
        self.layout_by_router = False

    # -- configuration --------------------------------------------------------------------------

    def configure(
        self,
        space: KeySpace,
        ttl_ms: int | None = None,
        bounds: dict[str, int] | None = None,
        validators: dict[str, Callable[[Any], Any]] | None = None,
        search: dict[str, Sequence[str]] | None = None,
        offline: str | None = None,
        wait_replicas: int | None = None,
    ) -> None:
        """Set the sliding expiry of an object, the size bounds of its lists, the validators
        of their elements (declared ``list[X]`` attributes), the lists to make searchable
        (``search={"messages": ["role", "content"]}``: the element fields to index) and how
        many replicas must confirm each write (``wait_replicas``, see :meth:`_replicated`);
        no I/O.

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
        if wait_replicas is not None:
            if type(wait_replicas) is not int or wait_replicas < 0:
                raise ValueError(f"wait_replicas must be an int >= 0, not {wait_replicas!r}")
            if wait_replicas:
                self._wait_replicas[space.hash_key] = wait_replicas
            else:
                self._wait_replicas.pop(space.hash_key, None)
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
        if mirror.kind in ("list", "set") and not len(mirror.value):
            # An empty list or set has no key in Redis, so no change to it (another process
            # deleting or replacing the attribute) is ever invalidated: read it again.
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

    def forget_all(self) -> None:
        """Drop every mirror and every last known value (a forked child starts with none)."""
        self._mirrors.forget_all()
        self._known.clear()

    def forget_mirrors(self) -> None:
        """Drop every mirror (the next read of each collection goes to Redis)."""
        self._mirrors.clear()

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
        writer = None if name == "clear" else self._take_writer(space, needs_reply)
        op_id = "" if writer is None else writer.next_id()
        lean = name == "push" and not ttl and not args[2] and key not in self._full_push
        keys, full_args = [space.hash_key, key], [str(ttl), op_id, "", *args]
        reply: Any = None
        try:
            try:
                reply = yield from self._write(
                    space, Script("push" if lean else f"op:{name}", keys, full_args), needs_reply
                )
            except FullScriptNeeded:
                if len(self._full_push) >= 65536:
                    self._full_push.clear()
                self._full_push.add(key)
                reply = yield from self._write(space, Script(f"op:{name}", keys, full_args), needs_reply)
        except RedisConnectionError:
            if writer is not None and self.writers.keep_for_resend(writer):
                writer = None  # on a cluster: sent again to the slot's new primary, with this id
            raise
        finally:
            if writer is not None:
                self._give_back_writer(writer, reply)
        if reply is QUEUED:
            self._known_after(space, name, args)
            return reply
        if ttl:
            self._slide(space, sent + ttl / 1000)
        yield from self._replicated(space)
        return reply

    def _replicated(self, space: KeySpace) -> Op[None]:
        """With ``wait_replicas=N`` on the object: WAIT until N replicas have every write made
        on this connection so far (at most ``REPLICA_WAIT_MS``), so an acknowledged write
        survives the loss of its primary. ``ReplicationError`` (the write is applied on the
        primary, not confirmed by enough replicas) when fewer confirm in time."""
        wanted = self._wait_replicas.get(space.hash_key)
        if not wanted:
            return
        confirmed = int((yield Command(("WAIT", str(wanted), str(REPLICA_WAIT_MS)))))
        if confirmed < wanted:
            raise ReplicationError(
                f"the write was applied on the primary, but {confirmed} of the {wanted} replicas asked for"
                f" (wait_replicas) confirmed it within {REPLICA_WAIT_MS} ms"
            )

    def _take_writer(self, space: KeySpace, needs_reply: bool) -> Writer:
        """A writer slot for one write (see :mod:`redis_memory.core.writers`)."""
        keeper = self.journal_keeper()
        backlog = keeper.backlog if keeper is not None else 0
        may_journal = not needs_reply and space.hash_key not in self._raise_offline
        return self.writers.take(backlog=backlog, may_journal=may_journal)

    def _give_back_writer(self, writer: Writer, reply: Any) -> None:
        """The write is over: a journaled one holds its writer until the journal is replayed."""
        if reply is QUEUED:
            writer.journaled = True
        self.writers.give_back(writer)

    def _transaction(self, space: KeySpace) -> OpenTransaction | None:
        return transactions.current(self.transaction_owner, space.hash_key)

    def begin(self, space: KeySpace) -> None:
        """Open a transaction on ``space`` in the current thread or task (see :meth:`g_commit`)."""
        transactions.begin(self.transaction_owner, space.hash_key)

    def end(self, space: KeySpace) -> Queue:
        """Close the transaction on ``space``; return its queued ops (see :func:`transactions.end`)."""
        return transactions.end(self.transaction_owner, space.hash_key)

    def g_commit(self, space: KeySpace, queue: Queue) -> Op[list[Any]]:
        """Send the queued ops as one batch (``lua/batch.lua``): all checked, then all applied."""
        if not queue:
            return []
        keys: list[str] = []
        ttl = self._ttls.get(space.hash_key, 0)
        writer = None if any(name == "clear" for name, _, _ in queue) else self._take_writer(space, False)
        op_id = "" if writer is None else writer.next_id()
        args: list[str] = [str(ttl), op_id, "", str(len(queue))]
        for name, key, op_args in queue:
            if key not in keys:
                keys.append(key)
            args += [name, str(keys.index(key) + 2), str(len(op_args)), *op_args]
        sent = time.monotonic()
        reply = None
        try:
            reply = yield from self._write(space, Script("batch", [space.hash_key, *keys], args))
        except BaseException as exc:
            for key in keys:
                self._mirrors.pop(key, None)
            if isinstance(exc, RedisConnectionError) and writer is not None and self.writers.keep_for_resend(writer):
                writer = None  # on a cluster: sent again to the slot's new primary, with this id
            raise
        finally:
            if writer is not None:
                self._give_back_writer(writer, reply)
        if reply is QUEUED:
            for key in keys:
                self._mirrors.pop(key, None)
            for name, _, op_args in queue:
                self._known_after(space, name, op_args)
            return [None] * len(queue)
        for (name, key, op_args), result in zip(queue, reply, strict=True):
            if name == "push":  # the mirror takes the appends, as after a single push
                elements = codec.loads_elements(raw.encode() for raw in op_args[3:])
                self._pushed(key, elements, int(op_args[1].split()[0]), result)
            elif name not in ("incr", "cas"):  # those change the hash only
                self._mirrors.pop(key, None)
        if ttl:
            self._slide(space, sent + ttl / 1000)
        yield from self._replicated(space)
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
        copy = self._mirrors.copy_for(key) if cached else None  # an older copy of this list
        known = copy.known_copy() if copy is not None else ""
        if not known:
            value, kind = yield Command(("HMGET", space.hash_key, name, kind_field(name)))
            if kind is None:
                return None
            kind = text(kind)
            if codec.structure_of(kind) == codec.HASH:
                return kind, codec.decode_scalar(kind, text(value) if value is not None else "")
        json_flag = yield from self.g_json_flag(space)
        sent = time.monotonic()
        reply = yield Script("get", [space.hash_key, key], [name, kind_field(name), json_flag, known])
        if not reply:
            return None
        kind, value, form, pttl = text(reply[0]), reply[1], text(reply[2]), int(reply[3])
        deadline = sent + pttl / 1000 if pttl >= 0 else math.inf
        structure = codec.structure_of(kind)
        if structure == codec.LIST:
            state = text(reply[4])
            elements = codec.loads_elements(value or [])
            if form == "delta" and copy is not None and copy.state is not None:  # only what the copy lacks
                dropped = int(state.split()[1]) - int(copy.state.split()[1])
                elements = list(copy.value)[dropped:] + elements
            items = self._proxy(kind, space, name, elements)
            return kind, self._remember(key, Mirror(kind, items, deadline=deadline, state=state))
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
            kind, scalar_text = codec.encode_attribute(name, value)  # an ISO text of a time field: a time
            payload = [scalar_text]
        json_flag = "0"
        if structure == codec.JSON_DOC:
            try:
                json_flag = yield from self.g_json_flag(space)
            except RedisConnectionError:
                json_flag = "?"  # never asked and unreachable: journaled, and the replay settles the form
        if json_flag != "0":  # RedisJSON may parse it: floats written so that it reads them exactly
            payload = [codec.document_dumps(document)]
        self._mirrors.pop(key, None)
        fields = self.search_fields(space, name) if structure == codec.LIST else ""
        args = [name, kind_field(name), kind, structure, json_flag, str(bound), fields, *payload]
        sent = time.monotonic()
        if (yield from self._op("assign", space, key, args)) is QUEUED:
            return
        if mirror is None:
            self._know(space, name, (kind, codec.decode_scalar(kind, payload[0])))
            return
        if json_flag == "1" or structure != codec.JSON_DOC:
            mirror.raw = None
        ttl = self._ttls.get(space.hash_key, 0)
        if ttl:
            mirror.deadline = sent + ttl / 1000
        self._know(space, name, (kind, self._remember(key, mirror)))  # served while Redis is unreachable

    def g_delete(self, space: KeySpace, name: str) -> Op[bool]:
        """Delete attribute ``name`` of any kind; False when it was not stored. One EVALSHA.

        In a transaction the deletion is queued and True is returned.
        """
        key = space.collection_key(name)
        self._mirrors.pop(key, None)
        reply = yield from self._op("delete", space, key, [name, kind_field(name)])
        if reply is not QUEUED:
            self._know(space, name, None)
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
        if type(amount) is int:
            check_int64(amount, "incr")  # HINCRBY takes 64-bit increments
        number_kind = "float" if type(amount) is float else "int"
        args = [name, kind_field(name), repr(amount), number_kind]
        reply = yield from self._op("incr", space, space.collection_key(name), args)
        if reply is QUEUED:
            return None
        value = text(reply)
        number = float(value) if ("." in value or "e" in value or number_kind == "float") else int(value)
        self._know(space, name, ("float" if type(number) is float else "int", number))
        return number

    def g_compare_and_set(
        self, space: KeySpace, name: str, expected: object, new: object, *, missing: bool
    ) -> Op[bool]:
        """Store scalar ``new`` only if attribute ``name`` still holds scalar ``expected`` (or is
        not stored, when ``missing``). One EVALSHA; False when it held something else."""
        expected_kind, expected_text = ("", "") if missing else codec.encode_attribute(name, expected)
        new_kind, new_text = codec.encode_attribute(name, new)
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

    def g_fetch(self, spaces: Sequence[KeySpace], names: Sequence[str]) -> Op[list[dict[str, Any]]]:
        """Attributes ``names`` of every object in ``spaces``, as plain data (one dict per
        object, without the attributes it does not store). One pipelined round trip of
        HMGET (values and kinds) for all objects, and one more of ``get.lua`` for their list,
        set, dict and model attributes, if any: two round trips whatever the number of
        objects. Read as they are in Redis (no mirror is used or made)."""
        fields = [field for name in names for field in (name, kind_field(name))]
        replies = yield Pipeline(tuple(Command(("HMGET", space.hash_key, *fields)) for space in spaces))
        rows: list[dict[str, Any]] = []
        collections: list[tuple[int, KeySpace, str]] = []
        for index, (space, reply) in enumerate(zip(spaces, replies, strict=True)):
            if isinstance(reply, Exception):
                raise public_error(reply)
            row: dict[str, Any] = {}
            for position, name in enumerate(names):
                value, kind = reply[2 * position], reply[2 * position + 1]
                if kind is None:
                    continue
                kind = text(kind)
                if codec.structure_of(kind) == codec.HASH:
                    row[name] = codec.decode_scalar(kind, text(value) if value is not None else "")
                else:
                    collections.append((index, space, name))
            rows.append(row)
        if not collections:
            return rows
        json_flag = yield from self.g_json_flag(spaces[0])
        scripts = tuple(
            Script("get", [space.hash_key, space.collection_key(name)], [name, kind_field(name), json_flag, ""])
            for _, space, name in collections
        )
        replies = yield Pipeline(scripts)
        for (index, _, name), reply in zip(collections, replies, strict=True):
            if isinstance(reply, Exception):
                raise public_error(reply)
            if reply:
                rows[index][name] = _plain_value(text(reply[0]), reply[1], text(reply[2]))
        return rows


def _plain_value(kind: str, value: Any, form: str) -> Any:
    """A collection attribute read by ``get.lua`` as plain data."""
    structure = codec.structure_of(kind)
    if structure == codec.LIST:
        return [codec.loads(item) for item in value or []]
    if structure == codec.SET:
        return {codec.loads(item) for item in value or []}
    if value is None:
        raise ServerError("a document is missing from Redis")
    document = codec.loads(value)[0] if form == "json" else codec.loads(value)
    return codec.read_model(kind, document) if kind != codec.DICT else document
