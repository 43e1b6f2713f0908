"""The T-SQL workload of scripts/debezium-perf.sh, for mssql-sim --script.

  debezium-perf-workload.py stream N    three captured tables (customers, orders, order_lines:
                                        int/bigint keys, a composite key, nvarchar, varchar,
                                        decimal, datetime2(3)/(7), bit); a seed row captured
                                        (the capture job's end, where both connectors start);
                                        then N changes (N a multiple of 20) left in the log for
                                        a later sys.sp_cdc_scan: per 20 changes 13 inserts, 4
                                        updates, 3 deletes, in multi-row, multi-table
                                        transactions (10 orders + 30 lines; 100 customer updates
                                        + 300 line deletes)
  debezium-perf-workload.py snapshot N  the same tables holding N rows (N a multiple of 10),
                                        captured, for an initial snapshot

Only ASCII text, so a string's length is its UTF-8 size on both sides.
"""
import sys
mode = sys.argv[1]; n = int(sys.argv[2])
out = sys.stdout
w = out.write
w("CREATE DATABASE perf\nGO\nUSE perf\nGO\nEXEC sys.sp_cdc_enable_db\nGO\n")
w("CREATE TABLE dbo.customers (id int NOT NULL PRIMARY KEY, name nvarchar(60) NOT NULL, email varchar(120) NULL, city nvarchar(40) NULL, created_at datetime2(3) NOT NULL, active bit NOT NULL)\nGO\n")
w("CREATE TABLE dbo.orders (id bigint NOT NULL PRIMARY KEY, customer_id int NOT NULL, amount decimal(12,2) NOT NULL, status varchar(16) NOT NULL, placed_at datetime2(7) NOT NULL, note nvarchar(200) NULL)\nGO\n")
w("CREATE TABLE dbo.order_lines (order_id bigint NOT NULL, line_no int NOT NULL, sku varchar(24) NOT NULL, qty int NOT NULL, unit_price decimal(10,2) NOT NULL, PRIMARY KEY (order_id, line_no))\nGO\n")
for t in ("customers", "orders", "order_lines"):
    w(f"EXEC sys.sp_cdc_enable_table @source_schema = N'dbo', @source_name = N'{t}', @role_name = NULL\nGO\n")
def cust(i): return f"({i}, N'customer {i}', 'c{i}@example.com', N'city {i % 50}', '2026-11-{1 + i % 28:02d}T10:{i % 60:02d}:00.{i % 1000:03d}', {i % 2})"
def order(o): return f"({o}, {o % 10000}, {o % 100000}.{o % 100:02d}, 'new', '2026-11-30T09:{o % 60:02d}:{(o // 60) % 60:02d}.{o % 10000000:07d}', N'note for order {o}')"
def line(o, l): return f"({o}, {l}, 'SKU-{(o * 7 + l) % 5000:05d}', {1 + (o + l) % 9}, {(o + l) % 500}.{l * 7 % 100:02d})"
if mode == "stream":
    # A seed transaction, captured: the capture job's max LSN, where both connectors start.
    w(f"INSERT INTO dbo.customers VALUES {cust(0)}\nGO\nEXEC sys.sp_cdc_scan\nGO\n")
    # n changes (n a multiple of 20): per 20 changes: 1 customer insert, 3 orders, 9 lines,
    # 3 order updates + 1 customer update, 3 line deletes.
    k = n // 20
    C, O = k, 3 * k
    for s in range(1, C + 1, 100):
        w("INSERT INTO dbo.customers VALUES " + ", ".join(cust(i) for i in range(s, min(s + 100, C + 1))) + "\nGO\n")
    for s in range(1, O + 1, 10):
        os_ = range(s, min(s + 10, O + 1))
        w("BEGIN TRANSACTION\nINSERT INTO dbo.orders VALUES " + ", ".join(order(o) for o in os_) + "\n")
        w("INSERT INTO dbo.order_lines VALUES " + ", ".join(line(o, l) for o in os_ for l in (1, 2, 3)) + "\nCOMMIT TRANSACTION\nGO\n")
    for s in range(1, O + 1, 100):
        w(f"UPDATE dbo.orders SET status = 'shipped', amount = amount + 1 WHERE id BETWEEN {s} AND {min(s + 99, O)}\nGO\n")
    for s in range(1, C + 1, 100):
        w(f"BEGIN TRANSACTION\nUPDATE dbo.customers SET city = N'moved', active = 1 WHERE id BETWEEN {s} AND {min(s + 99, C)}\n")
        w(f"DELETE FROM dbo.order_lines WHERE order_id BETWEEN {3 * s - 2} AND {min(3 * s + 297, O)} AND line_no = 3\nCOMMIT TRANSACTION\nGO\n")
else:
    # n rows present before the connector starts: n/10 customers, 3n/10 orders, 6n/10 lines.
    C, O = n // 10, 3 * n // 10
    L = n - C - O
    for s in range(1, C + 1, 500):
        w("INSERT INTO dbo.customers VALUES " + ", ".join(cust(i) for i in range(s, min(s + 500, C + 1))) + "\nGO\n")
    for s in range(1, O + 1, 500):
        w("INSERT INTO dbo.orders VALUES " + ", ".join(order(o) for o in range(s, min(s + 500, O + 1))) + "\nGO\n")
    rows = [(o, l) for o in range(1, O + 1) for l in (1, 2)][:L]
    for s in range(0, len(rows), 500):
        w("INSERT INTO dbo.order_lines VALUES " + ", ".join(line(o, l) for o, l in rows[s:s + 500]) + "\nGO\n")
    w("EXEC sys.sp_cdc_scan\nGO\n")
