"""Several processes on one conversation, and what the server keeps per message and per writer.

Every process is a fresh interpreter (``subprocess``) started before the clock and released
together (each waits on ``BLPOP`` of a start list), so start-up is not timed. Cases:

* **agent loop**: P processes (1, 4, 16) share a conversation of H messages (1,000 and
  10,000); each turn a process reads the whole history (``list(mem.messages)``, what it would
  hand to its LLM) and appends two messages (~230 bytes of JSON each). Raw redis-py does the
  same with ``LRANGE 0 -1`` + ``json.loads`` + two ``RPUSH``. Reported: median turn latency,
  turns per second over all processes, the bytes the server sent per turn (``INFO stats``
  ``total_net_output_bytes`` over the timed phase, divided by the turns), the bytes of the
  messages the other processes and this one added since its previous turn (2 x P messages),
  and messages lost (each process's appends are looked up afterwards: every one once, in its
  order). Acceptance: at P = 4, H = 10,000, sent per turn <= 3 x the bytes added since.
* **appends, one conversation**: 16 processes x 500 ``mem.messages.append(m)`` against 16 x
  500 raw ``RPUSH``; throughput over the whole run (first start to last end). Acceptance:
  within 1.5x of raw, 0 lost.
* **memory**: a conversation of 1,000 appended messages (its hash, list and op log, from
  ``MEMORY USAGE``) against a plain Redis List of the same JSON texts (acceptance <= 1.1x); and
  the op log of one writer after 100,000 writes (appends, scalar sets, increments; < 10 KB).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from typing import Any

import redis
import redis.cluster

from redis_memory import ConversationMemory

CONTENT = "x" * 180  # a message of ~230 bytes of JSON with its other keys

# Where a worker connects: ``where`` is the server's unix socket, or "cluster" (``url`` names a
# node of a Redis Cluster: raw redis-py uses its RedisCluster client, ours cluster=True). The
# raw side's keys carry the conversation's hash tag, so they share a slot on a cluster.
CONNECT = r"""
import json, sys, time
import redis, redis.cluster
url, where, prefix, key, worker, count, side = sys.argv[1:8]
worker, count = int(worker), int(count)
if where == "cluster":
    raw, options = redis.cluster.RedisCluster.from_url(url), {"cluster": True}
else:
    raw, options = redis.Redis(unix_socket_path=where, single_connection_client=True), {}
list_key = f"{prefix}raw:{{{key}}}"
"""

AGENT = (
    CONNECT
    + r"""
turns = count
CONTENT = "x" * 180
if side == "lib":
    from redis_memory import ConversationMemory
    mem = ConversationMemory(key, url=url, prefix=prefix, **options)
    len(mem.messages)  # this process's first read: not timed
else:
    raw.lrange(list_key, 0, -1)
raw.rpush(f"{prefix}ready:{{{key}}}", worker)
raw.blpop([f"{prefix}start:{{{key}}}"])
latencies, started = [], time.time()
for turn in range(turns):
    t0 = time.perf_counter()
    if side == "lib":
        history = list(mem.messages)
        mem.messages.append({"role": "user", "content": CONTENT, "w": worker, "t": turn})
        mem.messages.append({"role": "assistant", "content": CONTENT, "w": worker, "t": turn})
    else:
        history = [json.loads(item) for item in raw.lrange(list_key, 0, -1)]
        raw.rpush(list_key, json.dumps({"role": "user", "content": CONTENT, "w": worker, "t": turn}))
        raw.rpush(list_key, json.dumps({"role": "assistant", "content": CONTENT, "w": worker, "t": turn}))
    latencies.append(time.perf_counter() - t0)
print(json.dumps({"started": started, "ended": time.time(), "latencies": latencies}))
"""
)

APPENDER = (
    CONNECT
    + r"""
if side in ("lib", "held"):
    from redis_memory import ConversationMemory
    mem = ConversationMemory(key, url=url, prefix=prefix, **options)
    held = mem.messages
else:
    raw.ping()
raw.rpush(f"{prefix}ready:{{{key}}}", worker)
raw.blpop([f"{prefix}start:{{{key}}}"])
started = time.time()
for n in range(count):
    message = {"role": "user", "content": "append", "w": worker, "n": n}
    if side == "lib":
        mem.messages.append(message)
    elif side == "held":
        held.append(message)
    else:
        raw.rpush(list_key, json.dumps(message))
print(json.dumps({"started": started, "ended": time.time()}))
"""
)


def _raw(url: str, where: str) -> Any:
    """A plain redis-py client of the server (``where``: its socket) or of the cluster."""
    if where == "cluster":
        return redis.cluster.RedisCluster.from_url(url)
    return redis.Redis(unix_socket_path=where)


def _options(where: str) -> dict[str, Any]:
    return {"cluster": True} if where == "cluster" else {}


def _run_workers(
    code: str, raw: Any, url: str, where: str, prefix: str, key: str, processes: int, args: list[str]
) -> tuple[list[dict[str, Any]], int]:
    """Start the workers, release them together once all are ready; their reports and the
    bytes the server sent from the release to the end."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", code, url, where, prefix, key, str(worker), *args],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        for worker in range(processes)
    ]
    while raw.llen(f"{prefix}ready:{{{key}}}") < processes:  # every worker connected and waiting
        if any(worker.poll() is not None for worker in workers):
            raise RuntimeError("a bench worker ended before the start")
        time.sleep(0.05)
    before = _sent(raw)
    raw.rpush(f"{prefix}start:{{{key}}}", *["go"] * processes)
    results = []
    for worker in workers:
        out, _ = worker.communicate(timeout=900)
        if worker.returncode != 0:
            raise RuntimeError(f"a bench worker failed ({worker.returncode})")
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results, _sent(raw) - before


def _sent(raw: Any) -> int:
    """Bytes the server (every primary of a cluster) has sent so far."""
    if isinstance(raw, redis.cluster.RedisCluster):
        stats = raw.info("stats", target_nodes=redis.cluster.RedisCluster.PRIMARIES)
        return sum(int(info["total_net_output_bytes"]) for info in stats.values())
    return int(raw.info("stats")["total_net_output_bytes"])


def _lost(items: list[bytes], processes: int, per_worker: int, field: str) -> int:
    """Appends missing, duplicated or out of order, over all workers."""
    seen: dict[int, list[int]] = {}
    for item in items:
        element = json.loads(item)
        if isinstance(element, dict) and "w" in element:
            seen.setdefault(element["w"], []).append(element[field])
    lost = 0
    for worker in range(processes):
        got = seen.get(worker, [])
        expected = [n for n in range(per_worker) for _ in range(2)] if field == "t" else list(range(per_worker))
        lost += sum(1 for a, b in zip(got, expected, strict=False) if a != b) + abs(len(expected) - len(got))
    return lost


def agent_loop(url: str, where: str, processes: int, history: int, turns: int) -> dict[str, dict[str, Any]]:
    """One agent-loop case, both sides (see the module docstring); ``where``: the server's
    socket, or "cluster" (``url`` names a node of a Redis Cluster)."""
    raw = _raw(url, where)
    prefix = f"bs{uuid.uuid4().hex[:8]}:"
    seed = [{"role": "user", "content": CONTENT, "n": n} for n in range(history)]
    message_bytes = len(json.dumps({"role": "user", "content": CONTENT, "w": 10, "t": 100}, separators=(",", ":")))
    results: dict[str, dict[str, Any]] = {}
    for side in ("lib", "raw"):
        key = f"{side}-{processes}-{history}"
        if side == "lib":
            ConversationMemory(key, url=url, prefix=prefix, **_options(where)).messages = seed
            list_key = f"{prefix}{{{key}}}:messages"
        else:
            list_key = f"{prefix}raw:{{{key}}}"
            for start in range(0, history, 1000):
                raw.rpush(list_key, *[json.dumps(item) for item in seed[start : start + 1000]])
        runs, sent = _run_workers(AGENT, raw, url, where, prefix, key, processes, [str(turns), side])
        elapsed = max(run["ended"] for run in runs) - min(run["started"] for run in runs)
        latencies = [latency for run in runs for latency in run["latencies"]]
        items = raw.lrange(list_key, 0, -1)
        results[side] = {
            "latency_ms": statistics.median(latencies) * 1000,
            "turns_per_s": processes * turns / elapsed,
            "sent_per_turn": sent / (processes * turns),
            "added_per_turn": 2 * processes * message_bytes,
            "lost": _lost(items[history:], processes, turns, "t") + (len(items) - history - 2 * processes * turns != 0),
        }
    raw.close()
    return results


def appends(url: str, where: str, processes: int, count: int) -> dict[str, dict[str, Any]]:
    """16 processes appending to one conversation, both sides (``where`` as for :func:`agent_loop`)."""
    raw = _raw(url, where)
    prefix = f"ba{uuid.uuid4().hex[:8]}:"
    results: dict[str, dict[str, Any]] = {}
    for side in ("lib", "held", "raw"):
        key = f"{side}-appends"
        if side != "raw":
            ConversationMemory(key, url=url, prefix=prefix, **_options(where)).messages = []
            list_key = f"{prefix}{{{key}}}:messages"
        else:
            list_key = f"{prefix}raw:{{{key}}}"
        runs, _ = _run_workers(APPENDER, raw, url, where, prefix, key, processes, [str(count), side])
        elapsed = max(run["ended"] for run in runs) - min(run["started"] for run in runs)
        items = raw.lrange(list_key, 0, -1)
        results[side] = {
            "seconds": elapsed,
            "appends_per_s": processes * count / elapsed,
            "lost": _lost(items, processes, count, "n"),
        }
    raw.close()
    return results


def memory_per_message(url: str, socket: str, messages: int, writes: int) -> dict[str, float]:
    """Server memory of a conversation of appended messages against a plain list; op-log size."""
    raw = redis.Redis(unix_socket_path=socket)
    prefix = f"bm{uuid.uuid4().hex[:8]}:"
    mem = ConversationMemory("m", url=url, prefix=prefix)
    mem.messages = []
    texts = []
    for n in range(messages):
        element = {"role": "user", "content": CONTENT, "n": n}
        mem.messages.append(element)
        texts.append(json.dumps(element, separators=(",", ":")))
    raw.rpush(f"{prefix}plain", *texts)
    ours = sum(raw.memory_usage(key, samples=0) or 0 for key in raw.scan_iter(f"{prefix}*{{m}}*"))
    plain = raw.memory_usage(f"{prefix}plain", samples=0) or 1
    writer = ConversationMemory("w", url=url, prefix=prefix, max_messages=100)
    writer.messages = []
    for n in range(writes):
        if n % 3 == 0:
            writer.messages.append({"n": n})
        elif n % 3 == 1:
            writer.state = f"s{n % 5}"
        else:
            writer.incr("turns")
    oplog = raw.memory_usage(f"{prefix}~ops{{w}}", samples=0) or 0
    raw.close()
    return {"ours": ours, "plain": plain, "ratio": ours / plain, "oplog_bytes": oplog, "writes": writes}


def run(url: str, socket: str, turns: int, append_count: int, writes: int) -> list[str]:
    """Every case above; returns the report's lines (with the acceptance checks)."""
    lines = ["", "scale: processes on one conversation (fresh interpreters, released together)"]
    header = f"{'case':<28}{'side':<6}{'turn ms':>9}{'turns/s':>10}{'sent/turn':>12}{'added/turn':>12}{'lost':>6}"
    lines.append(header)
    checks = []
    for history in (1000, 10000):
        for processes in (1, 4, 16):
            result = agent_loop(url, socket, processes, history, turns)
            for side, row in result.items():
                lines.append(
                    f"{f'agent loop P={processes} H={history}':<28}{side:<6}{row['latency_ms']:>9.2f}"
                    f"{row['turns_per_s']:>10.0f}{row['sent_per_turn']:>12.0f}{row['added_per_turn']:>12.0f}"
                    f"{row['lost']:>6}"
                )
            if processes == 4 and history == 10000:
                lib = result["lib"]
                ratio = lib["sent_per_turn"] / lib["added_per_turn"]
                checks.append(
                    (ratio <= 3 and lib["lost"] == 0, f"agent loop P=4 H=10000: sent/added {ratio:.2f}x <= 3x, 0 lost")
                )
    result = appends(url, socket, 16, append_count)
    for side, row in result.items():
        rate = f"{row['appends_per_s']:.0f}/s"
        lines.append(
            f"{'16 x appends, one conv.':<28}{side:<6}{row['seconds']:>8.2f}s{rate:>10}{'':>24}{row['lost']:>6}"
        )
    for side, label in (("lib", "mem.messages.append"), ("held", "append to a list held")):
        ratio = result["raw"]["appends_per_s"] / result[side]["appends_per_s"]
        ok = ratio <= 1.5 and result[side]["lost"] == 0
        checks.append((ok, f"16 processes, one conversation, {label}: {ratio:.2f}x raw RPUSH <= 1.5x, 0 lost"))
    memory = memory_per_message(url, socket, 1000, writes)
    lines.append(
        f"memory: 1,000 appended messages {memory['ours']:.0f} B against a plain list {memory['plain']:.0f} B"
        f" ({memory['ratio']:.3f}x); op log of one writer after {writes:,} writes: {memory['oplog_bytes']:.0f} B"
    )
    checks.append(
        (memory["ratio"] <= 1.1, f"memory of 1,000 appended messages {memory['ratio']:.3f}x a plain list <= 1.1x")
    )
    checks.append(
        (memory["oplog_bytes"] < 10_000, f"op log after {writes:,} writes {memory['oplog_bytes']:.0f} B < 10 KB")
    )
    lines.append("")
    lines.extend(f"{'PASS' if ok else 'FAIL'}  {text}" for ok, text in checks)
    return lines
