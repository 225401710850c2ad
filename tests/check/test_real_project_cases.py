"""Cases found by checking the migrations of real projects (issue 15): false positives, wording
and hazards that were missed.  Each runs through the real ``check`` pipeline; lock facts are
compared with what a real PostgreSQL server holds."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
from check_helpers import line_of, revision_source, write_project

from helios_migrate.changes import QualifiedName
from helios_migrate.check.runner import CheckOptions, run_check
from helios_migrate.findings import Finding
from helios_migrate.knowledge import effects_for_sql
from helios_migrate.locks import LockMode
from helios_migrate.versions import PgVersion


def _check(tmp_path: Path, upgrade: str, *, header: str = "", pg: str = "16") -> tuple[list[Finding], str]:
    source = revision_source("a1", None, upgrade, header=header)
    write_project(tmp_path, {"a1_rev.py": source})
    report = run_check(CheckOptions(paths=(str(tmp_path),), pg_version=pg, cwd=tmp_path, show_info=True))
    return list(report.findings), source


def _codes(findings: list[Finding]) -> set[str]:
    return {f.code for f in findings}


# -- temporary tables and CREATE TABLE AS --------------------------------------------------------


TEMP_TABLE_REVISION = """\
op.execute("SET lock_timeout = '2s'")
op.execute(
    "CREATE TEMPORARY TABLE tmp_ids AS SELECT id FROM orders WHERE status = 'stale'"
)
op.create_index("ix_tmp_ids", "tmp_ids", ["id"])
op.execute("INSERT INTO tmp_ids SELECT id FROM orders WHERE status = 'old'")
op.drop_table("tmp_ids")
"""


def test_a_temporary_table_its_index_and_its_drop_are_not_hazards(tmp_path: Path) -> None:
    findings, _ = _check(tmp_path, TEMP_TABLE_REVISION)
    wrong = _codes(findings) & {"HM101", "HM304", "HM401", "HM403", "HM404", "HM903"}
    assert not wrong, [f"{f.code} {f.message}" for f in findings]


def test_create_table_as_without_lock_timeout_reads_with_access_share(tmp_path: Path) -> None:
    findings, _ = _check(tmp_path, 'op.execute("CREATE TABLE orders_copy AS SELECT * FROM orders")')
    assert not _codes(findings) & {"HM401", "HM903", "HM403"}, [f"{f.code} {f.message}" for f in findings]


def _held_locks(url: str, sql: str) -> dict[str, str]:
    """Locks on user relations this session holds after running ``sql`` in a transaction."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE orders (id bigint PRIMARY KEY, status text)")
        conn.execute("INSERT INTO orders SELECT g, 'x' FROM generate_series(1, 1000) g")
        with conn.transaction(force_rollback=True):
            conn.execute(sql)
            rows = conn.execute(
                "SELECT c.relname, l.mode FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE l.pid = pg_backend_pid() AND l.locktype = 'relation' "
                "AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND c.relkind IN ('r', 'p')"
            ).fetchall()
    strongest: dict[str, str] = {}
    for name, mode in rows:
        current = strongest.get(name)
        if current is None or LockMode.from_pg_locks(mode) > LockMode.from_pg_locks(current):
            strongest[name] = mode
    return strongest


@pytest.mark.parametrize("temporary", [False, True], ids=["table", "temporary"])
def test_create_table_as_takes_access_share_on_what_it_reads(fresh_db: str, temporary: bool) -> None:
    temp = "TEMPORARY " if temporary else ""
    sql = f"CREATE {temp}TABLE orders_copy AS SELECT id FROM orders WHERE status = 'x'"
    with psycopg.connect(fresh_db) as conn:
        num = int(conn.execute("SHOW server_version_num").fetchone()[0])  # type: ignore[index]
    held = _held_locks(fresh_db, sql)
    assert held["orders"] == "AccessShareLock"
    (effect,) = effects_for_sql(sql, PgVersion.parse(num))
    by_relation = {lk.relation: lk for lk in effect.locks}
    assert by_relation[QualifiedName("orders")].mode is LockMode.ACCESS_SHARE
    new = by_relation[QualifiedName("orders_copy")]
    assert not new.blocking  # nobody else can see it before commit
    assert LockMode.from_pg_locks(held["orders_copy"]) is new.mode


# -- wording -------------------------------------------------------------------------------------


def test_drop_index_with_table_name_names_the_table(tmp_path: Path) -> None:
    findings, _ = _check(tmp_path, 'op.drop_index("ix_orders_status", table_name="orders")')
    (hm102,) = [f for f in findings if f.code == "HM102"]
    assert "unknown offline" not in hm102.message
    assert "ACCESS EXCLUSIVE on orders" in hm102.message


def test_self_referencing_foreign_key_names_its_table_once(tmp_path: Path) -> None:
    findings, _ = _check(
        tmp_path,
        'op.create_foreign_key("fk_emp_manager", "employees", "employees", ["manager_id"], ["id"])',
    )
    (hm107,) = [f for f in findings if f.code == "HM107"]
    assert "employees and employees" not in hm107.message
    assert "SHARE ROW EXCLUSIVE on employees (blocks" in hm107.message


# -- HM403 ---------------------------------------------------------------------------------------


def test_lock_held_is_reported_only_when_a_later_statement_takes_a_new_lock(tmp_path: Path) -> None:
    findings, source = _check(
        tmp_path,
        """\
op.execute("SET lock_timeout = '2s'")
op.add_column("orders", sa.Column("note", sa.Text()))
op.alter_column("orders", "note", server_default="n/a")
op.execute("UPDATE orders SET note = 'x' WHERE id = 1")
op.add_column("orders", sa.Column("memo", sa.Text()))
""",
    )
    assert "HM403" not in _codes(findings), [f"{f.code} {f.message}" for f in findings]
    findings, source = _check(
        tmp_path,
        """\
op.execute("SET lock_timeout = '2s'")
op.add_column("orders", sa.Column("note", sa.Text()))
op.execute("UPDATE orders SET note = 'x' WHERE id = 1")
op.add_column("users", sa.Column("memo", sa.Text()))
""",
    )
    (hm403,) = [f for f in findings if f.code == "HM403"]
    assert hm403.location.line == line_of(source, '"orders", sa.Column("note"')
    assert "locking users" in hm403.message and "UPDATE" not in hm403.message


# -- suppressions --------------------------------------------------------------------------------


def test_a_trailing_ignore_covers_its_own_statement_only(tmp_path: Path) -> None:
    findings, source = _check(
        tmp_path,
        """\
op.execute("SET lock_timeout = '2s'")
op.create_index("ix_orders_a", "orders", ["a"])  # helios: ignore[HM101] -- small lookup table
op.create_index("ix_orders_b", "orders", ["b"])
""",
    )
    hm101 = [f.location.line for f in findings if f.code == "HM101"]
    assert hm101 == [line_of(source, "ix_orders_b")]
    assert "HM902" not in _codes(findings)


# -- missed hazards, with the live catalog -------------------------------------------------------


def test_index_rebuild_and_pk_using_index_judged_from_the_catalog(fresh_db: str, tmp_path: Path) -> None:
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE items (id bigint, code text NOT NULL, ref text);"
            "CREATE INDEX ix_items_code ON items (code);"
            "CREATE UNIQUE INDEX ix_items_id ON items (id);"
            "CREATE UNIQUE INDEX ix_items_ref ON items (ref);"
            "CREATE UNIQUE INDEX ix_items_code_u ON items (code);"
        )
    sql = tmp_path / "m.sql"
    sql.write_text(
        "SET lock_timeout = '2s';\n"
        'ALTER TABLE items ALTER COLUMN code TYPE text COLLATE "C";\n'
        "ALTER TABLE items ADD CONSTRAINT items_pkey PRIMARY KEY USING INDEX ix_items_code_u;\n",
        encoding="utf-8",
    )
    report = run_check(CheckOptions(paths=(str(sql),), database_url=fresh_db, cwd=tmp_path))
    (hm209,) = [f for f in report.findings if f.code == "HM209"]
    assert hm209.location.line == 2 and "ix_items_code" in hm209.message
    # code is NOT NULL in the catalog: adopting its index as the key scans nothing
    assert "HM114" not in {f.code for f in report.findings}
    sql.write_text(
        "SET lock_timeout = '2s';\n"
        "ALTER TABLE items ADD CONSTRAINT items_pkey PRIMARY KEY USING INDEX ix_items_id;\n",
        encoding="utf-8",
    )
    report = run_check(CheckOptions(paths=(str(sql),), database_url=fresh_db, cwd=tmp_path))
    assert "HM114" in {f.code for f in report.findings}


# -- helpers and loops of an application that is not installed ----------------------------------


def test_an_application_helper_or_loop_is_noted_unchecked_and_the_rest_is_rendered(tmp_path: Path) -> None:
    findings, source = _check(
        tmp_path,
        """\
op.execute("SET lock_timeout = '2s'")
op.create_index("ix_orders_a", "orders", ["a"])
add_columns("orders", sa.Column("x", sa.Text()))
for table in legacy_tables:
    op.alter_column(table, "id", type_=sa.BigInteger())
for name in ("b", "c"):
    op.create_index(f"ix_orders_{name}", "orders", [name])
""",
        header="from myapp.migration_utils import add_columns, legacy_tables\n",
    )
    report_state = run_check(CheckOptions(paths=(str(tmp_path),), pg_version="16", cwd=tmp_path)).revision_states[0]
    assert report_state.state.value == "rendered_with_placeholders", report_state.detail
    hm101 = sorted(f.location.line for f in findings if f.code == "HM101")
    assert hm101 == [line_of(source, "ix_orders_a"), line_of(source, 'f"ix_orders_{name}"'), line_of(source, 'f"ix_orders_{name}"')]
    (hm904,) = [f for f in findings if f.code == "HM904"]
    assert hm904.severity.name == "WARNING"
    assert f"myapp.migration_utils.add_columns() (line {line_of(source, 'add_columns(')})" in hm904.message
    assert f"loop over myapp.migration_utils.legacy_tables (line {line_of(source, 'for table in')})" in hm904.message
    assert "not checked" in hm904.message


def test_a_batched_backfill_loop_renders_its_batch_once(tmp_path: Path) -> None:
    findings, source = _check(
        tmp_path,
        """\
batch = "UPDATE orders SET state = 'x' WHERE id IN (SELECT id FROM orders WHERE state IS NULL LIMIT 500)"
with op.get_context().autocommit_block():
    conn = op.get_bind()
    while True:
        result = conn.execute(sa.text(batch))
        if result.rowcount <= 0:
            break
if len(legacy_rows) == 0:
    op.create_index("ix_orders_state", "orders", ["state"])
""",
        header="from myapp.data import legacy_rows\n",
    )
    state = run_check(CheckOptions(paths=(str(tmp_path),), pg_version="16", cwd=tmp_path)).revision_states[0]
    assert state.state.value == "rendered_with_placeholders", state.detail
    (hm904,) = [f for f in findings if f.code == "HM904"]
    assert "rows of op.get_bind().execute(...) (read as none)" in hm904.message
    assert "length of myapp.data.legacy_rows (assumed 0)" in hm904.message
    assert line_of(source, '"ix_orders_state"') in [f.location.line for f in findings if f.code == "HM101"]


def test_a_table_made_by_an_application_create_table_helper_counts_as_new(tmp_path: Path) -> None:
    findings, source = _check(
        tmp_path,
        """\
op.execute("SET lock_timeout = '2s'")
create_table("tab_state", sa.Column("id", sa.Integer(), primary_key=True))
op.create_index("ix_tab_state_id", "tab_state", ["id"], unique=True)
op.create_index("ix_orders_a", "orders", ["a"])
""",
        header="from myapp.migration_utils import create_table\n",
    )
    hm101 = [f.location.line for f in findings if f.code == "HM101"]
    assert hm101 == [line_of(source, "ix_orders_a")]
    (hm904,) = [f for f in findings if f.code == "HM904"]
    assert "myapp.migration_utils.create_table()" in hm904.message
    assert "HM901" not in {f.code for f in findings}


def test_a_server_default_from_an_application_function_is_an_unknown_function(tmp_path: Path) -> None:
    findings, source = _check(
        tmp_path,
        """\
op.execute("SET lock_timeout = '2s'")
op.create_table("steps", sa.Column("id", sa.BigInteger(), primary_key=True),
                sa.Column("created", sa.DateTime(timezone=True), server_default=current_timestamp()))
op.add_column("orders", sa.Column("stamp", sa.Text(), server_default=stamp_default()))
""",
        header="from myapp.sql import current_timestamp, stamp_default\n",
    )
    assert "HM904" not in {f.code for f in findings}, [f.message for f in findings]
    (hm201,) = [f for f in findings if f.code == "HM201"]  # an unknown function may be volatile
    assert hm201.location.line == line_of(source, "stamp_default()")


def test_an_application_value_bound_into_sql_renders_as_an_opaque_literal(tmp_path: Path) -> None:
    findings, _ = _check(
        tmp_path,
        """\
batch = sa.text("UPDATE orders SET id2 = id WHERE id IN (SELECT id FROM orders LIMIT :n)")
op.execute(batch.bindparams(n=conf.getint("core", "batch_size")))
""",
        header="from myapp.configuration import conf\n",
    )
    assert "HM904" not in {f.code for f in findings}, [f.message for f in findings]
    assert "HM901" not in {f.code for f in findings}


def test_an_application_helper_called_in_nested_blocks_is_noted_where_it_is(tmp_path: Path) -> None:
    findings, source = _check(
        tmp_path,
        """\
op.execute("SET lock_timeout = '2s'")
if True:
    try:
        with op.get_context().autocommit_block():
            add_columns("orders", sa.Column("x", sa.Text()))
    finally:
        op.create_index("ix_orders_a", "orders", ["a"])
""",
        header="from myapp.migration_utils import add_columns\n",
    )
    (hm904,) = [f for f in findings if f.code == "HM904"]
    assert f"myapp.migration_utils.add_columns() (line {line_of(source, 'add_columns(')})" in hm904.message
    assert [f.location.line for f in findings if f.code == "HM101"] == [line_of(source, "ix_orders_a")]


def test_a_failure_reason_names_no_object_address(tmp_path: Path) -> None:
    # Object reprs carry memory addresses that differ between runs; reports must not.
    findings, _ = _check(tmp_path, 'raise ValueError(f"cannot use {object()!r} here")\n')
    (hm904,) = [f for f in findings if f.code == "HM904"]
    assert "ValueError: cannot use <object object> here" in hm904.message, hm904.message
    assert " at 0x" not in hm904.message


# -- revisions that refuse offline mode, SQL from the application ------------------------------


ONLINE_ONLY = """\
if context.is_offline_mode():
    raise Exception("This upgrade is only possible in online mode")
conn = op.get_bind()
default_id = conn.execute(sa.text("SELECT default_aspect_id FROM locations WHERE is_default")).scalar()
op.add_column("aspects", sa.Column("is_default", sa.Boolean, nullable=False, server_default="false"))
op.alter_column("aspects", "is_default", server_default=None)
op.create_index(None, "aspects", ["is_default"], unique=True, postgresql_where=sa.text("is_default"))
if default_id is not None:
    conn.execute(sa.text("UPDATE aspects SET is_default = true WHERE id = :id"), {"id": default_id})
conn.execute(sa.text("UPDATE aspects SET zoom = 1"))
"""


def test_a_revision_that_refuses_offline_mode_is_rendered_as_online(tmp_path: Path) -> None:
    """``if context.is_offline_mode(): raise`` (indico has eight): production runs it online, so
    check renders it with the answer false instead of reading it from its source."""
    findings, source = _check(tmp_path, ONLINE_ONLY, header="from alembic import context\n")
    state = run_check(CheckOptions(paths=(str(tmp_path),), pg_version="16", cwd=tmp_path)).revision_states[0]
    assert state.state.value == "rendered_with_placeholders", state.detail
    assert "rendered as online" in state.detail and "rows it reads are taken as none" in state.detail
    codes_by_line = {(f.code, f.location.line) for f in findings}
    assert ("HM311", line_of(source, "server_default=None")) in codes_by_line  # old code's inserts fail
    assert ("HM101", line_of(source, "op.create_index(None")) in codes_by_line
    assert ("HM206", line_of(source, "sa.text(\"UPDATE aspects SET zoom = 1\")")) in codes_by_line  # whole-table UPDATE
    assert "HM904" in _codes(findings)  # the SELECT's rows: read as none, said so


def test_a_revision_that_offline_mode_renders_keeps_the_offline_answer(tmp_path: Path) -> None:
    findings, source = _check(
        tmp_path,
        """\
if context.is_offline_mode():
    op.execute("UPDATE aspects SET zoom = 1")
else:
    op.create_index("ix_aspects_zoom", "aspects", ["zoom"])
""",
        header="from alembic import context\n",
    )
    state = run_check(CheckOptions(paths=(str(tmp_path),), pg_version="16", cwd=tmp_path)).revision_states[0]
    assert state.state.value == "rendered", state.detail
    assert "HM101" not in _codes(findings) and "HM206" in _codes(findings)


def test_sql_from_a_module_that_is_not_installed_is_noted_unchecked(tmp_path: Path) -> None:
    findings, source = _check(
        tmp_path,
        """\
op.execute(SQL_FUNCTION_NATSORT)
op.create_index("ix_orders_a", "orders", ["a"])
""",
        header="from myapp.db.natsort import SQL_FUNCTION_NATSORT\n",
    )
    state = run_check(CheckOptions(paths=(str(tmp_path),), pg_version="16", cwd=tmp_path)).revision_states[0]
    assert state.state.value == "rendered_with_placeholders", state.detail
    (hm904,) = [f for f in findings if f.code == "HM904"]
    assert f"SQL in myapp.db.natsort.SQL_FUNCTION_NATSORT (line {line_of(source, 'op.execute(SQL')})" in hm904.message
    assert [f.location.line for f in findings if f.code == "HM101"] == [line_of(source, "ix_orders_a")]


def test_enum_created_through_the_connection_is_rendered_and_checked(tmp_path: Path) -> None:
    """``postgresql.ENUM(...).create(op.get_bind())`` (prefect): SQLAlchemy's DDL walk runs on the
    offline bind, its CREATE TYPE is recorded, and the column that uses the type is checked."""
    findings, source = _check(
        tmp_path,
        """\
status = postgresql.ENUM("READY", "NOT_READY", name="deployment_status")
status.create(op.get_bind())
op.add_column("deployment", sa.Column("status", status, nullable=False, server_default="NOT_READY"))
""",
        header="from sqlalchemy.dialects import postgresql\n",
    )
    report = run_check(CheckOptions(paths=(str(tmp_path),), pg_version="16", cwd=tmp_path, show_info=True))
    assert report.revision_states[0].state.value == "rendered_with_placeholders", report.revision_states[0].detail
    assert "statement(s) run through op.get_bind()" in report.revision_states[0].detail
    assert ("HM401", line_of(source, 'op.add_column("deployment"')) in {(f.code, f.location.line) for f in findings}
    assert report.statements >= 2  # CREATE TYPE and ALTER TABLE


def test_metadata_bound_the_sqlalchemy_1_way_is_rendered(tmp_path: Path) -> None:
    findings, source = _check(
        tmp_path,
        """\
meta = sa.MetaData(bind=op.get_bind())
jobs = sa.Table("jobs", meta, sa.Column("id", sa.Integer), sa.Column("state", sa.Text))
op.execute(jobs.update().values(state="done"))
""",
    )
    state = run_check(CheckOptions(paths=(str(tmp_path),), pg_version="16", cwd=tmp_path)).revision_states[0]
    assert state.state.value == "rendered", state.detail
    assert ("HM206", line_of(source, "op.execute(jobs.update()")) in {(f.code, f.location.line) for f in findings}


def test_models_of_the_application_name_tables_and_foreign_keys_consistently(tmp_path: Path) -> None:
    """mlflow's revisions name tables ``Model.__tablename__`` and reference ``Model.column``; both
    stand for one opaque table name, so the foreign key finds the table the revision created, and
    batch operations on such a table render."""
    findings, source = _check(
        tmp_path,
        """\
op.execute("SET lock_timeout = '2s'")
op.create_table(
    TraceInfo.__tablename__,
    sa.Column("request_id", sa.String(50), primary_key=True),
)
op.create_table(
    TraceTag.__tablename__,
    sa.Column("key", sa.Text, primary_key=True),
    sa.Column("request_id", sa.String(50), sa.ForeignKey(TraceInfo.request_id), primary_key=True),
)
for table in [TraceTag.__tablename__]:
    with op.batch_alter_table(table) as batch_op:
        batch_op.drop_constraint(f"fk_{table}_request_id", type_="foreignkey")
        batch_op.create_foreign_key(
            f"fk_{table}_request_id", TraceInfo.__tablename__, ["request_id"], ["request_id"], ondelete="CASCADE"
        )
        batch_op.alter_column("key", nullable=True, existing_type=sa.Text)
""",
        header="from myapp.models import TraceInfo, TraceTag\n",
    )
    report = run_check(CheckOptions(paths=(str(tmp_path),), pg_version="16", cwd=tmp_path, show_info=True))
    assert report.revision_states[0].state.value == "rendered_with_placeholders", report.revision_states[0].detail
    assert "HM904" not in _codes(findings)
    # both foreign keys rendered against the table the revision created (no index leads with
    # request_id: the primary key starts with key); a new table needs no NOT VALID
    hm507 = sorted(f.location.line for f in findings if f.code == "HM507")
    # (a batch's statements run when its block ends: they point at the ``with``)
    assert hm507 == [line_of(source, "TraceTag.__tablename__,") - 1, line_of(source, "with op.batch_alter_table")]
    assert all("-> TraceInfo___tablename__" in f.message for f in findings if f.code == "HM507")
    assert "HM102" not in _codes(findings)


def test_a_constraint_named_by_an_application_helper_is_dropped_by_its_opaque_name(tmp_path: Path) -> None:
    """superset: ``batch_op.drop_constraint(generic_find_fk_constraint_name(...), ...)``; Alembic
    measures the name, which a placeholder answers as the opaque name it stands for."""
    findings, source = _check(
        tmp_path,
        """\
insp = sa.inspect(op.get_bind())
with op.batch_alter_table("datasources") as batch_op:
    batch_op.drop_constraint(generic_find_fk_constraint_name("datasources", {"id"}, "ab_user", insp), type_="foreignkey")
    batch_op.drop_column("user_id")
""",
        header="from myapp.utils import generic_find_fk_constraint_name\n",
    )
    state = run_check(CheckOptions(paths=(str(tmp_path),), pg_version="16", cwd=tmp_path)).revision_states[0]
    assert state.state.value == "rendered_with_placeholders", state.detail
    assert ("HM303", line_of(source, "with op.batch_alter_table")) in {(f.code, f.location.line) for f in findings}


def test_application_rows_added_and_compared_in_the_revision_still_render(tmp_path: Path) -> None:
    """superset: ``objects += session.query(Dashboard).all()`` and ``.having(func.count(x) > 1)``
    with the application's session: the rows are unknown (loops run zero times), a comparison is
    an answer rendered both ways, a name built with ``+`` is text, and the DDL after is checked."""
    findings, source = _check(
        tmp_path,
        """\
session = db.Session(bind=op.get_bind())
objects = session.query(Slice).all()
objects += session.query(Dashboard).all()
for obj in objects:
    obj.created_by_fk = None
dupes = session.query(Slice.id).group_by(Slice.id).having(db.func.count(Slice.id) > 1).all()
name = "uq_" + Slice.__tablename__
if version() >= 3:
    op.create_unique_constraint("uq_dashboard_slice", "dashboard_slices", ["dashboard_id", "slice_id"])
op.create_index(name + "_ix", "dashboard_slices", ["slice_id"])
""",
        header="from myapp import db, version\nfrom myapp.models import Slice, Dashboard\n",
    )
    state = run_check(CheckOptions(paths=(str(tmp_path),), pg_version="16", cwd=tmp_path)).revision_states[0]
    assert state.state.value == "rendered_with_placeholders", state.detail
    assert "rendered with both answers of myapp.version >= ..." in state.detail
    located = {(f.code, f.location.line) for f in findings}
    assert ("HM104", line_of(source, "op.create_unique_constraint(")) in located
    (index,) = [f for f in findings if f.code == "HM101"]
    assert "uq_Slice___tablename___ix" in index.message


def test_rows_read_with_conn_scalars_are_none_and_the_rest_is_checked(tmp_path: Path) -> None:
    findings, source = _check(
        tmp_path,
        """\
conn = op.get_bind()
ids = conn.scalars(sa.select(sa.column("id")).select_from(sa.table("tags"))).all()
for tag_id in ids:
    op.execute(f"DELETE FROM tagged_object WHERE tag_id = {tag_id}")
op.create_index("ix_tagged_object_tag_id", "tagged_object", ["tag_id"])
""",
    )
    state = run_check(CheckOptions(paths=(str(tmp_path),), pg_version="16", cwd=tmp_path)).revision_states[0]
    assert state.state.value == "rendered_with_placeholders", state.detail
    assert "rows of op.get_bind()" in state.detail
    assert [f.location.line for f in findings if f.code == "HM101"] == [line_of(source, "op.create_index(")]
