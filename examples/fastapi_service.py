"""A FastAPI chat service whose state lives only in redis-memory, served by several workers.

Every request opens the conversation it names (``ConversationMemory(conversation_id)``),
so any uvicorn worker process can serve any conversation: there is no state in the
workers. Each response carries the process id of the worker that served it (the
``X-Worker-Pid`` header and a ``worker_pid`` field), to see the work spread.

- ``POST /conversations/{id}/messages`` with ``{"role": ..., "content": ...}`` appends a
  message; in one transaction with it, ``message_count`` is incremented and
  ``last_activity`` set (the first message also sets ``state = "active"``).
- ``GET /conversations/{id}``: the messages and attributes (404 if it holds no messages).
- ``POST /conversations/{id}/close``: ``state`` from ``"active"`` to ``"closed"`` with
  ``compare_and_set`` (409 when it is not active).
- ``GET /conversations?state=active``: the ids of the conversations in that state, with
  ``ConversationMemory.find`` (RediSearch when the server has it, else a scan).

Run it with several workers, either of::

    .venv/bin/uvicorn examples.fastapi_service:app --workers 3
    .venv/bin/python examples/fastapi_service.py --workers 3 --port 8000

The second form takes ``--port 0`` for a free port and prints ``serving on <url>`` once
bound. The server is the one redis-memory chooses (``REDIS_URL`` / ``REDIS_PREFIX``, else the
embedded server, as ``make run``); the workers inherit the environment.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import uvicorn
from fastapi import FastAPI, HTTPException, Request, Response
from pydantic import BaseModel, Field

from redis_memory import MISSING, ConcurrentModificationError, ConversationMemory

app = FastAPI(title="redis-memory chat service")


class NewMessage(BaseModel):
    """The body of ``POST /conversations/{id}/messages``."""

    role: Literal["user", "assistant", "system"]
    content: str = Field(max_length=20_000)


@app.middleware("http")
async def worker_pid_header(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
    """Mark every response, errors included, with the process id of the worker that served it."""
    response = await call_next(request)
    response.headers["X-Worker-Pid"] = str(os.getpid())
    return response


@app.get("/health")
def health() -> dict[str, Any]:
    """Liveness: answers without touching Redis."""
    return {"ok": True, "worker_pid": os.getpid()}


@app.post("/conversations/{conversation_id}/messages", status_code=201)
def post_message(conversation_id: str, message: NewMessage) -> dict[str, Any]:
    """Append a message; the count and last activity change in the same transaction.

    The first message creates the conversation, guarded by ``compare_and_set`` on ``state``:
    when two workers create it at once, one transaction fails as a whole and that request
    appends instead.
    """
    mem = ConversationMemory(conversation_id=conversation_id)
    entry = {"role": message.role, "content": message.content}
    if not hasattr(mem, "messages"):
        try:
            with mem.transaction():
                mem.compare_and_set("state", MISSING, "active")  # only if nobody created it
                mem.messages = [entry]
                mem.message_count = 1
                mem.created_at = mem.last_activity = datetime.now(UTC)
            return {"conversation_id": conversation_id, "message_count": 1, "worker_pid": os.getpid()}
        except ConcurrentModificationError:
            pass  # another worker created it meanwhile: append below
    with mem.transaction() as tx:
        mem.messages.append(entry)  # RPUSH
        mem.incr("message_count")  # HINCRBY: its reply is the new count
        mem.last_activity = datetime.now(UTC)
    return {"conversation_id": conversation_id, "message_count": int(tx.results[1]), "worker_pid": os.getpid()}


@app.get("/conversations/{conversation_id}")
def get_conversation(conversation_id: str) -> dict[str, Any]:
    """The conversation's messages and attributes."""
    mem = ConversationMemory(conversation_id=conversation_id)
    if not hasattr(mem, "messages"):
        raise HTTPException(status_code=404, detail=f"no conversation {conversation_id!r}")
    return {
        "conversation_id": conversation_id,
        "state": getattr(mem, "state", None),
        "message_count": getattr(mem, "message_count", 0),
        "last_activity": mem.last_activity.isoformat() if hasattr(mem, "last_activity") else None,
        "messages": mem.messages.aslist(),
        "worker_pid": os.getpid(),
    }


@app.post("/conversations/{conversation_id}/close")
def close_conversation(conversation_id: str) -> dict[str, Any]:
    """Move the conversation from ``active`` to ``closed``, unless another request did first."""
    mem = ConversationMemory(conversation_id=conversation_id)
    if not mem.compare_and_set("state", "active", "closed"):
        raise HTTPException(status_code=409, detail=f"conversation {conversation_id!r} is not active")
    return {"conversation_id": conversation_id, "state": "closed", "worker_pid": os.getpid()}


@app.get("/conversations")
def list_conversations(state: str = "active") -> dict[str, Any]:
    """The ids of the conversations in ``state`` (``find``; one FT.SEARCH with RediSearch)."""
    found = ConversationMemory.find(state=state, limit=None)
    return {"state": state, "ids": sorted(c.conversation_id for c in found), "worker_pid": os.getpid()}


def free_port() -> int:
    """A TCP port nobody listens on now (the OS picks it)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def main(argv: list[str]) -> int:
    """Serve the app with uvicorn and several worker processes."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000, help="0: a free port")
    parser.add_argument("--workers", type=int, default=3)
    args = parser.parse_args(argv)
    port = args.port or free_port()
    print(f"serving on http://{args.host}:{port} with {args.workers} workers", flush=True)
    # An import string (not the app object) is what lets uvicorn start several workers.
    uvicorn.run(
        "fastapi_service:app",
        app_dir=str(Path(__file__).resolve().parent),
        host=args.host,
        port=port,
        workers=args.workers,
        log_level="warning",
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
