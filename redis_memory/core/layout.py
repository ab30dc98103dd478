"""The layout record: which version of the storage layout the data under a prefix is in.

The record is the hash ``<prefix>__meta__`` (``keys.meta_key``): ``layout`` (an integer),
``created_at`` (epoch seconds) and ``created_by`` (the library and version that wrote it first).
The first write a core makes under a prefix first runs :func:`g_check_layout` (one round trip,
once per prefix and process): it writes the record when there is none, and raises
:class:`~redis_memory.errors.LayoutError` when the stored layout is newer than
:data:`LAYOUT_VERSION`, before anything is written.
"""

from __future__ import annotations

import time
from typing import Any

from redis_memory.core.requests import Op, Script
from redis_memory.core.scripts import script_table
from redis_memory.errors import LayoutError, WrongTypeError
from redis_memory.keys import meta_key

# The core's operations that write: a cluster router checks the layout before the first of them
# under a prefix (its primaries' cores do not: the record lives in one slot).
WRITE_OPS = frozenset(
    {"g_assign", "g_clear", "g_commit", "g_compare_and_set", "g_delete", "g_doc_ops", "g_incr", "g_list_op",
     "g_push", "g_set_op"}
)  # fmt: skip
LAYOUT_VERSION = 1  # the storage layout this library reads and writes (docs/design.md, "Storage layout")
LIBRARY = "redis-memory 0.1.0"


def check_layout_request(prefix: str) -> Script:
    """The script (``lua/layout.lua``) that reads the layout under ``prefix``, recording this
    one if there is none."""
    return Script("layout", [meta_key(prefix)], [str(LAYOUT_VERSION), str(int(time.time())), LIBRARY])


def check_layout_command(prefix: str) -> tuple[Any, ...]:
    """The same as one EVAL command (for a cluster client, which routes it by its key)."""
    request = check_layout_request(prefix)
    return ("EVAL", script_table()["layout"][1], "1", *request.keys, *request.args)


def checked(prefix: str, reply: Any) -> None:
    """Raise :class:`LayoutError` if the layout ``reply`` names is newer than this library's."""
    text = reply.decode() if isinstance(reply, bytes) else str(reply)
    try:
        stored = int(text)
    except ValueError:
        raise LayoutError(f"the layout record {meta_key(prefix)!r} holds {text!r}, not a layout version") from None
    if stored > LAYOUT_VERSION:
        raise LayoutError(
            f"the data under prefix {prefix!r} is in storage layout {stored}, newer than layout "
            f"{LAYOUT_VERSION}, the newest this {LIBRARY} knows: upgrade redis-memory to write there "
            "(docs/migrating.md)"
        )


def not_a_record(prefix: str, exc: Exception) -> LayoutError:
    """The error for a ``<prefix>__meta__`` key of another type than a hash."""
    return LayoutError(f"{meta_key(prefix)!r} is not a layout record (a hash): {exc}")


def g_stored_layout(prefix: str) -> Op[Any]:
    """The layout stored under ``prefix`` (recording this library's if there is none)."""
    try:
        return (yield check_layout_request(prefix))
    except WrongTypeError as exc:
        raise not_a_record(prefix, exc) from exc


def g_check_layout(prefix: str) -> Op[None]:
    """Read (and record, if absent) the layout under ``prefix``; raise if it is newer."""
    checked(prefix, (yield from g_stored_layout(prefix)))
