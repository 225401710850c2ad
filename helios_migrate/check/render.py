"""Rendering each revision to offline PostgreSQL SQL, in this process, without a database.

Each revision's ``upgrade()`` (or ``downgrade()``) runs against one offline ``MigrationContext``
for the ``postgresql`` dialect with transactional DDL, exactly as ``alembic upgrade --sql`` runs
it, but without the user's ``env.py`` (which may need a database).  The revision gets its own
``BEGIN`` / ``COMMIT``, as with ``transaction_per_migration``, and
``op.get_context().autocommit_block()`` emits its ``COMMIT`` / ``BEGIN`` as Alembic does.

Every emitted statement remembers the position of the ``op.*`` call that produced it in the
revision file, found on the Python stack at emit time, so findings and ``# helios: ignore``
comments refer to the revision's own lines.

What Alembic alone could not render offline is rendered too: imports of modules that are not
installed get inert placeholders (:mod:`.placeholders`), ``op.get_bind()`` returns a bind that
records the SQL passed to ``conn.execute(...)`` (:mod:`.offline_bind`), and operations of Alembic
plugins are rendered when the plugin is installed and otherwise noted as unknown, the rest of the
revision still rendered.
"""

from __future__ import annotations

import ast
import contextlib
import dataclasses
import hashlib
import importlib
import importlib.util
import io
import re
import sys
import types
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .offline_bind import NeedsDatabase, OfflineBind
from .offline_schema import HistorySchema, OfflineInspector, OfflineSchema
from .placeholders import TRACKER as PLACEHOLDERS
from .placeholders import (
    MissingModules,
    PlaceholderUsed,
    instruction_position,
    is_placeholder,
    opaque_name,
    watch,
)
from .project import AlembicProject, RevisionFile

__all__ = ["EmittedStatement", "NeedsDatabase", "RenderFailure", "Rendered", "RevisionRenderer", "function_span"]

PLUGIN_MODULES: dict[str, tuple[str, ...]] = {
    "alembic-postgresql-enum": ("alembic_postgresql_enum",),
    "alembic_utils": ("alembic_utils.replaceable_entity",),
}
"""Alembic plugins whose operations (``op.sync_enum_values``, ``op.replace_entity``...) are
rendered when the plugin is installed: importing the module registers them."""


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
    through_connection: bool = False
    """Run through ``op.get_bind().execute(...)`` rather than an ``op.*`` call."""
    index_tables: tuple[tuple[str, str], ...] = ()
    """``(index, table)`` the revision named for a dropped index (``drop_index(table_name=...)``):
    the offline ``DROP INDEX`` does not say which table it locks."""
    created_tables: tuple[str, ...] = ()
    """With no SQL: a table an application's ``create_table(name, ...)`` helper (not installed,
    not rendered) creates at this point; later statements treat it as new."""


@dataclass(frozen=True)
class UnknownOperation:
    """What a revision ran that could not be rendered: an ``op.<name>(...)`` call of an Alembic
    plugin that is not installed, or (``described``) a helper called or a sequence looped over
    from a module that is not installed."""

    name: str
    line: int
    described: str = ""
    """``"x.helper()"`` or ``"loop over x.rows"``; empty for a plugin operation."""

    @property
    def shown(self) -> str:
        return self.described or f"op.{self.name}"


@dataclass(frozen=True)
class RenderFailure:
    reason: str
    line: int = 0


@dataclass(frozen=True)
class Rendered:
    """The statements of one revision function, or why they could not be rendered."""

    statements: tuple[EmittedStatement, ...]
    failure: RenderFailure | None = None
    placeholders: tuple[str, ...] = ()
    """Names from modules that are not installed that the revision used."""
    unknown_operations: tuple[UnknownOperation, ...] = ()
    truth_tests: tuple[str, ...] = ()
    """Placeholders whose truth the function tested (rendered with both answers)."""
    inspected: tuple[str, ...] = ()
    """Questions to ``sa.inspect(op.get_bind())`` answered from the schema earlier revisions built."""
    as_online: bool = False
    """The function refused offline mode (it raised after ``context.is_offline_mode()`` answered
    true): rendered again with false, its connection being the offline bind."""


class _Capture:
    """Replaces the offline impl's ``static_output``: records each statement with its source
    position in the revision file being rendered."""

    def __init__(self) -> None:
        self.filename = ""
        self.default_line = 0
        self.out: list[EmittedStatement] = []
        self.column_types: tuple[tuple[str, str, str], ...] = ()
        self.through_connection = False
        self.index_tables: tuple[tuple[str, str], ...] = ()
        self.unknown: list[UnknownOperation] = []

    def caller_line(self) -> int:
        """The revision line being run (the innermost frame of the file being rendered)."""
        frame: types.FrameType | None = sys._getframe(1)
        while frame is not None and frame.f_code.co_filename != self.filename:
            frame = frame.f_back
        return frame.f_lineno if frame is not None and frame.f_lineno else self.default_line

    def __call__(self, text: str) -> None:
        frame: types.FrameType | None = sys._getframe(1)
        while frame is not None and frame.f_code.co_filename != self.filename:
            frame = frame.f_back
        emitted = EmittedStatement(text, self.default_line) if frame is None else _positioned(text, frame)
        if self.column_types:
            emitted = dataclasses.replace(emitted, column_types=self.column_types)
        if self.through_connection:
            emitted = dataclasses.replace(emitted, through_connection=True)
        if self.index_tables:
            emitted = dataclasses.replace(emitted, index_tables=self.index_tables)
        self.out.append(emitted)

    def naming_index_table(self, drop_index: Callable[..., Any]) -> Callable[..., Any]:
        """Wrap the impl's ``drop_index`` so its statement carries the table the revision named."""

        def wrapped(index: Any, **kw: Any) -> Any:
            table = getattr(index, "table", None)
            name = getattr(table, "name", None)
            if isinstance(name, str) and isinstance(getattr(index, "name", None), str):
                schema = getattr(table, "schema", None)
                prefix = f"{schema}." if isinstance(schema, str) and schema else ""
                self.index_tables = ((prefix + index.name, prefix + name),)
            try:
                return drop_index(index, **kw)
            finally:
                self.index_tables = ()

        return wrapped

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


def _indexes_by_name(create_table: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap the impl's ``create_table`` so a table's indexes are emitted in name order.

    Alembic emits them in the order of ``Table.indexes``, a set of objects hashed by identity:
    the order, and what was emitted before an index that fails to render (a name over 63
    characters), would change from run to run.
    """

    def wrapped(table: Any, **kw: Any) -> Any:
        indexes = table.indexes
        if not isinstance(indexes, (set, frozenset)) or len(indexes) < 2:
            return create_table(table, **kw)
        table.indexes = sorted(indexes, key=lambda ix: (str(ix.name or ""), [str(c) for c in ix.expressions]))
        try:
            return create_table(table, **kw)
        finally:
            table.indexes = indexes

    return wrapped


def _pg_type(type_: Any) -> str:
    from ..alembic_ops import sql_type_text  # lazy: Alembic, off the check path

    return sql_type_text(type_)


def _positioned(text: str, frame: types.FrameType) -> EmittedStatement:
    line = frame.f_lineno or 0
    pos = instruction_position(frame.f_code, frame.f_lasti)
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
        self._module_placeholders: dict[Path, set[str]] = {}
        self._missing = MissingModules()
        self._plugins_loaded = False
        self.history_schema: HistorySchema | None = None
        """Set by the caller: the schema of the revisions rendered before, for ``sa.inspect``."""
        self._inspected: list[str] = []
        self._offline = True
        """What ``context.is_offline_mode()`` answers (see :meth:`render`)."""
        self._offline_asked = False
        self.history_consulted = False
        """Set when a revision asked for the schema of the revisions before it (the caller resets
        it): a result computed without that schema, out of order, must be computed again."""

    # -- set-up --------------------------------------------------------------------------------

    def __enter__(self) -> RevisionRenderer:
        from alembic.operations import Operations  # lazy: Alembic, off the check path
        from alembic.runtime.environment import (
            EnvironmentContext,  # lazy: Alembic, off the check path
        )
        from alembic.runtime.migration import MigrationContext  # lazy: Alembic, off the check path

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
        self._ctx.impl.drop_index = self._capture.naming_index_table(self._ctx.impl.drop_index)
        self._ctx.impl.create_table = _indexes_by_name(self._ctx.impl.create_table)
        self._ctx.impl._exec = self._placeholder_sql_unchecked(self._ctx.impl._exec)
        # Instance attributes, not subclasses: Alembic's module proxies (``op``, ``context``) are
        # registered per class and copy the bound methods of the instance they install.
        env = EnvironmentContext(self._alembic_config(), self._script(), as_sql=True)
        env._migration_context = self._ctx
        env.get_bind = self._offline_bind("context.get_bind()")  # type: ignore[method-assign,assignment]
        env.is_offline_mode = self._is_offline_mode  # type: ignore[method-assign]
        self._stack.enter_context(env)
        ops = Operations(self._ctx)
        ops.get_bind = self._offline_bind("op.get_bind()")  # type: ignore[method-assign,assignment]
        ops._install_proxy()
        self._stack.callback(ops._remove_proxy)
        self._install_unknown_operations()
        self._install_inspection()
        self._install_placeholder_defaults()
        self._accept_metadata_bind()
        self._install_placeholder_foreign_keys()
        PLACEHOLDERS.created_table = self._created_by_helper
        self._stack.callback(setattr, PLACEHOLDERS, "created_table", None)
        self._missing.install()
        self._stack.callback(self._missing.remove)
        return self

    def _offline_bind(self, call: str) -> Callable[[], OfflineBind]:
        def get_bind() -> OfflineBind:
            return OfflineBind(
                self._ctx.dialect, self._through_connection, call, self._inspector, self._read_as_empty
            )

        return get_bind

    def _placeholder_sql_unchecked(self, execute: Callable[..., Any]) -> Callable[..., Any]:
        """``op.execute(app.SQL_FUNCTION)``, SQL from a module that is not installed: unknown, so
        noted as not checked (HM904) while the rest of the revision is rendered."""

        def _exec(construct: Any, *args: Any, **kw: Any) -> Any:
            if is_placeholder(construct):
                PLACEHOLDERS.used.add(construct._helios_name)
                PLACEHOLDERS.unchecked.append((f"SQL in {construct._helios_name}", self._capture.caller_line()))
                return None
            return execute(construct, *args, **kw)

        return _exec

    def _is_offline_mode(self) -> bool:
        self._offline_asked = True
        return self._offline

    def _wrap_init(self, cls: type, wrapper: Callable[[Callable[..., None]], Callable[..., None]]) -> None:
        """``cls.__init__`` replaced by ``wrapper(original)`` while the renderer is open."""
        original = cls.__init__
        cls.__init__ = wrapper(original)  # type: ignore[misc]
        self._stack.callback(setattr, cls, "__init__", original)

    def _install_placeholder_defaults(self) -> None:
        """``server_default=app_function()`` from a missing module renders as a call of an unknown
        function (the rules then assume the worst of it, e.g. volatile)."""
        from sqlalchemy import text  # lazy: only when rendering
        from sqlalchemy.sql.schema import DefaultClause  # lazy: as above

        def wrapper(original: Callable[..., None]) -> Callable[..., None]:
            def init(clause: Any, arg: Any, *args: Any, **kw: Any) -> None:
                if is_placeholder(arg):
                    arg = text(f"{opaque_name(arg._helios_name)}()")
                original(clause, arg, *args, **kw)

            return init

        self._wrap_init(DefaultClause, wrapper)

    def _install_placeholder_foreign_keys(self) -> None:
        """``sa.ForeignKey(Model.id)`` with ``Model`` from a missing module references
        ``<Model.__tablename__'s opaque name>.id``: the table the same revision creates as
        ``op.create_table(Model.__tablename__, ...)``."""
        from sqlalchemy.sql.schema import ForeignKey  # lazy: only when rendering

        def wrapper(original: Callable[..., None]) -> Callable[..., None]:
            def init(key: Any, column: Any, *args: Any, **kw: Any) -> None:
                if is_placeholder(column):
                    model, _, attribute = column._helios_name.rpartition(".")
                    PLACEHOLDERS.used.add(column._helios_name)
                    column = f"{opaque_name(model + '.__tablename__')}.{attribute}"
                original(key, column, *args, **kw)

            return init

        self._wrap_init(ForeignKey, wrapper)

    def _accept_metadata_bind(self) -> None:
        """``sa.MetaData(bind=op.get_bind())``, SQLAlchemy 1.x, is common in older revisions and
        gone from 2.0: the bind is dropped (statements built from the metadata are still executed
        through the connection explicitly, or by Alembic)."""
        from sqlalchemy import MetaData  # lazy: only when rendering

        def wrapper(original: Callable[..., None]) -> Callable[..., None]:
            def init(metadata: Any, *args: Any, bind: Any = None, **kw: Any) -> None:
                original(metadata, *args, **kw)

            return init

        self._wrap_init(MetaData, wrapper)

    def _created_by_helper(self, table: str, line: int) -> None:
        self._capture.out.append(EmittedStatement("", line, created_tables=(table,)))

    def _read_as_empty(self, what: str) -> None:
        """A revision read rows offline: it got none; what followed from them is not checked."""
        self._capture.unknown.append(UnknownOperation("", self._capture.caller_line(), what))

    def _inspector(self) -> OfflineInspector:
        self.history_consulted = True
        history = self.history_schema
        if history is None:
            raise NeedsDatabase(
                "it inspects the database (sa.inspect(op.get_bind())): the revisions before those "
                "checked were not rendered, so the schema is unknown (check the whole history)"
            )
        capture = self._capture

        def schema() -> OfflineSchema:
            return history.snapshot([s.sql for s in capture.out])

        return OfflineInspector(schema, self._ctx.dialect, lambda what: self._inspected.append(what))

    def _install_inspection(self) -> None:
        """``sa.inspect(offline_bind)`` answers from the history's schema while rendering."""
        from sqlalchemy import inspection  # lazy: only when rendering

        registrars: dict[type, Any] = inspection._registrars
        registrars[OfflineBind] = lambda bind: bind.offline_inspector()
        registrars[OfflineInspector] = True  # Table(..., autoload_with=inspector), MetaData.reflect
        self._stack.callback(registrars.pop, OfflineBind, None)
        self._stack.callback(registrars.pop, OfflineInspector, None)

    def _through_connection(self, construct: Any) -> None:
        self._capture.through_connection = True
        try:
            self._ctx.impl._exec(construct)
        finally:
            self._capture.through_connection = False

    def _install_unknown_operations(self) -> None:
        """``op.<name>`` that Alembic lacks: a plugin's operation, loaded if the plugin is
        installed, otherwise noted and skipped (the rest of the revision is still rendered)."""
        import alembic.op as op_module  # lazy: Alembic, off the check path

        previous = op_module.__dict__.get("__getattr__")

        def op_getattr(name: str) -> Any:
            if name.startswith("_"):
                raise AttributeError(name)
            if not self._plugins_loaded:
                self._plugins_loaded = True
                _load_plugins()
                if name in op_module.__dict__:
                    return op_module.__dict__[name]
            return self._unknown_operation(name)

        op_module.__dict__["__getattr__"] = op_getattr

        def restore() -> None:
            if previous is None:
                op_module.__dict__.pop("__getattr__", None)
            else:
                op_module.__dict__["__getattr__"] = previous

        self._stack.callback(restore)

    def _unknown_operation(self, name: str) -> Callable[..., None]:
        def unknown(*args: Any, **kw: Any) -> None:
            self._capture.unknown.append(UnknownOperation(name, self._capture.caller_line()))

        return unknown

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def _alembic_config(self) -> Any:
        from alembic.config import Config  # lazy: Alembic, off the check path

        if self.project is None or self.project.standalone:
            return Config()
        cfg_file = self.project.config_file
        if cfg_file.name == "pyproject.toml":
            return Config(toml_file=str(cfg_file))
        return Config(file_=str(cfg_file))

    def _script(self) -> Any:
        from alembic.script import ScriptDirectory  # lazy: Alembic, off the check path

        if self.project is None or self.project.standalone:
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
        # Named after the file, not after the order of rendering: a failure's message can show the
        # name, and the report must not depend on which process rendered which revision.
        digest = hashlib.sha1(str(rev.path).encode(), usedforsecurity=False).hexdigest()[:12]
        module = types.ModuleType(f"_helios_revision_{digest}")
        module.__file__ = str(rev.path)
        result: types.ModuleType | BaseException = module
        sys.modules[module.__name__] = module
        watch(str(rev.path), rev.tree)
        PLACEHOLDERS.reset()
        try:
            code = compile(rev.tree, str(rev.path), "exec")
            with _quiet():
                exec(code, module.__dict__)
        except (Exception, SystemExit) as exc:
            result = exc
            sys.modules.pop(module.__name__, None)
        self._modules[rev.path] = result
        self._module_placeholders[rev.path] = set(PLACEHOLDERS.used)
        return result

    def render(self, rev: RevisionFile, function: str, *, truth: bool = False) -> Rendered:
        """Run ``upgrade``/``downgrade`` offline and return what it emitted; ``truth`` is what a
        placeholder answers when the function tests it (``if has_table(...)``).

        A function that raises after asking ``context.is_offline_mode()`` (``if
        context.is_offline_mode(): raise ...``: it only runs online, which is how production runs
        it) is rendered again with the answer false: its ``op.get_bind()`` is the offline bind,
        which records the SQL it is given and reads no rows.
        """
        module = self.module(rev)
        if isinstance(module, BaseException):
            return Rendered((), _failure("importing it failed", module, rev.path))
        fn = getattr(module, function, None)
        if not callable(fn):
            return Rendered((), RenderFailure(f"it has no {function}() function"))
        rendered = self._render(rev, function, fn, truth, offline=True)
        if rendered.failure is not None and self._offline_asked:
            online = self._render(rev, function, fn, truth, offline=False)
            if online.failure is None:
                return dataclasses.replace(online, as_online=True)
        return rendered

    def _render(self, rev: RevisionFile, function: str, fn: Callable[[], object], truth: bool, *, offline: bool) -> Rendered:
        code = getattr(fn, "__code__", None)
        first_line = code.co_firstlineno if code is not None else 0
        PLACEHOLDERS.reset(truth)
        self._capture.unknown = []
        self._inspected = []
        self._offline, self._offline_asked = offline, False
        try:
            statements = self.capture(rev.path, first_line, fn)
        except (NeedsDatabase, PlaceholderUsed) as exc:
            return Rendered((), _failure(str(exc), exc, rev.path, plain=True))
        except (Exception, SystemExit) as exc:
            if type(exc).__name__ == "NoInspectionAvailable":
                reason = "it inspects the database (sa.inspect(op.get_bind())), which needs a connection"
                return Rendered((), _failure(reason, exc, rev.path, plain=True, keep_reason=True))
            return Rendered((), _failure(f"{function}() raised", exc, rev.path))
        finally:
            self._offline = True
        used = self._module_placeholders.get(rev.path, set()) | PLACEHOLDERS.used
        return Rendered(
            tuple(statements), None, tuple(sorted(used)),
            (*self._capture.unknown, *(UnknownOperation("", line, what) for what, line in PLACEHOLDERS.unchecked)),
            tuple(dict.fromkeys(PLACEHOLDERS.truth_tests)), tuple(dict.fromkeys(self._inspected)),
        )

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


def _load_plugins() -> None:
    for modules in PLUGIN_MODULES.values():
        for name in modules:
            try:
                if importlib.util.find_spec(name.partition(".")[0]) is not None:
                    importlib.import_module(name)
            except Exception:  # a broken plugin installation: its operations stay unknown
                continue


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


def _failure(
    what: str, exc: BaseException, path: Path, *, plain: bool = False, keep_reason: bool = False
) -> RenderFailure:
    line = 0
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == str(path):
            line = tb.tb_lineno
        tb = tb.tb_next
    detail = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    # Object addresses (``<... at 0x7f...>``) differ between runs: the report must not.
    detail = re.sub(r" at 0x[0-9a-fA-F]+", "", detail)
    if keep_reason:
        return RenderFailure(what, line)
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
