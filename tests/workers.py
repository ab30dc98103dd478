"""Functions run in separate processes (multiprocessing "spawn") by the tests."""

from __future__ import annotations

from redis_memory import ConversationMemory


def append_many(url: str, prefix: str, conversation_id: str, worker: int, count: int) -> None:
    """Append ``count`` messages tagged with this worker's number, one call each."""
    mem = ConversationMemory(conversation_id, url=url, prefix=prefix)
    for n in range(count):
        mem.messages.append({"worker": worker, "n": n})


def update_own_keys(url: str, prefix: str, conversation_id: str, worker: int, count: int) -> None:
    """Set ``count`` keys of one shared dict that only this worker writes, one call each."""
    mem = ConversationMemory(conversation_id, url=url, prefix=prefix)
    for n in range(count):
        mem.state_map[f"w{worker}_{n}"] = n
        mem.state_map["shared"] = {"last": worker}  # every worker also races on one key


def nested_updates(url: str, prefix: str, conversation_id: str, worker: int, count: int) -> None:
    """Append to a list nested in a shared dict (JSON.ARRAPPEND / compare-and-set)."""
    mem = ConversationMemory(conversation_id, url=url, prefix=prefix)
    for n in range(count):
        mem.context["events"].append(f"{worker}:{n}")


def read_back(url: str, prefix: str, conversation_id: str, name: str) -> object:
    """Open the conversation in a fresh process and return one attribute as plain data."""
    value = getattr(ConversationMemory(conversation_id, url=url, prefix=prefix), name)
    return value.copy() if hasattr(value, "copy") else value


def increment(url: str, prefix: str, conversation_id: str, worker: int, count: int) -> None:
    """Increment one shared counter ``count`` times (HINCRBY through the library)."""
    mem = ConversationMemory(conversation_id, url=url, prefix=prefix)
    for _ in range(count):
        mem.incr("total_messages")
