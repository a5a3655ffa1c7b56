"""Ingest fails closed: off loopback it does not start without a key (``mutt serve``)."""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from functions.ingest import auth
from functions.ingest.exposure import check_start, is_loopback
from shared.config import Settings
from shared.errors import ConfigError
from shared.secrets import Secrets
from tests.support.processes import free_port, mutt, settings_env, stop, wait_http


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A port taken on every address: a start that gets past the key check ends with exit 4."""
    with socket.socket() as sock:
        sock.bind(("0.0.0.0", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def serve(settings: Settings, host: str, port: int, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        mutt("serve", "ingest", "--host", host, "--port", str(port)),
        env={**settings_env(settings), **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_no_key_off_loopback_is_one_clear_line_and_exit_2(
    settings: Settings, busy_port: int
) -> None:
    proc = serve(settings, "0.0.0.0", busy_port)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2, proc.stderr
    assert len(lines) == 1 and lines[0].startswith("mutt: "), proc.stderr
    assert "ingest would listen on 0.0.0.0 with no API key" in lines[0]
    assert "ingest_api_keys" in lines[0] and "MUTT_SECRET_INGEST_API_KEYS" in lines[0]
    assert "MUTT_INGEST_AUTH=off" in lines[0]


def test_a_key_or_an_explicit_opt_out_lets_it_start(
    settings: Settings, busy_port: int, tmp_path: Path
) -> None:
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "ingest_api_keys").write_text("a-key-of-32-random-hex-characters\n")
    keyed = serve(settings, "0.0.0.0", busy_port, MUTT_SECRETS_DIR=str(secrets))
    assert keyed.returncode == 4, keyed.stderr  # past the key check, stopped by the busy port
    assert "cannot listen on 0.0.0.0" in keyed.stderr
    from_env = serve(settings, "0.0.0.0", busy_port, MUTT_SECRET_INGEST_API_KEYS="k1,k2")
    assert from_env.returncode == 4, from_env.stderr
    off = serve(settings, "0.0.0.0", busy_port, MUTT_INGEST_AUTH="off")
    assert off.returncode == 4, off.stderr
    assert "ingest authentication is OFF (MUTT_INGEST_AUTH=off)" in off.stderr


def test_on_loopback_it_starts_open_and_says_so_once(settings: Settings, tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "ingest.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            mutt("serve", "ingest", "--host", "127.0.0.1", "--port", str(port)),
            env=settings_env(settings),
            stdout=out,
            stderr=out,
        )
        try:
            url = f"http://127.0.0.1:{port}"
            wait_http(f"{url}/healthz", proc)
            event = {"hostname": "h", "message": "m"}
            assert requests.post(f"{url}/ingest", json=event, timeout=10).status_code == 202
        finally:
            stop(proc)
    assert log.read_text().count("ingest accepts requests without an API key") == 1


def test_a_bad_auth_setting_is_refused(settings: Settings) -> None:
    proc = serve(settings, "127.0.0.1", 1, MUTT_INGEST_AUTH="maybe")
    assert proc.returncode == 2
    assert "MUTT_INGEST_AUTH='maybe'" in proc.stderr


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.0.0.2", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("", False),
        ("10.1.2.3", False),
        ("ingest.example.org", False),
    ],
)
def test_only_loopback_addresses_count_as_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_the_start_check_sets_what_the_process_allows(settings: Settings, tmp_path: Path) -> None:
    empty = Secrets(tmp_path, environ={})
    try:
        check_start(settings, empty, "127.0.0.1")
        assert auth.keyless_allowed()
        with pytest.raises(ConfigError, match="no API key"):
            check_start(settings, empty, "10.0.0.1")
        assert not auth.keyless_allowed()  # a refused start leaves the process closed
        check_start(settings.model_copy(update={"ingest_auth": "off"}), empty, "10.0.0.1")
    finally:
        auth.allow_keyless(False)


def test_mutt_run_off_loopback_refuses_before_starting_anything(
    settings: Settings, tmp_path: Path
) -> None:
    env = {**settings_env(settings), "MUTT_DATA_DIR": str(tmp_path / "data")}
    del env["MUTT_REDIS_URL"], env["MUTT_DATABASE_URL"]  # it would embed both: it must not
    proc = subprocess.run(
        mutt("run", "--host", "0.0.0.0", "--port", str(free_port())),
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2, proc.stderr
    assert len(lines) == 1 and "ingest would listen on 0.0.0.0 with no API key" in lines[0]
    assert not (tmp_path / "data").exists()  # no embedded server was started
