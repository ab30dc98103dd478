"""A local copy of one collection key (a mirror), and how a change behind its back is noticed."""

from __future__ import annotations

import hashlib
import json
import math
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
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
    state: str | None = None  # a list's 'version head' on the server when value was its copy
    digests: dict[int, tuple[Any, str]] = field(default_factory=dict)  # id(element) -> (element, SHA-1)

    def updatable(self) -> bool:
        """Whether this is a list copy Redis can bring up to date by sending only what changed."""
        return (
            self.state is not None
            and not self.state.startswith("0 ")
            and isinstance(self.value, list)
            and self.intact()
        )

    def known_copy(self) -> str:
        """``'version head length first last'`` of an updatable list copy (``''`` otherwise):
        its server state (``list_state`` in ``lua/lib.lua``), its length, and the SHA-1 of
        its first and last elements' stored text, which the scripts compare with the list's,
        so a change made outside this library at either end is noticed too."""
        if not self.updatable():
            return ""
        items = self.value
        if not items:
            return f"{self.state} 0 - -"
        return f"{self.state} {len(items)} {self.digest(items[0])} {self.digest(items[-1])}"

    def digest(self, element: Any, raw: str | None = None) -> str:
        """SHA-1 of ``element``'s stored text (``raw`` when known), remembered for the ends."""
        found = self.digests.get(id(element))
        if found is not None and found[0] is element:
            return found[1]
        text = raw if raw is not None else json.dumps(element, ensure_ascii=False, separators=(",", ":"))
        digest = hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()
        if len(self.digests) >= 4:
            self.digests.clear()
        self.digests[id(element)] = (element, digest)
        return digest

    def same_copy(self, known: str) -> bool:
        """Whether this copy is still the one ``known`` (from :meth:`known_copy`) described."""
        return self.updatable() and f"{self.state} {len(self.value)}" == " ".join(known.split()[:3])

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


class MirrorTable(OrderedDict[str, Mirror]):
    """The valid mirrors, by key, least recently used first.

    A list mirror that leaves the table (another client changed the key, the connection was
    lost, the table overflowed...) is kept in :attr:`retired` while it knows its server state:
    it is no longer served, but the next read or append of that list sends Redis its state and
    length, and gets back only the elements it lacks when the list was only appended to or
    trimmed at the front meanwhile (``get.lua``, ``push.lua``).
    """

    def __init__(self, limit: int) -> None:
        """An empty table; ``limit`` bounds the retired mirrors kept."""
        super().__init__()
        self.limit = limit
        self.retired: OrderedDict[str, Mirror] = OrderedDict()

    def _retire(self, key: str, mirror: Mirror) -> None:
        if mirror.state is not None and isinstance(mirror.value, list):
            self.retired[key] = mirror
            self.retired.move_to_end(key)
            while len(self.retired) > self.limit:
                self.retired.popitem(last=False)

    def __setitem__(self, key: str, mirror: Mirror) -> None:
        self.retired.pop(key, None)
        super().__setitem__(key, mirror)

    def __delitem__(self, key: str) -> None:
        mirror = self[key]
        super().__delitem__(key)
        self._retire(key, mirror)

    def pop(self, key: str, *default: Any) -> Any:
        """Remove ``key`` (retiring a list mirror, see the class docstring)."""
        if key not in self:
            if default:
                return default[0]
            raise KeyError(key)
        mirror = self[key]
        del self[key]
        return mirror

    def popitem(self, last: bool = True) -> tuple[str, Mirror]:
        """Remove the most (or least) recently used mirror, retiring it."""
        key, mirror = super().popitem(last)
        self._retire(key, mirror)
        return key, mirror

    def clear(self) -> None:
        """Remove every mirror, retiring the list mirrors."""
        for key, mirror in list(self.items()):
            self._retire(key, mirror)
        super().clear()

    def copy_for(self, key: str) -> Mirror | None:
        """The mirror (valid, else retired) of list ``key`` whose copy Redis can update."""
        mirror = self.get(key) or self.retired.get(key)
        return mirror if mirror is not None and mirror.updatable() else None

    def forget_all(self) -> None:
        """Drop every mirror, retired ones included."""
        super().clear()
        self.retired.clear()
