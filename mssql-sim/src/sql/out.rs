//! What executing a batch produces: result sets, completions, errors, messages and
//! environment changes, in order; the server turns them into TDS tokens.

use crate::error::SqlError;
use crate::tds::tokens::ColumnMeta;
use crate::value::Value;

/// A result set.
#[derive(Debug, Clone)]
pub(crate) struct ResultSet {
    pub(crate) cols: Vec<ColumnMeta>,
    pub(crate) rows: Vec<Vec<Value>>,
}

/// ENVCHANGE notifications a statement causes.
#[derive(Debug, Clone)]
pub(crate) enum Env {
    Database { new: String, old: String },
    Begin(u64),
    Commit(u64),
    Rollback(u64),
}

/// What executing a batch produces, in order; the server turns it into tokens.
#[derive(Debug)]
pub(crate) enum Out {
    Rows(ResultSet),
    Done { count: Option<u64>, error: bool },
    Error(SqlError),
    Info(i32, String),
    Env(Env),
}
