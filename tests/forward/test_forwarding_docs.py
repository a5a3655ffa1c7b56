"""docs/forwarding.md is true: every example loads, and delivers what the page shows.

What the page promises, and this test holds it to:

- every fenced ```yaml block is a complete ``MUTT_FORWARD_CONFIG`` file;
- an ```http block (HTTP sinks) or ```json block (file, stdout) right after a
  one-sink ```yaml block shows what that sink sends for the sample alert
  (``tests.support.vendor.make_alert``): the request line, every header that
  carries meaning, and the body; for file and stdout, the line written;
- in those blocks ``<secret NAME>`` is the value of secret NAME, and any other
  ``<...>`` stands for something that varies (a time, a signature): a string
  that is only a placeholder matches any value, one that contains a
  placeholder matches any text in its place; everything else must be equal,
  key for key;
- the table after the last ```yaml block says which sinks each alert reaches;
- the schema tables name every key the configuration models accept, and the
  severity table is the sinks' real mapping.

How an example reaches the stand-in vendor. Each ```yaml block is first
loaded *unchanged* with ``load_config``, the reader of ``MUTT_FORWARD_CONFIG``,
so the file a reader copies is valid as written. For delivery the parsed
document is then re-aimed and written to a file: each HTTP sink's ``url``
keeps its path and query but gets the scheme, host and port of the
``VendorServer`` on 127.0.0.1 (a sink without ``url`` gets its type's default
URL re-aimed the same way, so PagerDuty's ``/v2/enqueue`` path is still
checked), and a file sink's ``path`` moves into ``tmp_path`` under the same
file name. ``MUTT_FORWARD_CONFIG`` and ``MUTT_SECRETS_DIR`` (one file per
``*_secret`` the example names, with a generated value) go through
``load_settings`` like the environment of a real process, and the handler is
built by ``make_forward_handler``, as ``mutt worker forward`` and the HTTP
function build it, against this test's Redis namespace.
"""

from __future__ import annotations

import base64
import copy
import json
import re
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args
from urllib.parse import urlsplit, urlunsplit

import pytest
import yaml
from cloudevents.http import CloudEvent
from pydantic import BaseModel

from functions.forward.config import ForwardConfig, load_config
from functions.forward.delivery import Deliverer
from functions.forward.handler import make_forward_handler
from functions.forward.routing import Route, RouteMatch
from functions.forward.sinks import severity
from functions.forward.sinks.registry import SinkConfig
from functions.forward.sinks.webhook import verify_signature
from shared.config import Settings, load_settings
from shared.context import Context
from shared.envelope import make_event
from shared.models import TYPE_ALERT, TYPE_DELIVERED, Alert, Delivery, Handling, Severity
from tests.support.vendor import Recorded, VendorServer, make_alert

DOC = Path(__file__).resolve().parents[2] / "docs" / "forwarding.md"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.M | re.S)
SECRET = re.compile(r"<secret ([a-z][a-z0-9_]*)>")
PLACEHOLDER = re.compile(r"<[^<>]*>")
# Headers every HTTP client sends; the others must all be on the page.
TRANSPORT_HEADERS = frozenset(
    {"host", "content-length", "accept-encoding", "user-agent", "connection"}
    | {"traceparent", "tracestate"}
)

# type -> its configuration model, from the registry's union (a new sink type
# without an example on the page fails test_every_sink_type_has_an_example).
MODELS: dict[str, type[BaseModel]] = {
    get_args(model.model_fields["type"].annotation)[0]: model
    for model in get_args(get_args(SinkConfig)[0])
}


@dataclass(frozen=True)
class Block:
    lang: str
    text: str
    line: int


@dataclass(frozen=True)
class Example:
    """A ```yaml block and what follows it, up to the next ```yaml block."""

    config: Block
    sends: Block | None  # the ```http or ```json block documenting the request
    after: str  # the page text after the config block, up to the next one


def blocks(text: str) -> list[Block]:
    return [Block(m[1], m[2], text.count("\n", 0, m.start()) + 1) for m in FENCE.finditer(text)]


def examples() -> list[Example]:
    text = DOC.read_text()
    found = blocks(text)
    configs = [b for b in found if b.lang == "yaml"]
    lines = text.splitlines(keepends=True)
    result = []
    for n, config in enumerate(configs):
        end = configs[n + 1].line if n + 1 < len(configs) else len(lines) + 1
        sends = [b for b in found if b.lang in ("http", "json") and config.line < b.line < end]
        assert len(sends) <= 1, f"forwarding.md:{config.line}: several request blocks"
        after = "".join(lines[config.line : end - 1])
        result.append(Example(config, sends[0] if sends else None, after))
    return result


EXAMPLES = examples()
DELIVERED = [e for e in EXAMPLES if e.sends is not None]


def doc_id(example: Example) -> str:
    return f"line{example.config.line}"


def secret_names(doc: dict[str, Any]) -> set[str]:
    return {
        str(value)
        for sink in doc["sinks"]
        for key, value in sink.items()
        if key.endswith("_secret") and value
    }


def aimed_at(doc: dict[str, Any], vendor_url: str, tmp_path: Path) -> dict[str, Any]:
    """The document with its HTTP sinks sent to the vendor and its files under tmp_path."""
    doc = copy.deepcopy(doc)
    vendor = urlsplit(vendor_url)
    for sink in doc["sinks"]:
        fields = MODELS[sink["type"]].model_fields
        if "url" in fields and "url" not in sink:
            sink["url"] = fields["url"].default
        if "url" in sink:
            url = urlsplit(sink["url"])
            sink["url"] = urlunsplit((vendor.scheme, vendor.netloc, url.path, url.query, ""))
        if sink["type"] == "file":
            sink["path"] = str(tmp_path / Path(sink["path"]).name)
    return doc


@dataclass
class Built:
    handler: Deliverer
    secrets: dict[str, str]
    doc: dict[str, Any]


def build(example: Example, settings: Settings, vendor: VendorServer, tmp_path: Path) -> Built:
    """The forward handler a process would build from this example, re-aimed."""
    doc = yaml.safe_load(example.config.text)
    secrets_dir = tmp_path / "secrets"
    secrets_dir.mkdir(exist_ok=True)
    secrets = {name: f"{name}-{uuid.uuid4().hex[:12]}" for name in secret_names(doc)}
    for name, value in secrets.items():
        (secrets_dir / name).write_text(value + "\n")
    aimed = aimed_at(doc, vendor.url, tmp_path)
    path = tmp_path / "forward.yaml"
    path.write_text(yaml.safe_dump(aimed))
    process = load_settings(
        {"MUTT_FORWARD_CONFIG": str(path), "MUTT_SECRETS_DIR": str(secrets_dir)},
        redis_url=settings.redis_url,
        database_url=settings.database_url,
        namespace=settings.namespace,
        data_dir=settings.data_dir,
    )
    return Built(make_forward_handler(Context(process)), secrets, aimed)


def deliver(handler: Deliverer, alert: Alert) -> list[str]:
    """The sinks that accepted ``alert``, in order; nothing parked or dead-lettered."""
    ce = make_event(TYPE_ALERT, "/mutt/alert", alert, id=str(alert.alert_id))
    (outcome,) = handler.handle([ce])
    assert outcome.status == "ok", outcome.reason
    assert not outcome.later, [why for _, why in outcome.later]
    assert not outcome.dead, [why for _, why in outcome.dead]
    reports = [_delivery(r) for r in outcome.replies if r["type"] == TYPE_DELIVERED]
    assert all(r.outcome == "delivered" for r in reports), reports
    return [r.sink for r in reports]


def _delivery(ce: CloudEvent) -> Delivery:
    return Delivery.model_validate(ce.data)


# ---------------------------------------------------------------- matching


def with_secrets(text: str, secrets: dict[str, str]) -> str:
    def value(m: re.Match[str]) -> str:
        assert m[1] in secrets, f"<secret {m[1]}>: the example names no such secret"
        return secrets[m[1]]

    return SECRET.sub(value, text)


def text_matches(documented: str, actual: str, secrets: dict[str, str]) -> bool:
    expected = with_secrets(documented, secrets)
    parts = PLACEHOLDER.split(expected)
    pattern = ".+".join(re.escape(p) for p in parts)
    return re.fullmatch(pattern, actual, re.S) is not None


def mismatches(doc: Any, got: Any, secrets: dict[str, str], where: str = "") -> list[str]:
    """Where ``got`` differs from the documented ``doc`` (empty: it matches)."""
    if isinstance(doc, str):
        expected = with_secrets(doc, secrets)
        if PLACEHOLDER.fullmatch(expected):
            return []  # a value that varies, or is shown elsewhere
        ok = isinstance(got, str) and text_matches(doc, got, secrets)
        return [] if ok else [f"{where or '/'}: documented {doc!r}, sent {got!r}"]
    if isinstance(doc, dict) and isinstance(got, dict):
        problems = []
        if doc.keys() != got.keys():
            problems.append(f"{where or '/'}: documented keys {sorted(doc)}, sent {sorted(got)}")
        for key in doc.keys() & got.keys():
            problems += mismatches(doc[key], got[key], secrets, f"{where}/{key}")
        return problems
    if isinstance(doc, list) and isinstance(got, list) and len(doc) == len(got):
        problems = []
        for n, (d, g) in enumerate(zip(doc, got, strict=True)):
            problems += mismatches(d, g, secrets, f"{where}/{n}")
        return problems
    if doc == got and type(doc) is type(got):
        return []
    return [f"{where or '/'}: documented {doc!r}, sent {got!r}"]


@dataclass(frozen=True)
class DocumentedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


def parse_http(block: Block) -> DocumentedRequest:
    head, _, body = block.text.partition("\n\n")
    request_line, *header_lines = head.splitlines()
    method, path, version = request_line.split(" ")
    assert version == "HTTP/1.1", f"forwarding.md:{block.line}: {request_line!r}"
    headers = dict(line.split(": ", 1) for line in header_lines)
    return DocumentedRequest(method, path, headers, json.loads(body))


def check_request(block: Block, req: Recorded, secrets: dict[str, str]) -> list[str]:
    documented = parse_http(block)
    problems = []
    if (req.method, req.path) != (documented.method, documented.path):
        problems.append(f"sent {req.method} {req.path}, documented {documented.method} ...")
    sent = {name.lower() for name in req.headers} - TRANSPORT_HEADERS
    shown = {name.lower() for name in documented.headers}
    if sent != shown:
        problems.append(f"headers sent {sorted(sent)}, documented {sorted(shown)}")
    for name, value in documented.headers.items():
        actual = req.headers.get(name)
        if actual is None or not text_matches(value, actual, secrets):
            problems.append(f"header {name}: documented {value!r}, sent {actual!r}")
    return problems + mismatches(documented.body, req.json(), secrets)


# ---------------------------------------------------------------- the page itself


def test_the_page_has_the_examples_it_promises() -> None:
    assert len(EXAMPLES) >= len(MODELS) + 2  # one per type, the schema, the combined one
    for example in EXAMPLES:
        if example.sends is not None:
            doc = yaml.safe_load(example.config.text)
            assert len(doc["sinks"]) == 1, f"forwarding.md:{example.config.line}"


@pytest.mark.parametrize("example", EXAMPLES, ids=doc_id)
def test_every_yaml_example_loads_as_written(example: Example, tmp_path: Path) -> None:
    path = tmp_path / "forward.yaml"
    path.write_text(example.config.text)
    config = load_config(path)
    assert config.sinks


def test_every_sink_type_has_an_example() -> None:
    shown = {yaml.safe_load(e.config.text)["sinks"][0]["type"] for e in DELIVERED}
    assert shown == set(MODELS)
    for example in DELIVERED:
        kind = yaml.safe_load(example.config.text)["sinks"][0]["type"]
        assert example.sends is not None
        assert example.sends.lang == ("json" if kind in ("file", "stdout") else "http"), kind


def test_every_configuration_key_is_documented() -> None:
    text = DOC.read_text()
    keys = set(ForwardConfig.model_fields) | {
        (field.alias or name) for name, field in Route.model_fields.items()
    }
    keys |= {f"match.{name}" for name in RouteMatch.model_fields}
    for model in MODELS.values():
        keys |= set(model.model_fields)
    missing = sorted(k for k in keys if f"| `{k}` |" not in text)
    assert missing == []


def test_the_severity_table_is_the_sinks_mapping() -> None:
    text = DOC.read_text()
    start = text.index("| syslog | moogsoft | servicenow | pagerduty | alertmanager |")
    rows = [
        [cell.strip() for cell in line.strip("|").split("|")]
        for line in text[start:].splitlines()[2:]
        if line.startswith("|")
    ]
    rows = rows[: len(Severity)]
    assert [r[0] for r in rows] == [f"{int(s)} {s.label}" for s in Severity]
    for row, level in zip(rows, Severity, strict=True):
        assert row[1:] == [
            str(severity.moogsoft(level)),
            f'"{severity.servicenow(level)}"',
            severity.pagerduty(level),
            severity.alertmanager(level),
        ], row


# ---------------------------------------------------------------- delivery


@pytest.mark.parametrize("example", DELIVERED, ids=doc_id)
def test_each_sink_example_sends_what_the_page_shows(
    example: Example,
    settings: Settings,
    vendor: VendorServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert example.sends is not None
    built = build(example, settings, vendor, tmp_path)
    (sink,) = built.doc["sinks"]
    alert = make_alert()
    capsys.readouterr()

    assert deliver(built.handler, alert) == [sink["name"]]

    if example.sends.lang == "http":
        (req,) = vendor.requests
        assert check_request(example.sends, req, built.secrets) == []
        extra_checks(sink, req, built.secrets)
        return
    assert vendor.requests == []
    if sink["type"] == "file":
        written = Path(sink["path"]).read_text().splitlines()
    else:
        written = [line for line in capsys.readouterr().out.splitlines() if line.strip()]
    (line,) = written
    got = json.loads(line)
    assert mismatches(json.loads(example.sends.text), got, built.secrets) == []
    assert got["alert"] == alert.model_dump(mode="json")


def extra_checks(sink: dict[str, Any], req: Recorded, secrets: dict[str, str]) -> None:
    """What placeholders on the page stand for, checked where they can be."""
    if sink["type"] == "servicenow":
        password = secrets[sink["password_secret"]]
        token = base64.b64encode(f"{sink['username']}:{password}".encode()).decode()
        assert req.headers["Authorization"] == f"Basic {token}"
        (record,) = req.json()["records"]
        info = json.loads(record["additional_info"])
        assert {"handling", "team", "environment", "rule_id", "alert_id", "event"} <= set(info)
    if sink["type"] == "webhook" and sink.get("signing_key_secret"):
        key = secrets[sink["signing_key_secret"]]
        assert verify_signature(key, req.body, req.headers["X-MUTT-Signature"])
        assert req.json() == make_alert().model_dump(mode="json")


def routing_table(after: str) -> list[tuple[Alert, list[str]]]:
    """The rows of the table following the combined example, as (alert, sinks)."""
    header = "| team | handling | environment | severity | sinks |"
    assert header in after, "the combined example has no routing table"
    lines = after[after.index(header) :].splitlines()[2:]
    rows = []
    for n, line in enumerate(lines):
        if not line.startswith("|"):
            break
        team, handling, environment, level, sinks = (c.strip() for c in line.strip("|").split("|"))
        base = make_alert(Severity(int(level)), ce_id=f"row-{n}")
        alert = Alert.model_validate(
            {
                **base.model_dump(),
                "team": team,
                "handling": Handling(handling),
                "environment": environment,
            }
        )
        rows.append((alert, [s.strip() for s in sinks.split(",")]))
    return rows


def test_the_combined_example_routes_as_its_table_says(
    settings: Settings, vendor: VendorServer, tmp_path: Path
) -> None:
    combined = EXAMPLES[-1]
    rows = routing_table(combined.after)
    assert len(rows) >= 5
    built = build(combined, settings, vendor, tmp_path)
    reached: set[str] = set()
    for alert, expected in rows:
        sinks = deliver(built.handler, alert)
        assert sinks == expected, (alert.team, alert.handling, alert.environment, alert.severity)
        reached |= set(sinks)
    assert reached == {s["name"] for s in built.doc["sinks"]}  # the table shows every sink
    files = {s["name"] for s in built.doc["sinks"] if s["type"] == "file"}
    assert len(vendor.requests) == sum(len(set(sinks) - files) for _, sinks in rows)
