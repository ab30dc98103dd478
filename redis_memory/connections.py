"""The backends of this process: one per server, shared by every memory object that uses it.

Every memory object that resolves to the same server (:mod:`redis_memory.config`) in one
process shares one :class:`~redis_memory.backend.Backend`: one connection, not one per
operation. The asyncio API (:mod:`redis_memory.aio`) makes its own backends and has them
counted here (:func:`count`), so :func:`stats` covers both APIs.
"""

from __future__ import annotations

import threading
import weakref
from typing import Any

import redis
import redis.cluster

from redis_memory.backend import Backend
from redis_memory.cluster import ClusterBackend
from redis_memory.config import POOL_OPTIONS, cluster_wanted, reachable, server_identity, target, url_identity
from redis_memory.counters import Stats
from redis_memory.observer import Observed
from redis_memory.proxies.list import list_proxy
from redis_memory.proxies.set import RedisSet

_FACTORIES: dict[str, Any] = {"list": list_proxy, "set": RedisSet}
_lock = threading.Lock()
_by_url: dict[str, Backend] = {}
_clusters: dict[str, ClusterBackend] = {}
_cluster_clients: weakref.WeakKeyDictionary[redis.cluster.RedisCluster, ClusterBackend] = weakref.WeakKeyDictionary()
_by_client: weakref.WeakKeyDictionary[redis.Redis, Backend] = weakref.WeakKeyDictionary()


_counted: weakref.WeakSet[Observed] = weakref.WeakSet()  # the asyncio API's backends, while they live


def backend_for(
    *,
    url: str | None = None,
    client: redis.Redis | redis.cluster.RedisCluster | None = None,
    host: str | None = None,
    port: int | None = None,
    cluster: bool | None = None,
) -> Any:
    """The shared backend for these connection settings (created on first use): a
    :class:`Backend`, or a :class:`~redis_memory.cluster.ClusterBackend` for a
    ``redis.cluster.RedisCluster`` client, or a URL with ``cluster=True`` (default:
    ``$REDIS_CLUSTER`` is ``1``, or the URL was opened as a cluster before in this process)."""
    if isinstance(client, redis.cluster.RedisCluster):
        return _cluster_for_client(client)
    if client is None:
        wanted = cluster if cluster is not None else (cluster_wanted() or target(url, host, port) in _clusters)
        if wanted:  # (a URL opened as a cluster in this process stays one: queries find it too)
            return _cluster_for_url(target(url, host, port))
    if client is not None:
        with _lock:
            found = _by_client.get(client)
            if found is None:
                server_id = server_identity(client.connection_pool.connection_kwargs)
                found = _by_client[client] = Backend(
                    _pool_from_client(client), repr(client), _FACTORIES, server_id=server_id
                )
                weakref.finalize(client, found.close)  # the client is gone: so is our connection to its server
            return found
    resolved = target(url, host, port)  # nothing starts until the backend connects
    with _lock:
        found = _by_url.get(resolved)
        if found is None:
            pool_factory = lambda: redis.ConnectionPool.from_url(reachable(resolved), **POOL_OPTIONS)  # noqa: E731
            found = _by_url[resolved] = Backend(pool_factory, resolved, _FACTORIES, server_id=url_identity(resolved))
        return found


TOPOLOGY_TIMEOUT = 2.0  # seconds a node may take to answer for the slot map


def _cluster_for_url(resolved: str) -> ClusterBackend:
    with _lock:
        found = _clusters.get(resolved)
        if found is None:
            options = {**redis.connection.parse_url(resolved), **POOL_OPTIONS}  # type: ignore[no-untyped-call]
            options.pop("db", None)
            # The slot map is read with short timeouts: a frozen node costs a refresh seconds, not forever.
            factory = lambda: redis.cluster.RedisCluster.from_url(  # noqa: E731
                resolved, socket_connect_timeout=TOPOLOGY_TIMEOUT, socket_timeout=TOPOLOGY_TIMEOUT
            )
            found = _clusters[resolved] = ClusterBackend(factory, resolved, options, _FACTORIES)
        return found


def _cluster_for_client(client: redis.cluster.RedisCluster) -> ClusterBackend:
    with _lock:
        found = _cluster_clients.get(client)
        if found is None:
            options = {**client.nodes_manager.connection_kwargs, **POOL_OPTIONS}
            for name in ("host", "port", "db", "retry", "cache", "cache_config", "decode_responses", "encoding"):
                options.pop(name, None)
            options.update(POOL_OPTIONS)
            found = _cluster_clients[client] = ClusterBackend(lambda: client, repr(client), options, _FACTORIES)
            weakref.finalize(client, found.close)
        return found


def _pool_from_client(client: redis.Redis) -> Any:
    pool = client.connection_pool
    options = {**pool.connection_kwargs, **POOL_OPTIONS}
    return lambda: redis.ConnectionPool(connection_class=pool.connection_class, **options)


def count(backend: Observed) -> None:
    """Report ``backend`` (one of the asyncio API's) in :func:`stats` for as long as it lives."""
    with _lock:
        _counted.add(backend)


def stats() -> dict[str, dict[str, Any]]:
    """What each server's backends in this process have done: operations, round trips,
    resends after a lost connection (``retries``), journaled / replayed writes, conflicts
    dropped on replay, errors, ``journal_depth`` (writes waiting for Redis) and latency per
    operation (count, mean and max in ms). Keyed by server (URL or client).

    The sync and the asyncio API's backends are keyed alike, by their label (the URL, or the
    client's repr); backends with the same label (the two APIs on one URL) are reported as
    one entry: counts added, latencies combined."""
    with _lock:
        backends: list[Observed] = [*_by_url.values(), *_by_client.values(), *_counted]
        for routed in [*_clusters.values(), *_cluster_clients.values()]:
            backends.extend(routed.backends())
            if routed.offline is not None:  # its journal: journaled writes and depth, by the cluster's label
                backends.append(routed.offline)
    merged: dict[str, tuple[Stats, int]] = {}
    for backend in backends:
        total, depth = merged.get(backend.label, (Stats(), 0))
        merged[backend.label] = (total.add(backend.stats), depth + backend.backlog)
    return {label: {**total.snapshot(), "journal_depth": depth} for label, (total, depth) in merged.items()}


def reset() -> None:
    """Close every shared backend of this process (tests and long-lived apps switching servers)."""
    with _lock:
        backends: list[Any] = [*_by_url.values(), *_by_client.values(), *_clusters.values(), *_cluster_clients.values()]
        _by_url.clear()
        _by_client.clear()
        _clusters.clear()
        _cluster_clients.clear()
    for backend in backends:
        backend.close()
