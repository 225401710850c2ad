"""``helios-migrate docs``: a documentation folder for a schema -- the models, the revisions at a
point, or a live database -- with Mermaid ER diagrams and the Alembic history of every table.

* :mod:`.schema` -- the tables as the docs show them, from the catalog objects ``diff`` reads
  (:mod:`helios_migrate.diff.sides`, :mod:`helios_migrate.diff.catalog`) and :mod:`.extras`
  (column order, comments, and sizes of a live database);
* :mod:`.history` -- which revision created and changed which table, from each revision's
  offline SQL as ``check`` renders it (:mod:`helios_migrate.check.render`);
* :mod:`.mermaid`, :mod:`.graphviz`, :mod:`.pages` -- the files;
* :mod:`.command` -- the command, and ``--check`` (is the folder current?).  See
  ``docs/docs-command.md``.
"""
