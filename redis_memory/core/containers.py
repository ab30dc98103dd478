"""List and set attributes' operations, a part of the core (see :mod:`redis_memory.core`).

Appends, positional list changes and set changes go to Redis as one script each; a valid
mirror gets the same change once Redis acknowledged it, and is dropped when the sizes disagree.
An edit of one list element (``RedisList.edit``) is the positional compare-and-set ``set``;
:meth:`CollectionOps.check_edit` says whether an open transaction can queue one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from redis_memory import codec
from redis_memory.core.mirror import Mirror, MirrorTable
from redis_memory.core.requests import QUEUED, Op, text
from redis_memory.core.transactions import OpenTransaction
from redis_memory.errors import ConcurrentModificationError, TransactionError
from redis_memory.keys import KeySpace, kind_field


class CollectionOps:
    """The list and set operations of :class:`~redis_memory.core.operations.Core` (mixed into it)."""

    if TYPE_CHECKING:  # what they use of the core
        _mirrors: MirrorTable

        def _remember(self, key: str, mirror: Mirror) -> Mirror: ...

        def _op(self, name: str, space: KeySpace, key: str, args: Sequence[str]) -> Op[Any]: ...
        def bound(self, space: KeySpace, name: str) -> int: ...
        def search_fields(self, space: KeySpace, name: str) -> str: ...
        def forget(self, key: str) -> None: ...
        def _transaction(self, space: KeySpace) -> OpenTransaction | None: ...

    def g_push(self, space: KeySpace, name: str, raws: list[str], elements: list[Any]) -> Op[Mirror | None]:
        """Append encoded elements (and their read-only copies, for the mirror). One EVALSHA of
        ``push.lua``: HGET (kind check) + RPUSH (+ LTRIM when bounded) + LLEN; O(k). Returns
        the valid mirror, if any (:data:`QUEUED` in a transaction)."""
        key = space.collection_key(name)
        bound = self.bound(space, name)
        copy = self._mirrors.copy_for(key) if self._transaction(space) is None else None
        known = copy.known_copy() if copy is not None else ""
        try:
            fields = self.search_fields(space, name)
            bound_arg = f"{bound} {known}" if known else str(bound)
            reply = yield from self._op("push", space, key, [kind_field(name), bound_arg, fields, *raws])
        except ConcurrentModificationError:
            self.forget(key)
            raise
        if reply is QUEUED:
            return QUEUED  # type: ignore[no-any-return]
        if isinstance(reply, list):  # the copy sent, brought up to date (push_reply in lua/lib.lua)
            mirror = self._caught_up(key, copy, known, elements, reply)
            if mirror is not None and elements:
                mirror.digest(elements[-1], raws[-1])  # its new last element's text is known: no re-encoding
            return mirror
        return self._pushed(key, elements, bound, int(reply))

    def _caught_up(
        self, key: str, copy: Mirror | None, known: str, elements: list[Any], reply: list[Any]
    ) -> Mirror | None:
        """After a push that sent the state of ``copy``: give it the elements other writers
        appended before ours, then ours, drop what left its front, and make it the valid mirror
        again. Returns it, or None (and it is dropped) when Redis could not bring it up to date."""
        length, state, delta = int(reply[0]), text(reply[1]), text(reply[2]) == "1"
        current = self._mirrors.get(key) or self._mirrors.retired.get(key)
        if not delta or copy is None or current is not copy or not copy.same_copy(known):
            self._mirrors.pop(key, None)
            self._mirrors.retired.pop(key, None)
            return None
        dropped = int(state.split()[1]) - int(known.split()[1])
        items = copy.value
        if dropped:
            list.__delitem__(items, slice(0, dropped))  # no write-through: Redis did it
        list.extend(items, codec.loads_elements(reply[3:]))
        list.extend(items, elements)
        if len(items) != length:  # never trusted when it disagrees
            self._mirrors.pop(key, None)
            self._mirrors.retired.pop(key, None)
            return None
        copy.state = state
        return self._remember(key, copy)  # sealed, and valid again

    def _pushed(self, key: str, elements: list[Any], bound: int, length: int) -> Mirror | None:
        """Apply appends that Redis acknowledged (new length ``length``) to the key's mirror;
        drop the mirror instead if the lengths disagree. Returns the mirror if still valid."""
        mirror = self._mirrors.get(key)
        if mirror is None:
            return None
        expected = len(mirror.value) + len(elements)
        if mirror.intact() and (length == expected or (bound and length == bound <= expected)):
            mirror.state = None  # its head on the server is not known here: read in full next time
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
        mirror = self._changed(key, lambda items: update(items, reply), int(reply[0]))
        if mirror is not None:
            mirror.state = text(reply[2]) if len(reply) > 2 else None
        return reply, mirror

    def check_edit(self, space: KeySpace, name: str, position: int) -> None:
        """Refuse, with ``TransactionError``, an edit of element ``position`` (>= 0) of list
        ``name`` that the transaction open here could not apply to the element it compares.

        An edit compares the element as Redis held it before the block (reads are not queued),
        and a batch checks every change before applying any: so the block must not have queued
        a change that moves the list's elements or changes that one (an assignment, an insert,
        a rewrite, a bounded append, an earlier edit of the same element). Appends to an
        unbounded list and changes of other elements in place are fine. No I/O; O(queued
        changes). Outside a transaction it does nothing.
        """
        transaction = self._transaction(space)
        if transaction is None:
            return
        key = space.collection_key(name)
        for op, queued_key, args in transaction.queue:
            if queued_key != key or (op == "push" and args[1].split()[0] == "0"):
                continue  # another key, or appends that move no element
            if op == "list" and args[1] == "set" and args[4] != str(position):
                continue  # another element, replaced in place
            raise TransactionError(
                f"this transaction already changed {name!r} in a way that moves or replaces element"
                f" {position}: edit it before any other change to the list, or outside the transaction"
            )

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
