"""Checks the demo's output with DuckDB, independently of the Rust code that wrote it.

Every event the demo reported must be a row in the Parquet files and a line in the NDJSON
files, with the sample schema's columns typed as declared in SQL Server; no key the snapshot
read may arrive again as an insert (unless a delete of it came first), and no source position
may appear twice.
"""
import json
import sys

import duckdb

out = sys.argv[1] if len(sys.argv) > 1 else "demo-output"
summary = json.load(open(f"{out}/summary.json"))
expected = summary["events"]
db = duckdb.connect()

parquet = f"{summary['parquet']}/**/*.parquet"
rows = db.execute(f"SELECT count(*) FROM read_parquet('{parquet}')").fetchone()[0]
json_rows = db.execute(
    f"SELECT count(*) FROM read_json_auto('{summary['json']}/**/*.json', format='newline_delimited')"
).fetchone()[0]
by_op = dict(db.execute(f"SELECT __op, count(*) FROM read_parquet('{parquet}') GROUP BY ALL").fetchall())
types = dict(
    db.execute(
        f"SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM read_parquet('{summary['parquet']}/*customers*/**/*.parquet'))"
    ).fetchall()
)
deleted = db.execute(
    f"SELECT count(*) FROM read_parquet('{summary['parquet']}/*customers*/**/*.parquet') WHERE id = 3 AND __op = 'd'"
).fetchone()[0]

# Snapshot/stream hand-off: a key read by the snapshot (op r) that arrives again as an insert
# (op c) without a delete of it in between was handed over twice. Positions order events:
# commit LSN (fixed-width hex text), then the serial inside the transaction. Snapshot rows have
# only a commit LSN (their serial is NULL, as Debezium writes it): the hand-off's, before every
# event streamed after it.
twice = {}
for table in ("customers", "orders"):
    files = f"{summary['parquet']}/*{table}*/**/*.parquet"
    twice[table] = db.execute(
        f"""
        WITH t AS (SELECT id, __op, __commit_lsn AS lsn, coalesce(__event_serial_no, -1) AS serial
                   FROM read_parquet('{files}'))
        SELECT c.id, c.lsn FROM t c
        WHERE c.__op = 'c'
          AND EXISTS (SELECT 1 FROM t r WHERE r.__op = 'r' AND r.id = c.id
                      AND (r.lsn, r.serial) < (c.lsn, c.serial))
          AND NOT EXISTS (SELECT 1 FROM t d WHERE d.__op = 'd' AND d.id = c.id
                          AND (d.lsn, d.serial) < (c.lsn, c.serial))
        ORDER BY c.id LIMIT 10
        """
    ).fetchall()
# Every event has its own source position (__position is the exact position as JSON).
repeated = db.execute(
    f"""
    SELECT __position, count(*) FROM read_parquet('{parquet}', union_by_name = true)
    GROUP BY __position HAVING count(*) > 1 ORDER BY 2 DESC LIMIT 10
    """
).fetchall()

print(f"summary: {expected} events; parquet rows: {rows} {by_op}; json lines: {json_rows}")
print(f"customers columns: {types}")
failures = []
if rows != expected:
    failures.append(f"parquet holds {rows} rows, the demo reported {expected}")
if json_rows != expected:
    failures.append(f"json holds {json_rows} lines, the demo reported {expected}")
if deleted != 1:
    failures.append(f"the delete of customer 3 is not in the files exactly once ({deleted})")
for table, keys in twice.items():
    if keys:
        failures.append(f"{table}: keys read by the snapshot arrive again as inserts: {keys}")
if repeated:
    failures.append(f"source positions appear more than once: {repeated}")
for column, want in [("credit_limit", "DECIMAL(12,2)"), ("name", "VARCHAR"), ("id", "INTEGER")]:
    if types.get(column) != want:
        failures.append(f"column {column} is {types.get(column)}, expected {want}")
if not str(types.get("created_at", "")).startswith("TIMESTAMP"):
    failures.append(f"created_at is {types.get('created_at')}, expected a TIMESTAMP")
if failures:
    print("demo check FAILED:\n  " + "\n  ".join(failures))
    sys.exit(1)
print("demo check passed: DuckDB reads every event the demo reported")
