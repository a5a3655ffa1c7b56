"""``mutt syslog`` and ``mutt trap-handle``: the sources that feed ingest.

Both send CloudEvents to ingest over HTTP like any other source, with the
first key of the secret ``ingest_api_keys`` as ``X-API-KEY``. Imports are
lazy: snmptrapd starts ``mutt trap-handle`` once per trap and waits for it.
``python -m mutt.commands.sources`` runs them without the main ``mutt`` parser.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from shared.errors import ConfigError, MuttError, PortInUseError

if TYPE_CHECKING:
    from mutt.sources.pipeline import SourcePipeline
    from mutt.sources.source_status import SourceMonitor
    from mutt.sources.syslog_server import SyslogServer
    from shared.config import Settings

log = logging.getLogger(__name__)

DEFAULT_INGEST_URL = "http://127.0.0.1:8080/"
MAX_MESSAGE_BYTES = 65_536  # ingest's own limit on a message
DEFAULT_BATCH = 500
DEFAULT_FLUSH = 0.2
DEFAULT_BUFFER = 100_000  # 5 s at 20,000 msg/s, ~25 MB of received lines
DEFAULT_LANES = 4
MAX_LANES = 64
DEFAULT_RCVBUF = 8 * 1024 * 1024
MAX_RCVBUF = 1 << 30  # SO_RCVBUF is a C int; no host grants more than this anyway

EPILOG_SYSLOG = """examples:
  mutt syslog                         # UDP + TCP on 127.0.0.1:5514 -> http://127.0.0.1:8080/
  mutt syslog --host 0.0.0.0 --ingest-url http://ingest.mutt.svc.cluster.local/
  mutt syslog --no-udp --tcp-port 6514 --batch-size 1000 --buffer-size 500000 --lanes 8
  logger --server 127.0.0.1 --port 5514 --tcp --rfc5424 'Interface Gi0/1, changed state to down'

Batches are sent as application/cloudevents-batch+json, which ingest takes by default (one
with MUTT_INGEST_CLOUDEVENTS_BATCH=false answers 415: mutt syslog then sends one event per
request, much slower). The ingest URL defaults to $K_SINK (Knative SinkBinding), else the
local one. One thread only reads UDP; --lanes senders keep requests in flight, each device's
events in order. On 429/503 the buffer absorbs the wait (Retry-After is honoured); a full
buffer drops UDP messages (counted, logged) and stops reading TCP until there is room.
Datagrams the kernel dropped (receive buffer full) are counted too: /metrics and mutt status.
SIGTERM closes the listeners and sends what is buffered for up to --grace seconds.
See docs/sources.md for sizing, rsyslog, snmptrapd and Alertmanager configuration.
"""

EPILOG_TRAP = """snmptrapd.conf:
  traphandle default /opt/mutt/.venv/bin/mutt trap-handle --ingest-url http://127.0.0.1:8080/
run snmptrapd with -On (numeric OIDs). Reads one trap in snmptrapd's traphandle format on
stdin and posts it to ingest as an io.mutt.snmp.trap.v1 CloudEvent; exits 0 once ingest has
it, else 1 with one line on stderr (snmptrapd logs it). Try it by hand:
  printf 'router1\\nUDP: [10.0.0.1]:5000->[10.0.0.2]:162\\n%s\\n' \\
    '.1.3.6.1.6.3.1.1.4.1.0 .1.3.6.1.6.3.1.1.5.3' | mutt trap-handle --print
"""


def default_ingest_url() -> str:
    """``$K_SINK`` when a Knative SinkBinding / ContainerSource injected it."""
    return os.environ.get("K_SINK") or DEFAULT_INGEST_URL


def _url(value: str) -> str:
    if not value.startswith(("http://", "https://")):
        raise argparse.ArgumentTypeError(f"{value!r} is not an http:// or https:// URL")
    return value


def _positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return number


def _buffer_bytes(value: str) -> int:
    number = _positive_int(value)
    if number > MAX_RCVBUF:
        raise argparse.ArgumentTypeError(f"{value} is above {MAX_RCVBUF} bytes")
    return number


def _lanes(value: str) -> int:
    number = _positive_int(value)
    if number > MAX_LANES:
        raise argparse.ArgumentTypeError(f"{value} lanes: at most {MAX_LANES} (one thread each)")
    return number


def _port(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a port number") from None
    if not 0 <= number <= 65535:
        raise argparse.ArgumentTypeError(f"port {value} is outside 0-65535")
    return number


def _seconds(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number of seconds") from None
    if not 0 < number <= 3600:
        raise argparse.ArgumentTypeError(f"{value} must be above 0 and at most 3600 seconds")
    return number


def cmd_syslog(args: argparse.Namespace) -> int:
    """Listen until SIGTERM; flush what is held within the grace period."""
    from mutt.sources.events import default_source
    from mutt.sources.pipeline import SourcePipeline
    from mutt.sources.sender import IngestClient, SenderConfig
    from mutt.sources.syslog_server import ListenConfig, SyslogEncoder, SyslogService
    from shared.config import load_settings
    from shared.logs import setup_logging
    from shared.secrets import Secrets

    settings = load_settings()
    setup_logging("syslog", settings.log_level, settings.log_format)
    if args.no_udp and args.no_tcp:
        raise ConfigError("--no-udp and --no-tcp together leave nothing to listen on")
    if args.max_message_bytes > MAX_MESSAGE_BYTES:
        raise ConfigError(
            f"--max-message-bytes {args.max_message_bytes}: "
            f"ingest takes messages of at most {MAX_MESSAGE_BYTES} bytes"
        )
    try:
        config = SenderConfig(
            mode=args.mode,
            batch_size=args.batch_size,
            flush_interval=args.flush_interval,
            buffer_size=args.buffer_size,
            max_request_bytes=args.max_request_bytes,
        )
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    client = IngestClient(
        args.ingest_url,
        Secrets(settings.secrets_dir),
        timeout=args.timeout,
        user_agent="mutt-syslog",
    )
    listen = ListenConfig(
        source=args.source or default_source("syslog"),
        host=args.host,
        udp_port=None if args.no_udp else args.udp_port,
        tcp_port=None if args.no_tcp else args.tcp_port,
        max_message_bytes=args.max_message_bytes,
        udp_rcvbuf=args.udp_rcvbuf,
    )
    encoder = SyslogEncoder(listen.source, listen.max_message_bytes)
    pipeline = SourcePipeline(encoder, client, config, lanes=args.lanes, name="syslog")
    health_port = args.health_port
    if health_port is None:
        health_port = getattr(settings, "health_port", None)
    if health_port is not None:
        _serve_health(args.host, int(health_port), pipeline)
    service = SyslogService(listen, pipeline, args.grace, monitor=_monitor(settings))
    try:
        service.run()
    except OSError as exc:
        ports = f"udp {listen.udp_port}, tcp {listen.tcp_port}"
        raise PortInUseError(
            f"cannot listen on {args.host} ({ports}): {exc.strerror or exc}"
        ) from None
    return 0


def _monitor(settings: Settings) -> Callable[[SyslogServer], SourceMonitor]:
    """The listener's counters go to the Redis ``mutt status`` reads, when there is one."""
    from mutt.sources.source_status import SourceMonitor
    from mutt.sources.syslog_server import listen_details
    from shared.broker.keys import Keys
    from shared.redis_client import connect_redis, redact

    url = settings.redis_url or _embedded_redis(settings)
    target = None
    if url:
        log.info("publishing counters for mutt status to %s", redact(url))
        target = (connect_redis(url, check=False), Keys(settings.namespace))
    else:
        log.info("counters not published for mutt status: no MUTT_REDIS_URL (metrics only)")

    def make(server: SyslogServer) -> SourceMonitor:
        return SourceMonitor(
            "syslog",
            server.pipeline.snapshot,
            details=listen_details(server),
            udp_socket=server.udp_socket(),
            publish=target,
            tick=server.pipeline.update_gauge,
        )

    return make


def _embedded_redis(settings: Settings) -> str | None:
    """The Redis of a ``mutt run`` in the data directory, if one is running there."""
    from mutt import runfile

    info = runfile.read(settings.data_dir)
    return info.redis_url if info is not None and info.alive() else None


def _serve_health(host: str, port: int, pipeline: SourcePipeline) -> None:
    from mutt.runtime.ops_server import start_ops_server

    try:
        start_ops_server(host, port, pipeline.alive, pipeline.readiness)
    except OSError as exc:
        raise PortInUseError(f"cannot serve health on port {port}: {exc.strerror}") from None


def cmd_trap_handle(args: argparse.Namespace) -> int:
    """One trap from stdin to ingest; exit 0 only once ingest has it."""
    import orjson

    from mutt.sources.events import default_source
    from mutt.sources.sender import IngestClient
    from mutt.sources.trap_handle import (
        MAX_INPUT_BYTES,
        TrapError,
        deliver,
        trap_event,
    )
    from shared.config import load_settings
    from shared.secrets import Secrets

    settings = load_settings()
    raw = sys.stdin.buffer.read(MAX_INPUT_BYTES + 1)
    if len(raw) > MAX_INPUT_BYTES:
        raise TrapError(f"stdin holds more than {MAX_INPUT_BYTES} bytes: not one trap")
    event = trap_event(raw, source=args.source or default_source("snmptrapd"))
    if args.print:
        sys.stdout.write(orjson.dumps(event, option=orjson.OPT_INDENT_2).decode() + "\n")
        return 0
    client = IngestClient(
        args.ingest_url,
        Secrets(settings.secrets_dir),
        timeout=args.timeout,
        user_agent="mutt-trap-handle",
    )
    deliver(client, event, args.timeout)
    return 0


def _add(
    subparsers: argparse._SubParsersAction,  # type: ignore[type-arg]
    name: str,
    help_text: str,
    epilog: str,
) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        name,
        help=help_text,
        description=help_text,
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    return parser


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``mutt syslog`` and ``mutt trap-handle``."""
    p = _add(
        subparsers, "syslog", "receive syslog over UDP and TCP and send it to ingest", EPILOG_SYSLOG
    )
    p.add_argument("--host", default="127.0.0.1", help="listen address (default 127.0.0.1)")
    p.add_argument("--udp-port", type=_port, default=5514, help="UDP port (default 5514; 0 = any)")
    p.add_argument("--tcp-port", type=_port, default=5514, help="TCP port (default 5514; 0 = any)")
    p.add_argument("--no-udp", action="store_true", help="do not listen on UDP")
    p.add_argument("--no-tcp", action="store_true", help="do not listen on TCP")
    p.add_argument(
        "--ingest-url",
        type=_url,
        default=default_ingest_url(),
        help="where to POST events (default $K_SINK, else %(default)s)",
    )
    p.add_argument(
        "--mode",
        choices=["batch", "single"],
        default="batch",
        help="batch: CloudEvents batches (ingest takes them by default); "
        "single: one structured CloudEvent per request (any CloudEvents sink, e.g. a Broker)",
    )
    p.add_argument(
        "--batch-size",
        type=_positive_int,
        default=DEFAULT_BATCH,
        help=f"events per request (default {DEFAULT_BATCH}; ingest takes up to"
        " MUTT_INGEST_MAX_BATCH)",
    )
    p.add_argument(
        "--flush-interval",
        type=_seconds,
        default=DEFAULT_FLUSH,
        help="send a partial batch once it waited this long (default %(default)s s)",
    )
    p.add_argument(
        "--buffer-size",
        type=_positive_int,
        default=DEFAULT_BUFFER,
        help="messages held while ingest is slow or away; beyond, UDP drops and TCP waits"
        f" (default {DEFAULT_BUFFER})",
    )
    p.add_argument(
        "--lanes",
        type=_lanes,
        default=DEFAULT_LANES,
        help="requests in flight to ingest; a device's events always take the same lane"
        f" (default {DEFAULT_LANES})",
    )
    p.add_argument(
        "--udp-rcvbuf",
        type=_buffer_bytes,
        default=DEFAULT_RCVBUF,
        help=f"UDP socket receive buffer in bytes (default {DEFAULT_RCVBUF}; the kernel caps"
        " it at net.core.rmem_max and the log says so)",
    )
    p.add_argument(
        "--max-message-bytes",
        type=_positive_int,
        default=16_384,
        help="longer messages are cut and marked truncated (default 16384, at most 65536)",
    )
    p.add_argument(
        "--max-request-bytes",
        type=_positive_int,
        default=1_000_000,
        help="a batch stays under this size (default 1000000; ingest's MUTT_INGEST_MAX_BODY_BYTES)",
    )
    p.add_argument(
        "--timeout", type=_seconds, default=10.0, help="HTTP timeout per request (default 10 s)"
    )
    p.add_argument(
        "--grace",
        type=_seconds,
        default=10.0,
        help="on SIGTERM, keep sending the buffer this long (default 10 s)",
    )
    p.add_argument("--source", help="CloudEvent source (default /mutt/syslog/<hostname>)")
    p.add_argument(
        "--health-port",
        type=_port,
        help="serve /healthz, /readyz, /metrics on this port (default MUTT_HEALTH_PORT, else off)",
    )
    p.set_defaults(func=cmd_syslog)

    p = _add(
        subparsers,
        "trap-handle",
        "snmptrapd traphandle: post the trap on stdin to ingest",
        EPILOG_TRAP,
    )
    p.add_argument(
        "--ingest-url",
        type=_url,
        default=default_ingest_url(),
        help="where to POST the trap (default $K_SINK, else %(default)s)",
    )
    p.add_argument(
        "--timeout",
        type=_seconds,
        default=10.0,
        help="give up after this long, retries on 429/503 included (default 10 s)",
    )
    p.add_argument("--source", help="CloudEvent source (default /mutt/snmptrapd/<hostname>)")
    p.add_argument(
        "--print", action="store_true", help="print the CloudEvent instead of sending it"
    )
    p.set_defaults(func=cmd_trap_handle)


def build_parser() -> argparse.ArgumentParser:
    """A parser with only these commands (for ``python -m mutt.commands.sources``)."""
    parser = argparse.ArgumentParser(prog="mutt", description="MUTT sources")
    register(parser.add_subparsers(dest="command", required=True, metavar="COMMAND"))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one of these commands with the same error contract as ``mutt``."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except MuttError as exc:
        print(f"mutt: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
