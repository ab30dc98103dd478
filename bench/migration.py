"""Legacy migration: 10,000 conversations written by the original ``redis-memory`` 0.4.3,
imported by ``redis_memory.migrations.legacy.migrate_legacy``; objects per second.

The original is the one ``original.original_python()`` installs into ``.bench-original/``;
it writes the conversations with the writer script of ``tests/test_migrate_legacy.py`` (the
original's own objects name the keys and serialize the values, one pipeline for all), five
attributes each (a message list and four values of every JSON kind, nested and unicode), plus
a few attributes of ``Memory()``. The clock covers the whole ``migrate_legacy`` run: collecting
the keys, writing them, the checkpoint after every batch and the verification pass; then a
second run (everything already identical, nothing written) is timed too.
"""

from __future__ import annotations

import subprocess
import time
import uuid
from typing import Any

import original

from redis_memory.migrations.legacy import migrate_legacy

CONVERSATIONS = 10_000


def run(server: Any, conversations: int = CONVERSATIONS) -> list[str]:
    """Write ``conversations`` with the original on ``server`` (a RedisProcess), migrate
    them, and return the report's lines."""
    import json

    from tests.test_migrate_legacy import PLAIN, VALUES, WRITER

    python = original.original_python()
    prefix = f"bm{uuid.uuid4().hex[:8]}:"
    started = time.perf_counter()
    subprocess.run(
        [str(python), "-c", WRITER, str(server.socket), prefix, str(conversations), json.dumps(PLAIN), VALUES],
        check=True,
        cwd="/",
    )
    written = time.perf_counter() - started
    started = time.perf_counter()
    report = migrate_legacy(legacy_prefix=prefix, prefix=prefix, url=server.url)
    took = time.perf_counter() - started
    started = time.perf_counter()
    again = migrate_legacy(legacy_prefix=prefix, prefix=prefix, url=server.url)
    second = time.perf_counter() - started
    assert report.ok and again.attributes == 0, report.problems[:3]
    objects = report.conversations + 1  # and Memory()
    return [
        "",
        f"legacy migration: {conversations:,} conversations written by redis-memory 0.4.3 "
        f"({report.attributes:,} attribute keys; written by the original in {written:.1f} s, pipelined)",
        f"  migrate_legacy (collect, write, checkpoint, verify): {took:.1f} s, "
        f"{objects / took:,.0f} objects/s, {report.attributes / took:,.0f} attributes/s",
        f"  second run (nothing to write): {second:.1f} s, {report.attributes / second:,.0f} attributes/s checked",
    ]
