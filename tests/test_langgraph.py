"""The LangGraph checkpointer against the real packages: the official conformance suite
(``langgraph-checkpoint-conformance``) at its full level through the asyncio and the sync
methods, and a compiled ``StateGraph`` checkpointed in one process and resumed in another;
with and without the modules, and on a Redis Cluster."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import redis
import redis.asyncio
import redis.asyncio.cluster
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.conformance import checkpointer_test, validate
from langgraph.checkpoint.conformance.capabilities import ALL_CAPABILITIES
from langgraph.checkpoint.conformance.report import CapabilityReport
from langgraph.checkpoint.conformance.test_utils import generate_checkpoint, generate_config, generate_metadata

from redis_memory import InvalidNameError, aio
from redis_memory.integrations.langgraph import RedisMemorySaver
from tests.cluster import ClusterTarget
from tests.test_faults import run_python

pytestmark = pytest.mark.on_cluster


def conformance(make: Any) -> CapabilityReport:
    """The conformance suite's report for savers made by ``make(prefix)``, each capability's
    suite on a fresh prefix."""

    @checkpointer_test(name="RedisMemorySaver")
    async def factory() -> AsyncIterator[BaseCheckpointSaver[Any]]:
        yield make(f"lg{uuid.uuid4().hex[:10]}:")

    async def run() -> CapabilityReport:
        try:
            return await validate(factory)
        finally:
            await aio.aclose()

    return asyncio.run(run())


def assert_full(report: CapabilityReport) -> None:
    summary = report.to_dict()
    assert report.conformance_level() == "FULL", summary
    assert set(report.results) == {capability.value for capability in ALL_CAPABILITIES}
    for name, result in report.results.items():
        assert result.detected and result.passed is True and result.tests_failed == 0, (name, summary)
        assert result.tests_passed > 0, name


def test_conformance_full_through_the_asyncio_methods(server: Any) -> None:
    assert_full(conformance(lambda prefix: RedisMemorySaver(url=server.url, prefix=prefix)))


def test_conformance_full_through_the_sync_methods(server: Any) -> None:
    """Given a sync client, the ``a...`` methods run the sync ones: the suite checks those."""
    client = server.client()
    try:
        assert_full(conformance(lambda prefix: RedisMemorySaver(client=client, prefix=prefix)))
    finally:
        client.close()


GRAPH = """
import json, operator, sys
from typing import Annotated, TypedDict

from langgraph.graph import END, START, StateGraph

from redis_memory.integrations.langgraph import RedisMemorySaver
from tests.cluster import ClusterTarget


class State(TypedDict):
    count: int
    trail: Annotated[list[str], operator.add]


def first(state: State) -> dict:
    return {"count": state["count"] + 1, "trail": ["first"]}


def second(state: State) -> dict:
    return {"count": state["count"] + 10, "trail": ["second"]}


builder = StateGraph(State)
builder.add_node("first", first)
builder.add_node("second", second)
builder.add_edge(START, "first")
builder.add_edge("first", "second")
builder.add_edge("second", END)
saver = RedisMemorySaver(url=sys.argv[1], prefix=sys.argv[2])
graph = builder.compile(checkpointer=saver, interrupt_before=["second"])
config = {"configurable": {"thread_id": sys.argv[3]}}
"""

START_RUN = (
    GRAPH
    + """
result = graph.invoke({"count": 0, "trail": []}, config)
print(json.dumps({"result": result, "next": list(graph.get_state(config).next)}))
"""
)

RESUME_RUN = (
    GRAPH
    + """
before = graph.get_state(config)
result = graph.invoke(None, config)  # resume from the stored checkpoint
history = [snapshot.values.get("count") for snapshot in graph.get_state_history(config)]
print(json.dumps({"before": before.values, "result": result, "history": history}))
"""
)


def run_graph(code: str, home: Path, *args: str) -> dict[str, Any]:
    done = run_python(code, home, *args)
    out, err = done.communicate()
    assert done.returncode == 0, err
    loaded: dict[str, Any] = json.loads(out)
    return loaded


def test_a_compiled_graph_resumes_in_another_process(server: Any, prefix: str, tmp_path: Path) -> None:
    started = run_graph(START_RUN, tmp_path, server.url, prefix, "thread-1")
    assert started == {"result": {"count": 1, "trail": ["first"]}, "next": ["second"]}

    resumed = run_graph(RESUME_RUN, tmp_path, server.url, prefix, "thread-1")
    assert resumed["before"] == {"count": 1, "trail": ["first"]}
    assert resumed["result"] == {"count": 11, "trail": ["first", "second"]}
    assert resumed["history"][0] == 11 and 1 in resumed["history"]

    saver = RedisMemorySaver(url=server.url, prefix=prefix)  # and this process sees the same thread
    latest = saver.get_tuple({"configurable": {"thread_id": "thread-1"}})
    assert latest is not None and latest.checkpoint["channel_values"]["count"] == 11
    assert [t.config["configurable"]["thread_id"] for t in saver.list(None)] == ["thread-1"] * len(resumed["history"])


def test_async_writes_are_read_by_the_sync_methods(server: Any, prefix: str) -> None:
    saver = RedisMemorySaver(url=server.url, prefix=prefix)
    checkpoint = generate_checkpoint(channel_values={"topic": "billing"}, channel_versions={"topic": 1})

    async def write() -> None:
        try:
            stored = await saver.aput(generate_config("t-async"), checkpoint, generate_metadata(step=3), {"topic": 1})
            await saver.aput_writes(stored, [("topic", "refunds")], "task-1")
        finally:
            await aio.aclose()

    asyncio.run(write())
    found = saver.get_tuple(generate_config("t-async"))
    assert found is not None
    assert found.checkpoint["id"] == checkpoint["id"]
    assert found.checkpoint["channel_values"] == {"topic": "billing"}
    assert found.metadata["step"] == 3
    assert found.pending_writes == [("task-1", "topic", "refunds")]


def test_one_thread_is_one_memory_object(server: Any, prefix: str, raw: redis.Redis) -> None:
    """Every key of a thread shares its hash tag (one Cluster slot, one transaction)."""
    saver = RedisMemorySaver(url=server.url, prefix=prefix)
    parent = None
    for step in range(3):
        config = generate_config("t/1 {x}", checkpoint_ns="" if step < 2 else "child:1")
        if parent is not None and step < 2:
            config["configurable"]["checkpoint_id"] = parent["configurable"]["checkpoint_id"]
        checkpoint = generate_checkpoint(channel_values={"n": step}, channel_versions={"n": step + 1})
        parent = saver.put(config, checkpoint, generate_metadata(step=step), {"n": step + 1})
        saver.put_writes(parent, [("n", step)], f"task-{step}")
    keys = [key for key in raw.keys(f"{prefix}lg:*") if not key.endswith("__meta__")]
    assert keys and all("{t%2F1%20%7Bx%7D}" in key for key in keys)
    assert raw.hget(f"{prefix}lg:{{t%2F1%20%7Bx%7D}}", "_kind:log") == "list"
    assert [t.metadata["step"] for t in saver.list(generate_config("t/1 {x}"))] == [1, 0]
    assert [t.metadata["step"] for t in saver.list({"configurable": {"thread_id": "t/1 {x}"}})] == [2, 1, 0]

    saver.prune(["t/1 {x}"])
    assert [t.metadata["step"] for t in saver.list({"configurable": {"thread_id": "t/1 {x}"}})] == [2, 1]
    kept = saver.get_tuple(generate_config("t/1 {x}"))
    assert kept is not None and kept.checkpoint["channel_values"] == {"n": 1}
    assert kept.pending_writes == [("task-1", "n", 1)]


def test_bad_input_raises_and_changes_nothing(server: Any, prefix: str) -> None:
    saver = RedisMemorySaver(url=server.url, prefix=prefix)
    stored = saver.put(generate_config("t1"), generate_checkpoint(), generate_metadata(), {})
    with pytest.raises(InvalidNameError):
        saver.put({"configurable": {}}, generate_checkpoint(), generate_metadata(), {})
    with pytest.raises(InvalidNameError):
        saver.get_tuple({"configurable": {"thread_id": ""}})
    with pytest.raises(ValueError, match="strategy"):
        saver.prune(["t1"], strategy="keep_some")
    assert [t.config for t in saver.list(None)] == [stored]


def test_an_asyncio_client_serves_the_asyncio_methods_only(server: Any, prefix: str) -> None:
    if isinstance(server, ClusterTarget):
        client: Any = redis.asyncio.cluster.RedisCluster.from_url(server.url)
    else:
        client = redis.asyncio.Redis.from_url(server.url)
    saver = RedisMemorySaver(client=client, prefix=prefix)

    async def write() -> Any:
        try:
            return await saver.aput(generate_config("t1"), generate_checkpoint(), generate_metadata(step=7), {})
        finally:
            await client.aclose()
            await aio.aclose()

    stored = asyncio.run(write())
    with pytest.raises(TypeError, match="asyncio client"):
        saver.get_tuple(stored)
    found = RedisMemorySaver(url=server.url, prefix=prefix).get_tuple(stored)
    assert found is not None and found.metadata["step"] == 7


WRITER = """
import sys
from langgraph.checkpoint.conformance.test_utils import generate_checkpoint, generate_config, generate_metadata
from redis_memory.integrations.langgraph import RedisMemorySaver

saver = RedisMemorySaver(url=sys.argv[1], prefix=sys.argv[2])
worker = int(sys.argv[3])
for step in range(40):
    value = worker * 1000 + step
    versions = {"a": saver.get_next_version(None, None), "b": saver.get_next_version(None, None)}
    checkpoint = generate_checkpoint(channel_values={"a": value, "b": value}, channel_versions=versions)
    saver.put(generate_config("shared"), checkpoint, generate_metadata(step=value), versions)
    print(checkpoint["id"])
"""


def test_concurrent_puts_are_whole_and_none_is_lost(server: Any, prefix: str, tmp_path: Path) -> None:
    """Two processes put checkpoints on one thread while this one reads it: every read sees a
    whole checkpoint (both channels and the metadata of one put), and every put is listed."""
    writers = [run_python(WRITER, tmp_path, server.url, prefix, str(n), wait=False) for n in (1, 2)]
    saver = RedisMemorySaver(url=server.url, prefix=prefix)
    while any(writer.poll() is None for writer in writers):
        found = saver.get_tuple(generate_config("shared"))
        if found is not None:
            values = found.checkpoint["channel_values"]
            assert values["a"] == values["b"] == found.metadata["step"]
    outputs = [writer.communicate() for writer in writers]
    assert [writer.returncode for writer in writers] == [0, 0], [err for _, err in outputs]
    ids = [line for out, _ in outputs for line in out.split()]
    listed = [t.checkpoint["id"] for t in saver.list(generate_config("shared"))]
    assert len(ids) == 80 and sorted(listed, reverse=True) == listed and set(listed) == set(ids)
    latest = saver.get_tuple(generate_config("shared"))
    assert latest is not None and latest.checkpoint["id"] == max(ids)


def test_two_savers_taking_turns_on_one_thread_lose_nothing(server: Any, prefix: str) -> None:
    """Each saver's remembered revision goes stale at every turn of the other: its transaction's
    check fails, nothing is written, and the retry after a fetch lands."""
    savers = [RedisMemorySaver(url=server.url, prefix=prefix), RedisMemorySaver(client=server.client(), prefix=prefix)]
    parent: Any = None
    ids = []
    for step in range(6):
        config = generate_config("turns")
        if parent is not None:
            config["configurable"]["checkpoint_id"] = parent["configurable"]["checkpoint_id"]
        checkpoint = generate_checkpoint(channel_values={"n": step}, channel_versions={"n": step + 1})
        parent = savers[step % 2].put(config, checkpoint, generate_metadata(step=step), {"n": step + 1})
        ids.append(checkpoint["id"])
    for saver in savers:
        assert [t.checkpoint["id"] for t in saver.list(generate_config("turns"))] == ids[::-1]
        latest = saver.get_tuple(generate_config("turns"))
        assert latest is not None and latest.checkpoint["channel_values"] == {"n": 5}
        assert latest.parent_config is not None and latest.parent_config["configurable"]["checkpoint_id"] == ids[4]


def test_asyncio_listing_of_every_thread_and_deleting_one(server: Any, prefix: str) -> None:
    saver = RedisMemorySaver(url=server.url, prefix=prefix)

    async def scenario() -> tuple[list[str], list[str]]:
        try:
            for thread_id in ("a", "b"):
                await saver.aput(generate_config(thread_id), generate_checkpoint(), generate_metadata(), {})
            every = [t.config["configurable"]["thread_id"] async for t in saver.alist(None)]
            await saver.adelete_thread("a")
            left = [t.config["configurable"]["thread_id"] async for t in saver.alist(None)]
            return every, left
        finally:
            await aio.aclose()

    every, left = asyncio.run(scenario())
    assert sorted(every) == ["a", "b"] and left == ["b"]
    assert [t.config["configurable"]["thread_id"] for t in saver.list(None)] == ["b"]
