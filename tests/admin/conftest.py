"""A live admin function (``mutt serve admin``) on its own schema and namespace, with keys."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pg8000.native
import pytest
import redis
import requests

from mutt.db.migrate import migrate
from shared.config import Settings, load_settings
from shared.db.connection import connect_pg
from tests.support.processes import free_port, mutt, settings_env, stop, wait_http

KEYS = {
    "viewer": "viewer-key-0123456789abcdef",
    "operator": "operator-key-0123456789abcdef",
    "admin": "admin-key-0123456789abcdef",
}


@dataclass
class Admin:
    """The running function: its URL, settings, and a client per role."""

    url: str
    settings: Settings

    def call(
        self, method: str, path: str, role: str | None = "admin", **kwargs: object
    ) -> requests.Response:
        headers = dict(kwargs.pop("headers", {}) or {})  # type: ignore[call-overload]
        if role is not None:
            headers["X-API-KEY"] = KEYS[role]
        return requests.request(method, self.url + path, headers=headers, timeout=30, **kwargs)  # type: ignore[arg-type]


def admin_settings(servers: tuple[str, str]) -> Settings:
    """A fresh migrated schema and namespace of its own: the API writes rules freely."""
    schema = f"ta_{uuid.uuid4().hex[:10]}"
    conn = connect_pg(servers[1], schema)
    migrate(conn)
    conn.close()
    return load_settings(
        {},
        redis_url=servers[0],
        database_url=servers[1],
        database_schema=schema,
        namespace=f"ta{uuid.uuid4().hex[:8]}",
    )


def drop(settings: Settings) -> None:
    assert settings.redis_url and settings.database_url
    conn = connect_pg(settings.database_url)
    conn.run(f'DROP SCHEMA IF EXISTS "{settings.database_schema}" CASCADE')
    conn.close()
    client = redis.Redis.from_url(settings.redis_url)
    found = list(client.scan_iter(match=f"{settings.namespace}:*"))
    if found:
        client.delete(*found)
    client.close()


def serve_admin(settings: Settings, keys_secret: str) -> tuple[subprocess.Popen[bytes], str]:
    env = settings_env(settings)
    env["MUTT_SECRET_ADMIN_API_KEYS"] = keys_secret
    port = free_port()
    proc = subprocess.Popen(mutt("serve", "admin", "--port", str(port)), env=env)
    url = f"http://127.0.0.1:{port}"
    wait_http(url + "/healthz", proc)
    return proc, url


@pytest.fixture(scope="module")
def admin(servers: tuple[str, str]) -> Iterator[Admin]:
    settings = admin_settings(servers)
    secret = "\n".join(f"{role}:{key}" for role, key in KEYS.items())
    proc, url = serve_admin(settings, secret)
    try:
        yield Admin(url, settings)
    finally:
        stop(proc)
        drop(settings)


@pytest.fixture
def apg(admin: Admin) -> Iterator[pg8000.native.Connection]:
    """A connection to the admin function's schema."""
    assert admin.settings.database_url
    conn = connect_pg(admin.settings.database_url, admin.settings.database_schema)
    yield conn
    conn.close()


@dataclass
class Run:
    """A ``mutt run`` on the embedded default, with its generated admin key."""

    data_dir: Path
    ingest_url: str
    admin_url: str
    key: str
    output: Path


@pytest.fixture(scope="module")
def mutt_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    base = Path(tempfile.mkdtemp(prefix="mutt-a-"))  # short: Unix sockets live under it
    data = base / "d"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MUTT_")}
    env["PYTHONUNBUFFERED"] = "1"
    port, admin_port = free_port(), free_port()
    output = tmp_path_factory.mktemp("run") / "mutt-run.log"
    with output.open("wb") as log:
        proc = subprocess.Popen(
            mutt(
                "run", "--port", str(port), "--admin-port", str(admin_port), "--data-dir", str(data)
            ),
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    try:
        wait_http(f"http://127.0.0.1:{admin_port}/healthz", proc, timeout=120)
        deadline = time.monotonic() + 60
        while "admin console" not in output.read_text() and time.monotonic() < deadline:
            time.sleep(0.1)
        key = (data / "admin-api-key").read_text().strip()
        yield Run(data, f"http://127.0.0.1:{port}", f"http://127.0.0.1:{admin_port}", key, output)
    finally:
        stop(proc, timeout=60)
        shutil.rmtree(base, ignore_errors=True)
