"""The layout record (issue 13): ``<prefix>__meta__`` says which storage layout the data under
a prefix is in. The first write there records this library's; a process refuses, with
``LayoutError`` and before writing anything, to write into a layout newer than it knows; on one
server and on a cluster, sync and asyncio."""

from __future__ import annotations

import asyncio

import pytest
import redis

from redis_memory import ConversationMemory, LayoutError, aio
from redis_memory.meta import LAYOUT_VERSION, layout_record, layout_version
from tests.servers import RedisProcess

pytestmark = pytest.mark.on_cluster


def test_the_first_write_records_the_layout(server: RedisProcess, raw: redis.Redis, prefix: str) -> None:
    assert layout_version(url=server.url, prefix=prefix) is None
    mem = ConversationMemory("c1", url=server.url, prefix=prefix)
    assert mem.to_dict() == {}  # a read records nothing
    assert layout_version(url=server.url, prefix=prefix) is None
    mem.state = "active"
    record = layout_record(url=server.url, prefix=prefix)
    assert layout_version(url=server.url, prefix=prefix) == LAYOUT_VERSION == int(record["layout"])
    assert record["created_by"].startswith("redis-memory ") and int(record["created_at"]) > 0
    assert raw.type(f"{prefix}__meta__") == "hash"
    mem.messages = [{"role": "user", "content": "Hi"}]  # later writes: the record stays as it was
    mem.messages.append({"role": "assistant", "content": "Hello"})
    assert layout_record(url=server.url, prefix=prefix) == record


@pytest.mark.parametrize("stored", [str(LAYOUT_VERSION + 1), "999", "not a number"])
def test_a_newer_or_unreadable_layout_is_refused_before_anything_is_written(
    server: RedisProcess, raw: redis.Redis, prefix: str, stored: str
) -> None:
    raw.hset(f"{prefix}__meta__", "layout", stored)
    mem = ConversationMemory("c1", url=server.url, prefix=prefix)
    for write in (
        lambda: setattr(mem, "state", "active"),
        lambda: setattr(mem, "messages", [{"role": "user", "content": "Hi"}]),
        lambda: mem.incr("turns"),
    ):
        with pytest.raises(LayoutError, match="layout") as caught:
            write()
        assert isinstance(caught.value, RuntimeError)
    assert sorted(raw.keys(f"{prefix}*")) == [f"{prefix}__meta__"]
    assert layout_version(url=server.url, prefix=prefix) if stored.isdigit() else True

    async def asynchronously() -> None:
        other = aio.ConversationMemory("c2", url=server.url, prefix=prefix)
        with pytest.raises(LayoutError):
            await other.set("state", "active")
        await aio.aclose()

    asyncio.run(asynchronously())
    assert sorted(raw.keys(f"{prefix}*")) == [f"{prefix}__meta__"]


def test_a_key_that_is_not_a_record_is_refused(server: RedisProcess, raw: redis.Redis, prefix: str) -> None:
    raw.set(f"{prefix}__meta__", "something else")
    with pytest.raises(LayoutError, match="not a layout record"):
        ConversationMemory("c1", url=server.url, prefix=prefix).state = "active"
    assert sorted(raw.keys(f"{prefix}*")) == [f"{prefix}__meta__"]


def test_the_current_layout_is_written_into(server: RedisProcess, raw: redis.Redis, prefix: str) -> None:
    raw.hset(f"{prefix}__meta__", mapping={"layout": str(LAYOUT_VERSION), "created_by": "another process"})
    mem = ConversationMemory("c1", url=server.url, prefix=prefix)
    mem.state = "active"
    assert ConversationMemory("c1", url=server.url, prefix=prefix, cache=False).state == "active"
    assert layout_record(url=server.url, prefix=prefix)["created_by"] == "another process"
