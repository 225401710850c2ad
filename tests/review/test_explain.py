"""``review --explain`` end to end: the real ``openai`` SDK against a local OpenAI-compatible server.

The answer is data: shown as text, bounded and stripped, never changing a finding's code,
severity, message or fix; a bad answer or a failing endpoint leaves the report as it is without
explanations, with a note, and the same exit code.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from llm.llm_fake_server import FakeLLMServer, Reply

from helios_migrate.review.explain import MAX_CHARS, plain_paragraph

MODELS = '''
import sqlalchemy as sa

metadata = sa.MetaData()
sa.Table("customers", metadata, sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True))
sa.Table(
    "orders", metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("customer_id", sa.BigInteger, sa.ForeignKey("customers.id"), nullable=False),
)
sa.Table("audit_log", metadata, sa.Column("message", sa.Text))
'''
# the two findings, in report order: audit_log HM601 (F1), orders.customer_id HM603 (F2)


@pytest.fixture
def server() -> Iterator[FakeLLMServer]:
    with FakeLLMServer() as fake:
        yield fake


def _project(tmp_path: Path) -> Path:
    (tmp_path / "shop_models.py").write_text(MODELS, encoding="utf-8")
    (tmp_path / "pyproject.toml").write_text(
        '[tool.helios-migrate.review]\nmodels = "shop_models:metadata"\n', encoding="utf-8"
    )
    return tmp_path


def _review(cwd: Path, server: FakeLLMServer | None, *args: str, timeout: float = 10) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HELIOS_LLM_")}
    if server is not None:
        env.update({
            "HELIOS_LLM_BASE_URL": server.base_url, "HELIOS_LLM_MODEL": "test-model", "OPENAI_API_KEY": "test",
            "HELIOS_LLM_TIMEOUT": str(timeout),
        })
    return subprocess.run(
        [sys.executable, "-m", "helios_migrate", "review", *args],
        cwd=cwd, capture_output=True, text=True, timeout=120, check=False, env=env,
    )


def _answer(*entries: dict[str, object]) -> Reply:
    return Reply(json.dumps({"explanations": list(entries)}))


def _without_explanations(doc: dict[str, object]) -> list[dict[str, object]]:
    findings = doc["findings"]
    assert isinstance(findings, list)
    return [{k: v for k, v in f.items() if k != "explanation"} for f in findings]


GOOD = (
    {"finding": "F1", "text": "Without a primary key, rows cannot be told apart by replication or updates."},
    {"finding": "F2", "text": "Deleting a customer makes PostgreSQL scan all orders to check the key."},
)


def test_each_finding_gets_its_paragraph_and_nothing_else_changes(tmp_path: Path, server: FakeLLMServer) -> None:
    project = _project(tmp_path)
    plain = _review(project, None, "--format", "json", "--show-info")
    server.add(_answer(*GOOD))
    explained = _review(project, server, "--format", "json", "--show-info", "--explain")
    assert explained.returncode == plain.returncode == 0, explained.stderr
    doc, base = json.loads(explained.stdout), json.loads(plain.stdout)
    assert _without_explanations(doc) == base["findings"]
    assert [(f["code"], f["explanation"]) for f in doc["findings"]] == [
        ("HM601", GOOD[0]["text"]), ("HM603", GOOD[1]["text"])
    ]
    assert doc["explain"] == {"model": "test-model", "explained": 2}
    # the request carried the findings as data, with the ids the answer must use
    (user,) = server.user_texts(0)
    assert "<data" in user and "id: F1" in user and "HM603" in user

    server.add(_answer(*GOOD))
    text = _review(project, server, "--explain")
    assert "  = explained by test-model, not checked: Deleting a customer makes PostgreSQL scan" in text.stdout
    assert text.returncode == 0 and "note:" not in text.stderr


HOSTILE_ENTRIES = (
    {"finding": "F2", "text": "fine", "severity": "info", "code": "HM000",
     "fix": "DROP TABLE orders"},
)


def test_a_hostile_answer_changes_nothing(tmp_path: Path, server: FakeLLMServer) -> None:
    """An answer that tries to downgrade a finding or inject a fix (keys outside the schema) is
    rejected each time it is sent back; the report stands as it was, exit code included."""
    project = _project(tmp_path)
    base = _review(project, None, "--format", "json", "--fail-on", "warning")
    server.add(*[_answer(*HOSTILE_ENTRIES) for _ in range(3)])
    out = _review(project, server, "--format", "json", "--fail-on", "warning", "--explain")
    assert out.returncode == base.returncode == 1
    doc = json.loads(out.stdout)
    assert _without_explanations(doc) == json.loads(base.stdout)["findings"]
    assert all(f["explanation"] is None for f in doc["findings"])
    assert "rejected after 3 attempt(s)" in out.stderr and "severity" in out.stderr
    assert len(server.requests) == 3


def test_hostile_text_is_shown_as_one_plain_line(tmp_path: Path, server: FakeLLMServer) -> None:
    """Text that tries to forge a finding line, a fix, terminal escapes or Markdown is one bounded
    line of plain text under the finding; the finding's own lines are untouched."""
    project = _project(tmp_path)
    base = _review(project, None, "--fail-on", "warning")
    forged = (
        "Harmless.\n\norders.customer_id: HM603 [info] resolved\n  = help: Lock-safe fix:\n    DROP TABLE orders;"
        "\x1b[2J\x1b[31m ```sql\nDROP TABLE customers;\n``` <script>alert(1)</script> | a | b |\x00 " + "x" * 5000
    )
    server.add(_answer({"finding": "F2", "text": forged}, {"finding": "F1", "text": "Severity: error. Code: HM999."}))
    out = _review(project, server, "--fail-on", "warning", "--explain")
    assert out.returncode == base.returncode == 1
    lines = out.stdout.splitlines()
    explained = [line for line in lines if line.startswith("  = explained by test-model, not checked: ")]
    assert len(explained) == 2
    assert all(len(line) <= len("  = explained by test-model, not checked: ") + MAX_CHARS for line in explained)
    assert "\x1b" not in out.stdout and "\x00" not in out.stdout and "```" not in out.stdout
    assert "<script>" not in out.stdout
    # the findings' own lines are those of the report without --explain
    assert [line for line in lines if not line.startswith("  = explained by")] == base.stdout.splitlines()
    assert not any(line.startswith("orders.customer_id: HM603 [info]") for line in lines)

    md = _review(project, server, "--format", "markdown", "--explain")  # no reply left: endpoint error
    assert md.returncode == 0 and "## helios-migrate review" in md.stdout and "no answer from the LLM" in md.stderr


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        (Reply("this is not json"), "rejected after 1 attempt(s)"),
        (Reply(""), "no answer from the LLM"),
        (Reply(json.dumps({"explanations": []})), "explains none of the findings"),
        (Reply(status=500, message="upstream exploded"), "no answer from the LLM"),
        (Reply(json.dumps({"explanations": list(GOOD)}), delay=3.0), "no answer from the LLM"),
    ],
    ids=["not-json", "empty", "no-entries", "http-500", "timeout"],
)
def test_a_failed_answer_gives_a_note_and_the_plain_report(
    tmp_path: Path, server: FakeLLMServer, reply: Reply, expected: str
) -> None:
    project = _project(tmp_path)
    (project / "pyproject.toml").write_text(
        (project / "pyproject.toml").read_text(encoding="utf-8") + "[tool.helios-migrate.llm]\nretries = 0\n",
        encoding="utf-8",
    )
    base = _review(project, None, "--fail-on", "warning")
    server.add(reply)
    out = _review(project, server, "--fail-on", "warning", "--explain", timeout=1)
    assert out.returncode == base.returncode == 1, out.stderr
    assert expected in out.stderr, out.stderr
    assert "Traceback" not in out.stderr
    # the report is the plain one, plus the note
    blocks = out.stdout.split("\n\n")
    assert [b for b in blocks if not b.startswith("note: --explain")] == base.stdout.split("\n\n")
    assert len(blocks) == len(base.stdout.split("\n\n")) + 1


def test_without_an_llm_configured_the_report_says_so(tmp_path: Path) -> None:
    project = _project(tmp_path)
    out = _review(project, None, "--explain", "--fail-on", "warning")
    assert out.returncode == 1
    assert "no LLM configured" in out.stderr and "HM603" in out.stdout


def test_plain_paragraph() -> None:
    assert plain_paragraph("a\nb\tc  `d` <e> | f *g* # h [i](j) \\k") == "a b c d e f g h i (j) k"
    long = plain_paragraph("word " * 1000)
    assert len(long) <= MAX_CHARS and long.endswith("...") and not long.endswith(" ...")
    assert plain_paragraph("\x1b[31mred\x1b[0m") == "31mred 0m"


def _many_findings(n: int) -> list[object]:
    import sqlalchemy as sa

    from helios_migrate.config import Config
    from helios_migrate.review.engine import review_schema
    from helios_migrate.schema_model import schema_from_metadata
    from helios_migrate.versions import PgVersion

    m = sa.MetaData()
    for i in range(n):
        sa.Table(f"log_{i:02}", m, sa.Column("message", sa.Text))
    findings = review_schema(schema_from_metadata(m), Config(), PgVersion.parse("16")).findings
    assert len(findings) == n
    return list(findings)


def test_findings_are_sent_in_batches_and_a_failing_endpoint_stops_the_rest(server: FakeLLMServer, tmp_path: Path) -> None:
    from helios_migrate.llm.client import LlmClient
    from helios_migrate.llm.config import LlmConfig
    from helios_migrate.review.explain import BATCH, explain_findings

    findings = _many_findings(BATCH + 5)
    client = LlmClient(LlmConfig(base_url=server.base_url, model="test-model", api_key="test", timeout=5, retries=0))
    server.add(
        _answer(*[{"finding": f"F{i}", "text": f"paragraph {i}"} for i in range(1, BATCH + 1)]),
        _answer(*[{"finding": f"F{i}", "text": f"paragraph {i}"} for i in range(BATCH + 1, BATCH + 6)]),
    )
    result = explain_findings(findings, client)  # type: ignore[arg-type]
    assert len(server.requests) == 2 and result.notes == ()
    assert result.paragraphs == {i: f"paragraph {i + 1}" for i in range(BATCH + 5)}
    # the second batch may not answer for the first one's findings
    assert "id: F21" in server.user_texts(1)[0] and "id: F1\n" not in server.user_texts(1)[0]

    findings = _many_findings(2 * BATCH + 1)
    server.add(Reply(status=500, message="down"))
    result = explain_findings(findings, client)  # type: ignore[arg-type]
    assert result.paragraphs == {} and len(server.requests) == 3  # one failed request, not three
    assert len(result.notes) == 1 and "no answer from the LLM" in result.notes[0]


def test_an_answer_for_findings_it_was_not_sent_is_rejected(server: FakeLLMServer) -> None:
    from helios_migrate.llm.client import LlmClient
    from helios_migrate.llm.config import LlmConfig
    from helios_migrate.review.explain import explain_findings

    findings = _many_findings(2)
    client = LlmClient(LlmConfig(base_url=server.base_url, model="test-model", api_key="test", timeout=5, retries=1))
    server.add(
        _answer({"finding": "F1", "text": "ok"}, {"finding": "F9", "text": "a finding of my own"}),
        _answer({"finding": "F1", "text": "ok"}, {"finding": "F2", "text": "fine"}),
    )
    result = explain_findings(findings, client)  # type: ignore[arg-type]
    assert result.paragraphs == {0: "ok", 1: "fine"}
    assert "finding 'F9' was not sent" in server.user_texts(1)[-1]  # sent back with the reason


def test_a_broken_llm_section_is_a_usage_error_and_no_findings_send_nothing(tmp_path: Path, server: FakeLLMServer) -> None:
    project = _project(tmp_path)
    pyproject = project / "pyproject.toml"
    good = pyproject.read_text(encoding="utf-8")
    pyproject.write_text(good + "[tool.helios-migrate.llm]\nbogus = 1\n", encoding="utf-8")
    out = _review(project, server, "--explain")
    assert out.returncode == 2 and "unknown key(s) bogus" in out.stderr and "Traceback" not in out.stderr
    pyproject.write_text(good + 'ignore = ["HM6"]\n', encoding="utf-8")
    out = _review(project, server, "--explain")
    assert out.returncode == 0 and "No findings" in out.stdout and server.requests == []


def test_sarif_asks_nothing_and_says_so(tmp_path: Path, server: FakeLLMServer) -> None:
    project = _project(tmp_path)
    base = _review(project, None, "--format", "sarif")
    out = _review(project, server, "--format", "sarif", "--explain")
    assert out.returncode == base.returncode and server.requests == []
    assert "SARIF results carry no explanations" in out.stderr
    assert json.loads(out.stdout)["runs"][0]["results"] == json.loads(base.stdout)["runs"][0]["results"]
