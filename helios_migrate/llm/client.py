"""The connection to an OpenAI-compatible endpoint, through the ``openai`` SDK.

:class:`LlmClient` sends chat requests and returns the answer text; it never interprets it.  It
redacts every message before sending, asks for structured output (``response_format`` with a JSON
schema, falling back to ``json_object`` and then to a plain request on servers that refuse it),
turns every failure into an :class:`LlmError` that says precisely what went wrong, and appends
every request and answer to the ``--llm-log`` file when one is given.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config import STRUCTURED_MODES, LlmConfig
from .redact import redact

MAX_ANSWER_CHARS = 200_000
"""The largest answer accepted; every schema we ask for fits in a small fraction of it."""


class LlmError(Exception):
    """A request failed.  ``kind`` is one of ``not_installed``, ``connection``, ``timeout``,
    ``auth``, ``model``, ``http``, ``empty``, ``too_large``."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(kind, message)
        self.kind = kind
        self.message = message

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class Message:
    role: str
    content: str

    def as_dict(self) -> dict[str, str]:
        return {"role": self.role, "content": self.content}


class LlmLog:
    """JSON lines: one object per request with its answer or error, for review."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()

    def write(self, record: dict[str, Any]) -> None:
        line = json.dumps(record, ensure_ascii=False, sort_keys=True)
        with self._lock, self.path.open("a", encoding="utf-8") as fh:
            fh.write(line + "\n")


class LlmClient:
    def __init__(self, config: LlmConfig, *, log: LlmLog | str | Path | None = None) -> None:
        config.require()
        self.config = config
        self.log = LlmLog(log) if isinstance(log, (str, Path)) else log
        self._mode = config.structured_output
        self._sdk: Any = None

    @property
    def base_url(self) -> str:
        return self.config.base_url or ""

    @property
    def model(self) -> str:
        return self.config.model or ""

    @property
    def structured_mode(self) -> str:
        """The ``response_format`` kind in use (it degrades when the server refuses one)."""
        return self._mode

    def _client(self) -> Any:
        if self._sdk is None:
            try:
                from openai import OpenAI  # lazy: optional dependency (helios-migrate[llm])
            except ImportError:
                raise LlmError(
                    "not_installed",
                    "the openai package is not installed: pip install 'helios-migrate[llm]'",
                ) from None
            self._sdk = OpenAI(
                base_url=self.base_url,
                api_key=self.config.key_for_client,
                timeout=self.config.timeout,
                max_retries=0,
            )
        return self._sdk

    def redact(self, text: str) -> str:
        return redact(text, [self.config.api_key or ""])

    def complete(
        self,
        messages: Sequence[Message],
        *,
        schema: dict[str, Any] | None = None,
        schema_name: str = "answer",
        purpose: str = "",
        max_tokens: int | None = None,
    ) -> str:
        """Send ``messages`` and return the answer's text (possibly not JSON: the caller checks)."""
        sent = [Message(m.role, self.redact(m.content)).as_dict() for m in messages]
        client = self._client()
        modes = list(STRUCTURED_MODES[STRUCTURED_MODES.index(self._mode):]) if schema else ["none"]
        while True:
            mode = modes[0]
            request: dict[str, Any] = {
                "model": self.model,
                "messages": sent,
                "max_tokens": max_tokens or self.config.max_tokens,
                "temperature": 0,
            }
            if mode == "json_schema" and schema is not None:
                request["response_format"] = {
                    "type": "json_schema",
                    "json_schema": {"name": schema_name, "schema": schema, "strict": True},
                }
            elif mode == "json_object":
                request["response_format"] = {"type": "json_object"}
            started = time.monotonic()
            try:
                response = client.chat.completions.create(**request)
            except Exception as exc:
                error = self._classify(exc)
                self._log(purpose, request, None, error, started)
                if error.kind == "format" and len(modes) > 1:
                    modes.pop(0)
                    self._mode = modes[0]
                    continue
                raise error from None
            text = _answer_text(response)
            self._log(purpose, request, text, None, started)
            if text is None:
                raise LlmError("empty", f"the model {self.model!r} at {self.base_url} sent an empty answer")
            if len(text) > MAX_ANSWER_CHARS:
                raise LlmError(
                    "too_large",
                    f"the model {self.model!r} at {self.base_url} sent an answer of {len(text):,} "
                    f"characters, more than the {MAX_ANSWER_CHARS:,} accepted; it was not read",
                )
            return text

    def _log(
        self,
        purpose: str,
        request: dict[str, Any],
        answer: str | None,
        error: LlmError | None,
        started: float,
    ) -> None:
        if self.log is None:
            return
        record: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "purpose": purpose,
            "base_url": self.base_url,
            "request": request,
            "seconds": round(time.monotonic() - started, 3),
        }
        if answer is not None:
            record["answer"] = answer
        if error is not None:
            record["error"] = {"kind": error.kind, "message": error.message}
        self.log.write(record)

    def _classify(self, exc: Exception) -> LlmError:
        import openai  # lazy: optional dependency (helios-migrate[llm])

        url = self.base_url
        if isinstance(exc, openai.APITimeoutError):
            return LlmError("timeout", f"timeout after {self.config.timeout:g} s: {url} did not answer in time")
        if isinstance(exc, openai.APIConnectionError):
            cause = _root_cause(exc)
            if isinstance(cause, ConnectionRefusedError) or "refused" in str(cause).lower():
                return LlmError("connection", f"connection refused at {url} (is the server running?)")
            return LlmError("connection", f"cannot connect to {url}: {cause}")
        if isinstance(exc, openai.AuthenticationError):
            return LlmError(
                "auth",
                f"401 Unauthorized from {url}: the API key in ${self.config.api_key_env} was rejected"
                + ("" if self.config.api_key else f" (${self.config.api_key_env} is not set)"),
            )
        if isinstance(exc, openai.PermissionDeniedError):
            return LlmError("auth", f"403 Forbidden from {url}: the key may not use model {self.model!r}")
        if isinstance(exc, openai.NotFoundError):
            return LlmError(
                "model",
                f"404 Not Found from {url}: model {self.model!r} not found "
                "(or the URL is not an OpenAI-compatible /v1 endpoint)",
            )
        if isinstance(exc, openai.BadRequestError) and "response_format" in _error_text(exc):
            return LlmError("format", f"{url} does not support this response_format: {_error_text(exc)}")
        if isinstance(exc, openai.APIStatusError):
            return LlmError("http", f"HTTP {exc.status_code} from {url}: {_error_text(exc)}")
        return LlmError("http", f"request to {url} failed: {type(exc).__name__}: {exc}")


def _root_cause(exc: BaseException) -> BaseException:
    seen = exc
    while seen.__cause__ is not None or seen.__context__ is not None:
        nxt = seen.__cause__ or seen.__context__
        assert nxt is not None
        seen = nxt
    return seen


def _error_text(exc: Any) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        message = body.get("message") or body.get("error", {})
        if isinstance(message, dict):
            message = message.get("message")
        if message:
            return str(message)
    return str(getattr(exc, "message", exc))


def _answer_text(response: Any) -> str | None:
    choices = getattr(response, "choices", None) or []
    if not choices:
        return None
    content = getattr(choices[0].message, "content", None)
    return content if isinstance(content, str) and content.strip() else None


def strip_fences(text: str) -> str:
    """The answer without a Markdown code fence around it (some local models add one)."""
    stripped = text.strip()
    if stripped.startswith("```"):
        first_newline = stripped.find("\n")
        if first_newline != -1 and stripped.endswith("```"):
            return stripped[first_newline + 1 : -3].strip()
    return stripped


def parse_json_object(text: str) -> tuple[dict[str, Any] | None, str | None]:
    """``(object, None)`` or ``(None, why it is not a JSON object)``."""
    try:
        value = json.loads(strip_fences(text))
    except json.JSONDecodeError as exc:
        return None, f"the answer is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"
    if not isinstance(value, dict):
        return None, f"the answer is JSON but not an object (got {type(value).__name__})"
    return value, None
