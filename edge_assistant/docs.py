"""The supported-models tables of README.md, generated from the catalog (a test keeps them in sync)."""

from __future__ import annotations

import re
from pathlib import Path

from .catalog import Catalog, LlmModel

START, END = "<!-- models:start -->", "<!-- models:end -->"


def _size(n: int | None) -> str:
    if n is None:
        return "?"
    return f"{n / 1e9:.2f} GB" if n >= 1e9 else f"{n / 1e6:.0f} MB"


def _quants(model: LlmModel) -> str:
    return ", ".join(f"{q.name} {_size(q.bytes)}" for q in model.quants.values())


def models_markdown(catalog: Catalog) -> str:
    """Markdown tables of the LLMs, speech models and voices in the catalog."""
    lines = [
        "| model | params | chat format | quantizations (file size) | context | licence | source |",
        "|---|---|---|---|---|---|---|",
    ]
    for m in catalog.llms.values():
        source = "embedded" if "embedded" in m.tags else (m.repo or "")
        if "embedded" in m.tags and m.repo:
            source = f"{m.repo} + embedded"
        lines.append(
            f"| `{m.id}` | {m.params_b:g}B | {m.family} | {_quants(m)} | {m.context} | {m.licence} | {source} |"
        )
    lines += ["", "| speech model / voice | kind | engine | language | size | source |", "|---|---|---|---|---|---|"]
    for a in catalog.assets.values():
        source = a.url or a.repo or "system package"
        if a.embedded:
            source += f" (embedded: `{a.embedded.package}`)"
        lines.append(f"| `{a.id}` | {a.kind} | {a.engine} | {a.language} | {_size(a.bytes)} | {source} |")
    return "\n".join(lines)


def update_readme(readme: Path, catalog: Catalog) -> bool:
    """Rewrite the tables between the markers; True when the file changed."""
    text = readme.read_text(encoding="utf-8")
    new = re.sub(
        re.escape(START) + r".*?" + re.escape(END), f"{START}\n{models_markdown(catalog)}\n{END}", text, flags=re.S
    )
    if new != text:
        readme.write_text(new, encoding="utf-8")
    return new != text
