"""Running ``helios-migrate docs`` in a subprocess, and reading the Mermaid blocks it writes."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SHOP = REPO / "examples" / "shop"
EXPECTED_SHOP = Path(__file__).resolve().parent / "expected" / "shop"
UPDATE_VAR = "HELIOS_UPDATE_SNAPSHOTS"


def run_docs(
    cwd: Path, *args: str, path: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, **(env or {})}
    if path is not None:
        environment["PATH"] = path
    return subprocess.run(
        [sys.executable, "-m", "helios_migrate", "docs", *args],
        cwd=cwd, capture_output=True, text=True, timeout=300, env=environment,
    )


def folder(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): p.read_text(encoding="utf-8")
        for p in sorted(root.rglob("*")) if p.is_file()
    }


def mermaid_blocks(text: str) -> list[str]:
    return re.findall(r"```mermaid\n(.*?)```", text, flags=re.DOTALL)


_ENTITY = re.compile(r"^    ([A-Za-z0-9_-]+) \{$")
_ATTRIBUTE = re.compile(r"^        [A-Za-z_][A-Za-z0-9_]* [A-Za-z0-9_-]+( (PK|FK|UK)(, (PK|FK|UK))*)?$")
_RELATION = re.compile(
    r'^    ([A-Za-z0-9_-]+) (\|\||\|o)--(o\{|o\||\|\||\|\{) ([A-Za-z0-9_-]+) : "[^"]*"$'
)


def check_er_diagram(block: str) -> tuple[set[str], list[tuple[str, str]]]:
    """The entities and relations of one ``erDiagram`` block; fails on any line that is not an
    entity, an attribute, a closing brace or a relation between declared entities."""
    lines = block.rstrip("\n").split("\n")
    assert lines[0] == "erDiagram", lines[0]
    entities: set[str] = set()
    relations: list[tuple[str, str]] = []
    inside = False
    for line in lines[1:]:
        if inside:
            if line == "    }":
                inside = False
                continue
            assert _ATTRIBUTE.match(line), f"not a Mermaid attribute line: {line!r}"
            continue
        if m := _ENTITY.match(line):
            assert m.group(1) not in entities, f"entity declared twice: {m.group(1)}"
            entities.add(m.group(1))
            inside = True
            continue
        m = _RELATION.match(line)
        assert m, f"not a Mermaid entity or relationship line: {line!r}"
        relations.append((m.group(1), m.group(4)))
    assert not inside, "an entity block is not closed"
    for parent, child in relations:
        assert parent in entities and child in entities, (parent, child, sorted(entities))
    return entities, relations
