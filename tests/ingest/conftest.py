"""Fixtures for ingest tests: the functions-framework app, as Knative serves it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import functions_framework
import pytest
from flask.testing import FlaskClient

import functions
from functions.ingest import app as ingest_app
from functions.ingest import auth
from functions.ingest.exposure import check_start
from shared.config import Settings
from shared.context import Context, set_context

SOURCE = Path(functions.__file__).parent / "ingest" / "main.py"
API_KEY = "k3y-for-tests"


def make_client(settings: Settings) -> FlaskClient:
    """The app as ``mutt serve ingest`` on 127.0.0.1 runs it (open when no key is set)."""
    ctx = Context(settings)
    check_start(settings, ctx.secrets, "127.0.0.1")
    set_context(ctx)
    ingest_app._ingest = None
    return functions_framework.create_app("ingest", str(SOURCE), "http").test_client()


@pytest.fixture
def client(settings: Settings) -> Iterator[FlaskClient]:
    yield make_client(settings)
    set_context(None)
    ingest_app._ingest = None
    auth.allow_keyless(False)


@pytest.fixture
def secured(settings: Settings, tmp_path: Path) -> Iterator[FlaskClient]:
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "ingest_api_keys").write_text(f"old-key\n{API_KEY}\n")
    yield make_client(settings.model_copy(update={"secrets_dir": secrets}))
    set_context(None)
    ingest_app._ingest = None
    auth.allow_keyless(False)
