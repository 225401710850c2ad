"""Suppression comments in SQL files and Alembic revisions."""

from __future__ import annotations

from helios_migrate.suppression import (
    Suppression,
    parse_python_suppressions,
    parse_sql_suppressions,
    parse_suppressions,
)


def test_sql_forms() -> None:
    text = (
        "CREATE INDEX ix ON t (a); -- helios: ignore[HM101]\n"
        "-- helios: ignore[hm101, HM401]\n"
        "SELECT '-- helios: ignore';\n"
        "-- helios: ignore\n"
        "-- helios: ignore-file[HM303]\n"
        "-- helios: ignore-file\n"
    )
    found = parse_sql_suppressions(text)
    assert [(s.line, sorted(s.codes), s.file_level) for s in found] == [
        (1, ["HM101"], False),
        (2, ["HM101", "HM401"], False),
        (4, [], False),
        (5, ["HM303"], True),
        (6, [], True),
    ]
    assert found[0].column == 27


def test_python_forms() -> None:
    source = (
        "def upgrade():\n"
        "    op.drop_column('users', 'x')  # helios: ignore[HM303]\n"
        "    s = '# helios: ignore[HM101]'\n"
        "# helios: ignore-file[HM401]\n"
    )
    found = parse_python_suppressions(source)
    assert [(s.line, sorted(s.codes), s.file_level) for s in found] == [
        (2, ["HM303"], False),
        (4, ["HM401"], True),
    ]
    assert parse_suppressions(source, "versions/abc.py") == found


def test_applies_to_the_statement_line_or_the_line_above() -> None:
    s = Suppression(10, frozenset({"HM101"}))
    assert s.applies_to_lines(10, 10) and s.applies_to_lines(11, 12)
    assert not s.applies_to_lines(12, 14) and not s.applies_to_lines(8, 9)
    assert s.applies_to_lines(7, 12)  # a trailing comment inside a multi-line statement
    assert s.covers("HM101") and not s.covers("HM102")
    assert Suppression(3).covers("HM999")
