"""Configuration of the LLM layer: ``[tool.helios-migrate.llm]`` and ``HELIOS_LLM_*`` variables.

The LLM layer is off unless both a base URL and a model are configured::

    [tool.helios-migrate.llm]
    base_url = "https://api.openai.com/v1"   # any OpenAI-compatible endpoint (Ollama: http://localhost:11434/v1)
    model = "gpt-4o-mini"
    api_key_env = "OPENAI_API_KEY"            # the environment variable holding the key (never the key itself)
    timeout = 60                              # seconds per request
    max_tokens = 2000                         # per answer
    retries = 2                               # times a rejected answer is sent back with the reasons
    structured_output = "json_schema"         # or "json_object" / "none" for servers without it

Environment variables override the file: ``HELIOS_LLM_BASE_URL``, ``HELIOS_LLM_MODEL``,
``HELIOS_LLM_API_KEY_ENV``, ``HELIOS_LLM_TIMEOUT``, ``HELIOS_LLM_MAX_TOKENS``.  The key itself
is only ever read from the environment.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

SECTION = "[tool.helios-migrate.llm]"
DEFAULT_KEY_ENV = "OPENAI_API_KEY"
STRUCTURED_MODES = ("json_schema", "json_object", "none")
ENV_BASE_URL = "HELIOS_LLM_BASE_URL"
ENV_MODEL = "HELIOS_LLM_MODEL"
ENV_KEY_ENV = "HELIOS_LLM_API_KEY_ENV"
ENV_TIMEOUT = "HELIOS_LLM_TIMEOUT"
ENV_MAX_TOKENS = "HELIOS_LLM_MAX_TOKENS"
_KNOWN_KEYS = {
    "base_url", "model", "api_key_env", "timeout", "max_tokens", "retries", "structured_output",
}


class LlmConfigError(ValueError):
    """The LLM configuration is present but wrong (a bad value, an unknown key)."""


class LlmNotConfigured(Exception):
    """The LLM layer is off; ``str()`` says which setting is missing and where to set it."""

    def __init__(self, missing: str, how: str) -> None:
        super().__init__(missing, how)
        self.missing = missing
        self.how = how

    def __str__(self) -> str:
        return f"LLM not configured: {self.missing} is not set ({self.how})"


@dataclass(frozen=True)
class LlmConfig:
    base_url: str | None = None
    model: str | None = None
    api_key_env: str = DEFAULT_KEY_ENV
    api_key: str | None = field(default=None, repr=False)
    """Read from the environment variable named by ``api_key_env``; never from a file."""
    timeout: float = 60.0
    max_tokens: int = 2000
    retries: int = 2
    structured_output: str = "json_schema"
    source: str | None = None

    @property
    def enabled(self) -> bool:
        return bool(self.base_url and self.model)

    def require(self) -> None:
        """Raise :class:`LlmNotConfigured` naming the first missing setting."""
        if not self.base_url:
            raise LlmNotConfigured(
                "base_url",
                f"set {ENV_BASE_URL} or base_url in {SECTION} of pyproject.toml, "
                "e.g. https://api.openai.com/v1 or http://localhost:11434/v1 for Ollama",
            )
        if not self.model:
            raise LlmNotConfigured(
                "model", f"set {ENV_MODEL} or model in {SECTION} of pyproject.toml"
            )
        if self.api_key is None and _needs_key(self.base_url):
            raise LlmNotConfigured(
                f"the API key (environment variable {self.api_key_env})",
                f"export {self.api_key_env}=..., or name another variable with api_key_env / "
                f"{ENV_KEY_ENV}",
            )

    @property
    def key_for_client(self) -> str:
        """The key to send; local servers (Ollama, llama.cpp) accept any non-empty value."""
        return self.api_key or "not-needed"


def _needs_key(base_url: str) -> bool:
    return "api.openai.com" in base_url or ".openai.azure.com" in base_url


def find_pyproject(start: Path | None = None) -> Path | None:
    here = (start or Path.cwd()).resolve()
    for directory in (here, *here.parents):
        candidate = directory / "pyproject.toml"
        if candidate.is_file():
            return candidate
    return None


def read_section(pyproject: Path) -> Mapping[str, Any]:
    try:
        data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise LlmConfigError(f"{pyproject}: cannot read {SECTION}: {exc}") from None
    tool = data.get("tool", {})
    ours = tool.get("helios-migrate", {}) if isinstance(tool, dict) else {}
    section = ours.get("llm", {}) if isinstance(ours, dict) else {}
    if not isinstance(section, dict):
        raise LlmConfigError(f"{pyproject}: {SECTION} must be a table")
    return section


def load_llm_config(
    pyproject: str | Path | None = None,
    *,
    start: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> LlmConfig:
    """Read the file section (``pyproject`` or the nearest ``pyproject.toml``), then the environment."""
    environ = os.environ if env is None else env
    file = Path(pyproject) if pyproject is not None else find_pyproject(start)
    section: Mapping[str, Any] = read_section(file) if file is not None and file.is_file() else {}
    return config_from_mapping(section, environ, source=str(file) if section else None)


def config_from_mapping(
    section: Mapping[str, Any], env: Mapping[str, str], *, source: str | None = None
) -> LlmConfig:
    where = f"{source}: {SECTION}" if source else SECTION
    unknown = sorted(set(section) - _KNOWN_KEYS)
    if unknown:
        raise LlmConfigError(
            f"{where}: unknown key(s) {', '.join(unknown)} (known: {', '.join(sorted(_KNOWN_KEYS))})"
        )
    if "api_key" in section:  # pragma: no cover - rejected above; kept explicit for readers
        raise LlmConfigError(f"{where}: put the key in an environment variable, not in the file")

    def text(key: str, env_var: str | None) -> str | None:
        value: Any = env.get(env_var) if env_var else None
        if not value:
            value = section.get(key)
        if value is None or value == "":
            return None
        if not isinstance(value, str):
            raise LlmConfigError(f"{where}: {key} must be a string")
        return value.strip()

    def number(key: str, env_var: str | None, default: float, *, minimum: float) -> float:
        raw: Any = env.get(env_var) if env_var else None
        label = env_var if raw else key
        if not raw:
            raw = section.get(key, default)
        try:
            value = float(raw)
        except (TypeError, ValueError):
            raise LlmConfigError(f"{where}: {label} must be a number, not {raw!r}") from None
        if value < minimum:
            raise LlmConfigError(f"{where}: {label} must be at least {minimum:g}")
        return value

    key_env = text("api_key_env", ENV_KEY_ENV) or DEFAULT_KEY_ENV
    structured = text("structured_output", None) or "json_schema"
    if structured not in STRUCTURED_MODES:
        raise LlmConfigError(
            f"{where}: structured_output must be one of {', '.join(STRUCTURED_MODES)}"
        )
    return LlmConfig(
        base_url=(text("base_url", ENV_BASE_URL) or "").rstrip("/") or None,
        model=text("model", ENV_MODEL),
        api_key_env=key_env,
        api_key=env.get(key_env) or None,
        timeout=number("timeout", ENV_TIMEOUT, 60.0, minimum=0.1),
        max_tokens=int(number("max_tokens", ENV_MAX_TOKENS, 2000, minimum=16)),
        retries=int(number("retries", None, 2, minimum=0)),
        structured_output=structured,
        source=source,
    )
