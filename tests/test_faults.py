"""Faults between the library and a real redis-server: lost replies, cut connections, a
server killed and restarted, Redis down, a slow Redis, a full journal. Nothing acknowledged
is lost and nothing is applied twice.

The faults come from tests/faultproxy.py, a TCP proxy in front of a real server (with AOF,
fsync always, so a restarted server has every write it acknowledged). Writers run as
separate processes, each with a journal directory of the test.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from redis_memory import AccessDeniedError, ConversationMemory, JournalError, connections
from redis_memory.config import url_identity
from redis_memory.journal import Journal
from redis_memory.redaction import redact
from tests.faultproxy import FaultProxy
from tests.servers import RedisProcess

pytestmark = pytest.mark.on_cluster  # also on a Redis Cluster (tests/conftest.py)

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class DurableServer:
    """A redis-server on a TCP port with AOF (fsync always), which can be killed and restarted."""

    def __init__(self, modules: bool = False) -> None:
        self.port = free_port()
        self.directory = Path(tempfile.mkdtemp(prefix="flt", dir="/tmp"))
        self.process = RedisProcess(
            self.directory, modules=modules, port=self.port, extra=["--appendonly", "yes", "--appendfsync", "always"]
        )
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> DurableServer:
        self.process.start()
        return self

    def kill(self) -> None:
        assert self.process.process is not None
        self.process.process.send_signal(signal.SIGKILL)
        self.process.process.wait()
        self.process.process = None

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, decode_responses=True)


@pytest.fixture
def durable() -> Iterator[DurableServer]:
    server = DurableServer().start()
    yield server
    server.process.stop()


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A data directory of this test: its own offline journal."""
    return tmp_path / "home"


def run_python(
    code: str, home: Path, *args: str, retry_for: str = "3", wait: bool = True, stdin: bool = False
) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "REDIS_MEMORY_HOME": str(home),
        "REDIS_MEMORY_RETRY_FOR": retry_for,
    }
    process = subprocess.Popen(
        [sys.executable, "-c", code, *args],
        env=env,
        stdin=subprocess.PIPE if stdin else None,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    if wait:
        process.wait(timeout=120)
    return process


APPENDER = """
import json, sys
from redis_memory import ConversationMemory, connections
url, prefix, worker, count = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
mem = ConversationMemory("faults", url=url, prefix=prefix)
acknowledged = []
for i in range(count):
    mem.messages.append({"w": worker, "i": i})
    acknowledged.append(i)
backend = connections.backend_for(url=url)
assert backend.flush_journal(timeout=120), "journal not replayed"
print(json.dumps({"acknowledged": acknowledged, "stats": connections.stats()[url]}))
"""


def test_2000_appends_from_4_processes_under_cuts_and_a_restart_lose_nothing_and_duplicate_nothing(
    durable: DurableServer, home: Path, prefix: str
) -> None:
    """The acceptance run: random lost replies and refused requests through the proxy, and
    the server SIGKILLed and restarted (same AOF) while 4 processes append 500 each."""
    durable.client().rpush(f"{prefix}{{faults}}:messages", json.dumps({"w": -1, "i": -1}))
    durable.client().hset(f"{prefix}{{faults}}", "_kind:messages", "list")
    with FaultProxy(("127.0.0.1", durable.port)) as proxy:
        proxy.cut_after_forward(0.02, seed=1, match=b"EVALSHA")  # applied, reply lost
        proxy.cut_before_forward(0.01, seed=2, match=b"EVALSHA")  # never reaches Redis
        workers = [run_python(APPENDER, home, proxy.url, prefix, str(w), "500", retry_for="30", wait=False)
                   for w in range(4)]  # fmt: skip
        time.sleep(1.0)
        durable.kill()  # mid-run: SIGKILL, then the same server again from its AOF
        time.sleep(0.5)
        durable.start()
        outputs = [worker.communicate(timeout=300) for worker in workers]
        cuts = proxy.stats
    for worker, (_, err) in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, err[-3000:]
    reports = [json.loads(out.strip().splitlines()[-1]) for out, _ in outputs]
    stored = [json.loads(raw) for raw in durable.client().lrange(f"{prefix}{{faults}}:messages", 0, -1)][1:]
    for w, report in enumerate(reports):
        mine = [message["i"] for message in stored if message["w"] == w]
        assert report["acknowledged"] == list(range(500))
        assert mine == list(range(500)), f"worker {w}: lost or duplicated appends"  # once each, in order
    assert len(stored) == 2000
    assert sum(report["stats"]["retries"] for report in reports) > 0  # the faults did happen
    assert sum(cuts[key] for key in cuts if key.startswith("cut")) > 0


OFFLINE_WRITER = """
import os, pathlib, signal, sys, time
from redis_memory import ConversationMemory
url, prefix, mode, go = sys.argv[1], sys.argv[2], sys.argv[3], pathlib.Path(sys.argv[4])
mem = ConversationMemory("c1", url=url, prefix=prefix)
if mode == "crash":
    assert len(mem.messages) == 1  # read while Redis is up: the last known value
    print("ready", flush=True)
    while not go.exists():  # the test kills Redis meanwhile
        time.sleep(0.01)
    mem.messages.append({"n": 1})
mem.incr("turns")
mem.state = "written offline"
if mode == "crash":
    assert mem.messages == [{"n": 0}, {"n": 1}]  # last known value plus the journaled append
    assert mem.state == "written offline"
    os.kill(os.getpid(), signal.SIGKILL)  # a crash: the journal is all that is left
print("exiting", flush=True)
"""

READER = """
import json, sys
from redis_memory import ConversationMemory
mem = ConversationMemory("c1", url=sys.argv[1], prefix=sys.argv[2])
stored = mem.to_dict()
print(json.dumps({name: stored.get(name) for name in ("messages", "turns", "state")}))
"""


def read_back(durable: DurableServer, home: Path, prefix: str) -> dict[str, object]:
    reader = run_python(READER, home, durable.url, prefix)
    out, err = reader.communicate()
    assert reader.returncode == 0, err[-3000:]
    return json.loads(out)  # type: ignore[no-any-return]


def test_a_process_killed_while_offline_has_its_writes_replayed_once_by_the_next(
    durable: DurableServer, home: Path, prefix: str, tmp_path: Path
) -> None:
    durable.client().hset(f"{prefix}{{c1}}", "_kind:messages", "list")
    durable.client().rpush(f"{prefix}{{c1}}:messages", json.dumps({"n": 0}))
    go = tmp_path / "go"
    writer = run_python(OFFLINE_WRITER, home, durable.url, prefix, "crash", str(go), retry_for="0.2", wait=False)
    assert writer.stdout is not None and writer.stdout.readline().strip() == "ready"
    durable.kill()
    go.touch()
    _, err = writer.communicate(timeout=60)
    assert writer.returncode == -signal.SIGKILL, err[-3000:]
    durable.start()
    expected = {"messages": [{"n": 0}, {"n": 1}], "turns": 1, "state": "written offline"}
    assert read_back(durable, home, prefix) == expected  # replayed by this second process
    assert read_back(durable, home, prefix) == expected  # and only once
    assert Journal(home / "journal.sqlite3").depth(url_identity(durable.url)) == 0


def test_writes_of_a_process_that_never_reached_redis_arrive_once_after_it_exits(
    durable: DurableServer, home: Path, prefix: str, tmp_path: Path
) -> None:
    durable.kill()  # Redis is down for the whole life of the writer
    writer = run_python(OFFLINE_WRITER, home, durable.url, prefix, "blind", str(tmp_path / "go"), retry_for="0.2")
    out, err = writer.communicate()
    assert writer.returncode == 0 and out.strip() == "exiting", err[-3000:]
    durable.start()
    assert durable.client().hget(f"{prefix}{{c1}}", "state") is None  # nothing replayed yet
    expected = {"messages": None, "turns": 1, "state": "written offline"}
    assert read_back(durable, home, prefix) == expected  # replayed by the next process
    assert read_back(durable, home, prefix) == expected  # once


def test_a_slow_redis_times_out_and_the_write_still_lands_once(durable: DurableServer, prefix: str) -> None:
    with FaultProxy(("127.0.0.1", durable.port)) as proxy:
        url = f"{proxy.url}/0?socket_timeout=0.3"
        mem = ConversationMemory("slow", url=url, prefix=prefix)
        mem.messages = []
        backend = connections.backend_for(url=url)
        backend.retry_for = 1.0
        proxy.delay(0.5)  # every reply comes after the client gave up: each try times out
        mem.messages.append("once")  # journaled after the retries, not lost
        mem.incr("turns", 5)
        assert connections.stats()[url]["journal_depth"] == 2
        proxy.heal()
        assert backend.flush_journal(timeout=30)
    raw = durable.client()
    assert raw.lrange(f"{prefix}{{slow}}:messages", 0, -1) == ['"once"']  # sent several times, applied once
    assert raw.hget(f"{prefix}{{slow}}", "turns") == "5"


def test_a_full_journal_raises_a_clear_error_and_drops_nothing(
    durable: DurableServer, prefix: str, tmp_path: Path
) -> None:
    journal = Journal(tmp_path / "journal.sqlite3")
    url = f"redis://127.0.0.1:{durable.port}/1"
    mem = ConversationMemory("full", url=url, prefix=prefix)
    backend = connections.backend_for(url=url)
    backend.journal, backend.retry_for = journal, 0.0
    durable.kill()
    mem.state = "first"  # journaled
    database = journal._connection()
    pages = database.execute("PRAGMA page_count").fetchone()[0]
    database.execute(f"PRAGMA max_page_count = {pages}")  # the disk is full from now on (SQLITE_FULL)
    with pytest.raises(JournalError, match="full"):
        mem.turns = "x" * 100_000
    assert journal.depth(url_identity(url)) == 1  # the first write is still there, nothing silently dropped
    journal._connection().execute("PRAGMA max_page_count = 1000000")
    durable.start()
    assert backend.flush_journal(timeout=30)
    raw = redis.Redis(port=durable.port, db=1, decode_responses=True)
    assert raw.hget(f"{prefix}{{full}}", "state") == "first"
    assert raw.hget(f"{prefix}{{full}}", "turns") is None


def test_offline_raise_turns_the_journal_off(durable: DurableServer, prefix: str, tmp_path: Path) -> None:
    url = f"redis://127.0.0.1:{durable.port}/2"
    mem = ConversationMemory("strict", url=url, prefix=prefix, offline="raise")
    mem.state = "up"
    connections.backend_for(url=url).retry_for = 0.0
    durable.kill()
    with pytest.raises(ConnectionError):
        mem.state = "down"
    assert connections.stats()[url]["journal_depth"] == 0
    with pytest.raises(ValueError, match="offline"):
        ConversationMemory("strict", url=url, prefix=prefix, offline="queue")


def test_refused_credentials_raise_at_once_and_are_never_journaled(tmp_path: Path, prefix: str) -> None:
    """A wrong password is a refusal, not an outage: no resend, no journal entry."""
    server = RedisProcess(tmp_path / "auth", modules=False, port=free_port()).start()
    server.client().config_set("requirepass", "s3cret")
    try:
        url = f"redis://:wrong@127.0.0.1:{server.port}/0"
        backend = connections.backend_for(url=url)
        backend.journal, backend.retry_for = Journal(tmp_path / "journal.sqlite3"), 30.0
        mem = ConversationMemory("c1", url=url, prefix=prefix)
        with pytest.raises(AccessDeniedError, match="refused"):
            mem.state = "x"  # with retry_for=30 a resend loop would hang here for 30 s
        assert (
            backend.journal.depth(backend.server_id) == 0
            and connections.stats()[redact(url, mask="***")]["journal_depth"] == 0
        )
        assert connections.stats()[redact(url, mask="***")]["retries"] == 0
        assert redis.Redis(unix_socket_path=str(server.socket), password="s3cret").exists(f"{prefix}{{c1}}") == 0
    finally:
        server.stop()


def test_writes_journaled_before_the_first_connection_are_replayed_by_the_flusher(
    durable: DurableServer, prefix: str, tmp_path: Path
) -> None:
    url = f"redis://127.0.0.1:{durable.port}/3"
    durable.kill()  # down before this process ever connects
    backend = connections.backend_for(url=url)
    backend.journal, backend.retry_for = Journal(tmp_path / "journal.sqlite3"), 0.0
    mem = ConversationMemory("early", url=url, prefix=prefix)
    mem.state = "a"
    mem.incr("turns")
    time.sleep(0.3)  # the flusher has tried (and failed) to reconnect meanwhile
    assert connections.stats()[url]["journal_depth"] == 2 == backend.journal.depth(backend.server_id)
    durable.start()
    deadline = time.monotonic() + 60
    while connections.stats()[url]["journal_depth"] and time.monotonic() < deadline:
        time.sleep(0.05)  # the flusher thread replays by itself once Redis answers
    assert backend.journal.depth(backend.server_id) == 0
    raw = redis.Redis(port=durable.port, db=3, decode_responses=True)
    assert raw.hmget(f"{prefix}{{early}}", "state", "turns") == ["a", "1"]
