"""redis_memory.integrations.langchain: RedisMemoryChatMessageHistory with the real langchain-core.

``RunnableWithMessageHistory`` around real runnables (a prompt, a ``RunnableLambda`` that records
what the model saw, langchain-core's ``FakeListChatModel``) over turns made by separate
instances and by another process; 20,000 messages read back whole and in order (langchain-redis
returns at most 10,000, redisvl 1,000); tool calls through Redis; the same conversation read and
written by plain ``mem.messages`` dicts; the asyncio methods. langchain-tests ships no chat
message history suite (its integration suites are caches, stores, chat models, embeddings,
indexers, retrievers, sandboxes, tools and vector stores), so there is none to run here.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from langchain_core._api.deprecation import LangChainDeprecationWarning
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.messages import AIMessage, BaseMessage, ChatMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.messages.tool import tool_call
from langchain_core.prompt_values import ChatPromptValue
from langchain_core.prompts import ChatPromptTemplate, MessagesPlaceholder
from langchain_core.runnables import Runnable, RunnableLambda
from langchain_core.runnables.history import RunnableWithMessageHistory

from redis_memory import (
    Conversation,
    InvalidValueError,
    Message,
    UnstorableValueError,
    WrongTypeError,
    aio,
    stats,
)
from redis_memory.integrations.langchain import RedisMemoryChatMessageHistory
from redis_memory.keys import KeySpace
from tests.conftest import MemoryFactory
from tests.servers import RedisProcess

pytestmark = pytest.mark.on_cluster

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def history(server: RedisProcess, prefix: str) -> Iterator[Callable[..., RedisMemoryChatMessageHistory]]:
    """``history("s1")`` opens the chat history of conversation s1 on this test's server and
    prefix; ``separate=True`` through a connection of its own (as another process would)."""
    clients: list[redis.Redis] = []

    def open_(conversation_id: str = "s1", *, separate: bool = False, **options: Any) -> RedisMemoryChatMessageHistory:
        if separate:
            client = server.client()
            clients.append(client)
            return RedisMemoryChatMessageHistory(conversation_id, client=client, prefix=prefix, **options)
        return RedisMemoryChatMessageHistory(conversation_id, url=server.url, prefix=prefix, **options)

    yield open_
    for client in clients:
        client.close()


def run(test: Callable[[], Awaitable[Any]]) -> Any:
    """Run a coroutine in a fresh loop, closing the asyncio API's connections before it ends."""

    async def main() -> Any:
        try:
            return await test()
        finally:
            await aio.aclose()

    return asyncio.run(main())


def stored(raw: redis.Redis, prefix: str, conversation_id: str = "s1") -> list[Any]:
    """The messages as Redis holds them (LRANGE with a plain client)."""
    return [
        json.loads(item) for item in raw.lrange(KeySpace(prefix, conversation_id).collection_key("messages"), 0, -1)
    ]


def round_trips() -> int:
    return sum(entry["round_trips"] for entry in stats().values())


def chain(seen: list[list[BaseMessage]], replies: list[str]) -> Runnable[Any, Any]:
    """A prompt with the history, a step recording what the model is given, a fake chat model."""
    prompt = ChatPromptTemplate.from_messages(
        [("system", "You are terse."), MessagesPlaceholder("history"), ("human", "{input}")]
    )

    def record(value: ChatPromptValue) -> ChatPromptValue:
        seen.append(value.to_messages())
        return value

    return prompt | RunnableLambda(record) | FakeListChatModel(responses=replies)


def with_history(runnable: Runnable[Any, Any], factory: Callable[[str], RedisMemoryChatMessageHistory]) -> Any:
    with pytest.warns(LangChainDeprecationWarning, match="RunnableWithMessageHistory"):
        return RunnableWithMessageHistory(runnable, factory, input_messages_key="input", history_messages_key="history")


# -- RunnableWithMessageHistory ------------------------------------------------------------------


def test_runnable_with_message_history_over_two_turns_and_two_instances(
    history: Callable[..., RedisMemoryChatMessageHistory], memory: MemoryFactory
) -> None:
    seen: list[list[BaseMessage]] = []
    first = with_history(chain(seen, ["Hello!"]), lambda session: history(session))
    second = with_history(chain(seen, ["You said hi."]), lambda session: history(session, separate=True))
    config = {"configurable": {"session_id": "s1"}}

    assert first.invoke({"input": "Hi"}, config=config).content == "Hello!"
    assert second.invoke({"input": "What did I say?"}, config=config).content == "You said hi."

    assert [(type(m).__name__, m.content) for m in seen[1]] == [
        ("SystemMessage", "You are terse."),
        ("HumanMessage", "Hi"),
        ("AIMessage", "Hello!"),
        ("HumanMessage", "What did I say?"),
    ]
    assert memory("s1", separate=True).messages == [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": "What did I say?"},
        {"role": "assistant", "content": "You said hi."},
    ]
    assert first.invoke({"input": "x"}, config={"configurable": {"session_id": "other"}}).content == "Hello!"
    assert len(memory("other").messages) == 2 and len(memory("s1").messages) == 4  # sessions kept apart


def test_streamed_turns_are_stored_whole(
    history: Callable[..., RedisMemoryChatMessageHistory], memory: MemoryFactory
) -> None:
    seen: list[list[BaseMessage]] = []
    runnable = with_history(chain(seen, ["Streamed reply."]), lambda session: history(session))
    chunks = list(runnable.stream({"input": "Stream, please"}, config={"configurable": {"session_id": "s1"}}))
    assert len(chunks) > 1  # FakeListChatModel streams character by character
    assert memory("s1", separate=True).messages == [
        {"role": "user", "content": "Stream, please"},
        {"role": "assistant", "content": "Streamed reply."},
    ]


def test_a_turn_in_another_process_sees_and_extends_the_history(
    history: Callable[..., RedisMemoryChatMessageHistory], server: RedisProcess, prefix: str, raw: redis.Redis
) -> None:
    seen: list[list[BaseMessage]] = []
    runnable = with_history(chain(seen, ["Noted: blue."]), lambda session: history(session))
    runnable.invoke({"input": "My favourite colour is blue."}, config={"configurable": {"session_id": "s1"}})

    child = f"""
import sys, warnings
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.prompts import ChatPromptTemplate, MessagesPlaceholder
from langchain_core.runnables.history import RunnableWithMessageHistory
from redis_memory.integrations.langchain import RedisMemoryChatMessageHistory

warnings.simplefilter("ignore")  # RunnableWithMessageHistory is deprecated in langchain-core 1.x
prompt = ChatPromptTemplate.from_messages([MessagesPlaceholder("history"), ("human", "{{input}}")])
seen = []
model = FakeListChatModel(responses=["Blue."])
def record(value):
    seen.append([message.content for message in value.to_messages()])
    return value
runnable = RunnableWithMessageHistory(
    prompt | record | model,
    lambda session: RedisMemoryChatMessageHistory(session, url={server.url!r}, prefix={prefix!r}),
    input_messages_key="input",
    history_messages_key="history",
)
runnable.invoke({{"input": "What is my favourite colour?"}}, config={{"configurable": {{"session_id": "s1"}}}})
print(seen[0])
"""
    done = subprocess.run(
        [sys.executable, "-c", child], capture_output=True, text=True, cwd=ROOT, env=os.environ.copy(), timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(["My favourite colour is blue.", "Noted: blue.", "What is my favourite colour?"])
    assert [m.content for m in history("s1", separate=True).messages][-2:] == ["What is my favourite colour?", "Blue."]
    assert [m["role"] for m in stored(raw, prefix)] == ["user", "assistant", "user", "assistant"]


# -- length, order, cost ------------------------------------------------------------------------------


def test_twenty_thousand_messages_read_back_whole_and_in_order(
    history: Callable[..., RedisMemoryChatMessageHistory], raw: redis.Redis, prefix: str
) -> None:
    count = 20_000
    writer = history("long")
    batch: list[BaseMessage] = [
        HumanMessage(f"question {n}") if n % 2 == 0 else AIMessage(f"answer {n}") for n in range(count)
    ]
    writer.add_messages(batch[:1])
    assert len(writer.messages) == 1  # read once: from here this process's mirror serves it
    before = round_trips()
    writer.add_messages(batch[1:])  # one RPUSH of 19,999 messages
    assert round_trips() - before == 1
    assert raw.llen(KeySpace(prefix, "long").collection_key("messages")) == count

    for reader in (history("long", separate=True), writer):  # a fresh reader, and the writer's mirror
        messages = reader.messages
        assert len(messages) == count
        assert [m.content for m in messages] == [f"{'question' if n % 2 == 0 else 'answer'} {n}" for n in range(count)]
        assert all(isinstance(m, HumanMessage if n % 2 == 0 else AIMessage) for n, m in enumerate(messages))

    async def read_async() -> list[BaseMessage]:
        return await history("long").aget_messages()

    assert [m.content for m in run(read_async)] == [m.content for m in batch]


def test_add_messages_is_one_round_trip_and_reading_a_mirrored_history_none(
    history: Callable[..., RedisMemoryChatMessageHistory],
) -> None:
    chat = history("s1")
    chat.add_messages([HumanMessage("a")])
    assert [m.content for m in chat.messages] == ["a"]
    before = round_trips()
    chat.add_messages([HumanMessage("b"), AIMessage("c"), HumanMessage("d")])
    assert round_trips() - before == 1
    before = round_trips()
    assert [m.content for m in chat.messages] == ["a", "b", "c", "d"]
    assert round_trips() - before == 0  # this process's mirror, kept valid by the server


# -- tool calls and interop with plain dicts ---------------------------------------------------------


def test_tool_calls_round_trip_through_redis(
    history: Callable[..., RedisMemoryChatMessageHistory], raw: redis.Redis, prefix: str
) -> None:
    calls = [
        tool_call(name="get_weather", args={"city": "Paris"}, id="call_1"),
        tool_call(name="get_time", args={"zone": "Europe/Paris", "format": {"24h": True}}, id="call_2"),
    ]
    turn: list[BaseMessage] = [
        HumanMessage("Weather and time in Paris?"),
        AIMessage("", tool_calls=calls),
        ToolMessage("sunny", tool_call_id="call_1"),
        ToolMessage('{"time": "12:00"}', tool_call_id="call_2", name="get_time"),
        AIMessage("Sunny, and noon."),
    ]
    history("s1").add_messages(turn)
    assert stored(raw, prefix)[1:4] == [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                },
                {
                    "id": "call_2",
                    "type": "function",
                    "function": {"name": "get_time", "arguments": '{"zone": "Europe/Paris", "format": {"24h": true}}'},
                },
            ],
        },
        {"role": "tool", "content": "sunny", "tool_call_id": "call_1"},
        {"role": "tool", "content": '{"time": "12:00"}', "name": "get_time", "tool_call_id": "call_2"},
    ]
    back = history("s1", separate=True).messages
    assert [type(m) for m in back] == [type(m) for m in turn]
    assert isinstance(back[1], AIMessage) and back[1].tool_calls == calls
    assert [getattr(m, "tool_call_id", None) for m in back] == [None, None, "call_1", "call_2", None]
    history("s2").add_messages(back)  # read back and written again: the same dicts
    assert stored(raw, prefix, "s2") == stored(raw, prefix)


def test_plain_dicts_and_langchain_share_one_conversation(
    history: Callable[..., RedisMemoryChatMessageHistory], memory: MemoryFactory
) -> None:
    mem = memory("s1")
    mem.messages = [{"role": "system", "content": "You are helpful."}]
    mem.messages.append({"role": "user", "content": "Hi", "name": "alice"})
    mem.messages.append(
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "look", "arguments": "{}"}}],
        }
    )
    mem.messages.append({"role": "tool", "tool_call_id": "c1", "content": "found"})
    chat = history("s1", separate=True)
    read = chat.messages
    assert [type(m) for m in read] == [SystemMessage, HumanMessage, AIMessage, ToolMessage]
    assert read[1].name == "alice"
    assert isinstance(read[2], AIMessage) and read[2].tool_calls[0]["name"] == "look"

    chat.add_messages([AIMessage("Here it is.")])
    mem.messages.append({"role": "user", "content": "Thanks"})
    assert mem.messages[-2:] == [{"role": "assistant", "content": "Here it is."}, {"role": "user", "content": "Thanks"}]
    assert [m.content for m in chat.messages][-2:] == ["Here it is.", "Thanks"]


def test_over_an_open_declared_conversation(server: RedisProcess, prefix: str) -> None:
    conversation = Conversation("d1", url=server.url, prefix=prefix)
    conversation.state = "active"
    chat = RedisMemoryChatMessageHistory(memory=conversation)
    assert chat.memory is conversation and chat.conversation_id == "d1"
    chat.add_messages([HumanMessage("Hi"), AIMessage("Hello")])
    conversation.messages.append(Message(role="user", content="Bye"))
    assert [m.content for m in chat.messages] == ["Hi", "Hello", "Bye"]
    assert conversation.state == "active"  # only the messages are the history's
    with pytest.raises(InvalidValueError):  # a role the declared Message refuses: nothing written
        chat.add_messages([HumanMessage("ok"), ChatMessage("beep", role="robot")])
    assert len(conversation.messages) == 3


def test_clear_leaves_an_empty_list_other_attributes_stay(
    history: Callable[..., RedisMemoryChatMessageHistory], memory: MemoryFactory
) -> None:
    chat = history("s1")
    chat.add_messages([HumanMessage("a"), AIMessage("b")])
    mem = memory("s1")
    mem.state = "active"
    chat.clear()
    assert chat.messages == []
    assert mem.messages == [] and mem.state == "active"
    mem.messages.append({"role": "user", "content": "again"})  # still a list
    assert [m.content for m in history("s1", separate=True).messages] == ["again"]


def test_bounded_history_keeps_the_last_messages(history: Callable[..., RedisMemoryChatMessageHistory]) -> None:
    chat = history("s1", max_messages=3)
    chat.add_messages([HumanMessage(str(n)) for n in range(5)])
    chat.add_messages([AIMessage("5")])
    assert [m.content for m in history("s1", separate=True).messages] == ["3", "4", "5"]


def test_concurrent_writers_lose_nothing(history: Callable[..., RedisMemoryChatMessageHistory]) -> None:
    history("s1").add_messages([SystemMessage("start")])
    writers = [history("s1", separate=True) for _ in range(4)]

    def write(index: int) -> None:
        for turn in range(25):
            writers[index].add_messages([HumanMessage(f"{index}:{turn}"), AIMessage(f"{index}:{turn}")])

    threads = [threading.Thread(target=write, args=(index,)) for index in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    contents = [m.content for m in history("s1", separate=True).messages]
    assert len(contents) == 1 + 4 * 25 * 2
    for index in range(4):  # each writer's messages, in its order, each question right before its answer
        mine = [c for c in contents if isinstance(c, str) and c.startswith(f"{index}:")]
        assert mine == [f"{index}:{turn}" for turn in range(25) for _ in range(2)]
    assert all(contents[i] == contents[i + 1] for i in range(1, len(contents), 2))


def test_writers_starting_one_conversation_together_all_keep_their_messages(
    history: Callable[..., RedisMemoryChatMessageHistory],
) -> None:
    for attempt in range(5):  # the first write of each writer is the creation of the list
        session = f"new-{attempt}"
        writers = [history(session, separate=True) for _ in range(4)]
        barrier = threading.Barrier(len(writers))

        def write(
            index: int, writers: list[RedisMemoryChatMessageHistory] = writers, barrier: threading.Barrier = barrier
        ) -> None:
            barrier.wait()
            writers[index].add_messages([HumanMessage(f"{index}:q"), AIMessage(f"{index}:a")])

        threads = [threading.Thread(target=write, args=(index,)) for index in range(len(writers))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        contents = [m.content for m in history(session, separate=True).messages]
        assert sorted(contents) == sorted(f"{index}:{part}" for index in range(4) for part in "qa")
        assert all(contents[i][0] == contents[i + 1][0] for i in range(0, len(contents), 2))  # batches whole


def test_async_writers_starting_one_conversation_together_all_keep_their_messages(
    history: Callable[..., RedisMemoryChatMessageHistory],
) -> None:
    writers = [history("s1") for _ in range(6)]

    async def start() -> list[BaseMessage]:
        # One read first: concurrent first uses of the asyncio cluster driver in a loop each open a
        # topology client (aio/cluster.py _topology), and all but one outlive aio.aclose().
        assert await writers[0].aget_messages() == []
        await asyncio.gather(*(chat.aadd_messages([HumanMessage(str(n))]) for n, chat in enumerate(writers)))
        return await writers[0].aget_messages()

    assert sorted(m.content for m in run(start)) == [str(n) for n in range(6)]  # type: ignore[type-var]


# -- bad input ----------------------------------------------------------------------------------------


def test_a_message_that_cannot_be_stored_writes_nothing(
    history: Callable[..., RedisMemoryChatMessageHistory], raw: redis.Redis, prefix: str
) -> None:
    chat = history("s1")
    chat.add_messages([HumanMessage("kept")])
    with pytest.raises(UnstorableValueError, match="message 1"):
        chat.add_messages([HumanMessage("not kept"), 42])  # type: ignore[list-item]
    with pytest.raises(UnstorableValueError):  # a value JSON cannot hold
        chat.add_messages([HumanMessage("not kept"), AIMessage("x", additional_kwargs={"when": object()})])
    with pytest.raises(InvalidValueError, match="RemoveMessage"):
        from langchain_core.messages import RemoveMessage

        chat.add_messages([HumanMessage("not kept"), RemoveMessage(id="m1")])
    assert stored(raw, prefix) == [{"role": "user", "content": "kept"}]


def test_what_is_not_a_message_list_is_refused(
    history: Callable[..., RedisMemoryChatMessageHistory], memory: MemoryFactory
) -> None:
    memory("s1").messages = "not a list"
    chat = history("s1")
    with pytest.raises(WrongTypeError):
        chat.messages  # noqa: B018
    with pytest.raises(WrongTypeError):
        chat.add_messages([HumanMessage("x")])
    assert memory("s1", separate=True).messages == "not a list"
    memory("s2").messages = [{"role": "user", "content": "ok"}, {"content": "no role"}]
    with pytest.raises(InvalidValueError, match="message 1"):
        history("s2").messages  # noqa: B018


def test_constructor_arguments_are_checked(server: RedisProcess, prefix: str, memory: MemoryFactory) -> None:
    with pytest.raises(TypeError):
        RedisMemoryChatMessageHistory()
    with pytest.raises(ValueError, match="not both"):
        RedisMemoryChatMessageHistory(memory=memory("s1"), url=server.url)
    with pytest.raises(ValueError, match="not the id"):
        RedisMemoryChatMessageHistory("s2", memory=memory("s1"))
    with pytest.raises(ValueError, match="async_memory"):
        RedisMemoryChatMessageHistory(memory=memory("s1"), async_memory=aio.ConversationMemory("s2", url=server.url))
    with pytest.raises(ValueError):  # InvalidNameError: not an attribute name
        RedisMemoryChatMessageHistory("s1", url=server.url, prefix=prefix, attribute="no such name")
    other = RedisMemoryChatMessageHistory("s1", url=server.url, prefix=prefix, attribute="drafts")
    other.add_messages([HumanMessage("draft")])
    assert memory("s1").drafts == [{"role": "user", "content": "draft"}]
    assert not hasattr(memory("s1"), "messages")
    assert repr(other) == "RedisMemoryChatMessageHistory(conversation_id='s1')"


# -- asyncio ------------------------------------------------------------------------------------------


def test_async_methods_run_on_the_asyncio_api(
    history: Callable[..., RedisMemoryChatMessageHistory], memory: MemoryFactory
) -> None:
    chat = history("s1")

    async def scenario() -> list[list[Any]]:
        seen = [await chat.aget_messages()]
        await chat.aadd_messages([HumanMessage("Hi"), AIMessage("Hello")])  # creates the list
        await chat.aadd_messages([])
        seen.append(await chat.aget_messages())
        await chat.aadd_messages([HumanMessage("More")])  # appends to it
        seen.append(await chat.aget_messages())
        await chat.aclear()
        seen.append(await chat.aget_messages())
        await chat.aadd_messages([AIMessage("After clear")])
        return seen

    empty, two, three, cleared = run(scenario)
    assert empty == [] and cleared == []
    assert [m.content for m in two] == ["Hi", "Hello"]
    assert [m.content for m in three] == ["Hi", "Hello", "More"]
    assert memory("s1", separate=True).messages == [{"role": "assistant", "content": "After clear"}]
    assert chat._async is not None  # the asyncio API itself, not a worker thread


def test_async_runnable_with_message_history(
    history: Callable[..., RedisMemoryChatMessageHistory], memory: MemoryFactory
) -> None:
    seen: list[list[BaseMessage]] = []
    runnable = with_history(chain(seen, ["One.", "Two."]), lambda session: history(session))
    config = {"configurable": {"session_id": "s1"}}

    async def turns() -> list[str]:
        first = await runnable.ainvoke({"input": "1?"}, config=config)
        second = await runnable.ainvoke({"input": "2?"}, config=config)
        return [first.content, second.content]

    assert run(turns) == ["One.", "Two."]
    assert [m.content for m in seen[1]] == ["You are terse.", "1?", "One.", "2?"]
    assert [m["content"] for m in memory("s1").messages] == ["1?", "One.", "2?", "Two."]


def test_async_with_a_sync_connection_uses_a_worker_thread(
    history: Callable[..., RedisMemoryChatMessageHistory], memory: MemoryFactory
) -> None:
    chat = history("s1", separate=True)  # client=: no asyncio connection to derive

    async def scenario() -> list[BaseMessage]:
        await chat.aadd_messages([HumanMessage("threaded")])
        return await chat.aget_messages()

    assert [m.content for m in run(scenario)] == ["threaded"]
    assert chat._async is None
    assert memory("s1").messages == [{"role": "user", "content": "threaded"}]


def test_async_refuses_what_is_not_a_message_list(
    history: Callable[..., RedisMemoryChatMessageHistory], memory: MemoryFactory
) -> None:
    memory("s1").messages = {"not": "a list"}
    chat = history("s1")

    async def read() -> None:
        await chat.aget_messages()

    async def add() -> None:
        await chat.aadd_messages([HumanMessage("x")])

    with pytest.raises(WrongTypeError):
        run(read)
    with pytest.raises(WrongTypeError):
        run(add)
    assert memory("s1", separate=True).messages == {"not": "a list"}


def test_async_memory_given_with_an_open_conversation(server: RedisProcess, prefix: str, memory: MemoryFactory) -> None:
    mem = memory("s1")
    mem.messages = [{"role": "user", "content": "Hi"}]

    async def scenario() -> list[BaseMessage]:
        amem = aio.ConversationMemory("s1", url=server.url, prefix=prefix)
        chat = RedisMemoryChatMessageHistory(memory=mem, async_memory=amem)
        await chat.aadd_messages([AIMessage("Hello")])
        assert chat._async is amem
        return await chat.aget_messages()

    assert [m.content for m in run(scenario)] == ["Hi", "Hello"]
    assert [m["content"] for m in mem.messages] == ["Hi", "Hello"]


def test_ttl_expires_the_conversation_after_its_last_write(
    history: Callable[..., RedisMemoryChatMessageHistory], raw: redis.Redis, prefix: str
) -> None:
    history("s1", ttl=600).add_messages([HumanMessage("Hi")])
    assert 0 < raw.ttl(KeySpace(prefix, "s1").collection_key("messages")) <= 600
    assert 0 < raw.ttl(KeySpace(prefix, "s1").hash_key) <= 600
