"""Connections to a user's database: read-only, with one clear message when it cannot be reached."""

from __future__ import annotations

from typing import Any

import psycopg


class DatabaseUnreachable(Exception):
    """The database named by ``--database-url`` could not be reached; the message says what to do."""


def first_line(exc: BaseException) -> str:
    """The first line of a driver error, for one-line messages."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def libpq_url(url: str) -> str:
    """A SQLAlchemy URL (``postgresql+psycopg://``, as in ``alembic.ini``) as libpq accepts it;
    libpq URLs and keyword conninfo strings are returned unchanged."""
    scheme, sep, rest = url.partition("://")
    if sep and scheme.startswith("postgresql+"):
        return "postgresql://" + rest
    return url


def connect_read_only(database_url: str, *, option: str = "--database-url") -> psycopg.Connection[Any]:
    """An autocommit, read-only connection (every statement helios-migrate sends a user's
    database is a catalog ``SELECT``).  SQLAlchemy URLs are accepted."""
    try:
        conn = psycopg.connect(libpq_url(database_url), connect_timeout=10, autocommit=True)
    except psycopg.Error as exc:
        raise DatabaseUnreachable(
            f"cannot connect to the database given by {option}: {first_line(exc)}\n"
            "check the URL, that the server is running, and that it accepts connections from here"
        ) from None
    conn.read_only = True
    return conn
