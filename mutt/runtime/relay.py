"""The relay: a stream consumer that delivers each entry by HTTP POST.

On Knative the functions scale to zero and cannot hold a consumer group, so
an always-on relay reads the stream and POSTs each entry as a binary-mode
CloudEvent to the function's URL. It plugs into ``StreamWorker`` as a
handler, so it inherits the same guarantees: acknowledge only after a 2xx,
replies published to the next stream in the same transaction, transient
failures retried later, entries dead-lettered after ``max_deliveries``.
eventing-redis' RedisStreamSource is not used because it acknowledges
entries whose delivery failed (see docs/deploy-knative.md).
"""

from __future__ import annotations

from collections.abc import Sequence

import orjson
import requests
from cloudevents.exceptions import GenericException
from cloudevents.http import CloudEvent, from_http, to_binary

from shared.envelope import EnvelopeError, decode
from shared.handler import Outcome

RETRYABLE = frozenset({408, 425, 429})


class RelayHandler:
    """Delivers events to ``url``; the HTTP answer decides the outcome."""

    def __init__(self, stage: str, url: str, timeout: float = 30.0) -> None:
        self.stage = stage
        self.url = url
        self.timeout = timeout
        self._http = requests.Session()

    def handle(self, events: Sequence[CloudEvent]) -> list[Outcome]:
        return [self._deliver(event) for event in events]

    def _deliver(self, event: CloudEvent) -> Outcome:
        headers, body = to_binary(event)
        try:
            resp = self._http.post(self.url, data=body, headers=headers, timeout=self.timeout)
        except requests.RequestException as exc:
            return Outcome.retry(f"POST {self.url} failed: {type(exc).__name__}: {exc}")
        status = resp.status_code
        if status == 202 or (status in (200, 204) and not resp.content):
            return Outcome.ok()
        if 200 <= status < 300:
            return self._replies(resp)
        detail = f"POST {self.url} answered {status}: {resp.text[:500]}"
        if status in RETRYABLE or status >= 500:
            return Outcome.retry(detail)
        return Outcome.reject(detail)

    def _replies(self, resp: requests.Response) -> Outcome:
        ctype = resp.headers.get("content-type", "")
        try:
            if ctype.startswith("application/cloudevents-batch+json"):
                docs = resp.json()
                if not isinstance(docs, list):
                    raise EnvelopeError("batch reply is not a JSON array")
                return Outcome.ok(*[decode(orjson.dumps(d)) for d in docs])
            return Outcome.ok(from_http(dict(resp.headers), resp.content))
        except (GenericException, EnvelopeError, ValueError) as exc:
            return Outcome.reject(f"function replied with an invalid CloudEvent: {exc}")
