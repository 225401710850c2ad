"""A hostile OpenAI-compatible endpoint cannot run SQL or code of its choosing through proposed plans.

The endpoint is the fake server of ``tests/llm`` on 127.0.0.1, reached through the real ``openai``
SDK.  Every payload is something a malicious, compromised or prompt-injected model could answer;
each must be refused with its reason, leave no trace in the revision, and never reach the database
(a ``COPY ... TO PROGRAM`` would create the marker file; the positive control proves it would).
"""

from __future__ import annotations

import ast
import json
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "llm"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "autogen"))
from autogen_harness import Project
from llm_fake_server import FakeLLMServer, Reply

from helios_migrate.llm.client import MAX_ANSWER_CHARS, LlmClient
from helios_migrate.llm.config import LlmConfig
from helios_migrate.llm.propose import LLM_MARK, PlanContext, propose_plan
from helios_migrate.llm.sql_guard import GuardError, judge, scope_of
from helios_migrate.versions import PgVersion

SQL = "UPDATE items SET note = upper(note) WHERE id <= 10"


def _step(**overrides: Any) -> dict[str, Any]:
    step: dict[str, Any] = {
        "kind": "data_migration",
        "phase": "backfill",
        "description": "upper-case the notes of the first ten items",
        "sql": [SQL],
        "transaction": "own",
        "inverse_sql": None,
        "irreversible_reason": "the original case of the notes is not kept",
        "rationale": "ten rows by primary key: row locks only",
    }
    step.update(overrides)
    return step


def _answer(*steps: dict[str, Any]) -> Reply:
    return Reply(json.dumps({"steps": list(steps), "notes": []}))


def _hostile(marker: Path) -> list[tuple[str, dict[str, Any], str]]:
    """(case id, step, expected part of the rejection reason)."""
    touch = f"COPY items TO PROGRAM 'touch {marker}'"
    return [
        ("copy-program", _step(sql=[touch]), "COPY is not a statement a plan may contain"),
        ("hidden-second-statement", _step(sql=[f"{SQL}; {touch}"]), "exactly one statement per item"),
        ("do-block", _step(sql=[f"DO $$ BEGIN EXECUTE $x${touch}$x$; END $$"]), "DO is not a statement"),
        (
            "create-function",
            _step(
                kind="create_object",
                sql=["CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1'"],
            ),
            "CREATE FUNCTION is not a statement",
        ),
        (
            "create-trigger",
            _step(
                kind="create_object",
                sql=["CREATE TRIGGER t BEFORE INSERT ON items FOR EACH ROW EXECUTE FUNCTION f()"],
            ),
            "CREATE TRIGGER is not a statement",
        ),
        ("alter-system", _step(kind="other", sql=["ALTER SYSTEM SET fsync = off"]), "ALTER SYSTEM is not"),
        ("set-role", _step(kind="session_setting", sql=["SET ROLE postgres"]), "SET role is not allowed"),
        (
            "session-authorization",
            _step(kind="session_setting", sql=["SET SESSION AUTHORIZATION postgres"]),
            "SET session_authorization is not allowed",
        ),
        ("grant", _step(kind="other", sql=["GRANT ALL ON items TO PUBLIC"]), "GRANT/REVOKE is not"),
        (
            "read-file",
            _step(sql=["UPDATE items SET note = pg_read_file('/etc/passwd') WHERE id <= 10"]),
            "calls pg_read_file()",
        ),
        (
            "large-object",
            _step(sql=["UPDATE items SET score = lo_import('/etc/passwd') WHERE id <= 10"]),
            "calls lo_import()",
        ),
        (
            "terminate",
            _step(sql=["UPDATE items SET score = pg_terminate_backend(1)::int WHERE id <= 10"]),
            "calls pg_terminate_backend()",
        ),
        (
            "dblink",
            _step(sql=["INSERT INTO items (note) SELECT x FROM dblink('a', 'b') AS t(x text)"]),
            "a function in FROM is not allowed",
        ),
        (
            "other-table",
            _step(sql=["UPDATE items SET note = (SELECT max(id)::text FROM parents) WHERE id <= 10"]),
            "acts on parents, which the SQL does not name",
        ),
        ("catalog", _step(sql=["UPDATE items SET note = 'x' FROM pg_authid WHERE id <= 10"]), "acts on pg_authid"),
        (
            "disable-triggers",
            _step(kind="other", sql=["ALTER TABLE items DISABLE TRIGGER ALL"]),
            "subcommand DisableTrigAll is not",
        ),
        ("owner", _step(kind="other", sql=["ALTER TABLE items OWNER TO nobody"]), "subcommand ChangeOwner"),
        ("drop-cascade", _step(kind="drop", sql=["DROP TABLE items CASCADE"]), "CASCADE"),
        ("drop-other", _step(kind="drop", sql=["DROP TABLE parents"]), "drops table parents"),
        (
            "drop-constraint",
            _step(kind="drop", sql=["ALTER TABLE items DROP CONSTRAINT items_pkey"]),
            "drops constraint items_pkey, which the SQL does not drop",
        ),
        (
            "inverse-copy",
            _step(inverse_sql=[touch], irreversible_reason=None),
            "inverse_sql[0]: COPY is not a statement",
        ),
        (
            "inverse-drops-table",
            _step(inverse_sql=["DROP TABLE items"], irreversible_reason=None),
            "the inverse drops table that its step did not create",
        ),
        (
            "reg-cast",
            _step(sql=["UPDATE items SET note = 'pg_read_file'::regproc::text WHERE id <= 10"]),
            "casts to regproc",
        ),
        (
            "long-name",
            _step(kind="add_column", sql=["ALTER TABLE items ADD COLUMN " + "x" * 70 + " int"]),
            "longer than 63 bytes",
        ),
    ]


MakeClient = Callable[..., LlmClient]


@pytest.fixture
def fake_llm() -> Iterator[FakeLLMServer]:
    with FakeLLMServer() as server:
        yield server


@pytest.fixture
def make_client(fake_llm: FakeLLMServer) -> MakeClient:
    def make(*replies: Reply, timeout: float = 10.0) -> LlmClient:
        fake_llm.add(*replies)
        return LlmClient(
            LlmConfig(base_url=fake_llm.base_url, model="test-model", api_key="test", timeout=timeout, retries=0)
        )

    return make


@pytest.mark.parametrize("case", [c[0] for c in _hostile(Path("/nonexistent/marker"))])
def test_hostile_statement_is_refused_with_its_reason(
    case: str, make_client: MakeClient, tmp_path: Path
) -> None:
    marker = tmp_path / "marker"
    step, expected = next((s, e) for c, s, e in _hostile(marker) if c == case)
    result = propose_plan(SQL, PlanContext(client=make_client(_answer(step)), version=PgVersion(18)))
    assert result.accepted is None
    assert any(expected in reason for reason in result.reasons), result.reasons
    assert not marker.exists()


def test_what_runs_is_the_statement_as_judged_not_the_model_text() -> None:
    scope = scope_of(SQL)
    # A comment cannot smuggle anything past the parser, and the text that runs is re-deparsed.
    judged = judge("UPDATE items /* ; COPY items TO PROGRAM 'x' */ SET note = lower(note) WHERE id < 5", scope)
    assert judged.sql == "UPDATE items SET note = lower(note) WHERE id < 5"
    with pytest.raises(GuardError, match="exactly one statement"):
        judge("UPDATE items SET note = 'a' WHERE id < 5;;COPY items TO STDOUT", scope)


def test_huge_answer_is_refused_before_it_is_read(make_client: MakeClient) -> None:
    huge = Reply(json.dumps({"steps": [_step(description="x" * (MAX_ANSWER_CHARS + 10))], "notes": []}))
    result = propose_plan(SQL, PlanContext(client=make_client(huge), version=PgVersion(18)))
    assert result.accepted is None
    assert any("more than the 200,000 accepted" in r for r in result.reasons), result.reasons


def test_slow_answer_times_out_cleanly(make_client: MakeClient) -> None:
    slow = Reply(json.dumps({"steps": [_step()], "notes": []}), delay=3)
    result = propose_plan(SQL, PlanContext(client=make_client(slow, timeout=0.5), version=PgVersion(18)))
    assert result.accepted is None
    assert any("timeout" in r for r in result.reasons), result.reasons


def test_backfill_runs_through_the_batched_loop_not_as_one_statement(make_client: MakeClient) -> None:
    step = _step(
        kind="backfill_batch",
        sql=["UPDATE items SET note = upper(note) WHERE note IS DISTINCT FROM upper(note)"],
        transaction="autocommit",
    )
    result = propose_plan(
        "UPDATE items SET note = upper(note)",
        PlanContext(client=make_client(_answer(step)), version=PgVersion(18), primary_key=lambda t: ("id",)),
    )
    assert result.accepted is not None, result.reasons
    (planned,) = result.accepted.steps
    assert planned.sql == ()
    assert planned.backfill is not None
    assert (planned.backfill.table.name, planned.backfill.column) == ("items", "note")
    assert planned.backfill.expression == "upper(note)"
    assert planned.backfill.where == "note IS DISTINCT FROM upper(note)"


def test_backfill_with_its_own_batching_is_refused(make_client: MakeClient) -> None:
    step = _step(
        kind="backfill_batch",
        sql=["UPDATE items SET note = upper(note) WHERE id IN (SELECT id FROM items WHERE note <> upper(note) LIMIT 100)"],
        transaction="autocommit",
    )
    result = propose_plan(SQL, PlanContext(client=make_client(_answer(step)), version=PgVersion(18)))
    assert result.accepted is None
    assert any("no subquery" in r for r in result.reasons), result.reasons


# --- end to end: autogenerate, upgrade and downgrade on PostgreSQL 15 and 18 ---------------------

HOOK = f'''
from alembic.operations import ops as alembic_ops


def add_data_migration(context, revision, directives):
    directives[0].upgrade_ops.ops.append(alembic_ops.ExecuteSQLOp({SQL!r}))
'''


@pytest.fixture
def marker_dir() -> Iterator[Path]:
    """A directory the server's operating-system user may write to (where a payload would touch)."""
    path = Path(tempfile.mkdtemp(prefix="helios-marker-"))
    path.chmod(0o777)
    yield path
    for child in path.iterdir():
        child.unlink()
    path.rmdir()


@pytest.fixture
def project(tmp_path: Path, fresh_db: str, fake_llm: FakeLLMServer) -> Project:
    p = Project.create(tmp_path / "proj", fresh_db, rows=200)
    (p.root / "pyproject.toml").write_text(
        '[tool.helios-migrate]\nlock_timeout = "1s"\n\n[tool.helios-migrate.llm]\n'
        f'base_url = "{fake_llm.base_url}"\nmodel = "test-model"\napi_key_env = "HELIOS_TEST_LLM_KEY"\n'
        "retries = 0\n"
    )
    p.env["HELIOS_TEST_LLM_KEY"] = "test"
    (p.root / "user_hooks.py").write_text(HOOK)
    env = (p.root / "env.py").read_text()
    env = env.replace(
        'autogenerate_plugins=["alembic.autogenerate.*", "helios"],',
        "process_revision_directives=chain(user_hooks.add_data_migration),",
    ).replace("import models\n", "import models\nimport user_hooks\nfrom alembic_plugin.env_hook import chain\n")
    (p.root / "env.py").write_text(env)
    return p


def test_marker_would_appear_if_the_statement_ran(fresh_db: str, marker_dir: Path) -> None:
    """Positive control: the payload the other tests send does create the marker when executed."""
    marker = marker_dir / "control"
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute("CREATE TABLE items (id int)")
        conn.execute(f"COPY items TO PROGRAM 'touch {marker}'")
    assert marker.exists()


def test_hostile_proposal_never_reaches_the_revision_or_the_database(
    project: Project, fake_llm: FakeLLMServer, marker_dir: Path
) -> None:
    marker = marker_dir / "marker"
    touch = f"COPY items TO PROGRAM 'touch {marker}'"
    fake_llm.add(
        _answer(
            _step(
                sql=[SQL],
                inverse_sql=[touch, "UPDATE items SET note = lower(note) WHERE id <= 10"],
                irreversible_reason=None,
                description=f"fine\nop.execute({touch!r})",
            ),
            _step(kind="other", sql=[touch]),
        )
    )
    res = project.alembic("revision", "--autogenerate", "-m", "data")
    revision = project.revision_files()[-1].read_text()
    assert "LLM plan rejected" in res.stderr and "COPY is not a statement" in res.stderr
    assert "PROGRAM" not in revision and LLM_MARK not in revision
    assert f"op.execute({SQL!r})" in revision
    project.alembic("upgrade", "head")
    # The user's own UPDATE has no inverse: the downgrade needs the explicit opt-in.
    project.alembic("downgrade", "-1", env={"HELIOS_ALLOW_DATA_LOSS": "1"})
    assert not marker.exists()
    assert project.count("SELECT count(*) FROM items") == 200


def test_accepted_backfill_updates_every_row_in_batches(project: Project, fake_llm: FakeLLMServer) -> None:
    (project.root / "user_hooks.py").write_text(HOOK.replace(SQL, "UPDATE items SET note = upper(note)"))
    fake_llm.add(
        _answer(
            _step(
                kind="backfill_batch",
                sql=["UPDATE items SET note = upper(note) WHERE note IS DISTINCT FROM upper(note)"],
                transaction="autocommit",
                description="upper-case every note\nimport os; os.system('x')",
            )
        )
    )
    (project.root / "pyproject.toml").write_text(
        (project.root / "pyproject.toml").read_text().replace(
            'lock_timeout = "1s"\n', 'lock_timeout = "1s"\nbackfill_batch_size = 30\nbackfill_pause_ms = 0\n'
        )
    )
    revision = project.autogenerate()
    # The model's text is data: a comment or a string literal, never a statement of the revision.
    tree = ast.parse(revision)
    assert not any(isinstance(n, ast.Name) and n.id == "os" for n in ast.walk(tree)), revision
    assert "runtime.backfill(" in revision and LLM_MARK in revision
    project.alembic("upgrade", "head")
    assert project.count("SELECT count(*) FROM items WHERE note IS DISTINCT FROM upper(note)") == 0
