"""``runtime.check_convertible`` on a real server (PostgreSQL 15 and 18): an integer narrowed to a
smaller integer (the downgrade of int -> bigint) is checked with a range test instead of a
plpgsql function per row, and refuses the same rows, naming them; other conversions keep the
function."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from alembic.migration import MigrationContext
from alembic.operations import Operations

from helios_migrate import runtime


@pytest.fixture
def op(fresh_db: str) -> Iterator[Any]:
    engine = sa.create_engine(fresh_db.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.connect() as conn:
        yield Operations(MigrationContext.configure(conn))
    engine.dispose()


def _sql(op: Any, sql: str) -> None:
    url = op.get_bind().engine.url.render_as_string(hide_password=False).replace("+psycopg", "")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql)


def _statements(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    sent: list[str] = []
    execute, query = runtime._exec, runtime._scalar

    def exec_spy(op: Any, sql: str) -> None:
        sent.append(sql)
        execute(op, sql)

    def scalar_spy(op: Any, sql: str) -> Any:
        sent.append(sql)
        return query(op, sql)

    monkeypatch.setattr(runtime, "_exec", exec_spy)
    monkeypatch.setattr(runtime, "_scalar", scalar_spy)
    return sent


@pytest.mark.parametrize(("column_type", "to_type", "bad"), [
    ("bigint", "integer", (2**31, -(2**31) - 1)),
    ("integer", "SMALLINT", (32768, -32769)),
])
def test_an_integer_narrowing_is_a_range_test_that_names_the_rows(
    op: Any, monkeypatch: pytest.MonkeyPatch, column_type: str, to_type: str, bad: tuple[int, int]
) -> None:
    low, high = (-(2**31), 2**31 - 1) if to_type == "integer" else (-(2**15), 2**15 - 1)
    _sql(op, f"CREATE TABLE t (id int PRIMARY KEY, v {column_type}); "
             f"INSERT INTO t VALUES (1, 5), (2, NULL), (3, {bad[0]}), (4, {low}), (5, {high}), (6, {bad[1]})")
    sent = _statements(monkeypatch)
    with pytest.raises(runtime.StepFailed) as refused:
        runtime.check_convertible(op, "t", "v", to_type)
    message = str(refused.value)
    assert f"2 row(s) of t.v do not convert to {to_type}" in message
    assert f"id=3 ('{bad[0]}')" in message and f"id=6 ('{bad[1]}')" in message
    assert "Nothing was changed" in message
    assert not [s for s in sent if "helios_fits" in s], "no function per row for an integer range"
    _sql(op, "DELETE FROM t WHERE id IN (3, 6)")
    runtime.check_convertible(op, "t", "v", to_type)  # the edges of the range convert


def test_other_conversions_still_convert_each_value(op: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    _sql(op, "CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t VALUES (1, '12'), (2, 'x'), (3, '99999999999')")
    sent = _statements(monkeypatch)
    with pytest.raises(runtime.StepFailed, match=r"2 row\(s\) of t.v do not convert to integer.*id=2 \('x'\), id=3"):
        runtime.check_convertible(op, "t", "v", "integer")
    assert [s for s in sent if "helios_fits" in s]


def test_the_check_reads_the_table_on_one_core_and_puts_the_setting_back(op: Any) -> None:
    """A parallel scan took both cores of a 2-core server while the application waited; the
    check runs without parallel workers, and the session's own setting is back afterwards."""
    _sql(op, "CREATE TABLE t (id int PRIMARY KEY, v bigint); INSERT INTO t SELECT g, g FROM generate_series(1, 1000) g")
    bind = op.get_bind()
    bind.execute(sa.text("SET max_parallel_workers_per_gather = 3"))
    bind.commit()
    seen: list[str] = []

    def before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if "count(*) OVER ()" in statement:
            seen.append(cursor.connection.execute("SHOW max_parallel_workers_per_gather").fetchone()[0])

    sa.event.listen(bind, "before_cursor_execute", before)
    try:
        runtime.check_convertible(op, "t", "v", "integer")
    finally:
        sa.event.remove(bind, "before_cursor_execute", before)
    assert seen == ["0"]
    assert bind.execute(sa.text("SHOW max_parallel_workers_per_gather")).scalar() == "3"


def test_offline_the_check_also_keeps_to_one_core() -> None:
    import io

    buf = io.StringIO()
    context = MigrationContext.configure(
        dialect_name="postgresql", opts={"as_sql": True, "output_buffer": buf}
    )
    runtime.check_convertible(Operations(context), "t", "v", "integer")
    text = buf.getvalue()
    assert "set_config('max_parallel_workers_per_gather', '0', true)" in text
    assert text.index("max_parallel_workers_per_gather") < text.index("SELECT count(*) INTO n")
