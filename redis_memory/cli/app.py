"""The ``redis-memory`` application: shared options, the commands, and how an error ends it
(one line and an exit code that means something; the traceback with ``--debug``)."""

from __future__ import annotations

import logging
import sys
import traceback
from typing import Annotated

import typer

from redis_memory.cli import commands_admin, commands_data
from redis_memory.cli.output import FAILED, UNREACHABLE, USAGE, Options, error
from redis_memory.errors import RedisConnectionError

app = typer.Typer(
    name="redis-memory",
    help="Look at and manage redis-memory data: conversations, the embedded server, migrations.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def shared(
    ctx: typer.Context,
    url: Annotated[str | None, typer.Option(help="Redis URL (default: $REDIS_URL, else the embedded server).")] = None,
    prefix: Annotated[str | None, typer.Option(help="Key prefix (default: $REDIS_PREFIX, else memory:).")] = None,
    json: Annotated[bool, typer.Option("--json", help="Machine-readable output: one JSON document on stdout.")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show the traceback of an error.")] = False,
) -> None:
    """The options every command shares (before or after the command's name)."""
    ctx.obj = Options(url=url, prefix=prefix, json=json, debug=debug)


commands_data.register(app)
commands_admin.register(app)


_FLAGS = {"--json", "--debug"}
_VALUED = {"--url", "--prefix"}


def hoist_shared(args: list[str]) -> list[str]:
    """``args`` with the shared options (``--url X``, ``--prefix=X``, ``--json``, ``--debug``)
    moved before the command, so they work after it too (``redis-memory ls --json``); nothing
    after a ``--`` moves."""
    shared: list[str] = []
    rest: list[str] = []
    position = 0
    while position < len(args):
        arg = args[position]
        if arg == "--":
            rest.extend(args[position:])
            break
        if arg in _FLAGS or ("=" in arg and arg.split("=", 1)[0] in _VALUED):
            shared.append(arg)
        elif arg in _VALUED and position + 1 < len(args):
            shared.extend(args[position : position + 2])
            position += 1
        else:
            rest.append(arg)
        position += 1
    return shared + rest


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code (0 ok, 1 not found / check failed, 2 usage
    error, 3 Redis unreachable)."""
    args = hoist_shared(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    if not debug:  # the library's warnings (a lost connection...) would add lines to the one-line error
        logging.getLogger("redis_memory").setLevel(logging.ERROR)
    command = typer.main.get_command(app)
    try:
        code = command.main(args=args, prog_name="redis-memory", standalone_mode=False)
    except typer.Exit as done:
        return int(done.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        return 0  # Ctrl-C
    except typer.TyperException as exc:  # a usage error (typer's own click): its message, exit 2
        show = getattr(exc, "show", None)
        if callable(show):
            show()
        else:
            error(str(exc))
        code = getattr(exc, "exit_code", USAGE)
        return code if isinstance(code, int) and code else USAGE
    except Exception as exc:  # every other error: one line, unless --debug
        if debug:
            traceback.print_exc()
        else:
            error(str(exc) or type(exc).__name__)
        return UNREACHABLE if isinstance(exc, (RedisConnectionError, ConnectionError)) else FAILED
    return code if isinstance(code, int) else 0
