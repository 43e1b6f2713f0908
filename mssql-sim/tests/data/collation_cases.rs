//! Collation cases recorded on SQL Server 2022, shared by tests/collations.rs and
//! tests/ground_truth.rs: Estuary's `TestCollation-CollatedCapture-*` keys and the orders
//! the server returned them in (ground truth rows 61/63), and Debezium's DBZ-7359 ids with
//! the keyset paging that skips 36 of them (ground truth C27).

// Each test crate uses part of this file.
#![allow(dead_code)]

use super::common::{Conn, exec};

/// The keys of Estuary's `TestCollation-CollatedCapture-*` tests, in insertion order.
pub(crate) const ESTUARY_KEYS: [&str; 34] = [
    "a?a 000",
    "a?b 000",
    "aaa 001",
    "aab 001",
    "aba 002",
    "abb 002",
    "aca 003",
    "acb 003",
    "a€a 004",
    "a€b 004",
    "aŠa 005",
    "aŠb 005",
    "a’a 006",
    "a’b 006",
    "a•a 007",
    "a•b 007",
    "aÀa 008",
    "aÀb 008",
    "aÁa 009",
    "aÁb 009",
    "aÂa 010",
    "aÂb 010",
    "aÖa 011",
    "aÖb 011",
    "a×a 012",
    "a×b 012",
    "aØa 013",
    "aØb 013",
    "aßa 014",
    "aßb 014",
    "a÷a 015",
    "a÷b 015",
    "aÿa 016",
    "aÿb 016",
];

/// `SELECT id ... ORDER BY id` of a varchar(32)/char(32) `SQL_Latin1_General_CP1_CI_AS` key
/// as SQL Server returned it (the SQL sort order; suffixes left off).
pub(crate) const SQL_SORT_ORDER: [&str; 34] = [
    "a?a", "a?b", "a€a", "a€b", "aŠa", "aŠb", "a’a", "a’b", "a•a", "a•b", "a×a", "a×b", "a÷a",
    "a÷b", "aaa", "aÀa", "aÁa", "aÂa", "aab", "aÀb", "aÁb", "aÂb", "aba", "abb", "aca", "acb",
    "aÖa", "aØa", "aÖb", "aØb", "aßa", "aßb", "aÿa", "aÿb",
];

/// The same for nvarchar(32)/nchar(32) (Unicode rules: Š as S, ß as "ss").
pub(crate) const UNICODE_ORDER: [&str; 34] = [
    "a?a", "a?b", "a’a", "a’b", "a×a", "a×b", "a÷a", "a÷b", "a•a", "a•b", "a€a", "a€b", "aaa",
    "aÀa", "aÁa", "aÂa", "aab", "aÀb", "aÁb", "aÂb", "aba", "abb", "aca", "acb", "aÖa", "aØa",
    "aÖb", "aØb", "aŠa", "aŠb", "aßa", "aßb", "aÿa", "aÿb",
];

pub(crate) async fn column(c: &mut Conn, sql: &str) -> Vec<String> {
    c.simple_query(sql)
        .await
        .unwrap()
        .into_first_result()
        .await
        .unwrap()
        .iter()
        .map(|r| r.get::<&str, _>(0).unwrap_or("NULL").to_string())
        .collect()
}

/// Creates Estuary's table with key type `ty` and returns `SELECT id ... ORDER BY id`, each
/// key without its ' 0NN' suffix (and char's padding).
pub(crate) async fn estuary_order(c: &mut Conn, ty: &str) -> Vec<String> {
    exec(
        c,
        &format!(
            "CREATE TABLE dbo.coll_{ty} (id {ty}(32) COLLATE SQL_Latin1_General_CP1_CI_AS PRIMARY KEY, data TEXT)"
        ),
    )
    .await;
    for pair in ESTUARY_KEYS.chunks(2) {
        exec(
            c,
            &format!(
                "INSERT INTO dbo.coll_{ty} VALUES ('{}', 'Row A'), ('{}', 'Row B')",
                pair[0], pair[1]
            ),
        )
        .await;
    }
    column(c, &format!("SELECT id FROM dbo.coll_{ty} ORDER BY id"))
        .await
        .iter()
        .map(|k| k.split(' ').next().unwrap_or_default().to_string())
        .collect()
}

/// Debezium's DBZ-7359 ids, in the order SQL Server sorts them as varchar
/// `SQL_Latin1_General_CP1_CI_AS`.
pub(crate) fn dbz_7359_ids() -> Vec<String> {
    include_str!("dbz_7359_ids.txt")
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(str::to_string)
        .collect()
}

/// Creates `dbo.dbz7359 (id <key_type> COLLATE SQL_Latin1_General_CP1_CI_AS PRIMARY KEY)`
/// holding the 575 ids (Debezium's test: `varchar(50)` and `char(50)`).
pub(crate) async fn dbz_7359_table(c: &mut Conn, key_type: &str) -> Vec<String> {
    let ids = dbz_7359_ids();
    exec(
        c,
        &format!(
            "CREATE TABLE dbo.dbz7359 (id {key_type} COLLATE SQL_Latin1_General_CP1_CI_AS NOT NULL PRIMARY KEY, data int)"
        ),
    )
    .await;
    for chunk in ids.chunks(100) {
        let values: Vec<String> = chunk.iter().map(|id| format!("('{id}', 1)")).collect();
        exec(
            c,
            &format!("INSERT INTO dbo.dbz7359 VALUES {}", values.join(", ")),
        )
        .await;
    }
    ids
}

/// Keyset paging as Debezium's incremental snapshot did before DBZ-7359: chunks of 250 by
/// `WHERE id > @P1 AND NOT (id > @P2) ORDER BY id`, @P2 the table's largest key read at the
/// start, both bound as `param` shapes a parameter. The keys read, without char padding.
pub(crate) async fn page_through(c: &mut Conn, param: &str) -> Vec<String> {
    let max = column(c, "SELECT TOP 1 id FROM dbo.dbz7359 ORDER BY id DESC").await;
    let max = max.first().cloned().unwrap_or_default();
    let mut seen = column(c, "SELECT TOP 250 id FROM dbo.dbz7359 ORDER BY id").await;
    let mut last = seen.last().cloned();
    while let Some(key) = last.take() {
        let (p1, p2) = (param.replace('@', "@P1"), param.replace('@', "@P2"));
        let sql = format!(
            "SELECT TOP 250 id FROM dbo.dbz7359 WHERE id > {p1} AND NOT (id > {p2}) ORDER BY id"
        );
        let page: Vec<String> = c
            .query(sql.as_str(), &[&key.as_str(), &max.as_str()])
            .await
            .unwrap()
            .into_first_result()
            .await
            .unwrap()
            .iter()
            .map(|r| r.get::<&str, _>(0).unwrap_or_default().to_string())
            .collect();
        last = page.last().cloned();
        seen.extend(page);
    }
    seen.iter().map(|k| k.trim_end().to_string()).collect()
}
