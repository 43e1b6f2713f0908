//! Options: the session's `SET` statements and `ALTER DATABASE ... SET`.

use sqlparser::ast::{TransactionIsolationLevel, TransactionMode};

use crate::engine::txn::Isolation;
use crate::error::{SqlError, SqlResult};
use crate::sql::exec::Exec;
use crate::sql::parse::name_parts;
use crate::value::Value;

impl Exec<'_> {
    /// `ALTER DATABASE { name | CURRENT } SET option [, ...]`: `ALLOW_SNAPSHOT_ISOLATION
    /// { ON | OFF }` changes what `sys.databases.snapshot_isolation_state` reports and whether
    /// SNAPSHOT transactions may run there; `READ_COMMITTED_SNAPSHOT { ON | OFF }` whether READ
    /// COMMITTED reads versions or waits for locks (`is_read_committed_snapshot_on`); the
    /// other options (recovery model, ...) are
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
        if let Some(at) = upper.iter().position(|o| o == "READ_COMMITTED_SNAPSHOT") {
            match upper.get(at + 1).map(String::as_str) {
                Some("ON") => d.read_committed_snapshot = true,
                Some("OFF") => d.read_committed_snapshot = false,
                other => return Err(SqlError::syntax(other.unwrap_or_default())),
            }
        }
        Ok(())
    }

    pub(crate) fn set(&mut self, set: sqlparser::ast::Set) -> SqlResult<()> {
        use sqlparser::ast::Set;
        match set {
            Set::SetTransaction { modes, .. } => {
                for m in modes {
                    if let TransactionMode::IsolationLevel(l) = m {
                        self.sess.isolation = match l {
                            TransactionIsolationLevel::Snapshot => Isolation::Snapshot,
                            TransactionIsolationLevel::RepeatableRead => Isolation::RepeatableRead,
                            TransactionIsolationLevel::Serializable => Isolation::Serializable,
                            TransactionIsolationLevel::ReadUncommitted => {
                                Isolation::ReadUncommitted
                            }
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
                    let source = values
                        .first()
                        .and_then(|e| self.static_type(e, &[]))
                        .map(|(t, _)| t);
                    let key = name.to_lowercase();
                    let ty = self.sess.vars.get(&key).map(|(t, _)| *t).ok_or_else(|| {
                        SqlError::new(137, format!("Must declare the scalar variable \"{name}\"."))
                    })?;
                    // A date/time value takes its type's default text (value::styles).
                    let v = crate::value::styles::coerce_from(v, source, &ty)?;
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
            // `SET LOCK_TIMEOUT n`, `SET DEADLOCK_PRIORITY LOW`: sqlparser's MsSql session
            // parameters, the value as text.
            Set::SetSessionParam(sqlparser::ast::SetSessionParamKind::Generic(g))
                if g.names.len() == 1 && g.names[0].eq_ignore_ascii_case("lock_timeout") =>
            {
                self.set_lock_timeout(&g.value)
            }
            Set::SetSessionParam(sqlparser::ast::SetSessionParamKind::Generic(g))
                if g.names.len() == 1 && g.names[0].eq_ignore_ascii_case("deadlock_priority") =>
            {
                self.set_deadlock_priority(&g.value)
            }
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

impl Exec<'_> {
    /// `SET LOCK_TIMEOUT n`: how many milliseconds a statement waits for a lock; -1 (the
    /// default) waits for ever, 0 not at all (SQL Server's SET LOCK_TIMEOUT page).
    fn set_lock_timeout(&mut self, value: &str) -> SqlResult<()> {
        self.sess.lock_timeout_ms = self.session_int(value)?;
        Ok(())
    }

    /// An integer session-option value as written: a literal or a variable.
    fn session_int(&mut self, value: &str) -> SqlResult<i64> {
        let v = value.trim();
        if v.starts_with('@') {
            let e = sqlparser::ast::Expr::Identifier(sqlparser::ast::Ident::new(v));
            return Ok(self.eval_const(&e)?.as_i64()?.unwrap_or(-1));
        }
        v.parse().map_err(|_| SqlError::syntax(v))
    }

    /// `SET DEADLOCK_PRIORITY { LOW | NORMAL | HIGH | n }`: LOW = -5, NORMAL = 0, HIGH = 5,
    /// n from -10 to 10 (SQL Server's SET DEADLOCK_PRIORITY page).
    fn set_deadlock_priority(&mut self, value: &str) -> SqlResult<()> {
        let p = match value.trim().to_uppercase().as_str() {
            "LOW" => -5,
            "NORMAL" => 0,
            "HIGH" => 5,
            _ => {
                let n = self.session_int(value)?;
                if !(-10..=10).contains(&n) {
                    // SQL Server refuses it; its error number is not recorded here.
                    return Err(SqlError::unsupported(format!("DEADLOCK_PRIORITY {n}")));
                }
                n as i32
            }
        };
        self.sess.deadlock_priority = p;
        Ok(())
    }
}
