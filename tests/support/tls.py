"""Real PostgreSQL and Redis servers with TLS on, and the certificates they need.

The certificates come from the ``openssl`` command: a CA, a server
certificate it signs for the name ``localhost`` only (so 127.0.0.1 is a
*wrong* host name for it), and a second, unrelated CA. The servers are
``tests.support.servers``' own, with TLS on.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.servers import ServerTls, postgres_server, redis_server

SERVER_NAME = "localhost"


@dataclass(frozen=True)
class Pki:
    """CA, wrong CA and a server certificate for ``localhost``, in one directory."""

    ca: Path
    other_ca: Path
    cert: Path
    key: Path


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_pki(directory: Path) -> Pki:
    if shutil.which("openssl") is None:
        pytest.skip(
            "the openssl command is needed to make certificates (.ci/install-system-packages.sh)"
        )
    d = directory
    for name in ("ca", "other-ca"):
        _openssl(
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-keyout", f"{name}.key", "-out", f"{name}.pem", "-subj", f"/CN=mutt test {name}",
            cwd=d,
        )  # fmt: skip
    _openssl(
        "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
        "-subj", f"/CN={SERVER_NAME}", cwd=d,
    )  # fmt: skip
    (d / "san.ext").write_text(f"subjectAltName=DNS:{SERVER_NAME}\n")
    _openssl(
        "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-days", "2", "-out", "server.pem", "-extfile", "san.ext", cwd=d,
    )  # fmt: skip
    return Pki(d / "ca.pem", d / "other-ca.pem", d / "server.pem", d / "server.key")


def server_tls(pki: Pki) -> ServerTls:
    return ServerTls(cert=pki.cert, key=pki.key, ca=pki.ca)


@contextlib.contextmanager
def postgres_tls(pki: Pki) -> Iterator[int]:
    """A PostgreSQL with ``ssl=on`` on 127.0.0.1; yields its port (user postgres, trust)."""
    with postgres_server(server_tls(pki)) as port:
        yield port


@contextlib.contextmanager
def redis_tls(pki: Pki, workdir: Path) -> Iterator[int]:
    """A redis-server with only a TLS port on 127.0.0.1; yields the port.

    Debian's redis-server is built with TLS; one that is not exits at once,
    and the test is skipped with its reason.
    """
    with redis_server(workdir, server_tls(pki)) as port:
        yield port
