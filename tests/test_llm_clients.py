"""The seed document's OpenAI and LiteLLM flows, for real, against a local chat-completions stub.

``mem.messages`` goes unchanged into ``openai.OpenAI().chat.completions.create`` and
``litellm.completion``; the stub (an ``http.server`` on 127.0.0.1) records the JSON body the
SDK sent, so each test checks that the model received exactly the stored messages, in order,
and that the reply appended to ``mem.messages`` reaches Redis.

Nothing here may reach the internet: litellm reads its bundled model cost map
(``LITELLM_LOCAL_MODEL_COST_MAP=True``, set before it is imported), and an audit hook refuses,
and records, every connection or name lookup for a host other than the loopback while an LLM
test runs (each test asserts that none was attempted).
"""

from __future__ import annotations

import copy
import json
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import ModuleType
from typing import Any

import openai
import pytest
import redis

from redis_memory import ConversationMemory, ReadOnlyElementError
from redis_memory.keys import KeySpace
from tests.conftest import MemoryFactory
from tests.servers import RedisProcess

STUB_REPLY = "Why did the Redis key cross the road? To get to the other slot."
MOCK_REPLY = "Hello from mock"

HISTORY: list[dict[str, Any]] = [
    {"role": "system", "content": "You are a funny assistant. Répondez brièvement ✓"},
    {"role": "user", "content": "Hello!"},
    {"role": "assistant", "content": "Hi! How can I help you?"},
]

TOOL_ROUND: list[dict[str, Any]] = [
    {"role": "user", "content": "What's the weather in Paris?", "name": "alice"},
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
            }
        ],
    },
    {"role": "tool", "tool_call_id": "call_1", "content": '{"sky": "sunny", "celsius": 21}'},
]

TEXT_PARTS: list[dict[str, Any]] = [
    {
        "role": "user",
        "content": [{"type": "text", "text": "Describe this picture"}, {"type": "text", "text": "in one line"}],
    },
]

IMAGE_PART: list[dict[str, Any]] = [
    {
        "role": "user",
        "content": [
            {"type": "text", "text": "What is in this image?"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
        ],
    },
]

CACHED_SYSTEM: list[dict[str, Any]] = [
    {
        "role": "system",
        "content": [{"type": "text", "text": "A long, cacheable prompt", "cache_control": {"type": "ephemeral"}}],
    },
    {"role": "user", "content": "Hello!"},
]


# -- no internet ------------------------------------------------------------------------------------

_LOOPBACK = {"127.0.0.1", "::1", "localhost"}


@dataclass
class _NetworkGuard:
    active: bool = False
    attempts: list[str] = field(default_factory=list)

    def audit(self, event: str, args: tuple[Any, ...]) -> None:
        if not self.active:
            return
        if event == "socket.connect":
            sock, address = args
            if sock.family == socket.AF_UNIX or address[0] in _LOOPBACK:
                return
            target = repr(address)
        elif event == "socket.getaddrinfo":
            host = args[0].decode() if isinstance(args[0], bytes) else args[0]
            if host is None or host in _LOOPBACK:
                return
            target = repr(host)
        else:
            return
        self.attempts.append(f"{event} {target}")
        raise ConnectionRefusedError(f"the tests may not reach the internet ({event} {target})")


_GUARD = _NetworkGuard()
_hook_installed = False


@pytest.fixture
def no_internet() -> Iterator[_NetworkGuard]:
    """Refuse, and record, connections to anything but the loopback and unix sockets."""
    global _hook_installed
    if not _hook_installed:
        sys.addaudithook(_GUARD.audit)  # audit hooks cannot be removed: it stays off between tests
        _hook_installed = True
    _GUARD.attempts.clear()
    _GUARD.active = True
    try:
        yield _GUARD
    finally:
        _GUARD.active = False
    assert _GUARD.attempts == [], "tried to reach the internet"


@pytest.fixture(scope="session")
def litellm() -> Iterator[ModuleType]:
    """litellm, imported with its bundled model cost map (no download) and no other lookups."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LITELLM_LOCAL_MODEL_COST_MAP", "True")
        _GUARD.active = True
        try:
            import litellm
        finally:
            _GUARD.active = False
        assert _GUARD.attempts == [], "importing litellm tried to reach the internet"
        yield litellm


# -- a local chat-completions endpoint ------------------------------------------------------------


@dataclass
class Recorded:
    """One request the stub received."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any


class _StubServer(ThreadingHTTPServer):
    daemon_threads = True
    requests: list[Recorded]


class _Handler(BaseHTTPRequestHandler):
    server: _StubServer

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"null")
        self.server.requests.append(Recorded("POST", self.path, {k.lower(): v for k, v in self.headers.items()}, body))
        if self.path != "/v1/chat/completions" or not isinstance(body, dict):
            self._answer(404, {"error": {"message": f"no route {self.path}", "type": "invalid_request_error"}})
            return
        self._answer(
            200,
            {
                "id": "chatcmpl-stub-1",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body.get("model", "unknown"),
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": STUB_REPLY, "refusal": None},
                        "logprobs": None,
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 12, "completion_tokens": 14, "total_tokens": 26},
            },
        )

    def _answer(self, status: int, payload: object) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        return None


@dataclass
class ChatStub:
    """The running stub: its base URL and every request it received, in order."""

    url: str
    requests: list[Recorded]

    def chat_bodies(self) -> list[Any]:
        return [request.body for request in self.requests if request.path == "/v1/chat/completions"]


@pytest.fixture
def chat_stub() -> Iterator[ChatStub]:
    """An OpenAI-compatible ``POST /v1/chat/completions`` on 127.0.0.1, port chosen by the OS."""
    server = _StubServer(("127.0.0.1", 0), _Handler)
    server.requests = []
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), name="chat-stub", daemon=True)
    thread.start()
    try:
        yield ChatStub(f"http://127.0.0.1:{server.server_address[1]}", server.requests)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


# -- helpers ----------------------------------------------------------------------------------------


@pytest.fixture
def reopen(server: RedisProcess, prefix: str) -> Iterator[Callable[[str], ConversationMemory]]:
    """Open a conversation through a second backend with its own connection (as another process)."""
    clients: list[redis.Redis] = []

    def open_(conversation_id: str) -> ConversationMemory:
        client = redis.Redis(unix_socket_path=str(server.socket))
        clients.append(client)
        return ConversationMemory(conversation_id, client=client, prefix=prefix)

    yield open_
    for client in clients:
        client.close()


@pytest.fixture
def stored(raw: redis.Redis, prefix: str) -> Callable[[str], list[Any]]:
    """The messages of a conversation as Redis holds them (LRANGE with a plain client)."""

    def read(conversation_id: str) -> list[Any]:
        key = KeySpace(prefix, conversation_id).collection_key("messages")
        return [json.loads(item) for item in raw.lrange(key, 0, -1)]

    return read


def start_conversation(mem: ConversationMemory, history: list[dict[str, Any]], user_message: dict[str, Any]) -> None:
    """The seed's opening: create the list if absent, then append the user's message."""
    if not hasattr(mem, "messages"):
        mem.messages = []
    mem.messages.extend(history)
    mem.messages.append(user_message)


def assert_stored_everywhere(
    conversation_id: str,
    expected: list[dict[str, Any]],
    memory: MemoryFactory,
    reopen: Callable[[str], ConversationMemory],
    stored: Callable[[str], list[Any]],
) -> None:
    assert memory(conversation_id).messages == expected
    assert reopen(conversation_id).messages == expected
    assert stored(conversation_id) == expected


# -- openai -----------------------------------------------------------------------------------------


def test_openai_flow_sends_the_stored_messages_and_stores_the_reply(
    memory: MemoryFactory,
    reopen: Callable[[str], ConversationMemory],
    stored: Callable[[str], list[Any]],
    chat_stub: ChatStub,
    no_internet: object,
) -> None:
    conv_id = "user_session_abc"
    mem = memory(conv_id)
    assert not hasattr(mem, "messages")
    user_message = {"role": "user", "content": "Tell me a joke"}
    start_conversation(mem, HISTORY, user_message)

    with openai.OpenAI(base_url=chat_stub.url + "/v1", api_key="test", max_retries=0, timeout=20) as client:
        response = client.chat.completions.create(model="gpt-4o-mini", messages=mem.messages)

    [request] = chat_stub.requests
    assert (request.method, request.path) == ("POST", "/v1/chat/completions")
    assert request.headers["authorization"] == "Bearer test"
    assert request.body["model"] == "gpt-4o-mini"
    assert request.body["messages"] == [*HISTORY, user_message]
    assert [m["role"] for m in request.body["messages"]] == ["system", "user", "assistant", "user"]
    assert response.choices[0].message.content == STUB_REPLY

    assistant_message = {"role": "assistant", "content": response.choices[0].message.content}
    mem.messages.append(assistant_message)

    expected = [*HISTORY, user_message, {"role": "assistant", "content": STUB_REPLY}]
    assert_stored_everywhere(conv_id, expected, memory, reopen, stored)

    # the next turn sends the whole stored history, reply included, read by another "process"
    follow_up = {"role": "user", "content": "Another one"}
    other = reopen(conv_id)
    other.messages.append(follow_up)
    with openai.OpenAI(base_url=chat_stub.url + "/v1", api_key="test", max_retries=0, timeout=20) as client:
        client.chat.completions.create(model="gpt-4o-mini", messages=other.messages)
    assert chat_stub.chat_bodies()[-1]["messages"] == [*expected, follow_up]


@pytest.mark.parametrize(
    "history",
    [TOOL_ROUND, TEXT_PARTS, IMAGE_PART, CACHED_SYSTEM],
    ids=["tool-calls", "text-parts", "image-part", "cache-control"],
)
def test_openai_accepts_structured_messages(
    memory: MemoryFactory,
    stored: Callable[[str], list[Any]],
    chat_stub: ChatStub,
    no_internet: object,
    history: list[dict[str, Any]],
) -> None:
    mem = memory("structured")
    mem.messages = history
    with openai.OpenAI(base_url=chat_stub.url + "/v1", api_key="test", max_retries=0, timeout=20) as client:
        response = client.chat.completions.create(model="gpt-4o-mini", messages=mem.messages)
    assert chat_stub.chat_bodies() == [{"model": "gpt-4o-mini", "messages": history}]
    assert response.choices[0].message.content == STUB_REPLY
    assert stored("structured") == history


# -- litellm ----------------------------------------------------------------------------------------


def test_litellm_mock_response_flow(
    litellm: ModuleType,
    memory: MemoryFactory,
    reopen: Callable[[str], ConversationMemory],
    stored: Callable[[str], list[Any]],
    no_internet: object,
) -> None:
    conv_id = "session_xyz"
    mem = memory(conv_id)
    user_message = {"role": "user", "content": "Hello!"}
    start_conversation(mem, [], user_message)

    response = litellm.completion(model="gpt-3.5-turbo", messages=mem.messages, mock_response=MOCK_REPLY)
    assert response.choices[0].message.content == MOCK_REPLY

    mem.messages.append({"role": "assistant", "content": response.choices[0].message.content})

    expected = [user_message, {"role": "assistant", "content": MOCK_REPLY}]
    assert_stored_everywhere(conv_id, expected, memory, reopen, stored)


@pytest.mark.parametrize(
    "history",
    [HISTORY, TOOL_ROUND, TEXT_PARTS, CACHED_SYSTEM],
    ids=["chat", "tool-calls", "text-parts", "cache-control"],
)
@pytest.mark.parametrize(
    "model",
    ["gpt-4o-mini", "gemini/gemini-2.0-flash", "anthropic/claude-3-5-sonnet-20240620"],
    ids=["openai", "gemini", "anthropic"],
)
def test_litellm_mock_response_leaves_the_stored_messages_alone(
    litellm: ModuleType,
    memory: MemoryFactory,
    stored: Callable[[str], list[Any]],
    no_internet: object,
    history: list[dict[str, Any]],
    model: str,
) -> None:
    """``mock_response`` returns before any provider code runs, but after litellm validated the messages."""
    mem = memory("mocked")
    mem.messages = history
    if model.startswith("gemini/") and history is TOOL_ROUND:
        # litellm rewrites Gemini tool-call messages in place (utils.py: message["role"] = ...).
        # Stored elements are read-only, so this fails loudly instead of silently changing
        # what every reader of the list sees; a deep copy is the documented way through.
        with pytest.raises(ReadOnlyElementError):
            litellm.completion(model=model, messages=mem.messages, mock_response=MOCK_REPLY, api_key="test")
        messages = copy.deepcopy(mem.messages)
    else:
        messages = mem.messages
    response = litellm.completion(model=model, messages=messages, mock_response=MOCK_REPLY, api_key="test")
    assert response.choices[0].message.content == MOCK_REPLY
    assert mem.messages == history
    assert stored("mocked") == history


def test_litellm_openai_provider_against_the_stub(
    litellm: ModuleType,
    memory: MemoryFactory,
    reopen: Callable[[str], ConversationMemory],
    stored: Callable[[str], list[Any]],
    chat_stub: ChatStub,
    no_internet: object,
) -> None:
    conv_id = "session_stub"
    mem = memory(conv_id)
    user_message = {"role": "user", "content": "Tell me a joke"}
    start_conversation(mem, HISTORY, user_message)

    response = litellm.completion(
        model="openai/gpt-4o-mini",
        messages=mem.messages,
        api_base=chat_stub.url + "/v1",
        api_key="test",
        max_retries=0,
        timeout=20,
    )

    [body] = chat_stub.chat_bodies()
    assert body["model"] == "gpt-4o-mini"
    assert body["messages"] == [*HISTORY, user_message]
    assert chat_stub.requests[0].headers["authorization"] == "Bearer test"
    assert response.choices[0].message.content == STUB_REPLY

    mem.messages.append({"role": "assistant", "content": response.choices[0].message.content})

    expected = [*HISTORY, user_message, {"role": "assistant", "content": STUB_REPLY}]
    assert_stored_everywhere(conv_id, expected, memory, reopen, stored)


def test_litellm_sends_tool_call_rounds_unchanged(
    litellm: ModuleType,
    memory: MemoryFactory,
    stored: Callable[[str], list[Any]],
    chat_stub: ChatStub,
    no_internet: object,
) -> None:
    """litellm rewrites ``tool_calls`` and ``role`` on its own shallow copy of each message."""
    mem = memory("tools")
    mem.messages = TOOL_ROUND
    response = litellm.completion(
        model="openai/gpt-4o-mini",
        messages=mem.messages,
        api_base=chat_stub.url + "/v1",
        api_key="test",
        max_retries=0,
        timeout=20,
    )
    assert response.choices[0].message.content == STUB_REPLY
    # litellm drops None-valued fields ("content": None of the tool-calling turn) before sending
    sent = [{key: value for key, value in message.items() if value is not None} for message in TOOL_ROUND]
    assert chat_stub.chat_bodies() == [{"model": "gpt-4o-mini", "messages": sent}]
    assert stored("tools") == TOOL_ROUND


@pytest.mark.parametrize(
    ("model", "history", "sent"),
    [
        ("openai/gpt-4o-mini", TEXT_PARTS, TEXT_PARTS),
        ("openai/gpt-4o-mini", IMAGE_PART, IMAGE_PART),
        (
            "hosted_vllm/gpt-4o-mini",
            CACHED_SYSTEM,
            [
                {"role": "system", "content": [{"type": "text", "text": "A long, cacheable prompt"}]},
                {"role": "user", "content": "Hello!"},
            ],
        ),
    ],
    ids=["text-parts", "image-part", "cache-control-stripped"],
)
def test_litellm_sends_content_part_messages(
    litellm: ModuleType,
    memory: MemoryFactory,
    stored: Callable[[str], list[Any]],
    chat_stub: ChatStub,
    no_internet: object,
    model: str,
    history: list[dict[str, Any]],
    sent: list[dict[str, Any]],
) -> None:
    """Messages whose ``content`` is a list of parts (vision, prompt caching) reach the model.

    litellm rewrites these parts in place on the caller's objects (its copy of each message is
    shallow), so this is where read-only elements of ``mem.messages`` meet it.
    """
    mem = memory("parts")
    mem.messages = history
    response = litellm.completion(
        model=model,
        messages=mem.messages,
        api_base=chat_stub.url + "/v1",
        api_key="test",
        max_retries=0,
        timeout=20,
    )
    assert response.choices[0].message.content == STUB_REPLY
    assert chat_stub.chat_bodies() == [{"model": "gpt-4o-mini", "messages": sent}]
    assert stored("parts") == history
