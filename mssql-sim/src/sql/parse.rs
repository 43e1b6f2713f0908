//! Turning a T-SQL batch into statements.
//!
//! sqlparser's MsSqlDialect parses most of what the simulator runs. `EXEC proc @a = 1, ...`
//! without a terminating semicolon, followed by another statement, is not parsed by it, so
//! EXEC statements are cut out at the token level here and handed over as
//! [`Segment::Exec`]; everything between them goes to sqlparser with semicolons optional.
//!
//! - this file: the batch splitter ([`parse_batch`]) and name helpers.
//! - `forms`: the T-SQL statements cut out whole (`EXEC`, `CREATE TYPE ... FROM`,
//!   `ALTER DATABASE ... SET`).
//! - `rewrite`: token rewrites into forms sqlparser parses, run before splitting.
//! - `clr`: `hierarchyid::Parse(...)` and the other CLR static calls as one function name.
//! - `tokens`: what they all share — [`Segment`], the token helpers, syntax errors.

mod clr;
mod forms;
mod rewrite;
mod tokens;

use sqlparser::ast::{Ident, ObjectName, ObjectNamePart};
use sqlparser::dialect::MsSqlDialect;
use sqlparser::keywords::Keyword;
use sqlparser::parser::{Parser, ParserOptions};
use sqlparser::tokenizer::{Token, Tokenizer};

use crate::error::{SqlError, SqlResult};
use forms::{alter_database_segment, create_type_from, parse_exec};
pub(crate) use rewrite::COMPUTED_TYPE;
use rewrite::{
    rewrite_alter_column, rewrite_compound_assignment, rewrite_computed_columns,
    rewrite_drop_columns_and_query_options, rewrite_index_and_dynamic_sql, rewrite_money_literals,
    rewrite_rollback_to_savepoint,
};
pub(crate) use tokens::Segment;
use tokens::{is_kw, is_statement_start, skip_ws, syntax_from};

/// Splits and parses a batch.
pub(crate) fn parse_batch(sql: &str) -> SqlResult<Vec<Segment>> {
    let dialect = MsSqlDialect {};
    let tokens = Tokenizer::new(&dialect, sql)
        .tokenize()
        .map_err(syntax_from)?;
    let tokens = rewrite_alter_column(tokens);
    let tokens = rewrite_rollback_to_savepoint(tokens);
    let tokens = rewrite_computed_columns(tokens);
    let tokens = rewrite_money_literals(tokens);
    let tokens = rewrite_index_and_dynamic_sql(tokens);
    let tokens = rewrite_compound_assignment(tokens);
    let tokens = rewrite_drop_columns_and_query_options(tokens);
    let tokens = clr::rewrite_clr_static_calls(tokens);
    let mut segments = Vec::new();
    let mut pending: Vec<Token> = Vec::new();
    let mut depth = 0i32;
    let mut i = 0;
    while i < tokens.len() {
        let t = &tokens[i];
        match t {
            Token::LParen => depth += 1,
            Token::RParen => depth -= 1,
            _ => {}
        }
        // ALTER DATABASE options (snapshot isolation, recovery model, ...) are cut out up to
        // the next statement and handed to the executor as words.
        if depth == 0
            && is_kw(Some(t), Keyword::ALTER)
            && is_kw(tokens.get(skip_ws(&tokens, i + 1)), Keyword::DATABASE)
        {
            flush(&dialect, &mut pending, &mut segments)?;
            let mut j = skip_ws(&tokens, i + 1) + 1;
            let start = j;
            let mut seen_set = false;
            while let Some(tok) = tokens.get(j) {
                match tok {
                    Token::SemiColon | Token::EOF => break,
                    Token::Word(w) if w.quote_style.is_none() && is_statement_start(w.keyword) => {
                        if w.keyword == Keyword::SET && !seen_set {
                            seen_set = true;
                        } else {
                            break;
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
            segments.push(alter_database_segment(&tokens[start..j]));
            i = j;
            continue;
        }
        // RECONFIGURE [WITH OVERRIDE]
        if depth == 0
            && matches!(t, Token::Word(w) if w.quote_style.is_none() && w.value.eq_ignore_ascii_case("reconfigure"))
        {
            flush(&dialect, &mut pending, &mut segments)?;
            let mut j = skip_ws(&tokens, i + 1);
            if is_kw(tokens.get(j), Keyword::WITH) {
                j = skip_ws(&tokens, j + 1) + 1;
            }
            segments.push(Segment::Reconfigure);
            i = j;
            continue;
        }
        // SAVE TRAN[SACTION] name
        if depth == 0
            && matches!(t, Token::Word(w) if w.quote_style.is_none() && w.value.eq_ignore_ascii_case("save"))
            && matches!(tokens.get(skip_ws(&tokens, i + 1)), Some(Token::Word(w)) if w.value.eq_ignore_ascii_case("tran") || w.value.eq_ignore_ascii_case("transaction"))
        {
            flush(&dialect, &mut pending, &mut segments)?;
            let at = skip_ws(&tokens, skip_ws(&tokens, i + 1) + 1);
            let Some(Token::Word(name)) = tokens.get(at) else {
                return Err(SqlError::syntax(
                    &tokens.get(at).map(|t| t.to_string()).unwrap_or_default(),
                ));
            };
            segments.push(Segment::Save(name.value.clone()));
            i = at + 1;
            continue;
        }
        // CREATE TYPE name FROM base_type [NULL | NOT NULL]
        if depth == 0
            && is_kw(Some(t), Keyword::CREATE)
            && is_kw(tokens.get(skip_ws(&tokens, i + 1)), Keyword::TYPE)
            && let Some((seg, next)) = create_type_from(&tokens, skip_ws(&tokens, i + 1) + 1)
        {
            flush(&dialect, &mut pending, &mut segments)?;
            segments.push(seg);
            i = next;
            continue;
        }
        let is_exec = matches!(t, Token::Word(w) if depth == 0 && (w.keyword == Keyword::EXEC || w.keyword == Keyword::EXECUTE));
        if !is_exec {
            pending.push(t.clone());
            i += 1;
            continue;
        }
        flush(&dialect, &mut pending, &mut segments)?;
        let (seg, next) = parse_exec(&dialect, &tokens, i + 1)?;
        segments.push(seg);
        i = next;
    }
    flush(&dialect, &mut pending, &mut segments)?;
    Ok(segments)
}

fn flush(
    dialect: &MsSqlDialect,
    pending: &mut Vec<Token>,
    out: &mut Vec<Segment>,
) -> SqlResult<()> {
    let meaningful = pending
        .iter()
        .any(|t| !matches!(t, Token::Whitespace(_) | Token::SemiColon | Token::EOF));
    if meaningful {
        let mut opts = ParserOptions::new();
        opts.require_semicolon_stmt_delimiter = false;
        let stmts = Parser::new(dialect)
            .with_options(opts)
            .with_tokens(std::mem::take(pending))
            .parse_statements()
            .map_err(syntax_from)?;
        out.extend(stmts.into_iter().map(|s| Segment::Stmt(Box::new(s))));
    }
    pending.clear();
    Ok(())
}

/// The identifier parts of an object name.
pub(crate) fn name_parts(n: &ObjectName) -> Vec<String> {
    n.0.iter()
        .map(|p| match p {
            ObjectNamePart::Identifier(i) => i.value.clone(),
            ObjectNamePart::Function(f) => f.name.value.clone(),
        })
        .collect()
}

/// Joins identifiers for messages.
pub(crate) fn ident_text(ids: &[Ident]) -> String {
    ids.iter()
        .map(|i| i.value.as_str())
        .collect::<Vec<_>>()
        .join(".")
}
