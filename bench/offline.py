"""The offline journal case (no server): writes journaled to SQLite while Redis refuses connections."""

from __future__ import annotations

import socket
import sys
import tempfile
import time
import uuid
from pathlib import Path

from common import check_line

from redis_memory import ConversationMemory, connections
from redis_memory.journal import Journal

JOURNAL_RATE_LIMIT = 5_000  # journaled writes per second while Redis is unreachable


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (connections to it are refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def offline_journal(writes: int) -> None:
    """Time writes journaled to SQLite while Redis refuses connections; check the journal's depth."""
    out = sys.stdout.write
    url = f"redis://127.0.0.1:{free_port()}/0"
    with tempfile.TemporaryDirectory(prefix="rm-journal-") as directory:
        backend = connections.backend_for(url=url)
        backend.retry_for = 0  # fail over to the journal at once
        journal = backend.journal = Journal(Path(directory) / "journal.sqlite3")
        try:
            mem = ConversationMemory("journal-bench", url=url, prefix=f"bench-{uuid.uuid4().hex[:10]}:")
            mem.state = "first"  # refused: fails over to the journal (later writes queue behind it)
            if connections.stats()[url]["journal_depth"] != 1:
                raise AssertionError("the first offline write was not journaled")
            clock = time.perf_counter
            start = clock()
            for i in range(writes):
                if i % 2:
                    mem.incr("turns")
                else:
                    mem.state = f"s{i}"
            seconds = clock() - start
            depth = connections.stats()[url]["journal_depth"]
            last_state = mem.state  # the last known value, served offline
        finally:
            with backend._lock:  # the replay thread, on its next attempt, finds itself "forked" and stops
                backend._pid = -2
            journal.close()
    rate = writes / seconds
    out(f"\noffline journal: {url} refuses connections; writes journaled to SQLite (WAL, synchronous=NORMAL)\n")
    out(
        f"  {writes:,} writes (mem.state = ... / mem.incr('turns') alternately) after the first fail-over: "
        f"{seconds:.3f} s, {1e6 * seconds / writes:.0f} us per write\n"
    )
    out(
        check_line(
            rate >= JOURNAL_RATE_LIMIT, f"journaled writes while offline >= {JOURNAL_RATE_LIMIT:,}/s: {rate:,.0f}/s"
        )
    )
    expected_state = f"s{writes - 2 + writes % 2}" if writes else "first"
    out(
        check_line(
            depth == writes + 1 and last_state == expected_state,
            f"journal_depth {depth:,} == {writes + 1:,} writes made (the first fail-over + {writes:,}); "
            f"last known state {last_state!r}",
        )
    )
