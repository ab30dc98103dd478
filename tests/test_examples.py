"""Every script in examples/ runs, as a subprocess, against the fixture's servers.

Each example chooses its server as the library does: ``REDIS_URL`` names the test's server
(with the modules and without) and ``REDIS_PREFIX`` is fresh per test, so nothing reaches the
embedded server or another test's keys. The scripts start their own further processes (the
chat bot's second process, the three agents, uvicorn's workers, the resumed graph).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from redis_memory import ConversationMemory
from redis_memory import server as embedded
from redis_memory.integrations.langgraph import RedisMemorySaver
from tests.servers import RedisProcess

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
GUARD = 120  # seconds: a hung example fails the test instead of hanging the suite


def environment(server: RedisProcess, prefix: str) -> dict[str, str]:
    """The environment of an example: this test's server and prefix, nothing else chosen."""
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_HOST", "REDIS_PORT", "REDIS_CLUSTER")}
    env.update(REDIS_URL=server.url, REDIS_PREFIX=prefix, PYTHONPATH=str(ROOT))
    return env


def run_example(name: str, server: RedisProcess, prefix: str, *args: str) -> str:
    """Run ``examples/<name>`` to the end; assert it exits 0 and return its output."""
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args],
        env=environment(server, prefix),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=GUARD,
        check=False,
    )
    assert done.returncode == 0, f"{name} exited {done.returncode}\n{done.stdout}\n{done.stderr}"
    assert f"Redis: {server.url}" in done.stdout or name == "fastapi_service.py"
    return done.stdout


def stored_keys(raw: redis.Redis, prefix: str) -> list[str]:
    """The keys under ``prefix``: what the example wrote where it was told to."""
    return list(raw.scan_iter(match=f"{prefix}*", count=1000))


def test_chatbot(server: RedisProcess, prefix: str, raw: redis.Redis) -> None:
    out = run_example("chatbot.py", server, prefix)
    assert "[process 1] bot:  Echo: What's the weather?" in out
    assert "[process 2] conversation 'user_alice_123': 4 messages" in out
    assert "[process 2]   4. assistant: Echo: What's the weather?" in out
    assert "[process 2] message_count = 4" in out
    assert any("user_alice_123" in key for key in stored_keys(raw, prefix))
    stored = ConversationMemory("user_alice_123", url=server.url, prefix=prefix)
    said = ["Hello!", "Echo: Hello!", "What's the weather?", "Echo: What's the weather?"]
    assert [m["content"] for m in stored.messages] == said


@pytest.mark.parametrize(
    ("question", "intent", "specialist"),
    [
        ("The app shows an error after the update and I cannot login.", "technical_support", "tech_agent_3"),
        ("Please refund the double charge on my invoice", "billing", "billing_agent_1"),
    ],
)
def test_multi_agent(
    server: RedisProcess, prefix: str, raw: redis.Redis, question: str, intent: str, specialist: str
) -> None:
    out = run_example("multi_agent.py", server, prefix, *question.split())
    lines = [line.strip() for line in out.splitlines()]
    transcript = [
        line.split(": ", 1)[0].split(". ", 1)[1].strip() for line in lines if line[:3] in ("1. ", "2. ", "3. ", "4. ")
    ]
    assert transcript == ["user", "classifier", "context_manager", specialist]
    assert f"1.            user: {question}" in out
    assert f"classifier: intent {intent}" in out
    assert f"context_manager: assigned to {specialist}" in out
    assert f"detected_intent={intent}" in out and f"assigned_specialist={specialist}" in out
    assert "resolution_status=resolved state=resolved" in out
    assert (
        "[front desk] handoff completed: agent exit codes {'classifier': 0, 'context_manager': 0, 'specialist': 0}"
        in out
    )
    # The conversation is in Redis under the test's prefix, resolved, with its four messages.
    (conversation_id,) = {line.split("'")[1] for line in lines if line.startswith("[front desk] conversation")}
    mem_keys = [key for key in stored_keys(raw, prefix) if conversation_id in key]
    assert mem_keys


def test_without_redis_url_the_agents_share_the_embedded_server() -> None:
    """As ``make run``: no REDIS_URL, so the front desk and its three agents (four processes)
    all find one embedded server (a home of this test's own, stopped after)."""
    home = Path(tempfile.mkdtemp(prefix="rmx", dir="/tmp"))  # short: a unix socket path is short
    env = {k: v for k, v in os.environ.items() if not k.startswith("REDIS_")}
    env.update(REDIS_MEMORY_HOME=str(home), PYTHONPATH=str(ROOT))
    try:
        done = subprocess.run(
            [sys.executable, str(EXAMPLES / "multi_agent.py")],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=GUARD,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert f"Redis: unix://{home}" in done.stdout
        assert "[front desk] handoff completed" in done.stdout
        assert embedded.stop_server(home)  # it was running: the example started it
    finally:
        embedded.stop_server(home)
        shutil.rmtree(home, ignore_errors=True)


def test_langgraph_agent_resumes_in_a_second_process(server: RedisProcess, prefix: str, raw: redis.Redis) -> None:
    out = run_example("langgraph_agent.py", server, prefix)
    assert "[process 1] stopped before ('tools',): tool call {'name': 'add', 'args': {'numbers': [17.0, 25.0]}}" in out
    assert "[process 2] resumed thread" in out and "before ('tools',), 2 messages" in out
    assert "[process 2] agent: 17 + 25 = 42 (you asked: What is 17 plus 25?)" in out
    assert "[process 2] agent: 42 + 8 = 50 (you asked: and plus 8?)" in out
    assert "[process 2] total = 50, 8 messages" in out
    (thread_id,) = {line.split("'")[1] for line in out.splitlines() if line.startswith("[process 1] thread")}
    assert any(thread_id in key for key in stored_keys(raw, prefix))
    saved = RedisMemorySaver(url=server.url, prefix=prefix).get_tuple({"configurable": {"thread_id": thread_id}})
    assert saved is not None and saved.checkpoint["channel_values"]["total"] == 50


class Service:
    """``examples/fastapi_service.py`` running with uvicorn workers, and an HTTP client to it."""

    def __init__(self, process: subprocess.Popen[str], url: str) -> None:
        self.process = process
        self.url = url
        self.pids: set[int] = set()
        self._lock = threading.Lock()

    def request(self, method: str, path: str, **kwargs: object) -> httpx.Response:
        """One request on a new connection (so the workers take turns), recording the worker."""
        with httpx.Client(base_url=self.url, timeout=30) as client:
            response = client.request(method, path, **kwargs)  # type: ignore[arg-type]
        with self._lock:
            self.pids.add(int(response.headers["X-Worker-Pid"]))
        return response


def parent_pid(pid: int) -> int:
    """The parent of process ``pid`` (``/proc/<pid>/stat``: the field after the state)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[1])


def ready(url: str) -> bool:
    """Whether the service answers yet."""
    try:
        return httpx.get(f"{url}/health", timeout=5).status_code == 200
    except httpx.TransportError:
        return False


@pytest.fixture
def service(server: RedisProcess, prefix: str) -> Iterator[Service]:
    """The example service with 3 uvicorn workers on a free port, stopped (SIGTERM) after."""
    process = subprocess.Popen(
        [sys.executable, str(EXAMPLES / "fastapi_service.py"), "--port", "0", "--workers", "3"],
        env=environment(server, prefix),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group: the workers go with it if it must be killed
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        assert first.startswith("serving on http://127.0.0.1:"), first + (
            process.stderr.read() if process.stderr else ""
        )
        url = first.split()[2]
        waited = threading.Event()
        for _ in range(600):  # until the workers accept connections, or the process ends
            if ready(url) or process.poll() is not None:
                break
            waited.wait(0.1)
        assert process.poll() is None, process.communicate()[1]
        yield Service(process, url)
    finally:
        process.send_signal(signal.SIGTERM)  # uvicorn stops its workers, then exits
        try:
            process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()


def test_fastapi_service_workers_share_conversations(service: Service, server: RedisProcess, prefix: str) -> None:
    conversations = [f"chat-{n}" for n in range(4)]
    per_conversation = 15
    failures: list[str] = []

    def talk(conversation_id: str) -> None:
        """Post the messages of one conversation in order, each on a new connection."""
        for i in range(per_conversation):
            role = "user" if i % 2 == 0 else "assistant"
            response = service.request(
                "POST",
                f"/conversations/{conversation_id}/messages",
                json={"role": role, "content": f"{conversation_id} #{i}"},
            )
            if response.status_code != 201 or response.json()["message_count"] != i + 1:
                failures.append(f"{conversation_id} #{i}: {response.status_code} {response.text}")

    threads = [threading.Thread(target=talk, args=(c,)) for c in conversations]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []

    for conversation_id in conversations:
        body = service.request("GET", f"/conversations/{conversation_id}").json()
        assert [m["content"] for m in body["messages"]] == [f"{conversation_id} #{i}" for i in range(per_conversation)]
        assert [m["role"] for m in body["messages"]][:2] == ["user", "assistant"]
        assert body["message_count"] == per_conversation and body["state"] == "active"

    # The 3 workers served them: 3 processes, each a child of the uvicorn supervisor. (The
    # kernel hands connections to the workers: should one have had none yet, more requests,
    # 6 at a time, give it some.)
    for _ in range(50):
        if len(service.pids) == 3:
            break
        batch = [threading.Thread(target=service.request, args=("GET", "/health")) for _ in range(6)]
        for thread in batch:
            thread.start()
        for thread in batch:
            thread.join()
    assert len(service.pids) == 3, service.pids
    assert {parent_pid(pid) for pid in service.pids} == {service.process.pid}

    listed = service.request("GET", "/conversations", params={"state": "active"}).json()
    assert listed["ids"] == conversations
    assert service.request("POST", "/conversations/chat-0/close").json()["state"] == "closed"
    assert service.request("POST", "/conversations/chat-0/close").status_code == 409
    assert service.request("GET", "/conversations", params={"state": "active"}).json()["ids"] == conversations[1:]
    assert service.request("GET", "/conversations/nobody").status_code == 404
    bad = service.request("POST", "/conversations/chat-1/messages", json={"role": "robot", "content": "?"})
    assert bad.status_code == 422
    assert service.request("GET", "/conversations/chat-1").json()["message_count"] == per_conversation
    # What the workers wrote is in Redis, under the test's prefix, for any client to read.
    stored = ConversationMemory("chat-3", url=server.url, prefix=prefix)
    assert [m["content"] for m in stored.messages] == [f"chat-3 #{i}" for i in range(per_conversation)]
    assert stored.message_count == per_conversation


def test_fastapi_service_concurrent_first_messages(service: Service) -> None:
    """Many workers creating one conversation at once: every message is stored exactly once."""
    results: list[int] = []
    lock = threading.Lock()

    def post(n: int) -> None:
        response = service.request("POST", "/conversations/race/messages", json={"role": "user", "content": f"m{n}"})
        with lock:
            results.append(response.status_code)

    threads = [threading.Thread(target=post, args=(n,)) for n in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [201] * 12
    body = service.request("GET", "/conversations/race").json()
    assert sorted(m["content"] for m in body["messages"]) == sorted(f"m{n}" for n in range(12))
    assert body["message_count"] == 12
