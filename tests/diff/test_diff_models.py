"""``helios-migrate diff models URL``: SQLAlchemy models (an enum, a CHECK, a foreign key, a partial
and an expression index, an INCLUDE index, server defaults, an identity) against a database made by
hand with the same DDL, then with drift (real servers, PostgreSQL 15 and 18)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import psycopg

from helios_migrate.pgserver import RunningServer

MODELS = '''
import sqlalchemy as sa

metadata = sa.MetaData()
state = sa.Enum("new", "paid", "shipped", name="order_state")
customers = sa.Table(
    "customers", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("email", sa.Text, nullable=False, unique=True),
)
orders = sa.Table(
    "orders", metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(always=True), primary_key=True),
    sa.Column("customer_id", sa.Integer, sa.ForeignKey("customers.id", ondelete="CASCADE"), nullable=False),
    sa.Column("state", state, nullable=False, server_default="new"),
    sa.Column("total", sa.Numeric(10, 2), nullable=False, server_default=sa.text("0")),
    sa.Column("note", sa.Text),
    sa.CheckConstraint("total >= 0", name="orders_total_positive"),
    sa.Index("orders_open_idx", "customer_id", postgresql_where=sa.text("state <> 'shipped'")),
    sa.Index("orders_lower_note_idx", sa.text("lower(note)")),
    sa.Index("orders_customer_idx", "customer_id", postgresql_include=["total"]),
)
'''

DDL = """
CREATE TYPE order_state AS ENUM ('new', 'paid', 'shipped');
CREATE TABLE customers (id serial PRIMARY KEY, email text NOT NULL UNIQUE);
CREATE TABLE orders (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer_id integer NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    state order_state NOT NULL DEFAULT 'new',
    total numeric(10, 2) NOT NULL DEFAULT 0 CONSTRAINT orders_total_positive CHECK (total >= 0),
    note text
);
CREATE INDEX orders_open_idx ON orders (customer_id) WHERE state <> 'shipped';
CREATE INDEX orders_lower_note_idx ON orders (lower(note));
CREATE INDEX orders_customer_idx ON orders (customer_id) INCLUDE (total);
"""


def _diff(cwd: Path, server: RunningServer, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "helios_migrate", "diff", *args, "--models", "shop_models:metadata",
         "--scratch-url", server.url, "--format", "json"],
        cwd=cwd, capture_output=True, text=True, timeout=300,
    )


def test_models_against_a_database(fresh_db: str, pg_server: RunningServer, tmp_path: Path) -> None:
    (tmp_path / "shop_models.py").write_text(MODELS)
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute(DDL)
    same = _diff(tmp_path, pg_server, "models", fresh_db)
    assert same.returncode == 0, same.stdout + same.stderr
    assert json.loads(same.stdout)["differences"] == []

    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute("""
            DROP INDEX orders_open_idx;
            CREATE INDEX orders_open_idx ON orders (customer_id) WHERE state = 'new';
            ALTER TABLE orders ALTER COLUMN state SET DEFAULT 'paid';
        """)
    drift = _diff(tmp_path, pg_server, "models", fresh_db)
    assert drift.returncode == 1
    found = {(d["kind"], d["name"]): d["changes"] for d in json.loads(drift.stdout)["differences"]}
    assert found == {
        ("index", "public.orders_open_idx"): [{
            "attribute": "definition",
            "source": "ON public.orders USING btree (customer_id) WHERE (state <> 'shipped'::order_state)",
            "target": "ON public.orders USING btree (customer_id) WHERE (state = 'new'::order_state)",
        }],
        ("column", "public.orders.state"): [{
            "attribute": "default", "source": "'new'::order_state", "target": "'paid'::order_state",
        }],
    }
