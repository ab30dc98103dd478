"""What an operation asks a driver for, and how a driver steps it.

An operation is a generator (:data:`Op`): it yields a :class:`Script` (EVALSHA of one of the
package's Lua scripts), a :class:`Command` (one plain Redis command) or a :class:`Pipeline` of
read-only ones (one round trip), receives the reply,
and returns its result; :func:`advance` steps it. :data:`QUEUED` is the reply of a write
queued in a transaction or journaled while Redis is unreachable.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias, TypeVar

T = TypeVar("T")

_WRITE_SCRIPTS = ("push", "batch", "layout")  # and every "op:<name>" (layout: waits as a write does)


class _Queued:
    """The reply of a change queued in a transaction (sent when the transaction commits)."""

    def __repr__(self) -> str:
        return "QUEUED"


QUEUED: Any = _Queued()


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


@dataclass(frozen=True, slots=True)
class Pipeline:
    """A request: several read-only requests sent together, their replies read in one round
    trip. The reply is the list of their replies, an error reply standing as its exception."""

    requests: tuple[Script | Command, ...]


Request: TypeAlias = Script | Command | Pipeline
Op: TypeAlias = Generator[Request, Any, T]


def advance(op: Op[Any], reply: Any, error: Exception | None) -> tuple[bool, Any]:
    """Step a running operation with the last reply (or error): ``(False, next request)``,
    or ``(True, result)`` once it has finished. The drivers' loops are built on it."""
    try:
        return False, (op.send(reply) if error is None else op.throw(error))
    except StopIteration as stop:
        return True, stop.value


def is_write(request: Request) -> bool:
    """Whether ``request`` runs one of the write scripts (which carry an operation id)."""
    return isinstance(request, Script) and (request.name in _WRITE_SCRIPTS or request.name.startswith("op:"))


def text(value: bytes | str) -> str:
    """A reply as text."""
    return value.decode("utf-8") if isinstance(value, bytes) else value
