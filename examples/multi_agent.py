"""The seed's multi-agent flow, in three real processes: classifier, context manager, specialist.

This script (the "front desk") opens a new support conversation, starts the three agents as
separate Python processes, each with its own ``ConversationMemory`` on the same conversation
id, and then appends the customer's message. The agents hand the conversation on through
Redis alone:

1. The **classifier** waits for the customer's message (``messages.wait_for_new()``: no
   polling), picks an intent with keyword rules, and in one transaction records
   ``detected_intent`` and ``confidence``, moves ``state`` from ``"new"`` to ``"classified"``
   (``compare_and_set``: only if no one else did) and appends its handoff note.
2. The **context manager** waits for that note, chooses a specialist for the intent, and in
   one transaction sets ``assigned_specialist``, ``state = "assigned"`` and appends its note.
3. The **specialist** waits for its assignment, marks ``resolution_status = "in_progress"``,
   answers, and in one transaction appends the answer and sets ``resolution_status`` and
   ``state`` to ``"resolved"``.

The front desk waits for the three processes, prints the transcript and the final
attributes, and exits 0 only when the handoff completed (every agent exited 0, the
conversation is resolved, the notes are in order).

No LLM is called: the agents decide with plain rules. With no ``REDIS_URL`` set, the
embedded server is used (as by ``make run``); ``REDIS_URL`` / ``REDIS_PREFIX`` choose another
server and key prefix. Run it with ``.venv/bin/python examples/multi_agent.py``, optionally
with the customer's message as arguments.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from redis_memory import ConversationMemory, config

WAIT_SECONDS = 30.0  # how long an agent waits for its turn before giving up

INTENT_KEYWORDS = {
    "technical_support": ("error", "crash", "bug", "install", "broken", "login"),
    "billing": ("invoice", "refund", "charge", "payment", "price"),
}
SPECIALISTS = {"technical_support": "tech_agent_3", "billing": "billing_agent_1", "general": "general_agent_1"}


def note(agent: str, content: str, **extra: Any) -> dict[str, Any]:
    """A transcript entry written by an agent."""
    return {"role": "assistant", "agent": agent, "content": content, "at": datetime.now(UTC).isoformat(), **extra}


def wait_for(mem: ConversationMemory, predicate: Callable[[dict[str, Any]], bool]) -> dict[str, Any] | None:
    """Block until the conversation holds a message for which ``predicate`` is true; return it.

    Each wait is a ``wait_for_new`` on the messages list (client tracking, no polling); None
    when nothing matching arrives within ``WAIT_SECONDS``.
    """
    seen = 0
    while True:
        messages = mem.messages
        for message in messages[seen:]:
            if predicate(message):
                return dict(message)
        seen = len(messages)
        if not messages.wait_for_new(after=seen, timeout=WAIT_SECONDS):
            return None


def classify(text: str) -> tuple[str, float]:
    """The intent of a customer's message and a confidence, by keywords."""
    words = text.lower()
    for intent, keywords in INTENT_KEYWORDS.items():
        hits = sum(keyword in words for keyword in keywords)
        if hits:
            return intent, min(0.99, 0.75 + 0.1 * hits)
    return "general", 0.5


def classifier(conversation_id: str) -> int:
    """Agent 1: read the customer's message, record the intent, hand on to the context manager."""
    mem = ConversationMemory(conversation_id=conversation_id)
    question = wait_for(mem, lambda m: m["role"] == "user")
    if question is None:
        print("[classifier] no customer message arrived", file=sys.stderr)
        return 1
    intent, confidence = classify(question["content"])
    with mem.transaction():  # all of it, or nothing: the next agent never sees half a handoff
        mem.compare_and_set("state", "new", "classified")
        mem.detected_intent = intent
        mem.confidence = confidence
        mem.messages.append(note("classifier", f"intent {intent} ({confidence:.2f})", handoff="context_manager"))
    return 0


def context_manager(conversation_id: str) -> int:
    """Agent 2: pick the specialist for the detected intent and assign the conversation."""
    mem = ConversationMemory(conversation_id=conversation_id)
    if wait_for(mem, lambda m: m.get("handoff") == "context_manager") is None:
        print("[context_manager] the classifier never handed on", file=sys.stderr)
        return 1
    specialist = SPECIALISTS[mem.detected_intent]
    with mem.transaction():
        mem.compare_and_set("state", "classified", "assigned")
        mem.assigned_specialist = specialist
        mem.messages.append(note("context_manager", f"assigned to {specialist}", handoff=specialist))
    return 0


def answer_for(intent: str, question: str) -> str:
    """The specialist's (rule-based) answer."""
    if intent == "technical_support":
        return "Please clear the app cache and sign in again; that fixes this error."
    if intent == "billing":
        return "I have opened a refund request; you will get an e-mail within two days."
    return f"Thanks for your message ({question!r}); a colleague will follow up."


def specialist(conversation_id: str) -> int:
    """Agent 3: once the context manager assigned the conversation, answer as that specialist."""
    mem = ConversationMemory(conversation_id=conversation_id)
    handoff = wait_for(mem, lambda m: m.get("agent") == "context_manager")
    if handoff is None:
        print("[specialist] the conversation was never assigned", file=sys.stderr)
        return 1
    name = mem.assigned_specialist
    if handoff["handoff"] != name:
        print(f"[specialist] the note names {handoff['handoff']}, the attribute {name}", file=sys.stderr)
        return 1
    mem.resolution_status = "in_progress"  # the seed's step: visible to every process at once
    question = next(m for m in mem.messages if m["role"] == "user")
    with mem.transaction():
        mem.compare_and_set("state", "assigned", "resolved")
        mem.resolution_status = "resolved"
        mem.messages.append(note(name, answer_for(mem.detected_intent, question["content"])))
    return 0


def spawn(*arguments: str) -> subprocess.Popen[bytes]:
    """Start one agent: this script again, in a new Python interpreter (same environment)."""
    return subprocess.Popen([sys.executable, __file__, *arguments])


def front_desk(question: str) -> int:
    """Open the conversation, start the three agents, send the question, print the outcome."""
    print(f"Redis: {config.resolve_url()}")
    conversation_id = f"support_{uuid.uuid4().hex[:12]}"
    mem = ConversationMemory(conversation_id=conversation_id)
    with mem.transaction():
        mem.messages = []
        mem.state = "new"
        mem.created_at = datetime.now(UTC)
    print(f"[front desk] conversation {conversation_id!r}")

    agents = {role: spawn(role, conversation_id) for role in ("classifier", "context_manager", "specialist")}
    # The agents are already waiting; the customer's message wakes the first one.
    mem.messages.append({"role": "user", "content": question, "at": datetime.now(UTC).isoformat()})
    codes = {name: process.wait() for name, process in agents.items()}

    final = ConversationMemory(conversation_id=conversation_id)
    transcript = final.messages.aslist()
    print("[front desk] transcript:")
    for number, message in enumerate(transcript, 1):
        print(f"  {number}. {message.get('agent', message['role']):>15}: {message['content']}")
    print(
        f"[front desk] detected_intent={final.detected_intent} confidence={final.confidence:.2f} "
        f"assigned_specialist={final.assigned_specialist} resolution_status={final.resolution_status} "
        f"state={final.state}"
    )
    authors = [message.get("agent", message["role"]) for message in transcript]
    completed = (
        all(code == 0 for code in codes.values())
        and authors == ["user", "classifier", "context_manager", final.assigned_specialist]
        and final.state == "resolved"
        and final.resolution_status == "resolved"
    )
    print(f"[front desk] handoff {'completed' if completed else 'FAILED'}: agent exit codes {codes}")
    return 0 if completed else 1


def main(argv: list[str]) -> int:
    """Dispatch: no role argument runs the front desk; a role runs that agent."""
    if argv[:1] == ["classifier"]:
        return classifier(argv[1])
    if argv[:1] == ["context_manager"]:
        return context_manager(argv[1])
    if argv[:1] == ["specialist"]:
        return specialist(argv[1])
    return front_desk(" ".join(argv) or "The app shows an error after the update and I cannot login.")


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
