"""The ``redis-memory`` command line, run through its real entry point (subprocesses): output
and exit codes, on both kinds of server."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis

from redis_memory import ConversationMemory
from tests.servers import RedisProcess

SCRIPT = str(Path(sys.executable).with_name("redis-memory"))


def cli(*args: str, server: RedisProcess | None = None, prefix: str | None = None, env: dict[str, str] | None = None,
        stdin: str | None = None) -> subprocess.CompletedProcess[str]:  # fmt: skip
    """Run the console script with --url/--prefix of the test's server."""
    shared = [*(["--url", server.url] if server else []), *(["--prefix", prefix] if prefix else [])]
    return subprocess.run(
        [SCRIPT, *shared, *args], capture_output=True, text=True, timeout=120, env={**os.environ, **(env or {})},
        input=stdin, check=False,
    )  # fmt: skip


def as_json(done: subprocess.CompletedProcess[str]) -> Any:
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def seed(server: RedisProcess, prefix: str) -> None:
    now = datetime.now(UTC)
    for number, (state, age) in enumerate([("active", 1), ("closed", 10), ("active", 30)]):
        mem = ConversationMemory(f"c{number}", url=server.url, prefix=prefix)
        mem.state = state
        mem.last_activity = now - timedelta(days=age)
        mem.total_messages = number + 1
        mem.messages = [{"role": "user", "content": f"hello {number}"}]


def test_ls_show_find_json_and_text(server: RedisProcess, prefix: str) -> None:
    seed(server, prefix)
    listing = as_json(cli("--json", "ls", server=server, prefix=prefix))
    assert listing["total"] == 3
    assert [row["id"] for row in listing["conversations"]] == ["c0", "c1", "c2"]
    assert [row["state"] for row in listing["conversations"]] == ["active", "closed", "active"]
    assert [row["messages"] for row in listing["conversations"]] == [1, 2, 3]
    page = as_json(cli("--json", "ls", "--limit", "2", "--page", "2", server=server, prefix=prefix))
    assert [row["id"] for row in page["conversations"]] == ["c2"] and page["offset"] == 2
    text = cli("ls", server=server, prefix=prefix)
    assert text.returncode == 0 and "c1" in text.stdout and "closed" in text.stdout

    found = as_json(cli("--json", "find", "state=active", "last_activity__lt=7d", server=server, prefix=prefix))
    assert [row["id"] for row in found["conversations"]] == ["c2"] and found["total"] == 1
    found = as_json(cli("--json", "find", "total_messages__gte=2", "--sort-by", "total_messages", server=server,
                        prefix=prefix))  # fmt: skip
    assert [row["id"] for row in found["conversations"]] == ["c1", "c2"]
    bad = cli("find", "state", server=server, prefix=prefix)
    assert bad.returncode == 2 and "key=value" in bad.stderr

    shown = as_json(cli("--json", "show", "c1", server=server, prefix=prefix))
    assert shown["messages"] == [{"role": "user", "content": "hello 1"}]
    assert shown["attributes"]["state"] == "closed" and shown["attributes"]["total_messages"] == 2
    text = cli("show", "c1", server=server, prefix=prefix)
    assert text.returncode == 0 and "[user] hello 1" in text.stdout and "state: closed" in text.stdout
    missing = cli("show", "nope", server=server, prefix=prefix)
    assert missing.returncode == 1 and missing.stderr.startswith("redis-memory: error: ")
    assert len(missing.stderr.splitlines()) == 1 and "Traceback" not in missing.stderr
    debug = cli("--debug", "show", "nope", server=server, prefix=prefix)
    assert debug.returncode == 1 and "Traceback" in debug.stderr


def test_cleanup_dry_run_then_for_real(server: RedisProcess, prefix: str) -> None:
    seed(server, prefix)
    dry = as_json(cli("--json", "cleanup", "--older-than", "7d", "--dry-run", server=server, prefix=prefix))
    assert dry == {"dry_run": True, "ids": ["c1", "c2"]}
    assert ConversationMemory.ids(url=server.url, prefix=prefix) == ["c0", "c1", "c2"]
    done = cli("cleanup", "--older-than", "7d", server=server, prefix=prefix)
    assert done.returncode == 0 and "deleted 2 conversations" in done.stdout
    assert ConversationMemory.ids(url=server.url, prefix=prefix) == ["c0"]
    bad = cli("cleanup", "--older-than", "soon", server=server, prefix=prefix)
    assert bad.returncode == 2 and "duration" in bad.stderr


def test_export_then_import(server: RedisProcess, prefix: str, tmp_path: Path) -> None:
    seed(server, prefix)
    target = tmp_path / "dump.jsonl"
    exported = cli("export", "--output", str(target), server=server, prefix=prefix)
    assert exported.returncode == 0 and "exported 3 objects" in exported.stderr
    assert len(target.read_text().splitlines()) == 4  # a header and three objects
    other = prefix + "copy:"
    imported = as_json(cli("--json", "import", str(target), server=server, prefix=other))
    assert imported["objects"] == 3 and imported["dry_run"] is False
    assert ConversationMemory("c1", url=server.url, prefix=other).state == "closed"
    refused = cli("import", str(target), server=server, prefix=other)
    assert refused.returncode == 1 and refused.stderr.startswith("redis-memory: error: ")
    piped = cli("export", "c0", server=server, prefix=prefix)
    assert piped.returncode == 0 and len(piped.stdout.splitlines()) == 2
    third = prefix + "third:"
    dry = cli("import", "-", "--dry-run", server=server, prefix=third, stdin=piped.stdout)
    assert dry.returncode == 0 and dry.stdout.startswith("would import 1 objects"), dry.stderr
    assert ConversationMemory.ids(url=server.url, prefix=third) == []
    replaced = as_json(cli("import", "-", "--overwrite", "--json", server=server, prefix=other, stdin=piped.stdout))
    assert replaced["objects"] == 1 and replaced["replaced"] == 1


def test_doctor(server: RedisProcess, prefix: str) -> None:
    seed(server, prefix)
    ConversationMemory.count(url=server.url, prefix=prefix, state="active")  # creates the index (with RediSearch)
    report = as_json(cli("--json", "doctor", server=server, prefix=prefix))
    assert report["ok"] is True and report["problems"] == [] and report["layout_version"] == 1
    assert report["redis_version"].count(".") == 2 and report["journal_depth"] == 0
    if "search" in report["modules"]:
        assert report["indexes"] and all(index["num_docs"] == 3 for index in report["indexes"])
    else:
        assert report["indexes"] == []
    text = cli("doctor", server=server, prefix=prefix)
    assert text.returncode == 0 and "layout version: 1" in text.stdout and text.stdout.endswith("ok\n")
    raw = redis.Redis.from_url(server.url)
    raw.hset(f"{prefix}__meta__", "layout", "99")
    if "search" in report["modules"]:  # a NUMERIC field that holds no number: an indexing failure
        raw.hset(f"{prefix}{{broken}}", "total_messages", "many")
    newer = cli("--json", "doctor", server=server, prefix=prefix)
    problems = json.loads(newer.stdout)["problems"]
    assert newer.returncode == 1 and "newer" in problems[0]
    if "search" in report["modules"]:
        assert any("indexing failures" in problem for problem in problems), problems
    raw.close()


def test_unreachable_redis_exits_3() -> None:
    for command in (["ls"], ["doctor", "--json"]):
        done = cli("--url", "redis://127.0.0.1:1", *command)
        assert done.returncode == 3, command
        assert done.stderr.startswith("redis-memory: error: cannot reach Redis") and len(done.stderr.splitlines()) == 1
        assert done.stdout == ""


def test_show_follow_prints_new_messages_until_sigint(server: RedisProcess, prefix: str) -> None:
    mem = ConversationMemory("live", url=server.url, prefix=prefix)
    mem.messages = [{"role": "user", "content": "first"}]
    with subprocess.Popen(
        [SCRIPT, "--url", server.url, "--prefix", prefix, "show", "live", "--follow"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    ) as follower:  # fmt: skip
        assert follower.stdout is not None
        lines = [follower.stdout.readline() for _ in range(3)]  # the header, "messages (1):", the message
        assert lines[-1] == "[user] first\n", lines
        writer = f"from redis_memory import ConversationMemory as C; C('live', url={server.url!r}, prefix={prefix!r}).messages.extend([{{'role': 'assistant', 'content': 'second'}}, {{'role': 'user', 'content': 'third'}}])"  # noqa: E501
        subprocess.run([sys.executable, "-c", writer], check=True, timeout=60)
        assert follower.stdout.readline().rstrip("\n") == "[assistant] second"
        assert follower.stdout.readline().rstrip("\n") == "[user] third"
        follower.send_signal(signal.SIGINT)
        assert follower.wait(timeout=30) == 0
        rest, errors = follower.communicate(timeout=30)
        assert rest == "" and "Traceback" not in errors


def test_migrate_legacy_dry_run_then_for_real(server: RedisProcess, prefix: str) -> None:
    legacy = prefix + "old:"
    raw = redis.Redis.from_url(server.url)
    stamp = 1_700_000_000_000_000_000
    raw.set(f"{legacy}c9:state", json.dumps({"value": "active", "last_modified": stamp}))
    raw.set(f"{legacy}c9:messages", json.dumps({"value": [{"role": "user", "content": "hi"}], "last_modified": stamp}))
    dry = as_json(cli("--json", "migrate", "legacy", "--legacy-prefix", legacy, "--dry-run", server=server,
                      prefix=prefix))  # fmt: skip
    assert dry["dry_run"] is True and dry["conversations"] == 1 and dry["attributes"] == 2 and dry["problems"] == []
    assert ConversationMemory.ids(url=server.url, prefix=prefix) == []
    done = cli("migrate", "legacy", "--legacy-prefix", legacy, "--delete-legacy", server=server, prefix=prefix)
    assert done.returncode == 0 and done.stdout.startswith("migrated 1 conversations"), done.stderr
    shown = as_json(cli("show", "c9", "--json", server=server, prefix=prefix))  # --json after the command
    assert shown["messages"] == [{"role": "user", "content": "hi"}] and shown["attributes"] == {"state": "active"}
    assert raw.exists(f"{legacy}c9:state") == 0
    raw.close()


MIGRATION = """
from redis_memory import ConversationMemory


def up(ctx):
    ConversationMemory("c0", url=ctx.url, prefix=ctx.prefix).topic = "{topic}"


def down(ctx):
    mem = ConversationMemory("c0", url=ctx.url, prefix=ctx.prefix)
    {undo}
"""


def test_migrate_status_up_down(server: RedisProcess, prefix: str, tmp_path: Path) -> None:
    seed(server, prefix)
    for name, topic, undo in [("0001_topic", "billing", "del mem.topic"),
                              ("0002_retopic", "refunds", "mem.topic = 'billing'")]:  # fmt: skip
        (tmp_path / f"{name}.py").write_text(MIGRATION.format(topic=topic, undo=undo))
    folder = str(tmp_path)
    pending = as_json(cli("--json", "migrate", "status", folder, server=server, prefix=prefix))
    assert [(m["id"], m["applied"]) for m in pending["migrations"]] == [("0001_topic", False), ("0002_retopic", False)]
    dry = as_json(cli("--json", "migrate", "up", folder, "--dry-run", server=server, prefix=prefix))
    assert dry == {"dry_run": True, "applied": ["0001_topic", "0002_retopic"]}
    one = cli("migrate", "up", folder, "--target", "0001_topic", server=server, prefix=prefix)
    assert one.returncode == 0 and one.stdout == "applied: 0001_topic\n", one.stderr
    assert ConversationMemory("c0", url=server.url, prefix=prefix).topic == "billing"
    rest = cli("migrate", "up", folder, server=server, prefix=prefix)
    assert rest.stdout == "applied: 0002_retopic\n"
    assert ConversationMemory("c0", url=server.url, prefix=prefix).topic == "refunds"
    text = cli("migrate", "status", folder, server=server, prefix=prefix)
    assert text.returncode == 0 and text.stdout.count("yes") == 2
    back = as_json(cli("--json", "migrate", "down", folder, "--steps", "2", server=server, prefix=prefix))
    assert back == {"dry_run": False, "reverted": ["0002_retopic", "0001_topic"]}
    assert "topic" not in ConversationMemory("c0", url=server.url, prefix=prefix).to_dict()
    missing = cli("migrate", "up", str(tmp_path / "nowhere"), server=server, prefix=prefix)
    assert missing.returncode == 1 and missing.stderr.startswith("redis-memory: error: ")


@pytest.fixture
def embedded_home() -> Any:
    parent = Path(tempfile.mkdtemp(prefix="rmc", dir="/tmp"))
    home = parent / "h"
    yield home
    subprocess.run([SCRIPT, "server", "stop"], env={**os.environ, "REDIS_MEMORY_HOME": str(home)},
                   capture_output=True, timeout=60, check=False)  # fmt: skip
    shutil.rmtree(parent, ignore_errors=True)


def test_server_start_status_stop(embedded_home: Path) -> None:
    env = {"REDIS_MEMORY_HOME": str(embedded_home)}
    stopped = cli("server", "status", env=env)
    assert stopped.returncode == 1 and stopped.stdout.startswith("not running")
    started = cli("--json", "server", "start", env=env)
    assert as_json(started) == {"running": True, "socket": str(embedded_home / "redis.sock")}
    assert cli("server", "status", env=env).stdout.startswith("running at ")
    assert cli("server", "stop", env=env).stdout == "stopped\n"
    again = cli("server", "stop", env=env)
    assert again.returncode == 1 and again.stdout == "not running\n"
    assert cli("server", "status", env=env).returncode == 1
    usage = cli("server", "explode", env=env)
    assert usage.returncode == 2
