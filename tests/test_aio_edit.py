"""``async with mem.messages.edit(i)``: the asyncio API's guarded change of one list element."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from redis_memory import ConcurrentModificationError, ConversationMemory, MissingIndexError, aio
from tests.conftest import MemoryFactory
from tests.test_aio import amemory, run

pytestmark = pytest.mark.on_cluster  # also on a Redis Cluster (tests/conftest.py)

__all__ = ["amemory"]  # the fixture, used by name


def test_streaming_into_the_last_message_and_a_row(
    amemory: Callable[..., aio.ConversationMemory], memory: MemoryFactory
) -> None:
    async def main() -> None:
        mem = amemory()
        await mem.set("messages", [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": ""}])
        for chunk in ("Once ", "upon ", "a time."):
            async with mem.messages.edit(-1) as message:
                message["content"] += chunk
        await mem.set("matrix", [[1, 2], [3, 4]])
        async with mem.matrix.edit(1) as row:
            row.append(5)
        async with mem.matrix.edit(0):
            pass  # unchanged: nothing written

    run(main)
    reader = memory(separate=True)
    assert reader.messages[-1] == {"role": "assistant", "content": "Once upon a time."}
    assert reader.matrix == [[1, 2], [3, 4, 5]]


def test_another_writers_change_meanwhile_raises_and_is_kept(
    amemory: Callable[..., aio.ConversationMemory], memory: MemoryFactory
) -> None:
    other: ConversationMemory = memory(separate=True)

    async def main() -> None:
        mem = amemory()
        await mem.set("messages", [{"content": "a"}])
        with pytest.raises(ConcurrentModificationError):
            async with mem.messages.edit(0) as message:
                message["content"] = "mine"
                other.messages[0] = {"content": "theirs"}
        with pytest.raises(RuntimeError):
            async with mem.messages.edit(0) as message:
                message["content"] = "never written"
                raise RuntimeError("the block failed")

    run(main)
    assert memory(separate=True).messages == [{"content": "theirs"}]


@pytest.mark.parametrize(("value", "index", "error"), [([{"a": 1}], 5, MissingIndexError), (["text"], 0, TypeError)])
def test_bad_edits_are_refused_before_the_block(
    amemory: Callable[..., aio.ConversationMemory], value: list[Any], index: int, error: type[Exception]
) -> None:
    async def main() -> None:
        mem = amemory()
        await mem.set("items", value)
        with pytest.raises(error):
            async with mem.items.edit(index):
                raise AssertionError("the block must not run")
        assert await mem.get("items") == value

    run(main)
