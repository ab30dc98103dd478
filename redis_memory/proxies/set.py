"""``RedisSet``: a set attribute, stored as a Redis Set of JSON scalars.

Like ``RedisList``, a ``RedisSet`` *is* a ``set`` with its members filled in, and the backend's
tracked mirror of the set is this very object while no other client changes it. Every
mutating method writes through first (one atomic EVALSHA of ``set_op.lua``) and then changes
the local members. Members are JSON scalars: ``str``, ``int``, ``float``, ``bool``, ``None``
(note that ``1``, ``1.0`` and ``True``, equal in Python, are three members in Redis).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from redis_memory import codec
from redis_memory.backend import Backend
from redis_memory.core.requests import QUEUED
from redis_memory.errors import MissingKeyError
from redis_memory.keys import KeySpace


class RedisSet(set[Any]):
    """A ``set`` whose mutations write through to a Redis Set (see the module docstring)."""

    __slots__ = ("_backend", "_name", "_rebind", "_space")

    def __init__(self, backend: Backend, space: KeySpace, name: str, members: Iterable[Any]) -> None:
        """Bind to attribute ``name`` of a memory, holding ``members`` (made by the backend)."""
        set.__init__(self, members)
        self._backend, self._space, self._name = backend, space, name
        self._rebind = False

    def rebound_to(self, backend: Backend, space: KeySpace, name: str) -> bool:
        """True, once, right after ``mem.<name> |= ...`` (or ``-=``, ``&=``, ``^=``) wrote through."""
        pending, self._rebind = self._rebind, False
        return pending and self._backend is backend and self._space == space and self._name == name

    def _write(self, op: str, members: list[Any]) -> Any:
        reply, mirror = self._backend.set_op(self._space, self._name, op, codec.set_members(members))
        if reply is not QUEUED and (mirror is None or mirror.value is not self):
            self.refresh()
        return reply

    def refresh(self) -> None:
        """Re-read the members (from the mirror when valid, else SMEMBERS; O(n))."""
        found = self._backend.read(self._space, self._name)
        current = found[1].value if found is not None and found[0] == codec.SET else set()
        if current is not self:
            set.clear(self)
            set.update(self, current)

    def has(self, member: Any) -> bool:
        """Ask Redis whether ``member`` is in the set now: SISMEMBER; O(1), one round trip."""
        (raw,) = codec.set_members([member])
        return bool(self._backend.execute("SISMEMBER", self._space.collection_key(self._name), raw))

    def add(self, member: Any) -> None:
        """Add one member: SADD; O(1), one round trip."""
        self._write("add", [member])

    def update(self, *others: Iterable[Any]) -> None:
        """Add every member of ``others`` atomically: SADD; O(k), one round trip."""
        members = [member for other in others for member in other]
        if members:
            self._write("add", members)

    def discard(self, member: Any) -> None:
        """Remove ``member`` if present: SREM; O(1), one round trip."""
        self._write("discard", [member])

    def remove(self, member: Any) -> None:
        """Remove ``member``; ``KeyError`` if Redis does not hold it. SREM; one round trip."""
        try:
            self._write("remove", [member])
        except MissingKeyError:
            raise MissingKeyError(member) from None

    def pop(self) -> Any:
        """Remove and return an arbitrary member: SPOP; ``KeyError`` if the set is empty."""
        reply = self._write("pop", [])
        return codec.loads(reply[1])

    def clear(self) -> None:
        """Remove every member; the attribute stays a set. DEL; one round trip."""
        self._write("clear", [])

    def difference_update(self, *others: Iterable[Any]) -> None:
        """Remove every member of ``others`` atomically: SREM; one round trip."""
        members = [member for other in others for member in other]
        if members:
            self._write("discard", members)

    def intersection_update(self, *others: Iterable[Any]) -> None:
        """Keep only members found in every one of ``others`` (SREM of the rest, as read)."""
        keep = set(self).intersection(*others)
        self.difference_update(set(self) - keep)

    def symmetric_difference_update(self, other: Iterable[Any]) -> None:
        """Like ``set.symmetric_difference_update``: SREM then SADD (two round trips)."""
        other = set(other)
        both, new = other & set(self), other - set(self)
        self.difference_update(both)
        self.update(new)

    def __ior__(self, other: Any) -> RedisSet:  # type: ignore[misc]
        """``s |= other``: :meth:`update`."""
        self.update(other)
        self._rebind = True
        return self

    def __isub__(self, other: Any) -> RedisSet:  # type: ignore[misc]
        """``s -= other``: :meth:`difference_update`."""
        self.difference_update(other)
        self._rebind = True
        return self

    def __iand__(self, other: Any) -> RedisSet:  # type: ignore[misc]
        """``s &= other``: :meth:`intersection_update`."""
        self.intersection_update(other)
        self._rebind = True
        return self

    def __ixor__(self, other: Any) -> RedisSet:  # type: ignore[misc]
        """``s ^= other``: :meth:`symmetric_difference_update`."""
        self.symmetric_difference_update(other)
        self._rebind = True
        return self

    def copy(self) -> set[Any]:
        """A plain set of the members (no longer tied to Redis)."""
        return set(self)

    def __copy__(self) -> set[Any]:
        return self.copy()

    def __deepcopy__(self, memo: dict[int, Any]) -> set[Any]:
        return self.copy()

    def __reduce__(self) -> tuple[type, tuple[list[Any]]]:
        return (set, (list(self),))
