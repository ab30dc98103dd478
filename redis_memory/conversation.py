"""The default conversation schema: a chat message model and a declared conversation class.

``Conversation`` is a :class:`~redis_memory.ConversationMemory` whose usual attributes (the
ones the seed documentation uses) are declared, so they are validated on assignment; every
other attribute stays dynamic. ``schemas/conversation.json`` describes the same fields, with
how each is meant to be indexed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import pydantic

from redis_memory.memory import ConversationMemory
from redis_memory.schema import Indexed


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
    given), so ``mem.messages`` still reads back as plain dicts for the LLM clients. The
    :class:`~redis_memory.schema.Indexed` attributes are the default conversation index
    (``schemas/conversation.json`` declares the same; ``tests/test_schema.py`` checks it).
    """

    messages: list[Message]
    user_name: Annotated[str, Indexed()]
    user_profile: dict[str, Any]
    context: dict[str, Any]
    state: Annotated[str, Indexed()]
    current_topic: Annotated[str, Indexed()]
    summary: Annotated[str, Indexed(full_text_search=True)]
    intent_history: list[str]
    detected_intent: Annotated[str, Indexed()]
    confidence: Annotated[float, Indexed()]
    assigned_specialist: Annotated[str, Indexed()]
    resolution_status: Annotated[str, Indexed()]
    created_at: Annotated[datetime, Indexed(sortable=True)]
    started_at: Annotated[datetime, Indexed(sortable=True)]
    last_activity: Annotated[datetime, Indexed(sortable=True)]
    total_messages: Annotated[int, Indexed(sortable=True)]
    message_count: Annotated[int, Indexed()]
