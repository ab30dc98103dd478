"""OpenTelemetry spans and metrics (redis_memory.telemetry), with the real SDK and real servers.

Every sync test reaches its server as an ACL user of its own, with a password in the URL, and
checks that the password appears in no span and no metric.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from redis_memory import ConversationMemory, WrongTypeError, aio, connections, telemetry
from redis_memory.journal import Journal
from tests.faultproxy import FaultProxy
from tests.servers import RedisProcess

ROOT = Path(__file__).resolve().parent.parent
COUNTERS = ("operations", "round_trips", "retries", "reconnects", "journaled", "replayed", "conflicts", "errors")


@dataclass
class Telemetry:
    """The SDK providers the library reports to during one test."""

    spans: InMemorySpanExporter
    metrics: InMemoryMetricReader

    def finished(self, name: str | None = None, server: str | None = None) -> list[ReadableSpan]:
        """The spans ended so far (of one name, or of one server: flusher threads of earlier
        tests' backends may still be replaying to their own servers)."""
        return [
            span
            for span in self.spans.get_finished_spans()
            if (name is None or span.name == name)
            and (server is None or span.attributes["redis_memory.server"] == server)
        ]

    def points(self) -> dict[str, list[Any]]:
        """Collect now: metric name -> its data points."""
        found: dict[str, list[Any]] = {}
        data = self.metrics.get_metrics_data()
        for resource_metrics in data.resource_metrics if data is not None else []:
            for scope_metrics in resource_metrics.scope_metrics:
                for metric in scope_metrics.metrics:
                    found.setdefault(metric.name, []).extend(metric.data.data_points)
        return found


@pytest.fixture
def otel() -> Iterator[Telemetry]:
    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    telemetry.instrument(tracer_provider=tracer_provider, meter_provider=meter_provider)
    try:
        yield Telemetry(spans, reader)
    finally:
        telemetry.uninstrument()
        tracer_provider.shutdown()
        meter_provider.shutdown()


@dataclass
class User:
    """An ACL user of the test's server: ``name`` with ``password``."""

    name: str
    password: str

    def url(self, server: RedisProcess) -> str:
        return f"unix://{self.name}:{self.password}@{server.socket}"


@pytest.fixture
def user(server: RedisProcess) -> Iterator[User]:
    found = User(f"otel-{uuid.uuid4().hex[:8]}", f"pw-{uuid.uuid4().hex}")
    admin = server.client()
    admin.execute_command("ACL", "SETUSER", found.name, "on", f">{found.password}", "~*", "&*", "+@all")
    try:
        yield found
    finally:
        admin.execute_command("ACL", "DELUSER", found.name)
        admin.close()


def leaks(secret: str, spans: list[ReadableSpan], points: dict[str, list[Any]]) -> list[str]:
    """Every place of the spans and metric points where ``secret`` appears."""
    found = []
    for span in spans:
        texts = [span.name, str(span.status.description), *map(str, span.attributes.values())]
        texts += [str(value) for event in span.events for value in event.attributes.values()]
        found += [f"span {span.name}: {text}" for text in texts if secret in text]
    for name, data_points in points.items():
        found += [f"metric {name}: {p.attributes}" for p in data_points if secret in str(p.attributes)]
    return found


def counter(points: dict[str, list[Any]], name: str, server: str) -> int:
    values = [p.value for p in points.get(f"redis_memory.{name}", []) if p.attributes == {"server": server}]
    assert len(values) == 1, (name, points.get(f"redis_memory.{name}"))
    return int(values[0])


def test_each_operation_is_a_client_span_naming_its_server_without_the_password(
    otel: Telemetry, server: RedisProcess, user: User, prefix: str
) -> None:
    url = user.url(server)
    mem = ConversationMemory("c1", url=url, prefix=prefix)
    mem.messages = [{"role": "system", "content": "Be brief"}]  # (an empty list would be read again)
    mem.messages.append({"role": "user", "content": "Hi"})
    mem.state = "active"
    assert ConversationMemory("c1", url=url, prefix=prefix).state == "active"
    assert mem.messages[1:] == [{"role": "user", "content": "Hi"}]  # the mirror: no operation, no span

    safe = f"unix://{server.socket}"
    names = [span.name for span in otel.finished(server=safe)]
    assert names == ["redis_memory g_assign", "redis_memory g_push", "redis_memory g_assign", "redis_memory g_read"]
    for number, span in enumerate(otel.finished(server=safe)):
        assert span.kind is SpanKind.CLIENT and span.status.status_code is StatusCode.UNSET
        attributes = dict(span.attributes)
        assert attributes["db.system"] == "redis"
        assert attributes["server.address"] == str(server.socket)
        assert attributes["redis_memory.server"] == safe
        assert attributes["redis_memory.operation"] == span.name.split()[1]
        # the first write under a prefix reads (and makes) its layout record first
        assert attributes["redis_memory.round_trips"] == (2 if number == 0 else 1)
        assert attributes["redis_memory.retries"] == 0
    points = otel.points()
    assert {p.attributes["server"] for p in points["redis_memory.operation.duration"]} == {safe}
    assert leaks(user.password, otel.finished(), points) == []
    assert telemetry.redact(url) == safe


def test_a_failed_operation_is_an_error_span_with_its_exception(
    otel: Telemetry, server: RedisProcess, user: User, prefix: str, raw: redis.Redis
) -> None:
    url = user.url(server)
    raw.set(f"{prefix}{{c1}}", "a string where the object's hash belongs")
    with pytest.raises(WrongTypeError):
        ConversationMemory("c1", url=url, prefix=prefix).state  # noqa: B018

    (span,) = otel.finished("redis_memory g_read", server=f"unix://{server.socket}")
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes["error.type"] == "WrongTypeError"
    (event,) = span.events
    assert event.name == "exception"
    assert event.attributes["exception.type"] == "redis_memory.errors.WrongTypeError"
    assert "WRONGTYPE" in event.attributes["exception.message"]
    backend = connections.backend_for(url=url)
    name = telemetry.redact(backend.label)  # other tests' background threads may record too: this server only
    (point,) = [p for p in otel.points()["redis_memory.operation.duration"] if p.attributes["server"] == name]
    assert point.attributes["error.type"] == "WrongTypeError" and point.attributes["op"] == "g_read"
    assert point.count == 1
    stats = connections.stats()  # the metric adds up every backend of this server (other tests' users too)
    assert counter(otel.points(), "errors", name) == sum(
        found["errors"] for label, found in stats.items() if telemetry.redact(label) == name
    )
    assert connections.stats()[backend.label]["errors"] == 1
    assert leaks(user.password, otel.finished(), otel.points()) == []


def test_a_write_resent_after_a_lost_reply_shows_its_retry_in_the_span_and_the_metric(
    otel: Telemetry, server: RedisProcess, user: User, prefix: str, raw: redis.Redis
) -> None:
    with FaultProxy(server.socket) as proxy:
        url = f"redis://{user.name}:{user.password}@127.0.0.1:{proxy.port}/0"
        mem = ConversationMemory("c1", url=url, prefix=prefix)
        mem.turns = 1  # connected, script loaded
        proxy.cut_after_forward(count=1, match=b"EVALSHA")  # Redis applies the next write; its reply is lost
        assert mem.incr("turns") == 2
        assert proxy.stats["cut_after_forward"] == 1

    (span,) = otel.finished("redis_memory g_incr", server=f"redis://127.0.0.1:{proxy.port}/0")
    assert span.attributes["redis_memory.retries"] == 1
    assert span.attributes["redis_memory.round_trips"] == 2
    assert span.attributes["server.address"] == "127.0.0.1" and span.attributes["server.port"] == proxy.port
    assert raw.hget(f"{prefix}{{c1}}", "turns") == "2"  # sent twice, applied once
    backend = connections.backend_for(url=url)
    server_name = telemetry.redact(backend.label)
    assert server_name == f"redis://127.0.0.1:{proxy.port}/0"
    points = otel.points()
    assert counter(points, "retries", server_name) == connections.stats()[backend.label]["retries"] == 1
    assert leaks(user.password, otel.finished(), points) == []


def test_the_metrics_report_the_figures_of_stats(
    otel: Telemetry, server: RedisProcess, user: User, prefix: str, raw: redis.Redis
) -> None:
    url = user.url(server)
    mem = ConversationMemory("c1", url=url, prefix=prefix)
    mem.messages = []
    for turn in range(3):
        mem.messages.append({"turn": turn})
    mem.incr("turns")
    assert ConversationMemory("c1", url=url, prefix=prefix, cache=False).to_dict()["turns"] == 1
    raw.set(f"{prefix}{{c2}}", "not a hash")
    with pytest.raises(WrongTypeError):
        ConversationMemory("c2", url=url, prefix=prefix).state  # noqa: B018

    backend = connections.backend_for(url=url)
    points = otel.points()
    stats = connections.stats()
    figures = stats[backend.label]
    server_name = telemetry.redact(backend.label)
    # earlier tests' users may have reached this server too: one server in the metrics, figures added up
    same_server = [found for label, found in stats.items() if telemetry.redact(label) == server_name]
    for name in COUNTERS:
        assert counter(points, name, server_name) == sum(found[name] for found in same_server), name
    (depth,) = [p for p in points["redis_memory.journal.depth"] if p.attributes == {"server": server_name}]
    assert depth.value == figures["journal_depth"] == 0
    assert figures["operations"] == 8  # (the first append reads the empty list: no key tracks it)
    assert figures["errors"] == 2  # + the RedisJSON probe: JSON.TYPE of a hash (WRONGTYPE), or unknown command
    durations = {
        p.attributes["op"]: p.count
        for p in points["redis_memory.operation.duration"]
        if p.attributes["server"] == server_name and "error.type" not in p.attributes
    }
    assert durations == {op: latency["count"] for op, latency in figures["latency_ms"].items()}
    assert durations["g_push"] == 3


def test_a_journaled_write_is_replayed_in_a_span_and_counted(
    otel: Telemetry, server: RedisProcess, user: User, prefix: str, raw: redis.Redis, tmp_path: Path
) -> None:
    with FaultProxy(server.socket) as proxy:
        url = f"redis://{user.name}:{user.password}@127.0.0.1:{proxy.port}/0"
        backend = connections.backend_for(url=url)
        backend.journal, backend.retry_for = Journal(tmp_path / "journal.sqlite3"), 0.0
        mem = ConversationMemory("c1", url=url, prefix=prefix)
        mem.state = "written online"
        proxy.refuse(True)
        mem.state = "written offline"
        server_name = telemetry.redact(backend.label)
        points = otel.points()
        assert counter(points, "journaled", server_name) == connections.stats()[backend.label]["journaled"] == 1
        (depth,) = [p for p in points["redis_memory.journal.depth"] if p.attributes == {"server": server_name}]
        assert depth.value == connections.stats()[backend.label]["journal_depth"] == 1
        proxy.heal()
        assert backend.flush_journal(timeout=30)

    assert raw.hget(f"{prefix}{{c1}}", "state") == "written offline"
    replays = otel.finished("redis_memory journal.replay", server=server_name)
    assert sum(span.attributes["redis_memory.replayed"] for span in replays) == 1
    assert replays[-1].attributes["redis_memory.journal.depth"] == 0
    assert all(span.attributes["server.port"] == proxy.port for span in replays)
    online, offline = otel.finished("redis_memory g_assign", server=server_name)
    assert online.status.status_code is offline.status.status_code is StatusCode.UNSET  # journaled: no error
    assert offline.attributes["redis_memory.round_trips"] == 1  # one try, refused (retry_for=0)
    points = otel.points()
    assert counter(points, "replayed", server_name) == connections.stats()[backend.label]["replayed"] == 1
    assert leaks(user.password, otel.finished(), points) == []


def test_async_operations_are_spans_too(otel: Telemetry, server: RedisProcess, prefix: str) -> None:
    async def main() -> None:
        try:
            mem = aio.ConversationMemory("c1", url=server.url, prefix=prefix)
            await mem.set("state", "active")
            await mem.set("messages", [])
            await mem.messages.append("Hi")
            assert await mem.get("state") == "active"
        finally:
            await aio.aclose()

    asyncio.run(main())
    spans = otel.finished(server=server.url)
    names = [span.name for span in spans]
    assert names == ["redis_memory g_assign", "redis_memory g_assign", "redis_memory g_push", "redis_memory g_read"]
    for number, span in enumerate(spans):
        assert span.kind is SpanKind.CLIENT
        assert span.attributes["redis_memory.server"] == server.url
        assert span.attributes["redis_memory.round_trips"] == (2 if number == 0 else 1)  # the layout record first
        assert span.attributes["redis_memory.retries"] == 0
    ops = {p.attributes["op"] for p in otel.points()["redis_memory.operation.duration"]}
    assert ops == {"g_assign", "g_push", "g_read"}


def test_uninstrument_stops_the_spans_and_the_metrics(otel: Telemetry, server: RedisProcess, prefix: str) -> None:
    mem = ConversationMemory("c1", url=server.url, prefix=prefix)
    mem.state = "on"
    assert len(otel.finished(server=server.url)) == 1
    before = sum(p.count for p in otel.points()["redis_memory.operation.duration"])
    telemetry.uninstrument()
    assert telemetry.active is None
    mem.state = "off"
    assert ConversationMemory("c1", url=server.url, prefix=prefix).state == "off"
    assert len(otel.finished(server=server.url)) == 1
    points = otel.points()
    assert sum(p.count for p in points["redis_memory.operation.duration"]) == before
    assert connections.stats()[server.url]["operations"] >= 3  # stats() keeps counting without OpenTelemetry


@pytest.mark.parametrize(
    ("label", "expected"),
    [
        ("redis://alice:s3cret@host:6379/0", "redis://host:6379/0"),
        ("rediss://:p@ss@host/1", "rediss://host/1"),  # an unencoded @ in the password
        ("unix://alice:s3cret@/run/redis.sock?db=2", "unix:///run/redis.sock?db=2"),
        ("redis://host:6379/0?password=s3cret&db=1", "redis://host:6379/0?db=1"),
        ("redis://host/0?db=1&password=s3cret", "redis://host/0?db=1"),
        ("cannot reach Redis at redis://u:s3cret@h:1/0: refused", "cannot reach Redis at redis://h:1/0: refused"),
        ("<redis.client.Redis(<ConnectionPool(<Connection(host=h,port=1,db=0)>)>)>", None),
        ("unix:///run/redis.sock", None),
    ],
)
def test_redact_removes_credentials_and_keeps_the_rest(label: str, expected: str | None) -> None:
    assert telemetry.redact(label) == (label if expected is None else expected)
    assert "s3cret" not in str(telemetry.server_attributes(label))


def run_python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {key: value for key, value in os.environ.items() if key != "REDIS_MEMORY_OTEL"}
    environment.update(PYTHONPATH=str(ROOT), **env)
    return subprocess.run(
        [sys.executable, "-c", code], env=environment, capture_output=True, text=True, timeout=120, check=False
    )


WITHOUT_OTEL = "import sys\nsys.modules['opentelemetry'] = None  # as if opentelemetry-api were not installed\n"


def test_without_opentelemetry_the_library_works_and_instrument_says_which_extra_to_install(
    server: RedisProcess, prefix: str
) -> None:
    code = WITHOUT_OTEL + (
        "from redis_memory import ConversationMemory, telemetry\n"
        f"mem = ConversationMemory('c1', url={server.url!r}, prefix={prefix!r})\n"
        "mem.state = 'works'\n"
        "assert mem.state == 'works' and telemetry.active is None\n"
        "try:\n"
        "    telemetry.instrument()\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    done = run_python(code)
    assert done.returncode == 0, done.stderr
    assert "pip install 'redis-memory[otel]'" in done.stdout


def test_the_environment_turns_it_on_at_import() -> None:
    done = run_python("from redis_memory import telemetry\nprint(telemetry.active is not None)", REDIS_MEMORY_OTEL="1")
    assert done.returncode == 0 and done.stdout.strip() == "True", done.stderr
    done = run_python(WITHOUT_OTEL + "import redis_memory", REDIS_MEMORY_OTEL="1")
    assert done.returncode != 0 and "redis-memory[otel]" in done.stderr
