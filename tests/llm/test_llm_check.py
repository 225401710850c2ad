"""`helios-migrate llm check` says precisely what failed, with exit code 2, through the real SDK."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from typer.testing import CliRunner

from helios_migrate.cli import app

from .llm_fake_server import FakeLLMServer, load_replies

runner = CliRunner()


def _run(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, env: dict[str, str], *args: str) -> tuple[int, str]:
    monkeypatch.chdir(tmp_path)
    for var in ("HELIOS_LLM_BASE_URL", "HELIOS_LLM_MODEL", "HELIOS_LLM_API_KEY_ENV", "HELIOS_LLM_TIMEOUT", "OPENAI_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    result = runner.invoke(app, ["llm", "check", *args])
    return result.exit_code, result.output


def _env(url: str, **extra: str) -> dict[str, str]:
    return {"HELIOS_LLM_BASE_URL": url, "HELIOS_LLM_MODEL": "test-model", "OPENAI_API_KEY": "test", **extra}


def test_ok(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    with FakeLLMServer(load_replies("check_ok")) as fake:
        code, out = _run(monkeypatch, tmp_path, _env(fake.base_url), "--llm-log", str(tmp_path / "log.jsonl"))
    assert code == 0, out
    assert f"LLM OK: model 'test-model' at {fake.base_url}" in out
    assert "structured output: json_schema" in out
    assert (tmp_path / "log.jsonl").read_text().count("\n") == 1


def test_not_configured_names_the_setting(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    code, out = _run(monkeypatch, tmp_path, {})
    assert code == 2
    assert "LLM not configured: base_url is not set" in out and "HELIOS_LLM_BASE_URL" in out
    code, out = _run(monkeypatch, tmp_path, {"HELIOS_LLM_BASE_URL": "http://127.0.0.1:9/v1"})
    assert code == 2 and "model is not set" in out
    code, out = _run(monkeypatch, tmp_path, {"HELIOS_LLM_BASE_URL": "https://api.openai.com/v1", "HELIOS_LLM_MODEL": "gpt-4o-mini"})
    assert code == 2 and "OPENAI_API_KEY" in out and "not set" in out


def test_config_from_pyproject(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    with FakeLLMServer(load_replies("check_ok"), api_key="k-from-env") as fake:
        (tmp_path / "pyproject.toml").write_text(
            f'[tool.helios-migrate.llm]\nbase_url = "{fake.base_url}"\nmodel = "test-model"\napi_key_env = "MY_LLM_KEY"\n'
        )
        code, out = _run(monkeypatch, tmp_path, {"MY_LLM_KEY": "k-from-env"})
    assert code == 0, out


def test_connection_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/v1"
    code, out = _run(monkeypatch, tmp_path, _env(url))
    assert code == 2
    assert f"connection refused at {url}" in out


def test_bad_key_is_401(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    with FakeLLMServer(load_replies("check_ok")) as fake:
        code, out = _run(monkeypatch, tmp_path, _env(fake.base_url, OPENAI_API_KEY="wrong"))
    assert code == 2
    assert "401 Unauthorized" in out and "$OPENAI_API_KEY was rejected" in out


def test_unknown_model_is_404(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    with FakeLLMServer(load_replies("check_ok")) as fake:
        code, out = _run(monkeypatch, tmp_path, _env(fake.base_url, HELIOS_LLM_MODEL="no-such-model"))
    assert code == 2
    assert "404 Not Found" in out and "model 'no-such-model' not found" in out


def test_timeout(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    with FakeLLMServer(load_replies("check_timeout")) as fake:
        code, out = _run(monkeypatch, tmp_path, _env(fake.base_url, HELIOS_LLM_TIMEOUT="0.5"))
    assert code == 2
    assert "timeout after 0.5 s" in out


def test_answer_not_json(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    with FakeLLMServer(load_replies("check_not_json")) as fake:
        code, out = _run(monkeypatch, tmp_path, _env(fake.base_url))
    assert code == 2
    assert "the answer is not valid JSON" in out


def test_server_without_json_schema_falls_back(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    with FakeLLMServer(load_replies("check_ok"), json_schema=False) as fake:
        code, out = _run(monkeypatch, tmp_path, _env(fake.base_url))
        formats = [(r.get("response_format") or {}).get("type") for r in fake.requests]
    assert code == 0, out
    assert formats == ["json_schema", "json_object"]
    assert "structured output: json_object" in out
