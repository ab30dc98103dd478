"""Optional OpenTelemetry spans and metrics for every backend (the ``otel`` extra).

Off by default, and then free: each operation costs one check of :data:`active`. Turned on
for the process by :func:`instrument` (or ``REDIS_MEMORY_OTEL=1`` when this module is first
imported), off again by :func:`uninstrument`. OpenTelemetry is imported only then, so the
library runs without it.

When on, the drivers hand each operation to :data:`active` (through the hook they expose,
:mod:`redis_memory.observer`), which wraps it in a span
(``redis_memory <operation>``, kind CLIENT) and records its duration; each replay of the
offline journal gets a span too (``redis_memory journal.replay``). The counters are not
counted twice: observable instruments read the figures :func:`redis_memory.stats` reports,
whenever the meter collects, so the two always agree. No attribute holds a password: servers
are named by :func:`redact`. docs/observability.md lists every span, metric and attribute.
"""

from __future__ import annotations

import functools
import os
import re
import time
import traceback
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar, cast
from urllib.parse import urlsplit

from redis_memory import connections, observer
from redis_memory.core.requests import Op, Request, advance
from redis_memory.redaction import redact as redact

if TYPE_CHECKING:
    from types import GeneratorType

    from opentelemetry.metrics import CallbackOptions, Histogram, Meter, MeterProvider, Observation
    from opentelemetry.trace import Span, Tracer, TracerProvider

    from redis_memory.aio.backend import AsyncBackend
    from redis_memory.backend import Backend

T = TypeVar("T")

NAME = "redis_memory"  # the tracer's and the meter's instrumentation scope
EXTRA_HINT = "OpenTelemetry support needs the otel extra: pip install 'redis-memory[otel]'"

# The Stats counts observed as counters, redis_memory.<name>: (unit, description). The journal depth is a gauge.
_COUNTERS = {
    "operations": ("{operation}", "operations run (reads served by a local mirror are not operations)"),
    "round_trips": ("{request}", "requests sent to Redis, resends included"),
    "retries": ("{request}", "requests sent again after a lost connection"),
    "reconnects": ("{connection}", "connections opened again after one was lost"),
    "journaled": ("{write}", "writes committed to the offline journal while Redis could not be reached"),
    "replayed": ("{write}", "journaled writes sent to Redis (conflicts included)"),
    "conflicts": ("{write}", "journaled writes Redis refused on replay, dropped and logged"),
    "errors": ("{error}", "requests that failed (lost connection or error reply)"),
}
# Operations take ~0.1 ms on a local server: OpenTelemetry's default buckets (0 to 10,000) fit milliseconds.
_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

_REPR_FIELD = re.compile(r"\b(host|port|path)=([^,()<>\s]+)")


@functools.lru_cache(maxsize=256)
def server_attributes(label: str) -> dict[str, str | int]:
    """The span attributes that name the server of a backend labelled ``label``, without
    credentials: ``db.system``, ``redis_memory.server`` (:func:`redact`) and, when they can
    be read from the label, ``server.address`` (host, or unix socket path) and ``server.port``.
    Cached: treat the result as read-only."""
    safe = redact(label)
    attributes: dict[str, str | int] = {"db.system": "redis", "db.system.name": "redis", "redis_memory.server": safe}
    address: str | None = None
    port: int | None = None
    if "://" in safe and not safe.startswith("<"):
        parts = urlsplit(safe)
        if parts.scheme == "unix":
            address = parts.path or None
        else:
            address = parts.hostname
            try:
                port = parts.port
            except ValueError:
                port = None
    else:  # a client's repr: <redis.client.Redis(<...Connection(host=localhost,port=6379,db=0)>)>
        fields = dict(_REPR_FIELD.findall(safe))
        address = fields.get("host") or fields.get("path")
        port = int(fields["port"]) if fields.get("port", "").isdigit() else None
    if address:
        attributes["server.address"] = address
    if port is not None:
        attributes["server.port"] = port
    return attributes


class Telemetry:
    """The tracer and instruments in use (see :func:`instrument`). The drivers run each
    operation through :meth:`traced`, and each journal replay through :meth:`replay`."""

    def __init__(self, tracer: Tracer, meter: Meter) -> None:
        """Create the instruments on ``meter`` (a meter hands out the same instrument again for
        the same name, so instrumenting twice with one meter provider still observes once)."""
        from opentelemetry.trace import SpanKind

        self.tracer = tracer
        self.client = SpanKind.CLIENT
        self.duration = _histogram(meter)
        for name, (unit, description) in _COUNTERS.items():
            meter.create_observable_counter(
                f"redis_memory.{name}",
                callbacks=[functools.partial(_observe, name)],
                unit=unit,
                description=description,
            )
        meter.create_observable_gauge(
            "redis_memory.journal.depth",
            callbacks=[functools.partial(_observe, "journal_depth")],
            unit="{write}",
            description="journaled writes waiting for Redis",
        )

    def traced(self, backend: Backend | AsyncBackend, op: Op[T], *, counted: bool = True) -> Op[T]:
        """``op`` wrapped so that running it makes a span and records its duration; the driver
        runs the wrapper in its place. The span's round trips and retries are the backend's
        counts before and after (``counted``: the sync driver, which holds its lock meanwhile),
        or the requests ``op`` makes (the async driver, whose tasks share the counts: its resends
        show in :func:`redis_memory.stats` and the metrics, not in the span).

        The span's parent is the span current when the operation was called; the operation's
        span is not made current itself (the wrapper runs step by step inside the driver)."""
        name = getattr(op, "__name__", "op")
        span = self.tracer.start_span(
            f"redis_memory {name}",
            kind=self.client,
            attributes={**server_attributes(backend.label), "redis_memory.operation": name},
        )
        run = self._run(backend, op, name, span, counted, time.perf_counter())
        cast("GeneratorType[Request, Any, T]", run).__name__ = name  # Stats.timed names the operation by it
        return run

    def _run(
        self, backend: Backend | AsyncBackend, op: Op[T], name: str, span: Span, counted: bool, started: float
    ) -> Op[T]:
        counts = backend.stats.counts
        trips, retries = counts["round_trips"], counts["retries"]  # the first step runs under the driver's lock
        sent = 0
        error: str | None = None
        reply: Any = None
        thrown: Exception | None = None
        try:
            while True:
                done, value = advance(op, reply, thrown)
                if done:
                    result: T = value
                    return result
                sent += 1
                reply, thrown = None, None
                try:
                    reply = yield value
                except Exception as exc:  # the driver's (translated) error: op may handle it
                    thrown = exc
        except BaseException as exc:  # GeneratorExit too: the driver gave up on op (cancelled, interrupted)
            error = _failed(span, exc)
            raise
        finally:
            if counted:
                trips, retries = counts["round_trips"] - trips, counts["retries"] - retries
            else:
                trips, retries = sent, 0
            span.set_attributes({"redis_memory.round_trips": trips, "redis_memory.retries": retries})
            span.end()
            attributes = {"op": name, "server": server_attributes(backend.label)["redis_memory.server"]}
            if error is not None:
                attributes["error.type"] = error
            self.duration.record(time.perf_counter() - started, attributes)

    def replay(self, backend: Backend, run: Callable[[], None]) -> None:
        """``run()`` (one replay of the backend's journal; the caller holds its lock) in a span
        ``redis_memory journal.replay``, with the writes replayed, the conflicts dropped and
        the journal depth left."""
        counts = backend.stats.counts
        replayed, conflicts = counts["replayed"], counts["conflicts"]
        attributes = {**server_attributes(backend.label), "redis_memory.operation": "journal.replay"}
        with self.tracer.start_as_current_span(
            "redis_memory journal.replay",
            kind=self.client,
            attributes=attributes,
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            try:
                run()
            except BaseException as exc:
                _failed(span, exc)
                raise
            finally:
                span.set_attributes(
                    {
                        "redis_memory.replayed": counts["replayed"] - replayed,
                        "redis_memory.conflicts": counts["conflicts"] - conflicts,
                        "redis_memory.journal.depth": backend.backlog,
                    }
                )


# The instruments in use; None: off. Read by the drivers before every operation.
active: Telemetry | None = None


def instrument(tracer_provider: TracerProvider | None = None, meter_provider: MeterProvider | None = None) -> None:
    """Turn on spans and metrics for every backend of this process, sync and async (until
    :func:`uninstrument`); calling it again switches to the new providers.

    ``None`` stands for OpenTelemetry's global provider (``opentelemetry.trace`` /
    ``opentelemetry.metrics``), which may be set before or after this call. Raises
    ``ImportError`` when ``opentelemetry-api`` is not installed (the ``otel`` extra).
    """
    global active
    try:
        from opentelemetry import metrics, trace
    except ImportError as exc:
        raise ImportError(EXTRA_HINT) from exc
    tracer = trace.get_tracer(NAME, tracer_provider=tracer_provider)
    meter = metrics.get_meter(NAME, meter_provider=meter_provider)
    active = Telemetry(tracer, meter)
    observer.observe(active)


def uninstrument() -> None:
    """Turn spans and metrics off again: no more spans, and the observable metrics report
    nothing from now on (what was recorded stays with the providers)."""
    global active
    active = None
    observer.observe(None)


def _histogram(meter: Meter) -> Histogram:
    options: dict[str, Any] = {
        "unit": "s",
        "description": "duration of redis-memory operations, from the call to the result or error",
    }
    try:
        return meter.create_histogram(
            "redis_memory.operation.duration", explicit_bucket_boundaries_advisory=_BUCKETS, **options
        )
    except TypeError:  # opentelemetry-api < 1.23 has no bucket advice
        return meter.create_histogram("redis_memory.operation.duration", **options)


def _observe(figure: str, options: CallbackOptions) -> Iterator[Observation]:
    """One observation per server of the figure ``figure`` of :func:`redis_memory.stats`
    (servers whose labels differ only by credentials are added together)."""
    if active is None:
        return
    from opentelemetry.metrics import Observation

    totals: dict[str, int] = {}
    for label, figures in connections.stats().items():
        server = redact(label)
        totals[server] = totals.get(server, 0) + int(figures[figure])
    for server, value in totals.items():
        yield Observation(value, {"server": server})


def _failed(span: Span, exc: BaseException) -> str:
    """Mark ``span`` as failed by ``exc`` (message and stack trace redacted); returns the error type."""
    from opentelemetry.trace import Status, StatusCode

    message = redact(str(exc))
    error_type = type(exc).__qualname__
    span.record_exception(
        exc,
        attributes={
            "exception.message": message,
            "exception.stacktrace": redact("".join(traceback.format_exception(exc))),
        },
    )
    span.set_status(Status(StatusCode.ERROR, f"{error_type}: {message}"))
    span.set_attribute("error.type", error_type)
    return error_type


def _wanted(setting: str) -> bool:
    return setting.strip().lower() in ("1", "true", "yes", "on")


if _wanted(os.environ.get("REDIS_MEMORY_OTEL", "")):
    instrument()
