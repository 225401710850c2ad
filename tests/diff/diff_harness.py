"""What the ``diff`` tests on two live databases share: the two databases, the differences found,
and a plan's steps run as the runtime would run them (each step in its own transaction, or in
autocommit when it must run outside one)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg

from helios_migrate import pgserver
from helios_migrate.diff.compare import DiffResult
from helios_migrate.pgserver import RunningServer
from helios_migrate.plan import TransactionMode


@contextmanager
def two_databases(server: RunningServer, pool: Any, prefix: str, *setup: str) -> Iterator[tuple[str, str]]:
    """Two new databases on ``server``, each with the ``setup`` statements run; dropped afterwards."""
    names = [pool.new_db_name(prefix), pool.new_db_name(prefix)]
    urls = [pgserver.create_database(server, n, "template0") for n in names]
    try:
        for url in urls:
            run_sql(url, *setup)
        yield urls[0], urls[1]
    finally:
        for name in names:
            pgserver.drop_database(server, name)


def run_sql(url: str, *statements: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        for sql in statements:
            conn.execute(sql)


def found(result: DiffResult) -> set[tuple[str, str, str]]:
    """``(status, kind, name)`` of each difference."""
    return {(d.status.value, d.kind, d.name) for d in result.differences}


def run_steps(url: str, steps: Iterable[Any]) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        for step in steps:
            if step.transaction is TransactionMode.AUTOCOMMIT:
                for sql in step.sql:
                    conn.execute(sql)
            else:
                with conn.transaction():
                    for sql in step.sql:
                        conn.execute(sql)
