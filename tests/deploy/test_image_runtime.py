"""The image's processes run as a random non-root UID in group 0 on a read-only root.

OpenShift runs a container as an arbitrary UID whose only group is 0, and a
hardened pod makes the root filesystem read-only. No container engine exists
here, so each process runs in a private mount namespace (``unshare -m``) set
up the way the image is, from the ``Containerfile`` itself:

- ``/`` (and every other mount) is read-only; only the directories the
  image makes group-0 writable (``chgrp -R 0`` + ``chmod -R g=u``: the data
  directory, which is also the ``WORKDIR``) are writable, as the image does
  it: owned by root, group 0, mode g=u. ``/dev/shm`` stays a writable tmpfs,
  as in every container.
- the venv is at ``/opt/mutt`` (this checkout's, mounted read-only), the
  environment is the image's ``ENV`` (``PATH``, ``PYTHONDONTWRITEBYTECODE``,
  ``MUTT_DATA_DIR``, ...), ``HOME`` the base image's, and the command is the
  image's ``CMD`` script, run by ``/bin/sh`` under ``setpriv --reuid=UID
  --regid=0 --clear-groups``.

Then the whole pipeline runs on it (migration, ingest over HTTP, the three
stream workers, the janitor) and an event travels to the file sink. Any
write outside the writable paths would fail the process with EROFS, so a
green run shows that every path MUTT writes is writable, and nothing else
needs to be. Redis and PostgreSQL are reached over TCP (``tcp_settings``):
the embedded servers' Unix sockets admit their owner only. The listening
address of the ``CMD`` (``0.0.0.0``) becomes 127.0.0.1: the test machine
must not listen on every interface, and the address decides nothing about
files.
"""

from __future__ import annotations

import json
import os
import random
import re
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import pytest
import requests

from shared.config import Settings
from tests.deploy import test_containers
from tests.support.processes import free_port, settings_env, stop, wait_http
from tests.support.servers import is_tcp_database, is_tcp_redis

pytestmark = pytest.mark.slow

BASE_HOME = "/opt/app-root/src"  # HOME of the UBI python-311 base image (its ENV)
BASE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
VENV = Path(sys.prefix)
KEY = "image-runtime-key-0123456789abcdef"
CONNECTION = (
    "MUTT_REDIS_URL",
    "MUTT_DATABASE_URL",
    "MUTT_DATABASE_SCHEMA",
    "MUTT_NAMESPACE",
)


def image() -> tuple[dict[str, str], list[str], str, list[str]]:
    """ENV, CMD, WORKDIR and the group-0 writable paths of the runtime stage."""
    runtime = test_containers.stages()[-1]
    env = test_containers.image_env()
    env["PATH"] = env["PATH"].replace("$PATH", BASE_PATH)
    (cmd,) = [json.loads(rest) for ins, rest in runtime if ins == "CMD"]
    workdir = [rest for ins, rest in runtime if ins == "WORKDIR"][-1]
    runs = " ".join(rest for ins, rest in runtime if ins == "RUN")
    chgrp = re.search(r"chgrp -R 0 ([^&]+)", runs)
    chmod = re.search(r"chmod -R g=u ([^&]+)", runs)
    assert chgrp and chmod
    writable = sorted(set(chgrp.group(1).split()) & set(chmod.group(1).split()))
    return env, cmd, workdir, writable


def _blocked_ancestors(path: Path) -> list[Path]:
    """Directories on the way to ``path`` that other users cannot enter (e.g. /root)."""
    return [p for p in reversed(path.resolve().parents) if not os.stat(p).st_mode & 0o001]


def namespace_script(data_dir: Path, argv: list[str], uid: int) -> str:
    """Shell run by root in a new mount namespace: build the image's view, drop to UID."""
    _, _, workdir, writable = image()
    lines = ["set -eu"]
    # The interpreter of this venv may live where other users cannot go (a root-only
    # pyenv): in the image it is under /opt/mutt, readable by all. Re-expose it.
    for blocked in _blocked_ancestors(Path(os.path.realpath(sys.executable))):
        inner = Path(os.path.realpath(sys.executable)).relative_to(blocked).parts[0]
        lines += [
            "keep=$(mktemp -d /dev/shm/mutt-keep-XXXXXX)",
            f'mount --bind {shlex.quote(str(blocked / inner))} "$keep"',
            f"mount -t tmpfs -o mode=0755 tmpfs {shlex.quote(str(blocked))}",
            f"mkdir -p {shlex.quote(str(blocked / inner))}",
            f'mount --bind "$keep" {shlex.quote(str(blocked / inner))}',
            'umount "$keep"',
            'rmdir "$keep"',
        ]
    # The image's paths: the venv at /opt/mutt, the writable ones as the image made them.
    lines += ["mount -t tmpfs -o mode=0755 tmpfs /opt", "mkdir /opt/mutt"]
    lines.append(f"mount --bind -o ro {shlex.quote(str(VENV))} /opt/mutt")
    for path in writable:
        if path == "/opt/mutt":
            continue  # the venv: writable in the image, but MUTT has no reason to write there
        parent = str(Path(path).parent)
        lines += [f"mount -t tmpfs -o mode=0755 tmpfs {parent}", f"mkdir -p {path}"]
        lines.append(f"mount --bind {shlex.quote(str(data_dir))} {path}")
    # Read-only everywhere else (the tmpfs mounts too, now that they are set up).
    lines += [
        "mount -o remount,bind,ro /",
        "mount -o remount,bind,ro /opt",
        *(f"mount -o remount,bind,ro {Path(p).parent}" for p in writable if p != "/opt/mutt"),
        *(f"mount -o remount,bind,ro {b}" for b in _blocked_ancestors(Path(sys.executable))),
        f"cd {workdir}",
        f"exec setpriv --reuid={uid} --regid=0 --clear-groups -- " + shlex.join(argv),
    ]
    return "\n".join(lines)


def can_emulate() -> str | None:
    """Why the emulation cannot run here, or None."""
    if os.geteuid() != 0:
        return "needs root to switch to a random UID and set up a mount namespace"
    for tool in ("unshare", "setpriv", "mount"):
        if shutil.which(tool) is None:
            return f"the {tool} command (util-linux) is missing"
    probe = subprocess.run(
        ["unshare", "-m", "--propagation", "private", "mount", "-o", "remount,bind,ro", "/"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if probe.returncode != 0:
        return f"cannot make a private read-only mount namespace: {probe.stderr.strip()}"
    return None


class ImageProcesses:
    """Processes of the image, each as UID in group 0 on a read-only root."""

    def __init__(self, settings: Settings, data_dir: Path, logs: Path) -> None:
        self.uid = random.randint(1_000_000_000, 1_999_999_999)  # like OpenShift's ranges
        self.data_dir = data_dir
        self.logs = logs
        image_env, _, _, _ = image()
        deployment = {k: v for k, v in settings_env(settings).items() if k in CONNECTION}
        self.env = {
            **image_env,
            **deployment,
            "HOME": BASE_HOME,
            "MUTT_LOG_FORMAT": "text",
            "MUTT_SECRET_INGEST_API_KEYS": KEY,
            "MUTT_WORKER_BLOCK_MS": "100",
        }
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def argv(self, command: list[str], **env: str) -> list[str]:
        values = {**self.env, **env}
        inner = ["env", "-i", *(f"{k}={v}" for k, v in values.items()), *command]
        script = namespace_script(self.data_dir, inner, self.uid)
        return ["unshare", "-m", "--propagation", "private", "sh", "-c", script]

    def start(self, name: str, command: list[str], **env: str) -> subprocess.Popen[bytes]:
        out = (self.logs / f"{name}.log").open("wb")
        proc = subprocess.Popen(self.argv(command, **env), stdout=out, stderr=out)
        self.procs[name] = proc
        return proc

    def run(self, name: str, command: list[str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.argv(command), capture_output=True, text=True, timeout=300, check=False
        )

    def log(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text(errors="replace")

    def stop_all(self) -> dict[str, int]:
        return {name: stop(proc) for name, proc in self.procs.items()}


@pytest.fixture
def settings(tcp_settings: Settings) -> Settings:
    """Over TCP: the embedded servers' Unix sockets admit only their owner, not another UID.

    ``demo_rules``, ``pg`` and ``r`` follow it, so the rules are where the image reads.
    """
    return tcp_settings


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    """What the image's RUN makes of /var/lib/mutt: owned by root, group 0, g=u."""
    reason = can_emulate()
    if reason:
        pytest.skip(reason)
    base = Path("/dev/shm") if os.access("/dev/shm", os.W_OK) else tmp_path
    path = base / f"mutt-image-data-{os.getpid()}-{random.randint(0, 1 << 30)}"
    path.mkdir(mode=0o755)
    os.chown(path, 0, 0)
    path.chmod(0o775)  # chmod -R g=u on a root-owned 0755 directory
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_image_declares_the_paths_this_test_emulates() -> None:
    env, cmd, workdir, writable = image()
    assert workdir in writable and env["MUTT_DATA_DIR"] in writable
    assert env["PYTHONDONTWRITEBYTECODE"] == "1", "bytecode would be written under /opt/mutt"
    assert cmd[:2] == ["/bin/sh", "-c"] and "mutt serve" in cmd[2]


def test_the_pipeline_runs_as_a_random_uid_in_group_zero_on_a_read_only_root(
    settings: Settings, demo_rules: None, data_dir: Path, tmp_path: Path
) -> None:
    assert settings.redis_url and is_tcp_redis(settings.redis_url)
    assert settings.database_url and is_tcp_database(settings.database_url)
    logs = tmp_path / "logs"
    logs.mkdir()
    _, cmd, _, _ = image()
    procs = ImageProcesses(settings, data_dir, logs)
    # The emulation is real: that user is UID in group 0 alone, and can write the
    # data directory but not /tmp, HOME or the venv.
    probe = procs.run(
        "probe",
        [
            "/bin/sh",
            "-c",
            "id -u; id -G; touch /var/lib/mutt/probe && rm /var/lib/mutt/probe && echo data-ok;"
            " for p in /tmp /opt/mutt /opt/app-root /etc; do touch $p/probe 2>/dev/null"
            " && echo wrote $p; done; true",
        ],
    )
    assert probe.stdout.split() == [str(procs.uid), "0", "data-ok"], probe
    try:
        migrate = procs.run("migrate", ["mutt", "db", "migrate"])
        assert migrate.returncode == 0, migrate.stderr
        port = free_port()
        script = cmd[2].replace("--host 0.0.0.0", "--host 127.0.0.1")
        assert script != cmd[2], "the CMD no longer names --host 0.0.0.0: update this test"
        ingest = procs.start("ingest", [*cmd[:2], script], FUNCTION_TARGET="ingest", PORT=str(port))
        for stage in ("alert", "audit", "forward"):
            procs.start(stage, ["mutt", "worker", stage])
        url = f"http://127.0.0.1:{port}"
        wait_http(f"{url}/healthz", ingest, timeout=60)
        events = json.loads(
            resources.files("mutt.demo_data").joinpath("syslog_events.json").read_text()
        )
        resp = requests.post(
            f"{url}/api/v2/ingest", json=events[:5], headers={"X-API-KEY": KEY}, timeout=30
        )
        assert resp.status_code == 202, resp.text
        sink = data_dir / "alerts.jsonl"  # /var/lib/mutt/alerts.jsonl in the image
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and not (sink.exists() and sink.read_text().strip()):
            for name, proc in procs.procs.items():
                assert proc.poll() is None, f"{name} exited:\n{procs.log(name)}"
            time.sleep(0.2)
        assert sink.exists() and sink.read_text().strip(), procs.log("forward")
        janitor = procs.run("janitor", ["mutt", "janitor", "run", "--task", "all"])
        assert janitor.returncode == 0, janitor.stderr
        for name, proc in procs.procs.items():
            assert proc.poll() is None, f"{name} exited:\n{procs.log(name)}"
    finally:
        codes = procs.stop_all()
    everything = "\n".join(procs.log(n) for n in procs.procs) + migrate.stderr + janitor.stderr
    for complaint in ("Read-only file system", "Permission denied", "No usable temporary"):
        assert complaint not in everything, everything
    assert set(codes.values()) <= {0}, (codes, everything)
    written = list(data_dir.rglob("*"))
    assert written, "MUTT wrote nothing where the image lets it write"
    for path in written:
        st = path.stat()
        assert (st.st_uid, st.st_gid) == (procs.uid, 0), path
