//! The lock DMVs: `sys.dm_tran_locks` and `sys.dm_exec_requests`, from the lock manager's
//! table locks and waiting requests.

use crate::engine::txn::TxStatus;
use crate::sql::exec::Exec;
use crate::value::{Len, SqlType, Value};

impl Exec<'_> {
    /// `sys.dm_tran_locks`: the table locks of open transactions (GRANT) and the requests
    /// that wait (WAIT). A waiting KEY request names the table's object id where SQL Server
    /// gives the index's hobt_id.
    pub(crate) fn dm_tran_locks(&self) -> (Vec<(&'static str, SqlType)>, Vec<Vec<Value>>) {
        let name = SqlType::NVarChar(Len::N(60));
        let cols = vec![
            ("resource_type", name),
            ("resource_database_id", SqlType::Int),
            ("resource_associated_entity_id", SqlType::BigInt),
            ("request_mode", name),
            ("request_type", name),
            ("request_status", name),
            ("request_session_id", SqlType::Int),
        ];
        let tt = &self.eng.txns;
        let text = |x: &str| Value::Str(x.to_string());
        let mut rows: Vec<Vec<Value>> = self
            .eng
            .locks
            .tables
            .iter()
            .filter(|l| tt.status(l.xid) == TxStatus::Active)
            .map(|l| {
                vec![
                    text("OBJECT"),
                    Value::Int(i64::from(l.database_id)),
                    Value::Int(i64::from(l.object_id)),
                    text(if l.exclusive { "X" } else { "S" }),
                    text("LOCK"),
                    text("GRANT"),
                    Value::Int(i64::from(l.spid)),
                ]
            })
            .collect();
        let mut waiting: Vec<_> = self.eng.locks.waiting.iter().collect();
        waiting.sort_by_key(|(spid, _)| **spid);
        for (spid, w) in waiting {
            rows.push(vec![
                text(w.resource_type),
                Value::Int(i64::from(w.table.0)),
                Value::Int(i64::from(w.table.1)),
                text(w.mode),
                text("LOCK"),
                text("WAIT"),
                Value::Int(i64::from(*spid)),
            ]);
        }
        (cols, rows)
    }

    /// `sys.dm_exec_requests` (some columns): the requests waiting for a lock, `suspended`
    /// with the session that blocks them and SQL Server's lock wait type (`LCK_M_<mode>`),
    /// and the session's own running request.
    pub(crate) fn dm_exec_requests(&self) -> (Vec<(&'static str, SqlType)>, Vec<Vec<Value>>) {
        let name = SqlType::NVarChar(Len::N(60));
        let cols = vec![
            ("session_id", SqlType::SmallInt),
            ("status", name),
            ("blocking_session_id", SqlType::SmallInt),
            ("wait_type", name),
        ];
        let text = |x: &str| Value::Str(x.to_string());
        let mut rows = vec![vec![
            Value::Int(i64::from(self.sess.spid)),
            text("running"),
            Value::Int(0),
            Value::Null,
        ]];
        let mut waiting: Vec<_> = self.eng.locks.waiting.iter().collect();
        waiting.sort_by_key(|(spid, _)| **spid);
        for (spid, w) in waiting {
            let blocker = self.eng.locks.spid_of(w.blocker).unwrap_or(0);
            rows.push(vec![
                Value::Int(i64::from(*spid)),
                text("suspended"),
                Value::Int(i64::from(blocker)),
                text(&format!("LCK_M_{}", w.mode.replace('-', "_"))),
            ]);
        }
        (cols, rows)
    }
}
