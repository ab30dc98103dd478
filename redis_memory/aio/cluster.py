"""The asyncio driver on Redis Cluster: each object's operations on the primary holding its slot.

The async counterpart of :mod:`redis_memory.cluster`: one
:class:`~redis_memory.aio.backend.AsyncBackend` per primary, chosen by the object's hash
key. The asyncio API builds an operation (``backend.g_read(space, ...)``) and then awaits
``backend.drive(op)``; here the first makes a :class:`Routed` request naming the operation
and its object, and :meth:`AsyncClusterBackend.drive` runs it on the primary that holds the
object's slot once the slot map is known, reading the map again and sending the operation to
the slot's new owner after a ``MOVED``/``ASK`` reply or a lost primary (up to 5 times).
Blocking waits (``wait_for_new``) run on the sync :class:`~redis_memory.cluster.ClusterBackend`
of the same URL. A transaction is opened on the router (every primary's backend joins the
router's transactions), and committed as one ``Routed`` batch on the object's primary. As in
the sync API, a write that cannot reach its primary is journaled by the cluster's journal
(the sync router's :class:`~redis_memory.cluster_journal.ClusterJournal`, through ``client=``:
it raises) and replayed by its flusher.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio
import redis.asyncio.cluster

from redis_memory.aio.backend import AsyncBackend
from redis_memory.cluster import ClusterBackend, by_owner, moved, place
from redis_memory.core.layout import WRITE_OPS, checked, g_stored_layout
from redis_memory.core.writers import Writers
from redis_memory.counters import Stats
from redis_memory.errors import RedisConnectionError, ServerError
from redis_memory.keys import KeySpace, meta_key
from redis_memory.redaction import redact

_ATTEMPTS = 5


def _never_connects() -> redis.asyncio.Redis:
    raise AssertionError("the router's own backend keeps transactions only; it never connects")


@dataclass(frozen=True)
class Routed:
    """An operation of one object, to be made by the backend of the primary holding its slot."""

    name: str
    space: KeySpace
    args: tuple[Any, ...]
    kwargs: dict[str, Any] = field(default_factory=dict)
    make: Callable[[], Any] | None = None  # an operation made by a function, not a backend method


class AsyncClusterBackend:
    """One :class:`AsyncBackend` per primary of a Redis Cluster (see the module docstring)."""

    def __init__(
        self,
        cluster_factory: Callable[[], redis.asyncio.cluster.RedisCluster],
        label: str,
        connection_options: dict[str, Any],
        waiter: Callable[[], ClusterBackend] | None = None,
        owns_client: bool = True,
    ) -> None:
        """Prepare; nothing connects until the first operation. ``owns_client``: whether
        :meth:`aclose` closes the cluster client (not one the caller passed in)."""
        self.label = redact(label, mask="***")
        self._owns_client = owns_client
        self.waiter = waiter
        self._cluster_factory = cluster_factory
        self._clusters: dict[asyncio.AbstractEventLoop, redis.asyncio.cluster.RedisCluster] = {}
        self._options = connection_options
        self._nodes: dict[tuple[str, int], AsyncBackend] = {}
        self._settings: dict[str, tuple[tuple[Any, ...], dict[str, Any]]] = {}
        self._raise_offline: set[str] = set()
        # A backend that never connects: the transaction bookkeeping shared by the primaries'.
        self._logic = AsyncBackend(_never_connects, label)
        self._logic.transaction_owner = self
        self.writers = Writers(resends=True)  # shared by the primaries' backends (core/writers.py)
        self._logic.writers = self.writers
        self.layouts: set[str] = set()  # prefixes whose layout record was checked (core/layout.py)
        self._logic.layouts, self._logic.layout_by_router = self.layouts, True

    async def _topology(self) -> redis.asyncio.cluster.RedisCluster:
        loop = asyncio.get_running_loop()
        cluster = self._clusters.get(loop)
        if cluster is None:
            cluster = self._cluster_factory()
            try:
                await cluster.initialize()
            except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError) as exc:
                raise RedisConnectionError(f"cannot reach the Redis Cluster at {self.label}: {exc}") from exc
            except redis.exceptions.RedisClusterException as exc:
                raise ServerError(f"not a usable Redis Cluster at {self.label}: {exc}") from exc
            raced = self._clusters.get(loop)  # another task of this loop made one meanwhile: keep that one
            if raced is not None:
                if raced is not cluster:  # (a client the caller passed in is the same one)
                    await cluster.aclose()
                return raced
            self._clusters[loop] = cluster
        return cluster

    async def _node_for(self, space: KeySpace) -> AsyncBackend:
        backend = await self._node_for_key(space.hash_key)
        settings = self._settings.get(space.hash_key)
        if settings is not None:
            backend.configure(space, *settings[0], **settings[1])
        return backend

    async def _node_for_key(self, key: str) -> AsyncBackend:
        """The backend of the primary holding ``key``'s slot (made on first use)."""
        cluster = await self._topology()
        node = cluster.nodes_manager.get_node_from_slot(cluster.keyslot(key))
        address = (str(node.host), int(node.port))
        backend = self._nodes.get(address)
        if backend is None:
            options = {**self._options, "host": address[0], "port": address[1]}
            backend = self._nodes[address] = AsyncBackend(
                lambda: redis.asyncio.Redis.from_pool(redis.asyncio.ConnectionPool(**options)),
                f"{self.label} ({address[0]}:{address[1]})",
            )
            backend.transaction_owner = self  # a transaction opened here is seen by the primary
            backend.writers = self.writers
            backend.layouts, backend.layout_by_router = self.layouts, True
            if self.waiter is not None:
                waiter = self.waiter
                backend.shared_journal = lambda: waiter().offline
        return backend

    async def _refresh(self) -> None:
        cluster = await self._topology()
        with contextlib.suppress(redis.exceptions.RedisError, OSError):
            await cluster.nodes_manager.initialize()  # on failure the old map stays until a node answers

    @property
    def backlog(self) -> int:
        """This process's journaled writes for the cluster (the sync router's journal keeps them)."""
        return self.waiter().backlog if self.waiter is not None else 0

    def configure(self, space: KeySpace, *args: Any, **kwargs: Any) -> None:
        """Remembered, and applied on whichever primary serves the object."""
        self._settings[space.hash_key] = (args, kwargs)
        if kwargs.get("offline") == "raise":
            self._raise_offline.add(space.hash_key)

    def on_object(self, space: KeySpace, make: Callable[[], Any]) -> Routed:
        """An operation on ``space``'s keys that ``make()`` builds, run on its slot's primary."""
        return Routed("", space, (), {}, make)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("g_") or name in ("read",):
            return lambda space, *args, **kwargs: Routed(name, space, args, kwargs)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    async def read(self, space: KeySpace, name: str) -> Any:
        """:meth:`AsyncBackend.read` on the object's primary."""
        return await self.drive(Routed("read", space, (name,)))

    async def drive(self, routed: Any) -> Any:
        """Run a :class:`Routed` operation on the primary holding its object's slot."""
        if not isinstance(routed, Routed):
            raise ServerError("an operation across objects has no one primary to run on in a Redis Cluster")
        if routed.space.prefix not in self.layouts and routed.name in WRITE_OPS:
            await self._check_layout(routed.space.prefix)
        try:
            for attempt in range(_ATTEMPTS):
                backend = await self._node_for(routed.space)
                try:
                    if routed.name == "read":
                        return await backend.read(routed.space, *routed.args)
                    if routed.make is not None:
                        op = routed.make()
                    else:
                        op = getattr(backend, routed.name)(routed.space, *routed.args, **routed.kwargs)
                    return await backend.drive(op)
                except ServerError as exc:
                    if not moved(exc) or attempt == _ATTEMPTS - 1:
                        raise
                except RedisConnectionError:  # a write whose reply was lost keeps its id for the resend
                    if attempt == _ATTEMPTS - 1:
                        raise
                await self._refresh()
                await asyncio.sleep(0.05 * attempt)
            raise AssertionError("unreachable")
        finally:
            self.writers.release_kept()

    async def _check_layout(self, prefix: str) -> None:
        """As :meth:`redis_memory.cluster.ClusterBackend._check_layout`: the layout record,
        checked once before the first operation under ``prefix`` (skipped while unreachable)."""
        try:
            node = await self._node_for_key(meta_key(prefix))
            reply = await node.drive(g_stored_layout(prefix))
        except RedisConnectionError:
            return
        except ServerError as exc:
            if not moved(exc):
                raise
            await self._refresh()  # asked again before the next operation
            return
        checked(prefix, reply)
        self.layouts.add(prefix)

    def begin(self, space: KeySpace) -> None:
        """Open a transaction on ``space`` in this task; the primary that commits it sees it
        (its backend's ``transaction_owner`` is this router)."""
        self._logic.begin(space)

    def end(self, space: KeySpace) -> Any:
        """Close the transaction on ``space``; its queued writes (see :meth:`Core.end`)."""
        return self._logic.end(space)

    def check_edit(self, space: KeySpace, name: str, position: int) -> None:
        """:meth:`CollectionOps.check_edit` against the transaction open here, if any."""
        self._logic.check_edit(space, name, position)

    async def fetch(self, spaces: Sequence[KeySpace], names: Sequence[str]) -> list[dict[str, Any]]:
        """:meth:`Core.g_fetch` per primary, merged in order."""
        rows: list[dict[str, Any]] = [{} for _ in spaces]
        for backend, indexes in by_owner([await self._node_for(space) for space in spaces]):
            place(rows, indexes, await backend.drive(backend.g_fetch([spaces[i] for i in indexes], names)))
        return rows

    @property
    def stats(self) -> Stats:
        """Every primary's counts, added."""
        total = Stats()
        for backend in list(self._nodes.values()):
            total.add(backend.stats)
        return total

    async def aclose(self) -> None:
        """Close this event loop's connections (a ``client=`` cluster client stays the caller's)."""
        for backend in list(self._nodes.values()):
            await backend.aclose()
        cluster = self._clusters.pop(asyncio.get_running_loop(), None)
        if cluster is not None and self._owns_client:
            await cluster.aclose()
