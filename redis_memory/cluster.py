"""The sync driver on Redis Cluster: each object's operations on the primary holding its slot.

Every key of one memory object shares a hash tag (``{<id>}``), so all of an object's keys live
in one slot, on one primary: each operation (its script, transaction, expiry, mirror,
``wait_for_new``) runs unchanged on a :class:`~redis_memory.backend.Backend` of that primary,
one per primary, each with its own tracked connection and its own script cache.
:class:`ClusterBackend` keeps the slot map (redis-py's ``RedisCluster`` topology) and routes
by the object's hash key. A ``MOVED`` or ``ASK`` reply (the slot moved: resharding, a
failover) or a lost primary refreshes the map and sends the operation again to the slot's
new primary (a write keeps its operation id, so it is applied once: the primaries share one
:class:`~redis_memory.core.writers.Writers`); a per-object setting
(``ttl=``, bounds, validators, ``offline=``) follows the object to whichever primary serves it.

Queries across objects (``find``, ``count``, ``ids``, ``cleanup``, ``find_raw``, message
search) run on every primary (:meth:`ClusterBackend.primaries`) and are merged by
``redis_memory.search``. A write that cannot reach its slot's primary within
``REDIS_MEMORY_RETRY_FOR`` is journaled by the cluster's journal
(:class:`~redis_memory.cluster_journal.ClusterJournal`), and replayed to whichever primary
holds its slot once one answers.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from typing import Any

import redis
import redis.cluster

from redis_memory.backend import Backend, default_journal
from redis_memory.cluster_journal import ClusterJournal
from redis_memory.core.layout import WRITE_OPS, checked, g_stored_layout
from redis_memory.core.mirror import ProxyFactory
from redis_memory.core.writers import Writers
from redis_memory.counters import Stats
from redis_memory.errors import RedisConnectionError, ServerError
from redis_memory.keys import KeySpace, meta_key
from redis_memory.redaction import redact

# The Backend methods that act on one object: their first argument is its KeySpace.
ROUTED = frozenset(
    {
        "assign", "bound", "check_edit", "clear_all", "compare_and_set", "configure", "delete", "doc_ops",
        "incr", "list_op", "names", "push", "read", "set_op", "snapshot", "transaction", "validate_element",
        "wait_list", "known", "forget_known",
    }
)  # fmt: skip
_KEYED = frozenset({"SISMEMBER", "SMISMEMBER", "LLEN", "LRANGE", "HGET", "HMGET", "EXISTS", "TYPE", "PTTL"})
_MOVES = ("MOVED", "ASK", "TRYAGAIN", "CLUSTERDOWN")
_MOVED_ERRORS = (
    redis.exceptions.MovedError,
    redis.exceptions.AskError,
    redis.exceptions.TryAgainError,
    redis.exceptions.ClusterDownError,
)
_ATTEMPTS = 5


def moved(exc: BaseException) -> bool:
    """Whether a reply says the slot is served elsewhere (or not served for a moment)."""
    cause = exc.__cause__
    return isinstance(cause, _MOVED_ERRORS) or (isinstance(exc, ServerError) and str(exc).startswith(_MOVES))


def by_owner(owners: list[Any]) -> list[tuple[Any, list[int]]]:
    """Each distinct owner (a primary's backend) with the positions it owns, in first-seen order."""
    groups: dict[int, tuple[Any, list[int]]] = {}
    for index, owner in enumerate(owners):
        groups.setdefault(id(owner), (owner, []))[1].append(index)
    return list(groups.values())


def place(rows: list[Any], indexes: list[int], part: list[Any]) -> None:
    """Put one primary's answers (``part``, in the order of ``indexes``) at their positions."""
    for index, row in zip(indexes, part, strict=True):
        rows[index] = row


class NodeBackend(Backend):
    """The backend of one primary inside a :class:`ClusterBackend`: its writes that cannot
    reach the primary are journaled by the cluster's journal (``shared_journal``)."""

    shared_journal: ClusterJournal | None = None

    def journal_keeper(self) -> Any:
        """The cluster's journal (None with ``REDIS_MEMORY_OFFLINE=raise``: such writes raise)."""
        return self.shared_journal


class ClusterBackend:
    """One :class:`Backend` per primary of a Redis Cluster, chosen by each object's slot."""

    def __init__(
        self,
        cluster_factory: Callable[[], redis.cluster.RedisCluster],
        label: str,
        connection_options: dict[str, Any],
        factories: dict[str, ProxyFactory] | None = None,
    ) -> None:
        """Prepare; nothing connects until the first operation. ``cluster_factory`` makes the
        redis-py cluster client whose topology is used; ``connection_options`` are the
        keyword arguments of each primary's connection pool (credentials, TLS, timeouts)."""
        self.label = redact(label, mask="***")
        self._cluster_factory = cluster_factory
        self._cluster: redis.cluster.RedisCluster | None = None
        self._options = connection_options
        # The containers a node hands out write through this router, not through the node, so
        # a list held across a failover follows its slot to the new primary.
        self._factories = {kind: self._bound(make) for kind, make in (factories or {}).items()}
        self._nodes: dict[tuple[str, int], Backend] = {}
        self._settings: dict[str, tuple[tuple[Any, ...], dict[str, Any]]] = {}  # hash key -> configure()
        self._configured: dict[tuple[str, int], set[str]] = {}
        self._raise_offline: set[str] = set()
        self._lock = threading.RLock()
        journal = default_journal()
        self.offline = ClusterJournal(self, journal) if journal is not None else None
        self.writers = Writers(resends=True)  # shared by the primaries' backends (core/writers.py)
        self.layouts: set[str] = set()  # prefixes whose layout record was checked (core/layout.py)

    def _bound(self, make: ProxyFactory) -> ProxyFactory:
        """A proxy factory whose containers write through this router."""
        return lambda core, space, name, items: make(self, space, name, items)

    # -- topology -----------------------------------------------------------------------------

    def _topology(self) -> redis.cluster.RedisCluster:
        with self._lock:
            if self._cluster is None:
                try:
                    self._cluster = self._cluster_factory()
                except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError) as exc:
                    raise RedisConnectionError(f"cannot reach the Redis Cluster at {self.label}: {exc}") from exc
                except redis.exceptions.RedisClusterException as exc:
                    raise ServerError(f"not a usable Redis Cluster at {self.label}: {exc}") from exc
            return self._cluster

    def refresh(self) -> None:
        """Read the slot map again (after a MOVED reply, or a primary that stopped answering)."""
        cluster = self._topology()
        with self._lock, contextlib.suppress(redis.exceptions.RedisError, OSError):
            cluster.nodes_manager.initialize()  # on failure the old map stays until a node answers

    @property
    def backlog(self) -> int:
        """How many of this process's journaled writes wait for the cluster."""
        return self.offline.backlog if self.offline is not None else 0

    def flush_journal(self, timeout: float | None = None) -> bool:
        """Wait until every write this process journaled for the cluster has reached it (True),
        or until ``timeout`` seconds have passed (False)."""
        return self.offline.flush_journal(timeout) if self.offline is not None else True

    def node_for(self, space: KeySpace) -> Backend:
        """The backend of the primary that holds ``space``'s slot (configured for it)."""
        return self._node_for_key(space.hash_key, space)

    def node_for_key(self, key: str) -> Backend:
        """The backend of the primary that holds ``key``'s slot."""
        return self._node_for_key(key)

    def moved_away(self, key: str) -> bool:
        """Whether ``key``'s slot, once the slot map is read again, is held by another primary
        than the one the map named (a failover or a resharding happened meanwhile)."""
        before = self._node_for_key(key)
        self.refresh()
        try:
            return self._node_for_key(key) is not before
        except (RedisConnectionError, ServerError):
            return False

    def _node_for_key(self, key: str, space: KeySpace | None = None) -> Backend:
        cluster = self._topology()
        node = cluster.nodes_manager.get_node_from_slot(cluster.keyslot(key))  # type: ignore[no-untyped-call]
        address = (str(node.host), int(node.port))
        with self._lock:
            backend = self._nodes.get(address)
            if backend is None:
                backend = self._nodes[address] = self._node_backend(*address)
            if space is not None and space.hash_key in self._settings:
                done = self._configured.setdefault(address, set())
                if space.hash_key not in done:
                    args, kwargs = self._settings[space.hash_key]
                    backend.configure(space, *args, **kwargs)
                    done.add(space.hash_key)
        return backend

    def _node_backend(self, host: str, port: int) -> Backend:
        options = {**self._options, "host": host, "port": port}
        backend = NodeBackend(
            lambda: redis.ConnectionPool(**options),
            f"{self.label} ({host}:{port})",
            self._factories,
            server_id=f"{host}:{port}/0",
        )
        backend.journal = None  # the cluster's journal keeps its writes (see the module docstring)
        backend.shared_journal = self.offline
        backend.writers = self.writers
        backend.layouts, backend.layout_by_router = self.layouts, True
        return backend

    def primaries(self) -> list[Backend]:
        """A backend for every primary of the cluster (queries across objects run on each)."""
        cluster = self._topology()
        with self._lock:
            backends = []
            for node in cluster.get_primaries():  # type: ignore[no-untyped-call]
                address = (str(node.host), int(node.port))
                backend = self._nodes.get(address)
                if backend is None:
                    backend = self._nodes[address] = self._node_backend(*address)
                backend.index_tag = self._tag_on(cluster, node.name)  # type: ignore[attr-defined]
                backends.append(backend)
            return backends

    @staticmethod
    def _tag_on(cluster: redis.cluster.RedisCluster, node_name: str) -> str:
        """A hash tag whose slot ``node_name`` holds: names (an index's) made with it live there."""
        for attempt in range(100_000):
            tag = f"{{n{attempt}}}"
            owner = cluster.nodes_manager.get_node_from_slot(cluster.keyslot(tag))  # type: ignore[no-untyped-call]
            if owner.name == node_name:
                return tag
        raise ServerError(f"no slot of the cluster is held by {node_name}")

    def backends(self) -> list[Backend]:
        """The primaries' backends made so far."""
        with self._lock:
            return list(self._nodes.values())

    # -- routing ----------------------------------------------------------------------------------

    def _check_layout(self, prefix: str) -> None:
        """The layout record under ``prefix`` (in the slot of ``<prefix>__meta__``), checked
        once before the first operation there: :func:`redis_memory.core.layout.g_check_layout`.
        Skipped while the cluster cannot be reached (writes are journaled meanwhile)."""
        try:
            reply = self._node_for_key(meta_key(prefix)).drive(g_stored_layout(prefix))
        except RedisConnectionError:
            return
        except ServerError as exc:
            if not moved(exc):
                raise
            self.refresh()  # asked again before the next operation
            return
        checked(prefix, reply)
        self.layouts.add(prefix)

    def _routed(self, name: str, space: KeySpace, *args: Any, **kwargs: Any) -> Any:
        if self.offline is not None:
            self.offline.adopt_if_due()
        if space.prefix not in self.layouts and f"g_{name}" in WRITE_OPS | {"g_clear_all", "g_transaction"}:
            self._check_layout(space.prefix)
        try:
            for attempt in range(_ATTEMPTS):
                backend = self.node_for(space)
                try:
                    return getattr(backend, name)(space, *args, **kwargs)
                except ServerError as exc:
                    if not moved(exc) or attempt == _ATTEMPTS - 1:
                        raise
                except RedisConnectionError:  # a write whose reply was lost keeps its id for the resend
                    if attempt == _ATTEMPTS - 1:
                        raise
                self.refresh()  # the slot moved, or its primary is gone: ask the cluster again
                time.sleep(0.05 * attempt)
            raise AssertionError("unreachable")
        finally:
            self.writers.release_kept()

    def configure(self, space: KeySpace, *args: Any, **kwargs: Any) -> None:
        """:meth:`Backend.configure`, remembered so it follows the object to another primary."""
        with self._lock:
            self._settings[space.hash_key] = (args, kwargs)
            for done in self._configured.values():
                done.discard(space.hash_key)
            if kwargs.get("offline") == "raise":
                self._raise_offline.add(space.hash_key)
        self.node_for(space)

    def __getattr__(self, name: str) -> Any:
        if name in ROUTED:
            return lambda space, *args, **kwargs: self._routed(name, space, *args, **kwargs)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def execute(self, *args: Any) -> Any:
        """A raw command on one key (routed by it). A command without a key (``FT.SEARCH``,
        ``SCAN``) has no one primary to go to: queries run it on each (:meth:`primaries`)."""
        if len(args) > 1 and str(args[0]).upper() in _KEYED:
            return self._node_for_key(str(args[1])).execute(*args)
        raise ServerError(
            f"{args[0]} has no one primary to run on in a Redis Cluster: run it on each of primaries()"
            " (docs/cluster.md)"
        )

    def execute_many(self, commands: Any) -> list[Any]:
        """Not available on a cluster (see :meth:`execute`)."""
        return [self.execute(*command) for command in commands]

    def drive(self, op: Any) -> Any:
        """Refused: an operation runs on one object's primary (the routed methods), and a query
        across objects on each primary (:meth:`primaries`)."""
        raise ServerError("an operation across objects has no one primary to run on in a Redis Cluster")

    def fetch(self, spaces: list[KeySpace], names: list[str]) -> list[dict[str, Any]]:
        """:meth:`Core.g_fetch` per primary (two pipelined round trips to each), merged in order."""
        rows: list[dict[str, Any]] = [{} for _ in spaces]
        for backend, indexes in by_owner([self.node_for(space) for space in spaces]):
            place(rows, indexes, backend.drive(backend.g_fetch([spaces[i] for i in indexes], names)))
        return rows

    @property
    def stats(self) -> Stats:
        """Every primary's counts, added."""
        total = Stats()
        for backend in self.backends():
            total.add(backend.stats)
        if self.offline is not None:
            total.add(self.offline.stats)
        return total

    def close(self) -> None:
        """Close every connection; the next operation reconnects."""
        with self._lock:
            nodes, self._nodes = list(self._nodes.values()), {}
            self._configured.clear()
            cluster, self._cluster = self._cluster, None
        for backend in nodes:
            backend.close()
        if cluster is not None:
            cluster.close()
