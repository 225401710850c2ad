"""Benchmark: ``helios-migrate check`` against the pipeline teams build today.

Generates an Alembic project of N revisions (a mix of operations, some dangerous) in a temporary
directory, then times, end to end:

* ``helios-migrate check`` over the project (one process; every revision rendered offline in it);
* the usual alternative: ``alembic upgrade <down>:<rev> --sql`` once per revision, each output
  written to a file, then ``squawk`` over all the files (the ``squawk-cli`` package on PyPI);
* the fastest form of it, possible here because every generated revision renders offline:
  ``alembic upgrade base:head --sql`` once, then ``squawk`` over that one file.

Usage::

    python bench/check_speed.py [--revisions 300] [--keep DIR] [--skip-squawk]

``squawk-cli`` is not a dependency of helios-migrate: ``pip install squawk-cli`` to run the
comparison (it is skipped, with a note, when no ``squawk`` executable is found).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ENV_PY = '''\
from alembic import context

config = context.config


def run_migrations_offline() -> None:
    context.configure(
        url="postgresql://bench@localhost/bench",
        target_metadata=None,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    raise SystemExit("the benchmark project only runs offline")
'''

MAKO = '''\
"""${message}"""
from alembic import op
import sqlalchemy as sa

revision = ${repr(up_revision)}
down_revision = ${repr(down_revision)}


def upgrade() -> None:
    ${upgrades if upgrades else "pass"}


def downgrade() -> None:
    ${downgrades if downgrades else "pass"}
'''


def _ops(i: int) -> tuple[str, str]:
    """(upgrade body, downgrade body) of revision ``i``: a cycle of common operations."""
    t = f"t{i - i % 10:04d}"  # every 10 revisions share a table created by the first of them
    kind = i % 10
    if kind == 0:
        return (
            f"op.create_table(\n        {t!r},\n        sa.Column('id', sa.BigInteger, primary_key=True),\n"
            f"        sa.Column('name', sa.String(100), nullable=False),\n"
            f"        sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()')),\n    )",
            f"op.drop_table({t!r})",
        )
    if kind == 1:
        return (f"op.add_column({t!r}, sa.Column('note', sa.Text(), nullable=True))",
                f"op.drop_column({t!r}, 'note')")
    if kind == 2:  # dangerous: volatile default rewrites the table
        return (f"op.add_column({t!r}, sa.Column('score', sa.Float(), server_default=sa.text('random()')))",
                f"op.drop_column({t!r}, 'score')")
    if kind == 3:  # dangerous: blocks writes while the index builds
        return (f"op.create_index('ix_{t}_name', {t!r}, ['name'])", f"op.drop_index('ix_{t}_name', table_name={t!r})")
    if kind == 4:
        return (
            "with op.get_context().autocommit_block():\n"
            f"        op.create_index('ix_{t}_created', {t!r}, ['created_at'], postgresql_concurrently=True)",
            f"op.drop_index('ix_{t}_created', table_name={t!r})",
        )
    if kind == 5:  # dangerous: full scan under ACCESS EXCLUSIVE
        return (f"op.alter_column({t!r}, 'note', existing_type=sa.Text(), nullable=False)",
                f"op.alter_column({t!r}, 'note', existing_type=sa.Text(), nullable=True)")
    if kind == 6:
        return (f"op.execute(\"UPDATE {t} SET note = '' WHERE note IS NULL\")", "pass")
    if kind == 7:
        return (f"op.add_column({t!r}, sa.Column('parent_id', sa.BigInteger(), nullable=True))",
                f"op.drop_column({t!r}, 'parent_id')")
    if kind == 8:  # dangerous: validates the foreign key under a SHARE ROW EXCLUSIVE lock
        return (f"op.create_foreign_key('fk_{t}_parent', {t!r}, {t!r}, ['parent_id'], ['id'])",
                f"op.drop_constraint('fk_{t}_parent', {t!r}, type_='foreignkey')")
    return (f"op.alter_column({t!r}, 'name', existing_type=sa.String(100), type_=sa.String(200))",
            f"op.alter_column({t!r}, 'name', existing_type=sa.String(200), type_=sa.String(100))")


def generate_project(root: Path, revisions: int) -> list[str]:
    """Write the project; return the revision ids in upgrade order."""
    (root / "migrations" / "versions").mkdir(parents=True)
    (root / "alembic.ini").write_text(
        "[alembic]\nscript_location = %(here)s/migrations\nprepend_sys_path = .\n", encoding="utf-8"
    )
    (root / "migrations" / "env.py").write_text(ENV_PY, encoding="utf-8")
    (root / "migrations" / "script.py.mako").write_text(MAKO, encoding="utf-8")
    ids = []
    down: str | None = None
    for i in range(revisions):
        rev = f"{i + 1:04d}aa{i:06x}"
        up, dn = _ops(i)
        text = (
            f'"""revision {i + 1}"""\n'
            "from alembic import op\n"
            "import sqlalchemy as sa\n\n"
            f"revision = {rev!r}\n"
            f"down_revision = {down!r}\n"
            "branch_labels = None\n"
            "depends_on = None\n\n\n"
            f"def upgrade() -> None:\n    {up}\n\n\n"
            f"def downgrade() -> None:\n    {dn}\n"
        )
        (root / "migrations" / "versions" / f"{rev}_rev{i + 1}.py").write_text(text, encoding="utf-8")
        ids.append(rev)
        down = rev
    return ids


def _env() -> dict[str, str]:
    """The checkout importable from the generated project (helios-migrate and its Alembic plugin)."""
    repo = str(Path(__file__).resolve().parents[1])
    return dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [repo, os.environ.get("PYTHONPATH")])))


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def time_helios(root: Path) -> tuple[float, int, str]:
    """(wall seconds, findings, JSON); CPU seconds are in ``LAST_CPU``."""
    global LAST_CPU
    env = _env()
    cpu_before = _children_cpu()
    began = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "helios_migrate.cli", "check", "--format", "json", "--fail-on", "error", "--no-cache"],
        cwd=root, capture_output=True, text=True, env=env, check=False,
    )
    elapsed = time.perf_counter() - began
    LAST_CPU = _children_cpu() - cpu_before
    if done.returncode not in (0, 1):
        raise SystemExit(f"helios-migrate check failed ({done.returncode}):\n{done.stderr}")
    import json

    findings = len(json.loads(done.stdout)["findings"])
    return elapsed, findings, done.stdout


LAST_CPU = 0.0


def time_alembic_squawk(root: Path, ids: list[str], squawk: str) -> tuple[float, float, int]:
    """(alembic seconds, squawk seconds, squawk exit code); their CPU seconds in ``LAST_CPU``."""
    global LAST_CPU
    cpu_before = _children_cpu()
    out_dir = root / "sql"
    out_dir.mkdir()
    env = _env()
    began = time.perf_counter()
    down: str | None = None
    for rev in ids:
        spec = rev if down is None else f"{down}:{rev}"
        done = subprocess.run(
            [sys.executable, "-m", "alembic", "upgrade", spec, "--sql"],
            cwd=root, capture_output=True, text=True, env=env, check=False,
        )
        if done.returncode != 0:
            raise SystemExit(f"alembic upgrade {spec} --sql failed:\n{done.stderr}")
        (out_dir / f"{rev}.sql").write_text(done.stdout, encoding="utf-8")
        down = rev
    alembic_seconds = time.perf_counter() - began
    began = time.perf_counter()
    files = sorted(str(p) for p in out_dir.glob("*.sql"))
    done = subprocess.run([squawk, *files], capture_output=True, text=True, check=False)
    LAST_CPU = _children_cpu() - cpu_before
    return alembic_seconds, time.perf_counter() - began, done.returncode


def time_alembic_once_squawk(root: Path, squawk: str) -> tuple[float, float]:
    """The whole history in one ``alembic upgrade base:head --sql`` (possible here, where every
    revision renders offline), then squawk over that one file: (wall seconds, CPU seconds)."""
    cpu_before = _children_cpu()
    began = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "alembic", "upgrade", "base:head", "--sql"],
        cwd=root, capture_output=True, text=True, env=_env(), check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"alembic upgrade base:head --sql failed:\n{done.stderr}")
    whole = root / "whole.sql"
    whole.write_text(done.stdout, encoding="utf-8")
    subprocess.run([squawk, str(whole)], capture_output=True, text=True, check=False)
    return time.perf_counter() - began, _children_cpu() - cpu_before


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--revisions", type=int, default=300)
    parser.add_argument("--keep", type=Path, help="generate the project here and keep it")
    parser.add_argument("--skip-squawk", action="store_true", help="time helios-migrate only")
    args = parser.parse_args(argv)

    root = args.keep or Path(tempfile.mkdtemp(prefix="helios-bench-"))
    if args.keep:
        root.mkdir(parents=True, exist_ok=True)
    try:
        ids = generate_project(root, args.revisions)
        print(f"project: {root} ({len(ids)} revisions); CPUs: {os.cpu_count()}")
        ours, findings, _ = time_helios(root)
        ours_cpu = LAST_CPU
        print(f"helios-migrate check:              {ours:8.2f} s wall {ours_cpu:6.2f} s CPU  ({findings} findings)")
        squawk = shutil.which("squawk") or str(Path(sys.executable).with_name("squawk"))
        if args.skip_squawk:
            return 0
        if not Path(squawk).exists():
            print("squawk not found: pip install squawk-cli to run the comparison")
            return 0
        alembic_s, squawk_s, code = time_alembic_squawk(root, ids, squawk)
        total = alembic_s + squawk_s
        print(f"alembic --sql per revision:        {alembic_s:8.2f} s")
        print(f"squawk over the SQL files:         {squawk_s:8.2f} s  (exit {code})")
        print(f"alembic + squawk pipeline:         {total:8.2f} s wall {LAST_CPU:6.2f} s CPU")
        print(f"ratio (pipeline / helios-migrate): {total / ours:8.1f}x")
        once, once_cpu = time_alembic_once_squawk(root, squawk)
        print(f"alembic --sql once (base:head) + squawk: {once:6.2f} s wall {once_cpu:6.2f} s CPU")
        print(f"ratio (that pipeline / helios-migrate):  {once / ours:6.2f}x wall")
        return 0
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
