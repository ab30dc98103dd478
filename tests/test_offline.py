"""Every write of the seed's flows keeps working while Redis is down (killed or hung), and
each reaches Redis exactly once, in order, when it is back: also through ``client=``, from a
process that exits meanwhile, and whichever spelling of the URL the next process uses."""

from __future__ import annotations

import json
import logging
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from redis_memory import ConversationMemory, RedisConnectionError, connections
from tests.test_faults import DurableServer, run_python

pytestmark = pytest.mark.on_cluster  # also on a Redis Cluster (tests/conftest.py)

RETRY_FOR = 1.0

WRITER = """
import json, sys, time
import redis
from redis_memory import ConversationMemory
url, port, prefix, how = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
if how == "client":
    mem = ConversationMemory("c1", client=redis.Redis(host="localhost", port=port), prefix=prefix)
else:
    mem = ConversationMemory("c1", url=url, prefix=prefix)
mem.messages = [{"n": 0}]
mem.profile = {"a": 1}
mem.tags = {"x"}
print("ready", flush=True)
sys.stdin.readline()  # Redis is down now
times = {}
def timed(name, action):
    started = time.monotonic()
    action()
    times[name] = time.monotonic() - started
for n in (1, 2, 3):
    timed(f"append{n}", lambda: mem.messages.append({"n": n}))
timed("path", lambda: mem.profile.__setitem__("b", 2))
timed("scalar", lambda: setattr(mem, "state", "done"))
timed("incr", lambda: mem.incr("turns"))
timed("set add", lambda: mem.tags.add("y"))
seen = {"messages": list(mem.messages), "profile": dict(mem.profile), "state": mem.state, "tags": sorted(mem.tags)}
print(json.dumps({"times": times, "seen": seen}), flush=True)
"""

READER = """
import json, sys
from redis_memory import ConversationMemory
mem = ConversationMemory("c1", url=sys.argv[1], prefix=sys.argv[2])
print(json.dumps({"messages": list(mem.messages), "profile": dict(mem.profile), "state": mem.state,
                  "turns": mem.turns, "tags": sorted(mem.tags)}))
"""

EXPECTED = {"messages": [{"n": 0}, {"n": 1}, {"n": 2}, {"n": 3}], "profile": {"a": 1, "b": 2}, "state": "done"}


@pytest.fixture(params=["modules", "plain"])
def durable(request: pytest.FixtureRequest) -> Iterator[DurableServer]:
    server = DurableServer(modules=request.param == "modules").start()
    yield server
    if server.process.process is not None:
        server.process.process.send_signal(signal.SIGCONT)
    server.process.stop()


@pytest.mark.parametrize(("how", "fault"), [("url", "kill"), ("client", "kill"), ("url", "hang"), ("client", "hang")])
def test_writes_made_while_redis_is_down_reach_it_once_in_order(
    durable: DurableServer, tmp_path: Path, prefix: str, how: str, fault: str
) -> None:
    home = tmp_path / "home"
    writer = run_python(
        WRITER, home, durable.url, str(durable.port), prefix, how, retry_for=str(RETRY_FOR), wait=False, stdin=True
    )
    assert writer.stdout is not None
    assert writer.stdout.readline().strip() == "ready", writer.stderr.read() if writer.stderr else ""
    assert durable.process.process is not None
    if fault == "kill":
        durable.kill()
    else:
        durable.process.process.send_signal(signal.SIGSTOP)  # accepts connections, answers nothing
    assert writer.stdin is not None
    writer.stdin.write("\n")
    writer.stdin.flush()
    out, err = writer.communicate(timeout=120)
    assert writer.returncode == 0, err
    report = json.loads(out.strip().splitlines()[-1])
    # while down: each write returns within the resend window (+1 s), and reads show them
    assert all(seconds < RETRY_FOR + 1 for seconds in report["times"].values()), report["times"]
    assert report["seen"] == {**EXPECTED, "tags": ["x", "y"]}
    assert err.count("lost the connection") == 1, err  # one warning for the outage
    if fault == "kill":
        durable.start()
    else:
        durable.process.process.send_signal(signal.SIGCONT)
    reader = run_python(READER, home, f"redis://127.0.0.1:{durable.port}/0", prefix, retry_for=str(RETRY_FOR))
    out, err = reader.communicate(timeout=120)
    assert reader.returncode == 0, err
    assert json.loads(out) == {**EXPECTED, "turns": 1, "tags": ["x", "y"]}
    raw = durable.client()
    assert raw.lrange(f"{prefix}{{c1}}:messages", 0, -1) == [
        json.dumps({"n": n}, separators=(",", ":")) for n in range(4)
    ]
    raw.close()


def test_one_outage_logs_one_warning_and_later_writes_do_not_wait(
    durable: DurableServer,
    tmp_path: Path,
    prefix: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("REDIS_MEMORY_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("REDIS_MEMORY_RETRY_FOR", str(RETRY_FOR))
    client = redis.Redis(port=durable.port)
    mem = ConversationMemory("c1", client=client, prefix=prefix)
    mem.messages = []
    backend = connections.backend_for(client=client)
    durable.kill()
    with caplog.at_level(logging.WARNING, logger="redis_memory"):
        mem.messages.append({"n": 0})  # waits the window, then is journaled
        retries = backend.stats.counts["retries"]
        for n in range(1, 20):
            mem.messages.append({"n": n})
            mem.state = f"s{n}"
        assert backend.stats.counts["retries"] == retries  # the breaker: nothing resent, nothing waited for
        durable.start()
        assert backend.flush_journal(timeout=30)
    lost = [r for r in caplog.records if "lost the connection" in r.getMessage()]
    back = [r for r in caplog.records if "reconnected" in r.getMessage()]
    assert len(lost) == 1 and len(back) == 1, [r.getMessage() for r in caplog.records]
    assert backend.stats.counts["reconnects"] == 1
    assert ConversationMemory("c1", url=durable.url, prefix=prefix, cache=False).messages == [
        {"n": n} for n in range(20)
    ]
    connections.reset()


WRITE_AND_EXIT = """
import sys
import redis
from redis_memory import ConversationMemory
port, prefix, how = int(sys.argv[1]), sys.argv[2], sys.argv[3]
if how == "client":
    mem = ConversationMemory("c1", client=redis.Redis(host="localhost", port=port), prefix=prefix)
else:
    mem = ConversationMemory("c1", url=f"redis://localhost:{port}", prefix=prefix)
for n in range(5):
    mem.log = [n] if n == 0 else mem.log + [n]  # assigned offline: known from this process's own writes
mem.state = "written offline"
"""


LOG_READER = """
import json, sys
from redis_memory import ConversationMemory
mem = ConversationMemory("c1", url=sys.argv[1], prefix=sys.argv[2])
print(json.dumps({"log": mem.log, "state": mem.state}))
"""


@pytest.mark.parametrize("how", ["client", "url"])
def test_writes_journaled_under_one_spelling_are_replayed_under_another(
    durable: DurableServer, tmp_path: Path, prefix: str, how: str
) -> None:
    home = tmp_path / "home"
    durable.kill()
    writer = run_python(WRITE_AND_EXIT, home, str(durable.port), prefix, how, retry_for="0.2")
    _, err = writer.communicate()
    assert writer.returncode == 0, err
    durable.start()
    reader = run_python(LOG_READER, home, f"redis://127.0.0.1:{durable.port}/0", prefix)
    out, err = reader.communicate(timeout=60)
    assert reader.returncode == 0, err
    assert json.loads(out) == {"log": [0, 1, 2, 3, 4], "state": "written offline"}


CRASHER = """
import os, signal, sys
from redis_memory import ConversationMemory
mem = ConversationMemory("c1", url=sys.argv[1], prefix=sys.argv[2])
for n in range(200):
    mem.turns = n
    mem.incr("total")
os.kill(os.getpid(), signal.SIGKILL)  # ends with its journal unreplayed
"""


def test_a_long_lived_process_adopts_the_journal_of_a_writer_that_crashed(
    durable: DurableServer, tmp_path: Path, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    monkeypatch.setenv("REDIS_MEMORY_HOME", str(home))
    mem = ConversationMemory("other", url=durable.url, prefix=prefix)
    mem.state = "connected before the crash"
    durable.kill()
    crasher = run_python(CRASHER, home, durable.url, prefix, retry_for="0.2")
    _, err = crasher.communicate()
    assert crasher.returncode == -signal.SIGKILL, err
    durable.start()
    raw = durable.client()
    deadline = time.monotonic() + 30
    while raw.hget(f"{prefix}{{c1}}", "total") != "200" and time.monotonic() < deadline:
        mem.state = "still running"  # its operations look for abandoned journals every few seconds
        time.sleep(0.2)
    assert raw.hget(f"{prefix}{{c1}}", "total") == "200" and raw.hget(f"{prefix}{{c1}}", "turns") == "199"
    raw.close()
    connections.reset()


def test_hasattr_of_an_attribute_unknown_offline_raises_instead_of_answering_false(
    durable: DurableServer, tmp_path: Path, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDIS_MEMORY_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("REDIS_MEMORY_RETRY_FOR", "0.2")
    durable.kill()
    mem = ConversationMemory("never-read", url=durable.url, prefix=prefix)
    with pytest.raises(RedisConnectionError):
        hasattr(mem, "messages")
    connections.reset()


ASYNC_WRITER = """
import asyncio, sys
from redis_memory import aio
async def main():
    mem = aio.ConversationMemory("c1", url=sys.argv[1], prefix=sys.argv[2])
    await mem.set("messages", [{"n": 0}])
    await mem.set("profile", {"a": 1})
    print("ready", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)  # Redis is down now
    for n in (1, 2, 3):
        await mem.messages.append({"n": n})
    await mem.profile.set_key("b", 2)
    await mem.set("state", "done")
    print("written", flush=True)
asyncio.run(main())
"""


def test_the_asyncio_api_journals_writes_made_while_redis_is_down(
    durable: DurableServer, tmp_path: Path, prefix: str
) -> None:
    home = tmp_path / "home"
    out = write_through_an_outage(durable, ASYNC_WRITER, home, prefix, str(RETRY_FOR))
    assert out.strip() == "written"
    durable.start()
    assert read_back(durable, home, prefix) == EXPECTED


NEVER_CONNECTED = """
import sys
from redis_memory import ConversationMemory
mem = ConversationMemory("c1", url=sys.argv[1], prefix=sys.argv[2])  # Redis is down from the start
mem.messages = [{"n": 0}]
for n in (1, 2, 3):
    mem.messages.append({"n": n})
mem.profile = {"a": 1}  # RedisJSON or not: settled by the replay
mem.profile["b"] = 2  # never asked either: the known document is assigned again, form left open
mem.state = "done"
assert mem.messages == [{"n": 0}, {"n": 1}, {"n": 2}, {"n": 3}] and mem.profile == {"a": 1, "b": 2}
"""


def test_a_process_that_never_reached_redis_assigns_then_appends(
    durable: DurableServer, tmp_path: Path, prefix: str
) -> None:
    home = tmp_path / "home"
    durable.kill()
    writer = run_python(NEVER_CONNECTED, home, durable.url, prefix, retry_for="0.3")
    _, err = writer.communicate(timeout=120)
    assert writer.returncode == 0, err
    durable.start()
    assert read_back(durable, home, prefix) == EXPECTED
    raw = durable.client()
    expected_type = "ReJSON-RL" if durable.process.modules else "string"
    assert raw.type(f"{prefix}{{c1}}:profile") == expected_type  # the form the server supports
    raw.close()


def read_back(durable: DurableServer, home: Path, prefix: str) -> object:
    """What a fresh process reads of the conversation (READER, without turns and tags)."""
    reader = run_python(READER.replace('"turns": mem.turns, "tags": sorted(mem.tags)', ""), home, durable.url, prefix)
    out, err = reader.communicate(timeout=120)
    assert reader.returncode == 0, err
    return json.loads(out)


def write_through_an_outage(durable: DurableServer, code: str, home: Path, prefix: str, retry_for: str) -> str:
    """Run ``code`` in a process that prints ``ready``, kill Redis, let it go on; its output."""
    writer = run_python(code, home, durable.url, prefix, retry_for=retry_for, wait=False, stdin=True)
    assert writer.stdout is not None and writer.stdin is not None
    assert writer.stdout.readline().strip() == "ready"
    durable.kill()
    writer.stdin.write("\n")
    writer.stdin.flush()
    out, err = writer.communicate(timeout=120)
    assert writer.returncode == 0, err
    return out


MESSAGES_READER = (
    "import json, sys\nfrom redis_memory import ConversationMemory\n"
    "print(json.dumps(list(ConversationMemory('c1', url=sys.argv[1], prefix=sys.argv[2]).messages)))"
)


def stored_messages(durable: DurableServer, home: Path, prefix: str) -> object:
    """``c1``'s messages as a new process reads them (replaying what the journal holds)."""
    reader = run_python(MESSAGES_READER, home, durable.url, prefix)
    out, err = reader.communicate(timeout=120)
    assert reader.returncode == 0, err
    return json.loads(out)


UNREAD_WRITER = """
import sys
from redis_memory import ConversationMemory, RedisConnectionError
mem = ConversationMemory("c1", url=sys.argv[1], prefix=sys.argv[2])
mem.messages = [{"n": 0}]
print("ready", flush=True)
sys.stdin.readline()  # Redis is down now
mem.messages.insert(0, {"n": -1})  # journaled; which items that leaves is not worked out offline
messages = mem.messages  # a list known to exist, whose items this process no longer knows
for n in (1, 2):
    mem.messages.append({"n": n})
messages += [{"n": 3}]
failures = []
reads = (len, list, bool, repr, lambda m: m[0], lambda m: m == [], lambda m: {"n": 1} in m, lambda m: m.index(m))
for read in reads:
    try:
        read(mem.messages)
    except RedisConnectionError:
        failures.append(read)
assert len(failures) == 7, failures  # repr names what is not known instead of raising
import json
try:
    json.dumps(mem.messages)
except TypeError:
    pass
else:
    raise AssertionError("an unread list must never serialize as something it is not")
print("written", flush=True)
"""


def test_appends_to_a_list_whose_items_are_not_known_offline_are_journaled_and_reads_fail_loudly(
    durable: DurableServer, tmp_path: Path, prefix: str
) -> None:
    home = tmp_path / "home"
    out = write_through_an_outage(durable, UNREAD_WRITER, home, prefix, retry_for="0.3")
    assert out.strip() == "written"
    durable.start()
    assert stored_messages(durable, home, prefix) == [{"n": -1}, {"n": 0}, {"n": 1}, {"n": 2}, {"n": 3}]


ASYNC_READER_OFFLINE = """
import asyncio, json, sys
from redis_memory import RedisConnectionError, aio
async def main():
    mem = aio.ConversationMemory("c1", url=sys.argv[1], prefix=sys.argv[2])
    await mem.set("messages", [{"n": 0}])
    await mem.set("profile", {"a": 1})
    print("ready", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)  # Redis is down now
    await mem.messages.append({"n": 1})
    await mem.profile.set_key("b", 2)
    await mem.set("state", "done")
    seen = {"messages": await mem.get("messages"), "profile": await mem.profile.get(),
            "state": await mem.get("state"), "has": await mem.has("state")}
    await mem.messages.insert(0, {"n": -1})  # journaled; the items it leaves are not worked out offline
    await mem.messages.append({"n": 2})
    try:
        await mem.get("messages")
    except RedisConnectionError:
        seen["unread"] = True
    try:
        await mem.get("never_written")
    except RedisConnectionError:
        seen["unknown"] = True
    print(json.dumps(seen), flush=True)
asyncio.run(main())
"""


def test_the_asyncio_api_serves_last_known_values_while_redis_is_down(
    durable: DurableServer, tmp_path: Path, prefix: str
) -> None:
    home = tmp_path / "home"
    out = write_through_an_outage(durable, ASYNC_READER_OFFLINE, home, prefix, retry_for="0.3")
    assert json.loads(out) == {
        "messages": [{"n": 0}, {"n": 1}],
        "profile": {"a": 1, "b": 2},
        "state": "done",
        "has": True,
        "unread": True,
        "unknown": True,
    }
    durable.start()
    assert stored_messages(durable, home, prefix) == [{"n": -1}, {"n": 0}, {"n": 1}, {"n": 2}]
