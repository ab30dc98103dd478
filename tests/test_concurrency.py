"""Many real processes writing one conversation: nothing lost, each writer's order kept."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable

import pytest

from tests import workers
from tests.conftest import MemoryFactory
from tests.servers import RedisProcess

pytestmark = pytest.mark.on_cluster  # also on a Redis Cluster (tests/conftest.py)


def spawn(target: Callable[..., None], workers_count: int, *args: object) -> None:
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=target, args=(*args[:-1], worker, args[-1])) for worker in range(workers_count)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=240)
        assert process.exitcode == 0, f"worker failed with exit code {process.exitcode}"


def test_8_processes_x_200_appends_lose_nothing_and_keep_each_order(
    memory: MemoryFactory, server: RedisProcess, prefix: str
) -> None:
    memory("shared").messages = []
    spawn(workers.append_many, 8, server.url, prefix, "shared", 200)
    messages = memory("shared", cache=False).messages
    assert len(messages) == 1600
    for worker in range(8):
        assert [m["n"] for m in messages if m["worker"] == worker] == list(range(200))


def test_4_processes_updating_different_keys_of_one_dict_lose_nothing(
    memory: MemoryFactory, server: RedisProcess, prefix: str
) -> None:
    memory("shared").state_map = {}
    spawn(workers.update_own_keys, 4, server.url, prefix, "shared", 100)
    state = memory("shared", cache=False).state_map
    assert {key for key in state if key != "shared"} == {f"w{w}_{n}" for w in range(4) for n in range(100)}
    assert all(state[f"w{w}_{n}"] == n for w in range(4) for n in range(100))
    assert state["shared"]["last"] in range(4)


def test_4_processes_appending_to_a_list_inside_a_dict_lose_nothing(
    memory: MemoryFactory, server: RedisProcess, prefix: str
) -> None:
    memory("shared").context = {"events": []}
    spawn(workers.nested_updates, 4, server.url, prefix, "shared", 100)
    events = memory("shared", cache=False).context["events"]
    assert sorted(events) == sorted(f"{w}:{n}" for w in range(4) for n in range(100))
    for worker in range(4):
        assert [e for e in events if e.startswith(f"{worker}:")] == [f"{worker}:{n}" for n in range(100)]


def test_a_fresh_process_reads_what_this_one_wrote(memory: MemoryFactory, server: RedisProcess, prefix: str) -> None:
    mem = memory("x")
    mem.messages = [{"role": "user", "content": "Hi"}]
    mem.context = {"topic": "billing", "nested": {"a": [1, 2]}}
    mem.count_ = 3
    context = multiprocessing.get_context("spawn")
    with context.Pool(1) as pool:
        assert pool.apply(workers.read_back, (server.url, prefix, "x", "messages")) == [
            {"role": "user", "content": "Hi"}
        ]
        assert pool.apply(workers.read_back, (server.url, prefix, "x", "context")) == {
            "topic": "billing",
            "nested": {"a": [1, 2]},
        }
        assert pool.apply(workers.read_back, (server.url, prefix, "x", "count_")) == 3


def test_threads_share_one_backend_safely(memory: MemoryFactory) -> None:
    import threading

    mem = memory("threads")
    mem.messages = []

    def work(worker: int) -> None:
        for n in range(100):
            memory("threads").messages.append([worker, n])

    threads = [threading.Thread(target=work, args=(w,)) for w in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    messages = memory("threads", cache=False).messages
    assert len(messages) == 600
    for worker in range(6):
        assert [n for w, n in messages if w == worker] == list(range(100))
