"""Every block of ../shared/seed/agent-memory.md, as written (LLM blocks: test_llm_clients.py)."""

from __future__ import annotations

import multiprocessing
import os
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
import redis
import redis.cluster

from redis_memory import ConversationMemory, connections
from tests import seed_agents
from tests.cluster import ClusterProcesses
from tests.servers import RedisProcess


@pytest.fixture(params=["one server", "cluster"])
def seed_env(
    request: pytest.FixtureRequest,
    server: RedisProcess,
    clusters: dict[str, ClusterProcesses],
    prefix: str,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[tuple[str, str]]:
    """Configure the library through the environment, so the seed's calls stay verbatim: on
    one server (``REDIS_URL``), and on a Redis Cluster (``REDIS_URL`` + ``REDIS_CLUSTER=1``)."""
    url = server.url
    if request.param == "cluster":
        url = clusters["modules" if server.modules else "plain"].url
        monkeypatch.setenv("REDIS_CLUSTER", "1")
    monkeypatch.setenv("REDIS_URL", url)
    monkeypatch.setenv("REDIS_PREFIX", prefix)
    yield url, prefix
    if request.param == "cluster":
        connections.reset()


def stored_keys(url: str, pattern: str) -> list[str]:
    """The keys matching ``pattern`` on the server, or on every primary of the cluster."""
    if os.environ.get("REDIS_CLUSTER") == "1":
        client = redis.cluster.RedisCluster.from_url(url, decode_responses=True)
        try:
            return sorted(client.keys(pattern, target_nodes=redis.cluster.RedisCluster.PRIMARIES))
        finally:
            client.close()
    client = redis.Redis.from_url(url, decode_responses=True)
    try:
        return sorted(client.keys(pattern))
    finally:
        client.close()


def in_process(function: Callable[..., Any], *args: object) -> Any:
    """Run ``function(*args)`` in a separate Python process and return its result."""
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(function, args)


def test_create(seed_env: tuple[str, str]) -> None:
    conversation_id = str(uuid.uuid4())
    mem = ConversationMemory(conversation_id=conversation_id)
    assert mem.conversation_id == conversation_id


def test_basic_usage(seed_env: tuple[str, str]) -> None:
    conv_id = "conversation_123"
    mem = ConversationMemory(conversation_id=conv_id)
    mem.messages = [
        {"role": "user", "content": "Hello!"},
        {"role": "assistant", "content": "Hi! How can I help you?"},
    ]
    mem.user_name = "Alice"
    mem.created_at = "2025-12-24T10:00:00"
    mem.context = {"topic": "technical support"}

    again = ConversationMemory(conversation_id=conv_id)
    assert again.messages == [
        {"role": "user", "content": "Hello!"},
        {"role": "assistant", "content": "Hi! How can I help you?"},
    ]
    assert again.user_name == "Alice"
    assert again.created_at == "2025-12-24T10:00:00"
    assert again.context == {"topic": "technical support"}


def test_accessing_from_different_processes(seed_env: tuple[str, str]) -> None:
    url, prefix = seed_env
    ConversationMemory(conversation_id="conv_123").messages = [{"role": "system", "content": "be brief"}]
    in_process(seed_agents.agent_process_1, url, prefix)
    history = in_process(seed_agents.agent_process_2, url, prefix)
    assert history == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "What's the weather?"},
    ]


def test_conversation_context(seed_env: tuple[str, str]) -> None:
    mem = ConversationMemory(conversation_id="ctx")
    mem.user_profile = {
        "name": "Alice",
        "preferences": {"language": "en", "tone": "casual"},
        "history_summary": "Regular customer, technical background",
    }
    mem.state = "active"
    mem.current_topic = "billing_inquiry"
    mem.intent_history = ["greeting", "billing_question"]
    mem.started_at = "2025-12-24T10:00:00"
    mem.last_activity = "2025-12-24T10:15:00"
    mem.total_messages = len(mem.messages) if hasattr(mem, "messages") else 0

    again = ConversationMemory(conversation_id="ctx")
    assert again.user_profile["preferences"] == {"language": "en", "tone": "casual"}
    assert again.state == "active" and again.current_topic == "billing_inquiry"
    assert again.intent_history == ["greeting", "billing_question"]
    assert again.total_messages == 0
    again.messages = [{"role": "user", "content": "x"}]
    mem.total_messages = len(mem.messages) if hasattr(mem, "messages") else 0
    assert ConversationMemory(conversation_id="ctx").total_messages == 1


def test_multi_agent_systems(seed_env: tuple[str, str]) -> None:
    url, prefix = seed_env
    in_process(seed_agents.intent_classifier, url, prefix)
    in_process(seed_agents.context_manager, url, prefix)
    in_process(seed_agents.specialist, url, prefix)
    mem = ConversationMemory(conversation_id="multi_agent_session")
    assert mem.detected_intent == "technical_support"
    assert mem.confidence == 0.95
    assert mem.assigned_specialist == "tech_agent_3"
    assert mem.resolution_status == "in_progress"


def cleanup_old_conversations(conversation_ids: list[str], max_age_days: int = 7) -> None:
    """Remove conversations older than max_age_days."""
    cutoff_date = datetime.now() - timedelta(days=max_age_days)

    for conv_id in conversation_ids:
        mem = ConversationMemory(conversation_id=conv_id)
        if hasattr(mem, "last_activity"):
            last_activity = datetime.fromisoformat(mem.last_activity)
            if last_activity < cutoff_date:
                # Clear conversation data
                for attr in dir(mem):
                    if not attr.startswith("_"):
                        try:  # noqa: SIM105 - the seed's code, verbatim
                            delattr(mem, attr)
                        except AttributeError:
                            pass


def test_conversation_cleanup(seed_env: tuple[str, str]) -> None:
    url, prefix = seed_env
    old, recent = ConversationMemory(conversation_id="old"), ConversationMemory(conversation_id="recent")
    for mem, when in ((old, datetime.now() - timedelta(days=30)), (recent, datetime.now())):
        mem.last_activity = when.isoformat()
        mem.messages = [{"role": "user", "content": "hi"}]
        mem.context = {"topic": "billing"}
        mem.state = "active"
        mem.total_messages = 1
    cleanup_old_conversations(["old", "recent", "never-existed"])
    assert not hasattr(ConversationMemory(conversation_id="old"), "last_activity")
    assert dir(ConversationMemory(conversation_id="old")) == dir(ConversationMemory(conversation_id="never-existed"))
    assert stored_keys(url, f"{prefix}{{old}}*") == []
    assert ConversationMemory(conversation_id="recent").state == "active"


class ChatBot:
    """The seed's "Complete Chat Bot", verbatim."""

    def __init__(self, user_id: str) -> None:
        self.conv_id = f"user_{user_id}_{uuid.uuid4()}"
        self.memory = ConversationMemory(conversation_id=self.conv_id)

        # Initialize conversation
        if not hasattr(self.memory, "messages"):
            self.memory.messages = []
            self.memory.created_at = datetime.now().isoformat()

    def send_message(self, user_message: str) -> str:
        """Send a user message and get a response."""
        # Store user message
        self.memory.messages.append({"role": "user", "content": user_message, "timestamp": datetime.now().isoformat()})

        # Generate response (placeholder)
        response = self.generate_response(user_message)

        # Store assistant message
        self.memory.messages.append({"role": "assistant", "content": response, "timestamp": datetime.now().isoformat()})

        # Update metadata
        self.memory.last_activity = datetime.now().isoformat()
        self.memory.message_count = len(self.memory.messages)

        return response

    def generate_response(self, message: str) -> str:
        """Generate a response (integrate your LLM here)."""
        # Placeholder - integrate OpenAI, LiteLLM, etc.
        return f"Echo: {message}"

    def get_history(self) -> list[Any]:
        """Get conversation history."""
        return self.memory.messages if hasattr(self.memory, "messages") else []


def test_complete_chat_bot(seed_env: tuple[str, str]) -> None:
    url, prefix = seed_env
    bot = ChatBot(user_id="alice_123")
    response = bot.send_message("Hello!")
    assert response == "Echo: Hello!"
    assert len(bot.get_history()) == 2
    assert bot.memory.message_count == 2
    # "From another process/pod": the conversation's history is shared. (The seed's second
    # ChatBot(user_id=...) draws a new uuid4, i.e. opens a NEW conversation, so its history is
    # empty; the shared history is reached through the conversation id.)
    history = in_process(seed_agents.chatbot_history, url, prefix, bot.conv_id)
    assert [(m["role"], m["content"]) for m in history] == [("user", "Hello!"), ("assistant", "Echo: Hello!")]
    bot2 = ChatBot(user_id="alice_123")
    assert bot2.get_history() == []
