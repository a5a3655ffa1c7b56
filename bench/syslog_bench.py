"""Syslog at line rate: ``mutt syslog`` next to rsyslogd on the same paced load.

Run: ``python -m bench.syslog_bench [--rates 1000,5000,10000,20000] [--seconds 4] [--quick]``.

Everything is real and runs at once on this machine: ``mutt serve ingest``
(``WORKERS=2``, every other setting at its default) publishing to the event
stream in a private Redis namespace, ``mutt syslog`` with its defaults
posting to it, and one ``rsyslogd`` (Debian's ``/usr/sbin/rsyslogd``, its
own config file in a scratch directory, ``-n -f conf -i pidfile``) with two
inputs: ``imudp`` → ``omfile`` (the baseline), and ``imudp`` → ``omfwd``
octet-counted TCP to ``mutt syslog`` (a relay; its input gets the same 8 MiB
receive buffer ``mutt syslog`` asks for, so the relay's own UDP input is not
what is measured; its drops are shown apart). For each rate, one Python
process (``bench/syslog_load.py``) sends that many RFC 3164 lines per second
for ``--seconds`` to each of three paths in turn:

* ``rsyslogd UDP -> omfile``: lines in rsyslogd's output file;
* ``mutt syslog UDP``: events in the stream;
* ``rsyslogd omfwd TCP -> mutt syslog``: events in the stream.

``missing +Ns`` is what had not arrived ``--settle`` seconds after the load
ended (the issue's measure); ``missing final`` is what never arrived, after
waiting until the count stopped moving, and ``catch-up s`` how long that took
after the load. ``kernel drops`` are the receiving socket's (``mutt syslog``'s
from its ``mutt_source_kernel_drops_total``, rsyslogd's from
``/proc/net/udp``), ``queue drops`` mutt syslog's full intake queue. CPU per
message is each process's CPU time (user + system, ``/proc``) from the start
of the load until the count settled, over the messages sent; Redis is the
shared server, so its number includes whatever else used it meanwhile.

The benchmark fails (exit 1) when ``mutt syslog`` loses a message it did not
count (``missing final`` above its kernel + queue drops), or when the TCP
path loses one past rsyslogd's own input.
"""

from __future__ import annotations

import argparse
import resource
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import orjson
import redis
import requests

from bench.common import (
    Child,
    child_env,
    children,
    clear_namespace,
    free_port,
    log,
    machine,
    mutt_argv,
    num,
    print_table,
    redis_cpu_seconds,
    redis_namespace,
    scratch_dir,
    server_urls,
    tree_cpu_seconds,
    wait_http,
    wait_until,
)
from shared.broker.keys import Keys

RSYSLOGD = "/usr/sbin/rsyslogd"
PATHS = ("rsyslog-udp", "mutt-udp", "mutt-tcp")
LABELS = {
    "rsyslog-udp": "rsyslogd UDP -> omfile",
    "mutt-udp": "mutt syslog UDP",
    "mutt-tcp": "rsyslogd omfwd TCP -> mutt syslog",
}
PROCESSES = ("sender", "rsyslogd", "mutt syslog", "ingest", "redis (shared)")

RSYSLOG_CONF = """\
global(workDirectory="{work}")
module(load="imudp")
input(type="imudp" address="127.0.0.1" port="{file_port}" ruleset="tofile")
input(type="imudp" address="127.0.0.1" port="{relay_port}" ruleset="relay" rcvbufSize="8m")
ruleset(name="tofile") {{
    action(type="omfile" file="{out}" template="RSYSLOG_FileFormat")
}}
ruleset(name="relay") {{
    action(type="omfwd" target="127.0.0.1" port="{mutt_tcp}" protocol="tcp"
           TCP_Framing="octet-counted" template="RSYSLOG_SyslogProtocol23Format"
           queue.type="LinkedList" queue.size="500000" action.resumeRetryCount="-1")
}}
"""


@dataclass
class Row:
    rate: int
    path: str
    sent: int = 0
    offered: float = 0.0
    at_settle: int = 0
    final: int = 0
    catch_up: float = 0.0
    kernel_drops: int = 0
    queue_drops: int = 0
    relay_input_drops: int = 0  # rsyslogd's own UDP input, on the TCP path
    cpu: dict[str, float] = field(default_factory=dict)  # µs per message by process

    def missing(self, arrived: int) -> str:
        if not self.sent:
            return "n/a"
        return f"{max(0, self.sent - arrived) / self.sent:.2%}"


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def udp_drops(port: int) -> int:
    """The kernel's drop count of whichever socket is bound to UDP ``port`` (0 if none)."""
    wanted = f":{port:04X}"
    for line in Path("/proc/net/udp").read_text().splitlines()[1:]:
        fields = line.split()
        if len(fields) >= 13 and fields[1].endswith(wanted):
            return int(fields[-1])
    return 0


def udp_bound(port: int) -> bool:
    wanted = f":{port:04X}"
    lines = Path("/proc/net/udp").read_text().splitlines()[1:]
    return any(line.split()[1].endswith(wanted) for line in lines if len(line.split()) > 1)


def metric(url: str, name: str, labels: str) -> float:
    """One sample of the Prometheus text at ``url`` (0 when absent)."""
    text = requests.get(url, timeout=5).text
    prefix = f"{name}{{{labels}}} "
    for line in text.splitlines():
        if line.startswith(prefix):
            return float(line[len(prefix) :])
    return 0.0


@dataclass
class Bench:
    args: argparse.Namespace
    r: redis.Redis
    keys: Keys
    tmp: Path
    pids: dict[str, int]
    metrics_url: str
    ports: dict[str, int]
    rsyslog_out: Path | None
    rows: list[Row] = field(default_factory=list)

    def counter(self, path: str, tag: str) -> Callable[[], int]:
        if path == "rsyslog-udp":
            out = self.rsyslog_out
            assert out is not None
            needle = f" {tag} ".encode()
            return lambda: out.read_bytes().count(needle) if out.exists() else 0
        return lambda: int(self.r.xlen(self.keys.events))

    def drops(self) -> tuple[float, float]:
        kernel = metric(self.metrics_url, "mutt_source_kernel_drops_total", 'source="syslog"')
        queue = metric(
            self.metrics_url, "mutt_source_events_total", 'outcome="dropped",source="syslog"'
        )
        return kernel, queue

    def cpu(self) -> dict[str, float]:
        used = tree_cpu_seconds(self.pids)
        used["redis (shared)"] = redis_cpu_seconds(self.r)
        used["sender"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_utime + (
            resource.getrusage(resource.RUSAGE_CHILDREN).ru_stime
        )
        return used

    def measure(self, rate: int, path: str) -> Row:
        row = Row(rate, path)
        tag = f"t{uuid.uuid4().hex[:10]}"
        count = self.counter(path, tag)
        clear_namespace(self.r, self.keys.namespace)
        base = count() if path != "rsyslog-udp" else 0
        kernel0, queue0 = self.drops()
        relay0 = udp_drops(self.ports["relay"]) if path == "mutt-tcp" else 0
        file0 = udp_drops(self.ports["file"]) if path == "rsyslog-udp" else 0
        cpu0 = self.cpu()
        target = {
            "rsyslog-udp": self.ports["file"],
            "mutt-udp": self.ports["mutt_udp"],
            "mutt-tcp": self.ports["relay"],
        }[path]
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "bench.syslog_load",
                f"127.0.0.1:{target}",
                *("--rate", str(rate), "--seconds", str(self.args.seconds), "--tag", tag),
            ],
            capture_output=True,
            text=True,
            check=True,
            timeout=self.args.seconds * 10 + 60,
        )
        ended = time.monotonic()
        report = orjson.loads(done.stdout.strip().splitlines()[-1])
        row.sent, row.offered = int(report["sent"]), float(report["offered_rate"])
        row.at_settle, row.final, last_arrival = self.watch(count, row.sent + base, ended)
        row.at_settle -= base
        row.final -= base
        row.catch_up = max(0.0, last_arrival - ended)
        cpu1 = self.cpu()
        row.cpu = {
            name: (cpu1.get(name, 0.0) - cpu0.get(name, 0.0)) * 1e6 / max(1, row.sent)
            for name in PROCESSES
        }
        kernel1, queue1 = self.drops()
        if path == "rsyslog-udp":
            row.kernel_drops = udp_drops(self.ports["file"]) - file0
        else:
            row.kernel_drops, row.queue_drops = int(kernel1 - kernel0), int(queue1 - queue0)
        if path == "mutt-tcp":
            row.relay_input_drops = udp_drops(self.ports["relay"]) - relay0
        log(
            f"  {rate:>6,}/s {LABELS[path]:34} sent {row.sent:,} ({row.offered:,.0f}/s, sender"
            f" lag {report['worst_lag_ms']:.0f} ms): +{self.args.settle:g}s"
            f" {row.missing(row.at_settle)} missing, final {row.missing(row.final)}"
            f" after {row.catch_up:.1f}s; kernel drops {row.kernel_drops:,}, queue drops"
            f" {row.queue_drops:,}, relay input drops {row.relay_input_drops:,}"
        )
        self.rows.append(row)
        return row

    def watch(
        self, count: Callable[[], int], everything: int, ended: float
    ) -> tuple[int, int, float]:
        """(count ``--settle`` s after ``ended``, final count, when it last grew).

        Final: once it reaches ``everything``, or has not moved for 2 s (at most 120 s).
        """
        value, moved = count(), ended
        at_settle: int | None = None
        while True:
            now = time.monotonic()
            if at_settle is None and now >= ended + self.args.settle:
                at_settle = value
            if at_settle is not None and (value >= everything or now - moved >= 2.0):
                return at_settle, value, moved
            if now - ended > 120:
                return at_settle, value, moved
            time.sleep(0.1)
            new = count()
            if new != value:
                value, moved = new, time.monotonic()


def start_rsyslog(
    tmp: Path, env: dict[str, str], kids: list[Child], mutt_tcp: int
) -> tuple[Child, dict[str, int], Path]:
    work = tmp / "rsyslog"
    work.mkdir()
    ports = {"file": free_udp_port(), "relay": free_udp_port()}
    out = work / "out.log"
    conf = work / "rsyslog.conf"
    conf.write_text(
        RSYSLOG_CONF.format(
            work=work,
            file_port=ports["file"],
            relay_port=ports["relay"],
            out=out,
            mutt_tcp=mutt_tcp,
        )
    )
    child = Child("rsyslogd", [RSYSLOGD, "-n", "-f", str(conf), "-i", str(work / "pid")], env, tmp)
    kids.append(child)
    wait_until(
        lambda: (child.check() or True) and all(udp_bound(p) for p in ports.values()),
        15,
        what="rsyslogd listening",
    )
    return child, ports, out


def run(args: argparse.Namespace) -> list[Row]:
    redis_url, database_url = server_urls()
    rates = [int(x) for x in args.rates.split(",") if x.strip()]
    has_rsyslog = Path(RSYSLOGD).exists()
    if not has_rsyslog:
        log(f"{RSYSLOGD} is absent (apt-get install rsyslog): the rsyslog paths are skipped")
    r = redis.Redis.from_url(redis_url)
    with (
        redis_namespace(redis_url, "syslog") as ns,
        scratch_dir("syslog") as tmp,
        children() as kids,
    ):
        env = child_env(redis_url=redis_url, database_url=database_url, namespace=ns)
        ingest_port = free_port()
        ingest = Child(
            "ingest",
            mutt_argv("serve", "ingest", "--host", "127.0.0.1", "--port", str(ingest_port)),
            {**env, "WORKERS": "2"},
            tmp,
        )
        kids.append(ingest)
        wait_http(f"http://127.0.0.1:{ingest_port}/healthz", ingest)
        ports = {"mutt_udp": free_udp_port(), "mutt_tcp": free_port()}
        health = free_port()
        syslog = Child(
            "mutt-syslog",
            mutt_argv(
                "syslog",
                *("--udp-port", str(ports["mutt_udp"]), "--tcp-port", str(ports["mutt_tcp"])),
                *("--ingest-url", f"http://127.0.0.1:{ingest_port}/"),
                *("--health-port", str(health)),
            ),
            env,
            tmp,
        )
        kids.append(syslog)
        wait_http(f"http://127.0.0.1:{health}/healthz", syslog)
        pids = {"ingest": ingest.pid, "mutt syslog": syslog.pid}
        out = None
        paths = [p for p in PATHS if has_rsyslog or p == "mutt-udp"]
        if has_rsyslog:
            rsyslogd, rports, out = start_rsyslog(tmp, env, kids, ports["mutt_tcp"])
            ports.update(rports)
            pids["rsyslogd"] = rsyslogd.pid
        log(f"ingest :{ingest_port} (WORKERS=2), mutt syslog {ports}, namespace {ns}")
        bench = Bench(
            args, r, Keys(ns), tmp, pids, f"http://127.0.0.1:{health}/metrics", ports, out
        )
        for rate in rates:
            for path in paths:
                bench.measure(rate, path)
                for child in kids:
                    child.check()
        log(f"mutt syslog log tail:\n{syslog.tail(8)}")
    r.close()
    return bench.rows


def report(args: argparse.Namespace, rows: Sequence[Row]) -> int:
    settle = f"+{args.settle:g}s"
    print(f"machine: {machine()}")
    print(
        f"load: one Python sender, {args.seconds:g} s per rate, RFC 3164 lines from 200"
        " devices; ingest WORKERS=2; mutt syslog and ingest at their defaults"
    )
    print_table(
        f"syslog: missing per offered rate ({args.seconds:g} s of load, counted"
        f" {args.settle:g} s after it and once settled)",
        [
            "rate/s",
            "path",
            "sent",
            "offered/s",
            f"missing {settle}",
            "missing final",
            "catch-up s",
            "kernel drops",
            "queue drops",
            "relay input drops",
        ],
        [
            [
                f"{row.rate:,}",
                LABELS[row.path],
                f"{row.sent:,}",
                num(row.offered),
                row.missing(row.at_settle),
                row.missing(row.final),
                f"{row.catch_up:.1f}",
                f"{row.kernel_drops:,}",
                f"{row.queue_drops:,}" if row.path != "rsyslog-udp" else "-",
                f"{row.relay_input_drops:,}" if row.path == "mutt-tcp" else "-",
            ]
            for row in rows
        ],
    )
    print_table(
        "CPU per message (µs of CPU per message sent, load start until settled)",
        ["rate/s", "path", *PROCESSES],
        [
            [
                f"{row.rate:,}",
                LABELS[row.path],
                *(
                    "-" if name == "rsyslogd" and row.path == "mutt-udp" else num(row.cpu[name], 1)
                    for name in PROCESSES
                ),
            ]
            for row in rows
        ],
    )
    failed = 0
    for row in rows:
        unexplained = row.sent - row.final - row.kernel_drops - row.queue_drops
        if row.path == "mutt-udp" and unexplained > 0:
            failed += 1
            print(f"FAIL: at {row.rate:,}/s mutt syslog lost {unexplained:,} messages uncounted")
        if row.path == "mutt-tcp" and row.sent - row.final > row.relay_input_drops:
            failed += 1
            print(f"FAIL: at {row.rate:,}/s the TCP path lost {row.sent - row.final:,} messages")
    return 1 if failed else 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rates", default="1000,5000,10000,20000", help="messages/s list")
    parser.add_argument("--seconds", type=float, default=4.0, help="load per rate and path")
    parser.add_argument("--settle", type=float, default=4.0, help="count this long after")
    parser.add_argument("--quick", action="store_true", help="500 and 2,000/s for 1 s (< 40 s)")
    args = parser.parse_args(argv)
    if args.quick:
        args.rates, args.seconds, args.settle = "500,2000", 1.0, 2.0
    rows = run(args)
    return report(args, rows)


if __name__ == "__main__":
    raise SystemExit(main())
