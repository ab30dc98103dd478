"""The seed document's agent processes, verbatim but for the connection settings.

Each function runs in its own process (multiprocessing "spawn"); REDIS_URL and REDIS_PREFIX
are set in the environment by the test, so ``ConversationMemory(conversation_id=...)`` is
called exactly as the seed writes it.
"""

from __future__ import annotations

import os

from redis_memory import ConversationMemory


def configure(url: str, prefix: str) -> None:
    """Point the library at the test server, as a deployment would with REDIS_URL."""
    os.environ["REDIS_URL"] = url
    os.environ["REDIS_PREFIX"] = prefix


def agent_process_1(url: str, prefix: str) -> None:
    """Seed, "Accessing from Different Processes", Agent Process 1."""
    configure(url, prefix)
    mem = ConversationMemory(conversation_id="conv_123")
    mem.messages.append({"role": "user", "content": "What's the weather?"})


def agent_process_2(url: str, prefix: str) -> list[dict[str, str]]:
    """Seed, "Accessing from Different Processes", Agent Process 2."""
    configure(url, prefix)
    mem2 = ConversationMemory(conversation_id="conv_123")
    return mem2.messages.copy()


def intent_classifier(url: str, prefix: str) -> None:
    """Seed, "Multi-Agent Systems", Agent 1."""
    configure(url, prefix)
    mem = ConversationMemory(conversation_id="multi_agent_session")
    mem.detected_intent = "technical_support"
    mem.confidence = 0.95


def context_manager(url: str, prefix: str) -> None:
    """Seed, "Multi-Agent Systems", Agent 2."""
    configure(url, prefix)
    mem2 = ConversationMemory(conversation_id="multi_agent_session")
    if mem2.detected_intent == "technical_support":
        mem2.assigned_specialist = "tech_agent_3"


def specialist(url: str, prefix: str) -> None:
    """Seed, "Multi-Agent Systems", Agent 3."""
    configure(url, prefix)
    mem3 = ConversationMemory(conversation_id="multi_agent_session")
    if hasattr(mem3, "assigned_specialist"):
        mem3.resolution_status = "in_progress"


def chatbot_history(url: str, prefix: str, conv_id: str) -> list[dict[str, str]]:
    """Seed, "Complete Chat Bot", "From another process/pod": the same conversation's history."""
    configure(url, prefix)
    return ConversationMemory(conversation_id=conv_id).messages.copy()
