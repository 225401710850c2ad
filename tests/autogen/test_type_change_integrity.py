"""Type changes and NOT NULL on real schemas: nothing lost, nothing silently converted, no
integrity dropped, and a failure leaves the table as usable as before.  PostgreSQL 15 and 18.

Each test drives the user's path: models v1 -> rows -> models v2 -> ``alembic revision
--autogenerate`` with the plugin -> ``alembic upgrade head`` -> probes on the real server.
"""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
from autogen_harness import Project, models_source
from pglast import parse_sql

ROWS = 3000


@pytest.fixture
def project(tmp_path: Path, fresh_db: str) -> Project:
    return Project.create(tmp_path / "proj", fresh_db, rows=ROWS)


def _triggers(project: Project) -> list[str]:
    with psycopg.connect(project.url) as conn:
        return [r[0] for r in conn.execute(
            "SELECT tgname FROM pg_trigger WHERE tgrelid = 'items'::regclass AND NOT tgisinternal"
        ).fetchall()]


def _columns(project: Project) -> list[str]:
    with psycopg.connect(project.url) as conn:
        return [r[0] for r in conn.execute(
            "SELECT attname FROM pg_attribute WHERE attrelid = 'items'::regclass AND attnum > 0 "
            "AND NOT attisdropped ORDER BY attnum"
        ).fetchall()]


def _insert(project: Project, **values: object) -> None:
    cols = ", ".join(values)
    marks = ", ".join(["%s"] * len(values))
    with psycopg.connect(project.url, autocommit=True) as conn:
        conn.execute(f"INSERT INTO items ({cols}) VALUES ({marks})", tuple(values.values()))


def _execute(project: Project, sql: str) -> None:
    with psycopg.connect(project.url, autocommit=True) as conn:
        conn.execute(sql)


def test_narrowing_refuses_values_that_do_not_fit_instead_of_truncating(project: Project) -> None:
    """Item 2: String(20) -> String(10) with longer values: plain ALTER fails with "value too long";
    the plan must refuse too (naming the rows), before it changes anything."""
    _execute(project, "UPDATE items SET status = 'backordered-x' WHERE id IN (7, 8, 9)")
    project.write_models(models_source({"status": 'sa.Column("status", sa.String(10))'},
                                       ['sa.Index("items_status_idx", "status")']))
    project.autogenerate()
    before = _columns(project)
    res = project.alembic("upgrade", "head", check=False)
    assert res.returncode != 0
    assert "3 row(s)" in res.stderr and "items.status" in res.stderr, res.stderr[-2000:]
    assert "id=7" in res.stderr
    assert _columns(project) == before and _triggers(project) == []
    _insert(project, status="ok")  # the table works as before
    _execute(project, "UPDATE items SET status = left(status, 10) WHERE length(status) > 10")
    project.alembic("upgrade", "head")
    assert project.count("SELECT count(*) FROM items WHERE status = 'backordere'") == 3
    assert project.count("SELECT count(*) FROM items WHERE status = 'new'") == ROWS - 3


def test_text_to_integer_with_an_unconvertible_row_is_refused_early(project: Project) -> None:
    """Item 8: Text -> Integer with one 'N/A': refused before anything changes; no trigger left
    behind, so the application's writes keep working."""
    _execute(project, "UPDATE items SET code = id::text")
    _execute(project, "UPDATE items SET code = 'N/A' WHERE id = 42")
    project.write_models(models_source({"code": 'sa.Column("code", sa.Integer)'}))
    project.autogenerate()
    res = project.alembic("upgrade", "head", check=False)
    assert res.returncode != 0
    assert "1 row(s)" in res.stderr and "id=42" in res.stderr, res.stderr[-2000:]
    assert _triggers(project) == [] and "code__new" not in _columns(project)
    _insert(project, code="also-not-a-number")
    _execute(project, "UPDATE items SET code = NULL WHERE code !~ '^[0-9]+$'")
    project.alembic("upgrade", "head")
    assert project.count("SELECT count(*) FROM items WHERE code = id") == ROWS - 1


def test_a_write_that_cannot_convert_during_the_backfill_is_undone(project: Project) -> None:
    """Item 8, the other half: a row that stops converting after the check (written by the
    application meanwhile) fails the backfill; the sync trigger and the new column are dropped
    and the error says what was undone."""
    _execute(project, "UPDATE items SET code = id::text")
    project.write_models(models_source({"code": 'sa.Column("code", sa.Integer)'}))
    revision_text = project.autogenerate()
    revision = project.revision_files()[-1]
    # A row that stops converting after the check (the sync trigger would refuse such a write
    # from the application, so it is made with the trigger switched off).
    marker = "runtime.backfill("
    assert marker in revision_text
    late = (
        'op.execute("ALTER TABLE items DISABLE TRIGGER items_code_sync")\n    '
        "op.execute(\"UPDATE items SET code = 'late' WHERE id = 5\")\n    "
        'op.execute("ALTER TABLE items ENABLE TRIGGER items_code_sync")\n    '
    )
    revision.write_text(revision_text.replace(marker, late + marker, 1))
    res = project.alembic("upgrade", "head", check=False)
    assert res.returncode != 0
    assert "undone" in res.stderr and "sync trigger" in res.stderr, res.stderr[-2000:]
    assert _triggers(project) == [] and "code__new" not in _columns(project)
    _insert(project, code="x")


def test_not_null_whose_validation_fails_is_undone(project: Project) -> None:
    """Item 9: NOT NULL on a column with NULLs: VALIDATE fails; the NOT VALID constraint is
    dropped again, so the running code's NULL inserts keep working."""
    _execute(project, "UPDATE items SET note = NULL WHERE id % 100 = 0")
    project.write_models(models_source({"note": 'sa.Column("note", sa.Text, nullable=False)'}))
    project.autogenerate()
    res = project.alembic("upgrade", "head", check=False)
    assert res.returncode != 0
    assert "undone" in res.stderr, res.stderr[-2000:]
    with psycopg.connect(project.url) as conn:
        left = conn.execute(
            "SELECT conname FROM pg_constraint WHERE conrelid = 'items'::regclass AND contype IN ('c', 'n') "
            "AND NOT convalidated"
        ).fetchall()
    assert left == []
    _insert(project, note=None)


def test_type_change_keeps_check_unique_and_foreign_key(project: Project) -> None:
    """Item 5: CHECK, UNIQUE and FOREIGN KEY on the changed column are still enforced after."""
    _execute(project, "UPDATE items SET score = id")
    _execute(project, "ALTER TABLE items ADD CONSTRAINT items_score_positive CHECK (score >= 0)")
    _execute(project, "ALTER TABLE items ADD CONSTRAINT items_score_key UNIQUE (score)")
    _execute(project, "CREATE TABLE scores (v integer PRIMARY KEY)")
    _execute(project, f"INSERT INTO scores SELECT generate_series(0, {ROWS * 2})")
    _execute(project, "ALTER TABLE items ADD CONSTRAINT items_score_fkey FOREIGN KEY (score) REFERENCES scores (v)")
    tables = 'scores = sa.Table("scores", metadata, sa.Column("v", sa.Integer, primary_key=True, autoincrement=False))\n'
    v1 = models_source(
        {"score": 'sa.Column("score", sa.Integer, sa.ForeignKey("scores.v", name="items_score_fkey"))'},
        ['sa.Index("items_status_idx", "status")', 'sa.CheckConstraint("score >= 0", name="items_score_positive")',
         'sa.UniqueConstraint("score", name="items_score_key")'],
        tables=tables,
    )
    v2 = v1.replace('sa.Column("score", sa.Integer,', 'sa.Column("score", sa.BigInteger,')
    assert v1 != v2
    project.write_models(v2)
    project.autogenerate()
    project.alembic("upgrade", "head")
    with psycopg.connect(project.url) as conn:
        kinds = dict(conn.execute(
            "SELECT conname, contype FROM pg_constraint WHERE conrelid = 'items'::regclass AND convalidated"
        ).fetchall())
        typ = conn.execute("SELECT format_type(atttypid, atttypmod) FROM pg_attribute "
                           "WHERE attrelid = 'items'::regclass AND attname = 'score'").fetchone()
    assert typ == ("bigint",)
    assert kinds.get("items_score_positive") == "c"
    assert kinds.get("items_score_key") == "u"
    assert kinds.get("items_score_fkey") == "f"
    for bad in ({"score": -1}, {"score": 1}, {"score": ROWS * 10}):
        with pytest.raises(psycopg.errors.IntegrityError):
            _insert(project, **bad)
    assert project.count("SELECT count(*) FROM items WHERE score = id") == ROWS


@pytest.mark.parametrize("key", ["identity", "serial"])
def test_integer_primary_key_to_bigint_keeps_key_and_generation(project: Project, key: str) -> None:
    """Items 4 and 6: an int identity or serial primary key widened to bigint is still the
    primary key, still generates values, and still rejects duplicates."""
    definition = "integer GENERATED BY DEFAULT AS IDENTITY" if key == "identity" else "serial"
    _execute(project, f"CREATE TABLE tickets (id {definition} PRIMARY KEY, title text)")
    _execute(project, "INSERT INTO tickets (title) SELECT 't' || g FROM generate_series(1, 500) g")
    old_id = ('sa.Column("id", sa.Integer, sa.Identity(), primary_key=True)' if key == "identity"
              else 'sa.Column("id", sa.Integer, primary_key=True)')
    tables = f'tickets = sa.Table("tickets", metadata, {old_id}, sa.Column("title", sa.Text))\n'
    project.write_models(models_source(tables=tables.replace("sa.Integer", "sa.BigInteger")))
    project.autogenerate()
    project.alembic("upgrade", "head")
    with psycopg.connect(project.url, autocommit=True) as conn:
        row = conn.execute("INSERT INTO tickets (title) VALUES ('new') RETURNING id").fetchone()
        assert row is not None and row[0] == 501
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute("INSERT INTO tickets (id, title) VALUES (1, 'dup')")
        typ = conn.execute("SELECT format_type(atttypid, atttypmod) FROM pg_attribute "
                           "WHERE attrelid = 'tickets'::regclass AND attname = 'id'").fetchone()
        assert typ == ("bigint",)
    assert project.count("SELECT count(*) FROM tickets") == 501
    assert project.alembic("check", check=False).returncode == 0


def test_offline_sql_never_runs_one_batch_then_drops_the_column(project: Project) -> None:
    """Item 1: ``alembic upgrade --sql`` of an expand/contract type change either completes the
    backfill (a loop until no row is left) or refuses; applied with psql semantics it loses nothing."""
    project.write_models(models_source({"score": 'sa.Column("score", sa.BigInteger)'}))
    project.autogenerate()
    res = project.alembic("upgrade", "head", "--sql", check=False)
    if res.returncode != 0:
        assert "offline" in res.stderr.lower()
        return
    sql = res.stdout
    assert "LIMIT" not in sql.split("DROP COLUMN")[0] or "LOOP" in sql
    # Run it as psql would (each statement in turn, stop at the first error).
    statements = [s for s in _split(sql) if s.strip()]
    with psycopg.connect(project.url, autocommit=True) as conn:
        conn.execute("UPDATE items SET score = id")
        conn.execute("DROP TABLE IF EXISTS alembic_version")
        for statement in statements:
            conn.execute(statement)
    assert project.count("SELECT count(*) FROM items WHERE score = id") == ROWS


def _split(script: str) -> list[str]:
    """Statements of a psql script, as pglast splits them (dollar quotes respected)."""
    data = script.encode()
    out = []
    for raw in parse_sql(script):
        start = raw.stmt_location
        end = start + raw.stmt_len if raw.stmt_len else len(data)
        out.append(data[start:end].decode())
    return out



def test_rerun_after_a_later_failure_does_not_start_the_expand_phase_again(project: Project) -> None:
    """Item 7: the swap committed, a later step failed; the re-run skips the expand phase of the
    swapped column (no second copy, NOT NULL kept) and finishes."""
    _execute(project, "UPDATE items SET score = id")
    _execute(project, "ALTER TABLE items ALTER COLUMN score SET NOT NULL")
    score = 'sa.Column("score", sa.BigInteger, nullable=False)'
    project.write_models(models_source({"score": score, "flag": 'sa.Column("flag", sa.Boolean)'}))
    text = project.autogenerate()
    revision = project.revision_files()[-1]
    upgrade = text.split("def downgrade")[0]
    swap = upgrade.index("RENAME COLUMN score__new TO score")
    end_of_swap = text.index("\n    )\n", swap) + len("\n    )")  # the end of the swap's call
    failing = text[:end_of_swap] + '\n    op.execute("SELECT 1 / 0")' + text[end_of_swap:]
    revision.write_text(failing)
    res = project.alembic("upgrade", "head", check=False)
    assert res.returncode != 0 and "division by zero" in res.stderr
    assert "score__new" not in _columns(project)  # the swap had committed
    revision.write_text(text)
    project.alembic("upgrade", "head")
    assert "score__new" not in _columns(project)
    with psycopg.connect(project.url) as conn:
        row = conn.execute("SELECT format_type(atttypid, atttypmod), attnotnull FROM pg_attribute "
                           "WHERE attrelid = 'items'::regclass AND attname = 'score'").fetchone()
    assert row == ("bigint", True)
    assert _triggers(project) == []
    assert project.count("SELECT count(*) FROM items WHERE score = id") == ROWS


def test_a_refused_downgrade_changes_nothing(project: Project) -> None:
    """Item 10: a downgrade whose guard refuses (a step that loses data) refuses before any undo
    step runs: the CHECK, the index and the version stay as they were, and upgrade head is a
    no-op."""
    project.write_models(models_source(
        {"legacy": None, "score": 'sa.Column("score", sa.BigInteger)'},
        ['sa.Index("items_status_idx", "status")', 'sa.Index("items_qty_idx", "qty")',
         'sa.CheckConstraint("qty >= 0", name="items_qty_positive")'],
    ))
    text = project.autogenerate()
    assert "runtime.confirm_data_loss(" in text.split("def downgrade")[1]
    project.alembic("upgrade", "head")

    def state() -> tuple[object, ...]:
        with psycopg.connect(project.url) as conn:
            return (
                conn.execute("SELECT version_num FROM alembic_version").fetchall(),
                conn.execute("SELECT conname FROM pg_constraint WHERE conrelid = 'items'::regclass "
                             "ORDER BY 1").fetchall(),
                conn.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'items' ORDER BY 1").fetchall(),
                _columns(project),
            )

    before = state()
    res = project.alembic("downgrade", "-1", check=False)
    assert res.returncode != 0
    assert "Nothing was changed" in res.stderr and "HELIOS_ALLOW_DATA_LOSS" in res.stderr, res.stderr[-1500:]
    assert state() == before
    project.alembic("downgrade", "-1", env={"HELIOS_ALLOW_DATA_LOSS": "1"})
    assert "items_qty_positive" not in str(state()[1])


def test_a_revision_that_commits_in_steps_can_be_run_again(project: Project) -> None:
    """Item 11: a plain create_table before the lock-safe steps committed; a later step failed;
    the re-run must not fail on "relation already exists"."""
    tables = 'notes = sa.Table("notes", metadata, sa.Column("id", sa.BigInteger, primary_key=True), sa.Column("body", sa.Text))\n'
    token = 'sa.Column("token", sa.Uuid, nullable=False, server_default=sa.text("gen_random_uuid()"))'
    project.write_models(models_source({"token": token}, tables=tables))
    text = project.autogenerate()
    upgrade, downgrade = text.split("def downgrade")
    assert "commits in steps" in upgrade and "if_not_exists=True" in upgrade
    end = upgrade.rindex("# ### end Alembic commands ###")
    revision = project.revision_files()[-1]
    revision.write_text(upgrade[:end] + 'op.execute("SELECT 1 / 0")\n    ' + upgrade[end:] + "def downgrade" + downgrade)
    res = project.alembic("upgrade", "head", check=False)
    assert res.returncode != 0 and "division by zero" in res.stderr
    revision.write_text(text)
    project.alembic("upgrade", "head")
    assert project.count("SELECT count(*) FROM items WHERE token IS NULL") == 0
    assert project.count("SELECT count(*) FROM notes") == 0


# --- found by the generative stairway (tests/generative/test_stairway.py) ------------------------


def test_unique_constraint_on_duplicates_is_refused_without_leaving_an_invalid_index(project: Project) -> None:
    """A UNIQUE constraint the data cannot take: the concurrent build fails; the INVALID index it
    leaves (which would still check new rows) is dropped again, and duplicates still insert."""
    project.write_models(models_source(extra=['sa.Index("items_status_idx", "status")',
                                              'sa.UniqueConstraint("qty", name="items_qty_key")']))
    project.autogenerate()
    res = project.alembic("upgrade", "head", check=False)
    assert res.returncode != 0 and "undone" in res.stderr, res.stderr[-1500:]
    with psycopg.connect(project.url) as conn:
        invalid = conn.execute("SELECT count(*) FROM pg_index WHERE indrelid = 'items'::regclass "
                               "AND NOT indisvalid").fetchone()
    assert invalid == (0,)
    _insert(project, qty=1)
    _insert(project, qty=1)


def test_dropping_a_not_null_column_lets_code_that_no_longer_writes_it_insert(project: Project) -> None:
    """Dropping a NOT NULL column without a default: the expand phase makes it nullable, so code
    deployed before the contract (not writing the column) can insert; a re-run after a failure
    that follows the drop skips that step instead of failing on the missing column."""
    _execute(project, "UPDATE items SET legacy = 'x'")
    _execute(project, "ALTER TABLE items ALTER COLUMN legacy SET NOT NULL")
    project.write_models(models_source({"legacy": 'sa.Column("legacy", sa.Text, nullable=False)'}))
    assert "No new upgrade operations" in project.alembic("check").stdout
    project.write_models(models_source({"legacy": None}))
    text = project.autogenerate()
    upgrade = text.split("def downgrade")[0]
    assert "ALTER COLUMN legacy DROP NOT NULL" in upgrade
    assert upgrade.index("DROP NOT NULL") < upgrade.index("DROP COLUMN IF EXISTS legacy")
    drop = upgrade.index("DROP COLUMN IF EXISTS legacy")
    end = text.index("\n", text.index(")", drop))
    revision = project.revision_files()[-1]
    revision.write_text(text[:end] + '\n    op.execute("SELECT 1 / 0")' + text[end:])
    res = project.alembic("upgrade", "head", check=False)
    assert res.returncode != 0 and "division by zero" in res.stderr
    assert "legacy" not in _columns(project)  # the failure came after the drop committed
    revision.write_text(text)
    project.alembic("upgrade", "head")
    assert "legacy" not in _columns(project)


def test_the_revision_says_when_the_column_moves_to_the_end(project: Project) -> None:
    """Item 3: the swap moves the column to the end of the table; the revision says so, because
    positional INSERT ... VALUES of running code would write into the wrong columns."""
    project.write_models(models_source({"score": 'sa.Column("score", sa.BigInteger)'}))
    text = project.autogenerate()
    flat = " ".join(line.strip().lstrip("#").strip() for line in text.splitlines())
    assert "items.score moves to the end of the table's columns" in flat
    assert "INSERT INTO items VALUES" in flat


@pytest.mark.parametrize("dependent", ["view", "foreign key"])
def test_a_column_others_depend_on_changes_in_place_with_the_lock_stated(project: Project, dependent: str) -> None:
    """Item 14: a column used by a view or referenced by another table's foreign key cannot be
    swapped for a copy (the DROP COLUMN would fail after the expand phase committed, leaving the
    trigger behind): the revision changes it in place and says what that locks."""
    if dependent == "view":
        _execute(project, "CREATE VIEW item_scores AS SELECT id, score FROM items")
    else:
        _execute(project, "ALTER TABLE items ADD CONSTRAINT items_score_key UNIQUE (score)")
        _execute(project, "UPDATE items SET score = id")
        _execute(project, "CREATE TABLE score_refs (score integer REFERENCES items (score))")
        _execute(project, "INSERT INTO score_refs VALUES (1), (2)")
    extra = ['sa.Index("items_status_idx", "status")']
    if dependent != "view":
        extra.append('sa.UniqueConstraint("score", name="items_score_key")')
    refs = (
        'score_refs = sa.Table("score_refs", metadata, sa.Column("score", sa.Integer, '
        'sa.ForeignKey("items.score", name="score_refs_score_fkey")))\n'
    ) if dependent != "view" else ""
    project.write_models(models_source({"score": 'sa.Column("score", sa.BigInteger)'}, extra, tables=refs))
    text = project.autogenerate()
    flat = " ".join(line.strip().lstrip("#").strip() for line in text.splitlines())
    assert "drop_table" not in text
    assert "score__new" not in text
    assert "runs in place" in flat and "ACCESS EXCLUSIVE" in flat
    assert ("views use it" if dependent == "view" else "foreign keys reference it") in flat
    project.alembic("upgrade", "head")
    assert _triggers(project) == []
    with psycopg.connect(project.url) as conn:
        typ = conn.execute("SELECT format_type(atttypid, atttypmod) FROM pg_attribute "
                           "WHERE attrelid = 'items'::regclass AND attname = 'score'").fetchone()
        assert typ == ("bigint",)
        if dependent == "view":
            assert conn.execute("SELECT count(*) FROM item_scores").fetchone() == (ROWS,)
    if dependent != "view":
        with pytest.raises(psycopg.errors.ForeignKeyViolation):
            _execute(project, "INSERT INTO score_refs VALUES (-5)")


def test_in_place_change_under_a_view_downgrades_with_an_explicit_cast(project: Project) -> None:
    """Found by the stairway: integer -> text under a view changes in place; the way back needs
    ``USING col::integer`` (no automatic cast from text), and the view comes back both times."""
    _execute(project, "CREATE VIEW item_scores AS SELECT id, score FROM items")
    project.write_models(models_source({"score": 'sa.Column("score", sa.Text)'}))
    project.autogenerate()
    project.alembic("upgrade", "head")
    project.alembic("downgrade", "-1")
    with psycopg.connect(project.url) as conn:
        typ = conn.execute("SELECT format_type(atttypid, atttypmod) FROM pg_attribute "
                           "WHERE attrelid = 'items'::regclass AND attname = 'score'").fetchone()
        assert typ == ("integer",)
        assert conn.execute("SELECT count(*) FROM item_scores").fetchone() == (ROWS,)


def test_catalog_only_change_under_a_view_recreates_the_view(project: Project) -> None:
    """Found by the stairway: varchar widening is catalog-only, but PostgreSQL refuses it on a
    column a view uses; the views are dropped and re-created around it in one transaction."""
    _execute(project, "CREATE VIEW item_status AS SELECT id, status FROM items")
    project.write_models(models_source({"status": 'sa.Column("status", sa.String(60))'}))
    project.autogenerate()
    project.alembic("upgrade", "head")
    with psycopg.connect(project.url) as conn:
        assert conn.execute("SELECT count(*) FROM item_status").fetchone() == (ROWS,)
        typ = conn.execute("SELECT format_type(atttypid, atttypmod) FROM pg_attribute "
                           "WHERE attrelid = 'items'::regclass AND attname = 'status'").fetchone()
    assert typ == ("character varying(60)",)
    project.alembic("downgrade", "-1")
    with psycopg.connect(project.url) as conn:
        assert conn.execute("SELECT count(*) FROM item_status").fetchone() == (ROWS,)
