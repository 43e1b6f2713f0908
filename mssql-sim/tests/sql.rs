//! T-SQL on the in-memory engine over TDS: result sets, DONE counts, errors with SQL
//! Server's numbers, transactions and ENVCHANGE, SNAPSHOT isolation, queries, DDL and
//! catalog views.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{connect, err_number, exec, try_exec};

async fn ints(c: &mut common::Conn, sql: &str) -> Vec<Option<i32>> {
    let rows = c
        .simple_query(sql)
        .await
        .unwrap()
        .into_first_result()
        .await
        .unwrap();
    rows.iter().map(|r| r.get::<i32, _>(0)).collect()
}

async fn strs(c: &mut common::Conn, sql: &str) -> Vec<Option<String>> {
    let rows = c
        .simple_query(sql)
        .await
        .unwrap()
        .into_first_result()
        .await
        .unwrap();
    rows.iter()
        .map(|r| r.get::<&str, _>(0).map(str::to_string))
        .collect()
}

const FIXTURE: &str = "CREATE TABLE dbo.dept (id int PRIMARY KEY, name nvarchar(30) NOT NULL);
CREATE TABLE dbo.emp (id int NOT NULL, dept_id int NULL, name nvarchar(30) NOT NULL, salary decimal(10,2) NULL, CONSTRAINT pk_emp PRIMARY KEY (id));
INSERT INTO dbo.dept VALUES (1, N'eng'), (2, N'ops'), (3, N'empty');
INSERT INTO dbo.emp VALUES (1, 1, N'ann', 100.00), (2, 1, N'bob', 80.50), (3, 2, N'cid', NULL), (4, NULL, N'dan', 60.00), (5, 2, N'eve', 90.00);";

#[tokio::test]
async fn several_result_sets_and_row_counts_per_batch() {
    let sim = common::start().await;
    let mut c = connect(&sim).await;
    exec(&mut c, FIXTURE).await;
    let sets = try_exec(
        &mut c,
        "SELECT 1 AS a; SELECT id FROM dbo.dept ORDER BY id; SELECT name FROM dbo.emp WHERE id = 3",
    )
    .await
    .unwrap();
    assert_eq!(sets.len(), 3);
    assert_eq!(sets[1].len(), 3);
    let res = c.execute("INSERT INTO dbo.dept VALUES (10, N'x'), (11, N'y'); UPDATE dbo.emp SET salary = salary + 1 WHERE dept_id = 1; DELETE FROM dbo.dept WHERE id >= 10", &[]).await.unwrap();
    assert_eq!(res.rows_affected(), &[2, 2, 2]);
    sim.stop().await;
}

#[tokio::test]
async fn errors_carry_sql_server_numbers() {
    let sim = common::start().await;
    let mut c = connect(&sim).await;
    exec(&mut c, FIXTURE).await;
    for (sql, number) in [
        ("SELECT * FROM dbo.nope", 208),
        ("SELEC 1", 102),
        ("INSERT INTO dbo.dept VALUES (1, N'dup')", 2627),
        ("INSERT INTO dbo.emp (id, name) VALUES (9, NULL)", 515),
        ("SELECT nope FROM dbo.emp", 207),
        ("SELECT 1 / 0", 8134),
        ("EXEC dbo.no_such_proc", 2812),
        ("CREATE TABLE dbo.dept (id int)", 2714),
        ("COMMIT", 3902),
    ] {
        let e = try_exec(&mut c, sql).await.unwrap_err();
        assert_eq!(err_number(&e), number, "{sql}");
    }
    // Unsupported T-SQL is an error that says so, never a silently wrong answer.
    let e = try_exec(&mut c, "CREATE VIEW v AS SELECT 1 AS x")
        .await
        .unwrap_err();
    assert!(e.to_string().contains("does not support"), "{e}");
    for sql in [
        // (ROW_NUMBER() OVER is supported since Debezium needs it: tests/debezium_queries.rs)
        "SELECT TOP 50 PERCENT id FROM dbo.dept",
        "SELECT id FROM dbo.dept FOR JSON AUTO",
        "SELECT id FROM dbo.dept WHERE name LIKE '[a-e]%'",
        "SELECT d.id FROM dbo.dept d RIGHT JOIN dbo.emp e ON e.dept_id = d.id",
    ] {
        let e = try_exec(&mut c, sql).await.unwrap_err();
        assert!(
            e.to_string().contains("does not support") || err_number(&e) == 102,
            "{sql}: {e}"
        );
    }
    let e = try_exec(&mut c, "PRINT N'hello'; THROW 50001, N'custom failure', 3")
        .await
        .unwrap_err();
    assert_eq!(err_number(&e), 50001);
    // A PK violation ends only its statement; the batch goes on.
    let e = try_exec(
        &mut c,
        "INSERT INTO dbo.dept VALUES (1, N'dup'); INSERT INTO dbo.dept VALUES (7, N'ok')",
    )
    .await
    .unwrap_err();
    assert_eq!(err_number(&e), 2627);
    assert_eq!(
        ints(&mut c, "SELECT COUNT(*) FROM dbo.dept WHERE id = 7").await,
        vec![Some(1)]
    );
    // A multi-row insert with a duplicate inserts nothing.
    let _ = try_exec(&mut c, "INSERT INTO dbo.dept VALUES (20, N'a'), (20, N'b')")
        .await
        .unwrap_err();
    assert_eq!(
        ints(&mut c, "SELECT COUNT(*) FROM dbo.dept WHERE id = 20").await,
        vec![Some(0)]
    );
    sim.stop().await;
}

#[tokio::test]
async fn transactions_commit_and_roll_back() {
    let sim = common::start().await;
    let mut c = connect(&sim).await;
    exec(&mut c, FIXTURE).await;
    exec(&mut c, "BEGIN TRAN").await;
    assert_eq!(ints(&mut c, "SELECT @@TRANCOUNT").await, vec![Some(1)]);
    exec(
        &mut c,
        "INSERT INTO dbo.dept VALUES (50, N'tmp'); UPDATE dbo.dept SET name = N'ENG' WHERE id = 1",
    )
    .await;
    // another session does not see uncommitted data (under READ COMMITTED it would wait for
    // the open transaction's rows, as SQL Server's does; SNAPSHOT, allowed in master, reads
    // the last committed version)
    let mut other = connect(&sim).await;
    exec(&mut other, "SET TRANSACTION ISOLATION LEVEL SNAPSHOT").await;
    assert_eq!(
        ints(&mut other, "SELECT COUNT(*) FROM dbo.dept").await,
        vec![Some(3)]
    );
    exec(&mut c, "ROLLBACK").await;
    assert_eq!(ints(&mut c, "SELECT @@TRANCOUNT").await, vec![Some(0)]);
    assert_eq!(
        strs(&mut c, "SELECT name FROM dbo.dept WHERE id = 1").await,
        vec![Some("eng".into())]
    );
    exec(
        &mut c,
        "BEGIN TRANSACTION; INSERT INTO dbo.dept VALUES (51, N'kept'); COMMIT TRANSACTION",
    )
    .await;
    assert_eq!(
        ints(&mut other, "SELECT COUNT(*) FROM dbo.dept").await,
        vec![Some(4)]
    );
    // primary-key updates move the row
    exec(&mut c, "UPDATE dbo.dept SET id = 52 WHERE id = 51").await;
    assert_eq!(
        ints(&mut c, "SELECT id FROM dbo.dept WHERE name = N'kept'").await,
        vec![Some(52)]
    );
    let e = try_exec(&mut c, "UPDATE dbo.dept SET id = 1 WHERE id = 52")
        .await
        .unwrap_err();
    assert_eq!(err_number(&e), 2627);
    sim.stop().await;
}

#[tokio::test]
async fn snapshot_reads_one_version_while_writers_commit() {
    let sim = common::start().await;
    let mut reader = connect(&sim).await;
    let mut writer = connect(&sim).await;
    exec(&mut reader, FIXTURE).await;
    exec(
        &mut reader,
        "SET TRANSACTION ISOLATION LEVEL SNAPSHOT; BEGIN TRAN",
    )
    .await;
    assert_eq!(
        ints(&mut reader, "SELECT COUNT(*) FROM dbo.emp").await,
        vec![Some(5)]
    );
    exec(&mut writer, "INSERT INTO dbo.emp VALUES (6, 1, N'fay', 10); UPDATE dbo.emp SET name = N'ANN' WHERE id = 1; DELETE FROM dbo.emp WHERE id = 5").await;
    assert_eq!(
        ints(&mut reader, "SELECT COUNT(*) FROM dbo.emp").await,
        vec![Some(5)]
    );
    assert_eq!(
        strs(&mut reader, "SELECT name FROM dbo.emp WHERE id = 1").await,
        vec![Some("ann".into())]
    );
    exec(&mut reader, "COMMIT").await;
    assert_eq!(
        ints(&mut reader, "SELECT COUNT(*) FROM dbo.emp").await,
        vec![Some(5)]
    );
    assert_eq!(
        strs(&mut reader, "SELECT name FROM dbo.emp WHERE id = 1").await,
        vec![Some("ANN".into())]
    );
    // a snapshot writer that touches a row changed after its snapshot gets error 3960
    exec(&mut reader, "BEGIN TRAN").await;
    assert_eq!(
        ints(&mut reader, "SELECT COUNT(*) FROM dbo.emp").await,
        vec![Some(5)]
    );
    exec(&mut writer, "UPDATE dbo.emp SET salary = 1 WHERE id = 2").await;
    let e = try_exec(&mut reader, "UPDATE dbo.emp SET salary = 2 WHERE id = 2")
        .await
        .unwrap_err();
    assert_eq!(err_number(&e), 3960);
    exec(&mut reader, "ROLLBACK").await;
    sim.stop().await;
}

#[tokio::test]
async fn queries_filter_join_group_order_and_page() {
    let sim = common::start().await;
    let mut c = connect(&sim).await;
    exec(&mut c, FIXTURE).await;
    assert_eq!(
        ints(
            &mut c,
            "SELECT id FROM dbo.emp WHERE dept_id IN (1, 2) AND NOT (salary < 85) ORDER BY id"
        )
        .await,
        vec![Some(1), Some(5)]
    );
    assert_eq!(ints(&mut c, "SELECT id FROM dbo.emp WHERE salary BETWEEN 60 AND 90 OR salary IS NULL ORDER BY id DESC").await, vec![Some(5), Some(4), Some(3), Some(2)]);
    assert_eq!(
        ints(&mut c, "SELECT id FROM dbo.emp WHERE dept_id IS NULL").await,
        vec![Some(4)]
    );
    assert_eq!(
        ints(&mut c, "SELECT TOP 2 id FROM dbo.emp ORDER BY salary DESC").await,
        vec![Some(1), Some(5)]
    );
    assert_eq!(
        ints(
            &mut c,
            "SELECT id FROM dbo.emp ORDER BY id OFFSET 1 ROWS FETCH NEXT 2 ROWS ONLY"
        )
        .await,
        vec![Some(2), Some(3)]
    );
    assert_eq!(strs(&mut c, "SELECT e.name FROM dbo.emp e INNER JOIN dbo.dept d ON d.id = e.dept_id WHERE d.name = N'ops' ORDER BY e.name").await, vec![Some("cid".into()), Some("eve".into())]);
    let rows = c.simple_query("SELECT d.name, COUNT(e.id) AS n, MIN(e.salary) AS lo, MAX(e.salary) AS hi FROM dbo.dept d LEFT JOIN dbo.emp e ON e.dept_id = d.id GROUP BY d.name ORDER BY d.name").await.unwrap().into_first_result().await.unwrap();
    let got: Vec<(String, i32)> = rows
        .iter()
        .map(|r| {
            (
                r.get::<&str, _>(0).unwrap().to_string(),
                r.get::<i32, _>(1).unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![("empty".into(), 0), ("eng".into(), 2), ("ops".into(), 2)]
    );
    assert_eq!(
        ints(
            &mut c,
            "SELECT dept_id FROM dbo.emp GROUP BY dept_id HAVING COUNT(*) > 1 ORDER BY dept_id"
        )
        .await,
        vec![Some(1), Some(2)]
    );
    assert_eq!(ints(&mut c, "WITH rich AS (SELECT id, salary FROM dbo.emp WHERE salary >= 90) SELECT COUNT(*) FROM rich").await, vec![Some(2)]);
    assert_eq!(
        ints(
            &mut c,
            "SELECT DISTINCT dept_id FROM dbo.emp WHERE dept_id IS NOT NULL ORDER BY dept_id"
        )
        .await,
        vec![Some(1), Some(2)]
    );
    assert_eq!(strs(&mut c, "SELECT CASE WHEN salary > 85 THEN N'high' ELSE N'low' END + N'-' + name FROM dbo.emp WHERE id = 2").await, vec![Some("low-bob".into())]);
    assert_eq!(
        ints(
            &mut c,
            "SELECT CAST(ISNULL(salary, 0) * 2 AS int) FROM dbo.emp WHERE id = 3"
        )
        .await,
        vec![Some(0)]
    );
    assert_eq!(
        ints(
            &mut c,
            "SELECT id FROM dbo.emp WHERE name LIKE N'%a%' ORDER BY id"
        )
        .await,
        vec![Some(1), Some(4)]
    );
    assert_eq!(ints(&mut c, "SELECT id FROM dbo.emp WHERE dept_id IN (SELECT id FROM dbo.dept WHERE name = N'eng') ORDER BY id").await, vec![Some(1), Some(2)]);
    sim.stop().await;
}

#[tokio::test]
async fn ddl_and_catalog_views() {
    let sim = common::start().await;
    let mut c = connect(&sim).await;
    exec(&mut c, "CREATE DATABASE inv; USE inv").await;
    exec(&mut c, FIXTURE).await;
    exec(&mut c, "ALTER TABLE dbo.emp ADD email varchar(100) NULL; ALTER TABLE dbo.emp DROP COLUMN salary; ALTER TABLE dbo.emp ALTER COLUMN name nvarchar(60) NOT NULL").await;
    let cols = strs(&mut c, "SELECT c.name FROM sys.columns c JOIN sys.tables t ON t.object_id = c.object_id WHERE t.name = 'emp' ORDER BY c.column_id").await;
    assert_eq!(
        cols,
        vec![
            Some("id".into()),
            Some("dept_id".into()),
            Some("name".into()),
            Some("email".into())
        ]
    );
    let rows = c.simple_query("SELECT DATA_TYPE, CHARACTER_MAXIMUM_LENGTH, IS_NULLABLE FROM INFORMATION_SCHEMA.COLUMNS WHERE TABLE_NAME = 'emp' AND COLUMN_NAME = 'name'").await.unwrap().into_first_result().await.unwrap();
    assert_eq!(rows[0].get::<&str, _>(0), Some("nvarchar"));
    assert_eq!(rows[0].get::<i32, _>(1), Some(60));
    assert_eq!(rows[0].get::<&str, _>(2), Some("NO"));
    assert_eq!(strs(&mut c, "SELECT k.COLUMN_NAME FROM INFORMATION_SCHEMA.TABLE_CONSTRAINTS tc JOIN INFORMATION_SCHEMA.KEY_COLUMN_USAGE k ON k.CONSTRAINT_NAME = tc.CONSTRAINT_NAME WHERE tc.TABLE_NAME = 'emp' AND tc.CONSTRAINT_TYPE = 'PRIMARY KEY'").await, vec![Some("id".into())]);
    assert_eq!(strs(&mut c, "SELECT i.name FROM sys.indexes i JOIN sys.index_columns ic ON ic.object_id = i.object_id AND ic.index_id = i.index_id WHERE i.is_primary_key = 1 AND i.object_id = OBJECT_ID('dbo.emp')").await, vec![Some("pk_emp".into())]);
    assert_eq!(ints(&mut c, "SELECT CAST(p.rows AS int) FROM sys.partitions p WHERE p.object_id = OBJECT_ID(N'dbo.dept')").await, vec![Some(3)]);
    assert_eq!(
        strs(
            &mut c,
            "SELECT SCHEMA_NAME(schema_id) FROM sys.tables WHERE name = 'dept'"
        )
        .await,
        vec![Some("dbo".into())]
    );
    assert_eq!(
        strs(
            &mut c,
            "SELECT name FROM sys.types WHERE name = 'datetimeoffset'"
        )
        .await,
        vec![Some("datetimeoffset".into())]
    );
    assert_eq!(
        strs(&mut c, "SELECT name FROM sys.schemas WHERE schema_id = 1").await,
        vec![Some("dbo".into())]
    );
    assert_eq!(
        strs(&mut c, "SELECT DB_NAME()").await,
        vec![Some("inv".into())]
    );
    // several databases, three-part names, USE switching
    exec(&mut c, "USE master").await;
    assert_eq!(
        ints(&mut c, "SELECT COUNT(*) FROM inv.dbo.dept").await,
        vec![Some(3)]
    );
    assert_eq!(
        ints(
            &mut c,
            "SELECT COUNT(*) FROM sys.databases WHERE name IN ('master', 'inv')"
        )
        .await,
        vec![Some(2)]
    );
    let e = try_exec(&mut c, "SELECT * FROM dbo.dept")
        .await
        .unwrap_err();
    assert_eq!(err_number(&e), 208);
    exec(&mut c, "USE inv; DROP TABLE dbo.emp").await;
    assert_eq!(
        ints(&mut c, "SELECT COUNT(*) FROM sys.tables WHERE name = 'emp'").await,
        vec![Some(0)]
    );
    sim.stop().await;
}

#[tokio::test]
async fn identity_defaults_and_database_options() {
    let sim = common::start().await;
    let mut c = connect(&sim).await;
    exec(
        &mut c,
        "CREATE DATABASE app; ALTER DATABASE app SET ALLOW_SNAPSHOT_ISOLATION ON; USE app",
    )
    .await;
    exec(&mut c, "CREATE TABLE dbo.log (id int IDENTITY(1,1) PRIMARY KEY, msg nvarchar(20) NOT NULL, at datetime2 DEFAULT SYSDATETIME(), g uniqueidentifier DEFAULT NEWID(), n int DEFAULT 7)").await;
    exec(&mut c, "INSERT INTO dbo.log (msg) VALUES (N'a'), (N'b'); INSERT INTO dbo.log (msg, n) VALUES (N'c', NULL)").await;
    let rows = c
        .simple_query("SELECT id, at, g, n FROM dbo.log ORDER BY id")
        .await
        .unwrap()
        .into_first_result()
        .await
        .unwrap();
    assert_eq!(
        rows.iter()
            .map(|r| r.get::<i32, _>(0).unwrap())
            .collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    assert!(
        rows.iter()
            .all(|r| r.get::<chrono::NaiveDateTime, _>(1).is_some())
    );
    assert_ne!(
        rows[0].get::<uuid::Uuid, _>(2),
        rows[1].get::<uuid::Uuid, _>(2),
        "NEWID() runs per row"
    );
    assert_eq!(
        rows.iter().map(|r| r.get::<i32, _>(3)).collect::<Vec<_>>(),
        vec![Some(7), Some(7), None]
    );
    let e = try_exec(&mut c, "INSERT INTO dbo.log (id, msg) VALUES (9, N'x')")
        .await
        .unwrap_err();
    assert_eq!(err_number(&e), 544);
    sim.stop().await;
}

#[tokio::test]
async fn variables_and_date_functions() {
    let sim = common::start().await;
    let mut c = connect(&sim).await;
    exec(&mut c, FIXTURE).await;
    let rows = c
        .simple_query(
            "DECLARE @n int, @top nvarchar(30);
             SELECT @n = COUNT(*) FROM dbo.emp;
             SELECT @top = name FROM dbo.emp WHERE salary = (SELECT MAX(salary) FROM dbo.emp);
             SET @n = @n * 10;
             SELECT @n AS n, @top AS top_earner,
                    DATEADD(day, 1, CAST('2024-02-28' AS date)) AS next_day,
                    DATEADD(month, -1, CAST('2024-03-31 10:00:00' AS datetime2)) AS prev_month,
                    DATEDIFF(minute, CAST('2024-01-01 10:59:59' AS datetime2), CAST('2024-01-01 11:00:00' AS datetime2)) AS minutes,
                    DATEDIFF(year, CAST('2023-12-31' AS date), CAST('2024-01-01' AS date)) AS years",
        )
        .await
        .unwrap()
        .into_results()
        .await
        .unwrap();
    let r = &rows.last().unwrap()[0];
    assert_eq!(r.get::<i32, _>("n"), Some(50));
    assert_eq!(r.get::<&str, _>("top_earner"), Some("ann"));
    assert_eq!(
        r.get::<chrono::NaiveDate, _>("next_day"),
        chrono::NaiveDate::from_ymd_opt(2024, 2, 29)
    );
    assert_eq!(
        r.get::<chrono::NaiveDateTime, _>("prev_month"),
        chrono::NaiveDate::from_ymd_opt(2024, 2, 29)
            .unwrap()
            .and_hms_opt(10, 0, 0)
    );
    assert_eq!(r.get::<i32, _>("minutes"), Some(1));
    assert_eq!(r.get::<i32, _>("years"), Some(1));
    sim.stop().await;
}

#[tokio::test]
async fn many_updates_keep_results_right_across_version_cleanup() {
    let sim = common::start().await;
    let mut c = connect(&sim).await;
    exec(&mut c, "CREATE TABLE dbo.k (id int PRIMARY KEY, v int NOT NULL); INSERT INTO dbo.k VALUES (1, 0), (2, 0)").await;
    for i in 1..=1200 {
        exec(&mut c, &format!("UPDATE dbo.k SET v = {i} WHERE id = 1")).await;
        if i % 300 == 0 {
            exec(&mut c, "BEGIN TRAN; UPDATE dbo.k SET v = -1; ROLLBACK").await;
        }
    }
    let rows = c
        .simple_query("SELECT id, v FROM dbo.k ORDER BY id")
        .await
        .unwrap()
        .into_first_result()
        .await
        .unwrap();
    let got: Vec<(i32, i32)> = rows
        .iter()
        .map(|r| (r.get(0).unwrap(), r.get(1).unwrap()))
        .collect();
    assert_eq!(got, vec![(1, 1200), (2, 0)]);
    let e = try_exec(&mut c, "INSERT INTO dbo.k VALUES (1, 5)")
        .await
        .unwrap_err();
    assert_eq!(err_number(&e), 2627, "the key index survives cleanup");
    sim.stop().await;
}

#[tokio::test]
async fn result_types_follow_sql_server_rules() {
    let sim = common::start().await;
    let mut c = connect(&sim).await;
    exec(
        &mut c,
        "CREATE TABLE dbo.n (id bigint PRIMARY KEY, small int, d decimal(5,2))",
    )
    .await;
    exec(
        &mut c,
        "INSERT INTO dbo.n VALUES (1, 2, 1.50), (2, 3, 2.25)",
    )
    .await;
    let r = c.simple_query("SELECT SUM(id) AS s, id + 1 AS next_id, SUM(small) AS si, SUM(d) AS sd, COUNT(*) AS n FROM dbo.n GROUP BY id ORDER BY id").await.unwrap().into_first_result().await.unwrap();
    assert_eq!(r[0].get::<i64, _>("s"), Some(1), "SUM(bigint) is bigint");
    assert_eq!(
        r[0].get::<i64, _>("next_id"),
        Some(2),
        "bigint + int is bigint"
    );
    assert_eq!(r[0].get::<i32, _>("si"), Some(2), "SUM(int) is int");
    assert_eq!(
        r[0].get::<tiberius::numeric::Numeric, _>("sd")
            .map(|n| n.scale()),
        Some(2)
    );
    assert_eq!(r[0].get::<i32, _>("n"), Some(1));
    sim.stop().await;
}

#[tokio::test]
async fn transaction_manager_requests_from_tiberius() {
    let sim = common::start().await;
    let mut c = connect(&sim).await;
    let mut other = connect(&sim).await;
    // Reads the last committed version instead of waiting for `c`'s open transaction.
    exec(&mut other, "SET TRANSACTION ISOLATION LEVEL SNAPSHOT").await;
    exec(&mut c, FIXTURE).await;
    c.begin_transaction().await.unwrap();
    exec(&mut c, "INSERT INTO dbo.dept VALUES (60, N'tm')").await;
    assert_eq!(
        ints(&mut other, "SELECT COUNT(*) FROM dbo.dept WHERE id = 60").await,
        vec![Some(0)]
    );
    c.rollback_transaction().await.unwrap();
    assert_eq!(
        ints(&mut c, "SELECT COUNT(*) FROM dbo.dept WHERE id = 60").await,
        vec![Some(0)]
    );
    c.begin_transaction().await.unwrap();
    exec(&mut c, "INSERT INTO dbo.dept VALUES (61, N'tm')").await;
    c.commit_transaction().await.unwrap();
    assert_eq!(
        ints(&mut other, "SELECT COUNT(*) FROM dbo.dept WHERE id = 61").await,
        vec![Some(1)]
    );
    sim.stop().await;
}

#[tokio::test]
async fn sp_executesql_from_a_batch_and_output_clauses() {
    let sim = common::start().await;
    let mut c = connect(&sim).await;
    exec(&mut c, FIXTURE).await;
    assert_eq!(
        strs(
            &mut c,
            "EXEC sp_executesql N'SELECT name FROM dbo.dept WHERE id = @id', N'@id int', @id = 2"
        )
        .await,
        vec![Some("ops".into())]
    );
    let e = try_exec(
        &mut c,
        "INSERT INTO dbo.dept OUTPUT inserted.id VALUES (70, N'x')",
    )
    .await
    .unwrap_err();
    assert!(e.to_string().contains("does not support"), "{e}");
    assert_eq!(
        ints(&mut c, "SELECT COUNT(*) FROM dbo.dept WHERE id = 70").await,
        vec![Some(0)]
    );
    sim.stop().await;
}

#[tokio::test]
async fn update_and_delete_with_from_and_joins() {
    let sim = common::start().await;
    let mut c = connect(&sim).await;
    exec(&mut c, FIXTURE).await;
    exec(&mut c, "CREATE TABLE dbo.raise (dept_id int PRIMARY KEY, pct int NOT NULL); INSERT INTO dbo.raise VALUES (1, 10), (2, 50)").await;
    let res = c.execute("UPDATE e SET e.salary = e.salary * (100 + r.pct) / 100 FROM dbo.emp e INNER JOIN dbo.raise r ON r.dept_id = e.dept_id WHERE e.salary IS NOT NULL", &[]).await.unwrap();
    assert_eq!(res.rows_affected(), &[3]);
    let rows = c
        .simple_query("SELECT id, CAST(salary AS int) FROM dbo.emp ORDER BY id")
        .await
        .unwrap()
        .into_first_result()
        .await
        .unwrap();
    let got: Vec<(i32, Option<i32>)> = rows.iter().map(|r| (r.get(0).unwrap(), r.get(1))).collect();
    assert_eq!(
        got,
        vec![
            (1, Some(110)),
            (2, Some(88)),
            (3, None),
            (4, Some(60)),
            (5, Some(135))
        ]
    );
    // target not listed in FROM: joined implicitly
    exec(
        &mut c,
        "UPDATE dbo.dept SET name = r.pct FROM dbo.raise r WHERE r.dept_id = dbo.dept.id",
    )
    .await;
    assert_eq!(
        strs(&mut c, "SELECT name FROM dbo.dept ORDER BY id").await,
        vec![Some("10".into()), Some("50".into()), Some("empty".into())]
    );
    let res = c
        .execute(
            "DELETE e FROM dbo.emp e JOIN dbo.dept d ON d.id = e.dept_id WHERE d.id = 2",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(res.rows_affected(), &[2]);
    assert_eq!(
        ints(&mut c, "SELECT id FROM dbo.emp ORDER BY id").await,
        vec![Some(1), Some(2), Some(4)]
    );
    sim.stop().await;
}
