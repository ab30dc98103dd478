"""The default conversation schema: a chat message model and a declared conversation class.

``Conversation`` is a :class:`~redis_memory.ConversationMemory` whose usual attributes (the
ones the seed documentation uses) are declared, so they are validated on assignment; every
other attribute stays dynamic. ``schemas/conversation.json`` describes the same fields, with
how each is meant to be indexed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import pydantic

from redis_memory.memory import ConversationMemory


class Message(pydantic.BaseModel):
    """One chat message, as the OpenAI and LiteLLM clients take it (other keys are kept)."""

    model_config = pydantic.ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[dict[str, Any]] | None = None
    name: str | None = None
    tool_calls: list[dict[str, Any]] | None = None
    tool_call_id: str | None = None
    timestamp: datetime | None = None


class Conversation(ConversationMemory):
    """A conversation with declared, validated attributes (see :mod:`redis_memory.schema`).

    Messages are validated as :class:`Message` and stored as their JSON form (only the keys
    given), so ``mem.messages`` still reads back as plain dicts for the LLM clients.
    """

    messages: list[Message]
    user_name: str
    user_profile: dict[str, Any]
    context: dict[str, Any]
    state: str
    current_topic: str
    summary: str
    intent_history: list[str]
    detected_intent: str
    confidence: float
    assigned_specialist: str
    resolution_status: str
    created_at: datetime
    started_at: datetime
    last_activity: datetime
    total_messages: int
    message_count: int
