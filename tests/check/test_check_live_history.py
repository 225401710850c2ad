"""History rules with ``--database-url``, on real PostgreSQL servers: HM507 counts the indexes the
database already has on the referencing table."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest
from check_helpers import revision_source, run_check, write_project

FK = revision_source(
    "0001", None,
    'op.create_foreign_key("fk_lines_order", "order_lines", "orders", ["order_id"], ["id"], '
    "postgresql_not_valid=True)",
)


def _schema(url: str, index: str | None) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE orders (id bigint PRIMARY KEY)")
        conn.execute("CREATE TABLE order_lines (id bigint PRIMARY KEY, order_id bigint, sku text)")
        if index:
            conn.execute(index)


def _hm507(root: Path, *args: str) -> list[dict[str, object]]:
    done = run_check(root, "--format", "json", "--show-info", *args)
    assert done.returncode in (0, 1), done.stderr
    return [f for f in json.loads(done.stdout)["findings"] if f["code"] == "HM507"]


@pytest.mark.parametrize(
    ("index", "reported"),
    [
        (None, True),
        ("CREATE INDEX ix_lines_order ON order_lines (order_id)", False),
        ("CREATE INDEX ix_lines_order_sku ON order_lines (order_id, sku)", False),
        ("CREATE INDEX ix_lines_sku_order ON order_lines (sku, order_id)", True),
        ("CREATE INDEX ix_lines_order_expr ON order_lines ((order_id + 0))", True),
    ],
    ids=["no-index", "index", "leading-index", "not-leading", "expression"],
)
def test_an_index_the_database_has_counts(fresh_db: str, tmp_path: Path, index: str | None, reported: bool) -> None:
    _schema(fresh_db, index)
    root = write_project(tmp_path / "proj", {"0001_fk.py": FK})
    offline = _hm507(root, "--no-cache")
    assert len(offline) == 1  # offline, only the revisions are known
    live = _hm507(root, "--database-url", fresh_db)
    assert bool(live) is reported
    if reported:
        assert "nor in the database" in str(live[0]["message"])
