"""Rendering each revision to offline PostgreSQL SQL, in this process, without a database.

Each revision's ``upgrade()`` (or ``downgrade()``) runs against one offline ``MigrationContext``
for the ``postgresql`` dialect with transactional DDL, exactly as ``alembic upgrade --sql`` runs
it, but without the user's ``env.py`` (which may need a database).  The revision gets its own
``BEGIN`` / ``COMMIT``, as with ``transaction_per_migration``, and
``op.get_context().autocommit_block()`` emits its ``COMMIT`` / ``BEGIN`` as Alembic does.

Every emitted statement remembers the position of the ``op.*`` call that produced it in the
revision file, found on the Python stack at emit time, so findings and ``# helios: ignore``
comments refer to the revision's own lines.
"""

from __future__ import annotations

import ast
import contextlib
import dataclasses
import io
import itertools
import sys
import types
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .project import AlembicProject, RevisionFile


class NeedsDatabase(Exception):
    """Raised when a revision asks for a database connection during offline rendering."""


@dataclass(frozen=True)
class EmittedStatement:
    sql: str
    line: int
    column: int = 0
    end_line: int = 0
    end_column: int = 0
    column_types: tuple[tuple[str, str, str], ...] = ()
    """``(table, column, type)`` the revision declared for the column before the statement
    (Alembic's ``existing_type``): the offline SQL does not carry it."""


@dataclass(frozen=True)
class RenderFailure:
    reason: str
    line: int = 0


@dataclass(frozen=True)
class Rendered:
    """The statements of one revision function, or why they could not be rendered."""

    statements: tuple[EmittedStatement, ...]
    failure: RenderFailure | None = None


class _Capture:
    """Replaces the offline impl's ``static_output``: records each statement with its source
    position in the revision file being rendered."""

    def __init__(self) -> None:
        self.filename = ""
        self.default_line = 0
        self.out: list[EmittedStatement] = []
        self.column_types: tuple[tuple[str, str, str], ...] = ()

    def __call__(self, text: str) -> None:
        frame: types.FrameType | None = sys._getframe(1)
        while frame is not None and frame.f_code.co_filename != self.filename:
            frame = frame.f_back
        emitted = EmittedStatement(text, self.default_line) if frame is None else _positioned(text, frame)
        if self.column_types:
            emitted = dataclasses.replace(emitted, column_types=self.column_types)
        self.out.append(emitted)

    def declaring_existing_type(self, alter_column: Callable[..., Any]) -> Callable[..., Any]:
        """Wrap the impl's ``alter_column`` so the statements it emits carry ``existing_type``."""

        def wrapped(table_name: str, column_name: str, *args: Any, **kw: Any) -> Any:
            existing = kw.get("existing_type")
            declared: tuple[tuple[str, str, str], ...] = ()
            if existing is not None and kw.get("type_") is not None:
                try:
                    declared = ((table_name, column_name, _pg_type(existing)),)
                except Exception:  # a type the PostgreSQL dialect cannot compile: no hint
                    declared = ()
            self.column_types = declared
            try:
                return alter_column(table_name, column_name, *args, **kw)
            finally:
                self.column_types = ()

        return wrapped


def _pg_type(type_: Any) -> str:
    from ..alembic_ops import sql_type_text

    return sql_type_text(type_)


def _positioned(text: str, frame: types.FrameType) -> EmittedStatement:
    line = frame.f_lineno or 0
    positions = getattr(frame.f_code, "co_positions", None)
    if positions is not None:
        pos = next(itertools.islice(positions(), frame.f_lasti // 2, None), None)
        if pos is not None and pos[0] is not None and pos[0] == line:
            _, end_line, col, end_col = pos
            return EmittedStatement(
                text,
                line,
                (col or 0) + 1,
                end_line or line,
                (end_col or 0) + 1 if end_col is not None else 0,
            )
    return EmittedStatement(text, line)


class RevisionRenderer:
    """Renders revisions of one project; use as a context manager around all the rendering."""

    def __init__(self, project: AlembicProject | None) -> None:
        self.project = project
        self._capture = _Capture()
        self._stack = contextlib.ExitStack()
        self._ctx: Any = None
        self._modules: dict[Path, types.ModuleType | BaseException] = {}
        self._counter = itertools.count(1)

    # -- set-up --------------------------------------------------------------------------------

    def __enter__(self) -> RevisionRenderer:
        from alembic.operations import Operations
        from alembic.runtime.environment import EnvironmentContext
        from alembic.runtime.migration import MigrationContext

        self._ctx = MigrationContext.configure(
            dialect_name="postgresql",
            opts={
                "as_sql": True,
                "output_buffer": io.StringIO(),
                "transactional_ddl": True,
                "literal_binds": True,
            },
        )
        self._ctx.impl.static_output = self._capture
        self._ctx.impl.alter_column = self._capture.declaring_existing_type(self._ctx.impl.alter_column)
        # Instance attributes, not subclasses: Alembic's module proxies (``op``, ``context``) are
        # registered per class and copy the bound methods of the instance they install.
        env = EnvironmentContext(self._alembic_config(), self._script(), as_sql=True)
        env._migration_context = self._ctx
        env.get_bind = _needs_database("context.get_bind()")  # type: ignore[method-assign]
        self._stack.enter_context(env)
        ops = Operations(self._ctx)
        ops.get_bind = _needs_database("op.get_bind()")  # type: ignore[method-assign]
        ops._install_proxy()
        self._stack.callback(ops._remove_proxy)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def _alembic_config(self) -> Any:
        from alembic.config import Config

        if self.project is None:
            return Config()
        cfg_file = self.project.config_file
        if cfg_file.name == "pyproject.toml":
            return Config(toml_file=str(cfg_file))
        return Config(file_=str(cfg_file))

    def _script(self) -> Any:
        from alembic.script import ScriptDirectory

        if self.project is None:
            return None
        try:
            return ScriptDirectory.from_config(self._alembic_config())
        except Exception:
            return None

    # -- rendering -----------------------------------------------------------------------------

    def module(self, rev: RevisionFile) -> types.ModuleType | BaseException:
        """The revision's module, executed once; the exception when its body fails."""
        cached = self._modules.get(rev.path)
        if cached is not None:
            return cached
        assert rev.tree is not None
        module = types.ModuleType(f"_helios_revision_{next(self._counter)}")
        module.__file__ = str(rev.path)
        result: types.ModuleType | BaseException = module
        sys.modules[module.__name__] = module
        try:
            code = compile(rev.tree, str(rev.path), "exec")
            with _quiet():
                exec(code, module.__dict__)
        except (Exception, SystemExit) as exc:
            result = exc
            sys.modules.pop(module.__name__, None)
        self._modules[rev.path] = result
        return result

    def render(self, rev: RevisionFile, function: str) -> Rendered:
        """Run ``upgrade``/``downgrade`` offline and return what it emitted."""
        module = self.module(rev)
        if isinstance(module, BaseException):
            return Rendered((), _failure("importing it failed", module, rev.path))
        fn = getattr(module, function, None)
        if not callable(fn):
            return Rendered((), RenderFailure(f"it has no {function}() function"))
        code = getattr(fn, "__code__", None)
        first_line = code.co_firstlineno if code is not None else 0
        try:
            statements = self.capture(rev.path, first_line, fn)
        except NeedsDatabase as exc:
            return Rendered((), _failure(str(exc), exc, rev.path, plain=True))
        except (Exception, SystemExit) as exc:
            return Rendered((), _failure(f"{function}() raised", exc, rev.path))
        return Rendered(tuple(statements))

    def capture(
        self, path: Path, default_line: int, body: Callable[[], object], *, transaction: bool = True
    ) -> list[EmittedStatement]:
        """Run ``body`` and return the statements it emitted, framed by BEGIN/COMMIT."""
        cap = self._capture
        cap.filename, cap.default_line, cap.out = str(path), default_line, []
        try:
            with _quiet():
                if transaction:
                    self._ctx.impl.emit_begin()
                body()
                if transaction:
                    self._ctx.impl.emit_commit()
            return cap.out
        finally:
            cap.filename, cap.out = "", []

    def emit_literal(self, sql: str, line: int, column: int) -> None:
        """Record a statement read from the source rather than rendered (source fallback)."""
        text = sql.strip()
        if text and not text.endswith(";"):
            text += ";"
        self._capture.out.append(EmittedStatement(text, line, column))

    def emit_marker(self, sql: str) -> None:
        """Emit ``BEGIN``/``COMMIT`` as the offline impl does (used by the source fallback)."""
        if sql == "COMMIT":
            self._ctx.impl.emit_commit()
        else:
            self._ctx.impl.emit_begin()


def _needs_database(call: str) -> Callable[[], Any]:
    def get_bind() -> Any:
        raise NeedsDatabase(f"it calls {call}, which needs a database connection")

    return get_bind


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Revisions may print or warn; none of it may reach a machine-readable report."""
    with (
        contextlib.redirect_stdout(io.StringIO()),
        contextlib.redirect_stderr(io.StringIO()),
        warnings.catch_warnings(),
    ):
        warnings.simplefilter("ignore")
        yield


def _failure(what: str, exc: BaseException, path: Path, *, plain: bool = False) -> RenderFailure:
    line = 0
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == str(path):
            line = tb.tb_lineno
        tb = tb.tb_next
    detail = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if plain:
        return RenderFailure(detail or what, line)
    reason = f"{what}: {type(exc).__name__}" + (f": {detail}" if detail else "")
    return RenderFailure(reason, line)


def function_span(tree: ast.Module, name: str) -> tuple[int, int] | None:
    """First and last line of a module-level function (decorators and comments above included
    by the caller's suppression rules)."""
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == name:
            start = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            return start, node.end_lineno or node.lineno
    return None
