"""Ask, validate, send back the reasons, ask again: the loop every use of the model goes through.

An answer is accepted only when the caller's validator accepts it.  A rejected answer is sent back
with the validator's reasons, at most ``retries`` times; then the question is given up and the
reasons are returned, so the caller keeps its deterministic result.  Transport failures (no
connection, timeout, bad key) end the loop at once: they are not the model's to fix.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from .client import LlmClient, LlmError, Message, parse_json_object
from .prompts import retry_prompt
from .schema import validate

T = TypeVar("T")

MAX_ECHO = 6000
"""How much of a rejected answer is sent back with the reasons."""


@dataclass(frozen=True)
class Attempt:
    number: int
    answer: str | None
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class Outcome(Generic[T]):
    value: T | None
    reasons: tuple[str, ...]
    """Why the last answer (or the request) failed; empty when ``value`` was accepted."""
    attempts: int
    history: tuple[Attempt, ...] = ()
    error: LlmError | None = None
    """Set when the request itself failed (no answer to judge)."""


Check = Callable[[dict[str, Any]], "tuple[T | None, list[str]]"]


def ask_validated(
    client: LlmClient,
    *,
    system: str,
    user: str,
    schema: dict[str, Any],
    schema_name: str,
    purpose: str,
    check: Callable[[dict[str, Any]], tuple[T | None, list[str]]],
    retries: int | None = None,
) -> Outcome[T]:
    messages = [Message("system", system), Message("user", user)]
    allowed = client.config.retries if retries is None else retries
    history: list[Attempt] = []
    reasons: list[str] = []
    for number in range(1, allowed + 2):
        try:
            answer = client.complete(
                messages, schema=schema, schema_name=schema_name, purpose=f"{purpose} attempt {number}"
            )
        except LlmError as exc:
            history.append(Attempt(number, None, (str(exc),)))
            return Outcome(None, (str(exc),), number, tuple(history), exc)
        obj, problem = parse_json_object(answer)
        if obj is None:
            reasons = [problem or "the answer is not a JSON object"]
        else:
            reasons = validate(obj, schema)
            if not reasons:
                value, reasons = check(obj)
                if value is not None and not reasons:
                    history.append(Attempt(number, answer, ()))
                    return Outcome(value, (), number, tuple(history))
                if value is None and not reasons:  # pragma: no cover - validators always say why
                    reasons = ["the answer was rejected"]
        history.append(Attempt(number, answer, tuple(reasons)))
        messages += [Message("assistant", answer[:MAX_ECHO]), Message("user", retry_prompt(reasons))]
    return Outcome(None, tuple(reasons), len(history), tuple(history))
