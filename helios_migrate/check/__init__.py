"""``helios-migrate check``: every revision of an Alembic project (or some of them, or plain SQL
files) rendered to offline SQL, run through the safety rules, and reported for people and CI.

Entry points: :func:`helios_migrate.check.runner.run_check` (a report) and
:func:`helios_migrate.check.command.check_command` (the command line).
"""
