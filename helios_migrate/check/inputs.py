"""What ``check`` was asked to look at: Alembic projects (all or some revisions) and SQL files."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .problems import CheckUsageError
from .project import (
    AlembicProject,
    RevisionFile,
    find_project_root,
    is_project_dir,
    load_project,
    read_revision_file,
    select_range,
    standalone_project,
    upgrade_order,
)


@dataclass
class ProjectTarget:
    project: AlembicProject
    revisions: list[RevisionFile]
    history_problem: str | None = None


@dataclass
class Targets:
    projects: list[ProjectTarget] = field(default_factory=list)
    sql_files: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def collect(
    paths: Sequence[str],
    *,
    cwd: Path,
    revision_range: str | None = None,
    since: str | None = None,
    cache: bool = False,
) -> Targets:
    """Resolve the command-line paths (none: the project in ``cwd``) into targets; with
    ``cache``, each project's configuration and history order may come from ``.helios-cache/``."""
    targets = Targets()
    projects: dict[Path, AlembicProject] = {}
    wanted: dict[Path, set[Path] | None] = {}  # None: every revision of the project

    def project_at(root: Path) -> AlembicProject:
        root = root.resolve()
        if root not in projects:
            projects[root] = load_project(root, cache=cache)
        return projects[root]

    chosen: dict[Path, AlembicProject] = {}

    def want(project: AlembicProject, files: set[Path] | None) -> None:
        key = project.config_file
        chosen[key] = project
        current = wanted.get(key, set())
        if files is None or current is None:
            wanted[key] = None
        else:
            wanted[key] = current | files

    if not paths:
        root = find_project_root(cwd)
        if root is None:
            raise CheckUsageError(
                f"no Alembic project in {cwd} (looked for alembic.ini, or [tool.alembic] in "
                "pyproject.toml, here and above); pass a project directory, revision files or "
                ".sql files"
            )
        want(project_at(root), None)

    for arg in paths:
        path = (cwd / arg) if not Path(arg).is_absolute() else Path(arg)
        if not path.exists():
            raise CheckUsageError(f"{arg}: no such file or directory")
        path = path.resolve()
        if path.is_dir():
            if is_project_dir(path):
                want(project_at(path), None)
                continue
            root = find_project_root(path)
            if root is not None:
                project = project_at(root)
                inside = {r.path for r in project.revisions if path in r.path.parents}
                if inside:
                    want(project, inside)
                    continue
            sql = sorted(p for p in path.rglob("*.sql") if p.is_file())
            if not sql:
                raise CheckUsageError(
                    f"{arg}: no Alembic project (alembic.ini / [tool.alembic]) and no .sql files in it"
                )
            targets.sql_files += sql
        elif path.suffix == ".sql":
            targets.sql_files.append(path)
        elif path.name in ("alembic.ini", "pyproject.toml"):
            want(project_at(path.parent), None)
        elif path.suffix == ".py":
            root = find_project_root(path)
            owner = project_at(root) if root is not None else None
            if owner is not None and path in owner.by_path():
                want(owner, {path})
                continue
            rev = read_revision_file(path)
            if rev.revision is None and rev.syntax_error is None:
                where = f"a revision file of {owner.config_file}" if owner else "a revision file"
                raise CheckUsageError(
                    f"{arg}: not {where} (no `revision = ...` in it); nothing to check"
                )
            want(standalone_project(rev), None)
            if owner is None:
                targets.notes.append(
                    f"{arg}: not inside an Alembic project; checked as a one-revision project "
                    "(no history: tables it does not create are treated as existing)"
                )
            else:
                targets.notes.append(
                    f"{arg}: not in the version locations of {owner.config_file} "
                    f"({', '.join(str(v) for v in owner.version_locations)}); checked on its own"
                )
        else:
            raise CheckUsageError(f"{arg}: not a .sql file, a revision file or an Alembic project")

    changed = changed_files(since, cwd) if since else None
    for key, files in wanted.items():
        project = chosen[key]
        if not project.revisions:
            locations = ", ".join(str(v) for v in project.version_locations) or "(none)"
            raise CheckUsageError(
                f"{project.config_file}: its version locations hold no revision file ({locations}); "
                "nothing to check. Is script_location right for this directory?"
            )
        if revision_range:
            revisions = select_range(project, revision_range)
            problem = None
        else:
            revisions, problem = upgrade_order(project)
        if files is not None:
            revisions = [r for r in revisions if r.path in files]
        if changed is not None:
            revisions = [r for r in revisions if r.path in changed]
        if not revisions and changed is None:
            raise CheckUsageError(
                f"{project.config_file}: --range {revision_range} selects no revision; nothing to check"
                if revision_range else f"{project.config_file}: no revision selected; nothing to check"
            )
        if not revisions and changed is not None:
            targets.notes.append(f"{project.config_file}: no revision changed since {since}")
        targets.projects.append(ProjectTarget(project, revisions, problem))
    if changed is not None:
        targets.sql_files = [p for p in targets.sql_files if p in changed]
    targets.sql_files = list(dict.fromkeys(targets.sql_files))
    return targets


def changed_files(ref: str, cwd: Path) -> set[Path]:
    """Files added or changed since the merge base of ``ref`` and HEAD, committed or not."""

    def git(*args: str) -> str:
        try:
            done = subprocess.run(
                ["git", *args], cwd=cwd, capture_output=True, text=True, check=False
            )
        except OSError as exc:
            raise CheckUsageError(f"--since {ref}: cannot run git: {exc}") from None
        if done.returncode != 0:
            message = (done.stderr.strip() or done.stdout.strip()).splitlines()
            raise CheckUsageError(f"--since {ref}: git {args[0]} failed: {message[0] if message else done.returncode}")
        return done.stdout

    top = Path(git("rev-parse", "--show-toplevel").strip())
    base = git("merge-base", ref, "HEAD").strip()
    names = git("diff", "--name-only", "--diff-filter=ACMR", "-z", base).split("\0")
    names += git("ls-files", "--others", "--exclude-standard", "--full-name", "-z", ":/").split("\0")
    return {(top / n).resolve() for n in names if n}
