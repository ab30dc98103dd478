"""The hook through which the drivers let an observer (telemetry) watch their work.

The drivers hand each operation to :data:`active` when one is set, and each replay of the
offline journal; they never import the observer itself. :mod:`redis_memory.telemetry` sets
it with :func:`observe`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from redis_memory.core.requests import Op
from redis_memory.counters import Stats

T = TypeVar("T")


class Observed(Protocol):
    """What an observer reads of a driver (sync or async)."""

    @property
    def label(self) -> str: ...
    @property
    def stats(self) -> Stats: ...
    @property
    def backlog(self) -> int: ...


class Observer(Protocol):
    """What the drivers call, when an observer is set."""

    def traced(self, backend: Any, op: Op[T], *, counted: bool = True) -> Op[T]:
        """``op`` wrapped so that running it is observed; the driver runs the wrapper instead."""
        ...

    def replay(self, backend: Any, run: Callable[[], None]) -> None:
        """Call ``run()``, one replay of ``backend``'s journal, observed."""
        ...


# The observer in use; None: none (then each operation costs one check of this variable).
active: Observer | None = None


def observe(observer: Observer | None) -> None:
    """Set the observer the drivers report to from now on (None: none)."""
    global active
    active = observer
