"""Index changes without downtime: build the new version, switch the alias, drop the old one.

Queries reach a class's index through its label's alias (``<prefix>idx:<label>``, see
:mod:`redis_memory.search.index`). :func:`swap_index` makes a changed definition the one the
alias points at::

    report = swap_index(Ticket, url=url)   # or an IndexSpec
    report.old, report.new                 # the index names before and after

1. FT.CREATE the new version (its name carries its definition's digest) beside the old one,
   and wait until RediSearch has indexed the existing hashes in the background;
2. FT.ALIASUPDATE (FT.ALIASADD when there is no alias yet): from that command on, every query
   through the alias answers from the new version;
3. FT.DROPINDEX the old version, without ``DD``: the documents are the objects' own hashes and
   are never deleted. Older versions of the same label that no alias points at are dropped too.

Queries keep answering throughout: before step 2 from the old version, after it from the new
one; nothing is ever missing from either. On a Redis Cluster every primary's index is swapped
the same way. Without RediSearch there are no indexes and the report says so (``problems``).
Running it again changes nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import redis

from redis_memory.config import resolve_prefix
from redis_memory.connections import backend_for
from redis_memory.search.index import (
    IndexSpec,
    alias_target,
    create_index,
    forget_indexes,
    search_module,
    spec_for,
)

__all__ = ["IndexReport", "swap_index"]


@dataclass(frozen=True, slots=True)
class IndexReport:
    """What :func:`swap_index` did (or, with ``dry_run``, would do).

    ``old``: the index names the alias pointed at before, and older versions dropped (one per
    primary on a cluster); ``new``: the index name the alias points at after (without a
    cluster's hash tag); ``created`` / ``dropped``: how many indexes were (would be) created and
    dropped; ``switched``: whether the alias was (would be) moved.
    """

    dry_run: bool
    alias: str
    new: str
    old: list[str] = field(default_factory=list)
    created: int = 0
    dropped: int = 0
    switched: bool = False
    problems: list[str] = field(default_factory=list)


def swap_index(
    spec_or_class: IndexSpec | type,
    *,
    dry_run: bool = False,
    url: str | None = None,
    client: redis.Redis | None = None,
    prefix: str | None = None,
) -> IndexReport:
    """Make the label's alias point at ``spec_or_class``'s index (a memory class: the index its
    ``find`` uses), built first if needed, and drop the versions it replaces (never their
    documents). ``dry_run``: only report what would be done."""
    spec = spec_or_class if isinstance(spec_or_class, IndexSpec) else spec_for(spec_or_class)
    backend = backend_for(url=url, client=client)
    resolved = resolve_prefix(prefix)
    primaries = getattr(backend, "primaries", None)
    nodes = list(primaries()) if primaries is not None else [backend]
    alias, new = spec.alias(resolved), spec.name(resolved)
    old: list[str] = []
    created = dropped = 0
    switched = False
    problems: list[str] = []
    for node in nodes:
        if not search_module(node):
            problems.append(f"RediSearch is not loaded on {node.label}: no index to swap")
            continue
        tag = getattr(node, "index_tag", "")
        node_alias, node_new = alias + tag, new + tag
        current = alias_target(node, node_alias)
        stale = _versions(node, spec, resolved, tag) - {node_new}
        if current is not None and current != node_new:
            stale.add(current)
        old += sorted(stale)
        if dry_run:
            created += int(node_new not in _versions(node, spec, resolved, tag))
            dropped += len(stale)
            switched = switched or current != node_new
            continue
        created += int(create_index(node, spec, node_new))
        if current is None:
            node.execute("FT.ALIASADD", node_alias, node_new)
        elif current != node_new:
            node.execute("FT.ALIASUPDATE", node_alias, node_new)
        switched = switched or current != node_new
        for name in sorted(stale):
            node.execute("FT.DROPINDEX", name)  # without DD: the objects' hashes stay
            dropped += 1
        forget_indexes(node)
    return IndexReport(dry_run, alias, new, old, created, dropped, switched, problems)


def _versions(node: object, spec: IndexSpec, prefix: str, tag: str) -> set[str]:
    """Every index of ``spec``'s label under ``prefix`` on ``node``: FT._LIST, names matched
    exactly (``<prefix>idx:<label>:<10 hex digits><tag>``)."""
    pattern = re.compile(re.escape(spec.alias(prefix) + ":") + "[0-9a-f]{10}" + re.escape(tag))
    names = node.execute("FT._LIST")  # type: ignore[attr-defined]
    found = (name.decode() if isinstance(name, bytes) else str(name) for name in names)
    return {name for name in found if pattern.fullmatch(name)}
