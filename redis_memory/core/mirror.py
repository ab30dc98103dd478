"""A local copy of one collection key (a mirror), and how a change behind its back is noticed."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from redis_memory.keys import KeySpace

# Makes the object a list or set mirror holds and users receive: (core, space, name, items).
ProxyFactory = Callable[[Any, KeySpace, str, Any], Any]


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
