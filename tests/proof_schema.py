"""The schema every ``big_table_db`` starts from: big enough that a table rewrite, a scan and a
metadata-only change take visibly different time and locks.

- ``items``: ``ITEMS_ROWS`` rows, btree index ``items_n_idx`` on ``(n)``; ``parent_id`` values all
  point at existing ``parents`` rows, but there is no foreign key yet (tests add one).
- ``parents``: ``PARENTS_ROWS`` rows.
- enum type ``mood`` ('sad', 'ok').
- ``events``: partitioned by range on ``created``; attached partitions ``events_2023`` (to detach)
  and ``events_2024``; ``events_2025`` is a standalone table of the same shape with
  ``EVENTS_2025_ROWS`` rows all within 2025, ready to be attached (no matching CHECK constraint, so
  attaching it scans).

The template database is VACUUM ANALYZEd after loading, so clones have statistics and visibility
maps like a settled production table.
"""

ITEMS_ROWS = 100_000
PARENTS_ROWS = 1_000
EVENTS_2025_ROWS = 10_000
EVENTS_PER_ATTACHED_PARTITION = 1_000  # about: dates are spread over 2023 and 2024

PROOF_SCHEMA_SQL = f"""
CREATE TYPE mood AS ENUM ('sad', 'ok');

CREATE TABLE parents (id bigint PRIMARY KEY);
INSERT INTO parents (id) SELECT g FROM generate_series(1, {PARENTS_ROWS}) AS g;

CREATE TABLE items (
    id bigint PRIMARY KEY,
    n integer NOT NULL,
    v varchar(50),
    t text,
    amount numeric(10,2),
    created timestamp,
    status text,
    parent_id bigint
);
INSERT INTO items (id, n, v, t, amount, created, status, parent_id)
SELECT g,
       g % 1000,
       'v' || g,
       md5(g::text),
       (g % 100000) / 100.0,
       timestamp '2024-01-01' + g * interval '1 minute',
       CASE WHEN g % 10 = 0 THEN 'archived' ELSE 'active' END,
       (g % {PARENTS_ROWS}) + 1
FROM generate_series(1, {ITEMS_ROWS}) AS g;
CREATE INDEX items_n_idx ON items (n);

CREATE TABLE events (id bigint, created date) PARTITION BY RANGE (created);
CREATE TABLE events_2023 PARTITION OF events FOR VALUES FROM ('2023-01-01') TO ('2024-01-01');
CREATE TABLE events_2024 PARTITION OF events FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
INSERT INTO events (id, created)
SELECT g, date '2023-01-01' + (g % 730) FROM generate_series(1, {2 * EVENTS_PER_ATTACHED_PARTITION}) AS g;
CREATE TABLE events_2025 (id bigint, created date);
INSERT INTO events_2025 (id, created)
SELECT g, date '2025-01-01' + (g % 365) FROM generate_series(1, {EVENTS_2025_ROWS}) AS g;
"""
