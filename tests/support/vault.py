"""A local HTTP server implementing exactly the Vault endpoints MUTT uses.

- ``POST /v1/auth/approle/login`` {role_id, secret_id}
  → {auth: {client_token, lease_duration, renewable}}
- ``POST /v1/auth/token/renew-self`` (X-Vault-Token) → {auth: {client_token, lease_duration}}
- ``GET  /v1/<mount>/data/<path>`` (X-Vault-Token) → {data: {data: {...}, metadata: {...}}}

Tokens expire after ``lease`` seconds; an expired or unknown token gets 403,
as Vault answers ("permission denied"). Everything is recorded for asserts.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class VaultStub:
    def __init__(
        self, role_id: str, secret_id: str, data: dict[str, str], lease: float = 60
    ) -> None:
        self.role_id, self.secret_id, self.data, self.lease = role_id, secret_id, data, lease
        self.tokens: dict[str, float] = {}
        self.calls: list[str] = []
        self.revoke_all = False
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def _json(self, status: int, doc: dict[str, Any]) -> None:
                body = json.dumps(doc).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _token_ok(self) -> bool:
                token = self.headers.get("X-Vault-Token", "")
                return token in stub.tokens and stub.tokens[token] > time.monotonic()

            def _body(self) -> dict[str, Any]:
                n = int(self.headers.get("Content-Length") or 0)
                return json.loads(self.rfile.read(n) or b"{}")

            def _issue(self) -> str:
                token = f"s.{len(stub.tokens)}"
                stub.tokens[token] = time.monotonic() + stub.lease
                return token

            def do_POST(self) -> None:
                stub.calls.append(f"POST {self.path}")
                if self.path == "/v1/auth/approle/login":
                    b = self._body()
                    if b.get("role_id") != stub.role_id or b.get("secret_id") != stub.secret_id:
                        self._json(400, {"errors": ["invalid role or secret ID"]})
                        return
                    self._json(
                        200,
                        {
                            "auth": {
                                "client_token": self._issue(),
                                "lease_duration": stub.lease,
                                "renewable": True,
                            }
                        },
                    )
                elif self.path == "/v1/auth/token/renew-self":
                    if not self._token_ok():
                        self._json(403, {"errors": ["permission denied"]})
                        return
                    token = self.headers["X-Vault-Token"]
                    stub.tokens[token] = time.monotonic() + stub.lease
                    self._json(200, {"auth": {"client_token": token, "lease_duration": stub.lease}})
                else:
                    self._json(404, {"errors": []})

            def do_GET(self) -> None:
                stub.calls.append(f"GET {self.path}")
                if stub.revoke_all:
                    stub.tokens.clear()
                    stub.revoke_all = False
                if not self._token_ok():
                    self._json(403, {"errors": ["permission denied"]})
                elif self.path == "/v1/secret/data/mutt":
                    self._json(200, {"data": {"data": dict(stub.data), "metadata": {"version": 1}}})
                else:
                    self._json(404, {"errors": []})

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> VaultStub:
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
            self._server.server_close()
