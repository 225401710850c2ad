"""Finding an Alembic project and reading its revision files without importing them.

Revision identity and order (``revision``, ``down_revision``, ``branch_labels``, ``depends_on``)
are read from each file's syntax tree, so a revision whose imports fail, or whose module body
needs a database, still takes its place in the history and is checked from its source.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import re
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from .problems import CheckUsageError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

_REVISION_FILE = re.compile(r"(?!\.#|__init__)(.*\.py)$")
_ASSIGN_FALLBACK = re.compile(
    r"^(revision|down_revision)\s*(?::[^=]+)?=\s*(.+?)\s*(?:#.*)?$", re.MULTILINE
)


@dataclass(frozen=True)
class RevisionFile:
    """One revision file as read from disk, parsed but not executed."""

    path: Path
    """Absolute path."""
    source: str
    revision: str | None
    down_revisions: tuple[str, ...] = ()
    dependencies: tuple[str, ...] = ()
    branch_labels: tuple[str, ...] = ()
    parsed: ast.Module | None = field(default=None, compare=False, repr=False)
    """The syntax tree when it was built while reading (see :attr:`tree`)."""
    syntax_error: SyntaxError | None = field(default=None, compare=False, repr=False)

    @property
    def tree(self) -> ast.Module | None:
        """The file's syntax tree (``None`` when it does not parse), built on first use when the
        revision's identity came from ``.helios-cache/``."""
        if self.parsed is None and self.syntax_error is None and self.source:
            try:
                tree = ast.parse(self.source, filename=str(self.path))
            except SyntaxError as exc:
                object.__setattr__(self, "syntax_error", exc)
                return None
            object.__setattr__(self, "parsed", tree)
        return self.parsed


@dataclass(frozen=True)
class AlembicProject:
    """An Alembic project: where its configuration lives and every revision file it holds."""

    root: Path
    config_file: Path
    """``alembic.ini`` or ``pyproject.toml``."""
    version_locations: tuple[Path, ...]
    revisions: tuple[RevisionFile, ...]
    prepend_sys_path: tuple[Path, ...] = ()
    standalone: bool = False
    """A lone revision file checked on its own (no Alembic configuration)."""
    cache_dir: Path | None = field(default=None, compare=False)
    """``.helios-cache/`` when the run may use it: the configuration's locations and the history's
    order are kept there, so a re-check whose revisions are all cached never loads Alembic."""

    def by_path(self) -> dict[Path, RevisionFile]:
        return {r.path: r for r in self.revisions}


# -- discovery -----------------------------------------------------------------------------------


def _pyproject_has_alembic(path: Path) -> bool:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    tool = data.get("tool", {})
    return isinstance(tool, dict) and isinstance(tool.get("alembic"), dict)


def find_project_root(start: Path) -> Path | None:
    """The nearest directory at or above ``start`` holding ``alembic.ini`` or a pyproject
    ``[tool.alembic]`` table."""
    here = start if start.is_dir() else start.parent
    for directory in (here, *here.parents):
        if is_project_dir(directory):
            return directory
    return None


def is_project_dir(directory: Path) -> bool:
    if (directory / "alembic.ini").is_file():
        return True
    pyproject = directory / "pyproject.toml"
    return pyproject.is_file() and _pyproject_has_alembic(pyproject)


CACHE_DIR = ".helios-cache"
"""Where ``check`` keeps what it may reuse between runs (safe to delete; opt out with --no-cache)."""


def load_project(root: Path, *, cache: bool = False) -> AlembicProject:
    """Read the Alembic configuration in ``root`` and every revision file it names.

    With ``cache``, what Alembic read from the same configuration file (byte for byte, same
    Alembic version) is reused from ``.helios-cache/`` instead of loading Alembic again.
    """
    cache_dir = root / CACHE_DIR if cache else None
    key = _layout_key(root) if cache_dir is not None else None
    layout = _read_cached(cache_dir, "layout", key)
    raw: _RawLayout | None = None
    if layout is not None:
        try:
            raw = _RawLayout(
                Path(layout["config_file"]), layout["beside"], bool(layout["beside_is_dir"]),
                tuple(str(p) for p in layout["version_locations"]), bool(layout["recursive"]),
                tuple(str(p) for p in layout["prepend"]),
            )
        except (KeyError, TypeError):
            raw = None
        # Alembic was told to look beside the configuration only when that directory existed.
        if raw is not None and raw.beside is not None and Path(raw.beside).is_dir() != raw.beside_is_dir:
            raw = None
    if raw is None:
        raw = _read_layout(root)
        _write_cached(cache_dir, "layout", key, {
            "config_file": str(raw.config_file), "beside": raw.beside,
            "beside_is_dir": raw.beside_is_dir, "version_locations": list(raw.version_locations),
            "recursive": raw.recursive, "prepend": list(raw.prepend),
        })
    # A relative script_location is relative to where Alembic runs, which for a project is the
    # directory of its configuration: resolve it there, whatever directory check runs in.
    locations = tuple(_location(Path(p), root) for p in raw.version_locations)
    identities = _Identities(cache_dir) if cache_dir is not None else None
    revisions = tuple(_read_revisions(locations, recursive=raw.recursive, identities=identities))
    if identities is not None:
        identities.save({identities.key(r.path, r.source) for r in revisions})
    resolved_prepend = tuple(
        (p if p.is_absolute() else (root / p)).resolve() for p in (Path(x) for x in raw.prepend)
    )
    return AlembicProject(
        root, raw.config_file, locations, revisions, resolved_prepend, cache_dir=cache_dir
    )


@dataclass(frozen=True)
class _RawLayout:
    """What Alembic read from a project's configuration (before paths are resolved)."""

    config_file: Path
    beside: str | None
    """``root / script_location`` when script_location is a relative path."""
    beside_is_dir: bool
    version_locations: tuple[str, ...]
    recursive: bool
    prepend: tuple[str, ...]


def _read_layout(root: Path) -> _RawLayout:
    from alembic.config import Config  # lazy: Alembic, off the check path
    from alembic.script import ScriptDirectory  # lazy: Alembic, off the check path
    from alembic.util import CommandError  # lazy: Alembic, off the check path

    ini = root / "alembic.ini"
    pyproject = root / "pyproject.toml"
    has_toml = pyproject.is_file() and _pyproject_has_alembic(pyproject)
    config_file = ini if ini.is_file() else pyproject
    beside: Path | None = None
    try:
        cfg = Config(
            file_=str(ini) if ini.is_file() else None,
            toml_file=str(pyproject) if has_toml else None,
        )
        # A relative script_location is relative to where Alembic runs, which for a project is
        # the directory of its configuration: resolve it there, whatever directory check runs in.
        location = cfg.get_main_option("script_location")
        if location and "%" not in location and ":" not in location and not Path(location).is_absolute():
            beside = root / location
            if beside.is_dir():
                cfg.set_main_option("script_location", str(beside))
        # Only the location keys are needed; ScriptDirectory does not import anything here.
        script = ScriptDirectory.from_config(cfg)
        prepend = tuple(str(p) for p in cfg.get_prepend_sys_paths_list() or ())
    except CommandError as exc:
        raise CheckUsageError(f"{config_file}: {exc}") from None
    except Exception as exc:  # configparser / toml errors
        raise CheckUsageError(f"{config_file}: cannot read the Alembic configuration: {exc}") from None
    return _RawLayout(
        config_file,
        str(beside) if beside is not None else None,
        beside is not None and beside.is_dir(),
        tuple(str(p) for p in script._version_locations),
        bool(script.recursive_version_locations),
        prepend,
    )


def _layout_key(root: Path) -> str | None:
    """What Alembic's reading of the configuration depends on: the configuration files' bytes,
    where they are and the Alembic version."""
    digest = hashlib.sha256(str(root.resolve()).encode())
    try:
        digest.update(metadata.version("alembic").encode())
        for name in ("alembic.ini", "pyproject.toml"):
            file = root / name
            digest.update(b"\0" + name.encode() + b"\0")
            digest.update(file.read_bytes() if file.is_file() else b"-")
    except (OSError, metadata.PackageNotFoundError):
        return None
    return digest.hexdigest()


def _read_cached(cache_dir: Path | None, kind: str, key: str | None) -> dict[str, Any] | None:
    if cache_dir is None or key is None:
        return None
    try:
        data = json.loads((cache_dir / kind / f"{key}.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _write_cached(cache_dir: Path | None, kind: str, key: str | None, data: dict[str, Any]) -> None:
    if cache_dir is None or key is None:
        return
    write_cache_file(cache_dir, cache_dir / kind / f"{key}.json", data)


def write_cache_file(cache_dir: Path, file: Path, data: dict[str, Any]) -> None:
    """``data`` as JSON in ``file`` under ``cache_dir`` (with its ``.gitignore``), replaced whole so a
    concurrent reader never sees half a file; a read-only checkout writes nothing (the cache is an
    optimisation, never an error)."""
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        ignore = cache_dir / ".gitignore"
        if not ignore.exists():
            ignore.write_text("# written by helios-migrate check; safe to delete\n*\n", encoding="utf-8")
        tmp = file.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data), encoding="utf-8")
        tmp.replace(file)
    except OSError:
        return


def _location(path: Path, root: Path) -> Path:
    if path.is_absolute():
        return path.resolve()
    beside_config = (root / path).resolve()
    return beside_config if beside_config.is_dir() or not path.resolve().is_dir() else path.resolve()


def standalone_project(rev: RevisionFile) -> AlembicProject:
    """A one-revision project for a revision file that belongs to no Alembic project."""
    return AlembicProject(rev.path.parent, rev.path, (rev.path.parent,), (rev,), standalone=True)


def _read_revisions(
    locations: Sequence[Path], *, recursive: bool, identities: _Identities | None = None
) -> Iterator[RevisionFile]:
    seen: set[Path] = set()
    for location in locations:
        if not location.is_dir():
            continue
        walker = location.rglob("*.py") if recursive else location.glob("*.py")
        for path in sorted(walker):
            if "__pycache__" in path.parts or not _REVISION_FILE.match(path.name):
                continue
            real = path.resolve()
            if real in seen:
                continue
            seen.add(real)
            yield read_revision_file(real, identities)


def read_revision_file(path: Path, identities: _Identities | None = None) -> RevisionFile:
    """Parse one revision file; a syntax error is kept on the value, never raised.

    With ``identities`` (the cache's), a file read before with the same name and bytes is not
    parsed again: its identity comes from there and its tree is built when first needed.
    """
    try:
        source = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        err = SyntaxError(f"cannot read file: {exc}")
        err.filename, err.lineno = str(path), 0
        return RevisionFile(path, "", None, syntax_error=err)
    known = identities.get(path, source) if identities is not None else None
    if known is not None:
        return RevisionFile(path, source, *known)
    try:
        tree = ast.parse(source, filename=str(path))
    except SyntaxError as exc:
        ids = _identity_from_text(source)
        return RevisionFile(
            path, source, ids.get("revision"), _as_tuple(ids.get("down_revision")), syntax_error=exc
        )
    ids = _identity_from_tree(tree)
    revision = ids.get("revision")
    if not isinstance(revision, str):
        legacy = re.match(r"([a-f0-9]+)\.py$", path.name)
        revision = legacy.group(1) if legacy else None
    identity = (
        revision,
        _as_tuple(ids.get("down_revision")),
        _as_tuple(ids.get("depends_on")),
        _as_tuple(ids.get("branch_labels")),
    )
    if identities is not None:
        identities.put(path, source, identity)
    return RevisionFile(path, source, *identity, parsed=tree)


_Identity = tuple[str | None, tuple[str, ...], tuple[str, ...], tuple[str, ...]]


class _Identities:
    """Revision identities by file name and content, kept in ``.helios-cache/`` (one file per
    project): a re-check reads each revision's bytes but parses only those it renders."""

    _FORMAT = "identities-1"

    def __init__(self, cache_dir: Path) -> None:
        self.file = cache_dir / "revisions" / f"{self._FORMAT}.json"
        self.known: dict[str, Any] = {}
        self.dirty = False
        try:
            data = json.loads(self.file.read_text(encoding="utf-8"))
            if isinstance(data, dict):
                self.known = data
        except (OSError, ValueError):
            pass

    @staticmethod
    def key(path: Path, source: str) -> str:
        return hashlib.sha256(path.name.encode() + b"\0" + source.encode()).hexdigest()

    def get(self, path: Path, source: str) -> _Identity | None:
        entry = self.known.get(self.key(path, source))
        try:
            revision, down, deps, labels = entry  # type: ignore[misc]
            return (
                revision if isinstance(revision, str) else None,
                tuple(str(x) for x in down), tuple(str(x) for x in deps), tuple(str(x) for x in labels),
            )
        except (TypeError, ValueError):
            return None

    def put(self, path: Path, source: str, identity: _Identity) -> None:
        self.known[self.key(path, source)] = [identity[0], *(list(part) for part in identity[1:])]
        self.dirty = True

    def save(self, wanted: set[str]) -> None:
        """Write the identities of the files read this time (older entries are dropped)."""
        kept = {k: v for k, v in self.known.items() if k in wanted}
        if not self.dirty and len(kept) == len(self.known):
            return
        _write_cached(self.file.parent.parent, "revisions", self._FORMAT, kept)


_IDENTITY_NAMES = ("revision", "down_revision", "branch_labels", "depends_on")


def _identity_from_tree(tree: ast.Module) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for node in tree.body:
        targets: list[ast.expr]
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        else:
            continue
        for target in targets:
            if isinstance(target, ast.Name) and target.id in _IDENTITY_NAMES:
                try:
                    found[target.id] = ast.literal_eval(value)
                except ValueError:
                    continue
    return found


def _identity_from_text(source: str) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for m in _ASSIGN_FALLBACK.finditer(source):
        try:
            found[m.group(1)] = ast.literal_eval(m.group(2))
        except (ValueError, SyntaxError):
            continue
    return found


def _as_tuple(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, (list, tuple, set, frozenset)):
        return tuple(str(v) for v in value)
    return ()


# -- ordering and selection ----------------------------------------------------------------------


def upgrade_order(project: AlembicProject) -> tuple[list[RevisionFile], str | None]:
    """Every revision in the order ``alembic upgrade heads`` applies them.

    When the history cannot be ordered (a missing ``down_revision``, a cycle, duplicate ids) the
    files are returned in path order, with the reason as the second value.
    """
    graph = history_graph(project)
    if graph.problem is not None:
        return sorted(project.revisions, key=lambda r: r.path), graph.problem
    by_id = {r.revision: r for r in project.revisions if r.revision}
    ordered = [by_id[rev_id] for rev_id in graph.order]
    listed = {id(r) for r in ordered}
    return ordered + [r for r in project.revisions if id(r) not in listed], None


@dataclass(frozen=True)
class HistoryGraph:
    """What Alembic's revision map says of a project's history."""

    order: tuple[str, ...]
    """Revision ids in the order ``alembic upgrade heads`` applies them."""
    heads: tuple[str, ...]
    problem: str | None = None
    """Why the history cannot be ordered (then ``order`` and ``heads`` are empty)."""


def history_graph(project: AlembicProject) -> HistoryGraph:
    """The upgrade order and heads of the project's history, from Alembic's revision map, or
    from ``.helios-cache/`` when the same revision identities were ordered before.

    A history that cannot be ordered (a missing ``down_revision``, a cycle, a duplicate id) has
    the reason in ``problem``.
    """
    key = _graph_key(project) if project.cache_dir is not None else None
    cached = _read_cached(project.cache_dir, "history", key)
    if cached is not None:
        try:
            return HistoryGraph(
                tuple(cached["order"]), tuple(cached["heads"]), cached["problem"]
            )
        except (KeyError, TypeError):
            pass
    try:
        revmap, by_id = _revision_map(project)
        order = [by_id[r.revision].revision or "" for r in revmap.iterate_revisions("heads", "base")]
        order.reverse()
        graph = HistoryGraph(tuple(order), tuple(revmap.heads))
    except Exception as exc:  # CheckUsageError (a duplicate id) included
        graph = HistoryGraph((), (), _history_problem(exc))
    _write_cached(project.cache_dir, "history", key, {
        "order": list(graph.order), "heads": list(graph.heads), "problem": graph.problem,
    })
    return graph


def _graph_key(project: AlembicProject) -> str:
    digest = hashlib.sha256(b"history 1")
    for rev in project.revisions:
        digest.update(repr((
            rev.revision, rev.down_revisions, rev.dependencies, rev.branch_labels
        )).encode())
    return digest.hexdigest()


def select_range(project: AlembicProject, spec: str) -> list[RevisionFile]:
    """The revisions ``alembic upgrade LOWER:UPPER`` would apply, in that order.

    ``LOWER`` is excluded (it is the revision the database is already at), as in Alembic's own
    ``LOWER:UPPER`` ranges; ``base`` and ``head``/``heads`` are understood.
    """
    lower, sep, upper = spec.partition(":")
    if not sep:
        lower, upper = "base", spec
    lower, upper = lower.strip() or "base", upper.strip() or "heads"
    if upper == "head" and _head_count(project) > 1:
        upper = "heads"
    try:
        revmap, by_id = _revision_map(project)
        revs = list(revmap.iterate_revisions(upper, lower, implicit_base=True))
    except Exception as exc:
        raise CheckUsageError(f"--range {spec}: {_history_problem(exc)}") from None
    revs.reverse()
    return [by_id[r.revision] for r in revs]


def _head_count(project: AlembicProject) -> int:
    try:
        revmap, _ = _revision_map(project)
        return len(revmap.heads)
    except Exception:
        return 0


def _history_problem(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


def _revision_map(project: AlembicProject) -> tuple[Any, dict[str, RevisionFile]]:
    from alembic.script.revision import Revision, RevisionMap  # lazy: Alembic, off the check path

    by_id: dict[str, RevisionFile] = {}
    for rev in project.revisions:
        if rev.revision:
            if rev.revision in by_id:
                raise CheckUsageError(
                    f"revision id {rev.revision} is declared by both {by_id[rev.revision].path} "
                    f"and {rev.path}"
                )
            by_id[rev.revision] = rev

    def generate() -> Iterator[Revision]:
        for rev_id, rev in by_id.items():
            down: str | tuple[str, ...] | None
            down = (
                None if not rev.down_revisions
                else rev.down_revisions[0] if len(rev.down_revisions) == 1
                else rev.down_revisions
            )
            yield Revision(
                rev_id,
                down,
                dependencies=rev.dependencies or None,
                branch_labels=rev.branch_labels or None,
            )

    revmap = RevisionMap(generate)
    revmap.heads  # noqa: B018 - builds the map now, so history errors surface here
    return revmap, by_id


def add_prepend_sys_path(project: AlembicProject) -> None:
    """Make the project's own packages importable, as ``prepend_sys_path`` asks Alembic to."""
    for entry in reversed(project.prepend_sys_path):
        text = str(entry)
        if text not in sys.path:
            sys.path.insert(0, text)
