//! The crate's error type, and the SQL Server error a client sees on the wire.

use std::fmt;

/// Errors returned by the simulator's Rust API (start, stop, scenarios, faults).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SimError {
    /// Binding, accepting or talking on a socket failed.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    /// A T-SQL statement failed; carries the error SQL Server would have sent.
    #[error("{0}")]
    Sql(SqlError),
    /// A scenario or configuration was invalid.
    #[error("invalid input: {0}")]
    Invalid(String),
    /// A client sent bytes that are not valid TDS.
    #[error("protocol error: {0}")]
    Protocol(String),
}

impl From<SqlError> for SimError {
    fn from(e: SqlError) -> Self {
        SimError::Sql(e)
    }
}

/// An error as SQL Server reports it in an ERROR token: number, state, severity and text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqlError {
    /// The error number (e.g. 208 invalid object name, 2627 primary key violation).
    pub number: i32,
    /// The state byte SQL Server sends alongside the number.
    pub state: u8,
    /// Severity (class): 16 for user errors, 14 for login failures, 20+ closes the connection.
    pub class: u8,
    /// The message text.
    pub message: String,
    /// Whether the error aborts the rest of the batch (compile errors, most runtime
    /// errors) or only the statement (constraint violations), as SQL Server does.
    pub aborts_batch: bool,
}

impl SqlError {
    /// A batch-aborting error with severity 16 and state 1.
    pub fn new(number: i32, message: impl Into<String>) -> Self {
        SqlError {
            number,
            state: 1,
            class: 16,
            message: message.into(),
            aborts_batch: true,
        }
    }

    /// Error 201 (state 4): a procedure called without a required parameter, for system
    /// procedures and RPC calls alike.
    pub(crate) fn missing_parameter(proc_name: &str, param: &str) -> Self {
        SqlError::new(
            201,
            format!("Procedure or function '{proc_name}' expects parameter '@{param}', which was not supplied."),
        )
        .state(4)
    }

    /// Sets the state byte.
    pub fn state(mut self, state: u8) -> Self {
        self.state = state;
        self
    }

    /// Sets the severity.
    pub fn class(mut self, class: u8) -> Self {
        self.class = class;
        self
    }

    /// Marks the error as ending only the current statement.
    pub fn statement_only(mut self) -> Self {
        self.aborts_batch = false;
        self
    }

    /// Error 102: incorrect syntax.
    pub fn syntax(near: &str) -> Self {
        SqlError::new(102, format!("Incorrect syntax near '{near}'."))
            .state(1)
            .class(15)
    }

    /// Error 208: invalid object name.
    pub fn invalid_object(name: &str) -> Self {
        SqlError::new(208, format!("Invalid object name '{name}'.")).state(1)
    }

    /// Error 207: invalid column name.
    pub fn invalid_column(name: &str) -> Self {
        SqlError::new(207, format!("Invalid column name '{name}'.")).state(1)
    }

    /// Error 40000-range used by the simulator for T-SQL it does not implement.
    pub fn unsupported(what: impl fmt::Display) -> Self {
        SqlError::new(40517, format!("mssql-sim does not support {what}.")).state(1)
    }

    /// Error 245/8114-style conversion failure.
    pub fn conversion(msg: impl Into<String>) -> Self {
        SqlError::new(245, msg).state(1)
    }
}

impl fmt::Display for SqlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Msg {}, Level {}, State {}: {}",
            self.number, self.class, self.state, self.message
        )
    }
}

impl std::error::Error for SqlError {}

/// Result alias for statement execution.
pub(crate) type SqlResult<T> = Result<T, SqlError>;
