"""Writes while Redis cannot be reached: the journal, and the last known values served meanwhile.

A part of the core (:class:`~redis_memory.core.operations.Core` mixes it in). A write that
cannot get through is journaled (:mod:`redis_memory.journal`); while this process has
journaled writes for a server, every later write is journaled behind them, so they reach
Redis in order. Reads that cannot reach Redis serve the last value this process knew, with
its journaled writes applied.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from redis_memory import codec
from redis_memory.core.layout import g_check_layout
from redis_memory.core.mirror import Mirror
from redis_memory.core.requests import QUEUED, Op, Script
from redis_memory.counters import Stats
from redis_memory.errors import RedisConnectionError
from redis_memory.keys import KeySpace, parse_kind_field

logger = logging.getLogger(__name__)


class Unread:
    """The items handed to the list proxy factory for a list known to exist whose items this
    process no longer knows (a journaled change it cannot work out offline): the factory makes
    a write-only stand-in (:class:`~redis_memory.proxies.list.UnreadList`)."""

    def __repr__(self) -> str:
        return "UNREAD"


UNREAD = Unread()


class OfflineWrites:
    """The journaling and last-known-value part of the core (mixed into it)."""

    if TYPE_CHECKING:  # what it uses of the core
        journal: Any
        server_id: str
        backlog: int
        stats: Stats
        _raise_offline: set[str]
        _known: OrderedDict[tuple[str, str], tuple[str, Any] | None]
        _max_mirrors: int
        layouts: set[str]
        layout_by_router: bool

        def _proxy(self, kind: str, space: KeySpace, name: str, items: Any) -> Any: ...

    def _write(self, space: KeySpace, request: Script, needs_reply: bool = False) -> Op[Any]:
        """Send a write script, or journal it when Redis cannot be reached (and the object
        allows it): while this process has journaled writes for the server, every later write
        is journaled behind them, so they reach Redis in order. Returns :data:`QUEUED` when
        journaled."""
        keeper = self.journal_keeper()
        journaling = (
            keeper is not None and keeper.journal is not None and space.hash_key not in self._raise_offline
        ) and not needs_reply
        # made after a probe Redis did not answer (only assignments can be)
        open_form = request.name in ("op:assign", "batch") and unsettled(request.name, list(request.args))
        if journaling and keeper is not None and (keeper.journals_behind(space) or open_form):
            return keeper._journal_write(request)
        if open_form:
            raise RedisConnectionError("Redis cannot be reached (it did not answer whether it has RedisJSON)")
        try:
            if space.prefix not in self.layouts and not self.layout_by_router:
                yield from g_check_layout(space.prefix)  # once per prefix: refuse a newer layout
                self.layouts.add(space.prefix)
            reply = yield request
        except RedisConnectionError:
            if not journaling or keeper is None:
                raise
            return keeper._journal_write(request)
        return reply

    def journal_keeper(self) -> OfflineWrites | None:
        """The core whose journal and replay this one's writes use: itself (the sync driver),
        or the sync driver of the same server (the asyncio driver, whose journaled writes the
        sync driver's flusher replays, in one order with its own), or, on a Redis Cluster, the
        cluster's journal (:class:`redis_memory.cluster_journal.ClusterJournal`)."""
        return self

    def journals_behind(self, space: KeySpace) -> bool:
        """Whether writes to ``space`` must be journaled behind earlier ones still waiting
        (and reads serve the last known values): on one server, while any write waits."""
        return self.backlog > 0

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

    def forget_known(self, space: KeySpace, name: str) -> None:
        """Forget the last known value of attribute ``name`` (unknown until Redis answers)."""
        self._known.pop((space.hash_key, name), None)

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
        elif op == "assign":  # a document; its text kept where a compare-and-set will need it
            raw = None if args[4] == "1" else args[7].encode()
            self._know(space, name, (args[2], Mirror(args[2], codec.loads(args[7]), raw=raw)))
        elif op == "doc_cas":
            self._know(space, name, (codec.DICT, Mirror(codec.DICT, codec.loads(args[2]), raw=args[2].encode())))
        elif op == "doc":
            pass  # path changes: the document operation applies them to the known value itself
        elif op == "set" and found is not None and isinstance(found[1], Mirror) and args[1] != "pop":
            members = {codec.loads(raw) for raw in args[2:]}
            if args[1] == "add":
                set.update(found[1].value, members)
            elif args[1] in ("remove", "discard"):
                set.difference_update(found[1].value, members)
            else:
                set.clear(found[1].value)
            found[1].seal()
        elif op == "incr" and found is not None and codec.structure_of(found[0]) == codec.HASH:
            amount = float(args[2]) if args[3] == "float" or found[0] == "float" else int(args[2])
            self._know(space, name, ("float" if isinstance(amount, float) else found[0], found[1] + amount))
        elif op == "incr" and entry in self._known and found is None:
            self._know(space, name, (args[3], float(args[2]) if args[3] == "float" else int(args[2])))
        elif op == "push" and found is not None and isinstance(found[1], Mirror) and isinstance(found[1].value, list):
            list.extend(found[1].value, codec.loads_elements(raw.encode() for raw in args[3:]))
            found[1].seal()
        elif op in ("push", "list") and found is not None and codec.structure_of(found[0]) == codec.LIST:
            # Its items are not worked out offline, but it is a list: appends stay possible.
            self._know(space, name, (found[0], Mirror(found[0], self._proxy(found[0], space, name, UNREAD))))
        else:  # not worked out offline: unknown until Redis answers
            self._known.pop(entry, None)
            self._known.pop((space.hash_key, args[0]), None)


# An assignment's arguments in a write script: [ttl, op id, made at, name, kind field, kind,
# structure, json flag, ...] (op:assign), or per op of a batch (see lua/batch.lua).
_ASSIGN_FLAG = 4  # the json flag's place among an assign op's own arguments


def _flag_positions(script: str, args: list[str]) -> list[int]:
    """Where the json flags of the assignments in a write script's arguments are."""
    if script == "op:assign":
        return [3 + _ASSIGN_FLAG]
    if script != "batch":
        return []
    positions, position = [], 4
    for _ in range(int(args[3])):
        name, count = args[position], int(args[position + 2])
        if name == "assign":
            positions.append(position + 3 + _ASSIGN_FLAG)
        position += 3 + count
    return positions


def unsettled(script: str, args: list[str]) -> bool:
    """Whether a journaled write assigns a document in a form nobody knew when it was made."""
    return any(args[position] == "?" for position in _flag_positions(script, args))


def settled(script: str, args: list[str], json_flag: str) -> list[str]:
    """The arguments with every unknown document form (``?``) replaced by the server's."""
    settled = list(args)
    for position in _flag_positions(script, args):
        if settled[position] == "?":
            settled[position] = json_flag
    return settled
