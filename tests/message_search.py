"""Shared by the message search tests (test_message_copies, test_message_queries): what a
message's copy must hold, computed in Python, the checks that the copies match their list,
and a searchable memory, searches and messages to search.

Its fixture reaches the test modules through their ``pytest_plugins``. They import its
helpers first, too late for pytest to rewrite its asserts: PYTEST_DONT_REWRITE keeps pytest
from warning about that."""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from redis_memory import ConversationMemory, MessageMatch
from redis_memory.keys import encode_part
from redis_memory.search.filters import words
from redis_memory.search.messages import search_text
from tests.servers import RedisProcess

FIELDS = "role,content"  # what schemas/conversation.json indexes of a message


@pytest.fixture
def quiet() -> Iterator[None]:
    """The fallback warns once per server (test_the_fallback_warns_once); the other tests ignore it."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


def searchable(server: RedisProcess, prefix: str, conversation_id: str, **options: Any) -> ConversationMemory:
    """A memory that opts in, on a connection of its own (another process, as far as the
    library can tell)."""
    return ConversationMemory(conversation_id, client=server.client(), prefix=prefix, index_messages=True, **options)


# -- what a copy must hold, computed in Python ------------------------------------------------------


def indexed_text(value: object) -> str | None:
    """A field's text as lib.lua's field_text copies it: a string as is, a boolean as text,
    the strings and text parts of a list joined by spaces. (These tests store no numbers.)"""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        parts = [
            part if isinstance(part, str) else part["text"]
            for part in value
            if isinstance(part, str) or (isinstance(part, dict) and isinstance(part.get("text"), str))
        ]
        return " ".join(parts) if parts else None
    return None


def copied_fields(element: object) -> dict[str, str]:
    """The role/content fields the copy of ``element`` holds."""
    if isinstance(element, dict):
        found = {name: indexed_text(element.get(name)) for name in ("role", "content")}
    elif isinstance(element, list) or element is None:
        found = {}
    else:  # a plain string message: its text is the content
        found = {"content": indexed_text(element)}
    if found.get("content") is not None:  # as RediSearch is to read it (see search_text)
        found["content"] = search_text(found["content"])
    return {name: text for name, text in found.items() if text is not None}


def copy_keys(raw: redis.Redis, prefix: str, conversation_id: str) -> set[str]:
    pattern = f"{prefix}#m{{{encode_part(conversation_id)}}}:*"
    return set(raw.scan_iter(match=pattern, count=10_000))


def check_copies(raw: redis.Redis, prefix: str, conversation_id: str) -> list[Any]:
    """The invariant: copy i of ``messages`` is ``<prefix>#m{<id>}:messages:<base + i>``, holds
    element i as LRANGE returns it and its fields, and no other copy exists. Returns the list."""
    encoded = encode_part(conversation_id)
    hash_key = f"{prefix}{{{encoded}}}"
    items = raw.lrange(f"{hash_key}:messages", 0, -1)
    assert raw.hget(hash_key, "_search:messages") == FIELDS
    base = int(raw.hget(hash_key, "_mbase:messages") or 0)
    expected_keys = [f"{prefix}#m{{{encoded}}}:messages:{base + i}" for i in range(len(items))]
    assert copy_keys(raw, prefix, conversation_id) == set(expected_keys)
    pipe = raw.pipeline(transaction=False)
    for key in expected_keys:
        pipe.hgetall(key)
    for i, (item, copy) in enumerate(zip(items, pipe.execute(), strict=True)):
        expected = {"element": item, "conversation": encoded, "attribute": "messages", "n": str(base + i)}
        assert copy == {**expected, **copied_fields(json.loads(item))}, i
    return [json.loads(item) for item in items]


def check_not_searchable(raw: redis.Redis, prefix: str, conversation_id: str) -> None:
    hash_key = f"{prefix}{{{encode_part(conversation_id)}}}"
    assert copy_keys(raw, prefix, conversation_id) == set()
    assert raw.hmget(hash_key, "_search:messages", "_mbase:messages") == [None, None]


def found(server: RedisProcess, prefix: str, text: str | None = None, **options: Any) -> list[MessageMatch]:
    options.setdefault("limit", None)
    return ConversationMemory.search_messages(text, url=server.url, prefix=prefix, **options)


def message(n: int) -> Any:
    """The n-th message of a random history: chat messages, OpenAI content parts, a plain
    string, and a tool call without content."""
    kind = n % 5
    if kind == 0:
        return {"role": "user", "content": f"question {n} about a Refund"}
    if kind == 1:
        return {"role": "assistant", "content": f"answer {n}"}
    if kind == 2:
        parts = [
            {"type": "text", "text": f"see photo {n}"},
            {"type": "image_url", "image_url": {"url": "https://x/y.png"}},
        ]
        return {"role": "user", "content": parts}
    if kind == 3:
        return f"plain note {n}"
    return {"role": "assistant", "content": None, "tool_calls": [{"id": f"call{n}", "type": "function"}]}


def _has(item: Any, text: str) -> bool:
    content = copied_fields(item).get("content")
    return content is not None and set(words(search_text(text))) <= set(words(content))
