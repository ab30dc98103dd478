"""A LangGraph agent checkpointed in Redis, stopped in one process and resumed in another.

The graph is a small tool-using agent with rule-based nodes (no LLM): ``agent`` reads the
last message and either asks for the ``add`` tool (when the user's message holds numbers)
or answers; ``tools`` runs the tool. It is compiled with
``RedisMemorySaver`` and ``interrupt_before=["tools"]``: a human approves each tool call.

- Process 1 (this script) starts a new thread, sends "What is 17 plus 25?", and the graph
  stops before ``tools``, its state stored in Redis. It then starts process 2.
- Process 2 (a new Python interpreter, ``--resume <thread id>``) compiles the same graph
  with a new ``RedisMemorySaver``, finds the pending tool call in the stored state,
  approves it (``invoke(None, ...)``), and the agent answers "17 + 25 = 42". It then sends
  a follow-up, "and plus 8?", which the agent answers from the thread's stored total.

With no ``REDIS_URL`` set, the embedded server is used (as by ``make run``); ``REDIS_URL`` /
``REDIS_PREFIX`` choose another server and key prefix. Run it with
``.venv/bin/python examples/langgraph_agent.py``.
"""

from __future__ import annotations

import operator
import re
import subprocess
import sys
import uuid
from typing import Annotated, Any, TypedDict

from langchain_core.runnables import RunnableConfig
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph

from redis_memory import config
from redis_memory.integrations.langgraph import RedisMemorySaver


class AgentState(TypedDict):
    """The graph's state: the messages (appended by each node) and the running total."""

    messages: Annotated[list[dict[str, Any]], operator.add]
    total: float


def agent(state: AgentState) -> dict[str, Any]:
    """Ask for the ``add`` tool when the user gave numbers; answer once the tool has run."""
    last = state["messages"][-1]
    if last["role"] == "tool":
        question = next(m for m in reversed(state["messages"]) if m["role"] == "user")
        return {"messages": [{"role": "assistant", "content": f"{last['content']} (you asked: {question['content']})"}]}
    numbers = [float(n) for n in re.findall(r"-?\d+(?:\.\d+)?", last["content"])]
    if not numbers:
        return {"messages": [{"role": "assistant", "content": "Give me some numbers to add."}]}
    if last["content"].lower().startswith("and"):  # a follow-up: add to what we have
        numbers.insert(0, state.get("total", 0.0))
    call = {"name": "add", "args": {"numbers": numbers}}
    return {"messages": [{"role": "assistant", "content": "", "tool_call": call}]}


def tools(state: AgentState) -> dict[str, Any]:
    """Run the requested tool: ``add`` sums its numbers."""
    numbers = state["messages"][-1]["tool_call"]["args"]["numbers"]
    total = sum(numbers)
    shown = " + ".join(f"{n:g}" for n in numbers)
    return {"messages": [{"role": "tool", "content": f"{shown} = {total:g}"}], "total": total}


def route(state: AgentState) -> str:
    """After ``agent``: to ``tools`` when it asked for one, else the end."""
    return "tools" if "tool_call" in state["messages"][-1] else END


def build() -> CompiledStateGraph[Any, Any, Any, Any]:
    """The agent graph, checkpointed in Redis, stopping before each tool call."""
    builder = StateGraph(AgentState)
    builder.add_node("agent", agent)
    builder.add_node("tools", tools)
    builder.add_edge(START, "agent")
    builder.add_conditional_edges("agent", route, ["tools", END])
    builder.add_edge("tools", "agent")
    return builder.compile(checkpointer=RedisMemorySaver(), interrupt_before=["tools"])


def thread(thread_id: str) -> RunnableConfig:
    """The run configuration of one thread."""
    return {"configurable": {"thread_id": thread_id}}


def process_1() -> int:
    """Start a thread and run it until the agent asks for a tool; then resume in process 2."""
    print(f"Redis: {config.resolve_url()}")
    thread_id = f"calc-{uuid.uuid4().hex[:12]}"
    graph = build()
    question = "What is 17 plus 25?"
    print(f"[process 1] thread {thread_id!r}, user: {question}")
    graph.invoke({"messages": [{"role": "user", "content": question}], "total": 0.0}, thread(thread_id))
    state = graph.get_state(thread(thread_id))
    print(f"[process 1] stopped before {state.next}: tool call {state.values['messages'][-1]['tool_call']}")
    sys.stdout.flush()  # keep our lines before the child's in a pipe
    child = subprocess.run([sys.executable, __file__, "--resume", thread_id], check=False)
    return child.returncode


def process_2(thread_id: str) -> int:
    """Resume the stored thread: approve the pending tool call, then ask a follow-up."""
    graph = build()  # a new saver: everything comes from Redis
    state = graph.get_state(thread(thread_id))
    if state.next != ("tools",):
        print(f"[process 2] expected a pending tool call, found next={state.next}", file=sys.stderr)
        return 1
    print(f"[process 2] resumed thread {thread_id!r} before {state.next}, {len(state.values['messages'])} messages")
    result = graph.invoke(None, thread(thread_id))  # approve: run the tool, then the agent
    print(f"[process 2] agent: {result['messages'][-1]['content']}")

    follow_up = "and plus 8?"
    print(f"[process 2] user: {follow_up}")
    graph.invoke({"messages": [{"role": "user", "content": follow_up}]}, thread(thread_id))
    result = graph.invoke(None, thread(thread_id))  # approve the second tool call
    print(f"[process 2] agent: {result['messages'][-1]['content']}")
    history = len(list(graph.get_state_history(thread(thread_id))))
    print(f"[process 2] total = {result['total']:g}, {len(result['messages'])} messages, {history} checkpoints")
    return 0 if result["total"] == 50 else 1


if __name__ == "__main__":
    raise SystemExit(process_2(sys.argv[2]) if sys.argv[1:2] == ["--resume"] else process_1())
