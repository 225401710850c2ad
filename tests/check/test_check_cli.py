"""End to end: ``helios-migrate check`` as a subprocess on temporary Alembic projects."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from check_helpers import line_of, revision_source, rule_code, run_check, write_project

GOOD = revision_source(
    "0001", None,
    """
op.create_table(
    "users",
    sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
    sa.Column("email", sa.Text(), nullable=False),
)
op.create_index("ix_users_email", "users", ["email"])
""",
    'op.drop_table("users")',
)

DANGEROUS = revision_source(
    "0002", "0001",
    """
op.add_column("users", sa.Column("nickname", sa.Text(), nullable=True))
op.create_index("ix_users_nickname", "users", ["nickname"])
""",
    'op.drop_index("ix_users_nickname", table_name="users")\nop.drop_column("users", "nickname")',
)

BROKEN_IMPORT = revision_source(
    "0003", "0002",
    """
op.create_index("ix_users_created", "users", ["created_at"])
op.add_column("users", sa.Column("kind", EnumFromApp(), nullable=True))
""",
    header="from myapp.models import EnumFromApp\n",
)

IGNORED = revision_source(
    "0004", "0003",
    """
# helios: ignore[{code}]
op.create_index("ix_users_flag", "users", ["flag"])
""",
)


def _project(tmp_path: Path) -> Path:
    code = rule_code("create_index_non_concurrently")
    return write_project(tmp_path / "proj", {
        "0001_users.py": GOOD,
        "0002_nickname.py": DANGEROUS,
        "0003_kind.py": BROKEN_IMPORT,
        "0004_flag.py": IGNORED.replace("{code}", code),
    })


def _findings(done: subprocess.CompletedProcess[str]) -> list[dict[str, object]]:
    assert "Traceback" not in done.stderr, done.stderr
    doc = json.loads(done.stdout)
    findings: list[dict[str, object]] = doc["findings"]
    return findings


def _at(findings: list[dict[str, object]], path: str) -> list[tuple[object, object]]:
    return [(f["code"], f["line"]) for f in findings if f["path"] == path]


def test_project_end_to_end(tmp_path: Path) -> None:
    root = _project(tmp_path)
    index_code = rule_code("create_index_non_concurrently")
    done = run_check(root, "--format", "json")
    assert done.returncode == 1, done.stderr
    findings = _findings(done)
    v = "migrations/versions/"

    # The good revision: the index is on a table created in the same revision.
    assert [f for f in findings if f["path"] == v + "0001_users.py" and f["severity"] == "error"] == []
    # The dangerous one points at the op.create_index line of the revision file.
    assert (index_code, line_of(DANGEROUS, "op.create_index")) in _at(findings, v + "0002_nickname.py")
    # The one importing an application module that is not installed renders with a placeholder
    # for it, and says so in its state.
    broken = _at(findings, v + "0003_kind.py")
    assert all(code != "HM904" for code, _ in broken)
    assert (index_code, line_of(BROKEN_IMPORT, "op.create_index")) in broken
    states = {r["path"]: r for r in json.loads(done.stdout)["revisions"]}
    assert states[v + "0003_kind.py"]["state"] == "rendered_with_placeholders"
    assert "myapp.models.EnumFromApp" in states[v + "0003_kind.py"]["detail"]
    assert states[v + "0002_nickname.py"]["state"] == "rendered"
    # The ignore comment suppresses the finding, and is used (no HM902).
    ignored = _at(findings, v + "0004_flag.py")
    assert (index_code, line_of(IGNORED, "op.create_index")) not in ignored
    assert all(code != "HM902" for code, _ in ignored)
    summary = json.loads(done.stdout)["summary"]
    assert summary["revisions"] == 4 and summary["failed"] is True


def test_text_output_has_a_code_frame(tmp_path: Path) -> None:
    root = _project(tmp_path)
    done = run_check(root, "migrations/versions/0002_nickname.py")
    assert done.returncode == 1
    line = line_of(DANGEROUS, "op.create_index")
    assert f"migrations/versions/0002_nickname.py:{line}:5: {rule_code('create_index_non_concurrently')}" in done.stdout
    assert f'{line} |     op.create_index("ix_users_nickname", "users", ["nickname"])' in done.stdout
    assert "= help:" in done.stdout and "= docs: https://" in done.stdout
    assert "in 1 revision" in done.stdout


def test_range(tmp_path: Path) -> None:
    root = _project(tmp_path)
    done = run_check(root, "--range", "0002:0003", "--format", "json")
    paths = {f["path"] for f in _findings(done)}
    assert paths == {"migrations/versions/0003_kind.py"}
    assert json.loads(done.stdout)["summary"]["revisions"] == 1
    done = run_check(root, "--range", "base:head", "--format", "json")
    assert json.loads(done.stdout)["summary"]["revisions"] == 4
    bad = run_check(root, "--range", "nope:head")
    assert bad.returncode == 2 and "--range" in bad.stderr and "Traceback" not in bad.stderr


def test_since_git_ref(tmp_path: Path) -> None:
    root = _project(tmp_path)
    versions = root / "migrations" / "versions"
    later = {p.name: p.read_text() for p in versions.glob("000[34]*.py")}
    for name in later:
        (versions / name).unlink()

    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=root, check=True, capture_output=True)

    git("init", "-q", "-b", "main")
    git("-c", "user.email=t@example.com", "-c", "user.name=t", "add", ".")
    git("-c", "user.email=t@example.com", "-c", "user.name=t", "commit", "-qm", "base")
    git("checkout", "-qb", "feature")
    (versions / "0003_kind.py").write_text(later["0003_kind.py"])
    git("add", "migrations/versions/0003_kind.py")
    git("-c", "user.email=t@example.com", "-c", "user.name=t", "commit", "-qm", "0003")
    (versions / "0004_flag.py").write_text(later["0004_flag.py"])  # untracked, still checked

    done = run_check(root, "--since", "main", "--format", "json")
    assert json.loads(done.stdout)["summary"]["revisions"] == 2
    assert {f["path"] for f in _findings(done)} <= {
        "migrations/versions/0003_kind.py", "migrations/versions/0004_flag.py"
    }
    bad = run_check(root, "--since", "no-such-ref")
    assert bad.returncode == 2 and "no-such-ref" in bad.stderr


def test_sql_files_and_folders(tmp_path: Path) -> None:
    sql_dir = tmp_path / "sql"
    sql_dir.mkdir()
    (sql_dir / "001.sql").write_text("CREATE TABLE t (id bigint);\n")
    (sql_dir / "002.sql").write_text(
        "SET lock_timeout = '2s';\n\nCREATE INDEX ix_orders_customer ON orders (customer_id);\n"
    )
    done = run_check(tmp_path, "sql", "--format", "json")
    assert done.returncode == 1, done.stderr
    findings = _findings(done)
    assert ("sql/002.sql", 3) in {(f["path"], f["line"]) for f in findings if f["code"] == rule_code("create_index_non_concurrently")}
    assert json.loads(done.stdout)["summary"]["sql_files"] == 2
    single = run_check(tmp_path, "sql/001.sql", "--format", "json")
    assert json.loads(single.stdout)["summary"]["sql_files"] == 1


def test_downgrade(tmp_path: Path) -> None:
    root = _project(tmp_path)
    target = "migrations/versions/0001_users.py"
    without = _findings(run_check(root, target, "--format", "json", "--fail-on", "info"))
    with_down = _findings(run_check(root, target, "--downgrade", "--format", "json", "--fail-on", "info"))
    drop_line = line_of(GOOD, "op.drop_table")
    assert all(f["line"] != drop_line for f in without)
    assert any(f["line"] == drop_line and f["code"] == rule_code("drop_table") for f in with_down)


def test_syntax_error_is_a_finding_not_a_traceback(tmp_path: Path) -> None:
    root = _project(tmp_path)
    bad = root / "migrations" / "versions" / "0005_bad.py"
    bad.write_text('revision = "0005"\ndown_revision = "0004"\n\ndef upgrade(:\n    pass\n')
    done = run_check(root, "--format", "json")
    findings = _findings(done)
    hit = [f for f in findings if f["path"] == "migrations/versions/0005_bad.py"]
    assert hit and hit[0]["code"] == "HM901" and hit[0]["line"] == 4
    # The other revisions are still checked.
    assert any(f["path"] == "migrations/versions/0002_nickname.py" for f in findings)


def test_unreachable_database_is_exit_2(tmp_path: Path) -> None:
    root = _project(tmp_path)
    done = run_check(root, "--database-url", "postgresql://nobody@127.0.0.1:1/none?connect_timeout=2")
    assert done.returncode == 2
    assert "cannot connect to the database" in done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""


def test_usage_errors_are_exit_2(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    done = run_check(empty)
    assert done.returncode == 2 and "no Alembic project" in done.stderr
    root = _project(tmp_path)
    assert run_check(root, "--pg-version", "9.6").returncode == 2
    assert run_check(root, "--fail-on", "fatal").returncode == 2
    assert run_check(root, "missing.sql").returncode == 2


NULLABLE_COLUMN = revision_source(
    "0002", "0001",
    'op.add_column("users", sa.Column("nickname", sa.Text(), nullable=True))',
    'op.drop_column("users", "nickname")',
)
"""One finding, a warning: the ADD COLUMN waits for its lock with no lock_timeout (HM401)."""


def test_fail_on_threshold(tmp_path: Path) -> None:
    clean = write_project(tmp_path / "clean", {"0001_users.py": GOOD})
    done = run_check(clean, "--format", "json", "--fail-on", "info")
    assert (done.returncode, _findings(done)) == (0, []), done.stderr

    root = write_project(tmp_path / "p", {"0001_users.py": GOOD, "0002_nickname.py": NULLABLE_COLUMN})
    done = run_check(root, "--format", "json", "--fail-on", "error")
    assert [(f["code"], f["severity"]) for f in _findings(done)] == [("HM401", "warning")]
    assert done.returncode == 0, "a warning is below --fail-on error"
    assert run_check(root, "--format", "json", "--fail-on", "warning").returncode == 1
    (root / "pyproject.toml").write_text('[tool.helios-migrate]\nfail_on = "info"\n')
    done = run_check(root, "--format", "json")
    assert done.returncode == 1, "fail_on = info in pyproject.toml fails on the warning"
    assert json.loads(done.stdout)["summary"]["fail_on"] == "info"
    assert run_check(root, "--format", "json", "--fail-on", "error").returncode == 0, "the option wins"
