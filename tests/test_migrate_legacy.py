"""Importing data written by the real ``redis-memory`` 0.4.3 (redis_memory.migrations.legacy).

The original shares our module name, so a session fixture installs it into a virtualenv of
its own (cached under the pytest base directory's parent) and runs a writer script there:
the original's own ``ConversationMemory`` / ``Memory`` objects name the keys and serialize
the values (``mem.<name> = value``), with their ``_connect`` answering one redis-py pipeline
so 10,000 conversations are written in a few round trips instead of two connections per
attribute (the original opens a connection per operation). The rest is the original's code.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import venv
from pathlib import Path
from typing import Any

import pytest
import redis

from redis_memory import ConversationMemory, Memory
from redis_memory.keys import migration_key
from redis_memory.migrations.legacy import migrate_legacy
from tests.servers import RedisProcess

WRITER = r"""
import json, sys, redis
from redis_memory import ConversationMemory, Memory
assert not hasattr(ConversationMemory, "transaction")  # the original package, not ours
socket, prefix, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
plain = json.loads(sys.argv[4])
client = redis.Redis(unix_socket_path=socket)
pipe = client.pipeline(transaction=False)

def opened(cls, *args):
    mem = cls(*args, redis_hostname="127.0.0.1", redis_port=1, redis_prefix=prefix)  # nothing listens there
    mem.stop_background_flush()
    mem._connect = lambda: pipe
    mem._redis_available = True
    return mem

exec(sys.argv[5])  # values(i): the attributes of conversation i
mem = opened(ConversationMemory, "c0")
for i in range(count):
    mem._conversation_id = f"c{i}"
    for name, value in values(i).items():
        setattr(mem, name, value)
    if i % 500 == 499:
        pipe.execute()
memory = opened(Memory)
for name, value in plain.items():
    setattr(memory, name, value)
pipe.execute()
"""

VALUES = r"""
def values(i):
    kinds = [
        "text %d" % i, i, i + 0.5, i % 2 == 0, None, "", [], {},
        "h\u00e9llo \u4e16\u754c \U0001f600", -(2 ** 53) - i, 1e-7 * i,
        {"nested": {"list": [1, 2.5, None, True, "x", {"deep": [[], {}]}], "n": i}},
        [{"role": "user", "content": "m%d" % i}, [1, [2, [3]]], "\u00fc", 0, False],
    ]
    chosen = {"messages": [{"role": "user", "content": "hi %d" % i}, {"role": "assistant", "content": "\u2713"}]}
    for k in range(4):
        chosen["a%d" % k] = kinds[(i + k * 5) % len(kinds)]
    return chosen
"""
PLAIN = {"greeting": "bonjour", "visits": 3, "settings": {"theme": "dark"}, "items": [1, "two", None], "nothing": None}
SCOPE: dict[str, Any] = {}
exec(VALUES, SCOPE)
values = SCOPE["values"]


@pytest.fixture(scope="session")
def original_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The interpreter of a virtualenv holding the real ``redis-memory==0.4.3`` (made once, kept)."""
    home = tmp_path_factory.getbasetemp().parent / "original-redis-memory-0.4.3"
    python = home / "bin" / "python"
    marker = home / ".installed"
    if not marker.exists():
        venv.create(home, with_pip=True, clear=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", "redis-memory==0.4.3"],
            check=True,
        )
        marker.write_text("redis-memory==0.4.3\n")
    return python


def write_original(python: Path, server: RedisProcess, prefix: str, count: int) -> None:
    """``count`` conversations (and PLAIN in ``Memory()``) written by the original package."""
    subprocess.run(
        [str(python), "-c", WRITER, str(server.socket), prefix, str(count), json.dumps(PLAIN), VALUES],
        check=True,
        cwd="/",
    )


def dump(server: RedisProcess, prefix: str) -> dict[bytes, Any]:
    """Every key under ``prefix`` with its type and value (DUMP), to compare whole databases."""
    client = server.client()
    try:
        return {key: client.dump(key) for key in client.scan_iter(match=f"{prefix}*", count=1000)}
    finally:
        client.close()


def check_all(server: RedisProcess, prefix: str, count: int) -> None:
    """Every value written by the original reads back identical, through our API."""
    ids = [f"c{i}" for i in range(count)]
    names = ["messages", "a0", "a1", "a2", "a3"]
    for start in range(0, count, 1000):
        rows = ConversationMemory.fetch(ids[start : start + 1000], names, url=server.url, prefix=prefix)
        for cid, row in rows.items():
            expected = values(int(cid[1:]))
            assert json.dumps(row, sort_keys=True) == json.dumps(expected, sort_keys=True), cid
    assert Memory(url=server.url, prefix=prefix).to_dict() == PLAIN


def test_ten_thousand_conversations_killed_resumed_and_run_again(
    original_python: Path, server: RedisProcess, prefix: str, raw: redis.Redis, tmp_path: Path
) -> None:
    count = 10_000
    write_original(original_python, server, prefix, count)
    legacy_keys = count * 5 + len(PLAIN)
    assert len(list(raw.scan_iter(match=f"{prefix}*", count=1000))) == legacy_keys

    # a run killed half-way: a subprocess whose progress callback records each batch, SIGKILLed
    marks = tmp_path / "progress"
    script = (
        "import sys, time\n"
        "from redis_memory.migrations.legacy import migrate_legacy\n"
        "def progress(done, total):\n"
        "    open(sys.argv[3], 'a').write(f'{done} {total}\\n')\n"
        "    time.sleep(0.2)\n"
        "migrate_legacy(legacy_prefix=sys.argv[2], prefix=sys.argv[2], url=sys.argv[1], batch=500, progress=progress)\n"
    )
    child = subprocess.Popen([sys.executable, "-c", script, server.url, prefix, str(marks)])
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and child.poll() is None:
        if marks.exists() and len(marks.read_text().splitlines()) >= 3:
            break
        time.sleep(0.01)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    done_before = [int(line.split()[0]) for line in marks.read_text().splitlines()]
    assert 0 < done_before[-1] < legacy_keys  # it was stopped half-way
    checkpoint = raw.hgetall(migration_key(prefix, "legacy"))
    assert checkpoint["state"] == "running" and checkpoint["position"]

    seen: list[tuple[int, int | None]] = []
    report = migrate_legacy(
        legacy_prefix=prefix, prefix=prefix, url=server.url, progress=lambda d, t: seen.append((d, t))
    )
    assert report.resumed and report.verified and report.ok, report.problems[:5]
    assert report.conversations == count and report.memories == len(PLAIN)
    assert report.attributes == legacy_keys
    assert seen[-1][0] < legacy_keys  # the resumed run did only the rest
    assert seen[-1][1] == legacy_keys
    check_all(server, prefix, count)
    assert len(raw.keys(f"{prefix}c*")) == count * 5  # old keys kept

    before = dump(server, prefix)
    again = migrate_legacy(legacy_prefix=prefix, prefix=prefix, url=server.url)
    assert again.attributes == again.conversations == again.memories == 0 and not again.resumed
    assert again.unchanged == legacy_keys and again.verified
    assert dump(server, prefix) == before  # a second run changes nothing, checkpoint included


def test_every_value_kind_dry_run_and_delete_legacy(
    original_python: Path, server: RedisProcess, prefix: str, raw: redis.Redis
) -> None:
    write_original(original_python, server, prefix, 30)
    before = dump(server, prefix)
    dry = migrate_legacy(legacy_prefix=prefix, prefix=prefix, url=server.url, dry_run=True)
    assert dry.dry_run and dry.attributes == 30 * 5 + len(PLAIN) and dry.conversations == 30
    assert not dry.verified and dump(server, prefix) == before  # nothing written, no checkpoint

    report = migrate_legacy(legacy_prefix=prefix, prefix=prefix, url=server.url, delete_legacy=True, batch=7)
    assert report.ok and report.deleted == 30 * 5 + len(PLAIN)
    check_all(server, prefix, 30)
    assert not raw.keys(f"{prefix}c*") and not raw.exists(f"{prefix}greeting")  # legacy keys gone
    mem = ConversationMemory("c3", url=server.url, prefix=prefix)
    mem.messages.append({"role": "user", "content": "after"})  # our list now
    assert mem.messages[-1] == {"role": "user", "content": "after"} and len(mem.messages) == 3


def test_ambiguous_ids_are_reported_never_merged(
    original_python: Path, server: RedisProcess, prefix: str, raw: redis.Redis
) -> None:
    script = (
        "import sys\nfrom redis_memory import ConversationMemory\n"
        "for cid, name, value in [('a', 'x', 1), ('a:b', 'messages', ['from a:b']), ('q:r', 'y', 2)]:\n"
        "    mem = ConversationMemory(cid, '127.0.0.1', int(sys.argv[1]), sys.argv[2])\n"
        "    setattr(mem, name, value)\n"
        "    mem.stop_background_flush()\n"
    )
    tcp = RedisProcess(server.directory.parent / f"tcp-{prefix[:-1]}", modules=server.modules, port=_free_port())
    tcp.start()
    try:
        subprocess.run([str(original_python), "-c", script, str(tcp.port), prefix], check=True, cwd="/")
        report = migrate_legacy(legacy_prefix=prefix, prefix=prefix, url=tcp.url)
        assert report.ambiguous == [f"{prefix}a:b:messages"]  # conversation "a", attribute "b:messages"?
        assert not report.ok and report.attributes == 2
        assert ConversationMemory("a", url=tcp.url, prefix=prefix).to_dict() == {"x": 1}
        assert ConversationMemory("a:b", url=tcp.url, prefix=prefix).to_dict() == {}
        assert ConversationMemory("q:r", url=tcp.url, prefix=prefix).to_dict() == {"y": 2}  # no other candidate
        resolved = migrate_legacy(legacy_prefix=prefix, prefix=prefix, url=tcp.url, conversation_ids=["a:b"])
        assert resolved.ok and resolved.attributes == 1 and resolved.unchanged == 2
        assert ConversationMemory("a:b", url=tcp.url, prefix=prefix).messages == ["from a:b"]
    finally:
        tcp.stop()


def test_our_own_keys_and_other_strings_are_left_alone(server: RedisProcess, prefix: str, raw: redis.Redis) -> None:
    mem = ConversationMemory("ours", url=server.url, prefix=prefix)
    mem.settings = {"value": 1, "last_modified": 2}  # the originals' shape, in one of our keys
    mem.state = "x"
    raw.set(f"{prefix}c1:note", "not json")
    raw.set(f"{prefix}c1:bad name", json.dumps({"value": 1, "last_modified": 5}))
    raw.set(f"{prefix}c1:ok", json.dumps({"value": [1, {"é": None}], "last_modified": 5}))
    before = dump(server, prefix)
    report = migrate_legacy(legacy_prefix=prefix, prefix=prefix, url=server.url)
    assert report.attributes == 1 and report.skipped == 2 and len(report.problems) == 1
    assert "bad name" in report.problems[0] and report.verified
    assert ConversationMemory("c1", url=server.url, prefix=prefix).ok == [1, {"é": None}]
    assert mem.settings == {"value": 1, "last_modified": 2} and mem.state == "x"
    after = dump(server, prefix)
    assert all(after[key] == value for key, value in before.items())  # nothing of ours rewritten
    with pytest.raises(ValueError, match="batch"):
        migrate_legacy(legacy_prefix=prefix, prefix=prefix, url=server.url, batch=0)


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_an_attribute_changed_here_since_is_kept_unless_overwrite(
    server: RedisProcess, prefix: str, raw: redis.Redis
) -> None:
    legacy = prefix + "old:"
    raw.set(f"{legacy}c1:messages", json.dumps({"value": ["old"], "last_modified": 1}))
    raw.set(f"{legacy}c1:turns", json.dumps({"value": 1, "last_modified": 1}))
    assert migrate_legacy(legacy_prefix=legacy, prefix=prefix, url=server.url).attributes == 2
    mem = ConversationMemory("c1", url=server.url, prefix=prefix)
    mem.messages.append("new")  # the application goes on
    report = migrate_legacy(legacy_prefix=legacy, prefix=prefix, url=server.url, delete_legacy=True)
    assert report.conflicts == [f"{legacy}c1:messages"] and report.attributes == 0 and report.verified
    assert report.deleted == 1 and raw.exists(f"{legacy}c1:messages")  # only the verified key deleted
    assert mem.messages == ["old", "new"]
    forced = migrate_legacy(legacy_prefix=legacy, prefix=prefix, url=server.url, overwrite=True)
    assert forced.attributes == 1 and forced.ok and mem.messages == ["old"]
