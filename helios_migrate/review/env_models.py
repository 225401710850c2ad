"""Which models an Alembic project compares against, read from its ``env.py`` without running it.

Alembic finds ``env.py`` from ``alembic.ini``'s ``script_location`` and runs it; running it would
connect to a database and start a migration, so ``review`` only *reads* it.  The source is parsed
with :mod:`ast`; the value of ``target_metadata`` -- a module-level assignment, or the
``target_metadata=`` argument of ``context.configure(...)`` -- is followed back through the
module-level imports to the module that defines it (``from app.models import Base`` then
``target_metadata = Base.metadata`` gives ``app.models:Base.metadata``).  That module is then
imported the way ``--models`` imports it, on the ``prepend_sys_path`` of ``alembic.ini`` (Alembic
puts it on ``sys.path`` before it runs ``env.py``).  What cannot be followed without running code (a
function call, metadata built inside ``env.py``) is reported with the line, and ``--models`` or
``models`` in ``[tool.helios-migrate.review]`` name the models instead.
"""

from __future__ import annotations

import ast
import importlib
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any


class EnvModelsError(Exception):
    """``env.py`` (or ``alembic.ini``) does not say which models, in a form that can be read."""


@dataclass(frozen=True)
class EnvModels:
    env_py: Path
    references: tuple[str, ...]
    """``module:attribute`` of each ``MetaData`` (``target_metadata`` may be a list)."""


@dataclass(frozen=True)
class _Origin:
    module: str
    attributes: tuple[str, ...] = ()


def find_env_py(alembic_ini: Path) -> Path:
    """``env.py`` of the project ``alembic_ini`` configures (``script_location`` resolved by Alembic
    itself; this also puts ``prepend_sys_path`` on ``sys.path``, as Alembic does before ``env.py``)."""
    from alembic.config import Config  # lazy: Alembic, only when env.py is looked up
    from alembic.script import ScriptDirectory  # lazy: as above
    from alembic.util import CommandError  # lazy: as above

    try:
        script = ScriptDirectory.from_config(Config(str(alembic_ini)))
    except CommandError as exc:
        raise EnvModelsError(f"{alembic_ini}: {exc}") from None
    except Exception as exc:  # a malformed ini file: configparser and Alembic raise many kinds
        raise EnvModelsError(f"{alembic_ini}: cannot read it: {type(exc).__name__}: {exc}") from None
    env_py = Path(script.dir) / "env.py"
    if not env_py.is_file():
        raise EnvModelsError(f"{alembic_ini}: script_location {script.dir} has no env.py")
    return env_py


def models_of_env(env_py: Path) -> EnvModels:
    """The models ``env_py`` passes to Alembic as ``target_metadata``."""
    try:
        tree = ast.parse(env_py.read_text(encoding="utf-8"), filename=str(env_py))
    except (OSError, SyntaxError, ValueError) as exc:
        raise EnvModelsError(f"{env_py}: cannot read it: {exc}") from None
    imports = _module_imports(tree)
    assigned = _module_assignments(tree)
    value = assigned.get("target_metadata") or _configure_argument(tree)
    if value is None:
        raise EnvModelsError(
            f"{env_py}: no target_metadata (neither assigned at module level nor passed to "
            "context.configure)"
        )
    items = value.elts if isinstance(value, (ast.List, ast.Tuple)) else [value]
    references = tuple(_reference(env_py, item, imports, assigned, set()) for item in items)
    if not references:
        raise EnvModelsError(f"{env_py}:{value.lineno}: target_metadata is an empty list")
    return EnvModels(env_py, references)


def _module_imports(tree: ast.Module) -> dict[str, _Origin]:
    names: dict[str, _Origin] = {}
    for node in tree.body:
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    names[alias.asname] = _Origin(alias.name)
                else:  # "import app.models" binds "app"; attribute access reaches the submodule
                    root = alias.name.split(".")[0]
                    names[root] = _Origin(root)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                if alias.name != "*":
                    names[alias.asname or alias.name] = _Origin(node.module, (alias.name,))
    return names


def _module_assignments(tree: ast.Module) -> dict[str, ast.expr]:
    out: dict[str, ast.expr] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    out[target.id] = node.value
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None:
            out[node.target.id] = node.value
    return out


def _configure_argument(tree: ast.Module) -> ast.expr | None:
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
            if name == "configure":
                for keyword in node.keywords:
                    if keyword.arg == "target_metadata":
                        return keyword.value
    return None


def _dotted(node: ast.expr) -> list[str] | None:
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    return [node.id, *reversed(parts)]


def _reference(
    env_py: Path, node: ast.expr, imports: dict[str, _Origin], assigned: dict[str, ast.expr], seen: set[str]
) -> str:
    where = f"{env_py}:{node.lineno}"
    if isinstance(node, ast.Constant) and node.value is None:
        raise EnvModelsError(
            f"{where}: target_metadata is None: the project has no models for autogenerate to compare; "
            "give --models module:attribute"
        )
    parts = _dotted(node)
    if parts is None and seen:
        raise EnvModelsError(
            f"{where}: target_metadata ({ast.unparse(node)}) is defined inside env.py, not imported from a "
            "module: move the models to a module and import it, or give --models module:attribute"
        )
    if parts is None:
        raise EnvModelsError(
            f"{where}: target_metadata is computed ({ast.unparse(node)}); helios-migrate reads env.py "
            "without running it: give --models module:attribute, or models in [tool.helios-migrate.review]"
        )
    root, rest = parts[0], parts[1:]
    if root in imports:
        origin = imports[root]
        attributes = (*origin.attributes, *rest)
        if not attributes:
            raise EnvModelsError(f"{where}: target_metadata is the module {origin.module} itself")
        return f"{origin.module}:{'.'.join(attributes)}"
    if root in assigned and root not in seen:
        base = _reference(env_py, assigned[root], imports, assigned, {*seen, root})
        return ".".join([base, *rest])
    raise EnvModelsError(
        f"{where}: target_metadata ({ast.unparse(node)}) is defined inside env.py, not imported from a "
        "module: move the models to a module and import it, or give --models module:attribute"
    )


class ModelsReferenceError(Exception):
    """A ``module:attribute`` reference that does not lead to a SQLAlchemy ``MetaData``."""


def _attribute(target: Any, part: str) -> Any:
    """``target.part``; a submodule not imported by its package is imported."""
    if hasattr(target, part):
        return getattr(target, part)
    if isinstance(target, ModuleType):
        try:
            return importlib.import_module(f"{target.__name__}.{part}")
        except ModuleNotFoundError:
            pass
    raise AttributeError(part)


def load_metadata(reference: str, search_paths: Iterable[Path]) -> Any:
    """The ``MetaData`` that ``reference`` (``module:attribute``, e.g. ``app.models:Base.metadata``)
    names in the project's own code, the way Alembic's env.py imports it: the module is imported
    with ``search_paths`` on ``sys.path``.  Raises :class:`ModelsReferenceError` saying what is wrong."""
    module_name, sep, attribute = reference.partition(":")
    if not sep or not module_name or not attribute:
        raise ModelsReferenceError(f"--models {reference!r}: expected module:attribute, e.g. app.models:Base.metadata")
    for directory in search_paths:
        if str(directory) not in sys.path:
            sys.path.insert(0, str(directory))
    try:
        target: Any = importlib.import_module(module_name)
    except Exception as exc:  # the user's module: any failure to import is reported as such
        raise ModelsReferenceError(
            f"--models {reference!r}: cannot import {module_name}: {type(exc).__name__}: {exc}"
        ) from None
    for part in attribute.split("."):
        try:
            target = _attribute(target, part)
        except AttributeError:
            raise ModelsReferenceError(
                f"--models {reference!r}: {module_name} has no attribute {attribute}") from None
        except Exception as exc:  # the user's submodule failed to import
            raise ModelsReferenceError(
                f"--models {reference!r}: cannot import {module_name}.{part}: {type(exc).__name__}: {exc}"
            ) from None
    metadata = getattr(target, "metadata", target)
    if not hasattr(metadata, "sorted_tables"):
        raise ModelsReferenceError(
            f"--models {reference!r}: {type(target).__name__} is not a SQLAlchemy MetaData or declarative base"
        )
    return metadata
