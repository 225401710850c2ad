"""``helios-migrate indexes``: index advice from the workload, each advice a lock-safe revision.

:mod:`.workload` reads the queries (``pg_stat_statements``, or a file of queries);
:mod:`.candidates` reads each query's parse tree (pglast) for the columns an index could serve --
``WHERE`` equality and range comparisons, ``JOIN`` keys, ``ORDER BY`` -- and turns them into
candidate indexes, merged so one index serves every query it can, and ranked; :mod:`.command`
is the command line and its output formats.
"""
