"""``ConversationMemory.find / count / ids / cleanup``: what the classmethods run."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import redis

from redis_memory.config import resolve_prefix
from redis_memory.connections import backend_for
from redis_memory.errors import InvalidNameError
from redis_memory.keys import KeySpace, parse_hash_key
from redis_memory.search import messages
from redis_memory.search.filters import check_tag_values, parse
from redis_memory.search.index import object_keys, raw_search, search, spec_for
from redis_memory.search.messages import MessageMatch

M = TypeVar("M")


def _connection(url: str | None, client: redis.Redis | None, prefix: str | None) -> tuple[Any, str]:
    return backend_for(url=url, client=client), resolve_prefix(prefix)


def find(
    cls: type[M],
    filters: Mapping[str, object],
    *,
    sort_by: str | None,
    limit: int | None,
    offset: int,
    url: str | None,
    client: redis.Redis | None,
    prefix: str | None,
) -> tuple[int, list[M]]:
    """``(number of matches, the memories of this page)``, opened with the same settings."""
    if limit is not None and (type(limit) is not int or limit < 0):
        raise ValueError(f"limit must be an int >= 0 or None, not {limit!r}")
    if type(offset) is not int or offset < 0:
        raise ValueError(f"offset must be an int >= 0, not {offset!r}")
    backend, resolved = _connection(url, client, prefix)
    spec = spec_for(cls)
    parsed = parse(filters, spec.fields)
    check_tag_values(parsed)
    nodes = _nodes(backend)
    if len(nodes) == 1:
        total, ids = search(nodes[0], resolved, parsed, sort_by=sort_by, offset=offset, limit=limit, spec=spec)
    else:
        total, ids = _fanned_out(nodes, resolved, parsed, sort_by=sort_by, offset=offset, limit=limit, spec=spec)
    options: dict[str, Any] = {"prefix": resolved}
    options.update({"client": client} if client is not None else {"url": url})
    make: Any = cls
    return total, [make(found, **options) for found in ids]


def _nodes(backend: Any) -> list[Any]:
    """The backends a query across objects runs on: every primary of a Redis Cluster (each
    answers for the objects whose slots it holds), else the one server's."""
    primaries = getattr(backend, "primaries", None)
    return list(primaries()) if primaries is not None else [backend]


def _fanned_out(
    nodes: list[Any], prefix: str, parsed: Any, *, sort_by: str | None, offset: int, limit: int | None, spec: Any
) -> tuple[int, list[str]]:
    """A query run on every primary (its own index, or its own scan), merged as one server
    would answer it: the totals added, the pages merged by the sort field, then offset and
    limit applied. Each primary is asked for its first ``offset + limit`` matches."""
    window = None if limit is None else offset + limit
    total, found = 0, []
    for node in nodes:
        count, ids = search(node, prefix, parsed, sort_by=sort_by, offset=0, limit=window, spec=spec)
        total += count
        if ids:
            if sort_by:
                field = sort_by.lstrip("-")
                spaces = [KeySpace(prefix, found_id) for found_id in ids]
                rows = node.fetch(spaces, [field])
                found += [(row.get(field), found_id) for row, found_id in zip(rows, ids, strict=True)]
            else:
                found += [(None, found_id) for found_id in ids]
    if sort_by:
        present = sorted(
            (item for item in found if item[0] is not None), key=_sort_key, reverse=sort_by.startswith("-")
        )
        found = present + [item for item in found if item[0] is None]  # no value: last, as RediSearch puts them
    merged = [found_id for _, found_id in found]
    return total, merged[offset:] if limit is None else merged[offset : offset + limit]


def _sort_key(item: tuple[Any, str]) -> Any:
    value = item[0]
    if isinstance(value, datetime):
        return (0, value.timestamp(), item[1])
    if isinstance(value, (int, float)):
        return (0, float(value), item[1])
    return (1, str(value).lower(), item[1])


def find_raw(
    cls: type[M],
    query: str,
    params: dict[str, str] | None,
    *,
    limit: int,
    offset: int,
    url: str | None,
    client: redis.Redis | None,
    prefix: str | None,
) -> list[M]:
    """The memories a hand-written RediSearch query finds (see ``search.index.raw_search``)."""
    backend, resolved = _connection(url, client, prefix)
    spec = spec_for(cls)
    nodes = _nodes(backend)
    if len(nodes) == 1:
        _, found_ids = raw_search(nodes[0], resolved, query, params, offset=offset, limit=limit, spec=spec)
    else:  # each primary's first offset + limit, in the order of the primaries (no sort is asked)
        found_ids = [
            found
            for node in nodes
            for found in raw_search(node, resolved, query, params, offset=0, limit=offset + limit, spec=spec)[1]
        ][offset : offset + limit]
    options: dict[str, Any] = {"prefix": resolved}
    options.update({"client": client} if client is not None else {"url": url})
    make: Any = cls
    return [make(found, **options) for found in found_ids]


def search_messages(
    text: str | None,
    filters: Mapping[str, object],
    *,
    limit: int | None,
    offset: int,
    url: str | None,
    client: redis.Redis | None,
    prefix: str | None,
) -> tuple[int, list[MessageMatch]]:
    """``(number of matches, this page)`` of a message search (see ``search.messages``)."""
    backend, resolved = _connection(url, client, prefix)
    return messages.search_messages(backend, resolved, text, filters, offset=offset, limit=limit)


def ids(url: str | None, client: redis.Redis | None, prefix: str | None) -> list[str]:
    """Every object id under the prefix: SCAN, never KEYS; sorted."""
    backend, resolved = _connection(url, client, prefix)
    return sorted(
        found
        for node in _nodes(backend)
        for key in object_keys(node, resolved)
        if (found := parse_hash_key(key, resolved)) is not None
    )


def cleanup(
    cls: type[M],
    older_than: timedelta,
    *,
    field: str,
    dry_run: bool,
    url: str | None,
    client: redis.Redis | None,
    prefix: str | None,
) -> list[str]:
    """Delete every conversation whose ``field`` (a datetime ``cls`` indexes) is older than
    ``older_than``."""
    if not isinstance(older_than, timedelta):
        raise TypeError(f"older_than must be a timedelta, not {type(older_than).__name__}")
    if spec_for(cls).fields.get(field) != "NUMERIC":
        raise InvalidNameError(f"{field!r} is not an indexed datetime field")
    cutoff = datetime.now(UTC) - older_than
    _, found = find(
        cls, {f"{field}__lt": cutoff}, sort_by=None, limit=None, offset=0, url=url, client=client, prefix=prefix
    )
    removed = [memory.memory_id for memory in found]  # type: ignore[attr-defined]
    if not dry_run:
        for memory in found:
            memory.clear()  # type: ignore[attr-defined]
    return removed
