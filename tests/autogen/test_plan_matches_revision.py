"""``helios-migrate plan`` shows the steps the revision would hold: with the plugin enabled in
env.py, the plan of each operation is the plugin's own (not a second planning of its rendered
calls), so no row is about a ``None`` table and a UNIQUE index lists its columns.  PG 15 and 18."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from autogen_harness import Project, models_source

CHANGE = {
    "token": 'sa.Column("token", sa.Uuid, nullable=False, server_default=sa.text("gen_random_uuid()"))',
    "code": 'sa.Column("code", sa.Text, unique=True)',
    "legacy": None,
}
ORGS = 'orgs = sa.Table("orgs", metadata, sa.Column("id", sa.BigInteger, primary_key=True), sa.Column("name", sa.Text, unique=True))\n'


@pytest.fixture
def project(tmp_path: Path, fresh_db: str) -> Project:
    return Project.create(tmp_path / "proj", fresh_db, rows=2_000)


def _plan(project: Project) -> list[dict[str, object]]:
    res = subprocess.run(
        [sys.executable, "-m", "helios_migrate.cli", "plan", str(project.root), "--format", "json",
         "--no-calibrate", "--write-sample", "0"],
        cwd=project.root, capture_output=True, text=True, timeout=300, env=project.env,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    steps: list[dict[str, object]] = json.loads(res.stdout)["steps"]
    return steps


@pytest.mark.parametrize("tables", ["", ORGS], ids=["existing-table", "with-new-table"])
def test_plan_shows_the_revisions_steps(project: Project, tables: str) -> None:
    project.write_models(models_source(CHANGE, tables=tables))
    planned = _plan(project)
    assert not project.revision_files(), "plan wrote a revision"
    project.alembic("revision", "--autogenerate", "-m", "change")
    revisions = project.revisions_in_order()
    shown = [str(s["description"]) for s in planned]
    assert not any("None" in d for d in shown), shown
    sql = [q for s in planned for q in s["sql"]]  # type: ignore[attr-defined]
    assert not any(re.search(r"\bON \S+ \(\)", q) for q in sql), sql  # an index without columns
    written = [line for r in revisions for line in _header_descriptions(r)]
    assert shown == written, (shown, written)


def _header_descriptions(revision: str) -> list[str]:
    up = revision.split("def downgrade")[0]
    lines = up.splitlines()
    start = next(i for i, line in enumerate(lines) if re.search(r"# #\s+step\s", line))
    rows = []
    for line in lines[start + 1:]:
        text = line.strip()
        if not text.startswith("# ") or not text[2:3].isdigit():
            break
        rows.append(text)
    full = {}
    if "# steps in full:" in up:
        after = up.split("# steps in full:")[1].splitlines()[1:]
        for line in after:
            text = line.strip()
            if not text.startswith("# ") or not text[2:3].isdigit():
                break
            number, _, name = text[2:].partition(" ")
            full[number] = name
    out = []
    for row in rows:
        number, _, rest = row[2:].partition(" ")
        out.append(full.get(number) or rest.strip().split("  ")[0])
    return out
