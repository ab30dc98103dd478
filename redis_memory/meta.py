"""The layout record of a database, for tools: ``redis-memory doctor``, migrations.

The record is the hash ``<prefix>__meta__``; the first write under a prefix makes it (see
:mod:`redis_memory.core.layout`, which also refuses to write into a newer layout).
"""

from __future__ import annotations

from typing import Any

import redis
import redis.cluster

from redis_memory.config import resolve_prefix
from redis_memory.connections import backend_for
from redis_memory.core.layout import LAYOUT_VERSION
from redis_memory.keys import meta_key

__all__ = ["LAYOUT_VERSION", "layout_record", "layout_version"]


def layout_record(
    *, url: str | None = None, client: redis.Redis | redis.cluster.RedisCluster | None = None, prefix: str | None = None
) -> dict[str, str]:
    """The layout record under ``prefix`` (``layout``, ``created_at``, ``created_by``), empty
    when nothing was written there yet. HMGET; one round trip."""
    backend: Any = backend_for(url=url, client=client)
    key = meta_key(resolve_prefix(prefix))
    fields = backend.execute("HMGET", key, "layout", "created_at", "created_by")
    names = ("layout", "created_at", "created_by")
    return {
        name: value.decode() if isinstance(value, bytes) else str(value)
        for name, value in zip(names, fields, strict=True)
        if value is not None
    }


def layout_version(
    *, url: str | None = None, client: redis.Redis | redis.cluster.RedisCluster | None = None, prefix: str | None = None
) -> int | None:
    """The storage layout the data under ``prefix`` is in, or None before its first write
    (this library writes :data:`LAYOUT_VERSION`)."""
    found = layout_record(url=url, client=client, prefix=prefix).get("layout")
    return int(found) if found is not None else None
