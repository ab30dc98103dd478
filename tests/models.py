"""Types the typed-value tests store, importable by worker processes too."""

from __future__ import annotations

import enum
from datetime import UTC, datetime

import pydantic


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


class Priority(enum.IntEnum):
    LOW = 1
    HIGH = 2


class Profile(pydantic.BaseModel):
    name: str
    joined: datetime
    tags: list[str] = []
    score: float = 0.0


def write_typed(url: str, prefix: str, conversation_id: str) -> None:
    """Store a datetime, a model and an enum (run in another process)."""

    from redis_memory import ConversationMemory

    mem = ConversationMemory(conversation_id, url=url, prefix=prefix)
    mem.last_activity = datetime(2025, 12, 24, 10, 15, 30, 123456, tzinfo=UTC)
    mem.profile = Profile(name="Alice", joined=datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC), tags=["vip"])
    mem.color = Color.GREEN
