"""The Lua scripts, composed from ``lua/`` once per process, by name."""

from __future__ import annotations

import functools
import hashlib
from importlib import resources

_STANDALONE = ("get", "snapshot", "push", "layout")  # push.lua: the lean hot path of ops/push.lua
_OPS = ("assign", "delete", "push", "list", "set", "doc", "doc_cas", "incr", "cas", "clear")


@functools.cache
def script_table() -> dict[str, tuple[str, str]]:
    """``name -> (sha1, source)`` of the scripts, composed from ``lua/`` on first use.

    Each write op lives once, in ``lua/ops/<op>.lua``; ``op:<op>`` is ``lib.lua`` + that op +
    ``single.lua``, and ``batch`` is ``lib.lua`` + every op + ``batch.lua`` (transactions).
    """
    folder = resources.files("redis_memory").joinpath("lua")

    def read(path: str) -> str:
        return folder.joinpath(path).read_text("utf-8")

    sources = {name: read(f"{name}.lua") for name in _STANDALONE}
    lib = read("lib.lua")
    ops = {name: read(f"ops/{name}.lua") for name in _OPS}
    for name, body in ops.items():
        sources[f"op:{name}"] = "\n".join((lib, body, read("single.lua")))
    sources["batch"] = "\n".join((lib, *ops.values(), read("batch.lua")))
    return {name: (hashlib.sha1(source.encode()).hexdigest(), source) for name, source in sources.items()}
