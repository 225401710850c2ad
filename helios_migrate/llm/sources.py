"""The SQL a migration runs, from a ``.sql`` file, a revision file or a revision id."""

from __future__ import annotations

from pathlib import Path

from ..check.project import (
    AlembicProject,
    RevisionFile,
    find_project_root,
    load_project,
    read_revision_file,
)
from ..check.render import RevisionRenderer


class SourceError(Exception):
    pass


def migration_sql(target: str, cwd: Path) -> tuple[str, str]:
    """``(sql, label)`` for ``target``: a ``.sql`` file, a revision ``.py`` file, or a revision id."""
    sql, label, _ = migration_source(target, cwd)
    return sql, label


def migration_source(target: str, cwd: Path) -> tuple[str, str, tuple[int, ...] | None]:
    """``(sql, label, lines)``: as :func:`migration_sql`, with, for a revision, the line of the
    revision file each line of ``sql`` comes from (what ``check`` reports), else ``None``."""
    path = Path(target)
    if path.suffix == ".sql":
        try:
            return path.read_text(encoding="utf-8"), str(path), None
        except OSError as exc:
            raise SourceError(f"cannot read {path}: {exc}") from None
    if path.suffix == ".py":
        if not path.is_file():
            raise SourceError(f"{path}: no such file")
        rev = read_revision_file(path.resolve())
        root = find_project_root(path.resolve().parent)
        project = load_project(root) if root is not None else None
        return _render(project, rev, str(path))
    root = find_project_root(cwd)
    if root is None:
        raise SourceError(f"{target!r} is not a .sql or .py file, and there is no Alembic project here to find it in")
    project = load_project(root)
    matches = [r for r in project.revisions if r.revision and r.revision.startswith(target)]
    if len(matches) != 1:
        found = "no revision" if not matches else f"{len(matches)} revisions"
        raise SourceError(f"{found} of the Alembic project at {root} matches {target!r}")
    rev = matches[0]
    return _render(project, rev, f"revision {rev.revision} ({rev.path.name})")


def _render(project: object, rev: object, label: str) -> tuple[str, str, tuple[int, ...]]:
    assert isinstance(rev, RevisionFile)
    assert project is None or isinstance(project, AlembicProject)
    if rev.syntax_error is not None:
        raise SourceError(f"{label}: not valid Python: {rev.syntax_error}")
    with RevisionRenderer(project) as renderer:
        rendered = renderer.render(rev, "upgrade")
    if rendered.failure is not None:
        raise SourceError(f"{label}: upgrade() could not be rendered offline: {rendered.failure.reason}")
    parts = [s.sql.strip().rstrip(";") + ";" for s in rendered.statements]
    lines = tuple(st.line for st, text in zip(rendered.statements, parts, strict=True) for _ in text.splitlines())
    return "\n".join(parts), label, lines
