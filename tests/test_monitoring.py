"""The monitoring artefacts stay true to the code.

- Every metric the Grafana dashboard and the PrometheusRule query exists in the
  prometheus_client registry (or comes from ``StreamCollector``, asked against a
  real Redis), with the right exposition suffix; every label in a selector,
  grouping, legend or annotation exists on it; label values are ones the code
  emits.
- The PrometheusRule is structurally valid; ``promtool check rules`` and
  ``promtool test rules`` (monitoring/prometheus/mutt-rules.test.yaml) pass
  when promtool is installed.
- Every ``runbook_url`` anchor is a heading of docs/runbook.md whose section
  names the alert; the ``mutt`` commands in the runbook parse.
- The metrics table of docs/observability.md lists exactly the registered
  metrics. After adding or changing a metric, regenerate it with
  ``.venv/bin/python -m tests.test_monitoring``.
"""

from __future__ import annotations

import ast
import functools
import importlib
import json
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, Summary
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.metrics_core import Metric

from shared.broker.keys import GROUP_ALERT, GROUP_AUDIT, GROUP_FORWARD, Keys

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "monitoring" / "prometheus" / "mutt-rules.yaml"
RULES_TEST = ROOT / "monitoring" / "prometheus" / "mutt-rules.test.yaml"
DASHBOARD = ROOT / "monitoring" / "grafana" / "mutt-dashboard.json"
OBSERVABILITY = ROOT / "docs" / "observability.md"
RUNBOOK = ROOT / "docs" / "runbook.md"
CODE_DIRS = ("shared", "functions", "mutt")
TABLE_BEGIN = "<!-- metrics-table:begin -->"
TABLE_END = "<!-- metrics-table:end -->"
# Labels Prometheus adds at scrape time; the rule unit tests may use them.
TARGET_LABELS = frozenset({"pod", "instance", "job", "namespace", "container"})
RUNBOOK_PREFIX = "docs/runbook.md#"

# ------------------------------------------------------------------ the metrics


@dataclass(frozen=True)
class Family:
    """One metric family as registered: the name without suffixes, its type and labels."""

    name: str
    type: str
    labels: tuple[str, ...]
    help: str

    def exposed(self) -> dict[str, frozenset[str]]:
        """The sample names Prometheus scrapes for this family, with their labels."""
        labels = frozenset(self.labels)
        if self.type == "counter":
            return {f"{self.name}_total": labels, f"{self.name}_created": labels}
        if self.type == "histogram":
            return {
                f"{self.name}_bucket": labels | {"le"},
                f"{self.name}_sum": labels,
                f"{self.name}_count": labels,
                f"{self.name}_created": labels,
            }
        if self.type == "summary":  # prometheus_client's summaries have no quantiles
            return {
                f"{self.name}_sum": labels,
                f"{self.name}_count": labels,
                f"{self.name}_created": labels,
            }
        if self.type == "info":
            return {f"{self.name}_info": labels}
        return {self.name: labels}

    @property
    def query_name(self) -> str:
        """The name to write in PromQL (histograms: add _bucket, _sum or _count)."""
        return f"{self.name}_total" if self.type == "counter" else self.name


def _defines_metrics(path: Path) -> bool:
    text = path.read_text()
    return "prometheus_client" in text and bool(
        re.search(r"\b(?:Counter|Gauge|Histogram|Summary|Info|Enum)\(\s*\"mutt_", text)
    )


def metric_modules() -> list[str]:
    """Every module of the code that defines prometheus_client metrics, shared.metrics first."""
    found = []
    for top in CODE_DIRS:
        for path in sorted((ROOT / top).rglob("*.py")):
            if _defines_metrics(path):
                found.append(".".join(path.relative_to(ROOT).with_suffix("").parts))
    return sorted(found, key=lambda m: (m != "shared.metrics", m))


def defined_families() -> list[Family]:
    """The metric objects of those modules (importing them registers them), in order."""
    families: list[Family] = []
    seen: set[int] = set()
    for name in metric_modules():
        module = importlib.import_module(name)
        for value in vars(module).values():
            if isinstance(value, MetricWrapperBase) and id(value) not in seen:
                seen.add(id(value))
                # prometheus_client keeps no public accessor for a family's label names.
                families.append(
                    Family(value._name, value._type, tuple(value._labelnames), value._documentation)
                )
    return families


def collector_families() -> list[Family]:
    """The gauges ``StreamCollector.collect`` builds, read from its source."""
    from shared import metrics

    tree = ast.parse(Path(metrics.__file__).read_text())
    collector = next(
        n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "StreamCollector"
    )
    families = []
    for node in ast.walk(collector):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "GaugeMetricFamily"
        ):
            name, doc = (ast.literal_eval(a) for a in node.args[:2])
            labels = next(ast.literal_eval(k.value) for k in node.keywords if k.arg == "labels")
            families.append(Family(name, "gauge", tuple(labels), doc))
    return families


def all_families() -> list[Family]:
    """What the metrics table documents: registered metrics, then the stream collector's."""
    defined = defined_families()
    from_metrics = [f for f in defined if f.name.startswith("mutt_")]
    head = [f for f in from_metrics if not f.name.startswith("mutt_source_")]
    tail = [f for f in from_metrics if f.name.startswith("mutt_source_")]
    return head + collector_families() + tail


def metrics_table(families: list[Family]) -> str:
    lines = ["| metric | type | labels | meaning |", "|---|---|---|---|"]
    for f in families:
        labels = ", ".join(f"`{label}`" for label in f.labels) or "-"
        lines.append(f"| `{f.query_name}` | {f.type} | {labels} | {f.help} |")
    return "\n".join(lines)


def render_observability(text: str) -> str:
    head, begin, rest = text.partition(TABLE_BEGIN)
    _, end, tail = rest.partition(TABLE_END)
    assert begin and end, f"{OBSERVABILITY.name} lacks {TABLE_BEGIN} / {TABLE_END}"
    return f"{head}{TABLE_BEGIN}\n{metrics_table(all_families())}\n{TABLE_END}{tail}"


@functools.cache
def source_literals() -> frozenset[str]:
    """Every string literal of the code: the label values it can emit come from these."""
    values: set[str] = set()
    for top in CODE_DIRS:
        for path in (ROOT / top).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Constant) and isinstance(node.value, str):
                    values.add(node.value)
    return frozenset(values)


# ------------------------------------------------------------------ PromQL


_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)
  | (?P<range>\[[^\]]*\])
  | (?P<number>(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?[a-zA-Z]*)
  | (?P<var>\$\{[^}]*\}|\$\w+)
  | (?P<ident>[A-Za-z_:][A-Za-z0-9_:]*)
  | (?P<op>=~|!~|==|!=|>=|<=|[-+*/%^<>=(){},@])
    """,
    re.X,
)
AGGREGATORS = frozenset(
    {"sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values",
     "bottomk", "topk", "quantile", "limitk", "limit_ratio"}
)  # fmt: skip
GROUPING = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right"})
KEYWORDS = frozenset({"and", "or", "unless", "bool", "offset", "atan2", "inf", "nan"})


@dataclass
class Selector:
    metric: str | None
    matchers: list[tuple[str, str, str]] = field(default_factory=list)


@dataclass
class Query:
    """What one PromQL expression names: selectors, grouping labels, top-level shape."""

    expr: str
    selectors: list[Selector]
    grouping: list[str]
    first: str


def tokens(expr: str) -> list[tuple[str, str]]:
    out = []
    pos = 0
    while pos < len(expr):
        m = _TOKEN.match(expr, pos)
        if m is None:
            raise ValueError(f"cannot read PromQL at {expr[pos : pos + 20]!r} in {expr!r}")
        pos = m.end()
        kind = m.lastgroup
        assert kind is not None
        if kind != "ws":
            out.append((kind, m.group()))
    return out


def _unquote(raw: str) -> str:
    return raw[1:-1] if raw[0] == "`" else str(ast.literal_eval(raw))


def parse(expr: str) -> Query:
    toks = tokens(expr)
    selectors: list[Selector] = []
    grouping: list[str] = []
    i = 0

    def matchers(j: int, sel: Selector) -> int:
        """Read ``{label op "value", ...}`` from the ``{`` at j; return the index after ``}``."""
        j += 1
        while toks[j][1] != "}":
            label, op, value = toks[j], toks[j + 1], toks[j + 2]
            assert label[0] == "ident" and op[0] == "op" and value[0] == "string", expr
            sel.matchers.append((label[1], op[1], _unquote(value[1])))
            j += 3
            if toks[j][1] == ",":
                j += 1
        return j + 1

    while i < len(toks):
        kind, text = toks[i]
        after = toks[i + 1][1] if i + 1 < len(toks) else ""
        if kind == "ident" and text in GROUPING:
            i += 1
            if after == "(":
                i += 1
                while toks[i][1] != ")":
                    if toks[i][0] == "ident":
                        grouping.append(toks[i][1])
                    i += 1
                i += 1
        elif kind == "ident" and text.lower() in KEYWORDS:
            i += 2 if text == "offset" else 1
        elif kind == "ident" and (after == "(" or text in AGGREGATORS):
            i += 1  # a function or an aggregation
        elif kind == "ident":
            sel = Selector(text)
            selectors.append(sel)
            i = matchers(i + 1, sel) if after == "{" else i + 1
        elif text == "{":
            sel = Selector(None)
            selectors.append(sel)
            i = matchers(i, sel)
            sel.metric = next((v for k, _, v in sel.matchers if k == "__name__"), None)
        else:
            i += 1
    return Query(expr, selectors, grouping, toks[0][1] if toks else "")


# ------------------------------------------------------------------ the catalogue


@dataclass
class Catalog:
    """Exposed sample names with their labels, recorded series, and known label values."""

    exposed: dict[str, frozenset[str]]
    values: frozenset[str]
    records: dict[str, frozenset[str]] = field(default_factory=dict)

    def labels_of(self, name: str) -> frozenset[str] | None:
        if ":" in name:
            return self.records.get(name)
        return self.exposed.get(name)

    def input_labels(self, q: Query) -> frozenset[str]:
        out: set[str] = set()
        for sel in q.selectors:
            out |= self.labels_of(sel.metric or "") or frozenset()
        return frozenset(out)

    def output_labels(self, q: Query) -> frozenset[str]:
        """Labels the result can carry (an upper bound: good enough to catch typos)."""
        if q.first == "histogram_quantile":
            return frozenset(q.grouping) - {"le"}
        if q.grouping:
            return frozenset(q.grouping)
        if q.first in AGGREGATORS:
            return frozenset()
        return self.input_labels(q)

    def value_known(self, label: str, value: str) -> bool:
        if "$" in value or label == "le":
            return True  # a Grafana variable, or a bucket bound
        if label == "code":
            return re.fullmatch(r"\d{3}", value) is not None
        if label == "rule_id":
            return value.isdigit()
        return value in self.values

    def problems(self, q: Query, where: str) -> list[str]:
        found = []
        for sel in q.selectors:
            name = sel.metric
            if name is None:
                found.append(f"{where}: a selector without a metric name in {q.expr!r}")
                continue
            labels = self.labels_of(name)
            if labels is None:
                kind = "recording rule" if ":" in name else "metric"
                found.append(f"{where}: no {kind} {name!r} (in {q.expr!r})")
                continue
            for label, op, value in sel.matchers:
                if label != "__name__" and label not in labels:
                    found.append(f"{where}: {name} has no label {label!r} (has {sorted(labels)})")
                    continue
                alternatives = [value]
                if op in ("=~", "!~"):
                    if not re.fullmatch(r"\w+(?:\|\w+)*", value):
                        continue  # a real regex (5.., .*): not checked
                    alternatives = value.split("|")
                for v in alternatives:
                    if not self.value_known(label, v):
                        found.append(f"{where}: {name}{{{label}}} is never {v!r}")
        available = self.input_labels(q)
        for label in q.grouping:
            if label not in available:
                found.append(f"{where}: groups by {label!r}, which no series in {q.expr!r} has")
        return found


def load_rules() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(RULES.read_text())
    return doc


def rules_of(doc: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for group in doc["spec"]["groups"]:
        yield from group["rules"]


def load_dashboard() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return doc


def panels_of(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])  # collapsed rows hold their panels


@pytest.fixture
def stream_metrics(r: redis.Redis, keys: Keys) -> list[Metric]:
    """What ``StreamCollector.collect`` yields against real Redis, every group in place."""
    from shared.metrics import StreamCollector

    for stream, group in (
        (keys.events, GROUP_ALERT),
        (keys.alerts, GROUP_FORWARD),
        (keys.audit, GROUP_AUDIT),
    ):
        r.xgroup_create(stream, group, id="0", mkstream=True)
    found = list(StreamCollector(r, keys).collect())
    assert found, "StreamCollector reported nothing: Redis refused it"
    return found


@pytest.fixture
def catalog(stream_metrics: list[Metric]) -> Catalog:
    exposed: dict[str, frozenset[str]] = {}
    registered = {m.name: m.type for m in REGISTRY.collect()}
    for fam in defined_families():
        assert registered.get(fam.name) == fam.type, f"{fam.name} is not in the registry"
        exposed.update(fam.exposed())
    assert [m.name for m in stream_metrics] == [f.name for f in collector_families()]
    for fam in collector_families():
        exposed.update(fam.exposed())
    seen = {v for m in stream_metrics for s in m.samples for v in s.labels.values()}
    cat = Catalog(exposed, source_literals() | seen)
    for rule in rules_of(load_rules()):
        if "record" in rule:
            cat.records[rule["record"]] = cat.output_labels(parse(rule["expr"]))
    return cat


# ------------------------------------------------------------------ tests: metrics


def test_suffix_rules_match_prometheus_client() -> None:
    """Family.exposed() says what prometheus_client really exposes for each type."""
    registry = CollectorRegistry()
    made = [
        Counter("t_c_total", "c", ["a"], registry=registry),
        Gauge("t_g", "g", ["a"], registry=registry),
        Histogram("t_h_seconds", "h", ["a"], registry=registry),
        Summary("t_s_seconds", "s", ["a"], registry=registry),
    ]
    made[0].labels("x").inc()
    made[1].labels("x").set(1)
    made[2].labels("x").observe(1)
    made[3].labels("x").observe(1)
    for fam in registry.collect():
        expected = Family(fam.name, fam.type, ("a",), "").exposed()
        got = {s.name: frozenset(s.labels) for s in fam.samples}
        assert got == expected
    assert {fam.name for fam in registry.collect()} == {"t_c", "t_g", "t_h_seconds", "t_s_seconds"}


def test_stream_collector_yields_what_its_source_says(
    stream_metrics: list[Metric], r: redis.Redis
) -> None:
    info: Any = r.info("server")
    lag_reported = int(str(info["redis_version"]).split(".")[0]) >= 7
    from_source = {f.name: f for f in collector_families()}
    assert [m.name for m in stream_metrics] == list(from_source)
    for metric in stream_metrics:
        assert metric.type == "gauge"
        assert metric.documentation == from_source[metric.name].help
        # XINFO GROUPS reports lag from Redis 7 on (the embedded Redis is 6.2).
        if metric.name != "mutt_stream_lag" or lag_reported:
            assert metric.samples, f"{metric.name}: no sample with every group in place"
        for sample in metric.samples:
            assert tuple(sample.labels) == from_source[metric.name].labels, metric.name


def test_metric_names_follow_the_convention() -> None:
    for fam in all_families():
        assert fam.name.startswith("mutt_"), fam.name
        assert not fam.name.endswith("_total"), f"{fam.name}: the registry strips _total"
        if fam.type == "histogram":
            assert fam.name.endswith("_seconds"), f"{fam.name}: histograms measure seconds"


def test_observability_doc_lists_exactly_the_registered_metrics() -> None:
    text = OBSERVABILITY.read_text()
    documented = re.findall(r"^\| `(mutt_\w+)` \|", text.partition(TABLE_BEGIN)[2], re.M)
    registered = {m.name for m in REGISTRY.collect() if m.name.startswith("mutt_")}
    expected = [f.query_name for f in all_families()]
    # Registered by shared.metrics & co (the stream gauges only when a process watches streams).
    assert {f.name for f in defined_families() if f.name.startswith("mutt_")} <= registered
    assert sorted(documented) == sorted(expected)
    assert render_observability(text) == text, "run: .venv/bin/python -m tests.test_monitoring"


# ------------------------------------------------------------------ tests: rules


def test_prometheus_rule_is_structurally_valid() -> None:
    doc = load_rules()
    assert doc["apiVersion"] == "monitoring.coreos.com/v1"
    assert doc["kind"] == "PrometheusRule"
    assert doc["metadata"]["name"]
    groups = doc["spec"]["groups"]
    assert groups and len({g["name"] for g in groups}) == len(groups)
    names: set[str] = set()
    for group in groups:
        assert set(group) <= {"name", "interval", "rules", "limit", "partial_response_strategy"}
        assert group["rules"], group["name"]
        for rule in group["rules"]:
            assert isinstance(rule.get("expr"), str) and rule["expr"].strip(), rule
            if "record" in rule:
                assert set(rule) <= {"record", "expr", "labels"}, rule["record"]
                assert re.fullmatch(r"[a-z_]+:[a-z0-9_]+:[a-z0-9_]+", rule["record"]), rule
                continue
            name = rule.get("alert")
            assert name and re.fullmatch(r"Mutt[A-Za-z0-9]+", name), rule
            assert name not in names, f"{name} defined twice"
            names.add(name)
            assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, name
            assert re.fullmatch(r"\d+[smhd]", str(rule.get("for", ""))), f"{name}: no `for`"
            assert rule["labels"]["severity"] in ("critical", "warning", "info"), name
            notes = rule["annotations"]
            assert {"summary", "description", "runbook_url"} <= set(notes), name
            assert notes["runbook_url"].partition("#")[0].endswith("docs/runbook.md"), name


def test_rules_name_real_metrics_labels_and_values(catalog: Catalog) -> None:
    problems = []
    for rule in rules_of(load_rules()):
        where = rule.get("record") or rule["alert"]
        q = parse(rule["expr"])
        problems += catalog.problems(q, where)
        if "alert" in rule:
            available = catalog.output_labels(q)
            for text in rule["annotations"].values():
                for label in re.findall(r"\$labels\.(\w+)", text):
                    if label not in available:
                        problems.append(f"{where}: annotation uses $labels.{label}")
    assert problems == []


def test_recording_rules_are_defined_before_use() -> None:
    """Within a group Prometheus evaluates in order: a later record would lag one interval."""
    defined: set[str] = set()
    for rule in rules_of(load_rules()):
        for sel in parse(rule["expr"]).selectors:
            if sel.metric and ":" in sel.metric:
                assert sel.metric in defined, f"{sel.metric} used before it is recorded"
        if "record" in rule:
            assert rule["record"] not in defined, f"{rule['record']} recorded twice"
            defined.add(rule["record"])


def _headings(markdown: str) -> dict[str, str]:
    """GitHub anchors of the headings -> the text of their section."""
    sections: dict[str, str] = {}
    prose = re.sub(r"^```.*?^```", "", markdown, flags=re.M | re.S)  # no headings in code
    parts = re.split(r"^(#{1,6} .*)$", prose, flags=re.M)
    for heading, body in zip(parts[1::2], parts[2::2], strict=True):
        title = heading.lstrip("#").strip().replace("`", "")
        anchor = re.sub(r"[^\w\- ]", "", title.lower()).replace(" ", "-")
        sections[anchor] = body
    return sections


def test_runbook_urls_point_to_sections_that_name_the_alert() -> None:
    sections = _headings(RUNBOOK.read_text())
    for rule in rules_of(load_rules()):
        if "alert" not in rule:
            continue
        url = rule["annotations"]["runbook_url"]
        assert RUNBOOK_PREFIX in url, url
        anchor = url.partition(RUNBOOK_PREFIX)[2]
        assert anchor in sections, f"{rule['alert']}: docs/runbook.md has no heading #{anchor}"
        assert rule["alert"] in sections[anchor], f"#{anchor} does not mention {rule['alert']}"


def test_every_alert_is_in_the_observability_doc() -> None:
    text = OBSERVABILITY.read_text()
    missing = [
        r["alert"] for r in rules_of(load_rules()) if "alert" in r and r["alert"] not in text
    ]
    assert missing == []


def test_links_between_these_docs_resolve() -> None:
    """``[..](runbook.md#x)``, ``(#x)`` and ``docs/x.md#y`` in the observability docs exist."""
    docs = [OBSERVABILITY, RUNBOOK, *sorted((ROOT / "docs" / "adr").glob("*.md"))]
    broken = []
    for doc in docs:
        text = doc.read_text()
        targets = [
            (doc.parent / f if f else doc, a)
            for f, a in re.findall(r"\]\(([\w./-]*)#([\w-]+)\)", text)
        ]
        targets += [
            (ROOT / "docs" / f, a) for f, a in re.findall(r"\bdocs/([\w./-]+\.md)#([\w-]+)", text)
        ]
        targets += [(doc.parent / f, "") for f in re.findall(r"\]\(([\w./-]+\.md)\)", text)]
        for target, anchor in targets:
            if not target.is_file():
                broken.append(f"{doc.name}: no file {target}")
            elif anchor and anchor not in _headings(target.read_text()):
                broken.append(f"{doc.name}: {target.name} has no heading #{anchor}")
    assert broken == []


def _bash_blocks(path: Path) -> list[list[str]]:
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", path.read_text(), re.S):
        for line in block.replace("\\\n", " ").splitlines():
            if line.strip() and not line.lstrip().startswith("#"):
                commands.append(shlex.split(line, comments=True))
    return commands


@pytest.mark.parametrize("path", [RUNBOOK, OBSERVABILITY], ids=lambda p: p.name)
def test_documented_mutt_commands_parse(path: Path) -> None:
    from tests.support import kube

    commands = [argv for argv in _bash_blocks(path) if argv and argv[0] == "mutt"]
    assert commands or path == OBSERVABILITY, f"{path.name} shows no mutt command"
    for argv in commands:
        kube.parse_mutt(argv)


def test_runbook_covers_the_operator_commands() -> None:
    shown = {" ".join(argv[:3]) for argv in _bash_blocks(RUNBOOK) if argv and argv[0] == "mutt"}
    shown |= {" ".join(argv[:2]) for argv in _bash_blocks(RUNBOOK) if argv and argv[0] == "mutt"}
    for command in (
        "mutt status",
        "mutt dlq list",
        "mutt dlq show",
        "mutt dlq replay",
        "mutt config get",
        "mutt config set",
        "mutt janitor run",
        "mutt rules reload",
        "mutt rules test",
        "mutt rules apply",
        "mutt db migrate",
    ):
        assert command in shown, f"docs/runbook.md shows no `{command}`"


def _promtool() -> str:
    path = shutil.which("promtool") or "/usr/bin/promtool"
    if not Path(path).exists():
        pytest.skip("promtool is not installed (Debian: apt-get install prometheus)")
    return path


def test_promtool_checks_and_unit_tests_the_rules(tmp_path: Path) -> None:
    promtool = _promtool()
    rules = tmp_path / "mutt.rules.yml"
    rules.write_text(yaml.safe_dump({"groups": load_rules()["spec"]["groups"]}, sort_keys=False))
    shutil.copy(RULES_TEST, tmp_path / RULES_TEST.name)
    for args in (["check", "rules", rules.name], ["test", "rules", RULES_TEST.name]):
        done = subprocess.run(
            [promtool, *args], cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False
        )
        assert done.returncode == 0, f"promtool {' '.join(args)}:\n{done.stdout}{done.stderr}"


def test_rule_unit_tests_use_real_metrics_and_cover_every_alert(catalog: Catalog) -> None:
    doc = yaml.safe_load(RULES_TEST.read_text())
    assert doc["rule_files"] == ["mutt.rules.yml"]
    tested: set[str] = set()
    for case in doc["tests"]:
        for series in case["input_series"]:
            q = parse(series["series"])
            (sel,) = q.selectors
            labels = catalog.labels_of(sel.metric or "")
            assert labels is not None, f"unit test series of unknown metric {sel.metric}"
            extra = {k for k, _, _ in sel.matchers} - labels - TARGET_LABELS
            assert not extra, f"{sel.metric}: no labels {extra}"
        for check in case.get("promql_expr_test", []):
            for sample in check.get("exp_samples", []):
                tested.update(re.findall(r'alertname="(\w+)"', sample["labels"]))
    alerts = {r["alert"] for r in rules_of(load_rules()) if "alert" in r}
    untested = alerts - tested - {"MuttIngestErrorBudgetBurnSlow", "MuttDeadLettersWaiting"}
    assert untested == set(), f"alerts without a firing unit test: {sorted(untested)}"


# ------------------------------------------------------------------ tests: dashboard


def _dashboard_queries(dashboard: dict[str, Any]) -> Iterator[tuple[str, Query, str | None]]:
    for panel in panels_of(dashboard):
        for target in panel.get("targets", []):
            yield panel["title"], parse(target["expr"]), target.get("legendFormat")
    for note in dashboard["annotations"]["list"]:
        if "expr" in note:
            yield f"annotation {note['name']}", parse(note["expr"]), None


def test_dashboard_names_real_metrics_labels_and_values(catalog: Catalog) -> None:
    dashboard = load_dashboard()
    problems = []
    for where, q, legend in _dashboard_queries(dashboard):
        problems += catalog.problems(q, where)
        for label in re.findall(r"\{\{\s*(\w+)\s*\}\}", legend or ""):
            if label not in catalog.output_labels(q):
                problems.append(f"{where}: legend {{{{{label}}}}} is not a label of {q.expr!r}")
    for var in dashboard["templating"]["list"]:
        if var["type"] != "query":
            continue
        query = var["query"]["query"] if isinstance(var["query"], dict) else var["query"]
        m = re.fullmatch(r"label_values\((\w+),\s*(\w+)\)", query)
        assert m, f"variable {var['name']}: unexpected query {query!r}"
        labels = catalog.labels_of(m[1])
        if labels is None or m[2] not in labels:
            problems.append(f"variable {var['name']}: {m[1]} has no label {m[2]!r}")
    assert problems == []


def test_dashboard_shows_every_metric() -> None:
    text = "\n".join(q.expr for _, q, _ in _dashboard_queries(load_dashboard()))
    missing = [f.query_name for f in all_families() if f.query_name not in text]
    assert missing == [], "metrics without a dashboard panel"


def test_dashboard_structure() -> None:
    dashboard = load_dashboard()
    assert 36 <= dashboard["schemaVersion"] <= 41
    assert dashboard["uid"] and dashboard["title"]
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["DS_PROMETHEUS"]["type"] == "datasource"
    assert variables["DS_PROMETHEUS"]["query"] == "prometheus"
    ids = [p["id"] for p in panels_of(dashboard)]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    cells: dict[tuple[int, int], str] = {}
    for panel in panels_of(dashboard):
        assert panel.get("title"), panel
        pos = panel["gridPos"]
        assert pos["x"] >= 0 and pos["w"] > 0 and pos["x"] + pos["w"] <= 24, panel["title"]
        for x in range(pos["x"], pos["x"] + pos["w"]):
            for y in range(pos["y"], pos["y"] + pos["h"]):
                other = cells.setdefault((x, y), panel["title"])
                assert other == panel["title"], f"{panel['title']!r} overlaps {other!r}"
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${DS_PROMETHEUS}", panel["title"]
            assert target["refId"], panel["title"]


def test_dashboard_has_the_required_views() -> None:
    text = "\n".join(q.expr for _, q, _ in _dashboard_queries(load_dashboard()))
    for fragment in (
        "histogram_quantile(0.5, sum by (stage, le) (rate(mutt_stage_batch_seconds_bucket",
        "histogram_quantile(0.99, sum by (stage, le) (rate(mutt_stage_batch_seconds_bucket",
        "histogram_quantile(0.99, sum by (sink, le) (rate(mutt_delivery_seconds_bucket",
        "sum by (sink, outcome) (rate(mutt_deliveries_total",
        "sum by (reason) (rate(mutt_events_rejected_total",
        "sum by (code) (rate(mutt_ingest_requests_total",
        "topk(10, sum by (rule_id)",
        "max by (sink) (mutt_breaker_state",
    ):
        assert fragment in text, fragment


# ------------------------------------------------------------------ the parser itself


def test_parser_reads_selectors_grouping_and_skips_functions() -> None:
    q = parse(
        'sum by (stage, le) (rate(x_bucket{stage=~"a|b", le!="1"}[$__rate_interval]))'
        " / on (stage) group_left max(y offset 5m) > bool 2"
    )
    assert [(s.metric, s.matchers) for s in q.selectors] == [
        ("x_bucket", [("stage", "=~", "a|b"), ("le", "!=", "1")]),
        ("y", []),
    ]
    assert q.grouping == ["stage", "le", "stage"]
    assert q.first == "sum"


def test_catalog_catches_typos() -> None:
    cat = Catalog(
        {"m_total": frozenset({"sink", "outcome"})},
        frozenset({"delivered"}),
        {"r:x:y": frozenset()},
    )
    q = parse('sum by (sinks) (rate(m_total{outcome="delivred", sink=~"$sink", kind="a"}[5m]))')
    found = " ".join(cat.problems(q, "t"))
    assert "'delivred'" in found and "'kind'" in found and "'sinks'" in found
    assert "no metric 'nope'" in " ".join(cat.problems(parse("nope"), "t"))
    assert "no recording rule" in " ".join(cat.problems(parse("r:x:z"), "t"))


if __name__ == "__main__":
    OBSERVABILITY.write_text(render_observability(OBSERVABILITY.read_text()))
    print(f"updated {OBSERVABILITY}", file=sys.stderr)
