"""``check --jobs``: a project's revisions checked in forked workers give the same report as one
process, including revisions that inspect the schema the revisions before them built (workers are
forked: Linux, where the suite runs)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
from check_helpers import revision_source, run_check, write_project

from helios_migrate.check import parallel, runner
from helios_migrate.check.runner import CheckOptions

COUNT = 40


def _project(root: Path) -> None:
    """COUNT revisions: tables, indexes, a column, and, late in the history (in a worker's share),
    revisions whose statements depend on ``sa.inspect`` answering from the revisions before."""
    revisions: dict[str, str] = {}
    down: str | None = None
    for n in range(COUNT):
        rev = f"r{n:03d}"
        if n % 10 == 9:
            body = f"""\
inspector = sa.inspect(op.get_bind())
if inspector.has_table("t{n - 1:03d}"):
    op.add_column("t{n - 1:03d}", sa.Column("late", sa.Integer(), nullable=False, server_default="0"))
if "ix_t{n - 2:03d}_v" in {{i["name"] for i in inspector.get_indexes("t{n - 2:03d}")}}:
    op.drop_index("ix_t{n - 2:03d}_v", table_name="t{n - 2:03d}")
else:
    op.create_index("ix_never_{n}", "t{n - 2:03d}", ["v"])
"""
        else:
            body = f"""\
op.create_table("t{n:03d}", sa.Column("id", sa.BigInteger(), primary_key=True), sa.Column("v", sa.Text()))
op.create_index("ix_t{n:03d}_v", "t{n:03d}", ["v"])
op.execute("UPDATE t000 SET v = 'x'")
"""
        revisions[f"{rev}_step.py"] = revision_source(rev, down, body)
        down = rev
    write_project(root, revisions)


def _report(root: Path, jobs: int) -> dict[str, object]:
    done = run_check(root, "--format", "json", "--no-cache", "--pg-version", "16", "--jobs", str(jobs))
    assert done.returncode in (0, 1), done.stderr
    report = json.loads(done.stdout)
    assert report["summary"]["revisions"] == COUNT and report["findings"]
    return report


def test_workers_give_the_report_one_process_gives(tmp_path: Path) -> None:
    _project(tmp_path)
    one, two, three = (_report(tmp_path, jobs) for jobs in (1, 2, 3))
    assert one == two == three
    # the inspecting revisions were rendered with the schema before them, in every share
    states = {s["revision"]: s for s in one["revisions"]}  # type: ignore[index,union-attr]
    for n in range(9, COUNT, 10):
        assert "answered from the schema the earlier revisions built" in states[f"r{n:03d}"]["detail"]
    dropped = [f for f in one["findings"] if f["code"] == "HM101" and "ix_never" in f["message"]]  # type: ignore[union-attr,index]
    assert dropped == []


def test_the_checking_process_renders_only_its_share_and_the_inspecting_revisions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _project(tmp_path)
    checked: list[str] = []
    original = runner._check_revision
    me = os.getpid()

    def counting(run, rev, renderer, functions):  # type: ignore[no-untyped-def]
        if os.getpid() == me:
            checked.append(rev.revision)
        return original(run, rev, renderer, functions)

    monkeypatch.setattr(runner, "_check_revision", counting)
    options = CheckOptions(paths=(str(tmp_path),), pg_version="16", cwd=tmp_path, jobs=2)
    report = runner.run_check(options)
    checked_here = list(checked)
    alone = runner.run_check(CheckOptions(paths=(str(tmp_path),), pg_version="16", cwd=tmp_path, jobs=1))
    assert report == alone
    # its own share is a prefix of the history; after it, only the revisions that asked sa.inspect
    # (their worker rendered them without the schema before them)
    own = 0
    while own < len(checked_here) and checked_here[own] == f"r{own:03d}":
        own += 1
    assert parallel.MIN_SHARE <= own < COUNT - parallel.MIN_SHARE
    assert checked_here[own:] == [f"r{n:03d}" for n in range(9, COUNT, 10) if n >= own]


def test_a_worker_that_dies_costs_only_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _project(tmp_path)
    original = runner._check_revision
    me = os.getpid()

    def dying(run, rev, renderer, functions):  # type: ignore[no-untyped-def]
        if os.getpid() != me:
            sys.stdout.flush()
            os._exit(3)
        return original(run, rev, renderer, functions)

    monkeypatch.setattr(runner, "_check_revision", dying)
    report = runner.run_check(CheckOptions(paths=(str(tmp_path),), pg_version="16", cwd=tmp_path, jobs=2))
    monkeypatch.setattr(runner, "_check_revision", original)
    alone = runner.run_check(CheckOptions(paths=(str(tmp_path),), pg_version="16", cwd=tmp_path, jobs=1))
    assert report == alone
    assert len(report.revision_states) == COUNT


def test_shares_are_contiguous_and_sized_by_source() -> None:
    class Item:
        def __init__(self, n: int, size: int) -> None:
            self.path, self.source = Path(f"{n}.py"), "x" * size

    items = [Item(n, 100 if n < 30 else 1000) for n in range(60)]
    parts = parallel.shares(items, 2)
    assert [i for part in parts for i in part] == items
    assert len(parts) == 2 and len(parts[0]) > len(parts[1])  # the big files are shared out too
    assert parallel.shares(items[: parallel.MIN_SHARE * 2 - 1], 2) == [items[: parallel.MIN_SHARE * 2 - 1]]
    assert len(parallel.shares(items, 16)) == len(items) // parallel.MIN_SHARE


def test_an_error_in_the_checking_process_leaves_no_worker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _project(tmp_path)
    original = runner._check_revision
    me = os.getpid()
    started: list[int] = []
    original_fork = parallel._fork

    def fork(part, compute):  # type: ignore[no-untyped-def]
        worker = original_fork(part, compute)
        started.append(worker.pid)
        return worker

    def failing(run, rev, renderer, functions):  # type: ignore[no-untyped-def]
        if os.getpid() == me and rev.revision == "r005":
            raise RuntimeError("stop")
        return original(run, rev, renderer, functions)

    monkeypatch.setattr(parallel, "_fork", fork)
    monkeypatch.setattr(runner, "_check_revision", failing)
    with pytest.raises(RuntimeError, match="stop"):
        runner.run_check(CheckOptions(paths=(str(tmp_path),), pg_version="16", cwd=tmp_path, jobs=2))
    assert started
    for pid in started:
        with pytest.raises(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)  # reaped: not running, not a zombie


@pytest.mark.parametrize(
    ("files", "cores"),
    [
        ({"cpu.max": "150000 100000\n"}, 2),
        ({"cpu.max": "max 100000\n"}, None),
        ({"cpu/cpu.cfs_quota_us": "400000\n", "cpu/cpu.cfs_period_us": "100000\n"}, 4),
        ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, None),
        ({"cpu.max": "garbage"}, None),
        ({}, None),
    ],
)
def test_a_container_cpu_quota_bounds_the_default_jobs(tmp_path: Path, files: dict[str, str], cores: int | None) -> None:
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert parallel.cgroup_cpu_quota(tmp_path) == cores


def test_the_default_jobs_follow_the_quota_and_the_cap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "cpu.max").write_text("100000 100000\n")
    monkeypatch.setattr(parallel, "CGROUP_ROOT", tmp_path)
    assert parallel.available_cores() == 1
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert 1 <= parallel.available_cores() <= min(len(os.sched_getaffinity(0)), parallel.MAX_DEFAULT_JOBS)
