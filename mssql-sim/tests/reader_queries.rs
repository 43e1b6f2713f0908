//! The statements the project's CDC reader (cdc-mssql) sends, checked against the
//! simulator: catalog discovery, the LSN window, paged change reads with a keyset, and the
//! snapshot cursor under SNAPSHOT isolation.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use tiberius::numeric::Numeric;

#[tokio::test]
async fn cdc_reader_statements_work() {
    let sim = common::start().await;
    let mut c = common::connect(&sim).await;
    common::exec(
        &mut c,
        "IF DB_ID(N'rd') IS NOT NULL DROP DATABASE [rd]; CREATE DATABASE [rd];",
    )
    .await;
    common::exec(&mut c, "USE [rd]; EXEC sys.sp_cdc_enable_db;
        CREATE TABLE dbo.acct (id int NOT NULL PRIMARY KEY, owner nvarchar(20) NOT NULL, bal money NULL);
        EXEC sys.sp_cdc_enable_table @source_schema = N'dbo', @source_name = N'acct', @role_name = NULL;
        INSERT INTO dbo.acct VALUES (1, N'a', 1.5), (2, N'b', 2.25), (3, N'c', NULL);
        UPDATE dbo.acct SET bal = 9 WHERE id = 2;
        DELETE FROM dbo.acct WHERE id = 3;
        EXEC sys.sp_cdc_scan;").await;

    // catalog discovery
    for sql in [
        "SELECT capture_instance, object_id, source_object_id, start_lsn, create_date FROM cdc.change_tables",
        "SELECT t.object_id, s.name AS schema_name, t.name AS table_name FROM sys.tables t INNER JOIN sys.schemas s ON s.schema_id = t.schema_id",
        "SELECT object_id, column_name, column_ordinal FROM cdc.captured_columns",
        "SELECT c.object_id, c.name, COALESCE(bt.name, t.name) AS type_name, c.max_length, c.precision, c.scale, c.is_nullable, c.collation_name FROM sys.columns c INNER JOIN sys.types t ON t.user_type_id = c.user_type_id LEFT JOIN sys.types bt ON bt.user_type_id = c.system_type_id AND t.is_user_defined = 1 AND t.is_assembly_type = 0",
        "SELECT TABLE_SCHEMA, TABLE_NAME, CONSTRAINT_NAME FROM INFORMATION_SCHEMA.TABLE_CONSTRAINTS WHERE CONSTRAINT_TYPE = 'PRIMARY KEY'",
        "SELECT TABLE_SCHEMA, TABLE_NAME, CONSTRAINT_NAME, COLUMN_NAME, ORDINAL_POSITION FROM INFORMATION_SCHEMA.KEY_COLUMN_USAGE",
        "SELECT is_cdc_enabled FROM sys.databases WHERE name = DB_NAME()",
    ] {
        let rows = common::try_exec(&mut c, sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        assert!(!rows[0].is_empty(), "{sql}");
    }
    let types = c.simple_query("SELECT t.name FROM sys.columns c INNER JOIN sys.types t ON t.user_type_id = c.user_type_id WHERE c.object_id = OBJECT_ID('dbo.acct') ORDER BY c.column_id").await.unwrap().into_first_result().await.unwrap();
    assert_eq!(
        types
            .iter()
            .map(|r| r.get::<&str, _>(0).unwrap())
            .collect::<Vec<_>>(),
        vec!["int", "nvarchar", "money"]
    );

    // the LSN window
    let max = c
        .simple_query("SELECT sys.fn_cdc_get_max_lsn()")
        .await
        .unwrap()
        .into_row()
        .await
        .unwrap()
        .unwrap()
        .get::<&[u8], _>(0)
        .unwrap()
        .to_vec();
    let zero = vec![0u8; 10];
    let window = c.query("SELECT TOP 100 start_lsn, tran_end_time FROM cdc.lsn_time_mapping WHERE start_lsn >= @P1 AND tran_id <> 0x00 ORDER BY start_lsn", &[&zero.as_slice()]).await.unwrap().into_first_result().await.unwrap();
    assert_eq!(
        window.len(),
        3,
        "one row per autocommit INSERT/UPDATE/DELETE"
    );
    let t = c.query("SELECT TOP 1 tran_end_time FROM cdc.lsn_time_mapping WHERE start_lsn <= @P1 ORDER BY start_lsn DESC", &[&max.as_slice()]).await.unwrap().into_row().await.unwrap().unwrap();
    assert!(t.get::<chrono::NaiveDateTime, _>(0).is_some());

    // paged change rows with a keyset continuation
    let page = "SELECT TOP 2 [__$start_lsn], [__$seqval], [__$operation], [__$command_id], [id], [owner], CAST([bal] AS decimal(19,4)) AS [bal] \
        FROM [cdc].[dbo_acct_CT] WHERE [__$start_lsn] >= @P1 AND [__$start_lsn] <= @P2 \
        ORDER BY [__$start_lsn], [__$command_id], [__$seqval], [__$operation]";
    let first = c
        .query(page, &[&zero.as_slice(), &max.as_slice()])
        .await
        .unwrap()
        .into_first_result()
        .await
        .unwrap();
    assert_eq!(first.len(), 2);
    let last = &first[1];
    let (l, cmd, seq, op) = (
        last.get::<&[u8], _>(0).unwrap().to_vec(),
        last.get::<i32, _>(3).unwrap(),
        last.get::<&[u8], _>(1).unwrap().to_vec(),
        last.get::<i32, _>(2).unwrap(),
    );
    let next = format!(
        "{} AND ([__$start_lsn] > @P3 OR ([__$start_lsn] = @P3 AND ([__$command_id] > @P4 OR ([__$command_id] = @P4 AND ([__$seqval] > @P5 OR ([__$seqval] = @P5 AND [__$operation] > @P6)))))) ORDER BY",
        page.split(" ORDER BY")
            .next()
            .unwrap()
            .replace("TOP 2", "TOP 100")
    );
    let next = format!("{next}{}", page.split(" ORDER BY").nth(1).unwrap());
    let rest = c
        .query(
            next,
            &[
                &zero.as_slice(),
                &max.as_slice(),
                &l.as_slice(),
                &cmd,
                &seq.as_slice(),
                &op,
            ],
        )
        .await
        .unwrap()
        .into_first_result()
        .await
        .unwrap();
    let ops: Vec<i32> = first
        .iter()
        .chain(rest.iter())
        .map(|r| r.get::<i32, _>(2).unwrap())
        .collect();
    assert_eq!(ops, vec![2, 2, 2, 3, 4, 1]);
    assert_eq!(
        rest[2].get::<Numeric, _>("bal"),
        Some(Numeric::new_with_scale(90000, 4))
    );

    // snapshot cursor (SNAPSHOT needs the database option, off in a new database)
    common::exec(
        &mut c,
        "ALTER DATABASE [rd] SET ALLOW_SNAPSHOT_ISOLATION ON; SET TRANSACTION ISOLATION LEVEL SNAPSHOT; BEGIN TRANSACTION;",
    )
    .await;
    let n = c.query("SELECT SUM(rows) FROM sys.partitions WHERE object_id = OBJECT_ID(@P1) AND index_id IN (0, 1)", &[&"dbo.acct"]).await.unwrap().into_row().await.unwrap().unwrap();
    assert_eq!(n.get::<i64, _>(0), Some(2));
    let chunk = c.query("SELECT TOP 1000 [id], [owner], CAST([bal] AS decimal(19,4)) AS [bal] FROM [dbo].[acct] WHERE ([id] > @P1) ORDER BY [id]", &[&1i32]).await.unwrap().into_first_result().await.unwrap();
    assert_eq!(chunk.len(), 1);
    common::exec(&mut c, "COMMIT").await;
    sim.stop().await;
}

#[tokio::test]
async fn keyset_paging_reads_every_change_row_once_in_order() {
    use std::fmt::Write as _;
    let sim = common::start().await;
    let mut script = String::from(
        "CREATE DATABASE pg\nGO\nUSE pg\nCREATE TABLE dbo.t (id int NOT NULL PRIMARY KEY, v int NULL)\nEXEC sys.sp_cdc_enable_db\nEXEC sys.sp_cdc_enable_table @source_schema = N'dbo', @source_name = N't', @role_name = NULL\nGO\n",
    );
    for chunk in 0..20 {
        script.push_str("USE pg\nBEGIN TRAN\nINSERT INTO dbo.t VALUES ");
        for i in 0..1000 {
            if i > 0 {
                script.push(',');
            }
            write!(script, "({}, {i})", chunk * 1000 + i).unwrap();
        }
        script.push_str("\nUPDATE dbo.t SET v = v + 1 WHERE id % 10 = 0\nCOMMIT\nGO\n");
    }
    sim.run_script(&script).unwrap();
    sim.scan();
    let mut config = common::config(&sim, common::PASSWORD);
    config.database("pg");
    let mut c = common::connect_with(config).await.unwrap();
    let zero = vec![0u8; 10];
    let max = c
        .simple_query("SELECT sys.fn_cdc_get_max_lsn()")
        .await
        .unwrap()
        .into_row()
        .await
        .unwrap()
        .unwrap()
        .get::<&[u8], _>(0)
        .unwrap()
        .to_vec();
    let first = "SELECT TOP 700 [__$start_lsn], [__$seqval], [__$operation], [__$command_id], [id] FROM [cdc].[dbo_t_CT] \
        WHERE [__$start_lsn] >= @P1 AND [__$start_lsn] <= @P2 ORDER BY [__$start_lsn], [__$command_id], [__$seqval], [__$operation]";
    let next = "SELECT TOP 700 [__$start_lsn], [__$seqval], [__$operation], [__$command_id], [id] FROM [cdc].[dbo_t_CT] \
        WHERE [__$start_lsn] >= @P1 AND [__$start_lsn] <= @P2 AND ([__$start_lsn] > @P3 OR ([__$start_lsn] = @P3 AND ([__$command_id] > @P4 OR \
        ([__$command_id] = @P4 AND ([__$seqval] > @P5 OR ([__$seqval] = @P5 AND [__$operation] > @P6)))))) \
        ORDER BY [__$start_lsn], [__$command_id], [__$seqval], [__$operation]";
    let t = std::time::Instant::now();
    let mut all: Vec<(Vec<u8>, i32, Vec<u8>, i32)> = Vec::new();
    let mut page = c
        .query(first, &[&zero.as_slice(), &max.as_slice()])
        .await
        .unwrap()
        .into_first_result()
        .await
        .unwrap();
    loop {
        let n = page.len();
        for r in &page {
            all.push((
                r.get::<&[u8], _>(0).unwrap().to_vec(),
                r.get::<i32, _>(3).unwrap(),
                r.get::<&[u8], _>(1).unwrap().to_vec(),
                r.get::<i32, _>(2).unwrap(),
            ));
        }
        if n < 700 {
            break;
        }
        let (l, cmd, seq, op) = all.last().cloned().unwrap();
        page = c
            .query(
                next,
                &[
                    &zero.as_slice(),
                    &max.as_slice(),
                    &l.as_slice(),
                    &cmd,
                    &seq.as_slice(),
                    &op,
                ],
            )
            .await
            .unwrap()
            .into_first_result()
            .await
            .unwrap();
    }
    println!("paged {} change rows in {:?}", all.len(), t.elapsed());
    // 20 transactions of 1000 inserts; transaction k also updates the 100*k rows with
    // id % 10 = 0 inserted so far (a 3/4 pair each)
    assert_eq!(all.len(), 20 * 1000 + 2 * 100 * (20 * 21 / 2));
    assert!(
        all.windows(2).all(|w| w[0] < w[1]),
        "strictly increasing keyset, no row twice"
    );
    sim.stop().await;
}
