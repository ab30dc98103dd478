"""The lean push.lua and the library's ops/push.lua do the same thing, reply for reply."""

from __future__ import annotations

import pytest
import redis

from redis_memory.core.scripts import script_table
from tests.servers import RedisProcess


def run(client: redis.Redis, name: str, keys: list[str], args: list[str]) -> object:
    sha, source = script_table()[name]
    client.script_load(source)
    try:
        return client.evalsha(sha, len(keys), *keys, *args)
    except redis.exceptions.ResponseError as exc:
        return ("error", str(exc).split(" ")[0])


@pytest.mark.parametrize(
    ("kind", "bound", "elements"),
    [("list", "0", ["a"]), ("list", "2", ["a", "b", "c"]), ("list", "0", [str(n) for n in range(2500)]),
     ("str", "0", ["a"]), (None, "0", ["a"])],
)  # fmt: skip
def test_push_and_op_push_agree(
    server: RedisProcess, prefix: str, kind: str | None, bound: str, elements: list[str]
) -> None:
    client = server.client()
    outcomes = []
    for name in ("push", "op:push"):
        hash_key, key = f"{prefix}{{{name}}}", f"{prefix}{{{name}}}:log"
        if kind is not None:
            client.hset(hash_key, "_kind:log", kind)
        client.rpush(key, "old")
        reply = run(client, name, [hash_key, key], ["0", "", "", "_kind:log", bound, "", *elements])
        outcomes.append((reply, client.lrange(key, 0, -1), client.hgetall(hash_key)))
    assert outcomes[0] == outcomes[1]
