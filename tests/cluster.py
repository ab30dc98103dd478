"""A real Redis Cluster for the tests: 3 primaries, each with a replica, on loopback ports,
from the same ``redis-server`` binary as the other fixtures (the modules loaded, where they
load), formed with CLUSTER ADDSLOTSRANGE / MEET / REPLICATE (no redis-cli needed)."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import redis
import redis.cluster

from tests.servers import RedisProcess

SLOT_RANGES = ((0, 5460), (5461, 10922), (10923, 16383))


def _free_ports(count: int) -> list[int]:
    probes, ports = [], []
    for _ in range(count):
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        probes.append(probe)
        ports.append(int(probe.getsockname()[1]))
    for probe in probes:
        probe.close()
    return ports


def _cluster_options(bus_port: int) -> list[str]:
    return [
        "--cluster-enabled", "yes",
        "--cluster-port", str(bus_port),
        "--cluster-config-file", "nodes.conf",
        "--cluster-node-timeout", "2000",
        "--cluster-require-full-coverage", "no",
        "--cluster-allow-reads-when-down", "yes",
    ]  # fmt: skip


class ClusterProcesses:
    """Six redis-server processes forming one cluster (three primaries, three replicas)."""

    def __init__(self, directory: Path, modules: bool) -> None:
        self.directory = directory
        self.modules = modules
        self.kind = "modules" if modules else "plain"
        ports = _free_ports(12)
        self.ports, self.bus_ports = ports[:6], ports[6:]
        self.nodes = [
            RedisProcess(directory / f"node{port}", modules=modules, port=port, extra=_cluster_options(bus))
            for port, bus in zip(self.ports, self.bus_ports, strict=True)
        ]

    @property
    def url(self) -> str:
        """A URL of one node (with ``cluster=True``, the library finds the others)."""
        return f"redis://127.0.0.1:{self.ports[0]}/0"

    def node_client(self, port: int) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=port, decode_responses=True)

    def start(self) -> ClusterProcesses:
        for node in self.nodes:
            node.start()
        clients = [self.node_client(port) for port in self.ports]
        for client, (first, last) in zip(clients[:3], SLOT_RANGES, strict=True):
            client.execute_command("CLUSTER", "ADDSLOTSRANGE", first, last)
        for port, bus in zip(self.ports[1:], self.bus_ports[1:], strict=True):
            clients[0].execute_command("CLUSTER", "MEET", "127.0.0.1", port, bus)
        self._wait(lambda: all(len(c.execute_command("CLUSTER", "NODES").splitlines()) == 6 for c in clients))
        ids = [client.execute_command("CLUSTER", "MYID") for client in clients]
        for replica, primary_id in zip(clients[3:], ids[:3], strict=True):
            self._wait(lambda r=replica, p=primary_id: self._replicate(r, p))
        self._wait(lambda: all(c.execute_command("CLUSTER", "INFO").count("cluster_state:ok") for c in clients))
        self._wait(
            lambda: all(
                "master_link_status:up" in str(c.info("replication"))
                or c.info("replication").get("master_link_status") == "up"
                for c in clients[3:]
            )
        )
        for client in clients:
            client.close()
        return self

    def wait_healthy(self) -> None:
        """Wait until every node answers, the cluster is ok and every replica's link is up."""

        def healthy() -> bool:
            try:
                clients = [self.node_client(port) for port in self.ports]
                ok = all("cluster_state:ok" in c.execute_command("CLUSTER", "INFO") for c in clients)
                replicas = [c.info("replication") for c in clients]
                links = all(info.get("master_link_status", "up") == "up" for info in replicas)
                return ok and links and sum(info["role"] == "master" for info in replicas) == 3
            except redis.RedisError:
                return False

        self._wait(healthy, timeout=60)

    @staticmethod
    def _replicate(replica: redis.Redis, primary_id: str) -> bool:
        try:
            replica.execute_command("CLUSTER", "REPLICATE", primary_id)
            return True
        except redis.ResponseError:  # the replica does not know that node yet
            return False

    @staticmethod
    def _wait(condition: object, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():  # type: ignore[operator]
                return
            time.sleep(0.05)
        raise RuntimeError("the test cluster did not form in time")

    def primary_and_replica(self, key: str) -> tuple[RedisProcess, RedisProcess]:
        """The processes of the primary holding ``key``'s slot now, and of its replica."""
        raw = self.client()
        try:
            port = int(raw.nodes_manager.get_node_from_slot(raw.keyslot(key)).port)
        finally:
            raw.close()
        replica_port = int(self.node_client(port).info("replication")["slave0"]["port"])
        by_port = {node.port: node for node in self.nodes}
        return by_port[port], by_port[replica_port]

    def client(self) -> redis.cluster.RedisCluster:
        """A plain redis-py cluster client, to look at what the library stored."""
        return redis.cluster.RedisCluster(host="127.0.0.1", port=self.ports[0], decode_responses=True)

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


class ClusterTarget:
    """A cluster standing where the tests take a ``RedisProcess``: ``url``, ``modules``,
    ``client()`` (bytes, as ``RedisProcess.client``), ``raw()`` (decoded), ``kind``."""

    kind = "cluster"

    def __init__(self, cluster: ClusterProcesses) -> None:
        self.cluster = cluster
        self.modules = cluster.modules
        self.url = cluster.url

    def client(self) -> redis.cluster.RedisCluster:
        """A cluster client of its own (as another process would have)."""
        return redis.cluster.RedisCluster(host="127.0.0.1", port=self.cluster.ports[0])

    def raw(self) -> redis.cluster.RedisCluster:
        """A decoded cluster client, to look at what the library stored (``keys`` on every primary)."""
        return _EveryPrimary(host="127.0.0.1", port=self.cluster.ports[0], decode_responses=True)


class _EveryPrimary(redis.cluster.RedisCluster):
    """A cluster client whose ``keys()`` asks every primary, as ``keys()`` of one server sees all."""

    def keys(self, pattern: object = "*", **kwargs: object) -> list[object]:  # type: ignore[override]
        kwargs.setdefault("target_nodes", redis.cluster.RedisCluster.PRIMARIES)
        return super().keys(pattern, **kwargs)  # type: ignore[arg-type]
