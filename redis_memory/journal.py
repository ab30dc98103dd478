"""The offline journal: writes made while Redis cannot be reached, kept on disk until replayed.

A write that cannot reach Redis (after the driver's retries) is appended to a SQLite
database in WAL mode, ``<data dir>/journal.sqlite3`` (see :func:`redis_memory.server.data_dir`;
the directory is mode 0700 and the file 0600), as the exact script call that would have
been sent: script name, keys, arguments (with the write's operation id), the server it was
meant for and when it was made. While a server has journaled writes, later writes to it are
journaled behind them, so they reach Redis in the order they were made. A flusher thread
replays them, oldest first, when Redis answers again; a process that starts and finds
entries left by a process that has ended (crash or exit) adopts and replays them.

Durability: every append is committed before the write returns. With the default
``synchronous=NORMAL`` a commit survives the process being killed; ``REDIS_MEMORY_JOURNAL_SYNC=full``
also makes it survive a power loss (an fsync per write). A full disk makes the write raise
:class:`~redis_memory.errors.JournalError`; nothing is dropped silently.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from redis_memory.errors import JournalError

logger = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    server TEXT NOT NULL,
    owner TEXT NOT NULL,
    made_at INTEGER NOT NULL,
    script TEXT NOT NULL,
    keys TEXT NOT NULL,
    args TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS entries_by_server ON entries (server, seq);
"""


_BUSY_SECONDS = 30  # how long a journal operation waits for another process's lock


def _busy(exc: sqlite3.OperationalError) -> bool:
    return "locked" in str(exc) or "busy" in str(exc)


@dataclass(frozen=True, slots=True)
class Entry:
    """One journaled write: the script call, and when it was made (ms since the epoch)."""

    seq: int
    server: str
    made_at: int
    script: str
    keys: list[str]
    args: list[str]


def _start_time(pid: int) -> str | None:
    """When process ``pid`` started (clock ticks since boot), None if there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            return "?"
        return "?"
    return stat.rsplit(")", 1)[1].split()[19]


_OWNER: tuple[int, str] = (-1, "")


def owner_token(pid: int | None = None) -> str:
    """This process's name in the journal: pid and start time (a reused pid is another owner)."""
    global _OWNER
    if pid is None:
        if _OWNER[0] != os.getpid():  # read once per process (and again after fork)
            _OWNER = (os.getpid(), f"{os.getpid()}:{_start_time(os.getpid())}")
        return _OWNER[1]
    return f"{pid}:{_start_time(pid)}"


def _alive(owner: str) -> bool:
    pid_text, _, started = owner.partition(":")
    try:
        pid = int(pid_text)
    except ValueError:
        return False
    now = _start_time(pid)
    return now is not None and (now == started or "?" in (now, started))


class Journal:
    """The journal file of one data directory, shared by every process and thread using it."""

    def __init__(self, path: Path, *, sync: str | None = None) -> None:
        """Open (or create) the journal at ``path``."""
        self.path = path
        self._lock = threading.Lock()
        self._pid = -1
        self._db: sqlite3.Connection | None = None
        self._sync = (sync or os.environ.get("REDIS_MEMORY_JOURNAL_SYNC", "normal")).upper()
        if self._sync not in ("NORMAL", "FULL"):
            raise ValueError(f"REDIS_MEMORY_JOURNAL_SYNC must be 'normal' or 'full', not {self._sync.lower()!r}")

    def _connection(self) -> sqlite3.Connection:
        if self._db is not None and self._pid == os.getpid():
            return self._db
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._db, self._pid = self._open(), os.getpid()  # a busy lock while opening: _run tries again
        return self._db

    def _open(self) -> sqlite3.Connection:
        fresh = not self.path.exists()
        db = sqlite3.connect(self.path, timeout=_BUSY_SECONDS, isolation_level=None, check_same_thread=False)
        try:
            if fresh:
                os.chmod(self.path, 0o600)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(f"PRAGMA synchronous={self._sync}")
            db.executescript(_SCHEMA)
        except BaseException:
            db.close()
            raise
        return db

    def _run(self, sql: str, args: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
        """Run one statement (its own transaction). A lock another process holds is waited
        for, up to 30 s, also where SQLite's own busy handler returns at once (a fresh file
        switching to WAL, a WAL being recovered)."""
        deadline = time.monotonic() + _BUSY_SECONDS
        with self._lock:
            while True:
                try:
                    return self._connection().execute(sql, args).fetchall()
                except sqlite3.OperationalError as exc:
                    if _busy(exc) and time.monotonic() < deadline:
                        time.sleep(0.01)
                        continue
                    raise JournalError(f"the offline journal {self.path} failed: {exc}") from exc
                except sqlite3.Error as exc:
                    raise JournalError(f"the offline journal {self.path} failed: {exc}") from exc

    def append(self, server: str, script: str, keys: list[str], args: list[str]) -> int:
        """Commit one write to the journal; return its sequence number. JournalError when it
        cannot be written (a full disk, say): the write is then not made at all."""
        made_at = time.time_ns() // 1_000_000
        rows = self._run(
            "INSERT INTO entries (server, owner, made_at, script, keys, args) VALUES (?, ?, ?, ?, ?, ?) RETURNING seq",
            (server, owner_token(), made_at, script, json.dumps(keys), json.dumps(args)),
        )
        return int(str(rows[0][0]))

    def adopt(self, server: str) -> int:
        """Take over the entries for ``server`` left by processes that have ended; return how
        many entries for ``server`` this process now has to replay."""
        me = owner_token()
        owners = [str(row[0]) for row in self._run("SELECT DISTINCT owner FROM entries WHERE server = ?", (server,))]
        for owner in owners:
            if owner != me and not _alive(owner):
                self._run("UPDATE entries SET owner = ? WHERE server = ? AND owner = ?", (me, server, owner))
                logger.warning("adopting offline-journal writes left for %s by ended process %s", server, owner)
        return self.depth(server)

    def depth(self, server: str | None = None) -> int:
        """How many entries this process has to replay (for ``server``, or for every server)."""
        if server is None:
            rows = self._run("SELECT COUNT(*) FROM entries WHERE owner = ?", (owner_token(),))
        else:
            rows = self._run("SELECT COUNT(*) FROM entries WHERE server = ? AND owner = ?", (server, owner_token()))
        return int(str(rows[0][0]))

    def first(self, server: str) -> Entry | None:
        """This process's oldest entry for ``server``."""
        rows = self._run(
            "SELECT seq, server, made_at, script, keys, args FROM entries WHERE server = ? AND owner = ? "
            "ORDER BY seq LIMIT 1",
            (server, owner_token()),
        )
        return _entry(rows[0]) if rows else None

    def entries(self, server: str, after: int = 0, limit: int = 500) -> list[Entry]:
        """This process's entries for ``server`` whose sequence number is above ``after``,
        oldest first, at most ``limit`` of them."""
        rows = self._run(
            "SELECT seq, server, made_at, script, keys, args FROM entries WHERE server = ? AND owner = ? AND seq > ? "
            "ORDER BY seq LIMIT ?",
            (server, owner_token(), after, limit),
        )
        return [_entry(row) for row in rows]

    def remove(self, seq: int) -> None:
        """Forget an entry that has been replayed (or dropped as a conflict)."""
        self._run("DELETE FROM entries WHERE seq = ?", (seq,))

    def close(self) -> None:
        """Close this process's connection to the file."""
        with self._lock:
            if self._db is not None and self._pid == os.getpid():
                self._db.close()
            self._db = None


def _entry(row: tuple[object, ...]) -> Entry:
    seq, found_server, made_at, script, keys, args = row
    return Entry(int(seq), str(found_server), int(made_at), str(script), json.loads(keys), json.loads(args))  # type: ignore[call-overload, arg-type]


_journals: dict[Path, Journal] = {}
_journals_lock = threading.Lock()


def journal_for(directory: Path | None = None) -> Journal:
    """The shared journal of ``directory`` (default: the data directory)."""
    if directory is None:
        from redis_memory.server import data_dir

        directory = data_dir()
    path = directory / "journal.sqlite3"
    with _journals_lock:
        found = _journals.get(path)
        if found is None:
            found = _journals[path] = Journal(path)
        return found
