"""What the command line prints: rich tables, one JSON document with ``--json``, one-line
errors, progress bars (only when stderr is a terminal), and the exit codes."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, is_dataclass
from datetime import date, datetime
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

OK = 0
FAILED = 1  # not found, not running, a check failed
USAGE = 2  # typer's own code for a usage error
UNREACHABLE = 3  # Redis cannot be reached


@dataclass
class Options:
    """The options every command shares (given before the command's name)."""

    url: str | None = None
    prefix: str | None = None
    json: bool = False
    debug: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


def plain(value: Any) -> Any:
    """``value`` as JSON-ready data (datetimes as ISO text, sets sorted, dataclasses as dicts)."""
    if is_dataclass(value) and not isinstance(value, type):
        return plain(asdict(value))
    if isinstance(value, dict):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, (set, frozenset)):
        return sorted((plain(item) for item in value), key=str)
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def emit_json(value: Any) -> None:
    """Write ``value`` as one JSON document on stdout."""
    sys.stdout.write(json.dumps(plain(value), ensure_ascii=False, sort_keys=True) + "\n")


def console() -> Console:
    """A console on stdout (no colours unless it is a terminal)."""
    return Console(highlight=False, soft_wrap=True)


def table(title: str | None, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Print a table of ``rows`` on stdout."""
    shown = Table(title=title)
    for column in columns:
        shown.add_column(column)
    for row in rows:
        shown.add_row(*("" if cell is None else str(plain(cell)) for cell in row))
    console().print(shown)


def error(message: str) -> None:
    """One line on stderr: ``redis-memory: error: <message>``."""
    text = " ".join(str(message).split())
    sys.stderr.write(f"redis-memory: error: {text}\n")


@contextmanager
def progress_bar(label: str) -> Iterator[Callable[[int, int | None], None] | None]:
    """A ``progress(done, total)`` callback drawing a bar on stderr when it is a terminal,
    else None (nothing drawn, as in tests and pipes)."""
    if not sys.stderr.isatty():
        yield None
        return
    bar = Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), console=Console(stderr=True), transient=True)
    task = bar.add_task(label, total=None)
    with bar:

        def update(done: int, total: int | None) -> None:
            bar.update(task, completed=done, total=total)

        yield update
