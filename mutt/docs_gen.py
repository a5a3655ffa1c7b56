"""Keep generated parts of the docs in step with the code: ``python -m mutt.docs_gen``.

Today: the settings table in README.md, between its markers.
"""

from __future__ import annotations

from pathlib import Path

from shared.config import Settings, env_name

BEGIN = "<!-- settings-table:begin -->"
END = "<!-- settings-table:end -->"
README = Path(__file__).resolve().parent.parent / "README.md"


def settings_table() -> str:
    lines = ["| variable | default | meaning |", "|---|---|---|"]
    for name, spec in Settings.model_fields.items():
        default = "unset" if spec.default is None else str(spec.default)
        lines.append(f"| `{env_name(name)}` | `{default}` | {spec.description} |")
    return "\n".join(lines)


def render(readme: str) -> str:
    head, _, rest = readme.partition(BEGIN)
    _, _, tail = rest.partition(END)
    return f"{head}{BEGIN}\n{settings_table()}\n{END}{tail}"


if __name__ == "__main__":
    README.write_text(render(README.read_text()))
    print(f"updated {README}")
