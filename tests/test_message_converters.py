"""redis_memory.integrations.messages: OpenAI-style dicts <-> LangChain, openai and litellm
message types, with the real packages' classes (tool calls included), and round trips.

The openai and litellm objects are the ones the SDKs themselves build: a ``ChatCompletion``
parsed from a chat-completions response (and one the openai client received from the local
stub of tests/test_llm_clients.py), and litellm ``completion(..., mock_response=...)`` /
``mock_tool_calls=`` replies. Nothing here reaches the internet (the ``no_internet`` guard).
"""

from __future__ import annotations

import json
import subprocess
import sys
from types import ModuleType
from typing import Any

import openai
import pytest
from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    ChatMessage,
    FunctionMessage,
    HumanMessage,
    RemoveMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.messages.tool import invalid_tool_call, tool_call
from openai.types.chat import ChatCompletion, ChatCompletionMessage

from redis_memory import InvalidValueError, UnstorableValueError
from redis_memory.integrations.messages import to_dict, to_dicts, to_langchain, to_langchain_messages
from tests.test_llm_clients import ChatStub, _NetworkGuard, chat_stub, litellm, no_internet  # noqa: F401 - fixtures

WEATHER_CALL = {
    "id": "call_1",
    "type": "function",
    "function": {"name": "get_weather", "arguments": '{"city":  "Paris", "units": ["C"]}'},
}

OPENAI_DICTS: list[dict[str, Any]] = [
    {"role": "system", "content": "You are terse."},
    {"role": "developer", "content": "Answer in French."},
    {"role": "user", "content": "What's the weather in Paris? ✓", "name": "alice"},
    {"role": "user", "content": [{"type": "text", "text": "This?"}, {"type": "image_url", "image_url": {"url": "d:"}}]},
    {"role": "assistant", "content": None, "tool_calls": [WEATHER_CALL]},
    {"role": "tool", "content": '{"sky": "sunny"}', "tool_call_id": "call_1"},
    {"role": "assistant", "content": "Sunny.", "refusal": None, "timestamp": "2025-01-01T00:00:00Z"},
    {"role": "function", "content": "42", "name": "answer"},
    {"role": "critic", "content": "Too short."},
]  # fmt: skip

LANGCHAIN_CLASSES = [
    SystemMessage,
    SystemMessage,
    HumanMessage,
    HumanMessage,
    AIMessage,
    ToolMessage,
    AIMessage,
    FunctionMessage,
    ChatMessage,
]


def test_openai_dicts_round_trip_through_langchain_exactly() -> None:
    messages = to_langchain_messages(OPENAI_DICTS)
    assert [type(message) for message in messages] == LANGCHAIN_CLASSES
    assert to_dicts(messages) == OPENAI_DICTS
    assert [to_dict(to_langchain(data)) for data in OPENAI_DICTS] == OPENAI_DICTS


def test_langchain_fields_of_converted_dicts() -> None:
    system, developer, user, parts, calling, tool, answer, function, critic = to_langchain_messages(OPENAI_DICTS)
    assert developer.additional_kwargs == {"__openai_role__": "developer"}  # langchain-core's own marker
    assert system.additional_kwargs == {}
    assert (user.content, user.name) == ("What's the weather in Paris? ✓", "alice")
    assert parts.content == OPENAI_DICTS[3]["content"]
    assert isinstance(calling, AIMessage) and calling.content == ""
    assert calling.tool_calls == [
        {"name": "get_weather", "args": {"city": "Paris", "units": ["C"]}, "id": "call_1", "type": "tool_call"}
    ]
    assert calling.additional_kwargs["tool_calls"] == [WEATHER_CALL]  # as langchain-openai keeps the raw calls
    assert isinstance(tool, ToolMessage) and tool.tool_call_id == "call_1"
    assert answer.additional_kwargs == {"refusal": None, "timestamp": "2025-01-01T00:00:00Z"}
    assert isinstance(function, FunctionMessage) and function.name == "answer"
    assert isinstance(critic, ChatMessage) and critic.role == "critic"


def test_langchain_messages_round_trip_through_dicts() -> None:
    originals: list[BaseMessage] = [
        SystemMessage("Be helpful."),
        HumanMessage("Weather in Paris and Rome?", name="bob"),
        AIMessage(
            "",
            tool_calls=[
                tool_call(name="get_weather", args={"city": "Paris"}, id="call_a"),
                tool_call(name="get_weather", args={"city": "Rome", "nested": {"é": [1, 2.5, None]}}, id="call_b"),
            ],
        ),
        ToolMessage("sunny", tool_call_id="call_a"),
        ToolMessage([{"type": "text", "text": "rainy"}], tool_call_id="call_b", name="get_weather"),
        AIMessage("Paris is sunny, Rome rainy.", additional_kwargs={"refusal": None}),
        FunctionMessage("3", name="count"),
        ChatMessage("Looks right.", role="reviewer"),
    ]
    dicts = to_dicts(originals)
    assert dicts[2] == {
        "role": "assistant",
        "content": None,  # tool calls and no text: null content, as the OpenAI API writes it
        "tool_calls": [
            {"id": "call_a", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}},
            {
                "id": "call_b",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city": "Rome", "nested": {"é": [1, 2.5, null]}}'},
            },
        ],
    }
    assert dicts[4] == {
        "role": "tool",
        "content": [{"type": "text", "text": "rainy"}],
        "name": "get_weather",
        "tool_call_id": "call_b",
    }
    back = to_langchain_messages(json.loads(json.dumps(dicts)))  # as stored: JSON
    assert [type(message) for message in back] == [type(message) for message in originals]
    for original, again in zip(originals, back, strict=True):
        assert again.content == original.content
        assert again.name == original.name
        assert getattr(again, "tool_calls", None) == getattr(original, "tool_calls", None)
        assert getattr(again, "tool_call_id", None) == getattr(original, "tool_call_id", None)
        assert getattr(again, "role", None) == getattr(original, "role", None)
    assert to_dicts(back) == dicts  # and the dicts again, byte for byte


def test_invalid_tool_call_arguments_are_kept_as_written() -> None:
    data = {
        "role": "assistant",
        "content": "calling",
        "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "search", "arguments": '{"q": "redis"'}},
            {"id": "c2", "type": "function", "function": {"name": "noop", "arguments": ""}},
            {"id": "c3", "type": "function", "function": {"name": "list", "arguments": "[1, 2]"}},
        ],
    }
    message = to_langchain(data)
    assert isinstance(message, AIMessage)
    assert [call["name"] for call in message.tool_calls] == ["noop"]  # empty arguments: no arguments
    assert message.tool_calls[0]["args"] == {}
    assert [(call["id"], call["args"]) for call in message.invalid_tool_calls] == [
        ("c1", '{"q": "redis"'),
        ("c3", "[1, 2]"),
    ]
    assert to_dict(message) == data  # the raw calls come back in their order, texts unchanged

    made = AIMessage("", invalid_tool_calls=[invalid_tool_call(name="search", args="{oops", id="c9", error="bad")])
    assert to_dict(made)["tool_calls"] == [
        {"id": "c9", "type": "function", "function": {"name": "search", "arguments": "{oops"}}
    ]


def test_changed_tool_calls_win_over_the_raw_ones() -> None:
    message = to_langchain({"role": "assistant", "content": None, "tool_calls": [WEATHER_CALL]})
    assert isinstance(message, AIMessage)
    changed = message.model_copy(
        update={"tool_calls": [tool_call(name="get_weather", args={"city": "Lyon"}, id="call_1")]}
    )
    assert to_dict(changed)["tool_calls"] == [
        {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Lyon"}'}}
    ]


def test_openai_chat_completion_message_with_tool_calls() -> None:
    completion = ChatCompletion.model_validate(
        {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": 1,
            "model": "gpt-4o",
            "choices": [
                {
                    "index": 0,
                    "finish_reason": "tool_calls",
                    "message": {
                        "role": "assistant",
                        "content": None,
                        "refusal": None,
                        "annotations": [],
                        "tool_calls": [WEATHER_CALL, {**WEATHER_CALL, "id": "call_2"}],
                    },
                }
            ],
        }
    )
    message = completion.choices[0].message
    assert isinstance(message, ChatCompletionMessage)
    data = to_dict(message)
    assert data == {
        "role": "assistant",
        "content": None,
        "tool_calls": [WEATHER_CALL, {**WEATHER_CALL, "id": "call_2"}],
    }
    lc = to_langchain(message)
    assert isinstance(lc, AIMessage)
    assert [call["id"] for call in lc.tool_calls] == ["call_1", "call_2"]
    assert to_dict(lc) == data
    plain = ChatCompletionMessage(role="assistant", content="Hi", refusal="no")
    assert to_dict(plain) == {"role": "assistant", "content": "Hi", "refusal": "no"}


def test_openai_client_reply_converts_and_dicts_go_back_unchanged(
    chat_stub: ChatStub,  # noqa: F811
    no_internet: _NetworkGuard,  # noqa: F811
) -> None:
    client = openai.OpenAI(base_url=f"{chat_stub.url}/v1", api_key="test", max_retries=0)
    sent = to_dicts(
        [SystemMessage("Be brief."), HumanMessage("Hi", name="al"), *to_langchain_messages(OPENAI_DICTS[4:6])]
    )
    reply = client.chat.completions.create(model="gpt-4o-mini", messages=sent)  # type: ignore[arg-type]
    client.close()
    assert chat_stub.chat_bodies()[-1]["messages"] == sent
    assert to_dict(reply.choices[0].message) == {"role": "assistant", "content": reply.choices[0].message.content}
    assert isinstance(to_langchain(reply.choices[0].message), AIMessage)


def test_litellm_replies_convert(litellm: ModuleType, no_internet: _NetworkGuard) -> None:  # noqa: F811
    messages = to_dicts([HumanMessage("Hi"), *to_langchain_messages(OPENAI_DICTS[4:6])])
    text = litellm.completion(model="gpt-3.5-turbo", messages=messages, mock_response="Hello from mock")
    assert to_dict(text.choices[0].message) == {"role": "assistant", "content": "Hello from mock"}
    called = litellm.completion(
        model="gpt-3.5-turbo", messages=messages, mock_tool_calls=[{**WEATHER_CALL, "id": "call_9"}]
    )
    message = called.choices[0].message
    assert type(message).__module__.startswith("litellm.")
    data = to_dict(message)
    assert data["role"] == "assistant"
    assert data["tool_calls"] == [{**WEATHER_CALL, "id": "call_9"}]
    assert "provider_specific_fields" not in data
    lc = to_langchain(message)
    assert isinstance(lc, AIMessage)
    assert lc.tool_calls == [
        {"name": "get_weather", "args": {"city": "Paris", "units": ["C"]}, "id": "call_9", "type": "tool_call"}
    ]
    assert to_dict(lc) == data


def test_dicts_are_copied_and_checked() -> None:
    original = {"role": "user", "content": [{"type": "text", "text": "x"}]}
    copy = to_dict(original)
    assert copy == original
    copy["content"][0]["text"] = "changed"
    assert original["content"][0]["text"] == "x"
    message = to_langchain(original)
    assert to_langchain(message) is message  # a LangChain message is returned as it is


@pytest.mark.parametrize(
    "bad",
    [
        {"content": "no role"},
        {"role": "", "content": "x"},
        {"role": 3, "content": "x"},
        {"role": "tool", "content": "no call id"},
        {"role": "function", "content": "no name"},
        {"role": "user", "content": 5},
        {"role": "user", "content": "x", "name": 7},
        {"role": "assistant", "content": None, "tool_calls": "call"},
        {"role": "assistant", "content": None, "tool_calls": [{"id": "c", "type": "custom", "custom": {"name": "x"}}]},
        {"role": "assistant", "content": None, "tool_calls": [{"id": "c", "function": {"arguments": "{}"}}]},
    ],
)
def test_what_cannot_convert_to_langchain_raises_invalid_value(bad: dict[str, Any]) -> None:
    with pytest.raises(InvalidValueError):
        to_langchain(bad)


def test_errors_name_the_message_and_the_type() -> None:
    with pytest.raises(InvalidValueError, match=r"message 1: .*tool_call_id"):
        to_langchain_messages([{"role": "user", "content": "ok"}, {"role": "tool", "content": "x"}])
    with pytest.raises(UnstorableValueError, match="message 0: cannot convert a int"):
        to_dicts([42])
    with pytest.raises(TypeError):  # UnstorableValueError is a TypeError
        to_dict("just text")
    with pytest.raises(InvalidValueError, match="RemoveMessage"):
        to_dict(RemoveMessage(id="m1"))
    with pytest.raises(ValueError, match="role"):  # InvalidValueError is a ValueError
        to_dict(ChatCompletionMessage.model_construct(role="", content="x"))


def test_importing_the_library_imports_no_framework() -> None:
    code = (
        "import sys, redis_memory, redis_memory.integrations, redis_memory.integrations.messages\n"
        "from redis_memory.integrations.messages import to_dict\n"
        "assert to_dict({'role': 'user', 'content': 'x'}) == {'role': 'user', 'content': 'x'}\n"
        "frameworks = ('langchain_core', 'langgraph', 'openai', 'litellm')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in frameworks))"
    )
    found = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    assert found.strip() == "[]"


def test_chunks_from_streaming_convert_as_their_messages() -> None:
    from langchain_core.messages import AIMessageChunk, HumanMessageChunk, ToolCallChunk

    streamed = AIMessageChunk(
        content="", tool_call_chunks=[ToolCallChunk(name="get_weather", args='{"city": ', id="call_1", index=0)]
    ) + AIMessageChunk(content="", tool_call_chunks=[ToolCallChunk(name=None, args='"Paris"}', id=None, index=0)])
    assert isinstance(streamed, AIMessageChunk)
    assert to_dict(streamed) == {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}
        ],
    }
    joined = AIMessageChunk(content="Hel") + AIMessageChunk(content="lo")
    assert to_dict(joined) == {"role": "assistant", "content": "Hello"}
    assert to_dict(HumanMessageChunk(content="Hi")) == {"role": "user", "content": "Hi"}


def test_langchain_standard_content_blocks_become_openai_parts() -> None:
    message = HumanMessage(
        content=[
            "Compare",
            {"type": "image", "url": "https://example.com/a.png"},
            {"type": "image", "base64": "iVBORw0KGgo=", "mime_type": "image/png"},
        ]
    )
    assert to_dict(message) == {
        "role": "user",
        "content": [
            {"type": "text", "text": "Compare"},
            {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
        ],
    }
    openai_parts = {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "d:", "detail": "low"}}]}
    assert to_dict(to_langchain(openai_parts)) == openai_parts  # OpenAI parts are kept exactly
