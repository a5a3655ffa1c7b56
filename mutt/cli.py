"""The ``mutt`` command: run the pipeline, its workers and its operations.

Every expected failure (bad setting, unreachable server, port in use) ends
with one ``mutt: ...`` line on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import signal
import sys
from collections.abc import Iterable
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from shared.errors import MuttError, PortInUseError

if TYPE_CHECKING:
    from mutt.runtime.relay import Target
    from mutt.runtime.worker import StreamWorker
    from shared.config import Settings
    from shared.context import Context

# Commands that import a function and build its handler before serving start
# with the cyclic garbage collector off: the imports and the rule load create
# hundreds of thousands of long-lived objects, and the collections they
# trigger cost 10-20% of the CPU of a cold start (docs/performance.md). Each
# turns it back on just before it serves; ``main`` does if it never gets there.
_STARTS_GC_OFF = {"worker", "serve"}

EPILOG_RUN = """examples:
  mutt run                      # embedded Redis + PostgreSQL under ./.mutt
  mutt run --demo               # send sample events, wait for delivery, print a summary
  MUTT_REDIS_URL=redis://127.0.0.1:6379/0 \\
  MUTT_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/mutt mutt run --port 9090
"""


def _settings(args: argparse.Namespace) -> Settings:
    from shared.config import load_settings  # pydantic: imported after main() paused the GC

    return load_settings(data_dir=getattr(args, "data_dir", None))


def cmd_run(args: argparse.Namespace) -> int:
    from mutt.run import run
    from shared.logs import setup_logging

    settings = _settings(args)
    setup_logging("run", settings.log_level, "text")
    return run(settings, args.host, args.port, args.demo, args.data, args.admin_port)


def cmd_worker(args: argparse.Namespace) -> int:
    from mutt.runtime.worker import StreamWorker
    from mutt.stages import WORKER_STAGES
    from shared.context import Context, set_context
    from shared.logs import setup_logging

    settings = _settings(args)
    setup_logging(args.stage, settings.log_level, settings.log_format)
    settings.require_urls()
    ctx = Context(settings)
    set_context(ctx)
    stage = WORKER_STAGES[args.stage]
    ctx.redis.ping()  # fail fast with a clear line if Redis is unreachable
    if stage.max_deliveries is not None:
        settings = settings.model_copy(update={"max_deliveries": stage.max_deliveries})
    handler = stage.make_handler(ctx)
    worker = StreamWorker(ctx.redis, ctx.keys, settings, handler, stage.stream(ctx), stage.name)
    _serve_health(ctx, [worker], [handler])

    def _stop(signum: int, frame: FrameType | None) -> None:
        worker.stop()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    gc.enable()  # started, serving from now on (see _STARTS_GC_OFF)
    worker.run()
    return 0


def _serve_health(ctx: Context, workers: list[StreamWorker], handlers: list[object]) -> None:
    """The small ops server of a worker or relay process, when MUTT_HEALTH_PORT is set."""
    from mutt.runtime.ops_server import start_ops_server
    from shared.metrics import watch_streams
    from shared.readiness import readiness

    watch_streams(ctx.redis, ctx.keys)
    port = ctx.settings.health_port
    if port is None:
        return

    def ready() -> dict[str, str]:
        checks = readiness(ctx)
        for handler in handlers:
            probe = getattr(handler, "readiness", None)
            if callable(probe):
                checks.update(probe())
        return checks

    try:
        start_ops_server(
            ctx.settings.health_host, port, lambda: all(w.alive() for w in workers), ready
        )
    except OSError as exc:
        raise PortInUseError(f"cannot serve health on port {port}: {exc.strerror}") from None


def parse_targets(to: list[str], modes: list[str]) -> list[Target]:
    """``--to STAGE=URL`` and ``--mode STAGE=batch|single`` as targets, or one clear error."""
    from mutt.runtime.relay import Target
    from mutt.stages import WORKER_STAGES

    chosen: dict[str, str] = {}
    for item in modes:
        stage_name, sep, mode = item.partition("=")
        if not sep or stage_name not in WORKER_STAGES or mode not in ("batch", "single"):
            raise MuttError(f"--mode {item!r}: expected STAGE=batch or STAGE=single")
        chosen[stage_name] = mode
    targets = []
    for item in to:
        stage_name, sep, url = item.partition("=")
        if (
            not sep
            or stage_name not in WORKER_STAGES
            or not url.startswith(("http://", "https://"))
        ):
            raise MuttError(
                f"--to {item!r}: expected STAGE=URL with STAGE one of {sorted(WORKER_STAGES)}"
            )
        mode = chosen.pop(stage_name, "batch")
        targets.append(Target(stage_name, url, "single" if mode == "single" else "batch"))
    if chosen:
        raise MuttError(f"--mode for {', '.join(chosen)} without a --to for it")
    return targets


def cmd_relay(args: argparse.Namespace) -> int:
    """Feed scale-to-zero functions from the streams: a window of requests per target."""
    import threading

    from mutt.runtime.relay import RelayHandler
    from mutt.runtime.worker import StreamWorker
    from mutt.stages import WORKER_STAGES
    from shared.context import Context
    from shared.logs import setup_logging

    settings = _settings(args)
    setup_logging("relay", settings.log_level, settings.log_format)
    settings.require_urls()
    targets = parse_targets(args.to, args.mode or [])
    ctx = Context(settings)
    ctx.redis.ping()
    stop = threading.Event()
    window = args.window or settings.relay_window
    # An unreachable or overloaded function is never the entries' fault: they are
    # retried (with backoff) however often, and only an event's own verdict DLQs it.
    relay_settings = settings.model_copy(
        update={"max_deliveries": 2**31, "worker_batch_size": settings.relay_batch_size}
    )
    workers = []
    handlers: list[object] = []
    for target in targets:
        stage = WORKER_STAGES[target.stage]
        handler = RelayHandler(target, timeout=args.timeout, stop=stop)
        handlers.append(handler)
        per_request = settings.relay_batch_size if target.mode == "batch" else 1
        for _ in range(window):
            workers.append(
                StreamWorker(
                    ctx.redis,
                    ctx.keys,
                    relay_settings.model_copy(update={"worker_batch_size": per_request}),
                    handler,
                    stage.stream(ctx),
                    stage.name,
                )
            )
        log_line = f"relay: {target.stage} -> {target.url} ({target.mode}, {window} in flight)"
        print(log_line, file=sys.stderr, flush=True)

    def _stop(signum: int, frame: FrameType | None) -> None:
        stop.set()
        for w in workers:
            w.stop()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    _serve_health(ctx, workers, handlers)
    threads = [
        threading.Thread(target=w.run, name=f"relay-{w.group}-{n}") for n, w in enumerate(workers)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return 0


MAX_REQUEST_LINE = 8190  # bytes of "METHOD /path?query HTTP/1.1"


def cmd_serve(args: argparse.Namespace) -> int:
    """Serve one function over HTTP exactly as Knative would run it."""
    import os
    import tempfile

    if int(os.environ.get("WORKERS", "1")) > 1 and "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
        # several gunicorn workers: metrics go through files and /metrics sums them
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="mutt-metrics-")
    import functions_framework
    from functions_framework._http import create_server

    import functions
    from mutt.gunicorn_options import hardening, worker
    from mutt.ports import check_port_free
    from mutt.stages import HTTP_FUNCTIONS
    from shared.logs import setup_logging

    settings = _settings(args)
    setup_logging(args.function, settings.log_level, settings.log_format)
    settings.require_urls()
    if args.function == "ingest":  # the public one: no key, no start (unless loopback or off)
        from functions.ingest.exposure import check_start
        from shared.context import Context

        check_start(settings, Context(settings).secrets, args.host)
    check_port_free(args.host, args.port)
    source = Path(functions.__file__).parent.parent / HTTP_FUNCTIONS[args.function]
    app = functions_framework.create_app(args.function, str(source), "http")  # type: ignore[no-untyped-call]
    # functions-framework sets gunicorn's limit_request_line to 0 (unlimited): a
    # client could then send a request line of any size, which gunicorn buffers
    # and rescans on every read (memory and CPU without bound). 8190 is
    # gunicorn's own maximum, far above any MUTT route.
    server = create_server(  # type: ignore[no-untyped-call]
        app, False, limit_request_line=MAX_REQUEST_LINE, **hardening(), **worker(args.function)
    )
    gc.enable()  # imported, serving from now on (see _STARTS_GC_OFF)
    server.run(args.host, args.port)
    return 0


def cmd_db_migrate(args: argparse.Namespace) -> int:
    from mutt.db.migrate import current_version, migrate
    from shared.db.connection import connect_pg

    settings = _settings(args)
    _, url = settings.require_urls()
    conn = connect_pg(url, settings.database_schema)
    applied = migrate(conn)
    for mig in applied:
        print(f"applied {mig.version:04d}_{mig.name}")
    print(f"database at version {current_version(conn)}" + ("" if applied else " (nothing to do)"))
    conn.close()
    return 0


def cmd_janitor_run(args: argparse.Namespace) -> int:
    from functions.janitor.handler import JanitorHandler
    from shared.context import Context

    settings = _settings(args)
    settings.require_urls()
    ctx = Context(settings)
    ctx.redis.ping()
    ctx.pg()  # both servers reachable, or one clear line before any task runs
    report = JanitorHandler(ctx).run(args.task)
    print(report.model_dump_json(indent=2))
    for task, error in report.errors.items():
        print(f"mutt: janitor task {task} failed: {error}", file=sys.stderr)
    return 1 if report.errors else 0


def cmd_schemas(args: argparse.Namespace) -> int:
    import orjson

    from shared.models import SCHEMAS, schema_url

    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    for event_type, model in SCHEMAS.items():
        schema = {"$id": schema_url(event_type), **model.model_json_schema()}
        path = out / f"{event_type}.json"
        path.write_bytes(
            orjson.dumps(schema, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"
        )
        print(path)
    return 0


def cmd_openapi(args: argparse.Namespace) -> int:
    import orjson

    from functions.ingest.contract import openapi

    body = orjson.dumps(openapi(), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"
    if args.out is None:
        sys.stdout.write(body.decode())
    else:
        args.out.write_bytes(body)
        print(args.out)
    return 0


# Command groups in their own modules (mutt/commands/), by the command they add.
# They import much of MUTT, so a process registers only the one it runs: the
# pipeline's own commands (worker, serve, relay, run) start fast (cold start).
COMMAND_MODULES = {
    "rules": "rules",
    "config": "config",
    "audit": "audit",
    "status": "status",
    "dlq": "dlq",
    "syslog": "sources",
    "trap-handle": "sources",
    "silence": "silence",
    "correlation": "correlation",
    "bench": "bench",
}


def build_parser(modules: Iterable[str] | None = None) -> argparse.ArgumentParser:
    """The parser; ``modules`` limits the command modules registered (default: all)."""
    parser = argparse.ArgumentParser(
        prog="mutt",
        description="MUTT: route events from syslog, SNMP traps and webhooks to operators' tools.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser(
        "run",
        help="run the whole pipeline on this machine",
        epilog=EPILOG_RUN,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--host", default="127.0.0.1", help="ingest listen address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8080, help="ingest listen port (default 8080)")
    p.add_argument(
        "--admin-port",
        type=int,
        help="admin console and API port (default 8090, skipped if taken; 0: none)",
    )
    p.add_argument(
        "--data-dir", type=Path, help="embedded servers' data (default ./.mutt, MUTT_DATA_DIR)"
    )
    p.add_argument(
        "--demo", action="store_true", help="send sample events, wait for delivery, summarize, exit"
    )
    p.add_argument(
        "--data",
        type=Path,
        help="with --demo: a JSON array of events to send instead of the samples",
    )
    p.set_defaults(func=cmd_run)

    p = sub.add_parser(
        "worker",
        help="run one stage as a stream worker (RHEL, compose)",
        epilog="example:\n  MUTT_REDIS_URL=... MUTT_DATABASE_URL=... mutt worker alert",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("stage", choices=["alert", "forward", "audit"])
    p.set_defaults(func=cmd_worker)

    p = sub.add_parser(
        "relay",
        help="deliver stream entries to functions over HTTP (Knative)",
        epilog="example:\n  mutt relay --to alert=http://alert.mutt.svc --to forward=http://forward.mutt.svc",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--to",
        action="append",
        required=True,
        metavar="STAGE=URL",
        help="a stage (alert, forward) and the URL of its function; repeatable",
    )
    p.add_argument(
        "--mode",
        action="append",
        metavar="STAGE=batch|single",
        help="batch (default: MUTT's own functions, many entries per POST) or single"
        " (a foreign target or a Broker: one binary-mode CloudEvent per POST); repeatable",
    )
    p.add_argument(
        "--window",
        type=int,
        help="requests in flight per stage (default MUTT_RELAY_WINDOW, 8)",
    )
    p.add_argument("--timeout", type=float, default=30.0, help="HTTP timeout per request, seconds")
    p.set_defaults(func=cmd_relay)

    p = sub.add_parser(
        "serve",
        help="serve one function over HTTP (as on Knative)",
        epilog="example:\n  mutt serve ingest --port 8080",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("function", choices=["ingest", "alert", "forward", "janitor", "audit", "admin"])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080)
    p.set_defaults(func=cmd_serve)

    db = sub.add_parser("db", help="database operations").add_subparsers(
        dest="db_command", required=True
    )
    p = db.add_parser(
        "migrate",
        help="apply pending schema migrations (idempotent)",
        epilog="example:\n  MUTT_DATABASE_URL=postgresql://postgres@127.0.0.1/mutt mutt db migrate",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.set_defaults(func=cmd_db_migrate)

    jan = sub.add_parser("janitor", help="housekeeping").add_subparsers(
        dest="janitor_command", required=True
    )
    p = jan.add_parser(
        "run",
        help="run janitor tasks once",
        epilog="example:\n  mutt janitor run --task partitions",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--task", default="all", choices=["all", "reclaim", "partitions", "retention", "replay"]
    )
    p.set_defaults(func=cmd_janitor_run)

    p = sub.add_parser(
        "schemas",
        help="write the JSON Schemas of MUTT's events",
        epilog="example:\n  mutt schemas --out docs/schemas",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--out", type=Path, default=Path("docs/schemas"))
    p.set_defaults(func=cmd_schemas)

    p = sub.add_parser(
        "openapi",
        help="write ingest's OpenAPI 3.1 document",
        epilog="example:\n  mutt openapi --out docs/openapi.json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--out", type=Path, help="file to write (default: standard output)")
    p.set_defaults(func=cmd_openapi)

    wanted = dict.fromkeys(COMMAND_MODULES.values() if modules is None else modules)
    for name in wanted:
        importlib.import_module(f"mutt.commands.{name}").register(sub)
    return parser


def _exit_quietly(signum: int, frame: FrameType | None) -> None:
    """SIGTERM before a command has set up its own graceful stop: nothing is in flight."""
    raise SystemExit(0)


def main(argv: list[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, _exit_quietly)
    words = sys.argv[1:] if argv is None else argv
    first = next((w for w in words if not w.startswith("-")), None)
    if first == "bench" and words[0] == "bench":  # the runner parses its own options
        from mutt.commands.bench import run_bench

        try:
            return run_bench(words[1:])
        except MuttError as exc:
            print(f"mutt: {exc}", file=sys.stderr)
            return exc.exit_code
    if first is None:
        modules = None  # `mutt --help`: list everything
    else:
        modules = [COMMAND_MODULES[first]] if first in COMMAND_MODULES else []
    paused = first in _STARTS_GC_OFF and gc.isenabled()
    if paused:
        gc.disable()
    try:
        args = build_parser(modules).parse_args(argv)
        return int(args.func(args))
    except MuttError as exc:
        print(f"mutt: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    finally:
        if paused:
            gc.enable()
