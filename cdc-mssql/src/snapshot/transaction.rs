//! Opening a snapshot's transaction at one point in time: the isolation chosen per
//! database (Debezium's `snapshot.isolation.mode`), and the LSN and commit time where
//! streaming takes over, read inside that transaction.

use crate::catalog;
use crate::connection::{self, Connection};
use crate::types::quote;
use crate::{Error, SnapshotIsolation, query};
use cdc_core::{Lsn, TableSchema};
use chrono::{DateTime, Utc};
use futures::FutureExt;
use std::sync::Arc;

/// Opens the snapshot transaction on `conn` and returns the hand-off LSN (`handoff`, or else
/// the log position of the read point) with its commit time, retrying the whole opening on a
/// new connection after a transient failure (a statement retried alone would run outside
/// the transaction), with the connection's reconnect schedule ([`connection::retry_schedule`]).
pub(super) async fn open_transaction_retrying(
    conn: &mut Connection,
    tables: &[Arc<TableSchema>],
    handoff: Option<Lsn>,
) -> Result<(Lsn, Option<DateTime<Utc>>), Error> {
    let mut waits = connection::retry_schedule(conn.config(), conn.config().max_retries);
    loop {
        let opened = async {
            let read_point = open_transaction(conn, tables).await?;
            let handoff = handoff.unwrap_or(read_point);
            Ok::<_, Error>((handoff, commit_time_at(conn, handoff).await?))
        };
        let e = match opened.await {
            Ok(opened) => return Ok(opened),
            Err(e) => e,
        };
        let Some(wait) = waits.next().filter(|_| e.is_transient()) else {
            return Err(e);
        };
        tracing::warn!(database = %conn.database(), error = %e, ?wait, "opening the snapshot transaction failed; retrying");
        conn.reset();
        tokio::time::sleep(wait).await;
    }
}

/// Opens the snapshot transaction and finds the log position of its read point: the LSN at
/// which streaming takes over. Every transaction that committed at or before it is in what
/// the snapshot reads; every later one is not.
///
/// `sys.fn_cdc_get_max_lsn()` cannot give that position: it is how far the asynchronous
/// capture job got, and rows committed before the snapshot but captured after it would
/// arrive twice. The log position comes from the transaction itself (the way Materialize's
/// SQL Server source does it): `SAVE TRANSACTION` writes a log record, and
/// `sys.dm_tran_database_transactions.database_transaction_most_recent_savepoint_lsn` of the
/// current transaction is its LSN (numeric form; needs VIEW SERVER STATE, or VIEW DATABASE
/// STATE on Azure SQL). Under `SNAPSHOT` isolation the read point is fixed by the first read
/// (a row of `cdc.change_tables`); a second connection holds shared table locks on the
/// captured tables while the read point and the savepoint are taken, so no write to them
/// commits in between, then lets go. Under `REPEATABLE READ` the snapshot transaction's own
/// locks, held to its end, do that.
pub(crate) async fn open_transaction(
    conn: &mut Connection,
    tables: &[Arc<TableSchema>],
) -> Result<Lsn, Error> {
    let isolation = effective_isolation(conn).await?;
    let locks: String = tables
        .iter()
        .map(|t| {
            format!(
                " SELECT TOP (0) * FROM {}.{} WITH (TABLOCK, HOLDLOCK);",
                quote(&t.id.schema),
                quote(&t.id.table)
            )
        })
        .collect();
    let mut fence = None;
    let mut begin = match isolation {
        SnapshotIsolation::Snapshot => {
            let mut fencing = conn.sibling();
            let sql = format!(
                "SET TRANSACTION ISOLATION LEVEL READ COMMITTED; BEGIN TRANSACTION;{locks}"
            );
            fencing
                .run_once("lock tables for the snapshot's read point", move |c| {
                    let sql = sql.clone();
                    async move { query::execute(c, &sql).await }.boxed()
                })
                .await?;
            fence = Some(fencing);
            "SET TRANSACTION ISOLATION LEVEL SNAPSHOT; BEGIN TRANSACTION; \
             SELECT TOP 1 object_id FROM cdc.change_tables;"
                .to_string()
        }
        // Shared locks on every captured table, taken before the read point and held to
        // the end of the snapshot: no table changes between its hand-off and its last row
        // (writers wait), as with Debezium's locking modes.
        SnapshotIsolation::RepeatableRead => {
            format!("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ; BEGIN TRANSACTION;{locks}")
        }
        SnapshotIsolation::ReadCommitted => {
            "SET TRANSACTION ISOLATION LEVEL READ COMMITTED; BEGIN TRANSACTION;".to_string()
        }
    };
    begin.push_str(" SAVE TRANSACTION cdc_rs_snapshot;");
    let opened = async {
        conn.run_once("begin snapshot", move |c| {
            let begin = begin.clone();
            async move { query::execute(c, &begin).await }.boxed()
        })
        .await?;
        conn.run_once("snapshot read point", |c| {
            query::batch_rows(c, query::SAVEPOINT_LSN).boxed()
        })
        .await
    }
    .await;
    if let Some(mut fence) = fence {
        // Rolling back releases the locks; a failure only means the connection is gone,
        // which releases them too.
        let _ = fence
            .run_once("release the snapshot's table locks", |c| {
                query::execute(c, "ROLLBACK TRANSACTION").boxed()
            })
            .await;
        fence.close().await;
    }
    let rows = opened?;
    let numeric = rows
        .first()
        .and_then(|r| r.try_get::<tiberius::numeric::Numeric, _>(0).ok().flatten())
        .ok_or_else(|| {
            Error::protocol(
                "sys.dm_tran_database_transactions",
                "no savepoint LSN for the snapshot transaction",
            )
        })?;
    lsn_from_numeric(numeric).ok_or_else(|| {
        Error::protocol(
            "sys.dm_tran_database_transactions",
            format!("{numeric} is not a numeric LSN"),
        )
    })
}

/// `sys.databases.snapshot_isolation_state` of the current database: 0 OFF, 1 ON, 2 in
/// transition to OFF, 3 in transition to ON (only 1 lets a SNAPSHOT transaction read).
const SNAPSHOT_ISOLATION_STATE: &str =
    "SELECT snapshot_isolation_state FROM sys.databases WHERE name = DB_NAME()";

/// The isolation the snapshot uses in the connection's database: the configured one, or
/// else SNAPSHOT where the database allows it and REPEATABLE READ where it does not.
async fn effective_isolation(conn: &mut Connection) -> Result<SnapshotIsolation, Error> {
    let configured = conn.config().snapshot_isolation;
    if let Some(isolation) = configured
        && isolation != SnapshotIsolation::Snapshot
    {
        // Locking modes work on every database: nothing to look up.
        return Ok(isolation);
    }
    let rows = conn
        .run("sys.databases", |c| {
            query::batch_rows(c, SNAPSHOT_ISOLATION_STATE).boxed()
        })
        .await?;
    let state = rows
        .first()
        .map(|r| catalog::int(r, 0))
        .transpose()
        .map_err(|e| Error::protocol("sys.databases.snapshot_isolation_state", e.to_string()))?
        .ok_or_else(|| {
            Error::protocol(
                "sys.databases",
                format!("no row for database {:?}", conn.database()),
            )
        })?;
    let state = u8::try_from(state).map_err(|_| {
        Error::protocol(
            "sys.databases.snapshot_isolation_state",
            format!("{state} is not a state"),
        )
    })?;
    choose_isolation(configured, state, conn.database())
}

/// The choice [`effective_isolation`] makes, given the database's `snapshot_isolation_state`.
fn choose_isolation(
    configured: Option<SnapshotIsolation>,
    state: u8,
    database: &str,
) -> Result<SnapshotIsolation, Error> {
    let allowed = state == 1;
    match configured {
        Some(SnapshotIsolation::Snapshot) if !allowed => Err(Error::SnapshotIsolationNotAllowed {
            database: database.to_string(),
            state,
            statement: format!(
                "ALTER DATABASE {} SET ALLOW_SNAPSHOT_ISOLATION ON;",
                quote(database)
            ),
        }),
        Some(isolation) => Ok(isolation),
        None if allowed => Ok(SnapshotIsolation::Snapshot),
        None => Ok(SnapshotIsolation::RepeatableRead),
    }
}

/// An LSN from its numeric(25,0) form (VLF × 10^15 + block × 10^5 + slot), as the
/// `sys.dm_tran_*` views show it; Microsoft's `fn_convertnumericlsntobinary` template takes
/// it apart the same way.
fn lsn_from_numeric(n: tiberius::numeric::Numeric) -> Option<Lsn> {
    if n.scale() != 0 || n.value() < 0 {
        return None;
    }
    let v = n.value();
    let vlf = u32::try_from(v / 1_000_000_000_000_000).ok()?;
    let block = u32::try_from((v / 100_000) % 10_000_000_000).ok()?;
    let slot = u16::try_from(v % 100_000).ok()?;
    let mut bytes = [0u8; 10];
    bytes[..4].copy_from_slice(&vlf.to_be_bytes());
    bytes[4..8].copy_from_slice(&block.to_be_bytes());
    bytes[8..].copy_from_slice(&slot.to_be_bytes());
    Lsn::from_bytes(&bytes)
}

/// The commit time of the last transaction at or before `lsn` (`None` on a log with none):
/// snapshot rows carry it rather than the clock, so a snapshot re-read after a crash lands in
/// the same time partitions with the same bytes.
async fn commit_time_at(conn: &mut Connection, lsn: Lsn) -> Result<Option<DateTime<Utc>>, Error> {
    let at = lsn.to_bytes().to_vec();
    let rows = conn
        .run_once("cdc.lsn_time_mapping", move |c| {
            let at = at.clone();
            async move { query::rows(c, query::TIME_AT, &[&at]).await }.boxed()
        })
        .await?;
    Ok(rows
        .first()
        .and_then(|r| r.try_get::<chrono::NaiveDateTime, _>(0).ok().flatten())
        .map(|t| t.and_utc()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unset_isolation_is_snapshot_where_the_database_allows_it_else_repeatable_read() {
        assert_eq!(
            choose_isolation(None, 1, "shop").ok(),
            Some(SnapshotIsolation::Snapshot)
        );
        for state in [0, 2, 3] {
            assert_eq!(
                choose_isolation(None, state, "shop").ok(),
                Some(SnapshotIsolation::RepeatableRead)
            );
        }
    }

    #[test]
    fn configured_snapshot_on_a_database_without_it_is_a_typed_error_with_the_alter_database_statement()
     {
        match choose_isolation(Some(SnapshotIsolation::Snapshot), 0, "sh]op") {
            Err(Error::SnapshotIsolationNotAllowed {
                database,
                state,
                statement,
            }) => {
                assert_eq!(database, "sh]op");
                assert_eq!(state, 0);
                assert_eq!(
                    statement,
                    "ALTER DATABASE [sh]]op] SET ALLOW_SNAPSHOT_ISOLATION ON;"
                );
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            choose_isolation(Some(SnapshotIsolation::ReadCommitted), 0, "shop").ok(),
            Some(SnapshotIsolation::ReadCommitted)
        );
    }
}
