"""``review --database-url ... --write-revision``: the fixes as an Alembic revision planned by the
helios plugin, on a real Alembic project and a real server (PostgreSQL 15 and 18): down_revision is
the head, the revision passes ``check`` at every severity both ways, and it upgrades and downgrades."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "autogen"))
from autogen_harness import Project  # noqa: E402

from helios_migrate.pgserver import RunningServer  # noqa: E402

PROBLEMS = """
ALTER TABLE items ADD CONSTRAINT items_parent_id_fkey FOREIGN KEY (parent_id) REFERENCES parents (id);
CREATE INDEX items_status_idx1 ON items (status);
CREATE INDEX items_code_idx ON items (code);
CREATE INDEX items_code_note_idx ON items (code, note);
"""

BASE_REVISION = '''"""base

Revision ID: base0001
Revises:
Create Date: 2026-01-01
"""
revision = "base0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
'''


@pytest.fixture
def project(tmp_path: Path, fresh_db: str) -> Project:
    project = Project.create(tmp_path / "proj", fresh_db, rows=5_000)
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute(PROBLEMS)
    (project.root / "versions" / "base0001_base.py").write_text(BASE_REVISION)
    project.alembic("stamp", "base0001")
    return project


def _helios(project: Project, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "helios_migrate", *args],
        cwd=project.root, capture_output=True, text=True, timeout=300, env=project.env, check=False,
    )


def _indexes(url: str) -> dict[str, bool]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT c.relname, i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "WHERE i.indrelid = 'items'::regclass"
        ).fetchall()
    return dict(rows)


def _revision_field(source: str, name: str) -> str:
    line = next(line for line in source.splitlines() if line.startswith((f"{name} =", f"{name}:")))
    return line.split("=", 1)[1].strip()


def test_write_revision_applies_fixes_lock_safe(project: Project, pg_server: RunningServer) -> None:
    before = _indexes(project.url)
    out = _helios(project, "review", "--database-url", project.url, "--write-revision",
                  "--fix", "HM603", "--fix", "HM605", "--fix", "HM606:items", "-m", "review fixes")
    assert out.returncode == 0, out.stderr
    assert "Wrote " in out.stderr and "3 fix(es)" in out.stderr, out.stderr
    revisions = [p for p in project.revision_files() if not p.name.startswith("base0001")]
    assert len(revisions) == 1
    source = revisions[0].read_text()
    assert _revision_field(source, "down_revision") in ("'base0001'", '"base0001"')
    assert "runtime.create_index_concurrently" in source and "items_parent_id_idx" in source
    assert "items_status_idx1" in source and "items_code_idx" in source
    assert "review fixes" in source
    compile(source, str(revisions[0]), "exec")

    version = f"{pg_server.version.major}.{pg_server.version.minor}"
    for direction in ((), ("--downgrade",)):
        res = _helios(project, "check", str(revisions[0]), "--format", "json", "--pg-version", version,
                      "--fail-on", "info", *direction)
        assert res.returncode == 0, (direction, res.stdout, res.stderr)
        assert json.loads(res.stdout)["findings"] == []

    project.alembic("upgrade", "head")
    after = _indexes(project.url)
    assert after.get("items_parent_id_idx") is True
    assert "items_status_idx1" not in after and "items_code_idx" not in after
    assert all(after.values()), after  # nothing left INVALID

    # The review is clean for what was fixed.
    again = json.loads(_helios(project, "review", "--database-url", project.url, "--format", "json").stdout)
    assert not {f["code"] for f in again["findings"]} & {"HM603", "HM605", "HM606"}, again["findings"]

    project.alembic("downgrade", "base0001")
    assert _indexes(project.url) == before


def test_write_revision_usage_errors(project: Project) -> None:
    no_db = _helios(project, "review", "--models", "models:metadata", "--write-revision", "--fix", "HM603")
    assert no_db.returncode == 2 and "give --database-url" in no_db.stderr
    unasked = _helios(project, "review", "--database-url", project.url, "--write-revision")
    assert unasked.returncode == 2 and "name the fixes to write with --fix" in unasked.stderr
    bad = _helios(project, "review", "--database-url", project.url, "--write-revision", "--fix", "nonsense")
    assert bad.returncode == 2 and "--fix 'nonsense'" in bad.stderr and "Traceback" not in bad.stderr
    nothing = _helios(project, "review", "--database-url", project.url, "--write-revision", "--fix", "HM999")
    assert nothing.returncode == 2 and "nothing written" in nothing.stderr
    assert [p.name for p in project.revision_files()] == ["base0001_base.py"]


def test_write_revision_sets_not_null_lock_safe(tmp_path: Path, fresh_db: str, pg_server: RunningServer) -> None:
    project = Project.create(tmp_path / "proj", fresh_db, rows=20_000)  # analysed: note holds no NULL
    (project.root / "versions" / "base0001_base.py").write_text(BASE_REVISION)
    project.alembic("stamp", "base0001")
    out = _helios(project, "review", "--database-url", project.url, "--write-revision", "--fix", "HM609:items.note")
    assert out.returncode == 0, out.stderr
    (revision,) = [p for p in project.revision_files() if not p.name.startswith("base0001")]
    source = revision.read_text()
    assert "NOT VALID" in source and "VALIDATE CONSTRAINT" in source, source
    version = f"{pg_server.version.major}.{pg_server.version.minor}"
    for direction in ((), ("--downgrade",)):
        res = _helios(project, "check", str(revision), "--format", "json", "--pg-version", version,
                      "--fail-on", "info", *direction)
        assert res.returncode == 0, (direction, res.stdout, res.stderr)
    attnotnull = "SELECT attnotnull FROM pg_attribute WHERE attrelid = 'items'::regclass AND attname = 'note'"
    project.alembic("upgrade", "head")
    with psycopg.connect(project.url) as conn:
        assert conn.execute(attnotnull).fetchone() == (True,)
    project.alembic("downgrade", "base0001")
    with psycopg.connect(project.url) as conn:
        assert conn.execute(attnotnull).fetchone() == (False,)
        assert conn.execute(
            "SELECT count(*) FROM pg_constraint WHERE conrelid = 'items'::regclass AND contype IN ('c', 'n') "
            "AND conname LIKE '%note%'"
        ).fetchone() == (0,)



def test_a_reindex_fix_is_not_written(project: Project) -> None:
    """A bloated index's fix (REINDEX INDEX CONCURRENTLY) stays a printed statement: a one-off
    repair that changes no schema has no place in the revision history."""
    from helios_migrate.changes import QualifiedName, Reindex, ReindexTarget
    from helios_migrate.findings import Finding, Location, Severity
    from helios_migrate.review.engine import ReviewFinding
    from helios_migrate.review.revision import Fix, RevisionError, write_revision

    items = QualifiedName("items", "public")
    rf = ReviewFinding(
        Finding("HM612", "bloat", Severity.INFO, "bloated", Location("public.items.status")), items, "status",
        changes=(Reindex(ReindexTarget.INDEX, QualifiedName("items_status_idx", "public"), concurrently=True),),
    )
    with pytest.raises(RevisionError, match="nothing written"):
        write_revision([Fix.of(rf)], database_url=project.url, alembic_ini=project.root / "alembic.ini", message="x")
    assert [p.name for p in project.revision_files()] == ["base0001_base.py"]
