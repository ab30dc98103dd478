"""Declared attributes (pydantic validation on assignment) and the default conversation schema."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import pytest
import redis

from redis_memory import Conversation, ConversationMemory, InvalidValueError, Message, schema
from redis_memory.search.index import conversation_index, spec_for
from tests.servers import RedisProcess

pytestmark = pytest.mark.on_cluster  # also on a Redis Cluster (tests/conftest.py)


class Support(ConversationMemory):
    state: Literal["active", "closed"]
    last_activity: datetime
    messages: list[Message]
    scores: list[int]


@pytest.fixture
def support(server: RedisProcess, prefix: str):  # type: ignore[no-untyped-def]
    return lambda conversation_id="c1": Support(conversation_id, url=server.url, prefix=prefix)


def test_declared_scalars_are_validated_and_coerced(support, raw: redis.Redis) -> None:
    mem = support()
    mem.state = "active"
    with pytest.raises(InvalidValueError):
        mem.state = "paused"
    with pytest.raises(ValueError):  # InvalidValueError is a ValueError
        mem.last_activity = "not a date"
    assert support().state == "active" and not hasattr(support(), "last_activity")
    mem.last_activity = "2025-12-24T10:00:00+00:00"
    assert support().last_activity == datetime(2025, 12, 24, 10, 0, tzinfo=UTC)
    assert raw.hget(mem._space.hash_key, "last_activity") == "1766570400.000000"
    mem.anything_else = object.__name__  # undeclared attributes stay dynamic
    assert support().anything_else == "object"


def test_declared_lists_validate_every_element(support) -> None:
    mem = support()
    mem.messages = [{"role": "user", "content": "Hi"}]
    mem.messages.append({"role": "assistant", "content": "Hello", "timestamp": "2025-12-24T10:00:00"})
    mem.messages += [Message(role="tool", tool_call_id="call_1", content="42")]
    with pytest.raises(InvalidValueError):
        mem.messages.append({"role": "robot", "content": "?"})
    with pytest.raises(InvalidValueError):
        mem.messages.insert(0, {"content": "no role"})
    with pytest.raises(InvalidValueError):
        mem.messages = [{"role": "nobody"}]
    assert support().messages == [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello", "timestamp": "2025-12-24T10:00:00"},
        {"role": "tool", "tool_call_id": "call_1", "content": "42"},
    ]
    mem.scores = ["1", 2]
    mem.scores.append("3")
    assert support().scores == [1, 2, 3]
    with pytest.raises(InvalidValueError):
        mem.scores.append("three")


def test_declarations_are_checked_when_the_class_is_made() -> None:
    with pytest.raises(TypeError):

        class WithDefault(ConversationMemory):
            state: str = "active"

    with pytest.raises(TypeError):

        class Reserved(ConversationMemory):
            incr: int


def test_the_default_conversation_schema(server: RedisProcess, prefix: str) -> None:
    mem = Conversation("default-schema", url=server.url, prefix=prefix)
    mem.messages = []
    mem.messages.append({"role": "user", "content": "Hello!", "timestamp": datetime(2025, 12, 24).isoformat()})
    mem.created_at = datetime(2025, 12, 24, 10, 0)
    mem.total_messages = "1"
    with pytest.raises(InvalidValueError):
        mem.confidence = "very"
    again = Conversation("default-schema", url=server.url, prefix=prefix)
    assert again.total_messages == 1 and again.created_at == datetime(2025, 12, 24, 10, 0)
    assert again.messages == [{"role": "user", "content": "Hello!", "timestamp": "2025-12-24T00:00:00"}]


def test_schemas_conversation_json_matches_the_python_schema() -> None:
    document = json.loads((Path(__file__).parent.parent / "schemas" / "conversation.json").read_text())
    assert set(document["fields"]) == set(schema.declared(Conversation))
    assert set(document["message"]["fields"]) == set(Message.model_fields)
    assert document["class"] == "redis_memory.conversation:Conversation"
    packaged = json.loads((Path(schema.__file__).parent / "schemas" / "conversation.json").read_text())
    assert packaged == document  # the shipped copy is the same file
    # the index: what the JSON declares is what Conversation's Indexed markers derive
    marked = schema.indexed(Conversation)
    assert {name: kind for name, (kind, _) in marked.items()} == {
        name: field["index"] for name, field in document["fields"].items() if "index" in field
    }
    assert {name for name, (_, sortable) in marked.items() if sortable} == {
        name for name, field in document["fields"].items() if field.get("sortable")
    }
    assert spec_for(Conversation) == conversation_index()
