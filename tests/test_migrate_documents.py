"""Dicts stored as JSON text (written without RedisJSON) converted to RedisJSON documents.

The two server kinds are different processes: dicts are written on the server without the
modules, their keys copied (DUMP / RESTORE, under a fresh prefix) to the server with them,
and converted there.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
import redis

from redis_memory import ConversationMemory, MigrationError
from redis_memory.keys import migration_key
from redis_memory.migrations.documents import convert_json_documents
from tests.servers import RedisProcess


def document(i: int) -> dict[str, Any]:
    return {"n": i, "name": f"doc {i} \u00e9\u4e16", "tags": ["a", None, 1.5, True], "deep": {"x": {"y": []}}, "e": {}}


def copied(servers: dict[str, RedisProcess], source: str, target: str) -> None:
    """Every key under ``source`` on the plain server, restored under ``target`` on the other."""
    plain, modules = servers["plain"].client(), servers["modules"].client()
    try:
        for key in plain.scan_iter(match=f"{source}*", count=1000):
            name = target.encode() + key[len(source) :]
            modules.restore(name, max(plain.pttl(key), 0), plain.dump(key))
    finally:
        plain.close()
        modules.close()


@pytest.fixture
def converted_prefix(servers: dict[str, RedisProcess], prefix: str) -> str:
    """200 conversations with dicts (and a list and a scalar) written without RedisJSON,
    copied to the modules server under ``prefix + "m"``."""
    plain = servers["plain"]
    for i in range(200):
        mem = ConversationMemory(f"c{i}", url=plain.url, prefix=prefix)
        with mem.transaction():
            mem.settings = document(i)
            mem.empty = {}
            mem.messages = [{"role": "user", "content": "hi"}]
            mem.state = "s"
    client = plain.client()
    assert client.type(f"{prefix}{{c0}}:settings") == b"string"  # stored as JSON text there
    client.close()
    copied(servers, prefix, prefix + "m")
    return prefix + "m"


def test_dicts_written_without_redisjson_are_converted(servers: dict[str, RedisProcess], converted_prefix: str) -> None:
    modules = servers["modules"]
    target = converted_prefix
    raw = redis.Redis(unix_socket_path=str(modules.socket))
    dry = convert_json_documents(url=modules.url, prefix=target, dry_run=True)
    assert dry.converted == 400 and not dry.verified and raw.type(f"{target}{{c0}}:settings") == b"string"
    assert not raw.exists(migration_key(target, "documents"))

    seen: list[int] = []
    report = convert_json_documents(url=modules.url, prefix=target, batch=50, progress=lambda d, t: seen.append(d))
    assert report.ok and report.converted == 400 and not report.resumed, report.problems[:3]
    assert seen and seen[-1] == report.scanned
    assert raw.type(f"{target}{{c7}}:settings") == b"ReJSON-RL"
    for i in range(200):
        mem = ConversationMemory(f"c{i}", url=modules.url, prefix=target, cache=False)
        assert mem.to_dict() == {
            "settings": document(i),
            "empty": {},
            "messages": [{"role": "user", "content": "hi"}],
            "state": "s",
        }
    mem = ConversationMemory("c3", url=modules.url, prefix=target)
    mem.settings["deep"]["x"]["y"].append(1)  # a path change: JSON.ARRAPPEND, which needs the document
    mem.settings["new"] = "value"
    assert ConversationMemory("c3", url=modules.url, prefix=target, cache=False).settings["deep"]["x"]["y"] == [1]

    before = {key: raw.dump(key) for key in raw.scan_iter(match=f"{target}*", count=1000)}
    again = convert_json_documents(url=modules.url, prefix=target)
    assert again.ok and again.converted == 0
    assert {key: raw.dump(key) for key in raw.scan_iter(match=f"{target}*", count=1000)} == before  # nothing changed
    raw.close()


def test_an_interrupted_run_resumes(servers: dict[str, RedisProcess], converted_prefix: str) -> None:
    modules = servers["modules"]
    raw = redis.Redis(unix_socket_path=str(modules.socket), decode_responses=True)

    def stop_after_a_batch(done: int, total: int | None) -> None:
        if raw.exists(migration_key(converted_prefix, "documents")):
            raise KeyboardInterrupt  # the run is stopped after its first converted batch

    with pytest.raises(KeyboardInterrupt):
        convert_json_documents(url=modules.url, prefix=converted_prefix, batch=40, progress=stop_after_a_batch)
    checkpoint = raw.hgetall(migration_key(converted_prefix, "documents"))
    assert checkpoint["state"] == "running" and 0 < int(checkpoint["converted"]) < 400
    report = convert_json_documents(url=modules.url, prefix=converted_prefix, batch=40)
    assert report.resumed and report.ok and report.converted == 400
    assert raw.hget(migration_key(converted_prefix, "documents"), "state") == "done"
    raw.close()


def test_a_concurrent_reader_never_sees_a_dict_missing(servers: dict[str, RedisProcess], converted_prefix: str) -> None:
    modules = servers["modules"]
    failures: list[object] = []
    stop = threading.Event()

    def read() -> None:
        reader = ConversationMemory("c5", client=modules.client(), prefix=converted_prefix, cache=False)
        while not stop.is_set():
            try:
                if reader.settings != document(5):
                    failures.append(reader.settings)
            except Exception as exc:  # any failure to read is what this test looks for
                failures.append(exc)

    thread = threading.Thread(target=read)
    thread.start()
    try:
        report = convert_json_documents(url=modules.url, prefix=converted_prefix, batch=10)
    finally:
        stop.set()
        thread.join()
    assert report.ok and not failures


def test_refused_without_redisjson(servers: dict[str, RedisProcess], prefix: str) -> None:
    plain = servers["plain"]
    ConversationMemory("c1", url=plain.url, prefix=prefix).settings = {"a": 1}
    with pytest.raises(MigrationError, match="RedisJSON"):
        convert_json_documents(url=plain.url, prefix=prefix)
    client = plain.client()
    assert client.type(f"{prefix}{{c1}}:settings") == b"string"
    assert not client.exists(migration_key(prefix, "documents"))
    client.close()
