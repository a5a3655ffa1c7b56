"""Test fixtures: real Redis and PostgreSQL, isolated per test.

The servers are the ones a user would configure: ``MUTT_REDIS_URL`` and
``MUTT_DATABASE_URL``. When those are unset (a fresh machine), the session
starts the same embedded servers ``mutt run`` uses, so the suite still runs
against real servers, never fakes. Each test gets its own Redis key
namespace and each session its own PostgreSQL schema, removed afterwards.
Tests that need TCP (``tcp_servers``, ``tcp_settings``) get the configured
servers if they are TCP, else TCP servers started for the session.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pg8000.native
import pytest
import redis

from mutt.db.migrate import migrate
from mutt.embedded import EmbeddedPostgres, EmbeddedRedis
from shared.broker.keys import Keys
from shared.config import Settings, load_settings
from shared.context import Context
from shared.db.connection import connect_pg
from tests.support import cluster
from tests.support.servers import is_tcp_database, is_tcp_redis, postgres_server, redis_server
from tests.support.vendor import VendorServer

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """(redis_url, database_url) of real servers, embedded ones if none are configured."""
    redis_url = os.environ.get("MUTT_REDIS_URL")
    database_url = os.environ.get("MUTT_DATABASE_URL")
    started: list[EmbeddedRedis | EmbeddedPostgres] = []
    # A short path: Unix sockets live under it.
    base = Path(tempfile.mkdtemp(prefix="mutt-t-"))
    if not redis_url:
        er = EmbeddedRedis(base)
        redis_url = er.start()
        started.append(er)
    if not database_url:
        ep = EmbeddedPostgres(base)
        database_url = ep.start()
        started.append(ep)
    yield redis_url, database_url
    for server in reversed(started):
        server.stop()
    shutil.rmtree(base, ignore_errors=True)


@contextlib.contextmanager
def _private_schema(database_url: str) -> Iterator[str]:
    schema = f"t_{uuid.uuid4().hex[:10]}"
    conn = connect_pg(database_url, schema)
    migrate(conn)
    conn.close()
    yield schema
    conn = connect_pg(database_url)
    conn.run(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    conn.close()


@contextlib.contextmanager
def _private_namespace(redis_url: str) -> Iterator[str]:
    ns = f"t{uuid.uuid4().hex[:10]}"
    yield ns
    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match=f"{ns}:*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


def _test_settings(redis_url: str, database_url: str, schema: str, ns: str, data: Path) -> Settings:
    """Settings as a user would give them, pointed at this test's namespace and schema."""
    return load_settings(
        {},
        redis_url=redis_url,
        database_url=database_url,
        database_schema=schema,
        namespace=ns,
        data_dir=data,
        heartbeat_interval_seconds=0.2,
        heartbeat_ttl_seconds=1.0,
        claim_min_idle_seconds=0.5,
        retry_delay_seconds=0.5,
        worker_block_ms=100,
    )


@pytest.fixture(scope="session")
def db_schema(servers: tuple[str, str]) -> Iterator[str]:
    """A migrated schema private to this test session."""
    with _private_schema(servers[1]) as schema:
        yield schema


@pytest.fixture
def namespace(servers: tuple[str, str]) -> Iterator[str]:
    """A Redis key namespace private to this test; its keys are deleted afterwards."""
    with _private_namespace(servers[0]) as ns:
        yield ns


@pytest.fixture
def settings(servers: tuple[str, str], db_schema: str, namespace: str, tmp_path: Path) -> Settings:
    return _test_settings(*servers, db_schema, namespace, tmp_path)


@pytest.fixture(scope="session")
def tcp_servers() -> Iterator[tuple[str, str]]:
    """(redis_url, database_url) of real servers reached over TCP on 127.0.0.1.

    The configured ones when they are TCP already; otherwise (the embedded
    default's owner-only Unix sockets) servers of this session's own, for
    what a socket cannot give: another UID, ``sslmode``.
    """
    redis_url = os.environ.get("MUTT_REDIS_URL", "")
    database_url = os.environ.get("MUTT_DATABASE_URL", "")
    with contextlib.ExitStack() as stack:
        if not (redis_url and is_tcp_redis(redis_url)):
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="mutt-rt-")))
            redis_url = f"redis://127.0.0.1:{stack.enter_context(redis_server(workdir))}/0"
        if not (database_url and is_tcp_database(database_url)):
            port = stack.enter_context(postgres_server())
            database_url = f"postgresql://postgres@127.0.0.1:{port}/postgres"
        yield redis_url, database_url


@pytest.fixture(scope="session")
def tcp_db_schema(tcp_servers: tuple[str, str]) -> Iterator[str]:
    """A migrated schema private to this test session, on the TCP PostgreSQL."""
    with _private_schema(tcp_servers[1]) as schema:
        yield schema


@pytest.fixture
def tcp_settings(
    tcp_servers: tuple[str, str], tcp_db_schema: str, tmp_path: Path
) -> Iterator[Settings]:
    """``settings``, on the TCP servers (a private namespace there, cleaned afterwards)."""
    with _private_namespace(tcp_servers[0]) as ns:
        yield _test_settings(*tcp_servers, tcp_db_schema, ns, tmp_path)


@pytest.fixture
def ctx(settings: Settings) -> Context:
    return Context(settings)


@pytest.fixture
def r(settings: Settings) -> Iterator[redis.Redis]:
    assert settings.redis_url
    client = redis.Redis.from_url(settings.redis_url)
    yield client
    client.close()


@pytest.fixture
def pg(settings: Settings) -> Iterator[pg8000.native.Connection]:
    assert settings.database_url
    conn = connect_pg(settings.database_url, settings.database_schema)
    yield conn
    conn.close()


@pytest.fixture
def keys(settings: Settings) -> Keys:
    return Keys(settings.namespace)


@pytest.fixture
def demo_rules(settings: Settings, pg: pg8000.native.Connection, r: redis.Redis) -> Iterator[None]:
    """The sample rules of ``mutt run --demo`` in this session's schema, removed afterwards."""
    from importlib import resources

    import yaml

    from functions.alert.catalog import insert_catalog, parse_catalog

    raw = resources.files("mutt.demo_data").joinpath("rules.yaml").read_text()
    insert_catalog(pg, r, settings.namespace, parse_catalog(yaml.safe_load(raw)))
    yield
    pg.run("DELETE FROM alert_rules; DELETE FROM development_hosts; DELETE FROM device_teams")


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[cluster.Cluster]:
    """A real Redis Cluster (three primaries, a replica each) for the whole session.

    Skipped only where Debian's redis-server package is missing; ``.ci/run``
    installs it, so there these tests always run.
    """
    if not cluster.available():
        pytest.skip(f"needs {cluster.SERVER} and {cluster.CLI} (the redis-server package)")
    started = cluster.Cluster(Path(tempfile.mkdtemp(prefix="mutt-c-"))).start()
    yield started
    started.stop()


@pytest.fixture
def cluster_settings(settings: Settings, redis_cluster: cluster.Cluster) -> Settings:
    """This test's settings, on the cluster with six stream partitions."""
    return settings.model_copy(update={"redis_url": redis_cluster.url, "partitions": 6})


@pytest.fixture
def cr(redis_cluster: cluster.Cluster) -> Iterator[redis.Redis]:
    """A cluster client, as every MUTT process opens it."""
    from shared.redis_client import connect_redis

    client = connect_redis(redis_cluster.url)
    yield client
    client.close()


@pytest.fixture(scope="session")
def vendor_server() -> Iterator[VendorServer]:
    server = VendorServer().start()
    yield server
    server.stop()


@pytest.fixture
def vendor(vendor_server: VendorServer) -> Iterator[VendorServer]:
    vendor_server.reset()
    yield vendor_server
    vendor_server.reset()
