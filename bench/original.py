"""The original ``redis-memory`` 0.4.3 side by side with this library and raw redis-py.

The original shares our module name, so it is installed into a virtualenv of its own
(``.bench-original/``, made on first use with ``pip install redis-memory==0.4.3``) and every
side runs in a fresh interpreter of its own: the original's, ours, and raw redis-py in ours.
All three talk to one private redis-server over TCP on loopback (the original knows no unix
sockets), started for this section. For each case the sides run one after another, three
rounds in a rotating order, and each side's samples are pooled; the table shows medians and
90th percentiles in microseconds, and each side's ratio to raw redis-py.

The same cases run on a Redis Cluster too (``bench/on_cluster.py``: sides ``ours-cluster``
and ``raw-cluster``, raw redis-py's ``RedisCluster``).

Cases: append at history 0 / 1,000 / 10,000 / 100,000 (``mem.messages.append(m)``; raw:
``RPUSH`` of ``json.dumps(m)``), scalar set and get (``mem.state = ...`` / ``mem.state``; raw:
``HSET`` / ``HGET``), full read at 1,000 and 10,000 (``list(mem.messages)``; raw: ``LRANGE 0
-1`` + ``json.loads``). The history is written before the clock starts. The original stores
each attribute as one JSON string and rewrites it whole on every append, so its appends get
fewer samples at the larger histories (the figure is the same per call).
"""

from __future__ import annotations

import json
import os
import socket
import statistics
import subprocess
import sys
import venv
from pathlib import Path
from typing import Any

from common import REPO_ROOT

ORIGINAL_VENV = REPO_ROOT / ".bench-original"

WORKER = r"""
import json, statistics, sys, time, uuid
side, port, case, history, samples = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
message = {"role": "user", "content": "x" * 180}
cid, prefix = uuid.uuid4().hex, f"bo{uuid.uuid4().hex[:8]}:"
on_cluster = side.endswith("-cluster")  # port: a node of a Redis Cluster
if side.startswith("raw"):
    import redis, redis.cluster
    if on_cluster:
        raw = redis.cluster.RedisCluster(host="127.0.0.1", port=port)
    else:
        raw = redis.Redis(host="127.0.0.1", port=port, single_connection_client=True)
    key = f"{prefix}{{{cid}}}"  # the list and the hash share a slot
    if history:
        for start in range(0, history, 1000):
            raw.rpush(key, *[json.dumps(message)] * min(1000, history - start))
    raw.hset(f"{key}:h", "state", "s")
    ops = {
        "append": lambda: raw.rpush(key, json.dumps(message)),
        "set": lambda: raw.hset(f"{key}:h", "state", "active"),
        "get": lambda: raw.hget(f"{key}:h", "state"),
        "read": lambda: [json.loads(item) for item in raw.lrange(key, 0, -1)],
    }
else:
    from redis_memory import ConversationMemory
    if side == "original":
        mem = ConversationMemory(cid, redis_hostname="127.0.0.1", redis_port=port, redis_prefix=prefix)
    else:
        mem = ConversationMemory(cid, url=f"redis://127.0.0.1:{port}/0", prefix=prefix, cluster=on_cluster)
    mem.messages = [message] * history
    mem.state = "s"
    time.sleep(0.2)
    len(mem.messages)
    ops = {
        "append": lambda: mem.messages.append(message),
        "set": lambda: setattr(mem, "state", "active"),
        "get": lambda: mem.state,
        "read": lambda: list(mem.messages),
    }
op = ops[case]
for _ in range(min(20, samples)):
    op()
times = []
for _ in range(samples):
    started = time.perf_counter_ns()
    op()
    times.append(time.perf_counter_ns() - started)
print(json.dumps(times))
"""


def original_python() -> Path:
    """The interpreter of the virtualenv holding the original package (made on first use)."""
    python = ORIGINAL_VENV / "bin" / "python"
    marker = ORIGINAL_VENV / ".installed-0.4.3"
    if not marker.exists():
        venv.create(ORIGINAL_VENV, with_pip=True, clear=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", "redis-memory==0.4.3"],
            check=True,
        )
        marker.write_text("redis-memory==0.4.3\n")
    return python


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


CASES = [
    ("append", 0),
    ("append", 1000),
    ("append", 10000),
    ("append", 100000),
    ("set", 0),
    ("get", 0),
    ("read", 1000),
    ("read", 10000),
]


def _samples(side: str, case: str, history: int, base: int) -> int:
    if case == "read":
        return max(20, base // (10 if history >= 10000 else 2))
    if side == "original" and case == "append" and history >= 10000:
        return max(10, base // (100 if history >= 100000 else 10))
    return base


def measure(pythons: dict[str, Path], port: int, samples: int) -> dict[tuple[str, int, str], list[int]]:
    """Every case on every side (a fresh interpreter each), three rounds in a rotating order;
    the samples (ns) pooled by ``(case, history, side)``. ``port``: the server's, or a node's
    of a cluster (sides ``ours-cluster`` / ``raw-cluster``)."""
    env = dict(os.environ, PYTHONPATH="")
    ours_env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    pooled: dict[tuple[str, int, str], list[int]] = {}
    sides = list(pythons)
    for round_number in range(3):
        order = sides[round_number % len(sides) :] + sides[: round_number % len(sides)]
        for case, history in CASES:
            for side in order:
                count = max(1, _samples(side, case, history, samples) // 3)
                isolated = ["-I"] if side == "original" else []  # never our package from the working directory
                args = [str(pythons[side]), *isolated, "-c", WORKER, side, str(port), case, str(history), str(count)]
                done = subprocess.run(
                    args, capture_output=True, text=True, check=False, env=env if side == "original" else ours_env
                )
                if done.returncode != 0:
                    raise RuntimeError(f"{side} {case} {history}: {done.stderr[-2000:]}")
                pooled.setdefault((case, history, side), []).extend(json.loads(done.stdout.strip().splitlines()[-1]))
    return pooled


def table(
    pooled: dict[tuple[str, int, str], list[int]], sides: list[str], raw: str
) -> tuple[list[str], dict[str, dict[int, float]]]:
    """The report's rows (median / p90 in us per side, each side's ratio to ``raw``), and the
    append medians by side and history."""
    others = [side for side in sides if side != raw]
    lines = [
        f"{'case':<22}" + "".join(f"{side:>20}" for side in sides) + "".join(f"{side + '/raw':>18}" for side in others)
    ]
    appends: dict[str, dict[int, float]] = {side: {} for side in sides}
    for case, history in CASES:
        figures = {}
        for side in sides:
            values = pooled[(case, history, side)]
            figures[side] = (statistics.median(values) / 1000, statistics.quantiles(values, n=10)[-1] / 1000)
            if case == "append":
                appends[side][history] = figures[side][0]
        label = f"{case} @ {history:,}" if case in ("append", "read") else case
        cells = "".join(f"{f'{figures[side][0]:.0f} / {figures[side][1]:.0f}':>20}" for side in sides)
        ratios = "".join(f"{figures[side][0] / figures[raw][0]:>17.3g}x" for side in others)
        lines.append(f"{label:<22}{cells}{ratios}")
    return lines, appends


def run(server_class: Any, directory: Path, samples: int) -> tuple[list[str], dict[str, dict[int, float]]]:
    """Every case, every side; the report's lines and the append medians by side and history."""
    pythons = {"original": original_python(), "ours": Path(sys.executable), "raw": Path(sys.executable)}
    port = _free_port()
    server = server_class(directory / "tcp", modules=True, port=port).start()
    try:
        pooled = measure(pythons, port, samples)
    finally:
        server.stop()
    lines = ["", "the original redis-memory 0.4.3, ours and raw redis-py (TCP loopback; us, median / p90)"]
    rows, appends = table(pooled, list(pythons), "raw")
    return lines + rows, appends


def plot(appends: dict[str, dict[int, float]], path: Path) -> None:
    """Append latency against history length, one line per side (matplotlib, PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7, 4.2), dpi=120)
    for side, label in (
        ("original", "redis-memory 0.4.3"),
        ("ours", "redis-memory (this)"),
        ("raw", "raw redis-py RPUSH"),
    ):
        points = sorted(appends[side].items())
        axis.plot([max(h, 1) for h, _ in points], [us for _, us in points], marker="o", label=label)
    axis.set_xscale("log")
    axis.set_yscale("log")
    axis.set_xlabel("messages already in the conversation (0 drawn at 1)")
    axis.set_ylabel("append latency, median (us)")
    axis.set_title("mem.messages.append(message)")
    axis.grid(True, which="both", alpha=0.3)
    axis.legend()
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    plt.close(figure)
