"""``RedisList``: a list attribute, stored as a Redis List of JSON elements.

A ``RedisList`` *is* a ``list``: its items are filled in when the attribute is read, so json,
orjson, pydantic, ``x + [...]`` and the LLM SDKs see the real content. The backend's tracked
mirror of a list *is* its ``RedisList``: while no other client changes the list, every
``mem.messages`` returns that same object, at no round trip and no copy, and each write made
through it updates it in place after Redis accepted the change (one atomic EVALSHA). Once
another client changes the list, the next ``mem.messages`` reads a new ``RedisList``; an old
one you still hold keeps its items, and re-reads them the next time you write through it.
Elements are read-only snapshots (:class:`~redis_memory.codec.FrozenDict`): change one with
``lst[i] = new_value``, or in place inside ``with lst.edit(i) as element:``, which writes it
back, compared with the element read, when the block ends. ``aslist()`` is a plain copy.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any, SupportsIndex

from redis_memory import codec
from redis_memory.backend import Backend
from redis_memory.core.offline import UNREAD
from redis_memory.core.requests import QUEUED
from redis_memory.errors import MissingIndexError, RedisConnectionError
from redis_memory.keys import KeySpace


class RedisList(list[Any]):
    """A ``list`` whose mutations write through to a Redis List (see the module docstring)."""

    __slots__ = ("_backend", "_name", "_rebind", "_space")

    def __init__(self, backend: Backend, space: KeySpace, name: str, items: list[Any]) -> None:
        """Bind to attribute ``name`` of a memory, holding ``items`` (made by the backend)."""
        list.__init__(self, items)
        self._backend, self._space, self._name = backend, space, name
        self._rebind = False

    def rebound_to(self, backend: Backend, space: KeySpace, name: str) -> bool:
        """True, once, right after ``mem.<name> += ...`` wrote through this very list.

        Python follows ``x += y`` with ``mem.<name> = x``; that assignment must not rewrite
        the list (it would undo other writers' appends). Any other assignment of a list read
        earlier is a real assignment.
        """
        pending, self._rebind = self._rebind, False
        return pending and self._backend is backend and self._space == space and self._name == name

    # -- plumbing ----------------------------------------------------------------------------

    def _write(self, op: str, args: list[str], update: Callable[[list[Any], list[Any]], None]) -> Any:
        reply, mirror = self._backend.list_op(self._space, self._name, op, args, update)
        if reply is not QUEUED and (mirror is None or mirror.value is not self):  # not the current mirror
            self.refresh()
        return reply

    def refresh(self) -> None:
        """Re-read the items (from the mirror when valid, else LRANGE; O(n))."""
        found = self._backend.read(self._space, self._name)
        current = found[1].value if found is not None and found[0] == codec.LIST else []
        if current is not self:
            list.__init__(self, current)

    def _checked(self, value: Any) -> Any:
        return self._backend.validate_element(self._space, self._name, value)

    def _index(self, index: SupportsIndex) -> int:
        position = operator.index(index)
        if position < 0:
            position += len(self)
        if not 0 <= position < len(self):
            raise MissingIndexError("list index out of range")
        return position

    def _replace(self, items: list[Any]) -> None:
        old = [codec.dumps(item) for item in self]
        new, elements = codec.encode_elements(items)

        def update(target: list[Any], reply: list[Any]) -> None:
            list.__init__(target, elements)

        self._write("replace", [str(len(old)), *old, *new], update)

    # -- appending ---------------------------------------------------------------------------

    def append(self, value: Any) -> None:
        """Append one element. RPUSH; O(1), one round trip, whatever the list's length."""
        raw, element = codec.encode_element(self._checked(value))
        mirror = self._backend.push(self._space, self._name, [raw], [element])
        if mirror is not QUEUED and (mirror is None or mirror.value is not self):
            self.refresh()

    def extend(self, values: Iterable[Any]) -> None:
        """Append every element of ``values`` atomically. RPUSH; O(k), one round trip."""
        raws, elements = codec.encode_elements([self._checked(value) for value in values])
        if not raws:
            return
        mirror = self._backend.push(self._space, self._name, raws, elements)
        if mirror is not QUEUED and (mirror is None or mirror.value is not self):
            self.refresh()

    def __iadd__(self, values: Iterable[Any]) -> RedisList:  # type: ignore[misc]
        """``lst += values``: :meth:`extend` (the attribute is rebound to itself, not rewritten)."""
        self.extend(values)
        self._rebind = True
        return self

    def insert(self, index: SupportsIndex, value: Any) -> None:
        """Insert before ``index`` like ``list.insert``. LPUSH/RPUSH at the ends, else O(n - index)."""
        position = index.__index__()
        if position < 0:
            position = max(0, position + len(self))
        position = min(position, len(self))
        raw, element = codec.encode_element(self._checked(value))
        self._write("insert", [str(position), raw], lambda target, reply: list.insert(target, position, element))

    # -- removing ----------------------------------------------------------------------------

    def pop(self, index: SupportsIndex = -1) -> Any:
        """Remove and return an element. ``pop()`` is RPOP and ``pop(0)`` LPOP (O(1)); any other
        index is checked against the element read (compare-and-delete, O(n - index))."""
        position = index.__index__()
        if position == -1 or (position == len(self) - 1 and position >= 0):
            reply = self._write("popright", [], lambda target, reply: list.pop(target))
        elif position == 0 or position == -len(self):
            reply = self._write("popleft", [], lambda target, reply: list.pop(target, 0))
        else:
            position = self._index(position)
            expected = codec.dumps(self[position])
            reply = self._write("delete", [str(position), expected], lambda target, reply: list.pop(target, position))
        return codec.loads(reply[1])

    def remove(self, value: Any) -> None:
        """Remove the first element equal to ``value`` (``ValueError`` if none); compare-and-delete."""
        self.pop(self.index(value))

    def clear(self) -> None:
        """Remove every element; the attribute stays a list. DEL; one round trip."""
        self._write("clear", [], lambda target, reply: list.clear(target))

    def wait_for_new(self, after: int | None = None, timeout: float | None = None) -> list[Any]:
        """Wait, without polling, until the list holds more than ``after`` elements (default:
        as many as this object holds now), and return the elements past ``after``.

        Returns ``[]`` after ``timeout`` seconds (None: wait as long as it takes). Built on
        client tracking: the server pushes the list's next change to a connection of its own.
        This object is not changed; read ``mem.<name>`` again for the whole list.
        """
        start = len(self) if after is None else after
        if type(start) is not int or start < 0:
            raise ValueError(f"after must be an int >= 0, not {after!r}")
        return self._backend.wait_list(self._space, self._name, start, timeout)

    def trim(self, *, last: int) -> None:
        """Keep only the last ``last`` elements. LTRIM; one round trip, O(elements removed)."""
        if type(last) is not int or last < 0:
            raise ValueError(f"last must be an int >= 0, not {last!r}")

        def update(target: list[Any], reply: list[Any]) -> None:
            list.__delitem__(target, slice(0, max(0, len(target) - last)))

        self._write("trim", [str(last)], update)

    # -- replacing ---------------------------------------------------------------------------

    def __setitem__(self, index: SupportsIndex | slice, value: Any) -> None:
        """``lst[i] = v``: LSET if element ``i`` is still the one read; slices rewrite the list."""
        if isinstance(index, slice):
            items = list(self)
            items[index] = [self._checked(item) for item in value]
            self._replace(items)
            return
        position = self._index(index)
        raw, element = codec.encode_element(self._checked(value))
        expected = codec.dumps(self[position])
        self._compare_and_set(position, expected, raw, element)

    def _compare_and_set(self, position: int, expected: str, raw: str, element: Any) -> None:
        """Replace element ``position`` by ``raw`` if Redis still holds ``expected`` there (in a
        transaction, only while nothing queued before it moves that element: see ``check_edit``)."""
        self._backend.check_edit(self._space, self._name, position)

        def update(target: list[Any], reply: list[Any]) -> None:
            list.__setitem__(target, position, element)

        self._write("set", [str(position), expected, raw], update)

    @contextmanager
    def edit(self, index: SupportsIndex) -> Iterator[Any]:
        """``with lst.edit(i) as element:`` change a dict or list element in place, atomically.

        ``element`` is a plain, mutable deep copy of element ``i`` (a negative ``i`` counts
        from the end of the list as it is now). When the block ends normally and the copy
        differs from the element read, it is written back in one EVALSHA (``ops/list.lua``
        ``set``: HGET of the kind + LINDEX to compare + LSET, O(1) at either end and
        O(distance to the nearer end) elsewhere; the element's message-search copy too), only
        if Redis still holds, at that position, the element read; otherwise
        ``ConcurrentModificationError``, and the other writer's element stays. An exception in
        the block writes nothing; so does an unchanged copy.

        The element is read from this list when it is the valid mirror (no round trip), else
        the list is read again first (LRANGE, O(n)); ``MissingIndexError`` if ``i`` is out of
        range. In a transaction the write-back is queued (the block reads Redis as it was
        before the block); ``TransactionError`` if the block queued a change that moves or
        replaces that element (see ``Core.check_edit``). A str, number, bool or None element
        raises ``TypeError`` before the block runs: assign it with ``lst[i] = value``.
        """
        self.refresh()
        position = self._index(index)
        element = list.__getitem__(self, position)
        if not isinstance(element, (dict, list)):
            raise TypeError(
                f"element {position} of {self._name!r} is a {type(element).__name__}: edit() changes a dict or"
                f" list element in place; replace this one with mem.{self._name}[{position}] = value"
            )
        self._backend.check_edit(self._space, self._name, position)
        expected = codec.dumps(element)
        draft = codec.thaw(element)
        yield draft
        raw, frozen = codec.encode_element(self._checked(draft))
        if raw != expected:
            self._backend.check_edit(self._space, self._name, position)  # the block may have queued changes
            self._compare_and_set(position, expected, raw, frozen)

    def __delitem__(self, index: SupportsIndex | slice) -> None:
        """``del lst[i]`` like :meth:`pop`; ``del lst[a:b]`` rewrites the list (compare-and-set)."""
        if isinstance(index, slice):
            items = list(self)
            del items[index]
            self._replace(items)
            return
        self.pop(index)

    def sort(self, *, key: Callable[[Any], Any] | None = None, reverse: bool = False) -> None:
        """Sort like ``list.sort`` and rewrite the list (compare-and-set, O(n))."""
        self._replace(sorted(self, key=key, reverse=reverse))

    def reverse(self) -> None:
        """Reverse like ``list.reverse`` and rewrite the list (compare-and-set, O(n))."""
        self._replace(list(reversed(self)))

    def __imul__(self, count: SupportsIndex) -> RedisList:
        """``lst *= n`` rewrites the list (compare-and-set, O(n * count))."""
        self._replace(list(self) * count.__index__())
        self._rebind = True
        return self

    # -- copies --------------------------------------------------------------------------------

    def aslist(self) -> list[Any]:
        """A plain ``list`` of plain, mutable elements: a deep copy of the items this object
        holds, with no link to Redis (changing it writes nothing). No I/O; O(size)."""
        result: list[Any] = codec.thaw(self)
        return result

    def copy(self) -> list[Any]:
        """A plain, mutable deep copy of the items (no longer tied to Redis), as :meth:`aslist`."""
        return self.aslist()

    def __copy__(self) -> list[Any]:
        return list(self)

    def __deepcopy__(self, memo: dict[int, Any]) -> list[Any]:
        return self.copy()

    def __reduce__(self) -> tuple[type, tuple[list[Any]]]:
        return (list, (self.copy(),))


class UnreadList:
    """``mem.<name>`` while Redis cannot be reached, for a list known to exist whose items this
    process no longer knows (it journaled a change, such as an ``insert``, that it cannot work
    out offline).

    Appends (``append``, ``extend``, ``+=``) are journaled like any other write and reach Redis
    in order. Everything that would read the items (``len``, iteration, indexing, ``==``,
    ``in``, truth, any other list method, ``json.dumps``) reads the attribute again and works
    on that once Redis answers; while it cannot, it raises
    :class:`~redis_memory.errors.RedisConnectionError`: never an empty or partial list. It is
    not a ``list``, so serializers refuse it instead of writing something it is not.
    """

    __slots__ = ("_backend", "_name", "_rebind", "_space")
    __hash__ = None  # type: ignore[assignment]

    def __init__(self, backend: Backend, space: KeySpace, name: str) -> None:
        """Stand for list attribute ``name`` of a memory (made by the backend)."""
        self._backend, self._space, self._name = backend, space, name
        self._rebind = False

    def rebound_to(self, backend: Backend, space: KeySpace, name: str) -> bool:
        """As :meth:`RedisList.rebound_to`: ``mem.<name> += ...`` does not rewrite the list."""
        pending, self._rebind = self._rebind, False
        return pending and self._backend is backend and self._space == space and self._name == name

    def append(self, value: Any) -> None:
        """Append one element (journaled while Redis cannot be reached)."""
        self.extend([value])

    def extend(self, values: Iterable[Any]) -> None:
        """Append every element of ``values`` atomically (journaled while Redis cannot be reached)."""
        checked = [self._backend.validate_element(self._space, self._name, value) for value in values]
        raws, elements = codec.encode_elements(checked)
        if raws:
            self._backend.push(self._space, self._name, raws, elements)

    def __iadd__(self, values: Iterable[Any]) -> UnreadList:  # type: ignore[misc]
        """``lst += values``: :meth:`extend` (the attribute is rebound to itself, not rewritten)."""
        self.extend(values)
        self._rebind = True
        return self

    def _current(self) -> Any:
        """The attribute as Redis holds it now; ``RedisConnectionError`` while it cannot say."""
        found = self._backend.read(self._space, self._name)
        value = found[1].value if found is not None and found[0] == codec.LIST else None
        if value is None or isinstance(value, UnreadList):
            raise RedisConnectionError(
                f"the items of list attribute {self._name!r} are not known while Redis cannot be reached"
                " (this process journaled a change it cannot work out offline); appends are journaled"
            )
        return value

    def __getattr__(self, attribute: str) -> Any:
        """Any other list method, on the list as Redis holds it (see the class docstring)."""
        return getattr(self._current(), attribute)

    def __len__(self) -> int:
        return len(self._current())

    def __iter__(self) -> Iterator[Any]:
        return iter(self._current())

    def __reversed__(self) -> Iterator[Any]:
        items: Iterator[Any] = reversed(self._current())
        return items

    def __getitem__(self, index: Any) -> Any:
        return self._current()[index]

    def __setitem__(self, index: Any, value: Any) -> None:
        self._current()[index] = value

    def __delitem__(self, index: Any) -> None:
        del self._current()[index]

    def __contains__(self, value: object) -> bool:
        return value in self._current()

    def __eq__(self, other: object) -> bool:
        return bool(self._current() == other)

    def __ne__(self, other: object) -> bool:
        return bool(self._current() != other)

    def __bool__(self) -> bool:
        return bool(self._current())

    def __add__(self, other: Any) -> Any:
        return self._current() + other

    def __radd__(self, other: Any) -> Any:
        return other + list(self._current())

    def __repr__(self) -> str:
        return f"<list attribute {self._name!r}: items not known while Redis cannot be reached>"


def list_proxy(backend: Backend, space: KeySpace, name: str, items: Any) -> RedisList | UnreadList:
    """The object a list attribute is handed out as: a :class:`RedisList` holding ``items``, or
    an :class:`UnreadList` when they are :data:`~redis_memory.core.offline.UNREAD`."""
    if items is UNREAD:
        return UnreadList(backend, space, name)
    return RedisList(backend, space, name, items)
