"""The same workloads on a real Redis Cluster, and what a killed primary costs.

A cluster of three primaries, each with a replica, is formed on loopback ports from the same
``redis-server`` binary (``tests/cluster.py``, with RedisJSON and RediSearch loaded).

* **the original's cases** (``original.py``: append at history 0 to 100,000, scalar set and
  get, full reads), ours with ``cluster=True`` against raw redis-py's ``RedisCluster``;
* **agent loop** at P = 4, H = 10,000 and **16 processes appending to one conversation**:
  ``scale``'s workers, on the cluster, both sides: ours with ``cluster=True``, raw redis-py
  with its ``RedisCluster`` client (the bytes sent are every primary's);
* **a SIGKILLed primary**: one process appends as fast as it can to a conversation and
  prints each append Redis acknowledged; the primary holding it is SIGKILLed mid-stream and
  its replica takes over; afterwards the acknowledged appends missing from the list are
  counted, without and with ``wait_replicas=1``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import redis
import redis.cluster

KILL_WRITER = r"""
import sys, time
from redis_memory import ConversationMemory, RedisMemoryError
url, prefix, wait = sys.argv[1], sys.argv[2], int(sys.argv[3])
mem = ConversationMemory("victim", url=url, cluster=True, prefix=prefix, wait_replicas=wait, offline="raise")
mem.messages = []
print("ready", flush=True)
deadline = time.monotonic() + 12
n = 0
while time.monotonic() < deadline:
    try:
        mem.messages.append({"n": n})
        print(n, flush=True)  # acknowledged
    except RedisMemoryError as exc:
        print(f"error {n} {type(exc).__name__}", flush=True)
    n += 1
"""


def _killed_primary(cluster: Any, wait: int) -> dict[str, int]:
    """Appends acknowledged and lost when the primary is SIGKILLed mid-stream."""
    prefix = f"bk{uuid.uuid4().hex[:8]}:"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path), REDIS_MEMORY_RETRY_FOR="1")
    writer = subprocess.Popen(
        [sys.executable, "-c", KILL_WRITER, cluster.url, prefix, str(wait)], stdout=subprocess.PIPE, text=True, env=env
    )
    assert writer.stdout is not None
    assert writer.stdout.readline().strip() == "ready"
    time.sleep(1.0)
    victim = cluster.primary_and_replica(f"{prefix}{{victim}}")[0]
    victim.process.send_signal(signal.SIGKILL)
    victim.process.wait()
    out, _ = writer.communicate(timeout=120)
    acknowledged = [int(line) for line in out.splitlines() if line.strip().isdigit()]
    errors = sum(1 for line in out.splitlines() if line.startswith("error"))
    victim.start()
    cluster.wait_healthy()
    stored = redis.cluster.RedisCluster(host="127.0.0.1", port=cluster.ports[0])
    items = {json.loads(item)["n"] for item in stored.lrange(f"{prefix}{{victim}}:messages", 0, -1)}
    stored.close()
    lost = [n for n in acknowledged if n not in items]
    return {"acknowledged": len(acknowledged), "lost": len(lost), "errors": errors}


def run(turns: int, append_count: int, samples: int) -> list[str]:
    """Every case above; the report's lines."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    import original
    import scale

    from tests.cluster import ClusterProcesses

    lines = ["", "on a Redis Cluster: 3 primaries, each with a replica (loopback TCP)"]
    with tempfile.TemporaryDirectory(prefix="rm-bench-cluster-") as directory:
        cluster = ClusterProcesses(Path(directory), modules=True).start()
        try:
            pooled = original.measure(
                {"ours-cluster": Path(sys.executable), "raw-cluster": Path(sys.executable)}, cluster.ports[0], samples
            )
            lines.append("  the original's cases on the cluster (us, median / p90):")
            lines.extend(
                "  " + row for row in original.table(pooled, ["ours-cluster", "raw-cluster"], "raw-cluster")[0]
            )
            result = scale.agent_loop(cluster.url, "cluster", 4, 10_000, turns)
            for side, row in result.items():
                lines.append(
                    f"  agent loop P=4 H=10000 {side:<5} turn {row['latency_ms']:.2f} ms, {row['turns_per_s']:.0f}"
                    f" turns/s, sent {row['sent_per_turn']:.0f} B/turn (added {row['added_per_turn']:.0f}),"
                    f" lost {row['lost']}"
                )
            appended = scale.appends(cluster.url, "cluster", 16, append_count)
            for side, row in appended.items():
                lines.append(
                    f"  16 x {append_count} appends, one conversation, {side:<5} {row['seconds']:.2f} s,"
                    f" {row['appends_per_s']:.0f}/s, lost {row['lost']}"
                )
            for wait in (0, 1):
                figures = _killed_primary(cluster, wait)
                lines.append(
                    f"  SIGKILLed primary, wait_replicas={wait}: {figures['acknowledged']} appends acknowledged,"
                    f" {figures['lost']} of them lost; {figures['errors']} appends raised during the failover"
                )
        finally:
            cluster.stop()
    return lines
