"""Checks over a project's history: several heads (HM312), a revision edited after its hash was
recorded in helios.sum (HM313)."""

from __future__ import annotations

from pathlib import Path

from check_helpers import revision_source, write_project

from helios_migrate.check.runner import CheckOptions, run_check

BASE = revision_source("0001", None, 'op.add_column("orders", sa.Column("note", sa.Text()))')
LEFT = revision_source("0002", "0001", 'op.add_column("orders", sa.Column("a", sa.Text()))')
RIGHT = revision_source("0003", "0001", 'op.add_column("orders", sa.Column("b", sa.Text()))')


def _codes(root: Path, **kw: object) -> list[tuple[str, str]]:
    report = run_check(CheckOptions(paths=(str(root),), cwd=root, pg_version="16", **kw))  # type: ignore[arg-type]
    return [(f.code, f.location.path) for f in report.findings]


def test_several_heads_are_reported_on_each_head(tmp_path: Path) -> None:
    root = write_project(tmp_path / "p", {"0001_base.py": BASE, "0002_left.py": LEFT, "0003_right.py": RIGHT})
    heads = sorted(path for code, path in _codes(root) if code == "HM312")
    assert heads == ["migrations/versions/0002_left.py", "migrations/versions/0003_right.py"]


def test_one_head_is_not_reported(tmp_path: Path) -> None:
    root = write_project(tmp_path / "p", {"0001_base.py": BASE, "0002_left.py": LEFT})
    assert "HM312" not in {code for code, _ in _codes(root)}


def test_a_revision_edited_after_write_sum_is_reported(tmp_path: Path) -> None:
    root = write_project(tmp_path / "p", {"0001_base.py": BASE, "0002_left.py": LEFT})
    assert "HM313" not in {code for code, _ in _codes(root, write_sum=True)}
    assert (root / "helios.sum").is_file()
    assert "HM313" not in {code for code, _ in _codes(root)}
    edited = root / "migrations" / "versions" / "0001_base.py"
    edited.write_text(BASE.replace('"note"', '"memo"'), encoding="utf-8")
    # A new revision is not in the file yet: not reported.
    (root / "migrations" / "versions" / "0003_more.py").write_text(
        revision_source("0003", "0002", 'op.add_column("orders", sa.Column("c", sa.Text()))'), encoding="utf-8"
    )
    found = [(c, p) for c, p in _codes(root) if c == "HM313"]
    assert found == [("HM313", "migrations/versions/0001_base.py")]


def test_without_a_sum_file_nothing_is_reported(tmp_path: Path) -> None:
    root = write_project(tmp_path / "p", {"0001_base.py": BASE})
    assert "HM313" not in {code for code, _ in _codes(root)}


def test_an_enum_value_is_judged_by_the_values_earlier_revisions_gave_it(tmp_path: Path) -> None:
    """HM314: the type was created two revisions before the ADD VALUE, and a value was inserted
    with AFTER in between; a re-check from the cache judges the same."""
    create = revision_source(
        "0001", None,
        'op.create_table("tickets", sa.Column("id", sa.BigInteger, primary_key=True), '
        'sa.Column("prio", sa.Enum("low", "high", name="prio")))',
    )
    between = revision_source(
        "0002", "0001",
        "with op.get_context().autocommit_block():\n"
        "    op.execute(\"ALTER TYPE prio ADD VALUE 'urgent' AFTER 'high'\")",
    )
    append = revision_source(
        "0003", "0002",
        "with op.get_context().autocommit_block():\n"
        "    op.execute(\"ALTER TYPE prio ADD VALUE 'medium'\")",
    )
    root = write_project(tmp_path / "p", {"0001_a.py": create, "0002_b.py": between, "0003_c.py": append})
    for _ in range(2):
        report = run_check(CheckOptions(paths=(str(root),), cwd=root, pg_version="16", cache=True, show_info=True))
        found = [f for f in report.findings if f.code == "HM314"]
        assert [(f.location.path, f.severity.name) for f in found] == [("migrations/versions/0003_c.py", "WARNING")]
        assert "appends it last after 'urgent'" in found[0].message
        assert "its values low, high read as an ordered scale" in found[0].message
        assert "'medium' comes before 'high'" in found[0].message
