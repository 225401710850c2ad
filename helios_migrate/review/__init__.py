"""``helios-migrate review``: a critique of a whole schema, from the models or a live database.

:mod:`.engine` runs the review rules (and the schema-design rules of ``check``) over a
:class:`~helios_migrate.schema_model.Schema` and plans each fix lock-safe; :mod:`.formats`
renders the report; :mod:`.command` is the command line.
"""
