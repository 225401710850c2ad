"""Keep secrets and connection strings out of everything sent to a model.

:func:`redact` runs on every message before it leaves the process (see
:mod:`helios_migrate.llm.client`), whatever built the message.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_DB_URL = re.compile(
    r"\b(?:postgres(?:ql)?|mysql|mariadb|sqlite|oracle|mssql|redis|mongodb(?:\+srv)?)"
    r"(?:\+\w+)?://[^\s'\"<>`]*",
    re.IGNORECASE,
)
_USERINFO_URL = re.compile(r"\b([a-z][a-z0-9+.-]*://)[^/\s@'\"<>`]+@", re.IGNORECASE)
_CONNINFO_SECRET = re.compile(r"\b(password|passwd|pwd|sslpassword)\s*=\s*('(?:[^']|'')*'|\S+)", re.IGNORECASE)
_SQL_PASSWORD = re.compile(r"\b(PASSWORD)\s+(E?'(?:[^']|'')*')", re.IGNORECASE)
_TOKENS = re.compile(
    r"\b(?:sk-[A-Za-z0-9_-]{16,}|sk-proj-[A-Za-z0-9_-]{16,}|gh[pousr]_[A-Za-z0-9]{20,}"
    r"|xox[abp]-[A-Za-z0-9-]{10,}|AKIA[0-9A-Z]{16}|eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]+)"
)
_ASSIGNED_SECRET = re.compile(
    r"\b([A-Za-z_]*(?:api_key|apikey|secret|token|password)[A-Za-z_]*)(\s*[:=]\s*)(['\"])([^'\"]+)\3",
    re.IGNORECASE,
)

DB_URL_PLACEHOLDER = "<database URL redacted>"
SECRET_PLACEHOLDER = "<redacted>"


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` without database URLs, credentials in URLs, passwords, API keys and ``secrets``."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, SECRET_PLACEHOLDER)
    text = _DB_URL.sub(DB_URL_PLACEHOLDER, text)
    text = _USERINFO_URL.sub(lambda m: f"{m.group(1)}{SECRET_PLACEHOLDER}@", text)
    text = _CONNINFO_SECRET.sub(lambda m: f"{m.group(1)}={SECRET_PLACEHOLDER}", text)
    text = _SQL_PASSWORD.sub(lambda m: f"{m.group(1)} '{SECRET_PLACEHOLDER}'", text)
    text = _TOKENS.sub(SECRET_PLACEHOLDER, text)
    return _ASSIGNED_SECRET.sub(
        lambda m: f"{m.group(1)}{m.group(2)}{m.group(3)}{SECRET_PLACEHOLDER}{m.group(3)}", text
    )
