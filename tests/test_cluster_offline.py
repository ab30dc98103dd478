"""The offline journal on a Redis Cluster (issue 12): a write whose slot's primary cannot be
reached is journaled, served from the last known values meanwhile, and replayed in order to
whichever primary holds the slot once one answers (the same one, or the replica that took
over); objects on the other primaries are written at once; a later process replays what an
ended one left; a write whose reply was lost in a failover is applied once."""

from __future__ import annotations

import asyncio
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis.cluster

from redis_memory import ConversationMemory, aio, connections
from tests.cluster import ClusterProcesses
from tests.faultproxy import FaultProxy
from tests.servers import RedisProcess
from tests.test_faults import run_python


@pytest.fixture
def offline_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """A journal of this test's own, and a short resend window (0.5 s) before journaling."""
    connections.reset()
    monkeypatch.setenv("REDIS_MEMORY_HOME", str(tmp_path))
    monkeypatch.setenv("REDIS_MEMORY_RETRY_FOR", "0.5")
    yield tmp_path
    connections.reset()


def signal_nodes(nodes: list[RedisProcess], sent: signal.Signals) -> None:
    for node in nodes:
        assert node.process is not None
        node.process.send_signal(sent)


def another_primary_id(cluster: ClusterProcesses, prefix: str, than: RedisProcess) -> str:
    """An object id whose slot another primary than ``than`` holds."""
    for n in range(1000):
        if cluster.primary_and_replica(f"{prefix}{{other{n}}}")[0] is not than:
            return f"other{n}"
    raise AssertionError("every id on one primary")


def stored(cluster: ClusterProcesses, conversation_id: str, prefix: str) -> ConversationMemory:
    """The object as another process sees it: a plain cluster client of its own, no cache."""
    return ConversationMemory(conversation_id, client=cluster.client(), prefix=prefix, cache=False)


def test_writes_to_an_unreachable_slot_are_journaled_and_replayed_in_order(
    cluster: ClusterProcesses, prefix: str, offline_env: Path
) -> None:
    mem = ConversationMemory("down", url=cluster.url, cluster=True, prefix=prefix)
    mem.messages = [{"n": -1}]
    mem.state = "before"
    assert mem.state == "before" and len(mem.messages) == 1  # known to this process
    primary, replica = cluster.primary_and_replica(f"{prefix}{{down}}")
    other = ConversationMemory(
        another_primary_id(cluster, prefix, primary), url=cluster.url, cluster=True, prefix=prefix
    )
    signal_nodes([primary, replica], signal.SIGSTOP)  # the slot has no server at all
    try:
        for n in range(20):
            mem.messages.append({"n": n})  # the first waits the resend window, then each is journaled
        mem.state = "offline"
        other.state = "written at once"  # another primary answers: not journaled
        assert stored(cluster, other.memory_id, prefix).state == "written at once"
        assert mem.state == "offline"  # the last known value, with the journaled writes
        assert [m["n"] for m in mem.messages] == list(range(-1, 20))

        async def from_asyncio() -> None:
            try:
                await aio.ConversationMemory("down", url=cluster.url, cluster=True, prefix=prefix).set("mood", "calm")
            finally:
                await aio.aclose()

        asyncio.run(from_asyncio())  # journaled by the same journal, behind the others
        backend = connections.backend_for(url=cluster.url, cluster=True)
        assert connections.stats()[backend.label]["journal_depth"] == 22 == backend.backlog
    finally:
        signal_nodes([primary, replica], signal.SIGCONT)
    assert backend.flush_journal(timeout=60)
    seen = stored(cluster, "down", prefix)
    assert [m["n"] for m in seen.messages] == list(range(-1, 20))
    assert seen.state == "offline" and seen.mood == "calm"
    assert connections.stats()[backend.label]["journaled"] == 22
    cluster.wait_healthy()


def test_writes_journaled_across_a_failover_reach_the_new_primary(
    cluster: ClusterProcesses, prefix: str, offline_env: Path
) -> None:
    mem = ConversationMemory("moving", url=cluster.url, cluster=True, prefix=prefix)
    mem.messages = []
    primary, replica = cluster.primary_and_replica(f"{prefix}{{moving}}")
    signal_nodes([primary], signal.SIGSTOP)  # its replica takes over after the node timeout
    try:
        acknowledged = []
        deadline = time.monotonic() + 30
        n = 0
        while cluster.node_client(replica.port).info("replication")["role"] != "master":
            assert time.monotonic() < deadline, "the replica did not take over"
            mem.messages.append({"n": n})
            acknowledged.append(n)
            n += 1
        for _ in range(5):  # after the failover too: behind any journaled ones, in order
            mem.messages.append({"n": n})
            acknowledged.append(n)
            n += 1
        backend = connections.backend_for(url=cluster.url, cluster=True)
        assert backend.flush_journal(timeout=60)
        reader = ConversationMemory(
            "moving", client=redis.cluster.RedisCluster(host="127.0.0.1", port=replica.port), prefix=prefix
        )
        assert [m["n"] for m in reader.messages] == acknowledged  # journaled or sent on: all, in order
        assert backend.backlog == 0
    finally:
        signal_nodes([primary], signal.SIGCONT)  # it rejoins as the new primary's replica
        cluster.wait_healthy()
    mem.messages.append({"n": "after"})
    assert stored(cluster, "moving", prefix).messages[-1] == {"n": "after"}


LEAVER = """
import sys
from redis_memory import ConversationMemory, connections
url, prefix = sys.argv[1], sys.argv[2]
mem = ConversationMemory("left", url=url, cluster=True, prefix=prefix)
messages = mem.messages  # known to this process
print("ready", flush=True)
sys.stdin.readline()  # the slot's primary and replica are stopped now
for n in range(10):
    mem.messages.append({"n": n})
print(connections.backend_for(url=url, cluster=True).backlog)
"""

ADOPTER = """
import sys
from redis_memory import ConversationMemory, connections
url, prefix = sys.argv[1], sys.argv[2]
ConversationMemory("someone-else", url=url, cluster=True, prefix=prefix).state = "here"  # adopts, replays
assert connections.backend_for(url=url, cluster=True).flush_journal(timeout=60)
print([m["n"] for m in ConversationMemory("left", url=url, cluster=True, prefix=prefix, cache=False).messages])
"""


def test_a_later_process_replays_what_an_ended_one_journaled(
    cluster: ClusterProcesses, prefix: str, offline_env: Path
) -> None:
    ConversationMemory("left", url=cluster.url, cluster=True, prefix=prefix).messages = []
    primary, replica = cluster.primary_and_replica(f"{prefix}{{left}}")
    leaver = run_python(LEAVER, offline_env, cluster.url, prefix, retry_for="0.5", wait=False, stdin=True)
    assert leaver.stdout is not None and leaver.stdin is not None
    assert leaver.stdout.readline().strip() == "ready"
    signal_nodes([primary, replica], signal.SIGSTOP)
    try:
        out, err = leaver.communicate("go\n", timeout=120)
        assert leaver.returncode == 0, err
        assert out.split() == [
            "10"
        ]  # acknowledged, journaled, left behind at exit  # acknowledged, journaled, left behind at exit
    finally:
        signal_nodes([primary, replica], signal.SIGCONT)
    cluster.wait_healthy()
    out, err = run_python(ADOPTER, offline_env, cluster.url, prefix, wait=False).communicate(timeout=120)
    assert out.strip() == str(list(range(10))), err


def _announce_through(cluster: ClusterProcesses, primary: RedisProcess, proxy: FaultProxy, url: str, key: str) -> None:
    """Make ``primary`` announce the proxy's port, and wait until the library routes ``key`` there."""
    cluster.node_client(primary.port).config_set("cluster-announce-port", proxy.port)
    router = connections.backend_for(url=url, cluster=True)
    deadline = time.monotonic() + 30
    while f":{proxy.port})" not in router.node_for_key(key).label:
        assert time.monotonic() < deadline, "the cluster did not announce the proxy's port"
        time.sleep(0.2)
        router.refresh()


@pytest.mark.parametrize("offline", ["raise", "journal"])
def test_a_write_whose_reply_was_lost_in_a_failover_is_applied_once(
    cluster: ClusterProcesses, prefix: str, offline_env: Path, monkeypatch: pytest.MonkeyPatch, offline: str
) -> None:
    """The primary applies an append and replicates it, its reply is lost, then it dies: the
    append is sent again to the replica that took over, with the same operation id (by the
    router, or by the journal's replay), and is there once."""
    monkeypatch.setenv("REDIS_MEMORY_OFFLINE", offline)
    monkeypatch.setenv("REDIS_MEMORY_RETRY_FOR", "8")  # the failover happens within the resend window
    key = f"{prefix}{{lost-reply}}"
    primary, replica = cluster.primary_and_replica(key)
    with FaultProxy(("127.0.0.1", primary.port)) as proxy:
        try:
            _announce_through(cluster, primary, proxy, cluster.url, key)
            mem = ConversationMemory("lost-reply", url=cluster.url, cluster=True, prefix=prefix)
            mem.messages = []
            mem.messages.append({"n": 0})  # the primary has the append script now
            proxy.refuse(reset_open=False)  # the connection made stays; once it is cut, resends do not get through
            proxy.cut_after_forward(1.0, count=1, match=b"EVALSHA")  # applied, reply lost
            outcome: list[object] = []
            writer = threading.Thread(target=lambda: outcome.append(mem.messages.append({"n": 1})))
            writer.start()
            deadline = time.monotonic() + 30
            while proxy.stats["cut_after_forward"] < 1:
                assert time.monotonic() < deadline, "the reply was not cut"
                time.sleep(0.02)
            # the primary dies once its replica has the append
            on_replica = cluster.node_client(replica.port)
            on_replica.execute_command("READONLY")
            while on_replica.llen(f"{key}:messages") < 2:
                assert time.monotonic() < deadline, "the append did not reach the replica"
                time.sleep(0.02)
            assert primary.process is not None
            primary.process.send_signal(signal.SIGKILL)
            primary.process.wait()
            writer.join(timeout=60)
            assert outcome == [None]  # acknowledged
            assert connections.backend_for(url=cluster.url, cluster=True).flush_journal(timeout=60)
            survivor = redis.cluster.RedisCluster(host="127.0.0.1", port=replica.port)
            seen = ConversationMemory("lost-reply", client=survivor, prefix=prefix, cache=False)
            assert [m["n"] for m in seen.messages] == [0, 1]  # once
            survivor.close()
        finally:
            primary.start()  # it rejoins as the new primary's replica, announcing its own port
            cluster.wait_healthy()
