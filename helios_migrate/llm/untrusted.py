"""Model text that is shown to a person: in a revision comment, on a terminal, in a log.

It is data, never code: it becomes one line of printable characters (no newline that could end a
comment and start a statement, no escape sequence that could rewrite a terminal, no NUL byte that
would make a revision file unloadable), cut to a bounded length.
"""

from __future__ import annotations


def one_line(text: str | None, limit: int = 500) -> str:
    """``text`` as one printable line of at most ``limit`` characters."""
    if not text:
        return ""
    return " ".join("".join(c if c.isprintable() else " " for c in text).split())[:limit]
