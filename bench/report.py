"""The report of the in-server cases: the environment, the latency table, the acceptance checks.

It reads what ``operations`` and ``whole_object`` left on the run's ``common.Bench``; the query
and offline journal cases print their own sections.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import redis
from common import REPO_ROOT, Bench, Result, check_line, paired_growth
from operations import HISTORY_SIZES

import redis_memory

APPEND_GROWTH_LIMIT = 1.2  # append at 10k within 1.2x of append at 0
RAW_RATIO_LIMIT = 1.5  # append, set and get within 1.5x of raw redis-py

# The original package (redis-memory 0.4.3), from the design brief.
ORIGINAL_FIGURES = (
    ("append one message, history 0 / 1k / 10k", "3.5 / 6.4 / 44 ms", "0.14 ms (RPUSH)"),
    ("set / get one scalar", "1.4 / 1.4 ms", "0.13 / 0.15 ms (HSET / HGET)"),
)


def print_table(results: list[Result]) -> None:
    """The results table (microseconds)."""
    header = ("case", "lib med", "lib p90", "raw med", "raw p90", "lib/raw", "paired", "pool med", "lib/pool")
    rows = [header, *(result.row() for result in results)]
    widths = [max(len(row[column]) for row in rows) for column in range(len(header))]
    for number, row in enumerate(rows):
        cells = [row[0].ljust(widths[0]), *(cell.rjust(width) for cell, width in zip(row[1:], widths[1:], strict=True))]
        sys.stdout.write("  " + "  ".join(cells) + "\n")
        if number == 0:
            sys.stdout.write("  " + "  ".join("-" * width for width in widths) + "\n")


def library_revision() -> str:
    """The git commit of the working tree and whether ``redis_memory/`` differs from it (read-only git)."""
    environment = {**os.environ, "GIT_OPTIONAL_LOCKS": "0"}
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, env=environment
        )
        diff = subprocess.run(
            ["git", "diff", "--quiet", "HEAD", "--", "redis_memory"],
            cwd=REPO_ROOT,
            capture_output=True,
            env=environment,
        )
    except OSError:
        return "unknown revision"
    if head.returncode != 0:
        return "unknown revision"
    return f"commit {head.stdout.strip()}" + (" + uncommitted changes in redis_memory/" if diff.returncode else "")


def report(bench: Bench, server_version: str) -> None:
    """Print the environment, the table, the acceptance checks and the original package's figures."""
    out = sys.stdout.write
    by_name = {result.name: result for result in bench.results}
    appends = [by_name[f"append, history {size:,}"] for size in HISTORY_SIZES]
    scalars = [by_name["set scalar"], by_name["get scalar"]]

    out("\nredis-memory vs raw redis-py: same private server, same unix socket, microseconds\n")
    out(
        f"  redis-server {server_version}, Python {platform.python_version()}, redis-py {redis.__version__}, "
        f"redis-memory {redis_memory.__version__} ({library_revision()})\n"
    )
    out(
        f"  {bench.samples} samples per side per case ({bench.read_samples} for full reads) after "
        f"{bench.warmup} warm-up, in rotating batches of {bench.batch}\n"
    )
    out("  raw  = redis.Redis(unix_socket_path=..., single_connection_client=True): RESP2, one connection\n")
    out("  pool = redis.Redis(unix_socket_path=...) defaults: RESP2, connection pool (information only)\n")
    out("  commands: append RPUSH json.dumps(msg); set HSET; get HGET; full read LRANGE 0 -1 + json.loads each\n")
    out(
        f"  {bench.atomic_samples} samples per side for the transaction and to_dict() cases; transaction: "
        "MULTI HSET RPUSH HINCRBY EXEC pipelined; to_dict(): HGETALL LRANGE JSON.GET SMEMBERS pipelined + decoding\n"
    )
    out("  paired = median over rounds of (lib batch median / raw batch median)\n\n")
    print_table(bench.results)
    if bench.stale_reads:
        out(f"\n  WARNING: {bench.stale_reads} invalidated full reads returned a stale element 0\n")
    else:
        out("\n  every invalidated full read returned the other client's new element 0\n")

    out("\nacceptance checks (ratios of medians; raw = single-connection redis-py)\n")
    first, last = appends[0], appends[-1]
    growth = last.median("lib") / first.median("lib")
    out(
        check_line(
            growth <= APPEND_GROWTH_LIMIT,
            f"append at {HISTORY_SIZES[-1]:,} within {APPEND_GROWTH_LIMIT}x of append at {HISTORY_SIZES[0]}: "
            f"{last.median('lib'):.1f} / {first.median('lib'):.1f} us = {growth:.2f}x "
            f"(paired {paired_growth(last, first):.2f}x)",
        )
    )
    for result in [*appends, *scalars]:
        out(
            check_line(
                result.ratio() <= RAW_RATIO_LIMIT,
                f"{result.name} within {RAW_RATIO_LIMIT}x of raw redis-py: {result.median('lib'):.1f} / "
                f"{result.median('raw'):.1f} us = {result.ratio():.2f}x (paired {result.paired_ratio:.2f}x); "
                f"vs the default pooled client {result.ratio('pool'):.2f}x "
                f"({'within' if result.ratio('pool') <= RAW_RATIO_LIMIT else 'over'} {RAW_RATIO_LIMIT}x)",
            )
        )

    out(
        check_line(
            bench.online_journaled == 0,
            f"journal overhead online: {bench.online_journaled} journaled writes, no journal I/O "
            "(stats()[url]['journaled'] after the append cases)",
        )
    )

    out("\none round trip (counted by the server, INFO commandstats, not timed)\n")
    for passed, text, detail in bench.round_trips:
        out(check_line(passed, text))
        out(f"         {detail}\n")
    for name in ("3-write transaction", "to_dict() of 20 attributes"):
        result = by_name[name]
        out(
            f"  {name} vs raw redis-py in one pipelined round trip: {result.median('lib'):.1f} / "
            f"{result.median('raw'):.1f} us = {result.ratio():.2f}x (paired {result.paired_ratio:.2f}x)\n"
        )

    out("\nfor context: the original package (redis-memory 0.4.3), from DESIGN.md (loopback TCP Redis)\n")
    for workload, original, raw_figure in ORIGINAL_FIGURES:
        out(f"  {workload}: {original}; raw redis-py {raw_figure}\n")
    shown = " / ".join(f"{result.median('lib') / 1000:.3f}" for result in appends)
    out(
        f"  this run, redis-memory: append {shown} ms; set / get "
        f"{scalars[0].median('lib') / 1000:.3f} / {scalars[1].median('lib') / 1000:.3f} ms\n"
    )
