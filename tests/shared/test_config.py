"""Static settings: a bad value stops the process with one line naming the variable."""

from __future__ import annotations

import subprocess

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.config import load_settings
from shared.errors import ConfigError
from tests.support.processes import mutt


@pytest.mark.parametrize(
    "url", ["mysql://u:s3cr3t@h/db", "postgresql://u:s3cr3t@h/db?sslmode=maybe"]
)
def test_a_bad_url_is_named_without_its_password(url: str) -> None:
    with pytest.raises(ConfigError, match="MUTT_DATABASE_URL") as caught:
        load_settings({"MUTT_DATABASE_URL": url})
    assert "s3cr3t" not in str(caught.value)
    assert "u:***@h" in str(caught.value)


def test_defaults_need_no_environment() -> None:
    settings = load_settings({})
    assert settings.redis_url is None
    assert settings.worker_batch_size == 100


def test_values_are_read_and_converted() -> None:
    settings = load_settings({"MUTT_WORKER_BATCH_SIZE": "250", "MUTT_REDIS_URL": "redis://h:1/0"})
    assert settings.worker_batch_size == 250
    assert settings.redis_url == "redis://h:1/0"


@pytest.mark.parametrize(
    "url", ["redis+cluster://10.0.0.1:7000", "rediss+cluster://u:pw@redis.example:6380"]
)
def test_a_redis_cluster_url_is_accepted(url: str) -> None:
    assert load_settings({"MUTT_REDIS_URL": url}).redis_url == url


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("MUTT_WORKER_BATCH_SIZE", "lots", "MUTT_WORKER_BATCH_SIZE"),
        ("MUTT_WORKER_BATCH_SIZE", "0", "greater than or equal to 1"),
        ("MUTT_REDIS_URL", "http://x", "must start with redis://"),
        ("MUTT_DATABASE_URL", "mysql://x", "must start with postgresql://"),
        ("MUTT_DATABASE_URL", "postgresql://h/db?sslmode=on", "sslmode must be one of disable"),
        ("MUTT_LOG_LEVEL", "LOUD", "MUTT_LOG_LEVEL"),
        ("MUTT_PARTITIONS", "0", "greater than or equal to 1"),
        ("MUTT_PARTITIONS", "97", "less than or equal to 96"),
        ("MUTT_DATABASE_SCHEMA", 'x"; drop table', "MUTT_DATABASE_SCHEMA"),
        ("MUTT_BATCH_SIZE", "5", "unknown setting"),
    ],
)
def test_bad_values_name_the_variable(name: str, value: str, expected: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings({name: value})
    assert name in str(err.value)
    assert expected in str(err.value)
    assert "\n" not in str(err.value)


@given(st.text(max_size=30))
def test_any_batch_size_text_is_accepted_or_refused_clearly(text: str) -> None:
    try:
        settings = load_settings({"MUTT_WORKER_BATCH_SIZE": text})
    except ConfigError as exc:
        assert str(exc).startswith("MUTT_WORKER_BATCH_SIZE=")
    else:
        assert 1 <= settings.worker_batch_size <= 10_000


def test_cli_reports_a_bad_value_in_one_line_without_traceback() -> None:
    proc = subprocess.run(
        mutt("db", "migrate"),
        env={"MUTT_WORKER_BATCH_SIZE": "many", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("mutt: MUTT_WORKER_BATCH_SIZE=")
