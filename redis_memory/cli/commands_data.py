"""The commands on conversations: ``ls``, ``show`` (``--follow``), ``find``, ``export``,
``import`` and ``cleanup``; and how ``key=value`` arguments become query filters."""

from __future__ import annotations

import re
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer

from redis_memory import ConversationMemory
from redis_memory.cli.output import FAILED, Options, emit_json, plain, progress_bar, table
from redis_memory.search.index import conversation_schema

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
LIST_FIELDS = ["state", "last_activity", "total_messages", "message_count"]


def duration(text: str) -> timedelta:
    """``7d``, ``12h``, ``30m``, ``45s``, ``2w`` as a timedelta; ValueError otherwise."""
    found = _DURATION.match(text.strip())
    if found is None:
        raise ValueError(f"not a duration: {text!r} (use e.g. 30m, 12h, 7d)")
    return timedelta(**{_UNITS[found.group(2)]: float(found.group(1))})


def _numeric_fields() -> tuple[set[str], set[str]]:
    fields: dict[str, Any] = conversation_schema()["fields"]
    numeric = {name for name, spec in fields.items() if spec.get("index") == "NUMERIC"}
    times = {name for name in numeric if fields[name].get("kind") == "datetime"}
    return numeric, times


def _value(name: str, text: str, numeric: set[str], times: set[str]) -> object:
    if name in times:
        if _DURATION.match(text.strip()):
            return datetime.now(UTC) - duration(text)
        try:
            return datetime.fromisoformat(text)
        except ValueError:
            pass
    if name in numeric:
        try:
            return int(text)
        except ValueError:
            try:
                return float(text)
            except ValueError:
                raise ValueError(f"{name} is a number field, not {text!r}") from None
    return text


def parse_filters(args: list[str]) -> dict[str, Any]:
    """``["state=active", "last_activity__lt=7d", "state__in=a,b"]`` as ``find`` filters:
    durations become a datetime that far in the past on time fields, numbers on NUMERIC
    fields, ``__in`` values split at commas."""
    numeric, times = _numeric_fields()
    filters: dict[str, Any] = {}
    for arg in args:
        key, sep, text = arg.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"{arg!r} is not key=value", param_hint="FILTERS")
        name, _, operator = key.partition("__")
        if operator == "in":
            filters[key] = [_value(name, part, numeric, times) for part in text.split(",")]
        else:
            filters[key] = _value(name, text, numeric, times)
    return filters


def _rows(opts: Options, ids: list[str]) -> list[dict[str, Any]]:
    found = ConversationMemory.fetch(ids, LIST_FIELDS, url=opts.url, prefix=opts.prefix)
    rows = []
    for conversation_id in ids:
        values = found.get(conversation_id, {})
        count = values.get("total_messages", values.get("message_count"))
        if count is None:
            mem = ConversationMemory(conversation_id, url=opts.url, prefix=opts.prefix)
            count = len(mem.messages) if "messages" in dir(mem) else 0
        rows.append(
            {"id": conversation_id, "state": values.get("state"), "last_activity": values.get("last_activity"),
             "messages": count}
        )  # fmt: skip
    return rows


def _listing(opts: Options, ids: list[str], total: int, offset: int, title: str) -> None:
    rows = _rows(opts, ids)
    if opts.json:
        emit_json({"total": total, "offset": offset, "conversations": rows})
        return
    table(
        f"{title}: {offset + 1 if rows else 0}-{offset + len(rows)} of {total}",
        ["id", "last activity", "messages", "state"],
        [[row["id"], row["last_activity"], row["messages"], row["state"]] for row in rows],
    )


def ls(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option(min=1, help="Conversations per page.")] = 20,
    page: Annotated[int, typer.Option(min=1, help="Which page (1 = the first).")] = 1,
) -> None:
    """List the conversations: last activity, message count, state (sorted by id, paged)."""
    opts: Options = ctx.obj
    every = ConversationMemory.ids(url=opts.url, prefix=opts.prefix)
    offset = (page - 1) * limit
    _listing(opts, every[offset : offset + limit], len(every), offset, "conversations")


def find(
    ctx: typer.Context,
    filters: Annotated[
        list[str] | None, typer.Argument(help="key=value filters, e.g. state=active last_activity__lt=7d")
    ] = None,
    sort_by: Annotated[str | None, typer.Option(help="A sortable field, '-' first for descending.")] = None,
    limit: Annotated[int, typer.Option(min=1)] = 20,
    offset: Annotated[int, typer.Option(min=0)] = 0,
) -> None:
    """The conversations matching every filter (the query API of ConversationMemory.find)."""
    opts: Options = ctx.obj
    parsed = parse_filters(filters or [])
    total = ConversationMemory.count(url=opts.url, prefix=opts.prefix, **parsed)
    found = ConversationMemory.find(
        sort_by=sort_by, limit=limit, offset=offset, url=opts.url, prefix=opts.prefix, **parsed
    )
    _listing(opts, [mem.conversation_id for mem in found], total, offset, "found")


def _line(message: Any) -> str:
    if isinstance(message, dict):
        role = message.get("role", "?")
        content = message.get("content")
        text = content if isinstance(content, str) else plain(content)
        return f"[{role}] {text}"
    return f"- {plain(message)}"


def show(
    ctx: typer.Context,
    conversation_id: Annotated[str, typer.Argument(metavar="ID")],
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Print new messages as they arrive, until Ctrl-C.")
    ] = False,
) -> None:
    """A conversation's transcript and its other attributes (exit 1 when it does not exist)."""
    opts: Options = ctx.obj
    mem = ConversationMemory(conversation_id, url=opts.url, prefix=opts.prefix)
    snapshot = mem.to_dict()
    if not snapshot:
        raise LookupError(f"no conversation {conversation_id!r}")
    if follow and not isinstance(snapshot.get("messages"), list):
        raise LookupError(f"conversation {conversation_id!r} has no messages list to follow")
    messages = snapshot.pop("messages", [])
    messages = messages if isinstance(messages, list) else []
    if opts.json and not follow:
        emit_json({"id": conversation_id, "messages": messages, "attributes": snapshot})
        return
    if opts.json:
        emit_json({"id": conversation_id, "messages": messages, "attributes": snapshot})
    else:
        out = sys.stdout
        out.write(f"conversation {conversation_id}\n")
        for name in sorted(snapshot):
            out.write(f"  {name}: {plain(snapshot[name])}\n")
        out.write(f"messages ({len(messages)}):\n")
        for message in messages:
            out.write(_line(message) + "\n")
        out.flush()
    if follow:
        _follow(mem, len(messages), opts.json)


def _follow(mem: ConversationMemory, seen: int, as_json: bool) -> None:
    import json

    try:
        while True:
            new = mem.messages.wait_for_new(after=seen, timeout=1.0)  # no polling: Ctrl-C between waits
            for message in new:
                sys.stdout.write((json.dumps(plain(message)) if as_json else _line(message)) + "\n")
            sys.stdout.flush()
            seen += len(new)
    except KeyboardInterrupt:
        return


def export(
    ctx: typer.Context,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="File to write (default: stdout).")] = None,
    ids: Annotated[list[str] | None, typer.Argument(help="Only these object ids.")] = None,
) -> None:
    """Write the objects under the prefix as JSON Lines (docs/migrating.md)."""
    from redis_memory.migrations.exporting import export_jsonl

    opts: Options = ctx.obj
    with progress_bar("export") as progress:
        if output is None:
            report = export_jsonl(sys.stdout, ids=ids or None, progress=progress, url=opts.url, prefix=opts.prefix)
        else:
            with output.open("w", encoding="utf-8") as out:
                report = export_jsonl(out, ids=ids or None, progress=progress, url=opts.url, prefix=opts.prefix)
    summary = f"exported {report.objects} objects ({report.attributes} attributes)"
    if output is not None and opts.json:
        emit_json(report)
    else:
        sys.stderr.write(summary + "\n")


def import_(
    ctx: typer.Context,
    source: Annotated[Path, typer.Argument(help="A file written by export ('-': stdin).")],
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace objects that exist.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Check only; write nothing.")] = False,
) -> None:
    """Write the objects of an export under the prefix (refused when one exists, unless --overwrite)."""
    from redis_memory.migrations.exporting import import_jsonl

    opts: Options = ctx.obj
    with progress_bar("import") as progress:
        if str(source) == "-":
            report = import_jsonl(sys.stdin, overwrite=overwrite, dry_run=dry_run, progress=progress,
                                  url=opts.url, prefix=opts.prefix)  # fmt: skip
        else:
            with source.open(encoding="utf-8") as handle:
                report = import_jsonl(handle, overwrite=overwrite, dry_run=dry_run, progress=progress,
                                      url=opts.url, prefix=opts.prefix)  # fmt: skip
    if opts.json:
        emit_json(report)
    else:
        verb = "would import" if report.dry_run else "imported"
        sys.stdout.write(
            f"{verb} {report.objects} objects ({report.attributes} attributes, {report.replaced} replaced)\n"
        )
    if report.problems:
        raise typer.Exit(FAILED)


def cleanup(
    ctx: typer.Context,
    older_than: Annotated[str, typer.Option("--older-than", help="e.g. 7d, 12h, 30m.")],
    field: Annotated[str, typer.Option(help="The datetime attribute compared.")] = "last_activity",
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only list what would be deleted.")] = False,
) -> None:
    """Delete every conversation whose last activity is older than --older-than."""
    opts: Options = ctx.obj
    try:
        age = duration(older_than)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--older-than") from None
    removed = sorted(ConversationMemory.cleanup(age, field=field, dry_run=dry_run, url=opts.url, prefix=opts.prefix))
    if opts.json:
        emit_json({"dry_run": dry_run, "ids": removed})
        return
    verb = "would delete" if dry_run else "deleted"
    sys.stdout.write(f"{verb} {len(removed)} conversations\n")
    for conversation_id in removed:
        sys.stdout.write(f"  {conversation_id}\n")


def register(app: typer.Typer) -> None:
    """Add these commands to ``app``."""
    app.command()(ls)
    app.command()(show)
    app.command()(find)
    app.command()(export)
    app.command(name="import")(import_)
    app.command()(cleanup)
