"""The sync driver's offline journal: adopting what ended processes left, replaying, flushing.

A part of :class:`redis_memory.backend.Backend` (mixed into it). Journaled writes are replayed
oldest first by a flusher thread once Redis answers, each with its operation id (applied once)
and the time it was made (last writer wins); see docs/reliability.md.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import math
import os
import threading
import time
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import redis
import redis.exceptions

from redis_memory import observer
from redis_memory.core.offline import settled, unsettled
from redis_memory.core.replies import SCRIPT_ERRORS
from redis_memory.core.requests import Command, Request, Script, is_write
from redis_memory.core.retry import LOST

if TYPE_CHECKING:
    from redis_memory.counters import Stats
    from redis_memory.journal import Entry

logger = logging.getLogger("redis_memory.backend")  # one logger for the sync driver (docs/observability.md)

ADOPT_EVERY = 5.0  # seconds between looks for writes journaled by processes that ended
REPLAY_WAIT = 1.0  # the longest a replay (or a request while writes wait) waits for a reply


# Set at interpreter exit: flusher threads stop between two replays and are joined, so none is
# frozen halfway (inside an import, say) while the interpreter finalizes; what they had not
# replayed stays in the journal, for the next process to adopt.
_EXITING = threading.Event()
_FLUSHERS: weakref.WeakSet[threading.Thread] = weakref.WeakSet()


def _stop_flushers() -> None:
    _EXITING.set()
    for thread in list(_FLUSHERS):
        thread.join(timeout=2 * REPLAY_WAIT + 1)


atexit.register(_stop_flushers)


def start_flusher(run: Callable[[], None], name: str) -> threading.Thread | None:
    """Start a daemon thread replaying a journal (joined at interpreter exit); None when the
    process is ending: what waits then stays in the journal, for the next process."""
    if _EXITING.is_set():
        return None
    thread = threading.Thread(target=run, name=name, daemon=True)
    _FLUSHERS.add(thread)
    thread.start()
    return thread


class JournalReplay:
    """The journal part of the sync driver (mixed into :class:`~redis_memory.backend.Backend`)."""

    if TYPE_CHECKING:  # what it uses of the driver
        journal: Any  # a Journal, or None when journaling is off
        server_id: str
        backlog: int
        label: str
        stats: Stats
        _lock: threading.RLock
        _flusher: threading.Thread | None
        _backlog_pid: int
        _next_adoption: float

        _json_module: bool | None

        def forget_mirrors(self) -> None: ...
        def _ensure(self, timeout: float | None = None) -> redis.Redis: ...
        def _execute(self, request: Request) -> Any: ...
        def _lost(self) -> None: ...
        def _lost_at(self, exc: BaseException, window: float) -> None: ...
        def _answered(self) -> None: ...
        def _capped(self, timeout: float | None) -> contextlib.AbstractContextManager[None]: ...

    def _adopt(self) -> None:
        """Take over the journaled writes for this server that ended processes left, and
        replay them (at the first connection, then at most every few seconds: a crashed
        writer's journal does not wait for a new process)."""
        self._next_adoption = time.monotonic() + ADOPT_EVERY
        if self.journal is None or not self.journal.path.exists():
            return
        self.backlog = self.journal.adopt(self.server_id)
        if self.backlog:
            self._replay()
            if self.backlog:
                self.journal_started()

    def journal_started(self) -> None:
        """Start the thread that replays the journal once Redis answers (if not running)."""
        if self._flusher is None or not self._flusher.is_alive():
            self._flusher = start_flusher(self._flush, "redis-memory-journal")

    def _flush(self) -> None:
        delay = 0.05
        while not _EXITING.is_set():
            with self._lock:
                if self._backlog_pid != os.getpid():  # a forked child does not replay its parent's
                    return
                self._replay()
                if not self.backlog:
                    self._flusher = None
                    return
            _EXITING.wait(delay)
            delay = min(delay * 2, 2.0)

    def _replay(self) -> None:
        """Replay this process's journal for the server, oldest first, until it is empty or
        Redis cannot be reached (call with the lock held). A write Redis refuses (a conflict:
        a later assignment won, the attribute changed kind...) is dropped and logged."""
        if observer.active is not None:
            observer.active.replay(self, self._replay_journal)
            return
        self._replay_journal()

    def _replay_journal(self) -> None:
        journal = self.journal
        replayed = 0
        while True:
            try:
                self._ensure(REPLAY_WAIT)  # before reading an entry: a first connection replays them itself
                entry = journal.first(self.server_id)
                if entry is None:
                    self.backlog = 0
                    break
                self.replay_entry(entry)
            except LOST as exc:
                self._lost()
                self._lost_at(exc, 0.0)
                logger.debug("Redis at %s still unreachable (%s): %d writes wait", self.label, exc, self.backlog)
                break
            except redis.exceptions.ResponseError as exc:
                code = str(exc).partition(" ")[0]
                self.stats.counts["conflicts"] += 1
                level = logging.WARNING if code in SCRIPT_ERRORS else logging.ERROR
                logger.log(level, "journaled write %s to %s dropped on replay: %s", entry.seq, entry.keys[0], exc)
            journal.remove(entry.seq)
            replayed += 1
            self.stats.counts["replayed"] += 1
            self.backlog = max(0, self.backlog - 1)
        if replayed:
            self.forget_mirrors()  # our own replayed writes are not pushed to us (NOLOOP)
            logger.info("replayed %d journaled writes to %s", replayed, self.label)

    def replay_entry(self, entry: Entry) -> None:
        """Send one journaled write, with the time it was made, on this driver's connection
        (call with the lock held, connected). Raises what the request raised: a lost
        connection, or Redis's refusal."""
        args = list(entry.args)
        if is_write(Script(entry.script, entry.keys, args)):
            args[2] = str(entry.made_at)  # the write's time: last writer wins (lib.lua)
        if unsettled(entry.script, args):
            args = settled(entry.script, args, self._json_flag_for(entry.keys[0]))
        with self._capped(REPLAY_WAIT):  # the lock is held: never longer than this
            self._execute(Script(entry.script, entry.keys, args))
        self._answered()

    def _json_flag_for(self, hash_key: str) -> str:
        """Whether the server has RedisJSON (``"1"``/``"0"``), asked as the core asks it
        (JSON.TYPE of the object's own hash), for a write journaled before anyone knew."""
        if self._json_module is None:
            try:
                with self._capped(REPLAY_WAIT):
                    self._execute(Command(("JSON.TYPE", hash_key)))
                self._json_module = True
            except redis.exceptions.ResponseError as exc:  # WRONGTYPE: RedisJSON is there
                self._json_module = "unknown command" not in str(exc).lower()
        return "1" if self._json_module else "0"

    def flush_journal(self, timeout: float | None = None) -> bool:
        """Wait until every write this process journaled has reached Redis (True), or until
        ``timeout`` seconds have passed (False)."""
        deadline = math.inf if timeout is None else time.monotonic() + timeout
        while self.backlog:
            if time.monotonic() >= deadline:
                return False
            with self._lock:
                if self.backlog:
                    self._replay()
            if self.backlog:
                time.sleep(0.05)
        return True
