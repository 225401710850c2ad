"""``.helios-cache/``: the findings of each revision, kept by the content of its file.

A pull request usually adds one revision to hundreds; with the cache, ``check`` renders and lints
only the revisions whose file changed.  An entry is found by a hash of everything that decides a
revision's findings: the file's bytes, where it is reported (its display path), the functions
checked, the target PostgreSQL version, the configuration, and the code of helios-migrate and of
every installed rule package (so upgrading either empties the cache in effect).  Runs with live
database facts (``--database-url``) neither read nor write it.  ``--no-cache`` (or
``HELIOS_NO_CACHE=1``) turns it off; deleting the directory is always safe.
"""

from __future__ import annotations

import hashlib
import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ..findings import Finding, Location, Severity
from .history import HistoryStatement
from .project import CACHE_DIR, write_cache_file
from .report import RenderState, RevisionState

_FORMAT = 1


def code_fingerprint(rule_modules: tuple[str, ...]) -> str:
    """A hash of helios-migrate's own code and of the rule modules in use."""
    digest = hashlib.sha256(str(_FORMAT).encode())
    package = Path(__file__).resolve().parents[1]
    files = sorted(package.rglob("*.py"))
    for name in rule_modules:
        module = sys.modules.get(name)
        file = getattr(module, "__file__", None)
        if file:
            files.append(Path(file))
    for file in files:
        try:
            digest.update(file.read_bytes())
        except OSError:
            digest.update(str(file).encode())
    return digest.hexdigest()


class FindingCache:
    """Per-revision findings on disk under ``<directory>/.helios-cache/check``."""

    def __init__(self, directory: Path, salt: str) -> None:
        self.root = directory / CACHE_DIR
        self.salt = salt
        self.hits = 0

    def key(self, display_path: str, source: str) -> str:
        digest = hashlib.sha256(self.salt.encode())
        digest.update(display_path.encode())
        digest.update(b"\0")
        digest.update(source.encode())
        return digest.hexdigest()

    def _file(self, key: str) -> Path:
        return self.root / "check" / key[:2] / f"{key}.json"

    def get(self, key: str) -> tuple[list[Finding], RevisionState, int, list[HistoryStatement]] | None:
        try:
            data = json.loads(self._file(key).read_text(encoding="utf-8"))
            findings = [_finding(f) for f in data["findings"]]
            state = data["state"]
            revision_state = RevisionState(
                state["path"], state["revision"], RenderState(state["state"]), state["detail"],
                int(state["statements_through_connection"]),
            )
            statements = int(data["statements"])
            history = [
                HistoryStatement(h["sql"], Location(**h["location"]), h["revision"]) for h in data["history"]
            ]
        except (OSError, ValueError, KeyError, TypeError):
            return None
        self.hits += 1
        return findings, revision_state, statements, history

    def put(
        self, key: str, findings: list[Finding], state: RevisionState, statements: int,
        history: list[HistoryStatement],
    ) -> None:
        data = {
            "history": [asdict(h) for h in history],
            "findings": [_to_json(f) for f in findings],
            "state": {**asdict(state), "state": state.state.value},
            "statements": statements,
        }
        write_cache_file(self.root, self._file(key), data)


def _to_json(f: Finding) -> dict[str, Any]:
    out = asdict(f)
    out["severity"] = int(f.severity)
    return out


def _finding(data: dict[str, Any]) -> Finding:
    return Finding(
        code=data["code"],
        rule=data["rule"],
        severity=Severity(int(data["severity"])),
        message=data["message"],
        location=Location(**data["location"]),
        help=data["help"],
        statement=data["statement"],
        revision=data["revision"],
    )
