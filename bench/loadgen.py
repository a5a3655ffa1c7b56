"""Open-loop load at a fixed event rate, from its own process, unique ids.

Run: ``python -m bench.loadgen URL --rate 1000 --batch 10 --seconds 10 --prefix P --pool FILE``.
``--rate`` is in events/s. With ``--batch 1`` every request is one
binary-mode CloudEvent at ``POST /`` (``ce-id`` = PREFIX + k); with
``--batch B`` > 1 it is a legacy JSON array of B events at
``POST /api/v2/ingest`` (``X-Request-ID`` = PREFIX + k, so item j has id
``PREFIX k:j``). Request ``k`` is due at ``start + k * B / rate`` whatever
happened to the previous ones (no coordinated omission: latency counts from
the due time); ``--connections`` threads each keep one HTTP/1.1 connection.
The pool file has the ``ce`` lines of ``bench/wrk_ingest.lua``
(``<ce-type>\\t<data JSON>``); item j of request k is line ``(k * B + j)`` modulo
their number. Prints one JSON line: requests, events, errors, seconds,
offered event rate, p50/p99 ms.
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit

import orjson


def percentile(values: list[float], pct: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered) + 0.5) - 1))]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("--rate", type=float, required=True, help="events per second")
    parser.add_argument("--batch", type=int, default=1, help="events per request")
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--pool", type=Path, required=True)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args(argv)

    pool = []
    for line in args.pool.read_text().splitlines():
        ce_type, _, body = line.partition("\t")
        pool.append((ce_type, body.encode()))
    parts = urlsplit(args.url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    batch = max(1, args.batch)
    total = int(args.rate * args.seconds / batch)
    interval = batch / args.rate
    counter = itertools.count()
    latencies: list[float] = []
    errors: list[int] = [0]
    lock = threading.Lock()
    start = time.monotonic() + 0.2

    def request(k: int) -> tuple[str, bytes, dict[str, str]]:
        if batch == 1:
            ce_type, body = pool[k % len(pool)]
            return (
                "/",
                body,
                {
                    "Content-Type": "application/json",
                    "ce-specversion": "1.0",
                    "ce-id": f"{args.prefix}{k}",
                    "ce-source": "/bench/loadgen",
                    "ce-type": ce_type,
                },
            )
        items = b",".join(pool[(k * batch + j) % len(pool)][1] for j in range(batch))
        headers = {"Content-Type": "application/json", "X-Request-ID": f"{args.prefix}{k}"}
        return "/api/v2/ingest", b"[" + items + b"]", headers

    def worker() -> None:
        conn = http.client.HTTPConnection(host, port, timeout=30)
        mine: list[float] = []
        failed = 0
        while True:
            k = next(counter)
            if k >= total:
                break
            due = start + k * interval
            pause = due - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            path, body, headers = request(k)
            try:
                conn.request("POST", path, body=body, headers=headers)
                response = conn.getresponse()
                response.read()
                if not 200 <= response.status < 300:
                    failed += 1
            except (OSError, http.client.HTTPException):
                failed += 1
                conn.close()
                conn = http.client.HTTPConnection(host, port, timeout=30)
            mine.append(time.monotonic() - due)
        conn.close()
        with lock:
            latencies.extend(mine)
            errors[0] += failed

    threads = [threading.Thread(target=worker) for _ in range(args.connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.monotonic() - start
    print(
        orjson.dumps(
            {
                "requests": len(latencies),
                "events": len(latencies) * batch,
                "errors": errors[0],
                "seconds": seconds,
                "offered_rate": len(latencies) * batch / seconds if seconds > 0 else 0.0,
                "p50_ms": percentile(latencies, 50) * 1000,
                "p99_ms": percentile(latencies, 99) * 1000,
            }
        ).decode(),
        flush=True,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
