"""``helios-migrate llm check``: one tiny request that proves the endpoint, key and model work."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from .client import LlmClient, LlmError, Message, parse_json_object
from .config import LlmConfig, LlmNotConfigured
from .schema import CHECK_SCHEMA, validate


@dataclass(frozen=True)
class CheckResult:
    ok: bool
    message: str


def check_connection(config: LlmConfig, *, log: Any = None) -> CheckResult:
    try:
        client = LlmClient(config, log=log)
    except LlmNotConfigured as exc:
        return CheckResult(False, str(exc))
    started = time.monotonic()
    try:
        answer = client.complete(
            [
                Message("system", 'Answer with the JSON object {"ok": true} and nothing else.'),
                Message("user", "Connection check."),
            ],
            schema=CHECK_SCHEMA,
            schema_name="connection_check",
            purpose="llm check",
            max_tokens=20,
        )
    except LlmError as exc:
        return CheckResult(False, f"LLM check failed: {exc}")
    seconds = time.monotonic() - started
    obj, problem = parse_json_object(answer)
    if obj is None:
        return CheckResult(
            False,
            f"LLM check failed: model {client.model!r} at {client.base_url} answered, but {problem}: "
            f"{answer[:120]!r}. helios-migrate needs a model that can answer in JSON.",
        )
    problems = validate(obj, CHECK_SCHEMA)
    if problems:
        return CheckResult(
            False,
            f"LLM check failed: model {client.model!r} at {client.base_url} answered JSON that does not "
            f"follow the requested schema: {'; '.join(problems)}",
        )
    return CheckResult(
        True,
        f"LLM OK: model {client.model!r} at {client.base_url} answered in {seconds:.1f} s "
        f"(structured output: {client.structured_mode}; key from ${config.api_key_env}"
        f"{'' if config.api_key else ', not set'})",
    )
