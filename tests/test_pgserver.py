"""The real PostgreSQL servers behind the test-suite, the demo and ``verify``."""

from __future__ import annotations

import datetime
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import psycopg
import pytest
from conftest import DOCKER_SKIP_REASON, ServerPool
from proof_schema import EVENTS_2025_ROWS, ITEMS_ROWS, PARENTS_ROWS

from helios_migrate import pgserver
from helios_migrate.pgserver import RunningServer, ServerStartError
from helios_migrate.versions import PgVersion

REPO = Path(__file__).resolve().parents[1]


def _one(conn: psycopg.Connection, query: str) -> object:
    row = conn.execute(query).fetchone()
    assert row is not None
    return row[0]


# -- servers ------------------------------------------------------------------------------------


def test_server_answers_with_its_version(pg_server: RunningServer) -> None:
    with psycopg.connect(pg_server.url) as conn:
        num = int(str(_one(conn, "SHOW server_version_num")))
        assert _one(conn, "SELECT current_database()") == "postgres"
    assert pg_server.version == PgVersion.parse(num)
    assert pg_server.version.supported
    named = re.match(r"pg(\d+)-", pg_server.name)
    if named:
        assert pg_server.version.major == int(named.group(1))


def test_servers_we_start_listen_on_unix_sockets_only(pg_server: RunningServer) -> None:
    if not pg_server.owned or pg_server.name.endswith("-docker"):
        return  # servers named by URL and containers are configured by somebody else
    with psycopg.connect(pg_server.url) as conn:
        assert _one(conn, "SHOW listen_addresses") == ""
        assert _one(conn, "SHOW fsync") == "off"


def test_expected_backends_are_present(pg_pool: ServerPool) -> None:
    names = set(pg_pool.results)
    assert "pg18-embedded" in names
    if Path(pgserver.DEFAULT_DEBIAN_BINDIR, "postgres").is_file():
        assert "pg15-debian" in names
    for name, result in pg_pool.results.items():
        assert isinstance(result, RunningServer), f"{name}: {result}"


# -- fresh_db -------------------------------------------------------------------------------------


@pytest.mark.parametrize("round_", [1, 2])
def test_fresh_db_is_empty_and_isolated(fresh_db: str, round_: int) -> None:
    with psycopg.connect(fresh_db) as conn:
        assert str(_one(conn, "SELECT current_database()")).startswith("hm_t_")
        user_relations = _one(
            conn,
            "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')",
        )
        assert user_relations == 0
        # Whichever round runs second would see this table if databases leaked between tests.
        conn.execute("CREATE TABLE leak_check (id int)")


def test_fresh_db_is_a_new_database_each_time(
    fresh_db: str, pg_server: RunningServer, pg_pool: ServerPool
) -> None:
    other = pg_pool.new_db_name()
    other_url = pgserver.create_database(pg_server, other, "template0")
    try:
        assert other_url != fresh_db
        with psycopg.connect(fresh_db, autocommit=True) as conn:
            conn.execute("CREATE TABLE only_here (id int)")
        with psycopg.connect(other_url) as conn:
            assert _one(conn, "SELECT to_regclass('only_here')") is None
    finally:
        pgserver.drop_database(pg_server, other)


def test_create_and_drop_database(pg_server: RunningServer, pg_pool: ServerPool) -> None:
    name = pg_pool.new_db_name("cd")
    url = pgserver.create_database(pg_server, name)
    assert url == pg_server.database_url(name)
    # A forgotten open connection does not stop the drop.
    lingering = psycopg.connect(url)
    try:
        pgserver.drop_database(pg_server, name)
    finally:
        lingering.close()
    with psycopg.connect(pg_server.url) as conn:
        count = conn.execute("SELECT count(*) FROM pg_database WHERE datname = %s", (name,))
        assert count.fetchone() == (0,)
    pgserver.drop_database(pg_server, name)  # IF EXISTS: dropping twice is fine


# -- big_table_db ---------------------------------------------------------------------------------


def test_big_table_db_holds_the_proof_schema(big_table_db: str) -> None:
    with psycopg.connect(big_table_db) as conn:
        assert _one(conn, "SELECT count(*) FROM items") == ITEMS_ROWS >= 100_000
        assert _one(conn, "SELECT count(*) FROM parents") == PARENTS_ROWS
        orphans = "SELECT count(*) FROM items i LEFT JOIN parents p ON p.id = i.parent_id WHERE p.id IS NULL"
        assert _one(conn, orphans) == 0
        columns = conn.execute(
            "SELECT attname, format_type(atttypid, atttypmod), attnotnull FROM pg_attribute "
            "WHERE attrelid = 'items'::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum"
        ).fetchall()
        assert columns == [
            ("id", "bigint", True),
            ("n", "integer", True),
            ("v", "character varying(50)", False),
            ("t", "text", False),
            ("amount", "numeric(10,2)", False),
            ("created", "timestamp without time zone", False),
            ("status", "text", False),
            ("parent_id", "bigint", False),
        ]
        assert _one(conn, "SELECT pg_get_indexdef('items_n_idx'::regclass)") == (
            "CREATE INDEX items_n_idx ON public.items USING btree (n)"
        )
        assert _one(conn, "SELECT enum_range(NULL::mood)::text") == "{sad,ok}"
        # Template was VACUUM ANALYZEd: statistics and visibility map come with the clone.
        assert (
            _one(conn, "SELECT reltuples::bigint FROM pg_class WHERE oid = 'items'::regclass")
            == ITEMS_ROWS
        )
        assert (
            int(str(_one(conn, "SELECT relallvisible FROM pg_class WHERE oid = 'items'::regclass")))
            > 0
        )

        partitions = conn.execute(
            "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i "
            "JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'events'::regclass ORDER BY 1"
        ).fetchall()
        assert partitions == [
            ("events_2023", "FOR VALUES FROM ('2023-01-01') TO ('2024-01-01')"),
            ("events_2024", "FOR VALUES FROM ('2024-01-01') TO ('2025-01-01')"),
        ]
        assert _one(conn, "SELECT relkind FROM pg_class WHERE oid = 'events'::regclass") == "p"
        assert int(str(_one(conn, "SELECT count(*) FROM events_2023"))) > 0
        assert (
            _one(conn, "SELECT relispartition FROM pg_class WHERE oid = 'events_2025'::regclass")
            is False
        )
        assert conn.execute(
            "SELECT count(*), min(created), max(created) FROM events_2025"
        ).fetchone() == (
            EVENTS_2025_ROWS,
            datetime.date(2025, 1, 1),
            datetime.date(2025, 12, 31),
        )


@pytest.mark.parametrize("round_", [1, 2])
def test_big_table_db_clones_are_independent(big_table_db: str, round_: int) -> None:
    with psycopg.connect(big_table_db) as conn:
        assert _one(conn, "SELECT count(*) FROM items") == ITEMS_ROWS
        conn.execute("DELETE FROM items WHERE id <= 500")
        conn.execute("ALTER TABLE events DETACH PARTITION events_2023")


# -- URLs -------------------------------------------------------------------------------------------


def test_database_url_swaps_name() -> None:
    assert (
        pgserver.database_url("postgresql://postgres:@/postgres?host=/tmp/x", "db1")
        == "postgresql://postgres:@/db1?host=/tmp/x"
    )
    assert (
        pgserver.database_url("postgres://u:p%40ss@h:5433/app?sslmode=disable", "other")
        == "postgres://u:p%40ss@h:5433/other?sslmode=disable"
    )
    assert pgserver.database_url("postgresql://h", "x") == "postgresql://h/x"
    assert pgserver.database_url("postgresql://h/a?dbname=a", "b") == "postgresql://h/b?dbname=b"
    conninfo = pgserver.database_url("host=/tmp/s dbname=postgres user=me", "b")
    assert psycopg.conninfo.conninfo_to_dict(conninfo) == {
        "host": "/tmp/s",
        "dbname": "b",
        "user": "me",
    }


def test_redact_url() -> None:
    assert pgserver.redact_url("postgresql://u:secret@h/db") == "postgresql://u:***@h/db"
    assert pgserver.redact_url("postgresql://u@h/db") == "postgresql://u@h/db"


def test_parse_database_urls() -> None:
    assert pgserver.parse_database_urls("") == []
    assert pgserver.parse_database_urls(
        " postgresql://a/x,postgres://b/y\n postgresql://c/z , postgresql://d/w"
    ) == ["postgresql://a/x", "postgres://b/y", "postgresql://c/z", "postgresql://d/w"]
    # A multi-host URL keeps its commas.
    assert pgserver.parse_database_urls("postgresql://h1:5432,h2:5432/db,postgresql://e/f") == [
        "postgresql://h1:5432,h2:5432/db",
        "postgresql://e/f",
    ]
    with pytest.raises(ValueError, match="not a PostgreSQL URL"):
        pgserver.parse_database_urls("postgresql://a/x mysql://b/y")


def test_servers_from_env(pg_pool: ServerPool, monkeypatch: pytest.MonkeyPatch) -> None:
    server = pg_pool.servers[0]
    no_db = re.sub(r"/postgres\?", "/?", server.url)
    monkeypatch.setenv("HELIOS_TEST_DATABASE_URLS", f"{server.url},\n {no_db}")
    found = pgserver.servers_from_env()
    assert [s.name for s in found] == ["env:1", "env:2"]
    assert all(s.version == server.version and not s.owned for s in found)
    assert found[1].url == server.url  # no database named: the maintenance database is used
    found[0].stop()  # not ours: a no-op
    assert pgserver.server_version(server.url) == server.version

    monkeypatch.setenv(
        "HELIOS_TEST_DATABASE_URLS", "postgresql://postgres@/postgres?host=/nonexistent"
    )
    with pytest.raises(
        ServerStartError, match=r"(?s)env:1: cannot connect to .*HELIOS_TEST_DATABASE_URLS"
    ):
        pgserver.servers_from_env()
    monkeypatch.delenv("HELIOS_TEST_DATABASE_URLS")
    assert pgserver.servers_from_env() == []


# -- failures are explained -----------------------------------------------------------------------


def test_missing_binaries_are_explained(tmp_path: Path) -> None:
    with pytest.raises(ServerStartError) as info:
        pgserver.start_debian(tmp_path / "w", bindir=tmp_path / "no-such-bin", name="pg15-debian")
    message = str(info.value)
    assert "pg15-debian" in message and "initdb not found" in message
    assert "what to do: install the server binaries" in message


def test_start_error_carries_the_log_tail() -> None:
    error = ServerStartError("pgX", "it broke", hint="fix it", log_tail="line 1\nFATAL: boom")
    assert str(error) == (
        "pgX: it broke\n  what to do: fix it\n  last lines of the server log:\n"
        "    line 1\n    FATAL: boom"
    )


def test_start_and_stop_a_debian_server() -> None:
    # Not under tmp_path: every new pytest session resets /tmp/pytest-of-<user> to mode 700, which
    # locks the postgres OS user out of a server started below it.
    workdir = Path(tempfile.mkdtemp(prefix="helios-pg-test-"))
    try:
        if pgserver.binaries_major(pgserver.DEFAULT_DEBIAN_BINDIR) is None:
            # A machine without Debian's server: starting one is refused with what to do.
            with pytest.raises(ServerStartError, match="what to do: install the server binaries"):
                pgserver.start_debian(workdir / "deb")
            return
        server = pgserver.start_debian(workdir / "deb")
        assert server.owned and server.name == "pg15-debian"
        assert pgserver.server_version(server.url).major == 15
        server.stop()
        server.stop()
        with pytest.raises(psycopg.OperationalError):
            pgserver.server_version(server.url, connect_timeout=2)
        assert not (workdir / "deb" / "data" / "postmaster.pid").exists()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def test_require_pg_fails_the_session_loudly(tmp_path: Path) -> None:
    env = {**os.environ, "HELIOS_REQUIRE_PG": "18,99"}
    env.pop("PYTEST_XDIST_WORKER", None)
    env.pop("PYTEST_CURRENT_TEST", None)
    for extra in ([], ["-n", "1"]):
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                f"--basetemp={tmp_path / ('run' + str(len(extra)))}",
                "-q",
                "-p",
                "no:cacheprovider",
                *extra,
                "tests/test_pgserver.py::test_redact_url",
            ],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
        )
        output = result.stdout + result.stderr
        assert result.returncode not in (0, 5), output
        assert "HELIOS_REQUIRE_PG=18,99" in output, output
        assert "PostgreSQL 99: no backend provides it" in output, output


# -- testcontainers -------------------------------------------------------------------------------


@pytest.mark.docker
def test_testcontainers_backend() -> None:
    if pgserver.docker_unavailable_reason() is not None:
        pytest.skip(DOCKER_SKIP_REASON)
    server = pgserver.start_testcontainer("postgres:16")
    assert server is not None
    try:
        assert server.name == "pg16-docker" and server.version.major == 16
        assert pgserver.server_version(server.url) == server.version
    finally:
        server.stop()
