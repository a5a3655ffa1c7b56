"""A real Redis Cluster for tests: three primaries with one replica each, on free ports.

The nodes are the Debian package's ``redis-server`` (Redis 7), started with
``--cluster-enabled yes`` in a temporary directory and joined by
``redis-cli --cluster create ... --cluster-replicas 1``, exactly as an
operator would. ``--cluster-node-timeout`` is short (1 s) so a killed
primary's replica is promoted in a few seconds, not fifteen.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis

NODE_TIMEOUT_MS = 1000
SERVER = "/usr/bin/redis-server"
CLI = "/usr/bin/redis-cli"


def available() -> bool:
    """True where the Debian package is installed (then the cluster tests must run)."""
    return Path(SERVER).exists() and Path(CLI).exists()


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_ports(count: int) -> list[int]:
    """Ports whose cluster bus port (+10000) is free too."""
    found: list[int] = []
    while len(found) < count:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port + 10000 < 65536 and port not in found and _port_free(port + 10000):
            found.append(port)
    return found


@dataclass
class Node:
    port: int
    dir: Path
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        argv = [
            SERVER,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--cluster-enabled", "yes",
            "--cluster-config-file", "nodes.conf",
            "--cluster-node-timeout", str(NODE_TIMEOUT_MS),
            "--dir", str(self.dir),
            "--save", "",
            "--appendonly", "no",
            "--logfile", "redis.log",
        ]  # fmt: skip
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=5)

    def wait_up(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"redis-server on {self.port} exited: {self.log()}")
            with contextlib.suppress(redis.RedisError), self.client() as c:
                c.ping()
                return
            time.sleep(0.05)
        raise RuntimeError(f"redis-server on {self.port} did not answer: {self.log()}")

    def kill(self) -> None:
        """SIGKILL: no shutdown, no last write, as a crashed machine."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def log(self) -> str:
        path = self.dir / "redis.log"
        return path.read_text()[-2000:] if path.exists() else "(no log)"


@dataclass
class Cluster:
    """Six nodes: after ``create``, three primaries and their replicas."""

    base: Path
    nodes: list[Node] = field(default_factory=list)

    @property
    def url(self) -> str:
        """What MUTT is given: any node, with the cluster scheme."""
        return f"redis+cluster://127.0.0.1:{self.nodes[0].port}"

    def start(self, size: int = 6) -> Cluster:
        self.nodes = [Node(port, self.base / str(port)) for port in _free_ports(size)]
        for node in self.nodes:
            node.start()
        for node in self.nodes:
            node.wait_up()
        create = [CLI, "--cluster", "create"]
        create += [f"127.0.0.1:{n.port}" for n in self.nodes]
        create += ["--cluster-replicas", "1", "--cluster-yes"]
        done = subprocess.run(create, capture_output=True, text=True, timeout=120, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"redis-cli --cluster create failed:\n{done.stdout}\n{done.stderr}")
        self.wait_healthy()
        return self

    def live(self) -> list[Node]:
        return [n for n in self.nodes if n.proc is not None and n.proc.poll() is None]

    def wait_healthy(self, timeout: float = 60.0) -> float:
        """Until every live node says the cluster is ok and knows three primaries, and every
        live replica is in sync with its primary; the seconds it took."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if all(self._healthy(n) for n in self.live()):
                return time.monotonic() - started
            time.sleep(0.05)
        raise RuntimeError("the cluster did not become healthy")

    def _healthy(self, node: Node) -> bool:
        try:
            with node.client() as c:
                info = c.execute_command("CLUSTER", "INFO")
                text = info.decode() if isinstance(info, bytes) else str(info)
                if "cluster_state:ok" not in text or len(self.primaries(c)) != 3:
                    return False
                role: Any = c.info("replication")
                return role["role"] == "master" or role.get("master_link_status") == "up"
        except redis.RedisError:
            return False

    def primaries(self, client: redis.Redis | None = None) -> dict[int, tuple[int, int]]:
        """Port -> (first slot, last slot) of each live primary, from CLUSTER NODES."""
        own = client is None
        c = client or self.live()[0].client()
        try:
            raw = c.execute_command("CLUSTER", "NODES")
        finally:
            if own:
                c.close()
        text = raw.decode() if isinstance(raw, bytes) else str(raw)
        found: dict[int, tuple[int, int]] = {}
        for line in text.splitlines():
            parts = line.split()
            if "master" not in parts[2] or "fail" in parts[2] or len(parts) < 9:
                continue
            port = int(parts[1].split("@")[0].rsplit(":", 1)[1])
            lo, _, hi = parts[8].partition("-")
            found[port] = (int(lo), int(hi or lo))
        return found

    def node(self, port: int) -> Node:
        return next(n for n in self.nodes if n.port == port)

    def replica_of(self, port: int) -> Node:
        """The replica of the primary on ``port``."""
        with self.node(port).client() as c:
            info: Any = c.info("replication")
        return self.node(int(info["slave0"]["port"]))

    def wait_promoted(self, dead: int, timeout: float = 60.0) -> float:
        """Until a replica took over the slots of the primary on ``dead``; the seconds."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            with contextlib.suppress(redis.RedisError):
                if dead not in self.primaries():
                    self.wait_healthy(timeout)
                    return time.monotonic() - started
            time.sleep(0.05)
        raise RuntimeError(f"no replica took over from {dead}")

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()
        shutil.rmtree(self.base, ignore_errors=True)


def primary_of(cluster: Cluster, key: str) -> int:
    """The port of the primary holding ``key``'s slot (CLUSTER KEYSLOT on a live node)."""
    with cluster.live()[0].client() as c:
        slot = int(c.execute_command("CLUSTER", "KEYSLOT", key))
    for port, (lo, hi) in cluster.primaries().items():
        if lo <= slot <= hi:
            return port
    raise AssertionError(f"no primary holds slot {slot}")
