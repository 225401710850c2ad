"""``helios-migrate demo``: a guided run on an embedded PostgreSQL.

It starts a throwaway server, creates a small shop schema with rows, and explains -- with facts read
from that live database -- what a typical "innocent" migration would lock, next to the lock-safe
form of the same change.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from rich.console import Console
from rich.panel import Panel

SAMPLE_SCHEMA = """
CREATE TABLE customers (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email varchar(120) NOT NULL,
    created_at timestamp NOT NULL DEFAULT now()
);
CREATE TABLE orders (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer_id bigint NOT NULL,
    total numeric(10,2) NOT NULL,
    status varchar(20) NOT NULL DEFAULT 'new',
    note text
);
INSERT INTO customers (email) SELECT 'user' || g || '@example.com' FROM generate_series(1, 20000) g;
INSERT INTO orders (customer_id, total, status)
    SELECT 1 + g % 20000, (g % 500) + 0.99, 'paid' FROM generate_series(1, 200000) g;
ANALYZE customers;
ANALYZE orders;
"""

RISKY_MIGRATION = """\
ALTER TABLE orders ADD COLUMN c float DEFAULT random();
ALTER TABLE orders ALTER COLUMN status TYPE varchar(40);
ALTER TABLE orders ALTER COLUMN customer_id TYPE integer;
ALTER TABLE orders ADD CONSTRAINT orders_customer_fk FOREIGN KEY (customer_id) REFERENCES customers (id);
CREATE INDEX orders_status_idx ON orders (status);
ALTER TABLE orders ALTER COLUMN note SET NOT NULL;
"""

SAFE_MIGRATION = """\
ALTER TABLE orders ADD COLUMN c float;
ALTER TABLE orders ALTER COLUMN c SET DEFAULT random();
ALTER TABLE orders ADD CONSTRAINT orders_customer_fk FOREIGN KEY (customer_id) REFERENCES customers (id) NOT VALID;
ALTER TABLE orders VALIDATE CONSTRAINT orders_customer_fk;
CREATE INDEX CONCURRENTLY IF NOT EXISTS orders_status_idx ON orders (status);
"""


def run_demo(workdir: str | None) -> int:
    """Run the demo; returns an exit code."""
    import psycopg

    from .locks_command import OutputFormat, run_locks
    from .pgserver import ServerStartError, start_embedded

    console = Console(highlight=False, soft_wrap=True)
    base = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="helios-demo-"))
    base.mkdir(parents=True, exist_ok=True)
    console.print(Panel.fit("helios-migrate demo: what a migration really locks", style="bold"))
    console.print(f"Starting an embedded PostgreSQL in {base} ...")
    try:
        server = start_embedded(base / "pgdata")
    except ServerStartError as exc:
        console.print(f"[red]error[/red]: {exc}")
        return 2
    try:
        console.print(f"PostgreSQL {server.version} is up. Creating customers (20,000 rows) and orders (200,000 rows) ...")
        with psycopg.connect(server.url, autocommit=True) as conn:
            conn.execute("DROP TABLE IF EXISTS orders, customers")
            conn.execute(SAMPLE_SCHEMA)
        console.rule("The migration as usually written")
        console.print(RISKY_MIGRATION, style="cyan", markup=False)
        run_locks(RISKY_MIGRATION, pg_version=None, database_url=server.url,
                  output_format=OutputFormat.TEXT, console=console)
        console.rule("The same intent, written lock-safe")
        console.print(SAFE_MIGRATION, style="cyan", markup=False)
        run_locks(SAFE_MIGRATION, pg_version=None, database_url=server.url,
                  output_format=OutputFormat.TEXT, console=console)
        console.print()
        console.print(
            "Try it on your own SQL: [bold]helios-migrate locks \"ALTER TABLE ...\" --pg-version 15[/bold]"
        )
    finally:
        server.stop()
        if workdir is None:
            shutil.rmtree(base, ignore_errors=True)
    return 0
