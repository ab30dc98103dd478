"""``RedisDict`` and ``RedisDocList``: a dict attribute, stored as one JSON document.

Both *are* real ``dict`` / ``list`` objects with their content filled in. Every mutation is
one :class:`~redis_memory.docops.DocOp` (or a few, applied all or none) at the changed path:
``mem.profile["preferences"]["tone"] = "formal"`` is one ``JSON.SET $["preferences"]["tone"]``
with RedisJSON, and a compare-and-set of the document without it (see ``Backend.doc_ops``).
After Redis accepts the change, the same op is applied to the local object.

Positions inside nested lists are resolved when the change reaches Redis: if another process
inserted into the same list meanwhile, ``lst[2] = x`` writes the element now at index 2.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, SupportsIndex

from redis_memory import codec
from redis_memory.backend import Backend
from redis_memory.core.requests import QUEUED
from redis_memory.docops import DocOp, Path, apply_op, check_op
from redis_memory.errors import MissingIndexError, MissingKeyError, UnstorableValueError
from redis_memory.keys import KeySpace

_MISSING = object()


class _Node:
    """What a document proxy knows: where it lives (memory, attribute, path)."""

    _backend: Backend
    _space: KeySpace
    _name: str
    _path: Path
    _rebind: bool = False

    def _bind(self, backend: Backend, space: KeySpace, name: str, path: Path) -> None:
        self._backend, self._space, self._name, self._path = backend, space, name, path

    def _wrap(self, value: Any, path: Path) -> Any:
        return wrap(self._backend, self._space, self._name, value, path)

    def _apply(self, ops: list[DocOp]) -> list[Any]:
        """Send ``ops`` (all at this node's path) to Redis, then apply them locally.

        Redis's results are returned (they are authoritative); an op the local copy cannot
        take (it lacked a key that Redis had) is skipped locally.
        """
        results = self._backend.doc_ops(self._space, self._name, ops)
        if results and results[0] is QUEUED:
            return results  # in a transaction: the local copy changes after the commit re-read
        for op in ops:
            try:
                check_op(self, op)
            except (MissingKeyError, MissingIndexError):
                continue
            apply_op(self, op, self._wrap)
        return results

    def rebound_to(self, backend: Backend, space: KeySpace, name: str, path: Path = ()) -> bool:
        """True, once, right after ``x += ...`` / ``x |= ...`` wrote through this very node at ``path``.

        Python follows an augmented assignment with a plain one (``mem.doc = x``, or
        ``parent[key] = x``) that must not rewrite what was just changed in place.
        """
        pending, self._rebind = self._rebind, False
        same = self._backend is backend and self._space == space and self._name == name
        return pending and same and self._path == path

    def _rebound_child(self, key: str | int, value: Any) -> bool:
        return isinstance(value, _Node) and value.rebound_to(self._backend, self._space, self._name, (*self._path, key))


def wrap(backend: Backend, space: KeySpace, name: str, value: Any, path: Path = ()) -> Any:
    """Turn a plain JSON value into write-through proxies (dicts and lists, recursively)."""
    if isinstance(value, dict):
        return RedisDict(backend, space, name, path, value)
    if isinstance(value, list):
        return RedisDocList(backend, space, name, path, value)
    return value


def _repath(node: Any, path: Path) -> None:
    """Give a proxy (and everything inside it) its new path after its list shifted."""
    if isinstance(node, (RedisDict, RedisDocList)):
        node._path = path
        items = node.items() if isinstance(node, dict) else enumerate(node)
        for key, child in items:
            _repath(child, (*path, key))


class RedisDict(_Node, dict[str, Any]):
    """A ``dict`` (the document, or a dict inside it) that writes through at its own path."""

    def __init__(self, backend: Backend, space: KeySpace, name: str, path: Path, content: dict[str, Any]) -> None:
        """Bind to ``path`` of dict attribute ``name``; ``content`` is copied into proxies."""
        self._bind(backend, space, name, path)
        dict.__init__(self, {key: self._wrap(item, (*path, key)) for key, item in content.items()})

    @staticmethod
    def _key(key: object) -> str:
        return codec.check_key(key, "key", addressable=True)

    def __setitem__(self, key: str, value: Any) -> None:
        """``d[k] = v``: JSON.SET at ``path.k``; O(size of v), one round trip."""
        if self._rebound_child(key, value):
            return
        codec.check_json(value, addressable=True)
        self._apply([DocOp("set", self._path, self._key(key), value)])

    @staticmethod
    def _holdable(key: object) -> bool:
        """Whether a dict attribute could hold ``key`` (one it cannot hold is simply missing)."""
        try:
            codec.check_key(key, addressable=True)
        except UnstorableValueError:
            return False
        return True

    def __delitem__(self, key: str) -> None:
        """``del d[k]``: JSON.DEL at ``path.k``; ``KeyError`` if Redis has no such key."""
        if not self._holdable(key):
            raise MissingKeyError(key)
        self._apply([DocOp("del", self._path, self._key(key))])

    def update(self, *args: Any, **kwargs: Any) -> None:
        """Set several keys in one atomic step (one round trip), like ``dict.update``."""
        pairs = dict(*args, **kwargs)
        for key, value in pairs.items():
            self._key(key)
            codec.check_json(value, f"value[{key!r}]", addressable=True)
        if pairs:
            self._apply([DocOp("set", self._path, key, value) for key, value in pairs.items()])

    def __ior__(self, other: Any) -> RedisDict:  # type: ignore[override,misc]
        """``d |= other``: :meth:`update`."""
        self.update(other)
        self._rebind = True
        return self

    def setdefault(self, key: str, default: Any = None) -> Any:
        """Return ``d[k]``, first storing ``default`` there if absent (JSON.SET NX, atomic)."""
        codec.check_json(default, addressable=True)
        current = self._backend.doc_ops(self._space, self._name, [DocOp("setnx", self._path, self._key(key), default)])
        value = self._wrap(current[0], (*self._path, key))
        dict.__setitem__(self, key, value)
        return value

    def pop(self, key: str, default: Any = _MISSING) -> Any:
        """Remove ``k`` and return its value (read and deleted atomically), or ``default``."""
        try:
            if not self._holdable(key):
                raise MissingKeyError(key)
            return self._apply([DocOp("pop", self._path, self._key(key))])[0]
        except MissingKeyError:
            if default is _MISSING:
                raise
            return default

    def popitem(self) -> tuple[str, Any]:
        """Remove and return the last ``(key, value)`` pair, like ``dict.popitem``."""
        if not self:
            raise MissingKeyError("popitem(): dictionary is empty")
        key = next(reversed(self))
        return key, self.pop(key)

    def clear(self) -> None:
        """Empty this dict (JSON.SET ``path`` to ``{}``), one round trip."""
        self._apply([DocOp("replace", self._path, None, {})])

    def asdict(self) -> dict[str, Any]:
        """A plain ``dict`` of plain, mutable values: a deep copy of what this object holds,
        with no link to Redis (changing it writes nothing). No I/O; O(size)."""
        result: dict[str, Any] = codec.thaw(self)
        return result

    def copy(self) -> dict[str, Any]:
        """A plain, mutable deep copy (no longer tied to Redis), as :meth:`asdict`."""
        return self.asdict()

    def __copy__(self) -> dict[str, Any]:
        return self.copy()

    def __deepcopy__(self, memo: dict[int, Any]) -> dict[str, Any]:
        return self.copy()

    def __reduce__(self) -> tuple[type, tuple[dict[str, Any]]]:
        return (dict, (self.copy(),))


class RedisDocList(_Node, list[Any]):
    """A ``list`` inside a dict attribute's document; writes through with JSON.ARR* commands.

    It has no ``edit()`` (``RedisList.edit``): its elements are write-through proxies already
    (``doc["rows"][1].append(5)`` is one JSON.ARRAPPEND at that path), and a write-back guarded
    against another writer's change of the element would need a compare-at-a-path operation
    that the document scripts do not have: with RedisJSON, ``ops/doc.lua`` resolves a position
    when the change arrives and compares nothing, and without it a conflicting compare-and-set
    of the document is re-read and its ops applied again, which would overwrite that change.
    """

    def __init__(self, backend: Backend, space: KeySpace, name: str, path: Path, content: list[Any]) -> None:
        """Bind to ``path`` of dict attribute ``name``; ``content`` is copied into proxies."""
        self._bind(backend, space, name, path)
        list.__init__(self, [self._wrap(item, (*path, index)) for index, item in enumerate(content)])

    def _position(self, index: SupportsIndex) -> int:
        position = index.__index__()
        if position < 0:
            position += len(self)
        if not 0 <= position < len(self):
            raise MissingIndexError("list index out of range")
        return position

    def _shifted(self, start: int) -> None:
        for position in range(start, len(self)):
            _repath(list.__getitem__(self, position), (*self._path, position))

    def append(self, value: Any) -> None:
        """Append one element: JSON.ARRAPPEND; O(size of value), one round trip."""
        codec.check_json(value, addressable=True)
        self._apply([DocOp("arrappend", self._path, None, value)])

    def extend(self, values: Iterable[Any]) -> None:
        """Append every element atomically: JSON.ARRAPPEND each, one round trip."""
        items = list(values)
        codec.check_json(items, addressable=True)
        if items:
            self._apply([DocOp("arrappend", self._path, None, item) for item in items])

    def __iadd__(self, values: Iterable[Any]) -> RedisDocList:  # type: ignore[misc]
        """``lst += values``: :meth:`extend`."""
        self.extend(values)
        self._rebind = True
        return self

    def insert(self, index: SupportsIndex, value: Any) -> None:
        """Insert before ``index``: JSON.ARRINSERT; one round trip."""
        codec.check_json(value, addressable=True)
        position = index.__index__()
        if position < 0:
            position = max(0, position + len(self))
        position = min(position, len(self))
        self._apply([DocOp("arrinsert", self._path, position, value)])
        self._shifted(position)

    def pop(self, index: SupportsIndex = -1) -> Any:
        """Remove and return element ``index``: JSON.ARRPOP; one round trip."""
        position = self._position(index)
        result = self._apply([DocOp("arrpop", self._path, position)])[0]
        self._shifted(position)
        return result

    def remove(self, value: Any) -> None:
        """Remove the first element equal to ``value`` (``ValueError`` if none)."""
        self.pop(self.index(value))

    def clear(self) -> None:
        """Empty this list (JSON.SET ``path`` to ``[]``), one round trip."""
        self._apply([DocOp("replace", self._path, None, [])])

    def _replace(self, items: list[Any]) -> None:
        codec.check_json(items, addressable=True)
        self._apply([DocOp("replace", self._path, None, codec.thaw(items))])

    def __setitem__(self, index: SupportsIndex | slice, value: Any) -> None:
        """``lst[i] = v``: JSON.SET at ``path[i]``; slices rewrite this list."""
        if isinstance(index, slice):
            items = list(self)
            items[index] = list(value)
            self._replace(items)
            return
        position = self._position(index)
        if self._rebound_child(position, value):
            return
        codec.check_json(value, addressable=True)
        self._apply([DocOp("arrset", self._path, position, value)])

    def __delitem__(self, index: SupportsIndex | slice) -> None:
        """``del lst[i]``: JSON.ARRPOP; slices rewrite this list."""
        if isinstance(index, slice):
            items = list(self)
            del items[index]
            self._replace(items)
            return
        self.pop(index)

    def sort(self, *, key: Callable[[Any], Any] | None = None, reverse: bool = False) -> None:
        """Sort like ``list.sort`` and rewrite this list."""
        self._replace(sorted(self, key=key, reverse=reverse))

    def reverse(self) -> None:
        """Reverse like ``list.reverse`` and rewrite this list."""
        self._replace(list(reversed(self)))

    def __imul__(self, count: SupportsIndex) -> RedisDocList:
        """``lst *= n`` rewrites this list."""
        self._replace(list(self) * count.__index__())
        self._rebind = True
        return self

    def aslist(self) -> list[Any]:
        """A plain ``list`` of plain, mutable values: a deep copy of what this object holds,
        with no link to Redis (changing it writes nothing). No I/O; O(size)."""
        result: list[Any] = codec.thaw(self)
        return result

    def copy(self) -> list[Any]:
        """A plain, mutable deep copy (no longer tied to Redis), as :meth:`aslist`."""
        return self.aslist()

    def __copy__(self) -> list[Any]:
        return self.copy()

    def __deepcopy__(self, memo: dict[int, Any]) -> list[Any]:
        return self.copy()

    def __reduce__(self) -> tuple[type, tuple[list[Any]]]:
        return (list, (self.copy(),))
