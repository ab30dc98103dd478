"""Latency of redis-memory against raw redis-py doing the same command, in one run.

One private redis-server (with RedisJSON and RediSearch, on a unix socket in a temporary
directory) is started for the run and stopped at the end; every key lives under a fresh
prefix. For each case the library and raw redis-py take their samples in small alternating
batches (the order rotates every round), so machine noise hits every side alike; each
operation is timed on its own, and the table shows medians and 90th percentiles in
microseconds.

Every side talks to the same server over the same kind of connection: a unix socket, with
the hiredis parser. The library uses its shared backend (one RESP3 connection with client
tracking). Raw redis-py is measured two ways:

* ``raw``: ``redis.Redis(unix_socket_path=..., single_connection_client=True)``, one dedicated
  connection like the library's; the acceptance checks use this, the stricter baseline;
* ``pool``: ``redis.Redis(unix_socket_path=...)`` with its defaults (a connection pool, which
  checks a connection out and back in around every command), for information.

Raw commands: append = ``RPUSH key json.dumps(message)`` (a raw user encodes the message too);
set = ``HSET hash state x``; get = ``HGET hash state``; full read = ``LRANGE key 0 -1`` then
``json.loads`` of each element.

The three append cases (history 0, 1,000 and 10,000) are measured in one interleaved run, so
the 10,000-vs-0 check compares figures taken in the same time windows. Histories are held at
their size: after each batch of appends the list is cut back again (untimed), through the
library (``pop()``) for the library's list and with LTRIM for the raw one. For the full read of
a list whose mirror is not valid, another client rewrites element 0 (LSET, untimed) before each
library read, so the library must take the invalidation and run a real LRANGE; every such read
is checked to return the new element 0.

Two whole-object cases (fewer samples: ``--atomic-samples``, default 1,000):

* ``3-write transaction``: ``with mem.transaction(): mem.state = "active";
  mem.messages.append(msg); mem.incr("total_messages")`` against raw redis-py sending the same
  three writes as one MULTI/EXEC pipeline (``pipeline(transaction=True)``: HSET, RPUSH of
  ``json.dumps(msg)``, HINCRBY; one round trip). Both lists are held at 10 messages as above
  (library ``pop()`` / LTRIM after each batch; the library's trim reads the list, so the first
  transaction of each batch may find it mirrored); an information row does the same at 1,000.
* ``to_dict() of 20 attributes``: a conversation of 16 scalars (strings, int, float, bool, an
  aware datetime, a UUID), an int counter (``incr``), a list of 10 messages, a dict and a set,
  against raw redis-py reading the same data (a hash, a list, a RedisJSON document, a set) with
  HGETALL + LRANGE + JSON.GET + SMEMBERS in one non-transactional pipeline, then decoding it
  to the same Python values. Every sample of both sides is checked to equal the stored values.

redis-py pipelines always take a connection from the client's pool (``single_connection_client``
does not apply to them), so for these two cases ``raw`` and ``pool`` run the same code.

Both whole-object cases are also checked not by timing but by the server's own counts
(``INFO commandstats``): after a warm-up that loads the scripts, each of several consecutive
transactions, and each of several ``to_dict()`` calls, must run exactly one EVALSHA; for
``to_dict()`` every other command counted must be one that ``snapshot.lua`` itself calls.

Queries (skipped with ``--skip-queries``): ``ConversationMemory.find(state="active",
last_activity__lt=cutoff, limit=10)`` and ``count(...)`` with the same filters, over conversations
stored the library's way (one hash ``<prefix>{<id>}`` each: ``state``, ``last_activity`` as epoch
seconds, ``total_messages`` and their ``_kind:<name>`` fields), written with raw redis-py pipelines
and checked to read back through the library. With RediSearch they run at 1,000, 10,000 and
100,000 conversations (one prefix grown in steps, so its index grows too; FT.INFO ``num_docs`` is
checked before timing; the first ``find()``, which creates the index, is not timed), against the
same FT.SEARCH sent by hand; without it (a second private server started without modules) the SCAN
fallback runs at 1,000 and 10,000 (its once-per-server RuntimeWarning is silenced). The table shows
medians in milliseconds and their growth from one size to the next; at 1,000 and 10,000 both
servers must give the same count and the same ids for ``sort_by="-last_activity"`` (PASS/FAIL).

Offline journal (no server): a ConversationMemory on a URL that refuses connections, its
backend set to fail over at once (``retry_for = 0``) into a fresh SQLite journal in a temporary
directory; after the first write has failed over, ``--journal-writes`` (default 5,000) writes
(``mem.state = ...`` and ``mem.incr("turns")`` alternately) are timed as they are journaled, and
``stats()[url]["journal_depth"]`` must count every write. The online append cases must journal
nothing (``stats()[url]["journaled"] == 0``). ``--only-journal`` runs just this section.

This file is the entry point (``main()``); the cases live beside it, one module per family:
``operations`` (append, set / get, full read), ``whole_object`` (transaction, ``to_dict()``),
``queries`` (find / count), ``offline`` (the journal), ``migration`` (10,000 conversations
written by the original 0.4.3 imported by ``migrate_legacy``, objects per second;
``--only-migration`` / ``--skip-migration``); ``report`` prints the in-server cases'
table and checks, and ``common`` holds what they share (``measure()``, ``Bench``, ...).

Run: ``make bench`` or ``.venv/bin/python bench/bench.py [--samples N]``. The exit code is 0
whatever the figures are (it is a report), unless the benchmark itself fails.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import langgraph_savers
import migration
import offline
import on_cluster
import operations
import original
import queries
import report
import scale
import whole_object
from common import REPO_ROOT, Bench

from redis_memory import connections


def redis_process_class() -> Any:
    """``tests.servers.RedisProcess``, importable once the repository root is on ``sys.path``."""
    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))
    from tests.servers import RedisProcess

    return RedisProcess


def compare_original(directory: Path, samples: int) -> None:
    """The original 0.4.3 section (see ``original``), and its plot in docs/."""
    lines, appends = original.run(redis_process_class(), directory, samples)
    sys.stdout.write("\n".join(lines) + "\n")
    image = REPO_ROOT / "docs" / "benchmark-append.png"
    original.plot(appends, image)
    sys.stdout.write(f"plot: {image.relative_to(REPO_ROOT)}\n")


def main(argv: list[str] | None = None) -> int:
    """Start a private server, run every case, print the report, stop the server."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--samples", type=int, default=3000, help="samples per side per case (default 3000)")
    parser.add_argument("--read-samples", type=int, default=2000, help="samples per side, full reads (default 2000)")
    parser.add_argument(
        "--atomic-samples", type=int, default=1000, help="samples per side, transaction and to_dict (default 1000)"
    )
    parser.add_argument("--batch", type=int, default=10, help="samples per batch (default 10)")
    parser.add_argument("--warmup", type=int, default=300, help="warm-up samples per side per case (default 300)")
    parser.add_argument("--skip-queries", action="store_true", help="skip the find() / count() cases")
    parser.add_argument(
        "--query-samples", type=int, default=200, help="samples per query case, RediSearch at 1k and 10k (default 200)"
    )
    parser.add_argument(
        "--big-query-samples", type=int, default=100, help="samples per query case, RediSearch at 100k (default 100)"
    )
    parser.add_argument(
        "--scan-samples", type=int, default=20, help="samples per query case, SCAN fallback at 10k (default 20)"
    )
    parser.add_argument(
        "--journal-writes", type=int, default=5000, help="writes timed in the offline journal (default 5000)"
    )
    parser.add_argument("--only-journal", action="store_true", help="run only the offline journal section")
    parser.add_argument("--scale-turns", type=int, default=100, help="agent-loop turns per process (default 100)")
    parser.add_argument(
        "--scale-appends", type=int, default=500, help="appends per process, 16 processes (default 500)"
    )
    parser.add_argument("--oplog-writes", type=int, default=100_000, help="writes before the op log is measured")
    parser.add_argument("--only-scale", action="store_true", help="run only the scale section (processes, memory)")
    parser.add_argument("--original-samples", type=int, default=300, help="samples per side, original 0.4.3 section")
    parser.add_argument("--skip-original", action="store_true", help="skip the original redis-memory 0.4.3 section")
    parser.add_argument("--skip-cluster", action="store_true", help="skip the Redis Cluster section")
    parser.add_argument("--only-cluster", action="store_true", help="run only the Redis Cluster section")
    parser.add_argument("--only-original", action="store_true", help="run only the original 0.4.3 section")
    parser.add_argument("--skip-migration", action="store_true", help="skip the legacy migration section")
    parser.add_argument("--only-migration", action="store_true", help="run only the legacy migration section")
    parser.add_argument("--langgraph-samples", type=int, default=300, help="samples per side, LangGraph savers")
    parser.add_argument("--skip-langgraph", action="store_true", help="skip the LangGraph checkpointers section")
    parser.add_argument("--only-langgraph", action="store_true", help="run only the LangGraph checkpointers section")
    args = parser.parse_args(argv)

    started = time.monotonic()
    if args.only_journal:
        try:
            offline.offline_journal(args.journal_writes)
        finally:
            connections.reset()
        sys.stdout.write(f"\n(total {time.monotonic() - started:.0f} s)\n")
        return 0

    with tempfile.TemporaryDirectory(prefix="rm-bench-") as directory:
        server = redis_process_class()(Path(directory) / "srv", modules=True).start()
        plain: Any = None
        bench: Bench | None = None
        query_bench: queries.QueryBench | None = None
        try:
            if args.only_cluster:
                sys.stdout.write(
                    "\n".join(on_cluster.run(args.scale_turns, args.scale_appends, args.original_samples)) + "\n"
                )
                return 0
            if args.only_original:
                compare_original(Path(directory), args.original_samples)
                return 0
            if args.only_migration:
                sys.stdout.write("\n".join(migration.run(server)) + "\n")
                return 0
            if args.only_langgraph:
                sys.stdout.write("\n".join(langgraph_savers.run(server.url, args.langgraph_samples)) + "\n")
                return 0
            if args.only_scale:
                lines = scale.run(
                    server.url, str(server.socket), args.scale_turns, args.scale_appends, args.oplog_writes
                )
                sys.stdout.write("\n".join(lines) + "\n")
                return 0
            bench = Bench(server.url, str(server.socket), args)
            version = str(bench.raw.info("server")["redis_version"])
            sys.stdout.write(f"benchmarking on a private redis-server {version} at {server.socket}\n")
            operations.appends(bench)
            operations.scalars(bench)
            operations.full_read(bench)
            whole_object.transactions(bench)
            whole_object.snapshots(bench)
            report.report(bench, version)
            if not args.skip_queries:
                plain = redis_process_class()(Path(directory) / "plain", modules=False).start()
                query_bench = queries.QueryBench(server, plain, f"{bench.prefix}q:", args)
                sys.stdout.write("\nqueries: find() / count() with RediSearch and with the SCAN fallback\n")
                query_bench.run()
                query_bench.report()
            offline.offline_journal(args.journal_writes)
            lines = scale.run(server.url, str(server.socket), args.scale_turns, args.scale_appends, args.oplog_writes)
            sys.stdout.write("\n".join(lines) + "\n")
            if not args.skip_original:
                compare_original(Path(directory), args.original_samples)
            if not args.skip_migration:
                sys.stdout.write("\n".join(migration.run(server)) + "\n")
            if not args.skip_cluster:
                sys.stdout.write(
                    "\n".join(on_cluster.run(args.scale_turns, args.scale_appends, args.original_samples)) + "\n"
                )
            if not args.skip_langgraph:
                sys.stdout.write("\n".join(langgraph_savers.run(server.url, args.langgraph_samples)) + "\n")
        finally:
            connections.reset()
            if query_bench is not None:
                query_bench.close()
            if bench is not None:
                bench.close()
            if plain is not None:
                plain.stop()
            server.stop()
    sys.stdout.write(f"\n(total {time.monotonic() - started:.0f} s)\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
