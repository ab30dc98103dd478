"""Fixtures: real redis-server processes (with and without modules) and fresh key prefixes."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from redis_memory import ConversationMemory, connections
from tests.cluster import ClusterProcesses, ClusterTarget
from tests.servers import RedisProcess

SERVER_KINDS = ["modules", "plain"]

pytest_plugins = ["tests.originals"]  # original_env, get_value, outage: the ports of the original packages' tests


@pytest.fixture(scope="session")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, RedisProcess]]:
    """One server with RedisJSON + RediSearch and one without, for the whole session."""
    base = Path(tmp_path_factory.mktemp("srv"))
    started = {kind: RedisProcess(base / kind, modules=(kind == "modules")).start() for kind in SERVER_KINDS}
    yield started
    connections.reset()
    for server in started.values():
        server.stop()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "on_cluster: the test also runs on a real Redis Cluster, as a third server kind")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """``server`` is each kind of SERVER_KINDS, and also "cluster" for tests marked ``on_cluster``
    (a module's ``pytestmark``) and not ``one_server``: the behavioural suite runs on a
    3-primary Redis Cluster too."""
    if "server" in metafunc.fixturenames:
        marked = metafunc.definition.get_closest_marker
        kinds = SERVER_KINDS + (["cluster"] if marked("on_cluster") and not marked("one_server") else [])
        metafunc.parametrize("server", kinds, indirect=True)


@pytest.fixture
def server(
    request: pytest.FixtureRequest,
    servers: dict[str, RedisProcess],
    clusters: dict[str, ClusterProcesses],
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[RedisProcess | ClusterTarget]:
    """Each test that takes ``server`` runs with the modules and without (and, marked
    ``on_cluster``, on a Redis Cluster with the modules: ``REDIS_CLUSTER=1`` is set meanwhile,
    so every ``url=server.url`` and every worker process opens it as a cluster)."""
    if request.param != "cluster":
        yield servers[request.param]
        return
    monkeypatch.setenv("REDIS_CLUSTER", "1")
    yield ClusterTarget(clusters["modules"])
    connections.reset()


@pytest.fixture
def modules_server(servers: dict[str, RedisProcess]) -> RedisProcess:
    """The server with RedisJSON + RediSearch only."""
    return servers["modules"]


@pytest.fixture
def prefix() -> str:
    """A key prefix of this test's own, instead of flushing a shared server."""
    return f"t{uuid.uuid4().hex[:10]}:"


@pytest.fixture
def raw(server: RedisProcess) -> Iterator[redis.Redis]:
    """A plain redis-py client to the same server, to look at what the library stored."""
    client = (
        server.raw()
        if isinstance(server, ClusterTarget)
        else redis.Redis(unix_socket_path=str(server.socket), decode_responses=True)
    )
    yield client
    client.close()


MemoryFactory = Callable[..., ConversationMemory]


@pytest.fixture
def memory(server: RedisProcess, prefix: str) -> MemoryFactory:
    """``memory("c1")`` opens ConversationMemory("c1") on this test's server and prefix.

    ``memory("c1", separate=True)`` uses a connection (and mirror table) of its own, as
    another process would (``client=c`` shares the backend of client ``c``); ``cache=False``
    reads every list/dict with a round trip.
    """

    def factory(
        conversation_id: object = "c1", *, separate: bool = False, cache: bool = True, client: redis.Redis | None = None
    ) -> ConversationMemory:
        if separate or client is not None:
            client = client or server.client()
            return ConversationMemory(conversation_id, client=client, prefix=prefix, cache=cache)  # type: ignore[arg-type]
        return ConversationMemory(conversation_id, url=server.url, prefix=prefix, cache=cache)  # type: ignore[arg-type]

    return factory


@pytest.fixture(scope="session")
def clusters(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, ClusterProcesses]]:
    """Real Redis Clusters (3 primaries, each with a replica), with the modules and without,
    started on first use and kept for the session."""
    base = Path(tmp_path_factory.mktemp("cluster"))
    started: dict[str, ClusterProcesses] = {}

    class Lazy(dict[str, ClusterProcesses]):
        def __missing__(self, kind: str) -> ClusterProcesses:
            started[kind] = ClusterProcesses(base / kind, modules=kind == "modules").start()
            self[kind] = started[kind]
            return started[kind]

    yield Lazy()
    connections.reset()
    for cluster in started.values():
        cluster.stop()


@pytest.fixture(params=SERVER_KINDS)
def cluster(request: pytest.FixtureRequest, clusters: dict[str, ClusterProcesses]) -> ClusterProcesses:
    """Each test that takes ``cluster`` runs on a cluster with the modules and on one without."""
    return clusters[request.param]
