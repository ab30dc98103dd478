"""The offline journal on a Redis Cluster: writes that cannot reach their slot's primary.

One :class:`ClusterJournal` per :class:`~redis_memory.cluster.ClusterBackend` keeps this
process's journaled writes for the whole cluster (server id ``cluster <label>`` in the
journal file every process shares), so that they survive the process and are replayed
wherever their slot is served by then: after a failover, the entries a dead primary could not
take go to the replica that took over its slots.

Order is kept per object, not across the cluster: while an object has journaled writes
waiting (:meth:`ClusterJournal.journals_behind`), its later writes are journaled behind them
and its reads serve the last known values, as on one server; objects on the primaries that
answer are written at once. A replay pass (:meth:`ClusterJournal.replay`, run by a flusher
thread with backoff) sends the entries oldest first, each to the primary holding its slot
(read from the slot map, which a pass that met a lost primary or a ``MOVED`` reply refreshes);
an object one of whose entries could not be sent keeps the rest of its entries for the next
pass, so nothing overtakes a write made before it. Each entry keeps its operation id (applied
once) and the time it was made (last writer wins).
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from typing import TYPE_CHECKING, Any, Protocol

import redis.exceptions

from redis_memory.core.replies import SCRIPT_ERRORS
from redis_memory.core.requests import QUEUED, Script
from redis_memory.core.retry import LOST
from redis_memory.counters import Stats
from redis_memory.errors import RedisConnectionError, ServerError
from redis_memory.journal import Entry, Journal
from redis_memory.keys import KeySpace
from redis_memory.replay import _EXITING, ADOPT_EVERY, start_flusher

if TYPE_CHECKING:
    from redis_memory.backend import Backend

logger = logging.getLogger("redis_memory.backend")

_MOVED = (
    redis.exceptions.MovedError,
    redis.exceptions.AskError,
    redis.exceptions.TryAgainError,
    redis.exceptions.ClusterDownError,
)


class Router(Protocol):
    """What the journal uses of :class:`redis_memory.cluster.ClusterBackend`."""

    label: str

    def node_for_key(self, key: str) -> Backend: ...
    def moved_away(self, key: str) -> bool: ...
    def refresh(self) -> None: ...
    def backends(self) -> list[Backend]: ...


class ClusterJournal:
    """This process's journaled writes for one Redis Cluster, and their replay (see the module)."""

    def __init__(self, router: Router, journal: Journal) -> None:
        """The journal of ``router``'s cluster, in the shared ``journal`` file."""
        self.router = router
        self.journal = journal
        self.server_id = f"cluster {router.label}"
        self.label = router.label
        self.stats = Stats()  # journaled (the replays are counted by the primary replayed to)
        self._pending: dict[str, int] = {}  # hash key of an object -> its entries waiting
        # Lock order: a primary's lock is held while a write is journaled, so the journaling
        # takes only _counts (held for nothing else); a replay pass holds _lock, then takes
        # each primary's lock in turn; _starting guards the flusher thread.
        self._lock = threading.RLock()
        self._counts = threading.Lock()
        self._starting = threading.Lock()
        self._flusher: threading.Thread | None = None
        self._pid = os.getpid()
        self._next_adoption = 0.0

    def _this_process(self) -> dict[str, int]:
        if self._pid != os.getpid():  # a forked child: the entries are its parent's to replay
            self._pending, self._flusher, self._pid = {}, None, os.getpid()
            self._next_adoption = 0.0
        return self._pending

    @property
    def backlog(self) -> int:
        """How many of this process's journaled writes wait for the cluster."""
        with self._counts:
            return sum(self._this_process().values())

    def journals_behind(self, space: KeySpace) -> bool:
        """Whether ``space`` has journaled writes waiting: its writes then queue behind them."""
        return self._this_process().get(space.hash_key, 0) > 0

    def _journal_write(self, request: Script) -> Any:
        """Journal a write a primary could not take (called by the primary's core). When the
        slot map, read again, names another primary for the object (a failover happened), and
        none of its writes wait here, the write is not journaled: ``RedisConnectionError``
        sends it back to the router, which sends it to the new primary."""
        key = request.keys[0]
        if not self._this_process().get(key) and self.router.moved_away(key):
            raise RedisConnectionError(f"the slot of {key!r} is served by another primary now")
        self.journal.append(self.server_id, request.name, list(request.keys), list(request.args))
        with self._counts:
            pending = self._this_process()
            pending[request.keys[0]] = pending.get(request.keys[0], 0) + 1
            self.stats.counts["journaled"] += 1
        logger.info("a primary of %s is unreachable: write journaled (%d waiting)", self.label, self.backlog)
        self.journal_started()
        return QUEUED

    # -- adoption and replay ------------------------------------------------------------------------

    def adopt_if_due(self) -> None:
        """Take over the entries processes that ended left for this cluster (at the first
        operation, then at most every few seconds), and replay them."""
        self._this_process()
        if time.monotonic() < self._next_adoption:
            return
        with self._lock:
            self._next_adoption = time.monotonic() + ADOPT_EVERY
            if not self.journal.path.exists() or not self.journal.adopt(self.server_id):
                return
            pending: dict[str, int] = {}
            for entry in self._entries():
                pending[entry.keys[0]] = pending.get(entry.keys[0], 0) + 1
            with self._counts:
                self._pending = pending
        self.journal_started()

    def _entries(self) -> list[Entry]:
        found: list[Entry] = []
        while batch := self.journal.entries(self.server_id, after=found[-1].seq if found else 0):
            found += batch
        return found

    def journal_started(self) -> None:
        """Start the thread that replays the journal as primaries answer (if not running)."""
        with self._starting:
            if self._flusher is None or not self._flusher.is_alive():
                self._flusher = start_flusher(self._flush, "redis-memory-cluster-journal")

    def _flush(self) -> None:
        delay = 0.05
        while not _EXITING.is_set():
            if self._pid != os.getpid():
                return
            self.replay()
            with self._starting:
                if not self.backlog:
                    self._flusher = None
                    return
            _EXITING.wait(delay)
            delay = min(delay * 2, 2.0)

    def replay(self) -> int:
        """One pass over this process's entries, oldest first, each sent to the primary holding
        its slot; return how many are left. An object one of whose entries could not be sent
        (its primary unreachable, or the slot moving) keeps the rest for the next pass."""
        with self._lock:
            pending = self._this_process()
            blocked: set[str] = set()  # objects whose next entry could not be sent
            unreachable: set[int] = set()  # primaries that did not answer in this pass
            replayed: set[int] = set()
            trouble = False
            for entry in self._entries():
                key = entry.keys[0]
                if key in blocked:
                    continue
                try:
                    node = self.router.node_for_key(key)
                except (RedisConnectionError, ServerError):
                    blocked.add(key)
                    trouble = True
                    continue
                if id(node) in unreachable:
                    blocked.add(key)
                    continue
                outcome = self._send(node, entry)
                if outcome in ("lost", "moved"):  # not taken: this object waits for the next pass
                    if outcome == "lost":
                        unreachable.add(id(node))
                    blocked.add(key)
                    trouble = True
                    continue
                self.journal.remove(entry.seq)
                replayed.add(id(node))
                with self._counts:
                    left = pending.get(key, 1) - 1
                    if left > 0:
                        pending[key] = left
                    else:
                        pending.pop(key, None)
            if trouble:
                self.router.refresh()
            if replayed:
                for node in self.router.backends():
                    if id(node) in replayed:
                        node.forget_mirrors()  # our own replayed writes are not pushed to us (NOLOOP)
            return self.backlog

    def _send(self, node: Backend, entry: Entry) -> str:
        """Replay one entry on ``node``: ``"applied"``; ``"dropped"`` when Redis refused it (a
        conflict, as on one server); ``"lost"`` or ``"moved"`` when it did not get there."""
        with node._lock:
            try:
                node._ensure(1.0)
                node.replay_entry(entry)
            except LOST as exc:
                node._lost()
                node._lost_at(exc, 0.0)
                node._down = True
                return "lost"
            except redis.exceptions.ResponseError as exc:
                if isinstance(exc, _MOVED):
                    return "moved"
                code = str(exc).partition(" ")[0]
                node.stats.counts["conflicts"] += 1
                level = logging.WARNING if code in SCRIPT_ERRORS else logging.ERROR
                logger.log(level, "journaled write %s to %s dropped on replay: %s", entry.seq, entry.keys[0], exc)
                return "dropped"
            node.stats.counts["replayed"] += 1
            return "applied"

    def flush_journal(self, timeout: float | None = None) -> bool:
        """Wait until every write this process journaled for the cluster has reached it
        (True), or until ``timeout`` seconds have passed (False)."""
        deadline = math.inf if timeout is None else time.monotonic() + timeout
        while self.replay():
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)
        return True
