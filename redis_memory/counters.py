"""The counters one backend keeps (operations, round trips, resends, journal figures, latency)."""

from __future__ import annotations

from typing import Any


class Stats:
    """Counters of one backend (see :func:`redis_memory.stats`)."""

    def __init__(self) -> None:
        """All zero."""
        self.counts: dict[str, int] = dict.fromkeys(
            ("operations", "round_trips", "retries", "reconnects", "journaled", "replayed", "conflicts", "errors"), 0
        )
        self.latency: dict[str, list[float]] = {}  # op -> [count, total seconds, max seconds]

    def timed(self, name: str, seconds: float) -> None:
        """Record one operation's latency."""
        entry = self.latency.setdefault(name, [0, 0.0, 0.0])
        entry[0] += 1
        entry[1] += seconds
        entry[2] = max(entry[2], seconds)

    def add(self, other: Stats) -> Stats:
        """Add ``other``'s counts and latencies to these ones (two backends of one server
        reported as one); returns ``self``."""
        for name, count in list(other.counts.items()):
            self.counts[name] = self.counts.get(name, 0) + count
        for name, (times, total, most) in list(other.latency.items()):
            entry = self.latency.setdefault(name, [0, 0.0, 0.0])
            entry[0] += times
            entry[1] += total
            entry[2] = max(entry[2], most)
        return self

    def snapshot(self) -> dict[str, Any]:
        """The counters as plain data; latencies as count, mean and max in milliseconds."""
        return {
            **self.counts,
            "latency_ms": {
                name: {"count": int(count), "mean": 1000 * total / count if count else 0.0, "max": 1000 * most}
                for name, (count, total, most) in sorted(self.latency.items())
            },
        }
