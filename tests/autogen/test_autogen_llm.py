"""The LLM in autogenerate, through the real ``openai`` SDK against the fake OpenAI-compatible
server of ``tests/llm``: a data migration the rules cannot plan gets a proposed plan, used only
when it validates and marked LLM-proposed in the revision; a hostile answer is rejected and the
operation stays as written; a possible rename carries the model's judgement.  PG 15 and 18."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from autogen_harness import Project, code, models_source

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "llm"))
from llm_fake_server import FakeLLMServer, Reply, load_replies

SQL = "UPDATE items SET note = upper(note) WHERE id <= 10"
HOOK = f'''
from alembic.operations import ops as alembic_ops


def add_data_migration(context, revision, directives):
    directives[0].upgrade_ops.ops.append(alembic_ops.ExecuteSQLOp({SQL!r}))
'''


def _step(**overrides: object) -> dict[str, object]:
    step: dict[str, object] = {
        "kind": "data_migration",
        "phase": "backfill",
        "description": "upper-case the notes of the first ten items",
        "sql": [SQL],
        "transaction": "own",
        "inverse_sql": None,
        "irreversible_reason": "the original case of the notes is not kept",
        "rationale": "ten rows by primary key: row locks only, in a short transaction with lock_timeout",
    }
    step.update(overrides)
    return step


GOOD = Reply(json.dumps({"steps": [_step()], "notes": ["run it after the code writes upper-case notes"]}))
HOSTILE = Reply(json.dumps({"steps": [_step(sql=[SQL, "DROP TABLE parents"])], "notes": []}))


@pytest.fixture
def fake_llm() -> Iterator[FakeLLMServer]:
    with FakeLLMServer() as server:
        yield server


@pytest.fixture
def project(tmp_path: Path, fresh_db: str, fake_llm: FakeLLMServer) -> Project:
    p = Project.create(tmp_path / "proj", fresh_db, rows=1000)
    (p.root / "pyproject.toml").write_text(
        '[tool.helios-migrate]\nlock_timeout = "1s"\n\n[tool.helios-migrate.llm]\n'
        f'base_url = "{fake_llm.base_url}"\nmodel = "test-model"\napi_key_env = "HELIOS_TEST_LLM_KEY"\n'
        "retries = 0\n"
    )
    p.env["HELIOS_TEST_LLM_KEY"] = "test"
    return p


def _with_user_hook(project: Project) -> None:
    (project.root / "user_hooks.py").write_text(HOOK)
    env = (project.root / "env.py").read_text()
    env = env.replace(
        'autogenerate_plugins=["alembic.autogenerate.*", "helios"],',
        "process_revision_directives=chain(user_hooks.add_data_migration),",
    ).replace("import models\n", "import models\nimport user_hooks\nfrom alembic_plugin.env_hook import chain\n")
    (project.root / "env.py").write_text(env)


def test_validated_proposal_is_used_and_marked(project: Project, fake_llm: FakeLLMServer) -> None:
    _with_user_hook(project)
    fake_llm.add(GOOD)
    revision = project.autogenerate()
    upgrade = revision.split("def downgrade")[0]
    assert "LLM-proposed plan (validated by helios rules; review it)" in upgrade
    assert "# upper-case the notes of the first ten items: LLM-proposed:" in upgrade
    assert f"runtime.run_in_own_transaction(op, [{SQL!r}]" in code(revision).split("def downgrade")[0]
    assert "note: LLM-proposed" in upgrade
    assert len(fake_llm.requests) == 1
    project.alembic("upgrade", "head")
    assert project.count("SELECT count(*) FROM items WHERE id <= 10 AND note = upper(note)") == 10
    refused = project.alembic("downgrade", "-1", check=False)
    assert refused.returncode != 0 and "original case" in refused.stderr


def test_rejected_proposal_keeps_the_operation_as_written(project: Project, fake_llm: FakeLLMServer) -> None:
    _with_user_hook(project)
    fake_llm.add(HOSTILE)
    res = project.alembic("revision", "--autogenerate", "-m", "data")
    revision = project.revision_files()[-1].read_text()
    assert "LLM plan rejected" in res.stderr and "parents" in res.stderr
    assert "LLM-proposed" not in revision
    assert f"op.execute({SQL!r})" in revision
    project.alembic("upgrade", "head")
    assert project.count("SELECT count(*) FROM parents") == 1000


def test_possible_rename_carries_the_model_judgement(project: Project, fake_llm: FakeLLMServer) -> None:
    fake_llm.add(*load_replies("rename_yes"))
    project.write_models(models_source({"legacy": None, "legacy_text": 'sa.Column("legacy_text", sa.Text)'}))
    revision = project.autogenerate()
    assert "POSSIBLE RENAME: items.legacy -> legacy_text" in revision
    assert "LLM judgement" in revision and "a rename" in revision
    assert "runtime.data_losing_step(op, 'drop column items.legacy'" in code(revision)
