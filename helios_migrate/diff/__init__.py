"""``helios-migrate diff SOURCE TARGET``: drift between the models, the revisions and live databases.

* :mod:`.sides` -- each side built (models, revisions on a scratch database) or read (a URL);
* :mod:`.catalog` -- a database's objects as PostgreSQL prints them;
* :mod:`.compare` -- missing / extra / different per object, ignore patterns;
* :mod:`.report` -- text, JSON and Markdown.  See ``docs/diff.md``.
"""

from __future__ import annotations

from .catalog import SchemaObject, SchemaObjects, read_objects
from .compare import Difference, DiffResult, Status, compare

__all__ = ["DiffResult", "Difference", "SchemaObject", "SchemaObjects", "Status", "compare", "read_objects"]
