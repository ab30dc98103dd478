"""Path-level changes to a JSON document, described once and applied in two places.

A dict attribute changes through :class:`DocOp` values. The backend sends them to Redis
(as RedisJSON commands in ``lua/doc_op.lua``, or, without the module, by applying them to the
stored text and writing it back with compare-and-set), and :func:`apply_ops` applies the same
ops to local copies (the mirror and the proxies), so both agree on what a change means.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from redis_memory import codec
from redis_memory.codec import JSON, thaw
from redis_memory.errors import ConcurrentModificationError, MissingIndexError, MissingKeyError

PathPart = str | int
Path = tuple[PathPart, ...]

OBJECT_OPS = frozenset({"set", "setnx", "del", "pop"})
ARRAY_OPS = frozenset({"arrappend", "arrinsert", "arrpop", "arrset"})
# "replace" swaps the whole content of the container at ``path`` (a dict or a list) for ``value``.


def _quoted(key: str) -> str:
    # RedisJSON's path parser takes \\ and \" escapes but not JSON's \n, \t or \uXXXX: every
    # other character goes in raw (checked against RedisJSON 2.8 in tests/test_dicts.py).
    return '"' + key.replace("\\", "\\\\").replace('"', '\\"') + '"'


def json_path(path: Path) -> str:
    """Return the RedisJSON path of ``path``: ``$["key"][0]...`` with keys quoted and escaped."""
    return "$" + "".join(f"[{_quoted(part)}]" if isinstance(part, str) else f"[{part}]" for part in path)


@dataclass(frozen=True, slots=True)
class DocOp:
    """One change at ``path`` (the container) of a document.

    ``op`` is one of ``set setnx del pop`` (``key`` is a dict key), ``arrappend arrinsert
    arrpop arrset`` (``key`` is an index; none for ``arrappend``) or ``replace`` (the container's
    whole content); ``value`` is the JSON value written by every op but ``del pop arrpop``.
    """

    op: str
    path: Path
    key: PathPart | None = None
    value: JSON = None

    def script_args(self) -> list[str]:
        """The four ``doc_op.lua`` arguments of this operation."""
        container = json_path(self.path)
        encoded = codec.document_dumps(self.value)
        if self.op in OBJECT_OPS:
            return [self.op, container, json_path((*self.path, str(self.key))), encoded]
        if self.op == "arrinsert":
            return [self.op, container, str(self.key), encoded]
        if self.op == "arrpop":
            return [self.op, container, "", str(self.key)]
        if self.op == "arrset":
            return [self.op, container, json_path((*self.path, int(self.key or 0))), encoded]
        if self.op == "replace":
            return [self.op + ("object" if isinstance(self.value, dict) else "array"), container, "", encoded]
        return [self.op, container, "", encoded]


def _container(doc: Any, op: DocOp) -> Any:
    node = doc
    for part in op.path:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError) as exc:
            raise ConcurrentModificationError("the dict or list at this path was changed by another writer") from exc
    want = dict if op.op in OBJECT_OPS or (op.op == "replace" and isinstance(op.value, dict)) else list
    if not isinstance(node, want):
        raise ConcurrentModificationError("the dict or list at this path was changed by another writer")
    return node


def check_op(node: Any, op: DocOp) -> None:
    """Raise the error applying ``op`` to its container ``node`` would raise."""
    if op.op in ("del", "pop") and op.key not in node:
        raise MissingKeyError(op.key)
    if op.op in ("arrpop", "arrset") and not 0 <= int(op.key or 0) < len(node):
        raise MissingIndexError("list index out of range")


def _plain(value: Any, path: Path) -> Any:
    return thaw(value)


def apply_op(node: Any, op: DocOp, wrap: Callable[[Any, Path], Any] = _plain) -> Any:
    """Apply one op to its container ``node`` with the base ``dict``/``list`` methods.

    Using the base methods lets the same code change a plain mirror and a write-through proxy
    (whose own methods would write to Redis again). ``wrap(value, path)`` turns a new JSON value
    into what ``node`` holds (a plain copy, or a proxy). Returns the op's result.
    """
    if op.op in OBJECT_OPS:
        key = str(op.key)
        if op.op == "set":
            dict.__setitem__(node, key, wrap(op.value, (*op.path, key)))
        elif op.op == "setnx":
            if key not in node:
                dict.__setitem__(node, key, wrap(op.value, (*op.path, key)))
            return node[key]
        elif op.op == "del":
            dict.__delitem__(node, key)
        else:
            return dict.pop(node, key)
        return None
    index = int(op.key or 0)
    if op.op == "arrappend":
        list.append(node, wrap(op.value, (*op.path, len(node))))
        return len(node)
    if op.op == "arrinsert":
        index = max(0, min(index, len(node)))
        list.insert(node, index, wrap(op.value, (*op.path, index)))
        return len(node)
    if op.op == "arrpop":
        return list.pop(node, index)
    if op.op == "arrset":
        list.__setitem__(node, index, wrap(op.value, (*op.path, index)))
        return None
    # replace: the container keeps its identity, its content becomes op.value
    if isinstance(node, dict):
        dict.clear(node)
        for key, item in op.value.items():  # type: ignore[union-attr]
            dict.__setitem__(node, key, wrap(item, (*op.path, key)))
    else:
        list.__init__(node, [wrap(item, (*op.path, i)) for i, item in enumerate(op.value)])  # type: ignore[arg-type]
    return None


def apply_ops(doc: Any, ops: list[DocOp]) -> list[Any]:
    """Apply ``ops`` to a plain document in place, all or none; return each op's result.

    Results: ``setnx`` the value now at the key, ``pop``/``arrpop`` the removed value,
    ``arrappend``/``arrinsert`` the new length, ``None`` otherwise.
    """
    for op in ops:
        check_op(_container(doc, op), op)
    return [apply_op(_container(doc, op), op) for op in ops]
