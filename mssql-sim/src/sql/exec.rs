//! Statement execution: batches, transactions, DDL and DML.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use sqlparser::ast::{
    DeclareAssignment, Expr, ObjectType, SetExpr, Statement, TransactionIsolationLevel,
    TransactionMode, Use,
};

use crate::cdc::capture;
use crate::cdc::state::Cdc;
use crate::engine::catalog::{Engine, TableRef, key, now};
use crate::engine::table::Table;
use crate::engine::txn::View;
use crate::engine::txn::{Isolation, Txn};
use crate::error::{SqlError, SqlResult};
use crate::faults::Control;
use crate::sql::out::{Env, Out};
use crate::sql::parse::{Segment, name_parts, parse_batch};
use crate::sql::rel::Rel;
use crate::sql::session::{Session, Undo};
use crate::value::{Value, coerce, parse_type};

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
}

static NEXT_DESCRIPTOR: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0x1000);

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
        }
    }

    /// Runs a whole batch. Errors become ERROR outputs; batch-aborting ones stop the batch.
    pub(crate) fn run_batch(&mut self, sql: &str) {
        let mut segs = self.parse_segments(sql);
        if self.run_segments(&mut segs).is_some() {
            // Only SQL batches sent by a client can wait (the engine lock is released then).
            self.fail(SqlError::unsupported(
                "WAITFOR inside sp_executesql or procedure calls",
            ));
        }
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

    /// Runs segments until the batch ends or reaches `WAITFOR DELAY`, whose delay it
    /// returns so the caller can wait without holding the engine.
    pub(crate) fn run_segments(&mut self, segs: &mut VecDeque<Segment>) -> Option<Duration> {
        while let Some(seg) = segs.pop_front() {
            if let Segment::Stmt(s) = &seg
                && let Statement::WaitFor(w) = s.as_ref()
            {
                match self.wait_delay(w) {
                    Ok(d) => {
                        self.done(None);
                        return Some(d);
                    }
                    Err(e) => {
                        self.fail(e);
                        segs.clear();
                        return None;
                    }
                }
            }
            if let Err(e) = self.run_segment(seg) {
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
            capture::scan(self.eng, self.cdc);
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
            Segment::Save(_) | Segment::AlterDatabase { .. } | Segment::Reconfigure => Ok(()),
        };
        match r {
            Ok(()) => {
                if auto && self.sess.txn.as_ref().is_some_and(|t| !t.explicit) {
                    self.commit_internal();
                }
                Ok(())
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
        }
    }

    // ---- transactions ------------------------------------------------------------------

    fn begin_internal(&mut self, explicit: bool) {
        let xid = self.eng.txns.begin();
        let descriptor = NEXT_DESCRIPTOR.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.sess.txn = Some(Txn {
            xid,
            explicit,
            snapshot: None,
            started_as: self.sess.isolation,
            descriptor,
            begin_time: now(),
            changes: Vec::new(),
            command_id: 0,
            begin_lsn: HashMap::new(),
            savepoint_lsn: HashMap::new(),
            last_lsn: HashMap::new(),
        });
    }

    pub(crate) fn begin_tran(&mut self) -> SqlResult<()> {
        match self.sess.txn.as_mut() {
            Some(t) => {
                // nested BEGIN TRAN only bumps @@TRANCOUNT in SQL Server; modelled as one level
                t.explicit = true;
            }
            None => {
                self.begin_internal(true);
                let d = self.sess.txn.as_ref().map(|t| t.descriptor).unwrap_or(0);
                self.out.push(Out::Env(Env::Begin(d)));
            }
        }
        self.done(None);
        Ok(())
    }

    /// `SAVE TRANSACTION name`: writes a savepoint record to the current database's log (and
    /// the transaction's begin record first if it has none there yet), as SQL Server does;
    /// outside a transaction it is error 628.
    pub(crate) fn save_tran(&mut self, _name: &str) -> SqlResult<()> {
        if !self.sess.txn.as_ref().is_some_and(|t| t.explicit) {
            return Err(SqlError::new(
                628,
                "Cannot issue SAVE TRANSACTION when there is no active transaction.",
            ));
        }
        let db = self.sess.db.clone();
        let d = self.eng.db_mut(&db)?;
        let begun = self
            .sess
            .txn
            .as_ref()
            .is_some_and(|t| t.begin_lsn.contains_key(&db));
        let begin = (!begun).then(|| d.log.next());
        let lsn = d.log.next();
        if let Some(t) = self.sess.txn.as_mut() {
            if let Some(begin) = begin {
                t.begin_lsn.insert(db.clone(), begin);
            }
            t.savepoint_lsn.insert(db.clone(), lsn);
            t.last_lsn.insert(db, lsn);
        }
        self.remember_savepoint(_name);
        Ok(())
    }

    pub(crate) fn commit_tran(&mut self) -> SqlResult<()> {
        match &self.sess.txn {
            Some(t) if t.explicit => {
                let d = t.descriptor;
                self.commit_internal();
                self.out.push(Out::Env(Env::Commit(d)));
                self.done(None);
                Ok(())
            }
            _ => Err(SqlError::new(
                3902,
                "The COMMIT TRANSACTION request has no corresponding BEGIN TRANSACTION.",
            )),
        }
    }

    pub(crate) fn rollback_tran(&mut self) -> SqlResult<()> {
        match &self.sess.txn {
            Some(t) if t.explicit => {
                let d = t.descriptor;
                self.abort_internal();
                self.out.push(Out::Env(Env::Rollback(d)));
                self.done(None);
                Ok(())
            }
            _ => Err(SqlError::new(
                3903,
                "The ROLLBACK TRANSACTION request has no corresponding BEGIN TRANSACTION.",
            )),
        }
    }

    pub(crate) fn commit_internal(&mut self) {
        let Some(txn) = self.sess.txn.take() else {
            return;
        };
        let seq = self.eng.txns.commit(txn.xid);
        capture::log_commit(self.eng, self.cdc, txn);
        // Now and then, when no open transaction can need old row versions, drop them.
        if seq.is_multiple_of(512) && !self.eng.txns.any_active() {
            let tt = &self.eng.txns;
            for db in self.eng.dbs.values_mut() {
                for t in db.tables.values_mut() {
                    t.vacuum(tt);
                }
            }
        }
    }

    pub(crate) fn abort_internal(&mut self) {
        if let Some(txn) = self.sess.txn.take() {
            self.eng.txns.abort(txn.xid);
        }
    }

    /// A Transaction Manager request (MS-TDS 2.2.6.9): begin (with an isolation level),
    /// commit or roll back, as tiberius's `begin_transaction` & co. send them.
    pub(crate) fn run_tm(&mut self, payload: &[u8]) {
        let r = (|| -> SqlResult<()> {
            let mut rd = crate::tds::types::Reader::new(payload);
            let bad = |_| SqlError::new(102, "Malformed transaction manager request.");
            crate::tds::rpc::skip_all_headers(&mut rd).map_err(bad)?;
            match rd.u16().map_err(bad)? {
                5 => {
                    match rd.u8().map_err(bad)? {
                        // MS-TDS 2.2.6.9 TM_BEGIN_XACT isolation levels.
                        0 => {}
                        1 | 2 => self.sess.isolation = Isolation::ReadCommitted,
                        3 => self.sess.isolation = Isolation::RepeatableRead,
                        4 => self.sess.isolation = Isolation::Serializable,
                        _ => self.sess.isolation = Isolation::Snapshot,
                    }
                    self.begin_tran()
                }
                t @ (7 | 8) => {
                    let _name = rd.b_varchar().map_err(bad)?;
                    let begin_again = rd.u8().unwrap_or(0) & 1 == 1;
                    if t == 7 {
                        self.commit_tran()?
                    } else {
                        self.rollback_tran()?
                    }
                    if begin_again {
                        self.begin_tran()?;
                    }
                    Ok(())
                }
                other => Err(SqlError::unsupported(format!(
                    "transaction manager request type {other}"
                ))),
            }
        })();
        if let Err(e) = r {
            self.fail(e);
        }
    }

    /// Ends the session's transaction when the connection goes away.
    pub(crate) fn abort_open(&mut self) {
        self.abort_internal();
    }

    /// Runs an RPC request: `sp_executesql` (statement plus typed parameters) or a
    /// procedure called by name.
    pub(crate) fn run_rpc(&mut self, req: crate::tds::rpc::RpcRequest) {
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
            self.run_batch(&stmt);
            return;
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
        if let Err(e) = self.run_segment(Segment::Exec { name: parts, args }) {
            self.fail(e);
        }
    }

    fn undo_statement(&mut self, mark: usize) {
        let undo = std::mem::take(&mut self.sess.undo);
        for u in undo.into_iter().rev() {
            match u {
                Undo::Inserted { db, table, idx } => {
                    if let Some(v) = self
                        .eng
                        .dbs
                        .get_mut(&db)
                        .and_then(|d| d.tables.get_mut(&table))
                        .and_then(|t| t.versions.get_mut(idx))
                    {
                        v.xmin = u64::MAX; // an id that is never committed
                    }
                }
                Undo::Deleted { db, table, idx } => {
                    if let Some(v) = self
                        .eng
                        .dbs
                        .get_mut(&db)
                        .and_then(|d| d.tables.get_mut(&table))
                        .and_then(|t| t.versions.get_mut(idx))
                    {
                        v.xmax = 0;
                    }
                }
            }
        }
        if let Some(t) = self.sess.txn.as_mut() {
            t.changes.truncate(mark);
        }
    }

    /// The view a read in the current statement uses.
    pub(crate) fn view(&mut self) -> View {
        let latest = self.eng.txns.latest();
        // REPEATABLE READ and SERIALIZABLE read one consistent view too: without lock waits
        // that is what their locks would give the reader.
        let snapshot = matches!(
            self.sess.isolation,
            Isolation::Snapshot | Isolation::RepeatableRead | Isolation::Serializable
        );
        match self.sess.txn.as_mut() {
            Some(t) => {
                let as_of = if snapshot && t.explicit {
                    Some(*t.snapshot.get_or_insert(latest))
                } else {
                    None
                };
                View { own: t.xid, as_of }
            }
            None => View {
                own: 0,
                as_of: None,
            },
        }
    }

    pub(crate) fn xid(&self) -> u64 {
        self.sess.txn.as_ref().map(|t| t.xid).unwrap_or(0)
    }

    /// Whether a statement of the session may touch database `db`'s tables under the session's
    /// isolation level. Under SNAPSHOT: error 3951 when the transaction began under another
    /// level, 3952 when the database does not allow snapshot isolation. Texts: SQL Server's
    /// sys.messages (language 1033) for 3951 and 3952, `%.*ls` = the database name.
    pub(crate) fn snapshot_access(&self, db: &str) -> SqlResult<()> {
        if self.sess.isolation != Isolation::Snapshot {
            return Ok(());
        }
        let d = self.eng.db(db)?;
        if self
            .sess
            .txn
            .as_ref()
            .is_some_and(|t| t.started_as != Isolation::Snapshot)
        {
            return Err(SqlError::new(
                3951,
                format!(
                    "Transaction failed in database '{}' because the statement was run under snapshot isolation but the transaction did not start in snapshot isolation. You cannot change the isolation level of the transaction to snapshot after the transaction has started unless the transaction was originally started under snapshot isolation level.",
                    d.name
                ),
            ));
        }
        if !d.allow_snapshot_isolation {
            return Err(SqlError::new(
                3952,
                format!(
                    "Snapshot isolation transaction failed accessing database '{}' because snapshot isolation is not allowed in this database. Use ALTER DATABASE to allow snapshot isolation.",
                    d.name
                ),
            ));
        }
        Ok(())
    }

    /// `ALTER DATABASE { name | CURRENT } SET option [, ...]`: `ALLOW_SNAPSHOT_ISOLATION
    /// { ON | OFF }` changes what `sys.databases.snapshot_isolation_state` reports and whether
    /// SNAPSHOT transactions may run there; the other options (recovery model, ...) are
    /// accepted and change nothing in the simulator. Inside a user transaction it is error 226,
    /// for an unknown database 5011, as on SQL Server.
    pub(crate) fn alter_database(&mut self, name: &str, options: &[String]) -> SqlResult<()> {
        if self.sess.txn.as_ref().is_some_and(|t| t.explicit) {
            return Err(SqlError::new(
                226,
                "ALTER DATABASE statement not allowed within multi-statement transaction.",
            ));
        }
        let name = if name.eq_ignore_ascii_case("current") {
            self.sess.db.clone()
        } else {
            name.to_string()
        };
        let d = self.eng.db_mut(&name).map_err(|_| {
            SqlError::new(
                5011,
                format!("User does not have permission to alter database '{name}', the database does not exist, or the database is not in a state that allows access checks."),
            )
            .class(14)
            .state(7)
        })?;
        let upper: Vec<String> = options.iter().map(|o| o.to_uppercase()).collect();
        if let Some(at) = upper.iter().position(|o| o == "ALLOW_SNAPSHOT_ISOLATION") {
            match upper.get(at + 1).map(String::as_str) {
                Some("ON") => d.allow_snapshot_isolation = true,
                Some("OFF") => d.allow_snapshot_isolation = false,
                other => return Err(SqlError::syntax(other.unwrap_or_default())),
            }
        }
        Ok(())
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

    // ---- statements --------------------------------------------------------------------

    fn statement(&mut self, s: Statement) -> SqlResult<()> {
        match s {
            // Inside IF blocks (`IF @@TRANCOUNT > 0 ROLLBACK TRANSACTION`, as cleanup scripts do).
            Statement::StartTransaction { .. } => self.begin_tran(),
            Statement::Commit { .. } => self.commit_tran(),
            Statement::Rollback {
                savepoint: Some(name),
                ..
            } => self.rollback_to_savepoint(&name.value),
            Statement::Rollback { .. } => self.rollback_tran(),
            Statement::Query(q) if assigns_variables(&q) => {
                // `SELECT @a = expr, ...`: the last row's values go into the variables.
                let rel = self.query(&q)?;
                let n = rel.rows.len() as u64;
                if let Some(last) = rel.rows.last() {
                    for (c, v) in rel.cols.iter().zip(last) {
                        let key = c.name.to_lowercase();
                        let ty = self.sess.vars.get(&key).map(|(t, _)| *t).ok_or_else(|| {
                            SqlError::new(
                                137,
                                format!("Must declare the scalar variable \"{}\".", c.name),
                            )
                        })?;
                        let v = coerce(v.clone(), &ty)?;
                        self.sess.vars.insert(key, (ty, v));
                    }
                }
                self.sess.rowcount = n;
                self.done(Some(n));
                Ok(())
            }
            Statement::Query(q) => {
                let rel = self.query(&q)?;
                let rs = rel.into_result();
                let n = rs.rows.len() as u64;
                self.sess.rowcount = n;
                self.out.push(Out::Rows(rs));
                self.done(Some(n));
                Ok(())
            }
            Statement::Print(p) => {
                let msg = self.eval_const(&p.message)?.to_text().unwrap_or_default();
                self.out.push(Out::Info(0, msg));
                Ok(())
            }
            Statement::Throw(t) => {
                let number = match &t.error_number {
                    Some(e) => self.eval_const(e)?.as_i64()?.unwrap_or(50000) as i32,
                    None => {
                        return Err(SqlError::unsupported(
                            "THROW without arguments outside CATCH",
                        ));
                    }
                };
                let message = match &t.message {
                    Some(e) => self.eval_const(e)?.to_text().unwrap_or_default(),
                    None => String::new(),
                };
                let state = match &t.state {
                    Some(e) => self.eval_const(e)?.as_i64()?.unwrap_or(1).clamp(0, 255) as u8,
                    None => 1,
                };
                Err(SqlError::new(number, message).state(state))
            }
            Statement::While(w) => {
                // The engine is held for the whole batch, so a loop that never ends would stop
                // every session: past a million rounds the simulator gives up.
                for _ in 0..1_000_000 {
                    let go = match &w.while_block.condition {
                        Some(c) => self.eval_const(c)?.as_bool() == Some(true),
                        None => false,
                    };
                    if !go {
                        return Ok(());
                    }
                    for st in w.while_block.conditional_statements.statements().clone() {
                        self.statement(st)?;
                    }
                }
                Err(SqlError::unsupported(
                    "WHILE loops of more than 1 000 000 rounds",
                ))
            }
            Statement::Insert(ins) => self.insert(ins),
            Statement::Update(u) => self.update(u),
            Statement::Delete(d) => self.delete(d),
            Statement::CreateTable(ct) => self.create_table(ct),
            Statement::CreateIndex(ci) => self.create_index(ci),
            Statement::AlterTable(at) => self.alter_table(at),
            Statement::If(ifs) => {
                let mut blocks = vec![&ifs.if_block];
                blocks.extend(ifs.elseif_blocks.iter());
                for b in blocks {
                    let cond = match &b.condition {
                        Some(c) => self.eval_const(c)?.as_bool() == Some(true),
                        None => true,
                    };
                    if cond {
                        for st in b.conditional_statements.statements().clone() {
                            self.statement(st)?;
                        }
                        return Ok(());
                    }
                }
                if let Some(b) = &ifs.else_block {
                    for st in b.conditional_statements.statements().clone() {
                        self.statement(st)?;
                    }
                }
                Ok(())
            }
            Statement::Drop {
                object_type: ObjectType::Database,
                if_exists,
                names,
                ..
            } => {
                for n in &names {
                    let name = name_parts(n).join(".").to_lowercase();
                    if self.sess.db == name {
                        return Err(SqlError::new(
                            3702,
                            format!(
                                "Cannot drop database \"{name}\" because it is currently in use."
                            ),
                        ));
                    }
                    if matches!(name.as_str(), "master" | "tempdb" | "model" | "msdb") {
                        return Err(SqlError::new(
                            3708,
                            format!(
                                "Cannot drop the database '{name}' because it is a system database."
                            ),
                        ));
                    }
                    self.cdc.forget(&name);
                    if self.eng.dbs.remove(&name).is_none() && !if_exists {
                        return Err(SqlError::new(
                            3701,
                            format!(
                                "Cannot drop the database '{name}', because it does not exist or you do not have permission."
                            ),
                        ));
                    }
                }
                self.done(None);
                Ok(())
            }
            Statement::Drop {
                object_type,
                if_exists,
                names,
                ..
            } => {
                if object_type != ObjectType::Table {
                    return Err(SqlError::unsupported(format!("DROP {object_type}")));
                }
                for n in &names {
                    let r = self.resolve(&name_parts(n))?;
                    let db = self.eng.db_mut(&r.db)?;
                    let k = key(&r.schema, &r.name);
                    let tracked = self
                        .cdc
                        .db(&db.name)
                        .is_some_and(|c| db.tables.get(&k).is_some_and(|t| c.tracks(t.object_id)));
                    // Dropping a tracked table drops its capture instances with it, change
                    // tables and metadata included (Microsoft's "What is change data capture"
                    // page; ground truth C14).
                    if tracked {
                        capture::disable_table(
                            self.eng, self.cdc, &r.db, &r.schema, &r.name, "all",
                        )?;
                    }
                    let db = self.eng.db_mut(&r.db)?;
                    if db.tables.remove(&k).is_none() && !if_exists {
                        return Err(SqlError::new(
                            3701,
                            format!(
                                "Cannot drop the table '{}', because it does not exist or you do not have permission.",
                                r.name
                            ),
                        ));
                    }
                }
                self.done(None);
                Ok(())
            }
            Statement::CreateDatabase { db_name, .. } => {
                let parts = name_parts(&db_name);
                self.eng
                    .create_db(parts.last().map(String::as_str).unwrap_or_default())?;
                self.done(None);
                Ok(())
            }
            Statement::CreateSchema { schema_name, .. } => {
                let name = schema_name.to_string();
                let db = self.eng.db_mut(&self.sess.db.clone())?;
                let id = db.schemas.iter().map(|s| s.0).max().unwrap_or(4) + 1;
                db.schemas.push((id.max(5), name));
                self.done(None);
                Ok(())
            }
            Statement::Use(u) => {
                let n = match u {
                    Use::Object(n) | Use::Database(n) | Use::Catalog(n) | Use::Schema(n) => n,
                    other => return Err(SqlError::unsupported(format!("{other}"))),
                };
                let name = name_parts(&n).join(".");
                let real = self.eng.db(&name).map_err(|_| {
                    SqlError::new(911, format!("Database '{name}' does not exist. Make sure that the name is entered correctly.")).state(1)
                })?.name.clone();
                let old = std::mem::replace(&mut self.sess.db, real.to_lowercase());
                let old_name = self.eng.db(&old).map(|d| d.name.clone()).unwrap_or(old);
                self.out.push(Out::Env(Env::Database {
                    new: real.clone(),
                    old: old_name,
                }));
                self.out.push(Out::Info(
                    5701,
                    format!("Changed database context to '{real}'."),
                ));
                self.done(None);
                Ok(())
            }
            Statement::Set(set) => self.set(set),
            Statement::Declare { stmts, .. } => {
                for d in stmts {
                    let ty = match &d.data_type {
                        Some(t) => parse_type(&t.to_string())?,
                        None => return Err(SqlError::unsupported("DECLARE without a type")),
                    };
                    let init = match &d.assignment {
                        Some(DeclareAssignment::Expr(e))
                        | Some(DeclareAssignment::Default(e))
                        | Some(DeclareAssignment::MsSqlAssignment(e)) => {
                            let v = self.eval_const(e)?;
                            coerce(v, &ty)?
                        }
                        _ => Value::Null,
                    };
                    for n in &d.names {
                        self.sess
                            .vars
                            .insert(n.value.to_lowercase(), (ty, init.clone()));
                    }
                }
                Ok(())
            }
            Statement::Execute {
                name: Some(name),
                parameters,
                ..
            } => {
                let args = parameters
                    .into_iter()
                    .map(|p| match p {
                        Expr::BinaryOp {
                            left,
                            op: sqlparser::ast::BinaryOperator::Eq,
                            right,
                        } => match *left {
                            Expr::Identifier(i) if i.value.starts_with('@') => {
                                (Some(i.value), *right)
                            }
                            l => (
                                None,
                                Expr::BinaryOp {
                                    left: Box::new(l),
                                    op: sqlparser::ast::BinaryOperator::Eq,
                                    right,
                                },
                            ),
                        },
                        e => (None, e),
                    })
                    .collect();
                self.exec_proc(&name_parts(&name), args)
            }
            Statement::Truncate(t) => {
                for tn in &t.table_names {
                    let r = self.resolve(&name_parts(&tn.name))?;
                    // Truncation is not logged row by row, so the capture job could not see
                    // it: SQL Server refuses it on tables with a capture instance (4711).
                    let tracked = {
                        let t = self.table(&r)?;
                        let id = t.object_id;
                        self.eng.db(&r.db)?;
                        self.cdc.tracks(&r.db, id)
                    };
                    if tracked {
                        return Err(SqlError::new(
                            4711,
                            format!(
                                "Cannot truncate table '{}' because it is published for replication or enabled for Change Data Capture.",
                                r.written
                            ),
                        ));
                    }
                    let view = self.view();
                    let tt = &self.eng.txns;
                    let own = self.xid();
                    let db = self
                        .eng
                        .dbs
                        .get_mut(&r.db)
                        .ok_or_else(|| SqlError::invalid_object(&r.name))?;
                    let t = db
                        .table_mut(&r.schema, &r.name)
                        .ok_or_else(|| SqlError::invalid_object(&r.name))?;
                    for i in t.visible(tt, &view) {
                        t.versions[i].xmax = own;
                    }
                }
                self.done(None);
                Ok(())
            }
            other => Err(SqlError::unsupported(format!(
                "the statement `{}`",
                other.to_string().chars().take(60).collect::<String>()
            ))),
        }
    }

    fn set(&mut self, set: sqlparser::ast::Set) -> SqlResult<()> {
        use sqlparser::ast::Set;
        match set {
            Set::SetTransaction { modes, .. } => {
                for m in modes {
                    if let TransactionMode::IsolationLevel(l) = m {
                        self.sess.isolation = match l {
                            // Without lock waits, REPEATABLE READ and SERIALIZABLE are served
                            // like SNAPSHOT: reads stay consistent, and a write conflict is an
                            // error instead of a wait.
                            TransactionIsolationLevel::Snapshot => Isolation::Snapshot,
                            TransactionIsolationLevel::RepeatableRead => Isolation::RepeatableRead,
                            TransactionIsolationLevel::Serializable => Isolation::Serializable,
                            _ => Isolation::ReadCommitted,
                        };
                    }
                }
                Ok(())
            }
            Set::SingleAssignment {
                variable, values, ..
            } => {
                let name = name_parts(&variable).join(".");
                if name.starts_with('@') {
                    let v = match values.first() {
                        Some(e) => self.eval_const(e)?,
                        None => Value::Null,
                    };
                    let key = name.to_lowercase();
                    let ty = self.sess.vars.get(&key).map(|(t, _)| *t).ok_or_else(|| {
                        SqlError::new(137, format!("Must declare the scalar variable \"{name}\"."))
                    })?;
                    let v = coerce(v, &ty)?;
                    self.sess.vars.insert(key, (ty, v));
                    return Ok(());
                }
                let on = values
                    .first()
                    .map(|v| v.to_string().eq_ignore_ascii_case("on"))
                    .unwrap_or(false);
                if name.eq_ignore_ascii_case("nocount") {
                    self.sess.nocount = on;
                }
                // Other session options (XACT_ABORT, ANSI_*, ...) are accepted and ignored.
                Ok(())
            }
            Set::MultipleAssignments { .. } => Ok(()),
            other => {
                let text = other.to_string();
                // `SET TRANSACTION ISOLATION LEVEL SNAPSHOT` in some forms, and session flags.
                if text.to_uppercase().contains("SNAPSHOT") {
                    self.sess.isolation = Isolation::Snapshot;
                }
                Ok(())
            }
        }
    }
}

/// Whether a query is a variable assignment (`SELECT @a = x, @b = y FROM ...`).
fn assigns_variables(q: &sqlparser::ast::Query) -> bool {
    match q.body.as_ref() {
        SetExpr::Select(s) => {
            !s.projection.is_empty()
                && s.projection.iter().all(|p| {
                    matches!(p, sqlparser::ast::SelectItem::ExprWithAlias { alias, .. } if alias.value.starts_with('@'))
                })
        }
        _ => false,
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
    }
}
