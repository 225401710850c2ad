"""``helios-migrate indexes``: index advice from the workload, each advice a lock-safe revision.

:mod:`.workload` reads the queries (``pg_stat_statements``, or a file of queries);
:mod:`.candidates` reads each query's parse tree (pglast) for the columns an index could serve --
``WHERE`` equality and range comparisons (of a column or ``lower(col)``), ``JOIN`` keys, ``ORDER
BY``, ``GROUP BY`` -- and turns them into candidate indexes (partial where a selective predicate
holds a constant, covering where few narrow columns spare heap fetches), merged so one index
serves every query it can, and ranked; :mod:`.verify` judges them with HypoPG where installed;
:mod:`.command` is the command line and :mod:`.report` its output formats.
"""
