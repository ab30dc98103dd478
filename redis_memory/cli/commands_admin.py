"""The commands on the installation: ``server start|stop|status`` (the embedded server),
``doctor`` (is everything healthy?) and ``migrate status|up|down|legacy``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import redis
import typer

from redis_memory import config, server, stats
from redis_memory.cli.output import FAILED, Options, emit_json, plain, progress_bar, table
from redis_memory.errors import RedisConnectionError
from redis_memory.migrations import user
from redis_memory.redaction import redact

server_app = typer.Typer(help="The embedded redis-server (unix socket under $REDIS_MEMORY_HOME).", no_args_is_help=True)
migrate_app = typer.Typer(
    help="Migrations: your own (a directory of them) and the legacy import.", no_args_is_help=True
)


def _running() -> bool:
    try:
        with redis.Redis(unix_socket_path=str(server.socket_path()), socket_timeout=2.0) as client:
            return bool(client.ping())
    except (redis.RedisError, OSError):
        return False


def _say(opts: Options, data: dict[str, Any], text: str) -> None:
    if opts.json:
        emit_json(data)
    else:
        sys.stdout.write(text + "\n")


@server_app.command("start")
def server_start(ctx: typer.Context) -> None:
    """Start the embedded server (or reuse the one running); print its socket."""
    path = server.ensure_server()
    _say(ctx.obj, {"running": True, "socket": str(path)}, f"running at {path}")


@server_app.command("stop")
def server_stop(ctx: typer.Context) -> None:
    """Stop the embedded server (its data stays on disk); exit 1 when none was running."""
    stopped = server.stop_server()
    _say(ctx.obj, {"stopped": stopped, "socket": str(server.socket_path())}, "stopped" if stopped else "not running")
    if not stopped:
        raise typer.Exit(FAILED)


@server_app.command("status")
def server_status(ctx: typer.Context) -> None:
    """Whether the embedded server runs; exit 1 when it does not."""
    running = _running()
    path = server.socket_path()
    _say(ctx.obj, {"running": running, "socket": str(path)}, f"{'running' if running else 'not running'} at {path}")
    if not running:
        raise typer.Exit(FAILED)


def _client(opts: Options) -> redis.Redis:
    url = config.resolve_url(opts.url)
    client: redis.Redis = redis.Redis.from_url(url, decode_responses=True, socket_timeout=5.0)
    try:
        client.ping()
    except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
        raise RedisConnectionError(f"cannot reach Redis at {redact(url)}: {exc}") from exc
    return client


def _raw(client: redis.Redis) -> Any:
    return client


def _pairs(reply: Any) -> dict[str, Any]:
    if isinstance(reply, dict):
        return {str(key): value for key, value in reply.items()}
    items = list(reply)
    return {str(items[i]): items[i + 1] for i in range(0, len(items) - 1, 2)}


def _indexes(client: redis.Redis, prefix: str, have_search: bool) -> list[dict[str, Any]]:
    if not have_search:
        return []
    found = []
    for name in sorted(str(item) for item in _raw(client).execute_command("FT._LIST")):
        if not name.startswith(prefix):
            continue
        info = _pairs(_raw(client).execute_command("FT.INFO", name))
        failures = int(float(info.get("hash_indexing_failures", 0)))
        found.append({
            "name": name, "num_docs": int(float(info.get("num_docs", 0))),
            "indexing": bool(int(float(info.get("indexing", 0)))), "hash_indexing_failures": failures,
        })  # fmt: skip
    return found


def doctor(ctx: typer.Context) -> None:
    """Check the connection, server version, modules, layout version, index health and the
    journal; exit 1 when something is wrong, 3 when Redis cannot be reached."""
    from redis_memory.meta import LAYOUT_VERSION, layout_version

    opts: Options = ctx.obj
    prefix = config.resolve_prefix(opts.prefix)
    client = _client(opts)
    problems: list[str] = []
    with client:
        version = str(client.info("server").get("redis_version"))
        modules = sorted(str(_pairs(module).get("name")) for module in _raw(client).execute_command("MODULE", "LIST"))
        layout = layout_version(url=opts.url, prefix=prefix)
        indexes = _indexes(client, prefix, "search" in modules)
    if layout is not None and layout > LAYOUT_VERSION:
        problems.append(f"layout {layout} is newer than this library's {LAYOUT_VERSION}")
    for index in indexes:
        if index["hash_indexing_failures"]:
            problems.append(f"index {index['name']}: {index['hash_indexing_failures']} indexing failures")
    depth = sum(int(entry.get("journal_depth", 0)) for entry in stats().values())
    if depth:
        problems.append(f"{depth} journaled writes wait for Redis")
    report = {
        "ok": not problems, "redis_version": version, "modules": modules, "prefix": prefix,
        "layout_version": layout, "library_layout_version": LAYOUT_VERSION, "indexes": indexes,
        "journal_depth": depth, "problems": problems,
    }  # fmt: skip
    if opts.json:
        emit_json(report)
    else:
        out = sys.stdout
        out.write(f"connection: ok (Redis {version})\n")
        out.write(f"modules: {', '.join(modules) or 'none'}\n")
        out.write(f"layout version: {layout if layout is not None else 'none yet'} (library: {LAYOUT_VERSION})\n")
        out.write(f"journal depth: {depth}\n")
        if indexes:
            rows = [[i["name"], i["num_docs"], i["indexing"], i["hash_indexing_failures"]] for i in indexes]
            table("indexes", ["name", "docs", "indexing", "failures"], rows)
        for problem in problems:
            out.write(f"problem: {problem}\n")
        out.write("ok\n" if not problems else "something is wrong\n")
    if problems:
        raise typer.Exit(FAILED)


Directory = Annotated[Path, typer.Argument(help="The directory of migration modules.")]


@migrate_app.command("status")
def migrate_status(ctx: typer.Context, directory: Directory) -> None:
    """Which migrations of DIRECTORY are applied."""
    opts: Options = ctx.obj
    states = user.status(directory, url=opts.url, prefix=opts.prefix)
    if opts.json:
        emit_json({"migrations": [plain(state) for state in states]})
        return
    table("migrations", ["id", "applied", "applied at"],
          [[state.id, "yes" if state.applied else "no", state.applied_at] for state in states])  # fmt: skip


@migrate_app.command("up")
def migrate_up(
    ctx: typer.Context,
    directory: Directory,
    target: Annotated[str | None, typer.Option(help="Stop after this migration id.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run")] = False,
) -> None:
    """Apply the pending migrations of DIRECTORY, in order."""
    opts: Options = ctx.obj
    done = user.up(directory, target=target, dry_run=dry_run, url=opts.url, prefix=opts.prefix)
    _say(
        opts,
        {"dry_run": dry_run, "applied": done},
        f"{'would apply' if dry_run else 'applied'}: {', '.join(done) or 'nothing'}",
    )


@migrate_app.command("down")
def migrate_down(
    ctx: typer.Context,
    directory: Directory,
    steps: Annotated[int, typer.Option(min=1)] = 1,
    dry_run: Annotated[bool, typer.Option("--dry-run")] = False,
) -> None:
    """Revert the last STEPS applied migrations of DIRECTORY."""
    opts: Options = ctx.obj
    done = user.down(directory, steps=steps, dry_run=dry_run, url=opts.url, prefix=opts.prefix)
    _say(
        opts,
        {"dry_run": dry_run, "reverted": done},
        f"{'would revert' if dry_run else 'reverted'}: {', '.join(done) or 'nothing'}",
    )


@migrate_app.command("legacy")
def migrate_legacy(
    ctx: typer.Context,
    legacy_prefix: Annotated[str, typer.Option(help="The original package's key prefix.")] = "memory:",
    dry_run: Annotated[bool, typer.Option("--dry-run")] = False,
    delete_legacy: Annotated[
        bool, typer.Option("--delete-legacy", help="Delete the legacy keys once verified.")
    ] = False,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace attributes already stored here with another value.")
    ] = False,
    batch: Annotated[int, typer.Option(min=1)] = 500,
) -> None:
    """Import the data of the original redis-memory package (0.4.x) into this layout."""
    from redis_memory.migrations.legacy import migrate_legacy as run

    opts: Options = ctx.obj
    with progress_bar("legacy") as progress:
        report = run(legacy_prefix=legacy_prefix, dry_run=dry_run, overwrite=overwrite, delete_legacy=delete_legacy,
                     batch=batch,
                     progress=progress, url=opts.url, prefix=opts.prefix)  # fmt: skip
    if opts.json:
        emit_json(report)
    else:
        verb = "would migrate" if dry_run else "migrated"
        sys.stdout.write(f"{verb} {report.conversations} conversations, {report.memories} memory attributes, "
                         f"{report.attributes} attributes; skipped {report.skipped}\n")  # fmt: skip
        for key in report.conflicts:
            sys.stdout.write(f"kept (differs here; --overwrite replaces it): {key}\n")
        for problem in report.problems:
            sys.stdout.write(f"problem: {problem}\n")
    if report.problems:
        raise typer.Exit(FAILED)


def register(app: typer.Typer) -> None:
    """Add these commands to ``app``."""
    app.add_typer(server_app, name="server")
    app.add_typer(migrate_app, name="migrate")
    app.command()(doctor)
