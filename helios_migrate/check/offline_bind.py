"""What ``op.get_bind()`` returns while ``check`` renders a revision offline.

``alembic upgrade --sql`` lets a revision call ``op.get_bind()`` and fails only when the bind is
used.  This bind goes one step further: SQL a revision passes to ``conn.execute(...)`` (a string,
``sa.text(...)`` with or without parameters, or an ``insert``/``update``/``delete`` construct) is
recorded as a statement to check, marked as run through the connection, because online it runs
in the migration's transaction exactly like ``op.execute``; so is the DDL SQLAlchemy runs through
it (``enum.create(bind)``, ``table.create(bind)``).  ``sa.inspect(bind)`` gives an
inspector that answers from the schema the earlier revisions built (:mod:`.offline_schema`), when
the renderer provides one.  Everything else that needs an answer from a database — reading rows
of a result, opening a session — raises :class:`NeedsDatabase`, and the revision is read from its
source instead.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any


class NeedsDatabase(Exception):
    """Raised when a revision asks a database something during offline rendering."""


class OfflineResult:
    """The result of a recorded ``execute``.  With ``read_as_empty`` (the renderer's note-taker),
    reading it gives no rows, as on a database the revisions just built, and what depended on
    the rows is noted as not checked; without it, reading needs a database."""

    _NO_ROW = frozenset({"fetchone", "first", "scalar", "one_or_none", "scalar_one_or_none", "rowcount"})
    _NO_ROWS = frozenset({"fetchall", "all", "fetchmany", "partitions"})
    _SAME = frozenset({"mappings", "scalars", "columns", "unique", "yield_per", "tuples"})

    def __init__(self, what: str, read_as_empty: Callable[[str], None] | None = None) -> None:
        self._what = what
        self._empty = read_as_empty

    def _needs(self) -> NeedsDatabase:
        return NeedsDatabase(f"it reads the result of {self._what}, which needs a database connection")

    def _read(self) -> None:
        if self._empty is None:
            raise self._needs()
        self._empty(f"rows of {self._what} (read as none)")

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        if self._empty is None or name not in self._NO_ROW | self._NO_ROWS | self._SAME:
            raise self._needs()
        if name in self._SAME:
            return lambda *a, **kw: self
        self._read()
        if name == "rowcount":  # a batched backfill's `while ...: if result.rowcount <= 0: break`
            return 0
        return (lambda *a, **kw: None) if name in self._NO_ROW else (lambda *a, **kw: [])

    def __iter__(self) -> Any:
        self._read()
        return iter(())


class OfflineBind:
    """A connection that records the SQL it is asked to run and answers nothing."""

    name = "postgresql"

    def __init__(
        self, dialect: Any, run: Callable[[Any], None], call: str = "op.get_bind()",
        inspector: Callable[[], Any] | None = None,
        read_as_empty: Callable[[str], None] | None = None,
    ) -> None:
        self.dialect = dialect
        self._run = run
        self._call = call
        self._inspector = inspector
        self._read_as_empty = read_as_empty

    def in_transaction(self) -> bool:
        """The migration runs in its transaction (transactional DDL), as offline rendering shows."""
        return True

    def offline_inspector(self) -> Any:
        """What ``sa.inspect(bind)`` returns offline."""
        if self._inspector is None:
            raise NeedsDatabase(f"it inspects the database (sa.inspect({self._call})), which needs a connection")
        return self._inspector()

    @property
    def engine(self) -> OfflineBind:
        return self

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        raise NeedsDatabase(f"it uses {self._call}.{name}, which needs a database connection")

    def execute(self, statement: Any, *multiparams: Any, **params: Any) -> OfflineResult:
        """Record ``statement`` (with the first set of parameters, if any) as SQL to check."""
        construct = _bound(statement, _first_params(multiparams, params))
        if construct is not None:
            self._run(construct)
        return OfflineResult(f"{self._call}.execute(...)", self._read_as_empty)

    def scalar(self, statement: Any, *multiparams: Any, **params: Any) -> Any:
        """``conn.scalar(...)``: :meth:`execute`, then its first value (none offline)."""
        return self.execute(statement, *multiparams, **params).scalar()

    def scalars(self, statement: Any, *multiparams: Any, **params: Any) -> OfflineResult:
        """``conn.scalars(...)``: :meth:`execute`, then its first column (no rows offline)."""
        return self.execute(statement, *multiparams, **params).scalars()

    def exec_driver_sql(self, statement: str, parameters: Any = None, *rest: Any) -> OfflineResult:
        if parameters:
            raise NeedsDatabase(f"it passes driver parameters to {self._call}.exec_driver_sql()")
        from sqlalchemy import text  # lazy: SQLAlchemy, off the check path

        self._run(text(statement.replace(":", "\\:")))
        return OfflineResult(f"{self._call}.exec_driver_sql(...)", self._read_as_empty)

    def _run_ddl_visitor(self, visitorcallable: Any, element: Any, **kwargs: Any) -> None:
        """``enum.create(bind)``, ``table.create(bind)``: SQLAlchemy's own DDL walk, whose
        statements come back through :meth:`execute` and are recorded like any other.  With
        ``checkfirst=True`` it asks the catalog first, which needs a database."""
        visitorcallable(self.dialect, self, **kwargs).traverse_single(element)

    @staticmethod
    def schema_for_object(element: Any) -> Any:
        """The schema DDL names ``element`` in (no schema translation map offline)."""
        return getattr(element, "schema", None)

    def begin(self) -> _NoTransaction:
        return _NoTransaction()

    begin_nested = begin

    def commit(self) -> None:
        raise NeedsDatabase(f"it commits through {self._call}, which needs a database connection")

    def connect(self) -> OfflineBind:
        return self

    def close(self) -> None:
        return None

    def __enter__(self) -> OfflineBind:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


class _NoTransaction:
    """``with conn.begin():`` offline: the statements stay in the migration's transaction."""

    def __enter__(self) -> _NoTransaction:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def commit(self) -> None:
        return None

    def rollback(self) -> None:
        return None


def _first_params(multiparams: Sequence[Any], params: Mapping[str, Any]) -> dict[str, Any]:
    if params:
        return dict(params)
    for value in multiparams:
        if isinstance(value, Mapping):
            return dict(value)
        if isinstance(value, (list, tuple)) and value and isinstance(value[0], Mapping):
            return dict(value[0])
    return {}


def _bound(statement: Any, params: dict[str, Any]) -> Any:
    """The statement as a construct Alembic can render with literal values; ``None`` for a plain
    ``SELECT`` construct (reading, not changing: only its result could matter)."""
    from sqlalchemy import text  # lazy: SQLAlchemy, off the check path
    from sqlalchemy.sql.elements import TextClause  # lazy: SQLAlchemy, off the check path
    from sqlalchemy.sql.selectable import Select  # lazy: SQLAlchemy, off the check path

    if isinstance(statement, str):
        statement = text(statement)
    if isinstance(statement, Select):
        if params:
            raise NeedsDatabase("it selects rows through op.get_bind() with parameters")
        return None
    if not params:
        return statement
    if isinstance(statement, TextClause):
        known = {k: v for k, v in params.items() if k in statement._bindparams}
        return statement.bindparams(**known)
    values = getattr(statement, "values", None)
    if callable(values):
        return values(**params)
    raise NeedsDatabase(f"it executes {type(statement).__name__} with parameters through op.get_bind()")
