"""What every bench case shares: the test message, the timed sides, their results and the run's context.

``measure()`` takes the alternating batches of every side of the in-server cases; ``Bench`` holds
the raw clients, the key prefix and the figures those cases collect for ``report.report()``; the
command-count helpers read ``INFO commandstats`` for the round-trip checks.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import redis

from redis_memory import ConversationMemory

REPO_ROOT = Path(__file__).resolve().parent.parent
SIDES = ("lib", "raw", "pool")

Op = Callable[[], Any]
Hook = Callable[[], None]


def message(index: int) -> dict[str, Any]:
    """A chat message of a realistic size (about 130 bytes of JSON)."""
    return {
        "role": "user" if index % 2 == 0 else "assistant",
        "content": f"Message number {index}: could you summarise what we decided about the deployment plan?",
        "n": index,
    }


def encode(value: object) -> str:
    """JSON text the way the library stores a list element (compact, UTF-8)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


@dataclass
class Side:
    """One side of a case: the timed operation and its untimed hooks."""

    op: Op
    before_each: Hook | None = None  # untimed, before every sample
    check: Callable[[Any], None] | None = None  # untimed, given every sample's result
    after_batch: Hook | None = None  # untimed, after every batch

    def run_batch(self, count: int) -> list[int]:
        """Take ``count`` samples; return their durations in nanoseconds."""
        op, before, check = self.op, self.before_each, self.check
        clock = time.perf_counter_ns
        durations: list[int] = []
        for _ in range(count):
            if before is not None:
                before()
            start = clock()
            result = op()
            durations.append(clock() - start)
            if check is not None:
                check(result)
        if self.after_batch is not None:
            self.after_batch()
        return durations


def _us(nanoseconds: float) -> float:
    return nanoseconds / 1000


@dataclass
class Result:
    """The samples of one case, in nanoseconds, per side (``lib``, ``raw``, ``pool``)."""

    name: str
    info: bool = False  # shown in the table, but no acceptance check uses it
    samples: dict[str, list[int]] = field(default_factory=lambda: {side: [] for side in SIDES})
    rounds: list[dict[str, float]] = field(default_factory=list)  # each round's batch median per side

    def median(self, side: str) -> float:
        """Median of ``side`` in microseconds."""
        return _us(statistics.median(self.samples[side]))

    def p90(self, side: str) -> float:
        """90th percentile of ``side`` in microseconds."""
        return _us(statistics.quantiles(self.samples[side], n=10, method="inclusive")[8])

    def ratio(self, side: str = "raw") -> float:
        """Library median / ``side`` median."""
        return self.median("lib") / self.median(side)

    @property
    def paired_ratio(self) -> float:
        """Median over rounds of (library batch median / raw batch median): robust to slow phases."""
        return statistics.median(medians["lib"] / medians["raw"] for medians in self.rounds)

    def row(self) -> tuple[str, ...]:
        """The table row (microseconds and ratios)."""
        return (
            self.name + (" (info)" if self.info else ""),
            f"{self.median('lib'):.1f}",
            f"{self.p90('lib'):.1f}",
            f"{self.median('raw'):.1f}",
            f"{self.p90('raw'):.1f}",
            _ratio_text(self.ratio()),
            _ratio_text(self.paired_ratio),
            f"{self.median('pool'):.1f}",
            _ratio_text(self.ratio("pool")),
        )


def _ratio_text(ratio: float) -> str:
    return f"{ratio:.2f}x" if ratio >= 0.1 else f"{ratio:.4f}x"


def measure(
    cases: dict[str, dict[str, Side]], samples: int, batch: int, warmup: int, info: bool = False
) -> list[Result]:
    """Take a batch from every side of every case in turn, the order rotating each round; warm up first.

    Cases measured together share their time windows, so they can be compared with each other
    (append at 10,000 against append at 0) as fairly as with their raw baselines.
    """
    order = [(case, side) for case in cases for side in SIDES]
    results = {case: Result(case, info=info) for case in cases}
    for targets, count in (({case: Result(case) for case in cases}, warmup), (results, samples)):
        for index in range(max(1, count // batch)):
            shift = index % len(order)
            medians: dict[str, dict[str, float]] = {case: {} for case in cases}
            for case, side in order[shift:] + order[:shift]:
                durations = cases[case][side].run_batch(batch)
                targets[case].samples[side] += durations
                medians[case][side] = statistics.median(durations)
            for case in cases:
                targets[case].rounds.append(medians[case])
    sys.stdout.write(f"  measured {', '.join(cases)}\n")
    sys.stdout.flush()
    return list(results.values())


def paired_growth(later: Result, first: Result) -> float:
    """Median over shared rounds of (library batch median of ``later`` / that of ``first``)."""
    return statistics.median(a["lib"] / b["lib"] for a, b in zip(later.rounds, first.rounds, strict=True))


def fill(client: redis.Redis, key: str, size: int) -> None:
    """RPUSH ``size`` messages onto ``key`` with raw redis-py, in chunks."""
    for first in range(0, size, 1000):
        client.rpush(key, *(encode(message(i)) for i in range(first, min(size, first + 1000))))


def hold_at(mem: ConversationMemory, history: int) -> Hook:
    """An untimed hook that cuts ``mem.messages`` back to ``history`` messages through the library (``pop()``)."""

    def library_trim() -> None:
        held = mem.messages
        while len(held) > history:
            held.pop()

    return library_trim


def command_calls(client: redis.Redis) -> dict[str, int]:
    """Calls per command so far (INFO commandstats; commands run inside scripts included)."""
    stats = client.info("commandstats")
    return {name.removeprefix("cmdstat_"): int(stat["calls"]) for name, stat in stats.items()}


def command_delta(client: redis.Redis, action: Callable[[], object]) -> dict[str, int]:
    """The commands the server ran during ``action()``, but for the INFO that took the first count."""
    before = command_calls(client)
    action()
    after = command_calls(client)
    changed = {name: count - before.get(name, 0) for name, count in after.items()}
    changed["info"] = changed.get("info", 0) - 1
    return {name: count for name, count in changed.items() if count}


def script_commands(path: str) -> set[str]:
    """The commands a Lua script of the library calls (``redis.call('X', ...)``), as commandstats names them."""
    source = resources.files("redis_memory").joinpath(path).read_text("utf-8")
    return {name.lower() for name in re.findall(r"redis\.call\(\s*'([^']+)'", source)}


def delta_text(delta: dict[str, int]) -> str:
    """``evalsha 1, lrange 1, ...``: a command delta, EVALSHA first."""
    ordered = sorted(delta.items(), key=lambda item: (item[0] != "evalsha", item[0]))
    return ", ".join(f"{name} {count}" for name, count in ordered) or "nothing"


def check_line(ok: bool, text: str) -> str:
    """One acceptance check, PASS or FAIL."""
    return f"  [{'PASS' if ok else 'FAIL'}] {text}\n"


class Bench:
    """The in-server cases' context: one server, one fresh key prefix, the raw clients and the figures."""

    def __init__(self, url: str, socket: str, args: argparse.Namespace) -> None:
        """Open the raw clients (nothing is written until a case runs)."""
        self.url = url
        self.raw = redis.Redis(unix_socket_path=socket, single_connection_client=True)
        self.pool = redis.Redis(unix_socket_path=socket)
        self.writer = redis.Redis(unix_socket_path=socket)  # "another client": invalidates mirrors
        self.samples, self.read_samples, self.batch, self.warmup = (
            args.samples,
            args.read_samples,
            args.batch,
            args.warmup,
        )
        self.atomic_samples = args.atomic_samples
        self.prefix = f"bench-{uuid.uuid4().hex[:10]}:"
        self.results: list[Result] = []
        self.stale_reads = 0
        self.round_trips: list[tuple[bool, str, str]] = []  # (passed, check, detail)
        self.online_journaled = -1  # writes the online append cases journaled (must be 0)

    def close(self) -> None:
        """Close the raw clients."""
        for client in (self.raw, self.pool, self.writer):
            client.close()

    def memory(self, conversation_id: str) -> ConversationMemory:
        """A conversation of this run (on the library's shared backend for the server)."""
        return ConversationMemory(conversation_id, url=self.url, prefix=self.prefix)

    def raw_key(self, name: str) -> str:
        """A key for the raw sides, under this run's prefix."""
        return f"{self.prefix}raw:{name}"

    def measure(self, cases: dict[str, dict[str, Side]], samples: int, info: bool = False) -> None:
        """Measure ``cases`` together (see :func:`measure`) and keep their results for the report."""
        self.results += measure(cases, samples, self.batch, self.warmup, info=info)
