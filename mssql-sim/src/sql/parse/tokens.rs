//! What the batch splitter and its forms share: the [`Segment`]s a batch is cut into, the
//! token helpers, and sqlparser's errors as SQL Server's syntax error (102).

use sqlparser::ast::{Expr, Statement};
use sqlparser::keywords::Keyword;
use sqlparser::tokenizer::Token;

use crate::error::SqlError;

/// A piece of a batch.
#[derive(Debug, Clone)]
pub(crate) enum Segment {
    Stmt(Box<Statement>),
    /// `EXEC name [@p =] value, ...`
    Exec {
        name: Vec<String>,
        args: Vec<(Option<String>, Expr)>,
    },
    /// `ALTER DATABASE name SET ...`: the database name as written (or `CURRENT`) and the
    /// words after it (`SET`, option names, `ON`/`OFF`, ...), interpreted by the executor.
    AlterDatabase {
        database: String,
        options: Vec<String>,
    },
    /// `SAVE { TRAN | TRANSACTION } name`: a savepoint (sqlparser knows only `SAVEPOINT`).
    Save(String),
    /// `RECONFIGURE [WITH OVERRIDE]`: installs what `sp_configure` set.
    Reconfigure,
    /// `CREATE TYPE [schema.]name FROM base_type [NULL | NOT NULL]`: an alias data type
    /// (sqlparser knows only PostgreSQL's CREATE TYPE forms). `base` is the base type as
    /// written; `nullable` is None when neither NULL nor NOT NULL was given.
    CreateType {
        name: Vec<String>,
        base: String,
        nullable: Option<bool>,
    },
}

pub(super) fn syntax_from(e: impl std::fmt::Display) -> SqlError {
    let msg = e.to_string();
    // sqlparser says "Expected: ..., found: X at Line..."; SQL Server says near 'X'.
    let near = msg
        .split("found: ")
        .nth(1)
        .map(|s| s.split(" at Line").next().unwrap_or(s).trim().to_string())
        .unwrap_or_else(|| msg.clone());
    let mut e = SqlError::syntax(&near);
    e.message = format!("{} ({msg})", e.message);
    e
}

pub(super) fn is_statement_start(kw: Keyword) -> bool {
    matches!(
        kw,
        Keyword::SELECT
            | Keyword::INSERT
            | Keyword::UPDATE
            | Keyword::DELETE
            | Keyword::EXEC
            | Keyword::EXECUTE
            | Keyword::CREATE
            | Keyword::DROP
            | Keyword::ALTER
            | Keyword::BEGIN
            | Keyword::COMMIT
            | Keyword::ROLLBACK
            | Keyword::SET
            | Keyword::USE
            | Keyword::DECLARE
            | Keyword::WITH
            | Keyword::IF
            | Keyword::PRINT
            | Keyword::TRUNCATE
    )
}

pub(super) fn skip_ws(tokens: &[Token], mut i: usize) -> usize {
    while matches!(tokens.get(i), Some(Token::Whitespace(_))) {
        i += 1;
    }
    i
}

pub(super) fn is_kw(t: Option<&Token>, kw: Keyword) -> bool {
    matches!(t, Some(Token::Word(w)) if w.keyword == kw && w.quote_style.is_none())
}

pub(super) fn word(s: &str) -> Token {
    Token::make_keyword(s)
}
