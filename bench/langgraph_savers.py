"""LangGraph checkpointers side by side: ``RedisMemorySaver`` and ``langgraph-checkpoint-redis``.

``langgraph-checkpoint-redis`` (``RedisSaver``) is installed into a virtualenv of its own
(``.bench-langgraph/``, made on first use with ``pip install langgraph-checkpoint-redis==0.5.2
langgraph==1.2.24``, the langgraph of the project's own)
so nothing of it reaches the project's; each side runs in a fresh interpreter of its own (ours
in the project's virtualenv), against one private redis-server with RedisJSON and RediSearch
(``RedisSaver`` needs both), over its unix socket. Each side writes a thread of ``history``
checkpoints first (untimed; every checkpoint changes two channels, a counter and a 200-byte
text, as a chat turn would), then times each call on its own. Three rounds in a rotating order;
medians and 90th percentiles in microseconds.

Cases: ``put`` (the next checkpoint of the thread, chained to the last), ``get_tuple`` (the
thread's newest checkpoint, no checkpoint id given), ``list`` (``limit=10``, newest first).

Run alone: ``python bench/langgraph_savers.py``; ``make bench`` runs it as its last section
(``--skip-langgraph`` leaves it out, ``--only-langgraph`` runs only it).
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import venv
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
THEIRS_VENV = REPO_ROOT / ".bench-langgraph"
THEIRS = ["langgraph-checkpoint-redis==0.5.2", "langgraph==1.2.24"]  # it imports langgraph itself

WORKER = r"""
import json, sys, time, uuid
from datetime import datetime, timezone

from langgraph.checkpoint.base.id import uuid6

side, url, case, root = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[6]
history, samples = int(sys.argv[4]), int(sys.argv[5])
if side == "theirs":
    from langgraph.checkpoint.redis import RedisSaver

    context = RedisSaver.from_conn_string(url)
    saver = context.__enter__()
    saver.setup()
else:
    sys.path.insert(0, root)
    from redis_memory.integrations.langgraph import RedisMemorySaver

    saver = RedisMemorySaver(url=url, prefix=f"lb{uuid.uuid4().hex[:8]}:")
thread = uuid.uuid4().hex
config = {"configurable": {"thread_id": thread, "checkpoint_ns": ""}}
state = {"parent": None, "versions": {}, "step": 0}


def put():
    step = state["step"]
    versions = {ch: saver.get_next_version(state["versions"].get(ch), None) for ch in ("count", "note")}
    checkpoint = {
        "v": 1, "id": str(uuid6(clock_seq=step)), "ts": datetime.now(timezone.utc).isoformat(),
        "channel_values": {"count": step, "note": "x" * 200}, "channel_versions": versions,
        "versions_seen": {"agent": dict(state["versions"])}, "pending_sends": [], "updated_channels": None,
    }
    target = {"configurable": {"thread_id": thread, "checkpoint_ns": ""}}
    if state["parent"]:
        target["configurable"]["checkpoint_id"] = state["parent"]
    stored = saver.put(target, checkpoint, {"source": "loop", "step": step, "parents": {}}, versions)
    state.update(parent=stored["configurable"]["checkpoint_id"], versions=versions, step=step + 1)


for _ in range(history):
    put()
ops = {
    "put": put,
    "get_tuple": lambda: saver.get_tuple(config),
    "list": lambda: list(saver.list(config, limit=10)),
}
op = ops[case]
for _ in range(min(20, samples)):
    op()
check = saver.get_tuple(config)
assert check is not None and check.checkpoint["channel_values"]["note"] == "x" * 200, check
times = []
for _ in range(samples):
    started = time.perf_counter_ns()
    op()
    times.append(time.perf_counter_ns() - started)
print(json.dumps(times))
"""

CASES = [("put", 0), ("put", 1000), ("get_tuple", 100), ("get_tuple", 1000), ("list", 1000)]


def theirs_python() -> Path:
    """The interpreter of the virtualenv holding ``langgraph-checkpoint-redis`` (made on first use)."""
    python = THEIRS_VENV / "bin" / "python"
    marker = THEIRS_VENV / ".installed-0.5.2"
    if not marker.exists():
        venv.create(THEIRS_VENV, with_pip=True, clear=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", *THEIRS],
            check=True,
        )
        marker.write_text("\n".join(THEIRS) + "\n")
    return python


def measure(pythons: dict[str, Path], url: str, samples: int) -> dict[tuple[str, int, str], list[int]]:
    """Every side's samples of every case, pooled over three rounds in a rotating order."""
    found: dict[tuple[str, int, str], list[int]] = {}
    sides = list(pythons)
    for round_number in range(3):
        order = sides[round_number % len(sides) :] + sides[: round_number % len(sides)]
        for case, history in CASES:
            for side in order:
                done = subprocess.run(
                    [str(pythons[side]), "-c", WORKER, side, url, case, str(history), str(samples), str(REPO_ROOT)],
                    capture_output=True,
                    text=True,
                    timeout=900,
                    check=False,
                )
                if done.returncode != 0:
                    raise RuntimeError(f"{side} {case} {history}: {done.stderr[-2000:]}")
                found.setdefault((case, history, side), []).extend(json.loads(done.stdout))
    return found


def table(found: dict[tuple[str, int, str], list[int]]) -> list[str]:
    """The section's lines: per case, each side's median and p90 (us), and theirs / ours."""
    lines = [
        "",
        "LangGraph checkpointers: RedisMemorySaver (ours) and langgraph-checkpoint-redis 0.5.2 (theirs)",
        f"{'case':<22}{'ours p50':>10}{'ours p90':>10}{'theirs p50':>12}{'theirs p90':>12}{'theirs/ours':>13}",
    ]
    for case, history in CASES:
        figures: dict[str, tuple[float, float]] = {}
        for side in ("ours", "theirs"):
            micros = sorted(t / 1000 for t in found[(case, history, side)])
            figures[side] = (statistics.median(micros), micros[int(len(micros) * 0.9)])
        ratio = figures["theirs"][0] / figures["ours"][0]
        lines.append(
            f"{f'{case}, history {history:,}':<22}{figures['ours'][0]:>10.0f}{figures['ours'][1]:>10.0f}"
            f"{figures['theirs'][0]:>12.0f}{figures['theirs'][1]:>12.0f}{ratio:>12.2f}x"
        )
    return lines


def run(url: str, samples: int = 200) -> list[str]:
    """The section on the server at ``url`` (it needs RedisJSON and RediSearch)."""
    pythons = {"ours": Path(sys.executable), "theirs": theirs_python()}
    return table(measure(pythons, url, samples))


def main() -> int:
    """Run the section alone, on a private server with the modules."""
    sys.path.insert(0, str(REPO_ROOT))
    from tests.servers import RedisProcess

    with tempfile.TemporaryDirectory(prefix="rm-lg-bench-") as directory:
        server = RedisProcess(Path(directory) / "srv", modules=True).start()
        try:
            lines: Any = run(server.url, int(sys.argv[1]) if len(sys.argv) > 1 else 200)
        finally:
            server.stop()
    sys.stdout.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
