"""``sa.inspect(op.get_bind())`` while ``check`` renders offline: answered from the schema the
earlier revisions built, so guarded revisions are rendered and checked instead of read from source."""

from __future__ import annotations

from pathlib import Path

from check_helpers import line_of, revision_source, write_project

from helios_migrate.check.report import RenderState
from helios_migrate.check.runner import CheckOptions, run_check

FIRST = """\
op.create_table(
    "runs",
    sa.Column("id", sa.BigInteger(), primary_key=True),
    sa.Column("status", sa.String(32), nullable=False),
)
op.create_index("ix_runs_status", "runs", ["status"])
op.create_table("tags", sa.Column("run_id", sa.BigInteger(), sa.ForeignKey("runs.id")))
"""

GUARDED = """\
op.execute("SET lock_timeout = '2s'")
inspector = sa.inspect(op.get_bind())
tables = inspector.get_table_names()
if "runs" in tables:
    columns = [c["name"] for c in inspector.get_columns("runs")]
    if "status" not in columns:
        op.add_column("runs", sa.Column("status", sa.String(32)))  # already there: not run
    if "started_at" not in columns:
        op.add_column("runs", sa.Column("started_at", sa.DateTime(timezone=True)))
    indexes = {i["name"] for i in inspector.get_indexes("runs")}
    if "ix_runs_status" not in indexes:
        op.create_index("ix_runs_status", "runs", ["status"])  # already there: not run
    if "ix_runs_started_at" not in indexes:
        op.create_index("ix_runs_started_at", "runs", ["started_at"])
if not inspector.has_table("snapshots"):
    op.create_table("snapshots", sa.Column("id", sa.BigInteger(), primary_key=True))
    op.create_index("ix_snapshots_id", "snapshots", ["id"])
pk = inspector.get_pk_constraint("runs")["constrained_columns"]
fks = inspector.get_foreign_keys("tags")
if pk == ["id"] and fks and fks[0]["referred_table"] == "runs":
    op.drop_column("runs", "legacy")
"""


def test_inspection_guards_are_answered_from_the_earlier_revisions(tmp_path: Path) -> None:
    second = revision_source("b2", "a1", GUARDED)
    write_project(tmp_path, {"a1_first.py": revision_source("a1", None, FIRST), "b2_guarded.py": second})
    report = run_check(CheckOptions(paths=(str(tmp_path),), pg_version="16", cwd=tmp_path))
    states = {s.revision: s for s in report.revision_states}
    assert states["b2"].state is RenderState.RENDERED_WITH_PLACEHOLDERS, states["b2"].detail
    assert "answered from the schema the earlier revisions built" in states["b2"].detail
    mine = [f for f in report.findings if f.location.path.endswith("b2_guarded.py")]
    assert "HM904" not in {f.code for f in mine}
    hm101 = sorted(f.location.line for f in mine if f.code == "HM101")
    # the index that exists is not built again; the one on the new table is exempt
    assert hm101 == [line_of(second, '"ix_runs_started_at", "runs"')]
    assert [f.location.line for f in mine if f.code == "HM303"] == [line_of(second, 'drop_column("runs", "legacy")')]


def test_a_revision_sees_its_own_earlier_statements_and_unknown_questions_still_fall_back(tmp_path: Path) -> None:
    own = revision_source("a1", None, """\
op.create_table("jobs", sa.Column("id", sa.BigInteger(), primary_key=True))
if "jobs" in sa.inspect(op.get_bind()).get_table_names():
    op.add_column("jobs", sa.Column("note", sa.Text()))
""")
    other = revision_source("b2", "a1", """\
names = sa.inspect(op.get_bind()).get_view_names()
op.add_column("jobs", sa.Column("memo", sa.Text()))
""")
    write_project(tmp_path, {"a1_own.py": own, "b2_other.py": other})
    report = run_check(CheckOptions(paths=(str(tmp_path),), pg_version="16", cwd=tmp_path, show_info=True))
    states = {s.revision: s for s in report.revision_states}
    assert states["a1"].state is RenderState.RENDERED_WITH_PLACEHOLDERS
    assert report.statements >= 2
    assert states["b2"].state is RenderState.READ_FROM_SOURCE
    assert "get_view_names" in states["b2"].detail


def test_reflected_tables_rows_read_as_none_and_in_transaction(tmp_path: Path) -> None:
    second = revision_source("b2", "a1", """\
conn = op.get_bind()
runs = sa.Table("runs", sa.MetaData(), autoload_with=conn)
meta = sa.MetaData()
meta.reflect(conn, only=["tags"])
assert [c.name for c in runs.primary_key.columns] == ["id"] and "tags" in meta.tables
if conn.in_transaction():
    op.execute(runs.update().values(status="done"))
for row in conn.execute(sa.text("SELECT id FROM runs WHERE status = 'x'")):
    op.execute(runs.delete().where(runs.c.id == row.id))
op.create_index("ix_runs_done", "runs", ["status"])
""")
    write_project(tmp_path, {"a1_first.py": revision_source("a1", None, FIRST), "b2_reflect.py": second})
    report = run_check(CheckOptions(paths=(str(tmp_path),), pg_version="16", cwd=tmp_path))
    states = {s.revision: s for s in report.revision_states}
    assert states["b2"].state is RenderState.RENDERED_WITH_PLACEHOLDERS, states["b2"].detail
    mine = [f for f in report.findings if f.location.path.endswith("b2_reflect.py")]
    # the UPDATE built from the reflected table is checked; the loop over rows is noted
    assert line_of(second, "runs.update()") in [f.location.line for f in mine if f.code == "HM206"]
    assert line_of(second, '"ix_runs_done"') in [f.location.line for f in mine if f.code == "HM101"]
    (hm904,) = [f for f in mine if f.code == "HM904"]
    assert f"(read as none) (line {line_of(second, 'for row in')})" in hm904.message


def test_inspection_is_not_answered_when_earlier_revisions_are_not_checked(tmp_path: Path) -> None:
    second = revision_source("b2", "a1", GUARDED)
    write_project(tmp_path, {"a1_first.py": revision_source("a1", None, FIRST), "b2_guarded.py": second})
    report = run_check(CheckOptions(paths=(str(tmp_path),), revision_range="a1:b2", pg_version="16", cwd=tmp_path))
    (state,) = report.revision_states
    assert state.state is RenderState.READ_FROM_SOURCE
    assert "the revisions before those checked were not rendered" in state.detail
