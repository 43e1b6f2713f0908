//! Options: the session's `SET` statements and `ALTER DATABASE ... SET`.

use sqlparser::ast::{TransactionIsolationLevel, TransactionMode};

use crate::engine::txn::Isolation;
use crate::error::{SqlError, SqlResult};
use crate::sql::exec::Exec;
use crate::sql::parse::name_parts;
use crate::value::{Value, coerce};

impl Exec<'_> {
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

    pub(crate) fn set(&mut self, set: sqlparser::ast::Set) -> SqlResult<()> {
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
