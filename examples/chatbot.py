"""The seed's "Complete Chat Bot", run across two real processes on the embedded server.

Process 1 (this script) starts a fresh conversation and sends two messages. Process 2 (a
separate Python interpreter started with ``subprocess``) opens the same conversation and
prints the history it finds in Redis.

No configuration is needed: with no ``REDIS_URL`` set, redis-memory starts (or reuses) its
own redis-server on a unix socket under ``~/.local/share/redis-memory`` (or
``$REDIS_MEMORY_HOME``). It keeps running after this script ends; stop it with
``python -m redis_memory.server stop``.

Run it with ``make run``, or ``.venv/bin/python examples/chatbot.py``.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from redis_memory import ConversationMemory, config

USER_ID = "alice_123"


def conversation_id_for(user_id: str) -> str:
    """The conversation id of a user: the same in every process (see :class:`ChatBot`)."""
    return f"user_{user_id}"


class ChatBot:
    """The seed's chat bot, with one change: the conversation id is deterministic.

    The seed builds ``f"user_{user_id}_{uuid.uuid4()}"``, a new conversation per instance, so
    a bot created in another process would find an empty history. Here the id is derived from
    the user id alone, so every process that creates ``ChatBot(user_id)`` opens the same
    conversation. (Passing the id to the other process would work as well.)
    """

    def __init__(self, user_id: str) -> None:
        self.conv_id = conversation_id_for(user_id)
        self.memory = ConversationMemory(conversation_id=self.conv_id)

        # Initialize conversation
        if not hasattr(self.memory, "messages"):
            self.memory.messages = []
            self.memory.created_at = datetime.now().isoformat()

    def send_message(self, user_message: str) -> str:
        """Send a user message and get a response."""
        # Store user message: one RPUSH, whatever the length of the history
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
        return f"Echo: {message}"

    def get_history(self) -> list[Any]:
        """Get conversation history."""
        return self.memory.messages if hasattr(self.memory, "messages") else []


def forget_conversation(conversation_id: str) -> None:
    """Delete every stored attribute of a conversation (the seed's cleanup loop).

    Each run starts from an empty conversation, so repeated runs print the same thing.
    """
    mem = ConversationMemory(conversation_id=conversation_id)
    for attr in dir(mem):
        if not attr.startswith("_"):
            # dir() also lists the class's own names (conversation_id, ...): not stored, skipped
            with contextlib.suppress(AttributeError):
                delattr(mem, attr)


def process_1() -> int:
    """Start a fresh conversation, send two messages, then let another process read it."""
    print(f"Redis: {config.resolve_url()}")
    forget_conversation(conversation_id_for(USER_ID))
    bot = ChatBot(user_id=USER_ID)

    print(f"[process 1] conversation {bot.conv_id!r}")
    for text in ("Hello!", "What's the weather?"):
        print(f"[process 1] user: {text}")
        print(f"[process 1] bot:  {bot.send_message(text)}")
    sys.stdout.flush()  # keep our lines before the child's in a pipe

    # Process 2: a separate Python interpreter; it inherits the environment (REDIS_MEMORY_HOME,
    # REDIS_URL, ...), so it reaches the same server, and derives the same conversation id.
    child = subprocess.run([sys.executable, __file__, "--process-2"], check=False)
    if child.returncode != 0:
        return child.returncode
    # What the command line shows for it: the console script beside this interpreter, with the
    # same environment (so the same server and prefix).
    print(f"[redis-memory show {bot.conv_id}]", flush=True)
    script = Path(sys.executable).with_name("redis-memory")
    return subprocess.run([str(script), "show", bot.conv_id], check=False).returncode


def process_2() -> int:
    """Open the same conversation in a new process and print the shared history."""
    bot2 = ChatBot(user_id=USER_ID)
    history = bot2.get_history()
    print(f"[process 2] conversation {bot2.conv_id!r}: {len(history)} messages")
    for number, message in enumerate(history, 1):
        print(f"[process 2]   {number}. {message['role']:>9}: {message['content']}")
    print(f"[process 2] message_count = {bot2.memory.message_count}")
    if len(history) != 4 or bot2.memory.message_count != 4:
        print("[process 2] expected 4 messages from process 1", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(process_2() if sys.argv[1:] == ["--process-2"] else process_1())
