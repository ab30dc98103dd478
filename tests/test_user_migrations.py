"""The user's own migrations: applied in order, recorded, reverted, applied once under a lock."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from redis_memory import ConversationMemory, MigrationError
from redis_memory.migrations import user
from tests.servers import RedisProcess

FIRST = """
import time

def up(ctx):
    for mem in ctx.memories():
        mem.topic = "general"
    ctx.memory("log").runs = ctx.memory("log").runs + ["0001"] if hasattr(ctx.memory("log"), "runs") else ["0001"]
    time.sleep(0.3)

def down(ctx):
    for mem in ctx.memories():
        if hasattr(mem, "topic"):
            del mem.topic
"""
SECOND = """
id = "0002_rename"

def up(ctx):
    ctx.memory("log").runs.append("0002")

def down(ctx):
    ctx.memory("log").runs.append("-0002")
"""
FAILING = """
def up(ctx):
    raise ValueError("boom")

def down(ctx):
    pass
"""


def write(directory: Path, files: dict[str, str]) -> Path:
    directory.mkdir(exist_ok=True)
    for name, text in files.items():
        (directory / name).write_text(textwrap.dedent(text))
    return directory


def test_up_status_down(server: RedisProcess, prefix: str, tmp_path: Path) -> None:
    folder = write(tmp_path / "m", {"0001_topic.py": FIRST, "0002_rename.py": SECOND})
    ConversationMemory("c1", url=server.url, prefix=prefix).state = "active"
    opts = {"url": server.url, "prefix": prefix}
    assert [(s.id, s.applied) for s in user.status(folder, **opts)] == [("0001_topic", False), ("0002_rename", False)]
    assert user.up(folder, dry_run=True, **opts) == ["0001_topic", "0002_rename"]
    assert not user.status(folder, **opts)[0].applied
    assert user.up(folder, target="0001_topic", **opts) == ["0001_topic"]
    assert ConversationMemory("c1", url=server.url, prefix=prefix).topic == "general"
    assert user.up(folder, **opts) == ["0002_rename"]
    states = user.status(folder, **opts)
    assert all(s.applied and s.applied_at is not None for s in states)
    assert user.up(folder, **opts) == []  # a second run is a no-op
    log = ConversationMemory("log", url=server.url, prefix=prefix)
    assert log.runs == ["0001", "0002"]
    assert user.down(folder, **opts) == ["0002_rename"]
    assert log.runs == ["0001", "0002", "-0002"]
    assert user.down(folder, steps=5, **opts) == ["0001_topic"]
    assert not hasattr(ConversationMemory("c1", url=server.url, prefix=prefix), "topic")
    assert [s.applied for s in user.status(folder, **opts)] == [False, False]


def test_failing_migration_is_not_recorded(server: RedisProcess, prefix: str, tmp_path: Path) -> None:
    folder = write(tmp_path / "m", {"0001_topic.py": FIRST, "0002_fail.py": FAILING, "0003_rename.py": SECOND})
    opts = {"url": server.url, "prefix": prefix}
    with pytest.raises(MigrationError, match=r"0002_fail.*boom"):
        user.up(folder, **opts)
    assert [(s.id, s.applied) for s in user.status(folder, **opts)] == [
        ("0001_topic", True),
        ("0002_fail", False),
        ("0002_rename", False),
    ]
    with pytest.raises(MigrationError, match=r"must define"):
        user.status(write(tmp_path / "bad", {"0001.py": "def up(ctx): pass\n"}), **opts)


def test_concurrent_up_applies_once(server: RedisProcess, prefix: str, tmp_path: Path) -> None:
    folder = write(tmp_path / "m", {"0001_topic.py": FIRST, "0002_rename.py": SECOND})
    code = (
        "import sys; from redis_memory.migrations import user; "
        "print(user.up(sys.argv[1], url=sys.argv[2], prefix=sys.argv[3]))"
    )
    runs = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(folder), server.url, prefix], stdout=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    outputs = sorted(run.communicate(timeout=60)[0].strip() for run in runs)
    assert [run.returncode for run in runs] == [0, 0]
    assert outputs == ["['0001_topic', '0002_rename']", "[]"]
    assert ConversationMemory("log", url=server.url, prefix=prefix).runs == ["0001", "0002"]
