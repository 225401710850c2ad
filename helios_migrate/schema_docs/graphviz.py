"""The ER diagram as Graphviz source (``schema.dot``), drawn to SVG when ``dot`` is on PATH."""

from __future__ import annotations

import html
import shutil
import subprocess

from .schema import Schema

DOT_MISSING = (
    "schema.svg not drawn: Graphviz's `dot` is not on PATH (install Graphviz: `apt-get install "
    "graphviz`, `brew install graphviz` or https://graphviz.org/download/, then run docs again); "
    "the Mermaid diagrams and schema.dot are written"
)


class DotFailed(Exception):
    """``dot`` ran and failed."""


def _id(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def dot_source(schema: Schema) -> str:
    lines = [
        "digraph schema {",
        '  graph [rankdir=LR, fontname="Helvetica"];',
        '  node [shape=plaintext, fontname="Helvetica", fontsize=10];',
        '  edge [fontname="Helvetica", fontsize=9, arrowhead=crow, arrowtail=none];',
    ]
    for t in schema.tables:
        pk = set(t.primary_key)
        rows = [f'<tr><td bgcolor="#dddddd" colspan="2" href="tables/{html.escape(t.name)}.md">'
                f"<b>{html.escape(t.name)}</b></td></tr>"]
        for c in t.columns:
            name = f"<u>{html.escape(c.name)}</u>" if c.name in pk else html.escape(c.name)
            rows.append(f'<tr><td align="left" port="{html.escape(c.name)}">{name}</td>'
                        f'<td align="left">{html.escape(c.type)}</td></tr>')
        label = '<table border="1" cellborder="0" cellspacing="0">' + "".join(rows) + "</table>"
        lines.append(f"  {_id(t.name)} [label=<{label}>];")
    edges = sorted(
        f"  {_id(fk.references)} -> {_id(fk.table)} [label={_id(', '.join(fk.columns))}];"
        for t in schema.tables for fk in t.foreign_keys
        if schema.table(fk.references) is not None
    )
    lines += edges
    lines.append("}")
    return "\n".join(lines) + "\n"


def dot_path() -> str | None:
    return shutil.which("dot")


def draw_svg(source: str, dot: str) -> str:
    """``source`` drawn by ``dot -Tsvg``."""
    try:
        done = subprocess.run([dot, "-Tsvg"], input=source, capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise DotFailed(f"{dot} -Tsvg: {exc}") from None
    if done.returncode != 0:
        raise DotFailed(f"{dot} -Tsvg exited {done.returncode}: {done.stderr.strip()[:300]}")
    return done.stdout
