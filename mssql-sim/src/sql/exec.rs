//! Statement execution: batches, transactions, DDL and DML.
//!
//! - this file: the executor ([`Exec`]) and a batch's control flow — segments run in order,
//!   a statement that waits for a lock parks the rest of the batch ([`Pause`]), errors end
//!   or continue the batch as SQL Server's do; object name resolution.
//! - `statement`: one statement dispatched to the module that runs it.

mod statement;

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use sqlparser::ast::{Expr, Statement};

use crate::cdc::job;
use crate::cdc::state::Cdc;
use crate::engine::catalog::{Engine, TableRef};
use crate::engine::table::Table;
use crate::error::{SqlError, SqlResult};
use crate::faults::Control;
use crate::sql::out::Out;
use crate::sql::parse::{Segment, parse_batch};
use crate::sql::rel::Rel;
use crate::sql::session::{Session, Suspended};
use crate::value::Value;

/// Executes statements for one session against the shared engine.
pub(crate) struct Exec<'a> {
    pub(crate) eng: &'a mut Engine,
    /// The CDC state of every database, kept beside the engine.
    pub(crate) cdc: &'a mut Cdc,
    pub(crate) sess: &'a mut Session,
    pub(crate) ctl: &'a Control,
    pub(crate) out: Vec<Out>,
    pub(crate) ctes: Vec<HashMap<String, Rel>>,
    /// While an UPDATE/DELETE with FROM builds its joined rows: the target table (database
    /// and key), whose rows then carry their version index in a hidden column.
    pub(crate) dml_target: Option<(String, String)>,
    /// Whether a statement may wait for a lock (the caller then waits with the engine
    /// unlocked and runs it again); otherwise a lock wait fails at once with 1222.
    pub(crate) pausable: bool,
    /// Set when a statement stopped to wait for a lock: the lock epoch it saw.
    pub(crate) lock_wait: Option<u64>,
    /// Set when the session's own request closed a wait cycle and it is the victim.
    pub(crate) deadlocked: bool,
    /// How deep `run_segments` calls are nested (1 = the client's batch).
    depth: usize,
    /// While a SELECT's FROM is read: the primary-key values its WHERE pins down (a seek),
    /// so that a READ COMMITTED read waits only for those rows (sql/locking.rs).
    pub(crate) seek: Option<Seek>,
    /// While an UPDATE/DELETE scans: the first row (version index) in storage order that
    /// another open transaction holds, the holder and the table. The statement changes the
    /// rows before it, then waits there (sql/locking.rs).
    pub(crate) scan_stop: Option<(
        usize,
        crate::engine::txn::Xid,
        crate::engine::locks::TableId,
    )>,
}

/// The primary-key values a SELECT's WHERE pins down on its only table: a seek (sql/locking/seek.rs).
#[derive(Debug, Clone)]
pub(crate) struct Seek {
    /// (database, `key(schema, table)`) of the table.
    pub(crate) table: (String, String),
    /// The sought primary keys, as `Table::pk_key` forms them.
    pub(crate) keys: Vec<String>,
}

/// Why a batch stopped before its end, to go on later with the engine unlocked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pause {
    /// `WAITFOR DELAY`: go on after this long.
    Delay(Duration),
    /// The statement at the front waits for a lock: run it again once the lock epoch moved
    /// past `seen`, or fail it with 1222 at `deadline` (`SET LOCK_TIMEOUT`; none = never).
    Lock {
        seen: u64,
        deadline: Option<std::time::Instant>,
    },
}

impl<'a> Exec<'a> {
    pub(crate) fn new(
        eng: &'a mut Engine,
        cdc: &'a mut Cdc,
        sess: &'a mut Session,
        ctl: &'a Control,
    ) -> Self {
        Exec {
            eng,
            cdc,
            sess,
            ctl,
            out: Vec::new(),
            ctes: Vec::new(),
            dml_target: None,
            pausable: false,
            lock_wait: None,
            deadlocked: false,
            depth: 0,
            seek: None,
            scan_stop: None,
        }
    }

    /// Runs a whole batch. Errors become ERROR outputs; batch-aborting ones stop the batch.
    pub(crate) fn run_batch(&mut self, sql: &str) {
        let mut segs = self.parse_segments(sql);
        if let Some(Pause::Delay(_)) = self.run_segments(&mut segs) {
            // Only requests sent by a client can wait (the engine lock is released then).
            self.fail(SqlError::unsupported(
                "WAITFOR inside dynamic SQL or procedure calls",
            ));
        }
        // A lock wait inside stays in `lock_wait`: the enclosing statement is undone and the
        // client's request waits and runs it again.
    }

    /// Parses a batch; a syntax error becomes the batch's only output.
    pub(crate) fn parse_segments(&mut self, sql: &str) -> VecDeque<Segment> {
        match parse_batch(sql) {
            Ok(s) => s.into(),
            Err(e) => {
                self.fail(e);
                VecDeque::new()
            }
        }
    }

    /// Runs segments until the batch ends, reaches `WAITFOR DELAY` or a statement must wait
    /// for a lock; a pause says how to go on (the caller waits without holding the engine,
    /// then calls again with what is left of `segs`).
    pub(crate) fn run_segments(&mut self, segs: &mut VecDeque<Segment>) -> Option<Pause> {
        self.depth += 1;
        let r = self.run_segments_inner(segs);
        self.depth -= 1;
        r
    }

    fn run_segments_inner(&mut self, segs: &mut VecDeque<Segment>) -> Option<Pause> {
        let top = self.depth == 1;
        while let Some(seg) = segs.pop_front() {
            if top {
                self.eng.locks.waiting.remove(&self.sess.spid);
                if self.rolled_back_as_victim() {
                    segs.clear();
                    return None;
                }
                // A statement that waited runs again from its start.
                self.undo_suspended();
            }
            if let Segment::Stmt(s) = &seg
                && let Statement::WaitFor(w) = s.as_ref()
            {
                match self.wait_delay(w) {
                    Ok(d) => {
                        self.done(None);
                        return Some(Pause::Delay(d));
                    }
                    Err(e) => {
                        self.fail(e);
                        segs.clear();
                        return None;
                    }
                }
            }
            // What a statement that has to wait leaves behind is taken back before it runs
            // again: its outputs and its variable assignments (its row changes are undone).
            let retry = (top && self.pausable)
                .then(|| (seg.clone(), self.out.len(), self.sess.vars.clone()));
            let r = self.run_segment(seg);
            if let Some(seen) = self.lock_wait {
                if !top {
                    segs.clear();
                    return None;
                }
                self.lock_wait = None;
                if let Some((seg, outs, vars)) = retry {
                    self.out.truncate(outs);
                    self.sess.vars = vars;
                    segs.push_front(seg);
                    let since = *self
                        .sess
                        .lock_wait_since
                        .get_or_insert_with(std::time::Instant::now);
                    let deadline = u64::try_from(self.sess.lock_timeout_ms)
                        .ok()
                        .map(|ms| since + Duration::from_millis(ms));
                    return Some(Pause::Lock { seen, deadline });
                }
            }
            if top {
                self.sess.lock_wait_since = None;
            }
            if let Err(e) = r {
                if self.deadlocked {
                    self.deadlock_rollback();
                    self.fail(e);
                    segs.clear();
                    return None;
                }
                let aborts = e.aborts_batch;
                self.fail(e);
                if aborts {
                    segs.clear();
                    return None;
                }
            }
        }
        None
    }

    /// `WAITFOR DELAY 'hh:mm:ss[.fff]'`.
    fn wait_delay(&mut self, w: &sqlparser::ast::WaitForStatement) -> SqlResult<Duration> {
        if !matches!(w.wait_type, sqlparser::ast::WaitForType::Delay) {
            return Err(SqlError::unsupported("WAITFOR TIME"));
        }
        let text = self.eval_const(&w.expr)?.to_text().unwrap_or_default();
        let bad = || {
            SqlError::new(
                148,
                format!("Incorrect time syntax in time string '{text}' used with WAITFOR."),
            )
        };
        let t = chrono::NaiveTime::parse_from_str(text.trim(), "%H:%M:%S%.f")
            .or_else(|_| chrono::NaiveTime::parse_from_str(text.trim(), "%H:%M"))
            .map_err(|_| bad())?;
        use chrono::Timelike;
        Ok(Duration::from_secs(t.num_seconds_from_midnight() as u64)
            + Duration::from_nanos((t.nanosecond() % 1_000_000_000) as u64))
    }

    pub(crate) fn fail(&mut self, e: SqlError) {
        self.out.push(Out::Error(e));
        self.out.push(Out::Done {
            count: None,
            error: true,
        });
    }

    pub(crate) fn done(&mut self, count: Option<u64>) {
        let count = if self.sess.nocount { None } else { count };
        self.out.push(Out::Done {
            count,
            error: false,
        });
    }

    fn run_segment(&mut self, seg: Segment) -> SqlResult<()> {
        let text = segment_text(&seg);
        if let Some(f) = self.ctl.take_failure(&text) {
            return Err(f);
        }
        let r = self.run_segment_inner(seg);
        if self.ctl.take_scan_after(&text) {
            // The capture job runs right after this statement, before its reply goes out.
            job::scan(self.eng, self.cdc);
        }
        r
    }

    fn run_segment_inner(&mut self, seg: Segment) -> SqlResult<()> {
        if let Segment::Save(name) = &seg {
            let r = self.save_tran(name);
            if r.is_ok() {
                self.done(None);
            }
            return r;
        }
        if let Segment::Reconfigure = &seg {
            if self.sess.txn.as_ref().is_some_and(|t| t.explicit) {
                return Err(SqlError::new(
                    574,
                    "RECONFIGURE statement cannot be used inside a user transaction.",
                ));
            }
            if let Some(v) = self.eng.max_text_repl_size_pending.take() {
                self.eng.max_text_repl_size = v;
            }
            self.done(None);
            return Ok(());
        }
        if let Segment::AlterDatabase { database, options } = &seg {
            let r = self.alter_database(database, options);
            if r.is_ok() {
                self.done(None);
            }
            return r;
        }
        if let Segment::Stmt(s) = &seg {
            match s.as_ref() {
                Statement::StartTransaction { .. } => return self.begin_tran(),
                Statement::Commit { .. } => return self.commit_tran(),
                Statement::Rollback {
                    savepoint: Some(name),
                    ..
                } => return self.rollback_to_savepoint(&name.value),
                Statement::Rollback { .. } => return self.rollback_tran(),
                _ => {}
            }
        }
        let auto = self.sess.txn.is_none();
        if auto {
            self.begin_internal(false);
        }
        let mark = self.sess.txn.as_ref().map(|t| t.changes.len()).unwrap_or(0);
        self.sess.undo.clear();
        if let Some(t) = self.sess.txn.as_mut() {
            t.command_id += 1;
        }
        let r = match seg {
            Segment::Stmt(s) => self.statement(*s),
            Segment::Exec { name, args } => self.exec_proc(&name, args),
            Segment::CreateType {
                name,
                base,
                nullable,
            } => self.create_type(&name, &base, nullable),
            Segment::Save(_) | Segment::AlterDatabase { .. } | Segment::Reconfigure => Ok(()),
        };
        // A lock wait deep inside (dynamic SQL, a procedure) undoes the whole statement.
        let r = match r {
            Ok(()) if self.lock_wait.is_some() => Err(Self::lock_wait_signal()),
            r => r,
        };
        match r {
            Ok(()) => {
                if auto && self.sess.txn.as_ref().is_some_and(|t| !t.explicit) {
                    self.commit_internal();
                }
                Ok(())
            }
            // A statement of the client's request that waits keeps its changes (its locks)
            // while it waits; they are undone when the wait ends (`undo_suspended`).
            Err(e) if self.lock_wait.is_some() && self.depth == 1 && self.pausable => {
                self.sess.suspended = Some(Suspended { mark, auto });
                Err(e)
            }
            Err(e) => {
                self.undo_statement(mark);
                if auto && self.sess.txn.as_ref().is_some_and(|t| !t.explicit) {
                    self.abort_internal();
                }
                Err(e)
            }
        }
    }

    /// Runs a statement of a nested batch (sp_executesql) inside the current statement's
    /// transaction.
    pub(crate) fn run_nested(&mut self, seg: Segment) -> SqlResult<()> {
        match seg {
            Segment::Stmt(s) => self.statement(*s),
            Segment::Exec { name, args } => self.exec_proc(&name, args),
            Segment::Save(name) => self.save_tran(&name),
            Segment::AlterDatabase { database, options } => {
                self.alter_database(&database, &options)
            }
            Segment::Reconfigure => {
                if let Some(v) = self.eng.max_text_repl_size_pending.take() {
                    self.eng.max_text_repl_size = v;
                }
                Ok(())
            }
            Segment::CreateType {
                name,
                base,
                nullable,
            } => self.create_type(&name, &base, nullable),
        }
    }

    /// The statements of an RPC request, its parameters made the session's variables:
    /// `sp_executesql`'s statement, or one `EXEC` of a procedure called by name.
    pub(crate) fn rpc_segments(&mut self, req: crate::tds::rpc::RpcRequest) -> VecDeque<Segment> {
        let name = req.proc_name.to_lowercase();
        let mut params = req.params.into_iter().peekable();
        if name == "sp_executesql" || name.ends_with(".sp_executesql") {
            let stmt = params
                .next()
                .and_then(|p| p.value.to_text())
                .unwrap_or_default();
            if params.peek().is_some_and(|p| {
                let n = p.name.trim_start_matches('@').to_lowercase();
                n == "params" || (n.is_empty() && matches!(p.value, Value::Str(_) | Value::Null))
            }) {
                params.next();
            }
            for p in params {
                let ty = p.ty.unwrap_or_else(|| p.value.natural_type());
                self.sess.vars.insert(p.name.to_lowercase(), (ty, p.value));
            }
            return self.parse_segments(&stmt);
        }
        let mut args = Vec::new();
        for (i, p) in params.enumerate() {
            let var = format!("@__rpc{i}");
            let ty = p.ty.unwrap_or_else(|| p.value.natural_type());
            self.sess.vars.insert(var.clone(), (ty, p.value));
            let pname = if p.name.is_empty() {
                None
            } else {
                Some(p.name)
            };
            args.push((pname, Expr::Identifier(sqlparser::ast::Ident::new(var))));
        }
        let parts: Vec<String> = req
            .proc_name
            .split('.')
            .map(|s| s.trim_matches(|c| c == '[' || c == ']').to_string())
            .collect();
        VecDeque::from([Segment::Exec { name: parts, args }])
    }

    // ---- name resolution ---------------------------------------------------------------

    /// Resolves `[db.][schema.]name` against the session's database.
    pub(crate) fn resolve(&self, parts: &[String]) -> SqlResult<TableRef> {
        let (db, schema, name) = match parts {
            [n] => (self.sess.db.clone(), "dbo".to_string(), n.clone()),
            [s, n] => (self.sess.db.clone(), s.clone(), n.clone()),
            [d, s, n] => (
                d.clone(),
                if s.is_empty() {
                    "dbo".into()
                } else {
                    s.clone()
                },
                n.clone(),
            ),
            _ => return Err(SqlError::invalid_object(&parts.join("."))),
        };
        Ok(TableRef {
            db: db.to_lowercase(),
            schema,
            name,
            written: parts.join("."),
        })
    }

    pub(crate) fn table(&self, r: &TableRef) -> SqlResult<&Table> {
        self.snapshot_access(&r.db)?;
        self.eng
            .db(&r.db)?
            .table(&r.schema, &r.name)
            .ok_or_else(|| SqlError::invalid_object(&r.written))
    }

    pub(crate) fn table_mut(&mut self, r: &TableRef) -> SqlResult<&mut Table> {
        self.snapshot_access(&r.db)?;
        self.eng
            .db_mut(&r.db)?
            .table_mut(&r.schema, &r.name)
            .ok_or_else(|| SqlError::invalid_object(&r.written))
    }
}

fn segment_text(seg: &Segment) -> String {
    match seg {
        Segment::Stmt(s) => s.to_string(),
        Segment::Exec { name, .. } => format!("EXEC {}", name.join(".")),
        Segment::Save(name) => format!("SAVE TRANSACTION {name}"),
        Segment::AlterDatabase { database, options } => {
            format!("ALTER DATABASE {database} {}", options.join(" "))
        }
        Segment::Reconfigure => "RECONFIGURE".to_string(),
        Segment::CreateType { name, base, .. } => {
            format!("CREATE TYPE {} FROM {base}", name.join("."))
        }
    }
}
