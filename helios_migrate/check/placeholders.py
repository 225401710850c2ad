"""Inert stand-ins for modules a revision imports that are not installed.

A CI job that only installs the linter cannot import the application, yet most revisions use it
only for constants, column types or helpers that build SQLAlchemy objects.  While a revision is
rendered, :class:`MissingModules` (a ``sys.meta_path`` finder consulted after every real one)
answers an import that nothing else can satisfy, when the revision itself asks for it, with a
placeholder module.  Its attributes are :class:`Placeholder` values:

* used as a column type, a placeholder renders as an opaque type named after it
  (``"db_types_StringID"``), which the rules treat as unknown;
* an attribute, an item or a call of a placeholder (``TIMESTAMP(timezone=True)``,
  ``Model.__tablename__``) is another placeholder;
* as text (a table name, an f-string) or in a SQL expression it is an opaque name made of its
  last two parts (``SqlTraceInfo___tablename__``): the same name everywhere in the revision, so
  "this revision creates that table" still holds;
* tested for truth by the revision (``if has_table("x"):``, ``if skip_on_legacy(op): return``)
  a placeholder answers :attr:`_Tracker.truth` (false first); the renderer renders the function
  again with the other answer, and both paths are checked;
* called as a whole statement (``helper(op)``, which may run SQL nobody can see) or iterated by the
  revision (``for t in app.TABLES:``, a loop over rows of the application's ORM), a placeholder is
  recorded in :attr:`_Tracker.unchecked` with its line: the call does nothing and the loop runs
  zero times, the rest of the revision is rendered and checked, and ``check`` reports what was not
  checked (HM904);
* added to in the revision's code (``rows += session.query(App).all()``) it is still the
  application's data (text when added to text), and compared (``if version() > 3:``) it is an
  answer whose truth is rendered both ways;
* to a library it is the opaque name it stands for: equal to it, hashed as it, measured and
  lower-cased as it (a table looked up by name, a constraint name's length);
* a placeholder whose value matters otherwise — turned into a number, looked into — raises
  :class:`PlaceholderUsed`, and the revision is read from its source instead.

Placeholder modules live in ``sys.modules`` only while the renderer is open.
"""

from __future__ import annotations

import ast
import functools
import importlib.abc
import importlib.machinery
import re
import sys
import types
from collections.abc import Callable, Sequence
from typing import Any

_IMPORT_MACHINERY = ("<frozen importlib", f"importlib{__import__('os').sep}__init__.py")


class PlaceholderUsed(Exception):
    """A placeholder for a missing module was used in a way whose result cannot be known."""


class _Tracker:
    """Which revision files may receive placeholders, and whether any placeholder was consulted."""

    def __init__(self) -> None:
        self.files: set[str] = set()
        self.trees: dict[str, ast.Module] = {}
        self.statement_calls: dict[str, set[tuple[int, int, int, int]]] = {}
        self.used: set[str] = set()
        """Dotted names of the placeholders consulted since :meth:`reset`."""
        self.truth = False
        """What a placeholder answers when the revision tests its truth."""
        self.truth_tests: list[str] = []
        self.created_table: Callable[[str, int], None] | None = None
        """Told of ``create_table("name", ...)`` called as a statement from a missing module."""
        self.unchecked: list[tuple[str, int]] = []
        """What the revision ran from a missing module that could not be checked: ``("x.helper()",
        line)`` for a call made as a statement, ``("loop over x.rows", line)`` for a loop."""

    def reset(self, truth: bool = False) -> None:
        self.used = set()
        self.truth = truth
        self.truth_tests = []
        self.unchecked = []


TRACKER = _Tracker()


def _importer_file() -> str | None:
    """The file whose code started the import being resolved."""
    frame: types.FrameType | None = sys._getframe(2)
    while frame is not None:
        name = frame.f_code.co_filename
        if not (name.startswith(_IMPORT_MACHINERY[0]) or name.endswith(_IMPORT_MACHINERY[1]) or name == __file__):
            return name
        frame = frame.f_back
    return None


class PlaceholderModule(types.ModuleType):
    """A module that is not installed; every public attribute is a :class:`Placeholder`."""

    def __init__(self, name: str) -> None:
        super().__init__(name, f"placeholder for {name}, which is not installed")
        self.__path__: list[str] = []

    def __setattr__(self, attr: str, value: Any) -> None:
        # The import system binds a submodule to its parent (``a.b.c`` as attribute ``c`` of
        # ``a.b``).  A placeholder module answers through __getattr__ instead, every time, so what
        # a revision is reported to have used does not depend on what revisions before it imported.
        if not isinstance(value, PlaceholderModule):
            super().__setattr__(attr, value)

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("__"):
            raise AttributeError(attr)
        TRACKER.used.add(f"{self.__name__}.{attr}")
        return make_placeholder(f"{self.__name__}.{attr}")


class _Loader(importlib.abc.Loader):
    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        return PlaceholderModule(spec.name)

    def exec_module(self, module: types.ModuleType) -> None:
        return None


class MissingModules(importlib.abc.MetaPathFinder):
    """The finder that stands in for missing modules while revisions are rendered."""

    def __init__(self) -> None:
        self.created: list[str] = []

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: types.ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        parent = fullname.rpartition(".")[0]
        inside_placeholder = bool(parent) and isinstance(sys.modules.get(parent), PlaceholderModule)
        if not inside_placeholder and _importer_file() not in TRACKER.files:
            return None
        self.created.append(fullname)
        return importlib.machinery.ModuleSpec(fullname, _Loader(), is_package=True)

    def install(self) -> None:
        sys.meta_path.append(self)

    def remove(self) -> None:
        if self in sys.meta_path:
            sys.meta_path.remove(self)
        for name in self.created:
            if isinstance(sys.modules.get(name), PlaceholderModule):
                del sys.modules[name]
        self.created.clear()
        TRACKER.files.clear()
        TRACKER.trees.clear()
        TRACKER.statement_calls.clear()


def watch(path: str, tree: ast.Module | None) -> None:
    """Let the revision at ``path`` receive placeholders (its statement-level calls are found
    when a placeholder is first called from it)."""
    TRACKER.files.add(path)
    if tree is not None:
        TRACKER.trees[path] = tree


def _statement_calls(path: str) -> set[tuple[int, int, int, int]]:
    calls = TRACKER.statement_calls.get(path)
    if calls is None:
        calls = set()
        tree = TRACKER.trees.get(path)
        if tree is not None:
            # Expression statements live only in statement bodies: walk those, not expressions.
            todo: list[ast.AST] = list(tree.body)
            while todo:
                node = todo.pop()
                if isinstance(node, ast.Expr):
                    call = node.value
                    if isinstance(call, ast.Call):
                        calls.add((call.lineno, call.end_lineno or call.lineno, call.col_offset, call.end_col_offset or 0))
                    continue
                for name in _BODIES:
                    todo += getattr(node, name, ())
                if isinstance(node, ast.Match):
                    todo += node.cases
        TRACKER.statement_calls[path] = calls
    return calls


_BODIES = ("body", "orelse", "finalbody", "handlers")


def _from_revision() -> bool:
    """Whether the code asking (two frames up) is a watched revision's own."""
    return sys._getframe(2).f_code.co_filename in TRACKER.files


def _revision_line() -> int:
    """The line of the watched revision's code making the call (two frames up)."""
    return sys._getframe(2).f_lineno or 0


def instruction_position(
    code: types.CodeType, lasti: int
) -> tuple[int | None, int | None, int | None, int | None] | None:
    """``(line, end_line, column, end_column)`` of the instruction at byte offset ``lasti``."""
    positions = _positions(code)
    index = lasti // 2
    return positions[index] if positions is not None and 0 <= index < len(positions) else None


@functools.lru_cache(maxsize=4096)
def _positions(
    code: types.CodeType,
) -> tuple[tuple[int | None, int | None, int | None, int | None], ...] | None:
    # Each revision statement asks for its position: list a code object's positions once, not
    # once per call made from it.
    positions = getattr(code, "co_positions", None)
    return tuple(positions()) if positions is not None else None


def _called_as_statement() -> bool:
    """Whether the call being made is a whole statement of a watched revision."""
    frame = sys._getframe(2)
    calls = _statement_calls(frame.f_code.co_filename) if frame.f_code.co_filename in TRACKER.files else None
    if not calls:
        return False
    pos = instruction_position(frame.f_code, frame.f_lasti)
    if pos is None or pos[0] is None:
        return False
    line, end_line, col, end_col = pos
    return (line, end_line or line, col or 0, end_col or 0) in calls


_CLASS: type | None = None


def placeholder_class() -> type:
    """The placeholder type, a SQLAlchemy ``UserDefinedType`` so that it can stand as a column
    type (built on first use: the check command imports SQLAlchemy only when it renders)."""
    global _CLASS
    if _CLASS is not None:
        return _CLASS
    from sqlalchemy.types import UserDefinedType  # lazy: SQLAlchemy, off the check path

    class Placeholder(UserDefinedType):  # type: ignore[type-arg]
        """A value from a module that is not installed."""

        cache_ok = True
        _helios_name = "placeholder"

        def __init__(self, *args: Any, **kw: Any) -> None:
            # ``class Model(Base)`` with a placeholder base calls the placeholder's type.
            if len(args) == 3 and isinstance(args[0], str) and isinstance(args[1], tuple):
                self._helios_name = args[0]

        def __getattr__(self, attr: str) -> Any:
            # Libraries probe objects for protocol attributes (``is_clause_element``, ``quote``,
            # ``__clause_element__``...): they find none.  The revision's own code navigates the
            # application's objects: it gets placeholders.
            if attr.startswith("_") and attr not in _MODEL_ATTRIBUTES:
                raise AttributeError(attr)
            if not _from_revision():
                if attr in _STR_METHODS:
                    # A library treating it as the name it stands for (``table_name.lower()``).
                    return getattr(str(self), attr)
                raise AttributeError(attr)
            return self._child(f"{self._helios_name}.{attr}")

        def __clause_element__(self) -> Any:
            from sqlalchemy import literal_column  # lazy: SQLAlchemy, off the check path

            TRACKER.used.add(self._helios_name)
            return literal_column(opaque_name(self._helios_name))

        def _child(self, name: str) -> Any:
            TRACKER.used.add(name)
            return make_placeholder(name)

        def __call__(self, *args: Any, **kw: Any) -> Any:
            if _called_as_statement():
                # What the helper runs cannot be known offline: noted, and the rest rendered.
                TRACKER.used.add(self._helios_name)
                line = _revision_line()
                TRACKER.unchecked.append((f"{self._helios_name}()", line))
                if (
                    self._helios_name.rpartition(".")[2] == "create_table" and args
                    and isinstance(args[0], str) and TRACKER.created_table is not None
                ):
                    # Shaped like op.create_table(name, ...): the table it names is new here.
                    TRACKER.created_table(args[0], line)
                return None
            return self._child(self._helios_name)

        def __getitem__(self, key: Any) -> Any:
            return self._child(f"{self._helios_name}[]")

        # In the revision's own code, ``rows += session.query(App).all()`` gives the application's
        # rows again (a loop over them runs zero times), ``"fk_" + Model.__tablename__`` text, and
        # a comparison (``if version > 3:``) an answer whose truth is rendered both ways.
        def __add__(self, other: Any) -> Any:
            if not _from_revision():
                return NotImplemented
            return str(self) + other if isinstance(other, str) else self._child(self._helios_name)

        def __radd__(self, other: Any) -> Any:
            if not _from_revision():
                return NotImplemented
            return other + str(self) if isinstance(other, str) else self._child(self._helios_name)

        def _compared(self, sign: str) -> Any:
            return self._child(f"{self._helios_name} {sign} ...")

        def __lt__(self, other: Any) -> Any:
            return self._compared("<") if _from_revision() else NotImplemented

        def __le__(self, other: Any) -> Any:
            return self._compared("<=") if _from_revision() else NotImplemented

        def __gt__(self, other: Any) -> Any:
            return self._compared(">") if _from_revision() else NotImplemented

        def __ge__(self, other: Any) -> Any:
            return self._compared(">=") if _from_revision() else NotImplemented

        def _used(self, how: str) -> PlaceholderUsed:
            return PlaceholderUsed(f"it {how} {self._helios_name}, from a module that is not installed")

        def __iter__(self) -> Any:
            if not _from_revision():
                raise self._used("iterates over")
            # The application's rows or list are unknown: the loop runs zero times, noted.
            TRACKER.used.add(self._helios_name)
            TRACKER.unchecked.append((f"loop over {self._helios_name}", _revision_line()))
            return iter(())

        def __len__(self) -> int:
            if not _from_revision():
                # A library measuring the name it stands for (a constraint name's length).
                return len(str(self))
            # As for a loop: the application's rows or list are unknown, none are assumed.
            TRACKER.used.add(self._helios_name)
            TRACKER.unchecked.append((f"length of {self._helios_name} (assumed 0)", _revision_line()))
            return 0

        def __bool__(self) -> bool:
            if _from_revision():
                TRACKER.used.add(self._helios_name)
                TRACKER.truth_tests.append(self._helios_name)
                return TRACKER.truth
            return True

        def __enter__(self) -> Any:
            return self._child(f"{self._helios_name}()")

        def __exit__(self, *exc: object) -> None:
            return None

        def literal_processor(self, dialect: Any) -> Any:
            def process(value: Any) -> str:
                return "'" + str(value).replace("'", "''") + "'"

            return process

        def __str__(self) -> str:
            TRACKER.used.add(self._helios_name)
            return opaque_name(self._helios_name)

        def __format__(self, spec: str) -> str:
            return str(self)

        # Equal to the name it stands for, so that a table named by a placeholder
        # (``op.create_table(Model.__tablename__, ...)``) is found under that name by SQLAlchemy
        # (a foreign key's ``"<table>.<column>"``, Alembic's batch operations).
        def __eq__(self, other: object) -> bool:
            if isinstance(other, str):
                return opaque_name(self._helios_name) == other
            return self is other

        def __ne__(self, other: object) -> bool:
            return not self == other

        def __hash__(self) -> int:
            return hash(opaque_name(self._helios_name))

        def __int__(self) -> int:
            raise self._used("turns into a number")

        def __float__(self) -> float:
            raise self._used("turns into a number")

        def __index__(self) -> int:
            raise self._used("turns into a number")

        def __contains__(self, item: Any) -> bool:
            raise self._used("looks inside")

        def __repr__(self) -> str:
            return f"<placeholder {self._helios_name}>"

        def get_col_spec(self, **kw: Any) -> str:
            TRACKER.used.add(self._helios_name)
            return f'"{opaque_name(self._helios_name)}"'

        @property
        def python_type(self) -> type:
            return object

        @property
        def __sa_type_engine__(self) -> Any:
            # Passed as a bound value (``.bindparams(n=conf.getint(...))``): rendered as a quoted
            # opaque literal, as SQL with literal binds needs one.
            return self

    _CLASS = Placeholder
    return Placeholder


_MODEL_ATTRIBUTES = frozenset({"__tablename__", "__table__"})
_STR_METHODS = frozenset(name for name in dir(str) if not name.startswith("_"))


def opaque_name(dotted: str) -> str:
    """The identifier a placeholder stands as in SQL: its last two dotted parts."""
    parts = [p for p in dotted.replace("()", "").replace("[]", "").split(".") if p]
    return re.sub(r"\W+", "_", "_".join(parts[-2:])) or "placeholder"


def make_placeholder(name: str) -> Any:
    cls: Any = placeholder_class()
    value = cls.__new__(cls)
    value._helios_name = name
    return value


def is_placeholder(value: object) -> bool:
    return _CLASS is not None and isinstance(value, _CLASS)
