"""The gate never passes having checked nothing; a lone revision file is checked on its own; the
cache re-checks only what changed; output sizes and listing flags."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from check_helpers import revision_source, run_check, write_project

from helios_migrate.check.formats import OutputFormat, render
from helios_migrate.check.formats.markdown import MAX_CHARS
from helios_migrate.check.report import CheckReport
from helios_migrate.check.runner import CheckOptions
from helios_migrate.check.runner import run_check as run_in_process
from helios_migrate.findings import Finding, Location, Severity
from helios_migrate.versions import PgVersion

INDEX = revision_source("0001", None, 'op.create_index("ix_users_email", "users", ["email"])')


def test_relative_script_location_is_resolved_beside_alembic_ini(tmp_path: Path) -> None:
    root = write_project(tmp_path / "proj", {"0001_index.py": INDEX})
    (root / "alembic.ini").write_text("[alembic]\nscript_location = migrations\n", encoding="utf-8")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    done = run_check(elsewhere, str(root / "migrations" / "versions" / "0001_index.py"), "--format", "json")
    assert done.returncode == 1, done.stderr
    assert json.loads(done.stdout)["summary"]["revisions"] == 1


def test_a_project_without_revision_files_is_an_error(tmp_path: Path) -> None:
    root = write_project(tmp_path / "proj", {})
    done = run_check(root)
    assert done.returncode == 2
    assert "hold no revision file" in done.stderr and "nothing to check" in done.stderr


def test_a_python_file_that_is_not_a_revision_is_an_error(tmp_path: Path) -> None:
    root = write_project(tmp_path / "proj", {"0001_index.py": INDEX})
    done = run_check(root, "migrations/env.py")
    assert done.returncode == 2
    assert "migrations/env.py: not a revision file" in done.stderr


def test_a_lone_revision_file_is_checked_as_a_one_revision_project(tmp_path: Path) -> None:
    (tmp_path / "0001_index.py").write_text(INDEX, encoding="utf-8")
    done = run_check(tmp_path, "0001_index.py", "--format", "json")
    assert done.returncode == 1, done.stderr
    report = json.loads(done.stdout)
    assert report["summary"]["revisions"] == 1
    assert [f["code"] for f in report["findings"] if f["severity"] == "error"] == ["HM101"]
    assert any("one-revision project" in note for note in report["notes"])
    text = run_check(tmp_path, "0001_index.py")
    assert "note: 0001_index.py: not inside an Alembic project" in text.stdout


def test_the_cache_replays_unchanged_revisions(tmp_path: Path) -> None:
    root = write_project(tmp_path / "proj", {"0001_index.py": INDEX})
    first = run_in_process(CheckOptions(paths=(str(root),), cwd=root, cache=True, pg_version="16"))
    assert (root / ".helios-cache" / ".gitignore").is_file()
    again = run_in_process(CheckOptions(paths=(str(root),), cwd=root, cache=True, pg_version="16"))
    assert again.findings == first.findings and again.revision_states == first.revision_states
    # A changed file is checked again, not replayed.
    path = root / "migrations" / "versions" / "0001_index.py"
    path.write_text(INDEX.replace("op.create_index(", "op.create_index(postgresql_concurrently=True, index_name=")
                    .replace('"ix_users_email", ', ""), encoding="utf-8")
    changed = run_in_process(CheckOptions(paths=(str(root),), cwd=root, cache=True, pg_version="16"))
    assert "HM101" not in {f.code for f in changed.findings}


def _many(n: int) -> CheckReport:
    findings = tuple(
        Finding("HM101", "create-index-non-concurrently", Severity.ERROR if i % 3 else Severity.INFO,
                f"CREATE INDEX on orders_{i} blocks writes for the whole build " + "x" * 200,
                Location(f"migrations/versions/{i:04d}_rev.py", 10), "Use CONCURRENTLY. " * 20,
                "CREATE INDEX ix ON orders (a);" * 10, f"{i:04d}")
        for i in range(n)
    )
    return CheckReport(findings, PgVersion.parse("16"), "--pg-version", Severity.ERROR, revisions=n)


def test_markdown_stays_under_the_comment_limit_by_summarising() -> None:
    report = _many(2000)
    out = render(report, OutputFormat.MARKDOWN)
    assert len(out) < MAX_CHARS
    assert "| 🛑 error | [HM101]" in out and "| 1333 |" in out
    assert "<details>" in out and "… and " in out and "more" in out
    small = render(_many(3), OutputFormat.MARKDOWN)
    assert "… and" not in small


def test_info_is_listed_only_when_asked_and_quiet_keeps_blocking_ones() -> None:
    report = replace(_many(6), findings=_many(6).findings)
    text = render(report, OutputFormat.TEXT)
    assert text.count("[info]") == 0 and "2 not listed: --show-info" in text
    shown = render(replace(report, show_info=True), OutputFormat.TEXT)
    assert shown.count("[info]") == 2
    warn = replace(report, findings=(*report.findings, replace(report.findings[1], severity=Severity.WARNING)))
    quiet = render(replace(warn, quiet=True), OutputFormat.TEXT)
    assert "[warning]" not in quiet and quiet.count("[error]") == 4
    # Machine formats list everything.
    assert len(json.loads(render(report, OutputFormat.JSON))["findings"]) == 6
