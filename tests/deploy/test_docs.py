"""docs/deploy-*.md and docs/local.md: the commands name things that exist."""

from __future__ import annotations

import glob
import json
import re
import shlex
from pathlib import Path

import pytest

from tests.support import kube

DOCS = [kube.ROOT / "docs" / n for n in ("deploy-knative.md", "deploy-rhel.md", "local.md")]
COMPOSE_FILE = "local/docker-compose.yml"


def bash_commands(path: Path) -> list[list[str]]:
    """Each command of the ```bash blocks, continuations joined, split like a shell."""
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", path.read_text(), re.S):
        for line in block.replace("\\\n", " ").splitlines():
            if line.strip() and not line.lstrip().startswith("#"):
                commands.append(shlex.split(line, comments=True))
    return commands


def compose_services_named(args: list[str]) -> list[str]:
    """The services a ``docker compose exec|logs ...`` command names."""
    if not args or args[0] not in ("exec", "logs"):
        return []
    words = []
    skip = False
    for word in args[1:]:
        if skip:
            skip = False
        elif word in ("-e", "-u", "-w"):
            skip = True
        elif not word.startswith("-"):
            words.append(word)
    return words[:1] if args[0] == "exec" else words


@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.name)
def test_doc_commands_refer_to_real_things(path: Path) -> None:
    commands = bash_commands(path)
    assert commands, f"{path.name} has no bash blocks"
    services = set(kube.load_yaml(kube.ROOT / COMPOSE_FILE)["services"])
    created: set[str] = set()  # paths the doc itself makes (mkdir, > redirection): not committed
    for argv in commands:
        line = shlex.join(argv)
        for i, word in enumerate(argv):
            if i and (
                argv[i - 1] == ">" or (argv[i - 1] in ("mkdir", "-p") and argv[0] == "mkdir")
            ):
                created.add(word)
            if word in created or any(word.startswith(c + "/") for c in created):
                continue
            if word == "mutt" and (i == 0 or (i >= 2 and argv[i - 2] == "exec")):
                kube.parse_mutt(argv[i:])
            if word == "-k" and argv[i - 1] in ("apply", "delete"):
                assert (kube.ROOT / argv[i + 1] / "kustomization.yaml").is_file(), line
            if word == "-f" and (argv[1] == "build" or (argv[1] == "compose" and i == 2)):
                assert (kube.ROOT / argv[i + 1]).is_file(), line
            if word.startswith(("deploy/", "knative/", "local/")):
                assert glob.glob(str(kube.ROOT / word)), f"{line}: {word} matches nothing"
            if word == "-d" and argv[0] == "curl":
                json.loads(argv[i + 1])
        if argv[:2] == ["docker", "compose"]:
            assert argv[2:4] == ["-f", COMPOSE_FILE], line
            for service in compose_services_named(argv[4:]):
                assert service in services, f"{line}: no compose service {service}"


def test_knative_doc_explains_the_redis_stream_source() -> None:
    text = (kube.ROOT / "docs" / "deploy-knative.md").read_text()
    assert "RedisStreamSource" in text
    assert "at-most-once" in text
    assert "consumer group" in text


def test_knative_doc_deploys_every_kustomization() -> None:
    text = (kube.ROOT / "docs" / "deploy-knative.md").read_text()
    for directory in kube.KUSTOMIZATIONS.values():
        assert f"apply -k {directory.relative_to(kube.ROOT)}" in text
