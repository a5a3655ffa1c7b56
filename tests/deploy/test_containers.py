"""Containerfile, ignore files and local/docker-compose.yml: parsed and cross-checked."""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from functions.forward.config import load_config
from mutt.stages import HTTP_FUNCTIONS, WORKER_STAGES
from tests.support import kube

ROOT = kube.ROOT
BASE_IMAGE = "registry.access.redhat.com/ubi9/python-311"
COMPOSE = ROOT / "local" / "docker-compose.yml"
MUTT_IMAGE = "localhost/mutt:dev"
CONDITIONS = {"service_started", "service_healthy", "service_completed_successfully"}


# ------------------------------------------------------------------ Containerfile


def containerfile() -> list[tuple[str, str]]:
    """``(INSTRUCTION, arguments)`` with continuations joined and comments dropped."""
    lines: list[tuple[str, str]] = []
    pending = ""
    for raw in (ROOT / "Containerfile").read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        full = (pending + line).strip()
        pending = ""
        instruction, _, rest = full.partition(" ")
        lines.append((instruction.upper(), rest.strip()))
    assert not pending, "Containerfile ends inside a continued line"
    return lines


def stages() -> list[list[tuple[str, str]]]:
    out: list[list[tuple[str, str]]] = []
    for instruction, rest in containerfile():
        if instruction == "FROM":
            out.append([])
        assert out, "instructions before the first FROM"
        out[-1].append((instruction, rest))
    return out


def image_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for instruction, rest in stages()[-1]:
        if instruction == "ENV":
            for item in shlex.split(rest):
                key, sep, value = item.partition("=")
                assert sep, f"ENV {item}: use the KEY=VALUE form"
                env[key] = value
    return env


def test_containerfile_is_multi_stage_on_ubi9_python311() -> None:
    all_stages = stages()
    assert len(all_stages) >= 2
    for stage in all_stages:
        image = stage[0][1].split()[0]
        assert image == BASE_IMAGE, image
    builder = all_stages[0][0][1].split()
    assert [w.upper() for w in builder[1:2]] == ["AS"], "name the builder stage"
    runtime = all_stages[-1]
    copies = [rest for instruction, rest in runtime if instruction == "COPY"]
    assert any(c.startswith(f"--from={builder[2]} /opt/mutt ") for c in copies)
    build_runs = " ".join(rest for instruction, rest in all_stages[0] if instruction == "RUN")
    assert "-m venv /opt/mutt" in build_runs and "/opt/mutt/bin/pip install" in build_runs


def test_runtime_runs_as_non_root_with_group_zero_writable_paths() -> None:
    runtime = stages()[-1]
    users = [rest for instruction, rest in runtime if instruction == "USER"]
    assert users, "the runtime stage must set USER"
    assert users[-1].isdigit() and int(users[-1]) != 0, "a numeric non-root USER"
    last_user = max(i for i, (ins, _) in enumerate(runtime) if ins == "USER")
    assert all(ins != "RUN" for ins, _ in runtime[last_user:]), "RUN after the final USER"
    runs = " ".join(rest for instruction, rest in runtime if instruction == "RUN")
    chgrp = re.search(r"chgrp -R 0 ([^&]+)", runs)
    chmod = re.search(r"chmod -R g=u ([^&]+)", runs)
    assert chgrp and chmod, "OpenShift's random UID needs group-0 writable paths"
    writable = set(chgrp.group(1).split()) & set(chmod.group(1).split())
    workdir = [rest for instruction, rest in runtime if instruction == "WORKDIR"][-1]
    assert {"/opt/mutt", image_env()["MUTT_DATA_DIR"], workdir} <= writable


def test_exposes_8080_and_serves_function_target() -> None:
    runtime = stages()[-1]
    assert [rest for instruction, rest in runtime if instruction == "EXPOSE"] == ["8080"]
    env = image_env()
    kube.check_env({k: v for k, v in env.items() if k.startswith("MUTT_")}, "Containerfile")
    assert env["PORT"] == "8080"
    assert env["FUNCTION_TARGET"] in HTTP_FUNCTIONS
    assert env["PATH"].startswith("/opt/mutt/bin:")
    (cmd,) = [json.loads(rest) for instruction, rest in runtime if instruction == "CMD"]
    assert cmd[:2] == ["/bin/sh", "-c"]
    for function in HTTP_FUNCTIONS:
        script = cmd[2].replace("${FUNCTION_TARGET}", function).replace("${PORT}", env["PORT"])
        (argv,) = kube.mutt_commands_in_script(script)
        args = kube.parse_mutt(argv)
        assert (args.command, args.function, args.host, args.port) == (
            "serve",
            function,
            "0.0.0.0",
            8080,
        )


def ignore_patterns(name: str) -> list[str]:
    return [
        line.strip()
        for line in (ROOT / name).read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]


def ignored(path: str, patterns: list[str]) -> bool:
    first = path.strip("/").split("/")[0]
    return any(fnmatch.fnmatch(path.strip("/"), p) or fnmatch.fnmatch(first, p) for p in patterns)


def test_ignore_files_keep_the_context_small_and_the_sources_in() -> None:
    patterns = ignore_patterns(".containerignore")
    assert patterns == ignore_patterns(".dockerignore"), "keep both ignore files identical"
    for unwanted in (".git", ".venv", ".mutt", "tests", ".pytest_cache"):
        assert ignored(unwanted, patterns), unwanted
    for instruction, rest in containerfile():
        if instruction == "COPY" and not rest.startswith("--from"):
            *sources, _dest = shlex.split(rest)
            for source in sources:
                assert (ROOT / source).exists(), f"COPY {source}: no such path"
                assert not ignored(source, patterns), f"COPY {source}: excluded by the ignore file"


def test_image_contains_every_package_setuptools_installs() -> None:
    copied = {
        source.strip("/")
        for instruction, rest in stages()[0]
        if instruction == "COPY"
        for source in shlex.split(rest)[:-1]
    }
    assert {"pyproject.toml", "README.md", "shared", "functions", "mutt"} <= copied


# ------------------------------------------------------------------ docker-compose


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return kube.load_yaml(COMPOSE)  # type: ignore[no-any-return]


def uses_mutt_image(service: dict[str, Any]) -> bool:
    return service.get("image") == MUTT_IMAGE


def env_file(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            key, sep, value = line.partition("=")
            assert sep, f"{path}: {line!r} is not KEY=VALUE"
            values[key] = value
    return values


def service_env(service: dict[str, Any]) -> dict[str, str]:
    env: dict[str, str] = {}
    for name in service.get("env_file", []):
        env.update(env_file(COMPOSE.parent / name))
    environment = service.get("environment", {})
    assert isinstance(environment, dict), "use the mapping form of environment"
    env.update({k: str(v) for k, v in environment.items()})
    return env


def mutt_argvs(service: dict[str, Any]) -> list[list[str]]:
    """The mutt command lines a service runs (directly or inside ``sh -c``)."""
    command = service.get("command")
    assert isinstance(command, list), "use the list form of command"
    if command[0] == "mutt":
        return [command]
    if command[:2] == ["/bin/sh", "-c"]:
        found = kube.mutt_commands_in_script(command[2].replace("$$", "$"))
        assert found, f"no mutt command in {command[2]!r}"
        return found
    return []


def published(service: dict[str, Any]) -> set[int]:
    """Container ports a service publishes."""
    ports = set()
    for spec in service.get("ports", []):
        assert isinstance(spec, str), "use the short 'host:container' form"
        ports.add(int(spec.split(":")[-1].split("/")[0]))
    return ports


def test_compose_services_and_servers(compose: dict[str, Any]) -> None:
    services = compose["services"]
    redis = services["redis"]
    assert redis["command"][:1] == ["redis-server"]
    args = redis["command"]
    assert args[args.index("--appendonly") + 1] == "yes", "AOF on"
    assert services["postgres"]["image"].rsplit(":", 1)[1].split(".")[0] == "15"
    vault = services["vault"]
    assert vault["image"].split(":")[0].endswith("hashicorp/vault")
    assert vault["command"][:2] == ["server", "-dev"]
    build = services["ingest"]["build"]
    assert (COMPOSE.parent / build["context"] / build["dockerfile"]).resolve() == (
        ROOT / "Containerfile"
    )


def test_every_mutt_command_is_real_and_each_stage_runs(compose: dict[str, Any]) -> None:
    seen: dict[str, list[str]] = {}
    for name, service in compose["services"].items():
        if not uses_mutt_image(service):
            continue
        argvs = mutt_argvs(service)
        if not argvs:
            assert name == "webhook-sink", f"{name}: runs no mutt command"
            continue
        for argv in argvs:
            args = kube.parse_mutt(argv)
            seen.setdefault(name, []).append(
                " ".join(argv[1:3]) if args.command != "serve" else f"serve {args.function}"
            )
    assert seen["migrate"] == ["db migrate"]
    assert seen["ingest"] == ["serve ingest"]
    assert seen["admin"] == ["serve admin"]
    assert seen["janitor"] == ["janitor run"]
    for stage in WORKER_STAGES:
        assert seen[stage] == [f"worker {stage}"], f"no stream worker for {stage}"


def test_every_env_name_is_a_setting(compose: dict[str, Any]) -> None:
    assert env_file(COMPOSE.parent / "mutt.env"), "local/mutt.env is empty"
    for name, service in compose["services"].items():
        if uses_mutt_image(service):
            kube.check_env(service_env(service), f"compose service {name}")
            if name != "webhook-sink":
                env = service_env(service)
                assert env["MUTT_REDIS_URL"].startswith("redis://redis:")
                assert "@postgres:" in env["MUTT_DATABASE_URL"]


def test_forward_override_gives_forward_and_janitor_a_valid_config(
    compose: dict[str, Any],
) -> None:
    """local/forward.override.yml: the file it mounts loads, and names only what exists."""
    override = kube.load_yaml(COMPOSE.parent / "forward.override.yml")["services"]
    assert set(override) == {"forward", "janitor"}  # the readers of MUTT_FORWARD_CONFIG
    for name, extra in override.items():
        merged = {**compose["services"][name]}
        merged["environment"] = {**merged.get("environment", {}), **extra["environment"]}
        env = service_env(merged)
        kube.check_env(env, f"{name} with forward.override.yml")
        mounts = dict(reversed(v.removesuffix(":ro").split(":")) for v in extra["volumes"])
        source = COMPOSE.parent / mounts[env["MUTT_FORWARD_CONFIG"]]
        config = load_config(source)
        for sink in config.sinks:
            url = getattr(sink, "url", None)
            if url is not None:
                host = urlsplit(url)
                assert host.hostname in compose["services"], url
                assert listening_port(compose["services"][host.hostname]) == host.port, url
            for field in type(sink).model_fields:
                secret = getattr(sink, field) if field.endswith("_secret") else None
                if secret:
                    assert f"MUTT_SECRET_{secret.upper()}" in env, f"{name}: {secret}"


def test_vault_override_matches_the_approle_docs_local_creates(compose: dict[str, Any]) -> None:
    """local/vault.override.yml logs in with exactly the role the docs set up."""
    override = kube.load_yaml(COMPOSE.parent / "vault.override.yml")["services"]
    doc = (ROOT / "docs" / "local.md").read_text()
    vault = compose["services"]["vault"]
    listen = vault["environment"]["VAULT_DEV_LISTEN_ADDRESS"].rsplit(":", 1)[1]
    for name, extra in override.items():
        env = {k: str(v) for k, v in extra["environment"].items()}
        kube.check_env(env, f"{name} with vault.override.yml")
        addr = urlsplit(env["MUTT_VAULT_ADDR"])
        assert (addr.hostname, str(addr.port)) == ("vault", listen), name
        mounts = dict(reversed(v.removesuffix(":ro").split(":")) for v in extra["volumes"])
        secret_id = (COMPOSE.parent / mounts[env["MUTT_VAULT_SECRET_ID_FILE"]]).read_text()
        assert f"role-id role_id={env['MUTT_VAULT_ROLE_ID']}" in doc
        assert f"custom-secret-id secret_id={secret_id.strip()}" in doc
    assert "MUTT_VAULT_ADDR" not in env_file(COMPOSE.parent / "mutt.env")  # as local.md says


def listening_port(service: dict[str, Any]) -> int | None:
    for argv in mutt_argvs(service):
        args = kube.parse_mutt(argv)
        if args.command == "serve":
            return int(args.port)
    command = service.get("command", [])
    if command[:2] == ["/opt/mutt/bin/python", "-c"]:
        compile(command[2], "webhook-sink", "exec")
        match = re.search(r'\("0\.0\.0\.0", (\d+)\)', command[2])
        assert match, "the sink must listen on 0.0.0.0"
        return int(match.group(1))
    return None


def test_published_ports_and_healthchecks_match_the_listening_port(
    compose: dict[str, Any],
) -> None:
    for name, service in compose["services"].items():
        if not uses_mutt_image(service):
            continue
        port = listening_port(service)
        if port is None:
            assert not service.get("ports"), f"{name} listens on nothing"
            continue
        assert published(service) == {port}, f"{name}: publishes {published(service)}"
        test = service["healthcheck"]["test"]
        urls = [u for part in test for u in re.findall(r"http://[^'\" ]+", part)]
        assert urls, f"{name}: healthcheck asks no URL"
        for url in urls:
            assert urlsplit(url).port == port, f"{name}: healthcheck on the wrong port"
        if name == "ingest":
            assert urlsplit(urls[0]).path == "/healthz"
            assert service["environment"]["THREADS"].isdigit()
    assert published(compose["services"]["ingest"]) == {8080}


def test_depends_on_targets_exist_with_valid_conditions(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name, service in services.items():
        for target, spec in service.get("depends_on", {}).items():
            assert target in services, f"{name} depends on unknown {target}"
            condition = spec["condition"]
            assert condition in CONDITIONS, f"{name} -> {target}: {condition}"
            if condition == "service_healthy":
                assert "healthcheck" in services[target], f"{target} has no healthcheck"
            if condition == "service_completed_successfully":
                assert services[target].get("restart") == "no", f"{target} is not one-shot"

    def visit(name: str, path: tuple[str, ...]) -> None:
        assert name not in path, f"depends_on cycle: {' -> '.join((*path, name))}"
        for target in services[name].get("depends_on", {}):
            visit(target, (*path, name))

    for name in services:
        visit(name, ())


def test_every_mutt_process_waits_for_servers_and_migrations(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        argvs = mutt_argvs(service) if uses_mutt_image(service) else []
        if not argvs:
            continue
        deps = {k: v["condition"] for k, v in service.get("depends_on", {}).items()}
        assert deps.get("postgres") == "service_healthy", name
        assert deps.get("redis") == "service_healthy", name
        if name != "migrate":
            assert deps.get("migrate") == "service_completed_successfully", name


def test_servers_have_healthchecks(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert "redis-cli" in services["redis"]["healthcheck"]["test"]
    assert "pg_isready" in services["postgres"]["healthcheck"]["test"]
    for name in ("vault", "ingest", "webhook-sink"):
        assert services[name]["healthcheck"]["test"][0] == "CMD", name
