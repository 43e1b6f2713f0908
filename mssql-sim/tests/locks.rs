//! Lock waits: where SQL Server makes a statement wait for another transaction's lock, the
//! simulator waits too — and ends the wait as SQL Server does (commit/rollback of the holder,
//! `SET LOCK_TIMEOUT` with 1222, the deadlock monitor with 1205, the client's cancel).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{Conn, connect, err_number, exec, message, try_exec};
use mssql_sim::Simulator;

const SETUP: &str = "CREATE DATABASE shop; USE shop;
    CREATE TABLE dbo.t (id int PRIMARY KEY, v int);
    CREATE TABLE dbo.u (id int PRIMARY KEY, v int);
    INSERT INTO dbo.t VALUES (1, 10), (2, 20);
    INSERT INTO dbo.u VALUES (1, 100), (2, 200);";

/// How long a test waits for a condition before it fails (never a synchronisation: every
/// wait ends as soon as its condition holds).
const PATIENCE: Duration = Duration::from_secs(20);

async fn session(sim: &Simulator) -> Conn {
    let mut c = connect(sim).await;
    exec(&mut c, "USE shop").await;
    c
}

/// A new session that has run `batch`.
async fn session_after(sim: &Simulator, batch: &str) -> Conn {
    let mut c = session(sim).await;
    exec(&mut c, batch).await;
    c
}

/// A new session under `SET LOCK_TIMEOUT timeout_ms` whose `sql` waits and fails with 1222;
/// the session, for what the test checks next.
async fn timed_out(sim: &Simulator, timeout_ms: u32, sql: &str) -> Conn {
    let mut c = session_after(sim, &format!("SET LOCK_TIMEOUT {timeout_ms}")).await;
    let e = try_exec(&mut c, sql).await.unwrap_err();
    assert_eq!(err_number(&e), 1222, "{sql}");
    c
}

async fn int(c: &mut Conn, sql: &str) -> Option<i32> {
    let rows = try_exec(c, sql).await.unwrap();
    rows.last()
        .and_then(|r| r.first())
        .and_then(|r| r.get::<i32, _>(0))
}

/// `sys.dm_tran_locks` rows with `request_status = 'WAIT'`: (resource_type, mode, session).
async fn waits(c: &mut Conn) -> Vec<(String, String, i32)> {
    let rows = try_exec(
        c,
        "SELECT resource_type, request_mode, request_session_id FROM sys.dm_tran_locks WHERE request_status = 'WAIT'",
    )
    .await
    .unwrap();
    rows[0]
        .iter()
        .map(|r| {
            (
                r.get::<&str, _>(0).unwrap().to_string(),
                r.get::<&str, _>(1).unwrap().to_string(),
                r.get::<i32, _>(2).unwrap(),
            )
        })
        .collect()
}

/// Waits (bounded) until session `spid` waits for a lock, as `sys.dm_tran_locks` shows it.
async fn until_waiting(observer: &mut Conn, spid: i32) -> (String, String) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        if let Some((ty, mode, _)) = waits(observer).await.into_iter().find(|w| w.2 == spid) {
            return (ty, mode);
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "session {spid} never waited for a lock"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A statement running on its own session in a task: the session back, and what it got.
type Waiting = tokio::task::JoinHandle<(Conn, tiberius::Result<Vec<Vec<tiberius::Row>>>)>;

/// Runs `sql` on session `c` in a task; the session's spid and the task.
async fn waiting(mut c: Conn, sql: &'static str) -> (i32, Waiting) {
    let spid = int(&mut c, "SELECT @@SPID").await.unwrap();
    let task = tokio::spawn(async move {
        let r = try_exec(&mut c, sql).await;
        (c, r)
    });
    (spid, task)
}

/// Runs `sql` on its own session in a task; the session's spid and the task.
async fn blocked(sim: &Simulator, sql: &'static str) -> (i32, Waiting) {
    waiting(session(sim).await, sql).await
}

/// The end of a waiting statement's task, within [`PATIENCE`].
async fn finished<T>(task: tokio::task::JoinHandle<T>) -> T {
    tokio::time::timeout(PATIENCE, task)
        .await
        .expect("the waiting statement never ended")
        .unwrap()
}

/// Session `holder` runs `holder_batch` (opening a transaction that holds a lock), then `sql`
/// runs on its own session and waits for it; once it waits, `holder` runs `end` (its COMMIT or
/// ROLLBACK). What `sql` got in the end.
async fn wait_for_holder(
    sim: &Simulator,
    observer: &mut Conn,
    holder_batch: &str,
    sql: &'static str,
    end: &str,
) -> tiberius::Result<Vec<Vec<tiberius::Row>>> {
    let mut holder = session(sim).await;
    exec(&mut holder, holder_batch).await;
    let (spid, task) = blocked(sim, sql).await;
    until_waiting(observer, spid).await;
    exec(&mut holder, end).await;
    finished(task).await.1
}

/// The first half of a two-session deadlock: session a runs `a_batch` (a transaction that
/// changes dbo.t row 1), session b runs `b_batch` (one that changes dbo.u row 1), then a asks
/// for dbo.u row 1 in a task and waits for b. Returns b, whose request for dbo.t row 1 closes
/// the cycle, and a's task.
async fn half_deadlock(
    sim: &Simulator,
    observer: &mut Conn,
    a_batch: &str,
    b_batch: &str,
) -> (Conn, Waiting) {
    let mut a = session(sim).await;
    let mut b = session(sim).await;
    exec(&mut a, a_batch).await;
    exec(&mut b, b_batch).await;
    let (a_spid, a_task) = waiting(a, "UPDATE dbo.u SET v = 102 WHERE id = 1").await;
    until_waiting(observer, a_spid).await;
    (b, a_task)
}

async fn setup() -> (Simulator, Conn) {
    let sim = common::start().await;
    let mut c = connect(&sim).await;
    exec(&mut c, SETUP).await;
    (sim, c)
}

#[tokio::test]
async fn a_writer_waits_for_a_tablock_holdlock_reader_until_it_commits_then_runs() {
    let (sim, mut observer) = setup().await;
    let mut reader = session_after(
        &sim,
        "BEGIN TRANSACTION; SELECT TOP (0) * FROM dbo.t WITH (TABLOCK, HOLDLOCK);",
    )
    .await;
    let (spid, writer) = blocked(&sim, "UPDATE dbo.t SET v = 11 WHERE id = 1").await;
    assert_eq!(
        until_waiting(&mut observer, spid).await,
        ("OBJECT".into(), "IX".into())
    );
    let blocking = int(
        &mut observer,
        &format!("SELECT blocking_session_id FROM sys.dm_exec_requests WHERE session_id = {spid}"),
    )
    .await;
    let reader_spid = int(&mut reader, "SELECT @@SPID").await;
    assert_eq!(blocking, reader_spid, "dm_exec_requests names the blocker");
    // While it waits, the reader still sees the old value, and the writer has not finished.
    assert_eq!(
        int(&mut reader, "SELECT v FROM dbo.t WHERE id = 1").await,
        Some(10)
    );
    assert!(!writer.is_finished());
    exec(&mut reader, "COMMIT TRANSACTION").await;
    let (_, r) = finished(writer).await;
    assert_eq!(
        r.unwrap().len(),
        0,
        "the UPDATE ran once the reader committed"
    );
    assert_eq!(
        int(&mut observer, "SELECT v FROM dbo.t WHERE id = 1").await,
        Some(11)
    );
    assert!(waits(&mut observer).await.is_empty());
    sim.stop().await;
}

#[tokio::test]
async fn tablock_holdlock_blocks_inserts_deletes_and_truncate_but_not_readers() {
    let (sim, mut observer) = setup().await;
    let mut holder = session_after(
        &sim,
        "BEGIN TRANSACTION; SELECT TOP (0) * FROM dbo.u WITH (TABLOCK, HOLDLOCK);",
    )
    .await;
    // A shared table lock lets readers through.
    assert_eq!(
        int(&mut observer, "SELECT COUNT(*) FROM shop.dbo.u").await,
        Some(2)
    );
    let mut spids = Vec::new();
    let mut tasks = Vec::new();
    for sql in [
        "INSERT INTO dbo.u VALUES (3, 300)",
        "DELETE FROM dbo.u WHERE id = 2",
        "TRUNCATE TABLE dbo.u",
    ] {
        let (spid, task) = blocked(&sim, sql).await;
        until_waiting(&mut observer, spid).await;
        spids.push(spid);
        tasks.push(task);
    }
    assert_eq!(waits(&mut observer).await.len(), 3);
    exec(&mut holder, "ROLLBACK TRANSACTION").await;
    for t in tasks {
        let (_, r) = finished(t).await;
        r.unwrap();
    }
    sim.stop().await;
}

#[tokio::test]
async fn tablockx_blocks_readers_except_nolock_and_snapshot_readers() {
    let (sim, mut observer) = setup().await;
    exec(
        &mut observer,
        "ALTER DATABASE shop SET ALLOW_SNAPSHOT_ISOLATION ON",
    )
    .await;
    let mut holder = session_after(
        &sim,
        "BEGIN TRANSACTION; SELECT TOP (0) * FROM dbo.t WITH (TABLOCKX);",
    )
    .await;
    let mut dirty = session(&sim).await;
    assert_eq!(
        int(&mut dirty, "SELECT COUNT(*) FROM dbo.t WITH (NOLOCK)").await,
        Some(2)
    );
    exec(
        &mut dirty,
        "SET TRANSACTION ISOLATION LEVEL READ UNCOMMITTED",
    )
    .await;
    assert_eq!(int(&mut dirty, "SELECT COUNT(*) FROM dbo.t").await, Some(2));
    let mut snap = session_after(&sim, "SET TRANSACTION ISOLATION LEVEL SNAPSHOT").await;
    assert_eq!(int(&mut snap, "SELECT COUNT(*) FROM dbo.t").await, Some(2));
    let (spid, reader) = blocked(&sim, "SELECT COUNT(*) FROM dbo.t").await;
    assert_eq!(
        until_waiting(&mut observer, spid).await,
        ("OBJECT".into(), "IS".into())
    );
    exec(&mut holder, "COMMIT TRANSACTION").await;
    let (_, r) = finished(reader).await;
    assert_eq!(r.unwrap()[0][0].get::<i32, _>(0), Some(2));
    sim.stop().await;
}

#[tokio::test]
async fn repeatable_read_blocks_updates_of_rows_it_read_but_not_inserts() {
    let (sim, mut observer) = setup().await;
    let mut reader = session_after(
        &sim,
        "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ; BEGIN TRANSACTION; SELECT * FROM dbo.t;",
    )
    .await;
    // Inserts are not rows it read: they go through (and show to its next read: a phantom).
    session_after(&sim, "INSERT INTO dbo.t VALUES (3, 30)").await;
    assert_eq!(
        int(&mut reader, "SELECT COUNT(*) FROM dbo.t").await,
        Some(3)
    );
    let (spid, update) = blocked(&sim, "UPDATE dbo.t SET v = 21 WHERE id = 2").await;
    assert_eq!(
        until_waiting(&mut observer, spid).await,
        ("KEY".into(), "X".into())
    );
    // Its read stays repeatable while the update waits.
    assert_eq!(
        int(&mut reader, "SELECT v FROM dbo.t WHERE id = 2").await,
        Some(20)
    );
    exec(&mut reader, "COMMIT TRANSACTION").await;
    let (_, r) = finished(update).await;
    r.unwrap();
    assert_eq!(
        int(&mut observer, "SELECT v FROM shop.dbo.t WHERE id = 2").await,
        Some(21)
    );
    sim.stop().await;
}

#[tokio::test]
async fn serializable_blocks_inserts_into_the_table_it_read() {
    let (sim, mut observer) = setup().await;
    let mut reader = session_after(
        &sim,
        "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE; BEGIN TRANSACTION; SELECT * FROM dbo.t;",
    )
    .await;
    let (spid, insert) = blocked(&sim, "INSERT INTO dbo.t VALUES (3, 30)").await;
    assert_eq!(
        until_waiting(&mut observer, spid).await,
        ("KEY".into(), "RangeI-N".into())
    );
    assert_eq!(
        int(&mut reader, "SELECT COUNT(*) FROM dbo.t").await,
        Some(2),
        "no phantom"
    );
    exec(&mut reader, "COMMIT TRANSACTION").await;
    let (_, r) = finished(insert).await;
    r.unwrap();
    assert_eq!(
        int(&mut observer, "SELECT COUNT(*) FROM shop.dbo.t").await,
        Some(3)
    );
    sim.stop().await;
}

#[tokio::test]
async fn a_writer_waits_for_another_open_transactions_change_of_the_same_row() {
    let (sim, mut observer) = setup().await;
    wait_for_holder(
        &sim,
        &mut observer,
        "BEGIN TRANSACTION; UPDATE dbo.t SET v = 12 WHERE id = 1;",
        "UPDATE dbo.t SET v = v + 1 WHERE id = 1",
        "COMMIT TRANSACTION",
    )
    .await
    .unwrap();
    // The waiting update ran after the first committed, on its value.
    assert_eq!(
        int(&mut observer, "SELECT v FROM shop.dbo.t WHERE id = 1").await,
        Some(13)
    );
    sim.stop().await;
}

#[tokio::test]
async fn an_insert_of_a_key_another_open_transaction_inserted_waits_for_its_outcome() {
    let (sim, mut observer) = setup().await;
    wait_for_holder(
        &sim,
        &mut observer,
        "BEGIN TRANSACTION; INSERT INTO dbo.t VALUES (5, 50);",
        "INSERT INTO dbo.t VALUES (5, 51)",
        "ROLLBACK TRANSACTION",
    )
    .await
    .unwrap();
    assert_eq!(
        int(&mut observer, "SELECT v FROM shop.dbo.t WHERE id = 5").await,
        Some(51)
    );
    sim.stop().await;
}

#[tokio::test]
async fn an_update_scan_waits_for_a_row_another_open_transaction_inserted_then_updates_it() {
    let (sim, mut observer) = setup().await;
    // SQL Server's UPDATE takes a U lock on each row its scan meets; the uncommitted insert
    // holds X on its row, so the update waits, then reads the committed row and changes it.
    wait_for_holder(
        &sim,
        &mut observer,
        "BEGIN TRANSACTION; INSERT INTO dbo.t VALUES (5, 50);",
        "UPDATE dbo.t SET v = v + 1 WHERE v > 15",
        "COMMIT TRANSACTION",
    )
    .await
    .unwrap();
    assert_eq!(
        int(&mut observer, "SELECT v FROM shop.dbo.t WHERE id = 5").await,
        Some(51)
    );
    assert_eq!(
        int(&mut observer, "SELECT v FROM shop.dbo.t WHERE id = 2").await,
        Some(21)
    );
    sim.stop().await;
}

#[tokio::test]
async fn a_delete_scan_meeting_another_open_transactions_insert_times_out_with_1222() {
    let (sim, _observer) = setup().await;
    let mut holder = session_after(
        &sim,
        "BEGIN TRANSACTION; INSERT INTO dbo.u VALUES (5, 500);",
    )
    .await;
    let mut deleter = timed_out(&sim, 0, "DELETE FROM dbo.u WHERE v < 150").await;
    // Nothing was deleted: the statement failed as a whole.
    assert_eq!(
        int(
            &mut deleter,
            "SELECT COUNT(*) FROM dbo.u WITH (NOLOCK) WHERE id = 1"
        )
        .await,
        Some(1)
    );
    // A seek on another key does not meet the inserted row and does not wait.
    exec(&mut deleter, "DELETE FROM dbo.u WHERE id = 1").await;
    exec(&mut holder, "ROLLBACK TRANSACTION").await;
    assert_eq!(
        int(&mut deleter, "SELECT COUNT(*) FROM dbo.u").await,
        Some(1)
    );
    sim.stop().await;
}

#[tokio::test]
async fn a_batch_with_a_table_variable_waits_for_a_lock_like_any_batch() {
    let (sim, mut observer) = setup().await;
    let rows = wait_for_holder(
        &sim,
        &mut observer,
        "BEGIN TRANSACTION; UPDATE dbo.t SET v = 11 WHERE id = 1;",
        "DECLARE @r TABLE (v int); INSERT INTO @r SELECT v FROM dbo.t WHERE id = 1; SELECT v FROM @r;",
        "COMMIT TRANSACTION",
    )
    .await
    .unwrap();
    // The read waited for the update's commit and saw its value.
    let last = rows
        .last()
        .and_then(|r| r.first())
        .and_then(|r| r.get::<i32, _>(0));
    assert_eq!(last, Some(11));
    // The variable's table is gone with the batch, as after any batch.
    assert_eq!(
        int(
            &mut observer,
            "SELECT COUNT(*) FROM tempdb.sys.tables WHERE name LIKE 'table[_]variable[_]%'"
        )
        .await,
        Some(0)
    );
    sim.stop().await;
}

#[tokio::test]
async fn a_waiting_autocommit_statement_keeps_its_changed_rows_and_can_be_the_deadlock_victim() {
    let (sim, mut observer) = setup().await;
    let mut holder = session_after(
        &sim,
        "BEGIN TRANSACTION; UPDATE dbo.t SET v = 21 WHERE id = 2;",
    )
    .await;
    // The autocommit update's scan changes row 1, then waits for row 2 — holding row 1.
    let scanner = session_after(&sim, "SET DEADLOCK_PRIORITY LOW").await;
    let (spid, scan) = waiting(scanner, "UPDATE dbo.t SET v = v + 1").await;
    until_waiting(&mut observer, spid).await;
    // The holder asks for row 1: a cycle; the LOW autocommit statement is the victim.
    exec(&mut holder, "UPDATE dbo.t SET v = 11 WHERE id = 1").await;
    let (_, r) = finished(scan).await;
    assert_eq!(err_number(&r.unwrap_err()), 1205);
    exec(&mut holder, "COMMIT TRANSACTION").await;
    assert_eq!(
        int(&mut observer, "SELECT v FROM shop.dbo.t WHERE id = 1").await,
        Some(11)
    );
    assert_eq!(
        int(&mut observer, "SELECT v FROM shop.dbo.t WHERE id = 2").await,
        Some(21)
    );
    sim.stop().await;
}

#[tokio::test]
async fn a_waiting_autocommit_statement_holds_the_rows_it_changed_and_runs_once_when_woken() {
    let (sim, mut observer) = setup().await;
    let mut holder = session_after(
        &sim,
        "BEGIN TRANSACTION; UPDATE dbo.t SET v = 21 WHERE id = 2;",
    )
    .await;
    let scanner = session(&sim).await;
    let (spid, scan) = waiting(scanner, "UPDATE dbo.t SET v = v + 1").await;
    until_waiting(&mut observer, spid).await;
    // Row 1 is held by the waiting statement: a NOLOCK read sees its change.
    assert_eq!(
        int(
            &mut observer,
            "SELECT v FROM shop.dbo.t WITH (NOLOCK) WHERE id = 1"
        )
        .await,
        Some(11)
    );
    exec(&mut holder, "ROLLBACK TRANSACTION").await;
    let (_, r) = finished(scan).await;
    r.unwrap();
    // Run again from its start once row 2 was free: each row once.
    assert_eq!(
        int(&mut observer, "SELECT SUM(v) FROM shop.dbo.t").await,
        Some(32)
    );
    sim.stop().await;
}

#[tokio::test]
async fn a_statement_whose_lock_wait_times_out_gives_back_the_rows_it_changed() {
    let (sim, mut observer) = setup().await;
    let mut holder = session_after(
        &sim,
        "BEGIN TRANSACTION; UPDATE dbo.t SET v = 21 WHERE id = 2;",
    )
    .await;
    // Changes row 1, waits for row 2 until the time-out: 1222, and row 1 is as it was.
    timed_out(&sim, 50, "UPDATE dbo.t SET v = v + 1").await;
    assert_eq!(
        int(
            &mut observer,
            "SELECT v FROM shop.dbo.t WITH (NOLOCK) WHERE id = 1"
        )
        .await,
        Some(10)
    );
    exec(&mut holder, "COMMIT TRANSACTION").await;
    assert_eq!(
        int(&mut observer, "SELECT v FROM shop.dbo.t WHERE id = 1").await,
        Some(10)
    );
    sim.stop().await;
}

#[tokio::test]
async fn lock_timeout_expiry_fails_the_statement_with_1222_and_keeps_the_transaction() {
    let (sim, _observer) = setup().await;
    let mut holder = session_after(
        &sim,
        "BEGIN TRANSACTION; SELECT TOP (0) * FROM dbo.t WITH (TABLOCK, HOLDLOCK);",
    )
    .await;
    let mut w = session(&sim).await;
    assert_eq!(
        int(&mut w, "SELECT @@LOCK_TIMEOUT").await,
        Some(-1),
        "the default"
    );
    exec(&mut w, "SET LOCK_TIMEOUT 200").await;
    assert_eq!(int(&mut w, "SELECT @@LOCK_TIMEOUT").await, Some(200));
    exec(
        &mut w,
        "BEGIN TRANSACTION; UPDATE dbo.u SET v = 101 WHERE id = 1;",
    )
    .await;
    let e = try_exec(&mut w, "UPDATE dbo.t SET v = 11 WHERE id = 1")
        .await
        .unwrap_err();
    assert_eq!(err_number(&e), 1222);
    assert_eq!(message(&e), "Lock request time out period exceeded.");
    match &e {
        tiberius::error::Error::Server(t) => assert_eq!(t.class(), 16),
        other => panic!("{other:?}"),
    }
    // 1222 ends the statement only: the transaction and its earlier change stay.
    assert_eq!(int(&mut w, "SELECT @@TRANCOUNT").await, Some(1));
    assert_eq!(
        int(&mut w, "SELECT v FROM dbo.u WHERE id = 1").await,
        Some(101)
    );
    // ... and the batch goes on after it.
    let rows = try_exec(
        &mut w,
        "SET LOCK_TIMEOUT 0; UPDATE dbo.t SET v = 11 WHERE id = 1; SELECT 7;",
    )
    .await;
    assert_eq!(
        err_number(&rows.unwrap_err()),
        1222,
        "0 = do not wait at all"
    );
    exec(&mut w, "COMMIT TRANSACTION").await;
    exec(&mut holder, "COMMIT TRANSACTION").await;
    assert_eq!(
        int(&mut w, "SELECT v FROM dbo.t WHERE id = 1").await,
        Some(10)
    );
    sim.stop().await;
}

#[tokio::test]
async fn a_statement_after_a_lock_timeout_in_the_same_batch_still_runs() {
    let (sim, mut observer) = setup().await;
    let mut holder = session_after(
        &sim,
        "BEGIN TRANSACTION; SELECT TOP (0) * FROM dbo.t WITH (TABLOCK, HOLDLOCK);",
    )
    .await;
    let mut w = session(&sim).await;
    // tiberius stops at the first error, so the batch's later effect is looked at afterwards.
    let _ = try_exec(
        &mut w,
        "SET LOCK_TIMEOUT 0; UPDATE dbo.t SET v = 11 WHERE id = 1; UPDATE dbo.u SET v = 102 WHERE id = 1;",
    )
    .await;
    assert_eq!(
        int(&mut observer, "SELECT v FROM shop.dbo.u WHERE id = 1").await,
        Some(102)
    );
    exec(&mut holder, "COMMIT TRANSACTION").await;
    sim.stop().await;
}

#[tokio::test]
async fn a_wait_cycle_makes_the_requester_the_deadlock_victim_and_rolls_it_back() {
    let (sim, mut observer) = setup().await;
    let (mut b, a_task) = half_deadlock(
        &sim,
        &mut observer,
        "BEGIN TRANSACTION; UPDATE dbo.t SET v = 11 WHERE id = 1;",
        "BEGIN TRANSACTION; UPDATE dbo.u SET v = 101 WHERE id = 1;",
    )
    .await;
    let b_spid = int(&mut b, "SELECT @@SPID").await.unwrap();
    // b closes the cycle; both changed one row at NORMAL priority: b, the requester, loses.
    let e = try_exec(&mut b, "UPDATE dbo.t SET v = 12 WHERE id = 1")
        .await
        .unwrap_err();
    assert_eq!(err_number(&e), 1205);
    assert_eq!(
        message(&e),
        format!(
            "Transaction (Process ID {b_spid}) was deadlocked on lock resources with another process and has been chosen as the deadlock victim. Rerun the transaction."
        )
    );
    assert_eq!(
        int(&mut b, "SELECT @@TRANCOUNT").await,
        Some(0),
        "rolled back"
    );
    let (mut a, r) = finished(a_task).await;
    r.unwrap();
    exec(&mut a, "COMMIT TRANSACTION").await;
    assert_eq!(
        int(&mut observer, "SELECT v FROM shop.dbo.u WHERE id = 1").await,
        Some(102)
    );
    assert_eq!(
        int(&mut observer, "SELECT v FROM shop.dbo.t WHERE id = 1").await,
        Some(11)
    );
    sim.stop().await;
}

#[tokio::test]
async fn the_deadlock_victim_is_the_session_with_the_lower_deadlock_priority() {
    let (sim, mut observer) = setup().await;
    let (mut b, a_task) = half_deadlock(
        &sim,
        &mut observer,
        "SET DEADLOCK_PRIORITY LOW; BEGIN TRANSACTION; UPDATE dbo.t SET v = 11 WHERE id = 1;",
        "BEGIN TRANSACTION; UPDATE dbo.u SET v = 101 WHERE id = 1;",
    )
    .await;
    // b closes the cycle, but a (LOW) is chosen: b's update goes through once a rolls back.
    exec(&mut b, "UPDATE dbo.t SET v = 12 WHERE id = 1").await;
    let (mut a, r) = finished(a_task).await;
    assert_eq!(err_number(&r.unwrap_err()), 1205);
    assert_eq!(int(&mut a, "SELECT @@TRANCOUNT").await, Some(0));
    exec(&mut b, "COMMIT TRANSACTION").await;
    assert_eq!(
        int(&mut observer, "SELECT v FROM shop.dbo.t WHERE id = 1").await,
        Some(12)
    );
    assert_eq!(
        int(&mut observer, "SELECT v FROM shop.dbo.u WHERE id = 1").await,
        Some(101)
    );
    sim.stop().await;
}

#[tokio::test]
async fn a_cancel_ends_a_lock_wait_and_leaves_the_transaction_open() {
    let (sim, mut observer) = setup().await;
    let mut holder = session_after(
        &sim,
        "BEGIN TRANSACTION; SELECT TOP (0) * FROM dbo.t WITH (TABLOCK, HOLDLOCK);",
    )
    .await;
    let mut w = session(&sim).await;
    let spid = int(&mut w, "SELECT @@SPID").await.unwrap();
    exec(
        &mut w,
        "BEGIN TRANSACTION; UPDATE dbo.u SET v = 101 WHERE id = 1;",
    )
    .await;
    {
        let update = try_exec(&mut w, "UPDATE dbo.t SET v = 11 WHERE id = 1");
        tokio::pin!(update);
        tokio::select! {
            r = &mut update => panic!("the update did not wait: {r:?}"),
            _ = until_waiting(&mut observer, spid) => {}
        }
    }
    w.cancel_query().await.unwrap();
    assert_eq!(int(&mut w, "SELECT @@TRANCOUNT").await, Some(1));
    assert!(waits(&mut observer).await.is_empty(), "the wait ended");
    exec(&mut holder, "COMMIT TRANSACTION").await;
    exec(&mut w, "COMMIT TRANSACTION").await;
    assert_eq!(
        int(&mut observer, "SELECT v FROM shop.dbo.t WHERE id = 1").await,
        Some(10),
        "cancelled"
    );
    assert_eq!(
        int(&mut observer, "SELECT v FROM shop.dbo.u WHERE id = 1").await,
        Some(101)
    );
    sim.stop().await;
}

#[tokio::test]
async fn a_session_that_closes_while_waiting_stops_waiting_and_rolls_back() {
    let (sim, mut observer) = setup().await;
    let mut holder = session_after(
        &sim,
        "BEGIN TRANSACTION; SELECT TOP (0) * FROM dbo.t WITH (TABLOCK, HOLDLOCK);",
    )
    .await;
    let (spid, task) = blocked(&sim, "BEGIN TRANSACTION; UPDATE dbo.u SET v = 1 WHERE id = 1; UPDATE dbo.t SET v = 1 WHERE id = 1").await;
    until_waiting(&mut observer, spid).await;
    task.abort();
    let _ = task.await;
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !waits(&mut observer).await.is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the wait outlived its connection"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Its transaction was rolled back: dbo.u is writable again and unchanged.
    exec(
        &mut observer,
        "SET LOCK_TIMEOUT 5000; UPDATE shop.dbo.u SET v = v WHERE id = 1",
    )
    .await;
    assert_eq!(
        int(&mut observer, "SELECT v FROM shop.dbo.u WHERE id = 1").await,
        Some(100)
    );
    exec(&mut holder, "COMMIT TRANSACTION").await;
    sim.stop().await;
}

#[tokio::test]
async fn run_script_cannot_wait_and_fails_with_1222() {
    let (sim, _observer) = setup().await;
    let mut holder = session_after(
        &sim,
        "BEGIN TRANSACTION; SELECT TOP (0) * FROM dbo.t WITH (TABLOCK, HOLDLOCK);",
    )
    .await;
    let e = sim
        .run_script("UPDATE shop.dbo.t SET v = 0 WHERE id = 1")
        .unwrap_err();
    match e {
        mssql_sim::SimError::Sql(e) => assert_eq!(e.number, 1222),
        other => panic!("{other:?}"),
    }
    exec(&mut holder, "COMMIT TRANSACTION").await;
    sim.run_script("UPDATE shop.dbo.t SET v = 0 WHERE id = 1")
        .unwrap();
    sim.stop().await;
}

#[tokio::test]
async fn a_parameterised_statement_waits_too() {
    let (sim, mut observer) = setup().await;
    let mut holder = session_after(
        &sim,
        "BEGIN TRANSACTION; SELECT TOP (0) * FROM dbo.t WITH (TABLOCK, HOLDLOCK);",
    )
    .await;
    let mut w = session(&sim).await;
    let spid = int(&mut w, "SELECT @@SPID").await.unwrap();
    let task = tokio::spawn(async move {
        // tiberius sends parameters with sp_executesql (an RPC request).
        let r = w
            .execute("UPDATE dbo.t SET v = @P1 WHERE id = @P2", &[&13i32, &1i32])
            .await
            .map(|r| r.total());
        (w, r)
    });
    until_waiting(&mut observer, spid).await;
    exec(&mut holder, "COMMIT TRANSACTION").await;
    let (_, r) = finished(task).await;
    assert_eq!(r.unwrap(), 1);
    assert_eq!(
        int(&mut observer, "SELECT v FROM shop.dbo.t WHERE id = 1").await,
        Some(13)
    );
    sim.stop().await;
}

#[tokio::test]
async fn read_committed_readers_wait_for_rows_another_open_transaction_changed() {
    let (sim, mut observer) = setup().await;
    assert_eq!(
        int(
            &mut observer,
            "SELECT CAST(is_read_committed_snapshot_on AS int) FROM sys.databases WHERE name = 'shop'"
        )
        .await,
        Some(0),
        "OFF in a new database, as SQL Server creates them"
    );
    let mut writer = session_after(
        &sim,
        "BEGIN TRANSACTION; UPDATE dbo.t SET v = 11 WHERE id = 1;",
    )
    .await;
    let (spid, reader) = blocked(&sim, "SELECT v FROM dbo.t WHERE id = 1").await;
    assert_eq!(
        until_waiting(&mut observer, spid).await,
        ("KEY".into(), "S".into())
    );
    exec(&mut writer, "COMMIT TRANSACTION").await;
    let (_, r) = finished(reader).await;
    assert_eq!(
        r.unwrap()[0][0].get::<i32, _>(0),
        Some(11),
        "the committed value, after the wait"
    );
    sim.stop().await;
}

#[tokio::test]
async fn read_committed_snapshot_on_reads_the_last_committed_version_without_waiting() {
    let (sim, mut observer) = setup().await;
    exec(
        &mut observer,
        "ALTER DATABASE shop SET READ_COMMITTED_SNAPSHOT ON",
    )
    .await;
    assert_eq!(
        int(
            &mut observer,
            "SELECT CAST(is_read_committed_snapshot_on AS int) FROM sys.databases WHERE name = 'shop'"
        )
        .await,
        Some(1)
    );
    let mut writer = session_after(
        &sim,
        "BEGIN TRANSACTION; UPDATE dbo.t SET v = 11 WHERE id = 1;",
    )
    .await;
    let mut reader = session(&sim).await;
    assert_eq!(
        int(&mut reader, "SELECT v FROM dbo.t WHERE id = 1").await,
        Some(10)
    );
    // READCOMMITTEDLOCK asks for the locking behaviour back.
    let (spid, locking) = blocked(
        &sim,
        "SELECT v FROM dbo.t WITH (READCOMMITTEDLOCK) WHERE id = 1",
    )
    .await;
    until_waiting(&mut observer, spid).await;
    exec(&mut writer, "ROLLBACK TRANSACTION").await;
    let (_, r) = finished(locking).await;
    assert_eq!(r.unwrap()[0][0].get::<i32, _>(0), Some(10));
    sim.stop().await;
}

#[tokio::test]
async fn nolock_and_read_uncommitted_readers_read_changed_rows_without_waiting() {
    let (sim, _observer) = setup().await;
    let mut writer = session_after(
        &sim,
        "BEGIN TRANSACTION; UPDATE dbo.t SET v = 11 WHERE id = 1;",
    )
    .await;
    let mut reader = session(&sim).await;
    // They read the open transaction's change (a dirty read), as SQL Server's do.
    assert_eq!(
        int(
            &mut reader,
            "SELECT v FROM dbo.t WITH (NOLOCK) WHERE id = 1"
        )
        .await,
        Some(11)
    );
    exec(
        &mut reader,
        "SET TRANSACTION ISOLATION LEVEL READ UNCOMMITTED",
    )
    .await;
    assert_eq!(
        int(&mut reader, "SELECT v FROM dbo.t WHERE id = 1").await,
        Some(11)
    );
    exec(&mut writer, "INSERT INTO dbo.t VALUES (9, 90)").await;
    assert_eq!(
        int(&mut reader, "SELECT COUNT(*) FROM dbo.t").await,
        Some(3),
        "an uncommitted insert counts"
    );
    exec(&mut writer, "ROLLBACK TRANSACTION").await;
    assert_eq!(
        int(&mut reader, "SELECT v FROM dbo.t WHERE id = 1").await,
        Some(10),
        "rolled back"
    );
    sim.stop().await;
}

#[tokio::test]
async fn a_read_committed_seek_on_the_primary_key_waits_only_for_the_row_it_reads() {
    let (sim, mut observer) = setup().await;
    let mut writer = session_after(
        &sim,
        "BEGIN TRANSACTION; UPDATE dbo.t SET v = 11 WHERE id = 1;",
    )
    .await;
    let mut reader = session(&sim).await;
    // A wait is a failure here (1222), not a hang.
    exec(&mut reader, "SET LOCK_TIMEOUT 0").await;
    // Another key: SQL Server seeks past the locked row.
    assert_eq!(
        int(&mut reader, "SELECT v FROM dbo.t WHERE id = 2").await,
        Some(20)
    );
    exec(
        &mut reader,
        "DECLARE @k int = 2; SELECT v FROM dbo.t WHERE t.id = @k AND v > 0",
    )
    .await;
    // The locked key, or a scan, waits.
    let (spid, seek) = blocked(&sim, "SELECT v FROM dbo.t WHERE id = 1").await;
    until_waiting(&mut observer, spid).await;
    let (spid, scan) = blocked(&sim, "SELECT v FROM dbo.t WHERE v = 20").await;
    until_waiting(&mut observer, spid).await;
    exec(&mut writer, "COMMIT TRANSACTION").await;
    let (_, r) = finished(seek).await;
    assert_eq!(r.unwrap()[0][0].get::<i32, _>(0), Some(11));
    let (_, r) = finished(scan).await;
    assert_eq!(r.unwrap()[0][0].get::<i32, _>(0), Some(20));
    sim.stop().await;
}

#[tokio::test]
async fn among_equal_priorities_the_deadlock_victim_is_the_transaction_that_changed_fewer_rows() {
    let (sim, mut observer) = setup().await;
    exec(
        &mut observer,
        "CREATE TABLE shop.dbo.w (id int PRIMARY KEY)",
    )
    .await;
    // a changes one row; b changes three (and closes the cycle): a is cheaper to roll back.
    let (mut b, a_task) = half_deadlock(
        &sim,
        &mut observer,
        "BEGIN TRANSACTION; UPDATE dbo.t SET v = 11 WHERE id = 1;",
        "BEGIN TRANSACTION; UPDATE dbo.u SET v = 101 WHERE id = 1; INSERT INTO dbo.w VALUES (1), (2);",
    )
    .await;
    exec(&mut b, "UPDATE dbo.t SET v = 12 WHERE id = 1").await;
    let (mut a, r) = finished(a_task).await;
    assert_eq!(err_number(&r.unwrap_err()), 1205);
    assert_eq!(int(&mut a, "SELECT @@TRANCOUNT").await, Some(0));
    exec(&mut b, "COMMIT TRANSACTION").await;
    assert_eq!(
        int(&mut observer, "SELECT v FROM shop.dbo.t WHERE id = 1").await,
        Some(12)
    );
    sim.stop().await;
}
