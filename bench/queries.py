"""The query cases: ``ConversationMemory.find()`` / ``count()`` over 1k-100k conversations, and their report.

Conversations are stored the library's way with raw redis-py, then queried with RediSearch (against
the same FT.SEARCH sent by hand) and with the SCAN fallback on a second server without modules;
both servers must give the same answers.
"""

from __future__ import annotations

import argparse
import itertools
import random
import statistics
import sys
import time
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import redis
from common import Op, Side, check_line, command_delta, delta_text

from redis_memory import ConversationMemory
from redis_memory.keys import KeySpace

QUERY_SIZES = (1_000, 10_000, 100_000)  # conversations under one prefix, grown in steps (RediSearch)
FALLBACK_SIZES = (1_000, 10_000)  # the same conversations on a server without RediSearch
QUERY_STATES = ("active", "closed", "paused")
QUERY_START = datetime(2025, 1, 1, tzinfo=UTC)
QUERY_SPAN = 10_000_000  # last_activity: distinct whole seconds in [start, start + span)
QUERY_CUTOFF = QUERY_START + timedelta(seconds=QUERY_SPAN // 2)  # about half are older
QUERY_SEED = 20250101
POPULATE_CHUNK = 1_000  # HSET commands per pipeline
QUERY_BATCH = 5


@dataclass(frozen=True)
class QueryRow:
    """One stored conversation of the query cases."""

    conversation_id: str
    state: str
    seconds: int  # last_activity, whole seconds after QUERY_START
    total_messages: int

    @property
    def last_activity(self) -> datetime:
        """``last_activity`` as the library reads it back (an aware UTC datetime)."""
        return QUERY_START + timedelta(seconds=self.seconds)

    def hash_fields(self) -> dict[str, str]:
        """The hash fields exactly as the library writes these three scalars (see redis_memory.scalars)."""
        epoch = int(QUERY_START.timestamp()) + self.seconds
        return {
            "state": self.state,
            "_kind:state": "str",
            "last_activity": f"{epoch}.000000",
            "_kind:last_activity": "datetime:UTC",
            "total_messages": str(self.total_messages),
            "_kind:total_messages": "int",
        }


def query_rows(count: int) -> list[QueryRow]:
    """``count`` conversations, the same on every run: random states, distinct last_activity."""
    rng = random.Random(QUERY_SEED)
    seconds = rng.sample(range(QUERY_SPAN), count)
    return [
        QueryRow(f"q{index:06d}", rng.choice(QUERY_STATES), seconds[index], rng.randrange(200))
        for index in range(count)
    ]


def populate(client: redis.Redis, prefix: str, rows: list[QueryRow]) -> None:
    """HSET every row's hash ``<prefix>{<id>}`` with raw redis-py, in pipelines of POPULATE_CHUNK commands."""
    for first in range(0, len(rows), POPULATE_CHUNK):
        pipe = client.pipeline(transaction=False)
        for row in rows[first : first + POPULATE_CHUNK]:
            pipe.hset(KeySpace(prefix, row.conversation_id).hash_key, mapping=row.hash_fields())  # type: ignore[arg-type]
        pipe.execute()


def _field(info: Any, name: str) -> Any:
    """A field of an FT.INFO reply (a dict or a flat list, bytes or str keys)."""
    if isinstance(info, list):
        info = dict(zip(info[::2], info[1::2], strict=False))
    value = info.get(name, info.get(name.encode()))
    return value.decode() if isinstance(value, bytes) else value


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


@dataclass
class QueryResult:
    """The samples of one query case at one size, in nanoseconds (``raw``: FT.SEARCH by hand, if any)."""

    server: str
    case: str
    size: int
    matches: int
    lib: list[int]
    raw: list[int] | None = None
    info: bool = False

    def median(self, side: str = "lib") -> float:
        """Median in milliseconds."""
        samples = self.lib if side == "lib" else self.raw
        assert samples is not None
        return statistics.median(samples) / 1e6

    def p90(self) -> float:
        """90th percentile of the library in milliseconds."""
        return statistics.quantiles(self.lib, n=10, method="inclusive")[8] / 1e6


def time_rotating(ops: dict[str, Op], samples: int, warmup: int, batch: int = QUERY_BATCH) -> dict[str, list[int]]:
    """Batches of every op in turn, the order rotating each round; warm-up batches first (not kept)."""
    names = list(ops)
    kept: dict[str, list[int]] = {name: [] for name in names}
    for count, keep in ((warmup, False), (samples, True)):
        for index in range(-(-count // batch)):
            shift = index % len(names)
            for name in names[shift:] + names[:shift]:
                durations = Side(ops[name]).run_batch(batch)
                if keep:
                    kept[name] += durations
    return kept


class QueryBench:
    """``ConversationMemory.find / count`` over 1k-100k conversations: RediSearch, then the SCAN fallback."""

    def __init__(self, search_server: Any, plain_server: Any, prefix: str, args: argparse.Namespace) -> None:
        """Both servers must be running; nothing is written until :meth:`run`."""
        self.servers = {"RediSearch": search_server, "SCAN fallback": plain_server}
        self.raws = {name: redis.Redis(unix_socket_path=str(server.socket)) for name, server in self.servers.items()}
        self.single = redis.Redis(unix_socket_path=str(search_server.socket), single_connection_client=True)
        self.prefix = prefix
        self.samples, self.big_samples, self.scan_samples = (
            args.query_samples,
            args.big_query_samples,
            args.scan_samples,
        )
        self.rows = query_rows(QUERY_SIZES[-1])
        self.results: list[QueryResult] = []
        self.checks: list[tuple[bool, str]] = []
        self.commands: dict[str, str] = {}
        self.populate_seconds: dict[int, float] = {}
        self.index_name = ""

    def close(self) -> None:
        """Close the raw clients."""
        for client in (*self.raws.values(), self.single):
            client.close()

    def find(self, server: str, **options: Any) -> list[ConversationMemory]:
        """The timed ``find(state="active", last_activity__lt=cutoff, ...)`` on ``server``."""
        return ConversationMemory.find(
            url=self.servers[server].url,
            prefix=self.prefix,
            state="active",
            last_activity__lt=QUERY_CUTOFF,
            **options,
        )

    def count(self, server: str) -> int:
        """The timed ``count(...)`` with the same filters as :meth:`find`, on ``server``."""
        return ConversationMemory.count(
            url=self.servers[server].url, prefix=self.prefix, state="active", last_activity__lt=QUERY_CUTOFF
        )

    def expected(self, size: int) -> tuple[int, list[str]]:
        """The answer computed in Python: (count, the 10 newest ids)."""
        cutoff = int((QUERY_CUTOFF - QUERY_START).total_seconds())
        found = [row for row in self.rows[:size] if row.state == "active" and row.seconds < cutoff]
        newest = sorted(found, key=lambda row: row.seconds, reverse=True)[:10]
        return len(found), [row.conversation_id for row in newest]

    def run(self) -> None:
        """Grow the conversations in steps; measure at every size; compare the two servers."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # the fallback's once-per-server warning
            stored = 0
            for size in QUERY_SIZES:
                servers = [name for name in self.servers if name == "RediSearch" or size in FALLBACK_SIZES]
                started = time.monotonic()
                for name in servers:
                    populate(self.raws[name], self.prefix, self.rows[stored:size])
                self.populate_seconds[size] = time.monotonic() - started
                if not stored:
                    self._check_layout()
                stored = size
                self._search_cases(size)
                if size in FALLBACK_SIZES:
                    self._fallback_cases(size)
                self._compare(size, servers)
                sys.stdout.write(f"  measured queries at {size:,} conversations\n")
                sys.stdout.flush()

    def _check_layout(self) -> None:
        """The raw hashes read back through the library, and equal what the library itself writes."""
        for server in self.servers:
            for row in (self.rows[0], self.rows[1], self.rows[QUERY_SIZES[0] - 1]):
                mem = ConversationMemory(row.conversation_id, url=self.servers[server].url, prefix=self.prefix)
                got = (mem.state, mem.last_activity, mem.total_messages)
                if got != (row.state, row.last_activity, row.total_messages) or mem.last_activity.tzinfo is not UTC:
                    raise AssertionError(f"{row.conversation_id} reads back as {got!r}, not {row!r}")
        row = self.rows[0]
        scratch = f"{self.prefix}layout:"
        mem = ConversationMemory(row.conversation_id, url=self.servers["RediSearch"].url, prefix=scratch)
        mem.state, mem.last_activity, mem.total_messages = row.state, row.last_activity, row.total_messages
        written = self.raws["RediSearch"].hgetall(KeySpace(scratch, row.conversation_id).hash_key)
        if {_text(k): _text(v) for k, v in written.items()} != row.hash_fields():
            raise AssertionError(f"the library writes {written!r}, the bench {row.hash_fields()!r}")
        mem.clear()

    def _wait_for_docs(self, size: int) -> None:
        """FT.INFO num_docs must reach ``size`` (and indexing be done) before anything is timed."""
        deadline = time.monotonic() + 60
        while True:
            info = self.single.execute_command("FT.INFO", self.index_name)  # type: ignore[no-untyped-call]
            docs, indexing = int(float(_field(info, "num_docs"))), int(float(_field(info, "indexing") or 0))
            if docs == size and not indexing:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"the index holds {docs} documents (indexing {indexing}), expected {size}")
            time.sleep(0.05)

    def _search_cases(self, size: int) -> None:
        server = "RediSearch"
        if not self.index_name:
            self.find(server)  # creates the index (and waits for it): never timed
            names = [_text(name) for name in self.single.execute_command("FT._LIST")]  # type: ignore[no-untyped-call]
            mine = [name for name in names if name.startswith(f"{self.prefix}idx:")]
            if len(mine) != 1:
                raise AssertionError(f"expected one index under {self.prefix}, found {names}")
            self.index_name = mine[0]
            delta = command_delta(self.raws[server], lambda: self.find(server))
            self.commands["find"] = delta_text(delta)
            self.commands["count"] = delta_text(command_delta(self.raws[server], lambda: self.count(server)))
        self._wait_for_docs(size)
        cutoff = repr(float(QUERY_CUTOFF.timestamp()))
        query = f"@state:{{$s}} @last_activity:[-inf ({cutoff}]"
        base = ("FT.SEARCH", self.index_name, query, "NOCONTENT", "VERBATIM", "PARAMS", "2", "s", "active")
        base += ("DIALECT", "2")
        raw = self.single

        def raw_find() -> Any:
            return raw.execute_command(*base, "LIMIT", "0", "10")  # type: ignore[no-untyped-call]

        def raw_count() -> Any:
            return raw.execute_command(*base, "LIMIT", "0", "0")  # type: ignore[no-untyped-call]

        def raw_sorted() -> Any:
            return raw.execute_command(*base, "SORTBY", "last_activity", "DESC", "LIMIT", "0", "10")  # type: ignore[no-untyped-call]

        ops: dict[str, Op] = {
            "find": lambda: self.find(server, limit=10),
            "count": lambda: self.count(server),
            "find sorted": lambda: self.find(server, limit=10, sort_by="-last_activity"),
            "raw find": raw_find,
            "raw count": raw_count,
            "raw find sorted": raw_sorted,
        }
        expected_count, _ = self.expected(size)
        raw_total = raw_count()
        raw_total = _field(raw_total, "total_results") if isinstance(raw_total, dict) else raw_total[0]
        found = self.find(server, limit=10)
        cutoff_epoch = QUERY_CUTOFF.timestamp()
        if (
            int(raw_total) != expected_count
            or len(found) != min(10, expected_count)
            or any(m.state != "active" or not m.last_activity.timestamp() < cutoff_epoch for m in found)
        ):
            raise AssertionError(f"RediSearch at {size:,}: the timed queries do not give the expected answer")
        samples = self.samples if size < QUERY_SIZES[-1] else self.big_samples
        timed = time_rotating(ops, samples, warmup=2 * QUERY_BATCH)
        for case, info in (("find", False), ("count", False), ("find sorted", True)):
            self.results.append(
                QueryResult(server, case, size, expected_count, timed[case], timed[f"raw {case}"], info=info)
            )

    def _fallback_cases(self, size: int) -> None:
        server = "SCAN fallback"
        expected_count, _ = self.expected(size)
        ops: dict[str, Op] = {"find": lambda: self.find(server, limit=10), "count": lambda: self.count(server)}
        samples = self.scan_samples if size > FALLBACK_SIZES[0] else self.samples // 4
        timed = time_rotating(ops, samples, warmup=2, batch=2)
        for case in ops:
            self.results.append(QueryResult(server, case, size, expected_count, timed[case]))

    def _compare(self, size: int, servers: list[str]) -> None:
        """Same count and same 10 newest ids (sort_by="-last_activity") on every server, and as computed."""
        expected = self.expected(size)
        answers = {
            name: (self.count(name), [m.conversation_id for m in self.find(name, sort_by="-last_activity")])
            for name in servers
        }
        if len(servers) > 1:
            (first, a), (second, b) = answers.items()
            self.checks.append(
                (
                    a == b == expected,
                    f"{size:,} conversations: {first} and {second} agree: count {a[0]:,} / {b[0]:,} "
                    f"(computed {expected[0]:,}); find(sort_by='-last_activity', limit=10) ids "
                    f"{'identical' if a[1] == b[1] else 'DIFFER'} ({a[1][0]} ... {a[1][-1]})"
                    f"{'' if a[1] == expected[1] else '; not the computed ids'}",
                )
            )
        else:
            ((name, answer),) = answers.items()
            self.checks.append(
                (
                    answer == expected,
                    f"{size:,} conversations: {name} gives the computed answer: count {answer[0]:,} "
                    f"(computed {expected[0]:,}), the 10 newest ids "
                    f"{'identical' if answer[1] == expected[1] else 'DIFFER'}",
                )
            )

    def report(self) -> None:
        """The queries table, the growth between sizes and the cross-server checks."""
        out = sys.stdout.write
        out(
            '\nqueries: ConversationMemory.find(state="active", last_activity__lt=cutoff, limit=10) and '
            "count(...) with the same filters, milliseconds\n"
        )
        populated = ", ".join(f"{size:,} in {seconds:.1f} s" for size, seconds in self.populate_seconds.items())
        out(
            "  conversations stored the library's way (one hash each: state, last_activity, total_messages + "
            f"_kind fields), populated with raw pipelines (up to {populated}); about 1 in 6 match\n"
        )
        out(
            f"  RediSearch: {self.samples} samples per case ({self.big_samples} at {QUERY_SIZES[-1]:,}), the index "
            f"grown with the data (FT.INFO num_docs checked before timing); SCAN fallback: a server without "
            f"modules, {self.samples // 4} samples at {FALLBACK_SIZES[0]:,}, "
            f"{self.scan_samples} at {FALLBACK_SIZES[-1]:,}\n"
        )
        out(
            "  raw = the same FT.SEARCH sent by hand with redis-py (single connection); sorted = "
            'find(..., sort_by="-last_activity"); growth = median / median at the previous size\n\n'
        )
        header = ("case", "conversations", "matches", "lib med", "lib p90", "raw med", "lib/raw", "growth")
        rows = [header]
        previous: dict[tuple[str, str], QueryResult] = {}
        for result in self.results:
            key = (result.server, result.case)
            before = previous.get(key)
            previous[key] = result
            growth = f"{result.median() / before.median():.2f}x" if before else "-"
            rows.append(
                (
                    f"{result.server}: {result.case}" + (" (info)" if result.info else ""),
                    f"{result.size:,}",
                    f"{result.matches:,}",
                    f"{result.median():.3f}",
                    f"{result.p90():.3f}",
                    f"{result.median('raw'):.3f}" if result.raw else "-",
                    f"{result.median() / result.median('raw'):.2f}x" if result.raw else "-",
                    growth,
                )
            )
        widths = [max(len(row[column]) for row in rows) for column in range(len(header))]
        ordered = [rows[0], *sorted(rows[1:], key=lambda row: (row[0].startswith("SCAN"), "(info)" in row[0], row[0]))]
        for number, row in enumerate(ordered):
            cells = [
                row[0].ljust(widths[0]),
                *(cell.rjust(width) for cell, width in zip(row[1:], widths[1:], strict=True)),
            ]
            out("  " + "  ".join(cells) + "\n")
            if number == 0:
                out("  " + "  ".join("-" * width for width in widths) + "\n")

        out("\n  growth of the median with the number of conversations\n")
        for server, case in dict.fromkeys((r.server, r.case) for r in self.results):
            series = [r for r in self.results if (r.server, r.case) == (server, case)]
            steps = ", ".join(
                f"{a.size:,} -> {b.size:,}: {b.median() / a.median():.2f}x" for a, b in itertools.pairwise(series)
            )
            whole = series[-1].median() / series[0].median()
            out(
                f"    {server} {case}: {steps}"
                + (f"; {series[-1].size // series[0].size}x the conversations: {whole:.2f}x" if len(series) > 2 else "")
                + "\n"
            )
        out("\n  server commands per call with RediSearch (INFO commandstats, not timed)\n")
        for case, text in self.commands.items():
            out(f"    {case}(): {text}\n")

        out("\nqueries: same answers with RediSearch and with the SCAN fallback\n")
        for passed, text in self.checks:
            out(check_line(passed, text))
