"""What every operation does, without doing I/O: the core shared by the sync and async APIs.

Each operation is a generator (:mod:`~redis_memory.core.requests`): it yields a ``Script``
(EVALSHA of one of the package's Lua scripts, :mod:`~redis_memory.core.scripts`) or a
``Command`` (one plain Redis command), receives the reply, and returns its result. A driver
runs it: :class:`redis_memory.backend.Backend` on one tracked connection,
:class:`redis_memory.aio.backend.AsyncBackend` on redis-py's asyncio client. Errors reach the
generator already translated to the public ones (:mod:`~redis_memory.core.replies`); a lost
connection is resent by the policy in :mod:`~redis_memory.core.retry`.

The core also holds what both drivers need to know between operations
(:class:`~redis_memory.core.operations.Core`): the mirrors (:mod:`~redis_memory.core.mirror`,
local copies of collections kept valid by client tracking; the async driver keeps none),
each object's sliding expiry and list bounds, the writes queued by open transactions
(:mod:`~redis_memory.core.transactions`), and the journaled writes and last known values
used while Redis cannot be reached (:mod:`~redis_memory.core.offline`).
"""
