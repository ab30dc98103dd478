"""Transactions open in the current thread or asyncio task: the writes they queue, per object.

The table of open transactions is replaced, never changed in place: asyncio tasks share their
parent's table by reference, and must not see each other's transactions.
"""

from __future__ import annotations

import contextvars
from dataclasses import dataclass, field
from typing import Any

from redis_memory import codec
from redis_memory.errors import TransactionError
from redis_memory.keys import kind_field

Queue = list[tuple[str, str, list[str]]]  # (op name, key, op args) in the order they were made


@dataclass(eq=False)
class OpenTransaction:
    """The writes queued by one open transaction on one object."""

    open: bool = True  # a task created inside the block keeps seeing it after the block ends
    queue: Queue = field(default_factory=list)
    documents: dict[str, tuple[str, str, Any]] = field(default_factory=dict)  # key -> (name, sha1, doc)


# Open transactions of this thread or asyncio task: (id of the core, hash key) -> transaction.
_TRANSACTIONS: contextvars.ContextVar[dict[tuple[int, str], OpenTransaction] | None] = contextvars.ContextVar(
    "redis_memory_transactions", default=None
)


def current(owner: object, hash_key: str) -> OpenTransaction | None:
    """The transaction open on object ``hash_key`` of core ``owner`` here, if any."""
    open_ones = _TRANSACTIONS.get()
    found = None if open_ones is None else open_ones.get((id(owner), hash_key))
    return found if found is not None and found.open else None


def begin(owner: object, hash_key: str) -> None:
    """Open a transaction on object ``hash_key`` of core ``owner`` in the current thread or task."""
    open_ones = dict(_TRANSACTIONS.get() or {})
    found = open_ones.get((id(owner), hash_key))
    if found is not None and found.open:
        raise TransactionError("a transaction is already open on this memory here")
    open_ones[(id(owner), hash_key)] = OpenTransaction()
    _TRANSACTIONS.set(open_ones)


def end(owner: object, hash_key: str) -> Queue:
    """Close the transaction on object ``hash_key``; return its queued ops (documents changed
    without RedisJSON become one compare-and-set each)."""
    open_ones = dict(_TRANSACTIONS.get() or {})
    transaction = open_ones.pop((id(owner), hash_key))
    transaction.open = False
    _TRANSACTIONS.set(open_ones)
    queue = transaction.queue
    for key, (name, expected, document) in transaction.documents.items():
        queue.append(("doc_cas", key, [kind_field(name), expected, codec.dumps(document)]))
    return queue
