"""Exactly-once bookkeeping is one field per writer, not one per write (issue 12): a writer's
resent write returns its first reply, an older write of the same writer is refused, and the
op log of an object stays the same size however many writes it took."""

from __future__ import annotations

import threading

import pytest

from redis_memory import ConversationMemory, connections
from redis_memory.core.writers import Writers
from tests.servers import RedisProcess
from tests.test_lua import run

pytestmark = pytest.mark.on_cluster  # also on a Redis Cluster (tests/conftest.py)


@pytest.mark.parametrize("script", ["push", "op:push"])
def test_a_resent_write_returns_its_first_reply_and_an_older_one_is_refused(
    server: RedisProcess, prefix: str, script: str
) -> None:
    client = server.client()
    hash_key, key = f"{prefix}{{w}}", f"{prefix}{{w}}:log"
    client.hset(hash_key, "_kind:log", "list")

    def push(op_id: str, element: str) -> object:
        return run(client, script, [hash_key, key], ["0", op_id, "", "_kind:log", "0", "", element])

    assert push("tok:1", "a") == 1
    assert push("tok:2", "b") == 2
    assert push("tok:2", "b") == 2  # its reply was lost: the resend is not applied again
    assert push("tok:1", "a") == ("error", "RMSTALEOP")  # never applied twice, never a wrong reply
    assert push("other:1", "c") == 3  # another writer has a log field of its own
    assert client.lrange(key, 0, -1) == [b"a", b"b", b"c"]
    assert sorted(client.hkeys(f"{prefix}~ops{{w}}")) == [b"@log", b"other", b"tok"]


def test_the_op_log_of_an_object_does_not_grow_with_its_writes(server: RedisProcess, prefix: str) -> None:
    mem = ConversationMemory("busy", url=server.url, prefix=prefix)
    raw = server.client()
    oplog = f"{prefix}~ops{{busy}}"
    mem.messages = []
    mem.profile = {"n": 0}
    mem.tags = set()

    def writes(count: int) -> None:
        for n in range(count):
            mem.messages.append({"n": n})
            mem.incr("turns")
            mem.state = f"s{n % 7}"
            mem.profile["n"] = n
            mem.tags.add(n % 5)

    writes(50)
    fields, size = raw.hlen(oplog), raw.memory_usage(oplog)
    writes(2000)  # 10,000 more writes
    assert raw.hlen(oplog) == fields  # one field per writer and per attribute changed
    assert raw.memory_usage(oplog) <= size + 64
    assert raw.memory_usage(oplog) < 10_000
    assert raw.llen(f"{prefix}{{busy}}:messages") == 2050
    connections.reset()


def test_concurrent_threads_write_through_writers_of_their_own(server: RedisProcess, prefix: str) -> None:
    mem = ConversationMemory("threads", url=server.url, prefix=prefix)
    mem.messages = []

    def work(worker: int) -> None:
        for n in range(200):
            mem.messages.append({"w": worker, "n": n})
            mem.incr("turns")

    threads = [threading.Thread(target=work, args=(w,)) for w in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stored = ConversationMemory("threads", url=server.url, prefix=prefix)
    assert stored.turns == 1200
    for worker in range(6):
        assert [m["n"] for m in stored.messages if m["w"] == worker] == list(range(200))
    raw = server.client()
    writers = [f for f in raw.hkeys(f"{prefix}~ops{{threads}}") if not f.startswith((b"@", b"#"))]
    assert 1 <= len(writers) <= 6
    connections.reset()


def test_a_writer_that_journaled_a_write_is_held_until_the_journal_is_replayed() -> None:
    writers = Writers()
    first = writers.take(backlog=0, may_journal=True)
    first.next_id()
    first.journaled = True  # its write went to the journal
    writers.give_back(first)
    urgent = writers.take(backlog=1, may_journal=False)  # a pop: sent at once, past the journal
    assert urgent is not first
    writers.give_back(urgent)
    queued = writers.take(backlog=1, may_journal=True)  # journaled behind the first: may share it
    assert queued is first
    writers.give_back(queued)
    assert writers.take(backlog=0, may_journal=False) in (first, urgent)  # replayed: free again
