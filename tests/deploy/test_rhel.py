"""deploy/rhel/: podman quadlet units, parsed strictly and cross-checked."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from mutt.stages import HTTP_FUNCTIONS, WORKER_STAGES
from tests.support import kube

RHEL = kube.ROOT / "deploy" / "rhel"
DOC = kube.ROOT / "docs" / "deploy-rhel.md"
MUTT_IMAGE = "localhost/mutt:latest"
ENV_FILE = "/etc/mutt/mutt.env"

# The keys each section may use (podman-systemd.unit(5), systemd.unit(5),
# systemd.service(5), systemd.timer(5)): a misspelt key fails here instead of
# being ignored with a warning by the quadlet generator.
KEYS = {
    "Unit": {"Description", "Requires", "Wants", "After", "Before", "Documentation"},
    "Container": {
        "ContainerName",
        "Image",
        "Exec",
        "EnvironmentFile",
        "Environment",
        "Network",
        "PublishPort",
        "Volume",
        "HealthCmd",
        "HealthInterval",
        "HealthRetries",
        "HealthTimeout",
        "HealthStartPeriod",
        "Notify",
        "Secret",
        "Label",
        "AutoUpdate",
    },
    "Service": {"Restart", "RestartSec", "TimeoutStopSec", "TimeoutStartSec", "Type"}
    | {"RemainAfterExit"},
    "Install": {"WantedBy", "RequiredBy"},
    "Network": {"NetworkName", "Label", "Subnet", "Gateway", "Driver"},
    "Volume": {"VolumeName", "Label"},
    "Timer": {"OnCalendar", "RandomizedDelaySec", "Persistent", "Unit", "OnBootSec"},
}
SECTIONS = {
    ".container": {"Unit", "Container", "Service", "Install"},
    ".network": {"Unit", "Network"},
    ".volume": {"Unit", "Volume"},
    ".timer": {"Unit", "Timer", "Install"},
}

Unit = dict[str, dict[str, list[str]]]


def parse_unit(path: Path) -> Unit:
    """Sections of a systemd-style unit; a key may repeat."""
    unit: Unit = {}
    section = None
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        assert not line.endswith("\\"), f"{path.name}:{number}: keep each key on one line"
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            assert section in SECTIONS[path.suffix], f"{path.name}: section [{section}]"
            unit.setdefault(section, {})
            continue
        assert section, f"{path.name}:{number}: a key outside any section"
        key, sep, value = line.partition("=")
        assert sep, f"{path.name}:{number}: not KEY=VALUE"
        assert key in KEYS[section], f"{path.name}:{number}: unknown key {key} in [{section}]"
        unit[section].setdefault(key, []).append(value.strip())
    return unit


UNIT_FILES = sorted(p for p in RHEL.iterdir() if p.suffix in SECTIONS)


@pytest.fixture(scope="module")
def units() -> dict[str, Unit]:
    return {p.name: parse_unit(p) for p in UNIT_FILES}


def service_name(filename: str) -> str:
    """The systemd unit quadlet generates (or the unit itself for .timer)."""
    stem, suffix = filename.rsplit(".", 1)
    return {
        "container": f"{stem}.service",
        "network": f"{stem}-network.service",
        "volume": f"{stem}-volume.service",
    }.get(suffix, filename)


def mutt_containers(units: dict[str, Unit]) -> dict[str, Unit]:
    return {
        n: u
        for n, u in units.items()
        if n.endswith(".container") and u["Container"]["Image"] == [MUTT_IMAGE]
    }


def environment(unit: Unit) -> dict[str, str]:
    env: dict[str, str] = {}
    for value in unit["Container"].get("Environment", []):
        for item in shlex.split(value):
            key, sep, val = item.partition("=")
            assert sep, f"Environment={value}"
            env[key] = val
    return env


def test_every_unit_parses_strictly(units: dict[str, Unit]) -> None:
    assert {p.suffix for p in UNIT_FILES} == set(SECTIONS)
    for name, unit in units.items():
        if name.endswith(".container"):
            container = unit["Container"]
            assert len(container.get("Image", [])) == 1, name
            assert len(container.get("Exec", [])) <= 1, name


def test_references_point_at_units_that_exist(units: dict[str, Unit]) -> None:
    generated = {service_name(n) for n in units}
    for name, unit in units.items():
        container = unit.get("Container", {})
        for network in container.get("Network", []):
            assert network in units, f"{name}: Network={network}"
        for volume in container.get("Volume", []):
            source = volume.split(":")[0]
            if source.endswith(".volume"):
                assert source in units, f"{name}: Volume={volume}"
        for key in ("Requires", "Wants", "After"):
            for value in unit.get("Unit", {}).get(key, []):
                for dep in value.split():
                    assert dep in generated, f"{name}: {key}={dep} is not defined here"
        for target in unit.get("Timer", {}).get("Unit", []):
            assert target in generated, f"{name}: Unit={target}"


def test_every_mutt_command_is_real_and_each_stage_runs(units: dict[str, Unit]) -> None:
    commands: dict[str, str] = {}
    for name, unit in mutt_containers(units).items():
        argv = shlex.split(unit["Container"]["Exec"][0])
        args = kube.parse_mutt(argv)
        commands[name] = " ".join(argv[1:3])
        assert unit["Container"]["EnvironmentFile"] == [ENV_FILE], name
        kube.check_env(environment(unit), name)
        assert unit["Container"]["Network"] == ["mutt.network"], name
        if args.command == "serve":
            published = {int(p.split(":")[-1]) for p in unit["Container"]["PublishPort"]}
            assert published == {args.port}, f"{name}: publishes {published}"
            health = unit["Container"]["HealthCmd"][0]
            assert f"http://127.0.0.1:{args.port}/healthz" in health, name
            assert environment(unit)["THREADS"].isdigit()
    assert commands.pop("mutt-migrate.container") == "db migrate"
    assert commands.pop("mutt-janitor.container") == "janitor run"
    assert commands.pop("mutt-ingest.container") == "serve ingest"
    assert commands.pop("mutt-admin.container") == "serve admin"
    assert commands == {f"mutt-{s}.container": f"worker {s}" for s in WORKER_STAGES}
    assert "ingest" in HTTP_FUNCTIONS


def test_functions_start_after_the_migration(units: dict[str, Unit]) -> None:
    migrate = units["mutt-migrate.container"]
    assert migrate["Service"]["Type"] == ["oneshot"]
    assert migrate["Service"]["RemainAfterExit"] == ["yes"]
    for name in mutt_containers(units):
        if name == "mutt-migrate.container":
            continue
        unit = units[name]["Unit"]
        assert "mutt-migrate.service" in " ".join(unit["Requires"]).split(), name
        assert "mutt-migrate.service" in " ".join(unit["After"]).split(), name


def test_janitor_is_a_timer_driven_oneshot(units: dict[str, Unit]) -> None:
    janitor = units["mutt-janitor.container"]
    assert janitor["Service"]["Type"] == ["oneshot"]
    assert "Install" not in janitor, "the timer starts it, not the boot"
    timer = units["mutt-janitor.timer"]["Timer"]
    assert timer["Unit"] == ["mutt-janitor.service"]
    assert re.fullmatch(r"\*:0/\d+", timer["OnCalendar"][0])


def test_servers_have_healthchecks_and_redis_keeps_an_aof(units: dict[str, Unit]) -> None:
    redis = units["mutt-redis.container"]["Container"]
    assert "--appendonly yes" in redis["Exec"][0]
    assert redis["HealthCmd"] == ["redis-cli ping"]
    postgres = units["mutt-postgres.container"]["Container"]
    assert postgres["Image"][0].rsplit(":", 1)[1].split(".")[0] == "15"
    assert postgres["HealthCmd"][0].startswith("pg_isready")


def test_env_example_names_only_settings() -> None:
    values = {}
    for line in (RHEL / "mutt.env").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            key, _, value = line.partition("=")
            values[key] = value
    kube.check_env(values, "deploy/rhel/mutt.env")
    assert values["MUTT_REDIS_URL"].startswith("redis://mutt-redis:")


def test_the_doc_installs_every_unit() -> None:
    text = DOC.read_text()
    for path in [*UNIT_FILES, RHEL / "mutt.env"]:
        assert path.name in text or f"deploy/rhel/*{path.suffix}" in text, path.name
    assert "systemctl daemon-reload" in text
