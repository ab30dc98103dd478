"""Redis Cluster (issue 12): a real 3-primary cluster with replicas, with and without modules.
Every object's keys share a slot, so its operations run unchanged on the primary that holds
it; these tests run the seed's flows, transactions, expiry, mirrors, wait_for_new and
concurrent writers there, through ``client=RedisCluster``, ``cluster=True`` and
``REDIS_CLUSTER=1``, and across a primary failover."""

from __future__ import annotations

import asyncio
import gc
import signal
import subprocess
import sys
import threading
import time
import warnings
from datetime import UTC, datetime, timedelta

import pytest
import redis
import redis.asyncio.cluster
import redis.cluster

from redis_memory import ConversationMemory, Memory, ReplicationError, ServerError, aio, connections
from tests.cluster import ClusterProcesses
from tests.servers import RedisProcess


def open_memory(cluster: ClusterProcesses, conversation_id: str, prefix: str, **options: object) -> ConversationMemory:
    return ConversationMemory(conversation_id, url=cluster.url, cluster=True, prefix=prefix, **options)  # type: ignore[arg-type]


def test_the_seed_flow_on_a_cluster_spreads_conversations_over_the_primaries(
    cluster: ClusterProcesses, prefix: str
) -> None:
    ids = [f"c{n}" for n in range(12)]
    for conversation_id in ids:
        mem = open_memory(cluster, conversation_id, prefix)
        mem.messages = [{"role": "user", "content": f"Hi from {conversation_id}"}]
        mem.messages.append({"role": "assistant", "content": "Hello!"})
        mem.context = {"topic": "billing"}
        mem.context["priority"] = "high"
        mem.state = "active"
        mem.incr("turns")
        mem.tags = {"vip"}
        mem.tags.add("new")
    raw = cluster.client()
    owners = {raw.nodes_manager.get_node_from_slot(raw.keyslot(f"{prefix}{{{i}}}")).port for i in ids}
    assert len(owners) == 3  # twelve conversations land on every primary
    for conversation_id in ids:
        client = redis.cluster.RedisCluster.from_url(cluster.url)
        other = ConversationMemory(conversation_id, client=client, prefix=prefix)
        assert other.messages == [
            {"role": "user", "content": f"Hi from {conversation_id}"},
            {"role": "assistant", "content": "Hello!"},
        ]
        assert other.context == {"topic": "billing", "priority": "high"}
        assert (other.state, other.turns, other.tags) == ("active", 1, {"vip", "new"})
        assert other.to_dict()["turns"] == 1
    raw.close()


def test_a_write_on_one_backend_invalidates_the_mirror_of_another(cluster: ClusterProcesses, prefix: str) -> None:
    mine = open_memory(cluster, "mirrored", prefix)
    theirs = ConversationMemory("mirrored", client=cluster.client(), prefix=prefix)
    mine.messages = [1]
    assert theirs.messages == [1]
    held = theirs.messages
    mine.messages.append(2)
    dir(theirs)  # a round trip on the same primary: the invalidation has arrived
    assert theirs.messages == [1, 2] and held == [1]
    held.append(3)  # through a stale copy: brought up to date in the same round trip
    dir(mine)
    assert held == [1, 2, 3] and mine.messages == [1, 2, 3]


def test_transactions_expiry_and_wait_for_new_on_a_cluster(cluster: ClusterProcesses, prefix: str) -> None:
    mem = open_memory(cluster, "tx", prefix)
    mem.messages = []
    with mem.transaction():
        mem.state = "active"
        mem.messages.append({"n": 1})
        mem.incr("total")
    assert (mem.state, mem.messages, mem.total) == ("active", [{"n": 1}], 1)
    short = open_memory(cluster, "short", prefix, ttl=1)
    short.state = "x"
    raw = cluster.client()
    assert 0 < raw.pttl(f"{prefix}{{short}}") <= 1000
    time.sleep(1.3)
    assert not hasattr(open_memory(cluster, "short", prefix), "state")
    waiter = open_memory(cluster, "tx", prefix)
    got: list[object] = []
    thread = threading.Thread(target=lambda: got.extend(waiter.messages.wait_for_new(after=1, timeout=10)))
    thread.start()
    time.sleep(0.3)
    ConversationMemory("tx", client=cluster.client(), prefix=prefix).messages.append({"n": 2})
    thread.join(15)
    assert got == [{"n": 2}]
    raw.close()


def test_the_cluster_is_found_from_the_environment(
    cluster: ClusterProcesses, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDIS_URL", cluster.url)
    monkeypatch.setenv("REDIS_CLUSTER", "1")
    mem = ConversationMemory("env", prefix=prefix)
    mem.state = "from the environment"
    assert open_memory(cluster, "env", prefix).state == "from the environment"
    assert Memory("plain-memory", prefix=prefix).to_dict() == {}


WRITER = """
import sys
from redis_memory import ConversationMemory
url, prefix, worker = sys.argv[1], sys.argv[2], int(sys.argv[3])
mem = ConversationMemory("shared", url=url, cluster=True, prefix=prefix)
for n in range(150):
    mem.messages.append({"w": worker, "n": n})
    mem.incr("total")
"""


def test_processes_appending_to_one_conversation_on_a_cluster_lose_nothing(
    cluster: ClusterProcesses, prefix: str
) -> None:
    open_memory(cluster, "shared", prefix).messages = []
    workers = [
        subprocess.Popen([sys.executable, "-c", WRITER, cluster.url, prefix, str(worker)], stderr=subprocess.PIPE)
        for worker in range(4)
    ]
    for worker in workers:
        _, err = worker.communicate(timeout=120)
        assert worker.returncode == 0, err.decode()
    mem = open_memory(cluster, "shared", prefix)
    assert mem.total == 600
    for worker in range(4):
        assert [m["n"] for m in mem.messages if m["w"] == worker] == list(range(150))


def test_operations_follow_a_slot_to_its_new_primary_after_a_failover(cluster: ClusterProcesses, prefix: str) -> None:
    mem = open_memory(cluster, "moving", prefix)
    mem.messages = [{"n": 0}]
    replica_port = cluster.primary_and_replica(f"{prefix}{{moving}}")[1].port
    cluster.node_client(replica_port).execute_command("CLUSTER", "FAILOVER")  # a manual, lossless failover
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if cluster.node_client(replica_port).info("replication")["role"] == "master":
            break
        time.sleep(0.1)
    mem.messages.append({"n": 1})  # MOVED from the old primary: the map is read again
    mem.state = "moved"
    assert open_memory(cluster, "moving", prefix).messages == [{"n": 0}, {"n": 1}]
    assert ConversationMemory("moving", client=cluster.client(), prefix=prefix).state == "moved"


def test_queries_on_a_cluster_answer_as_one_server_does(
    cluster: ClusterProcesses, servers: dict[str, RedisProcess], prefix: str
) -> None:
    single = servers[cluster.kind]
    now = datetime(2026, 6, 1, tzinfo=UTC)
    for n in range(60):
        for url, options in ((cluster.url, {"cluster": True}), (single.url, {})):
            mem = ConversationMemory(f"q{n:02d}", url=url, prefix=prefix, **options)  # type: ignore[arg-type]
            mem.state = "active" if n % 3 else "closed"
            mem.current_topic = "billing" if n % 2 else "shipping"
            mem.last_activity = now - timedelta(hours=n)
            mem.total_messages = n
    queries = [
        {"state": "active"},
        {"state": "active", "current_topic": "billing"},
        {"last_activity__lt": now - timedelta(hours=30)},
        {"total_messages__gte": 10, "state__ne": "closed"},
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the scan fallback's, without RediSearch
        for filters in queries:
            for sort_by, offset, limit in ((None, 0, None), ("-last_activity", 0, 10), ("total_messages", 5, 7)):
                on_cluster = ConversationMemory.find(
                    sort_by=sort_by, offset=offset, limit=limit, url=cluster.url, prefix=prefix, **filters
                )
                on_one = ConversationMemory.find(
                    sort_by=sort_by, offset=offset, limit=limit, url=single.url, prefix=prefix, **filters
                )
                got = [m.conversation_id for m in on_cluster]
                expected = [m.conversation_id for m in on_one]
                assert (got if sort_by else sorted(got)) == (expected if sort_by else sorted(expected)), filters
            assert ConversationMemory.count(url=cluster.url, prefix=prefix, **filters) == ConversationMemory.count(
                url=single.url, prefix=prefix, **filters
            )
        assert ConversationMemory.ids(url=cluster.url, prefix=prefix) == [f"q{n:02d}" for n in range(60)]
        stale = ConversationMemory.cleanup(older_than=timedelta(days=30), dry_run=True, url=cluster.url, prefix=prefix)
        assert sorted(stale) == [f"q{n:02d}" for n in range(60)]
    rows = ConversationMemory.fetch(["q01", "none"], ["state"], url=cluster.url, prefix=prefix)
    assert rows == {"q01": {"state": "active"}, "none": {}}


class Searched(ConversationMemory):
    index_messages = True


def test_message_search_and_raw_queries_on_a_cluster_answer_as_one_server_does(
    cluster: ClusterProcesses, servers: dict[str, RedisProcess], prefix: str
) -> None:
    single = servers[cluster.kind]
    words = ["refund", "invoice", "hello", "Refund INVOICE", "école", "nothing"]
    for n in range(30):
        for url, options in ((cluster.url, {"cluster": True}), (single.url, {})):
            mem = Searched(f"m{n:02d}", url=url, prefix=prefix, **options)  # type: ignore[arg-type]
            mem.messages = [
                {"role": "user" if i % 2 else "assistant", "content": f"{words[(n + i) % len(words)]} {i}"}
                for i in range(n % 5 + 1)
            ]
            if n % 4 == 0:
                mem.messages.pop(0)  # a copy leaves with its element; positions move on
            mem.state = "active" if n % 3 else "closed"
    searches: list[tuple[str | None, dict[str, object]]] = [
        ("refund", {}),
        ("invoice", {"role": "user"}),
        (None, {"role": "assistant"}),
        ("ÉCOLE", {}),
        (None, {"conversation__in": ["m03", "m07", "m11"]}),
        ("refund", {"conversation__startswith": "m1"}),
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the scan fallback's, without RediSearch
        for text, filters in searches:
            for offset, limit in ((0, None), (0, 5), (3, 4), (100, 10)):
                got, expected = (
                    Searched.search_messages(text, offset=offset, limit=limit, url=url, prefix=prefix, **filters)
                    for url in (cluster.url, single.url)
                )
                assert got == expected, (text, filters, offset, limit)
            counts = [
                Searched.count_messages(text, url=url, prefix=prefix, **filters) for url in (cluster.url, single.url)
            ]
            assert counts[0] == counts[1] > 0, (text, filters)
    if cluster.modules:  # a hand-written RediSearch query
        found = [
            sorted(m.conversation_id for m in Searched.find_raw("@state:{active}", limit=100, url=url, prefix=prefix))
            for url in (cluster.url, single.url)
        ]
        assert found[0] == found[1] == [f"m{n:02d}" for n in range(30) if n % 3]
        page = Searched.find_raw("@state:{active}", offset=5, limit=6, url=cluster.url, prefix=prefix)
        assert len(page) == 6 and {m.conversation_id for m in page} <= set(found[0])
    else:
        with pytest.raises(ServerError, match="RediSearch"):
            Searched.find_raw("*", url=cluster.url, prefix=prefix)
    connections.reset()


def test_with_wait_replicas_acknowledged_writes_survive_a_killed_primary(
    cluster: ClusterProcesses, prefix: str
) -> None:
    mem = open_memory(cluster, "durable", prefix, wait_replicas=1)
    mem.messages = []
    for n in range(200):
        mem.messages.append({"n": n})  # each returned only once a replica had it
    mem.state = "written"
    killed, replica = cluster.primary_and_replica(f"{prefix}{{durable}}")
    replica_port = replica.port
    assert killed.process is not None
    killed.process.send_signal(signal.SIGKILL)
    killed.process.wait()
    deadline = time.monotonic() + 30
    while cluster.node_client(replica_port).info("replication")["role"] != "master":
        assert time.monotonic() < deadline, "the replica did not take over"
        time.sleep(0.1)
    try:
        reader = ConversationMemory(
            "durable", client=redis.cluster.RedisCluster(host="127.0.0.1", port=replica_port), prefix=prefix
        )
        assert [m["n"] for m in reader.messages] == list(range(200)) and reader.state == "written"
        with pytest.raises(ReplicationError):  # the new primary has no replica until the old one is back
            mem.messages.append({"n": 200})  # (applied there: the writer followed the slot)
        assert len(reader.messages) == 201
    finally:
        killed.start()  # it rejoins as a replica of the new primary
        cluster.wait_healthy()
    mem.messages.append({"n": 201})  # confirmed by the rejoined replica
    assert [m["n"] for m in open_memory(cluster, "durable", prefix).messages][-2:] == [200, 201]


def test_with_wait_replicas_a_write_a_lagging_replica_lacks_is_not_acknowledged(
    cluster: ClusterProcesses, prefix: str
) -> None:
    """The replica stops taking the stream (SIGSTOP: a replica behind, as over a slow link),
    then the primary dies and that replica is promoted: with ``wait_replicas=1`` a write made
    meanwhile raised ReplicationError instead of being acknowledged, and every acknowledged
    write is on the new primary."""
    mem = open_memory(cluster, "lagging", prefix, wait_replicas=1)
    mem.messages = []
    for n in range(20):
        mem.messages.append({"n": n})
    killed, behind = cluster.primary_and_replica(f"{prefix}{{lagging}}")
    replica_port = behind.port
    assert killed.process is not None and behind.process is not None
    behind.process.send_signal(signal.SIGSTOP)
    try:
        with pytest.raises(ReplicationError):
            mem.messages.append({"n": "unconfirmed"})  # applied on the primary only: not acknowledged
        killed.process.send_signal(signal.SIGKILL)
        killed.process.wait()
    finally:
        behind.process.send_signal(signal.SIGCONT)
    try:
        deadline = time.monotonic() + 30
        while cluster.node_client(replica_port).info("replication")["role"] != "master":
            assert time.monotonic() < deadline, "the replica did not take over"
            time.sleep(0.1)
        survivor = redis.cluster.RedisCluster(host="127.0.0.1", port=replica_port)
        stored = [m["n"] for m in ConversationMemory("lagging", client=survivor, prefix=prefix, cache=False).messages]
        survivor.close()
        assert stored[:20] == list(range(20))  # every acknowledged write
    finally:
        killed.start()
        cluster.wait_healthy()


def test_wait_replicas_says_when_too_few_replicas_confirm(server: RedisProcess, prefix: str) -> None:
    mem = ConversationMemory("alone", url=server.url, prefix=prefix, wait_replicas=1)
    with pytest.raises(ReplicationError, match="0 of the 1 replicas"):
        mem.state = "x"  # a server with no replica
    assert ConversationMemory("alone", url=server.url, prefix=prefix).state == "x"  # applied on the primary
    with pytest.raises(ValueError):
        ConversationMemory("alone", url=server.url, prefix=prefix, wait_replicas=-1)


def test_the_asyncio_api_on_a_cluster(cluster: ClusterProcesses, prefix: str) -> None:
    async def main() -> dict[str, object]:
        try:
            mem = aio.ConversationMemory("async-1", url=cluster.url, cluster=True, prefix=prefix)
            await mem.set("messages", [{"n": 0}])
            await mem.messages.append({"n": 1})
            await mem.messages.extend([{"n": 2}, {"n": 3}])
            await mem.set("profile", {"name": "Ada"})
            await mem.profile.set_key("tier", "gold")
            await mem.set("state", "active")
            await mem.incr("turns", 2)
            await mem.set("tags", {"vip"})
            await mem.tags.add("new")
            assert await mem.messages.pop() == {"n": 3}
            async with mem.transaction() as tx:
                await mem.set("stage", "both")
                await mem.incr("turns", 0)
                await mem.messages.append({"n": 9})
            assert len(tx.results) == 3
            await mem.messages.pop()
            async with mem.messages.edit(0) as first:
                first["seen"] = True
            client = redis.asyncio.cluster.RedisCluster.from_url(cluster.url)
            other = aio.ConversationMemory("async-1", client=client, prefix=prefix)
            assert await other.get("state") == "active" and await other.has("profile")
            await other.aclose()
            await client.aclose()
            for n in range(9):
                await aio.ConversationMemory(f"async-{n + 2}", url=cluster.url, prefix=prefix).set("state", f"s{n}")
            rows = await aio.ConversationMemory.fetch(
                [f"async-{n}" for n in range(1, 11)], ["state"], url=cluster.url, prefix=prefix
            )
            assert [rows[f"async-{n}"]["state"] for n in range(2, 11)] == [f"s{n}" for n in range(9)]
            return await mem.to_dict()
        finally:
            await aio.aclose()

    snapshot = asyncio.run(main())
    assert snapshot == {
        "messages": [{"n": 0, "seen": True}, {"n": 1}, {"n": 2}],
        "profile": {"name": "Ada", "tier": "gold"},
        "state": "active",
        "turns": 2,
        "tags": {"vip", "new"},
        "stage": "both",
    }
    assert open_memory(cluster, "async-1", prefix).messages[0] == {"n": 0, "seen": True}


def test_tasks_opening_the_asyncio_cluster_together_share_one_client(cluster: ClusterProcesses, prefix: str) -> None:
    """Several tasks making the first operation of an asyncio cluster backend at once: one
    cluster client is kept and the others are closed (none left for the garbage collector)."""
    url = f"{cluster.url}?client_name=race{prefix.rstrip(':')}"  # a backend of this test's own

    async def main() -> None:
        try:
            await asyncio.gather(
                *(aio.ConversationMemory(f"r{n}", url=url, cluster=True, prefix=prefix).set("n", n) for n in range(8))
            )
        finally:
            await aio.aclose()

    with warnings.catch_warnings():
        warnings.simplefilter("error", ResourceWarning)
        asyncio.run(main())
        gc.collect()
    reader = ConversationMemory("r7", url=cluster.url, cluster=True, prefix=prefix)
    assert reader.n == 7


def test_asyncio_memories_of_one_cluster_client_share_its_backend(cluster: ClusterProcesses, prefix: str) -> None:
    """Their primaries' connections are the library's own: one set of them, closed by aclose()
    (a backend per memory left its connections to the garbage collector)."""

    async def main() -> None:
        client = redis.asyncio.cluster.RedisCluster.from_url(cluster.url)
        try:
            first = aio.ConversationMemory("s1", client=client, prefix=prefix)
            second = aio.ConversationMemory("s2", client=client, prefix=prefix)
            assert first._backend is second._backend
            await first.set("n", 1)
            await second.set("n", 2)
            assert (await first.get("n"), await second.get("n")) == (1, 2)
        finally:
            await aio.aclose()
            await client.aclose()

    with warnings.catch_warnings():
        warnings.simplefilter("error", ResourceWarning)
        asyncio.run(main())
        gc.collect()
