"""A table's indexes are rendered in name order, whatever order the set Alembic iterates holds them
in, so a report is the same run to run."""

from __future__ import annotations

from pathlib import Path

from check_helpers import revision_source, write_project

from helios_migrate.check.project import load_project
from helios_migrate.check.render import RevisionRenderer

TABLE = revision_source(
    "0001", None,
    'op.create_table("events", sa.Column("id", sa.BigInteger, primary_key=True), '
    'sa.Column("a", sa.Text()), sa.Column("b", sa.Text()), sa.Column("c", sa.Text()), '
    'sa.Index("ix_events_c", "c"), sa.Index("ix_events_a", "a"), sa.Index("ix_events_b", "b"))',
)


def test_indexes_of_a_new_table_are_rendered_in_name_order(tmp_path: Path) -> None:
    root = write_project(tmp_path / "p", {"0001_t.py": TABLE})
    project = load_project(root)
    seen = set()
    for _ in range(5):  # each run builds new Index objects, so the set's order varies
        with RevisionRenderer(project) as renderer:
            rendered = renderer.render(project.revisions[0], "upgrade")
        assert rendered.failure is None
        names = tuple(s.sql.split()[2] for s in rendered.statements if s.sql.startswith("CREATE INDEX"))
        seen.add(names)
        renderer._modules.clear()
    assert seen == {("ix_events_a", "ix_events_b", "ix_events_c")}
