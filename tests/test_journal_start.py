"""Many processes using a fresh offline journal at the same moment: every write is journaled."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from redis_memory.journal import Journal
from tests.test_faults import ROOT, free_port

WRITER = """
import sys, time
from redis_memory import ConversationMemory
start = float(sys.argv[1])
mem = ConversationMemory("c" + sys.argv[2], url=sys.argv[3], prefix="busy:")
time.sleep(max(0.0, start - time.time()))
for n in range(10):
    mem.turns = n
print("ok")
"""


def test_processes_opening_a_fresh_journal_together_journal_every_write(tmp_path: Path) -> None:
    home = tmp_path / "home"
    url = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens: every write is journaled
    environment = {**os.environ, "REDIS_MEMORY_HOME": str(home), "REDIS_MEMORY_RETRY_FOR": "0", "PYTHONPATH": str(ROOT)}
    start = time.time() + 3
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(start), str(n), url],
            env=environment,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(12)
    ]
    results = [writer.communicate(timeout=120) for writer in writers]
    assert [writer.returncode for writer in writers] == [0] * 12, [err for _, err in results if err]
    journal = Journal(home / "journal.sqlite3")
    rows = journal._run("SELECT COUNT(*) FROM entries")
    journal.close()
    assert rows == [(120,)]
