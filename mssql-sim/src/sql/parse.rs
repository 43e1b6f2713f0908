//! Turning a T-SQL batch into statements.
//!
//! sqlparser's MsSqlDialect parses most of what the simulator runs. `EXEC proc @a = 1, ...`
//! without a terminating semicolon, followed by another statement, is not parsed by it, so
//! EXEC statements are cut out at the token level here and handed over as
//! [`Segment::Exec`]; everything between them goes to sqlparser with semicolons optional.

use sqlparser::ast::{Expr, Ident, ObjectName, ObjectNamePart, Statement};
use sqlparser::dialect::MsSqlDialect;
use sqlparser::keywords::Keyword;
use sqlparser::parser::{Parser, ParserOptions};
use sqlparser::tokenizer::{Token, Tokenizer};

use crate::error::{SqlError, SqlResult};

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

fn syntax_from(e: impl std::fmt::Display) -> SqlError {
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

fn is_statement_start(kw: Keyword) -> bool {
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

fn skip_ws(tokens: &[Token], mut i: usize) -> usize {
    while matches!(tokens.get(i), Some(Token::Whitespace(_))) {
        i += 1;
    }
    i
}

/// Parses `name [arg [, arg]*]` starting at `i`; returns the segment and the next index.
fn parse_exec(
    dialect: &MsSqlDialect,
    tokens: &[Token],
    mut i: usize,
) -> SqlResult<(Segment, usize)> {
    i = skip_ws(tokens, i);
    let mut name = Vec::new();
    loop {
        match tokens.get(i) {
            Some(Token::Word(w)) => name.push(w.value.clone()),
            other => {
                return Err(SqlError::syntax(
                    &other.map(|t| t.to_string()).unwrap_or_default(),
                ));
            }
        }
        i += 1;
        if matches!(tokens.get(i), Some(Token::Period)) {
            i += 1;
            continue;
        }
        break;
    }
    let mut args = Vec::new();
    let j = skip_ws(tokens, i);
    let ends = |t: Option<&Token>| match t {
        None | Some(Token::EOF) | Some(Token::SemiColon) => true,
        Some(Token::Word(w)) => w.quote_style.is_none() && is_statement_start(w.keyword),
        _ => false,
    };
    if ends(tokens.get(j)) {
        return Ok((Segment::Exec { name, args }, j));
    }
    i = j;
    loop {
        i = skip_ws(tokens, i);
        // optional `@name =`
        let mut pname = None;
        if let Some(Token::Word(w)) = tokens.get(i) {
            let k = skip_ws(tokens, i + 1);
            if w.value.starts_with('@') && matches!(tokens.get(k), Some(Token::Eq)) {
                pname = Some(w.value.clone());
                i = skip_ws(tokens, k + 1);
            }
        }
        // the value: tokens up to a comma at depth 0, or the end of the statement
        let mut val = Vec::new();
        let mut depth = 0;
        let mut last_sig: Option<Token> = None;
        while i < tokens.len() {
            let t = &tokens[i];
            match t {
                Token::LParen => depth += 1,
                Token::RParen => depth -= 1,
                Token::Comma if depth == 0 => break,
                Token::SemiColon | Token::EOF if depth == 0 => break,
                Token::Whitespace(_) if depth == 0 && last_sig.is_some() => {
                    // A value ends at whitespace unless an operator continues it.
                    let k = skip_ws(tokens, i);
                    let continues = matches!(
                        tokens.get(k),
                        Some(
                            Token::Plus
                                | Token::Minus
                                | Token::Mul
                                | Token::Div
                                | Token::LParen
                                | Token::Period
                        )
                    ) || matches!(
                        last_sig,
                        Some(Token::Plus | Token::Minus | Token::Mul | Token::Div | Token::Period)
                    );
                    if !continues {
                        break;
                    }
                }
                _ => {}
            }
            if !matches!(t, Token::Whitespace(_)) {
                last_sig = Some(t.clone());
            }
            val.push(t.clone());
            i += 1;
        }
        // `OUTPUT` after a value marks an output parameter; accepted and ignored.
        let k = skip_ws(tokens, i);
        if let Some(Token::Word(w)) = tokens.get(k)
            && (w.keyword == Keyword::OUTPUT || w.keyword == Keyword::OUT)
        {
            i = k + 1;
        }
        let expr = Parser::new(dialect)
            .with_tokens(val)
            .parse_expr()
            .map_err(syntax_from)?;
        args.push((pname, expr));
        let k = skip_ws(tokens, i);
        if matches!(tokens.get(k), Some(Token::Comma)) {
            i = k + 1;
            continue;
        }
        return Ok((Segment::Exec { name, args }, k));
    }
}

/// `name FROM base_type [NULL | NOT NULL]` after `CREATE TYPE`, starting at `i`; None when
/// the statement is another CREATE TYPE form (left to sqlparser). Returns the segment and
/// the index after it.
fn create_type_from(tokens: &[Token], i: usize) -> Option<(Segment, usize)> {
    let mut i = skip_ws(tokens, i);
    let mut name = Vec::new();
    loop {
        let Some(Token::Word(w)) = tokens.get(i) else {
            return None;
        };
        name.push(w.value.clone());
        i += 1;
        if matches!(tokens.get(i), Some(Token::Period)) {
            i += 1;
            continue;
        }
        break;
    }
    i = skip_ws(tokens, i);
    if !is_kw(tokens.get(i), Keyword::FROM) {
        return None;
    }
    i += 1;
    let mut base = String::new();
    let mut nullable = None;
    let mut depth = 0i32;
    while let Some(t) = tokens.get(i) {
        match t {
            Token::LParen => depth += 1,
            Token::RParen => depth -= 1,
            Token::SemiColon | Token::EOF if depth == 0 => break,
            Token::Word(w) if depth == 0 && w.quote_style.is_none() => {
                if w.keyword == Keyword::NULL {
                    nullable = Some(true);
                    i += 1;
                    break;
                }
                if w.keyword == Keyword::NOT
                    && is_kw(tokens.get(skip_ws(tokens, i + 1)), Keyword::NULL)
                {
                    nullable = Some(false);
                    i = skip_ws(tokens, i + 1) + 1;
                    break;
                }
                if is_statement_start(w.keyword) && !base.trim().is_empty() {
                    break;
                }
            }
            _ => {}
        }
        base.push_str(&t.to_string());
        i += 1;
    }
    Some((
        Segment::CreateType {
            name,
            base: base.trim().to_string(),
            nullable,
        },
        i,
    ))
}

/// `ALTER DATABASE` from the tokens after `DATABASE`: the first word is the name, the other
/// non-blank tokens its options.
fn alter_database_segment(tokens: &[Token]) -> Segment {
    let mut words = tokens.iter().filter_map(|t| match t {
        Token::Whitespace(_) => None,
        Token::Word(w) => Some(w.value.clone()),
        other => Some(other.to_string()),
    });
    Segment::AlterDatabase {
        database: words.next().unwrap_or_default(),
        options: words.collect(),
    }
}

fn is_kw(t: Option<&Token>, kw: Keyword) -> bool {
    matches!(t, Some(Token::Word(w)) if w.keyword == kw && w.quote_style.is_none())
}

fn word(s: &str) -> Token {
    Token::make_keyword(s)
}

/// T-SQL's `ALTER TABLE t ALTER COLUMN c <type> [NULL | NOT NULL]` is not sqlparser
/// syntax; it becomes `... ALTER COLUMN c SET DATA TYPE <type>` followed by a second
/// `ALTER TABLE` that sets or drops NOT NULL (SQL Server makes the column nullable when
/// neither is written).
fn rewrite_alter_column(tokens: Vec<Token>) -> Vec<Token> {
    let sig: Vec<usize> = (0..tokens.len())
        .filter(|&i| !matches!(tokens[i], Token::Whitespace(_)))
        .collect();
    let at = |k: usize| sig.get(k).map(|&i| &tokens[i]);
    let mut out = Vec::with_capacity(tokens.len());
    let mut k = 0;
    let mut table_start: Option<usize> = None;
    while k < sig.len() {
        if is_kw(at(k), Keyword::ALTER) && is_kw(at(k + 1), Keyword::TABLE) {
            table_start = Some(k + 2);
        }
        let alter_col = is_kw(at(k), Keyword::ALTER)
            && is_kw(at(k + 1), Keyword::COLUMN)
            && !is_kw(at(k + 3), Keyword::SET)
            && !is_kw(at(k + 3), Keyword::DROP)
            && !is_kw(at(k + 3), Keyword::TYPE);
        let (Some(ts), true) = (table_start, alter_col) else {
            // keep the original token and the whitespace after it
            let end = sig.get(k + 1).copied().unwrap_or(tokens.len());
            out.extend_from_slice(&tokens[sig[k]..end]);
            k += 1;
            continue;
        };
        // table name tokens: from ts up to the ALTER keyword at k
        let table: Vec<Token> = (ts..k).filter_map(|j| at(j).cloned()).collect();
        let col = at(k + 2).cloned().unwrap_or(Token::EOF);
        for t in [
            word("ALTER"),
            word("COLUMN"),
            col.clone(),
            word("SET"),
            word("DATA"),
            word("TYPE"),
        ] {
            out.push(t);
            out.push(Token::Whitespace(sqlparser::tokenizer::Whitespace::Space));
        }
        // the type: a word, optionally followed by a parenthesised argument list
        let mut j = k + 3;
        if let Some(t) = at(j) {
            out.push(t.clone());
            j += 1;
        }
        if matches!(at(j), Some(Token::LParen)) {
            while let Some(t) = at(j) {
                out.push(t.clone());
                j += 1;
                if matches!(t, Token::RParen) {
                    break;
                }
            }
        }
        let not_null = is_kw(at(j), Keyword::NOT) && is_kw(at(j + 1), Keyword::NULL);
        if not_null {
            j += 2;
        } else if is_kw(at(j), Keyword::NULL) {
            j += 1;
        }
        out.push(Token::SemiColon);
        for t in [word("ALTER"), word("TABLE")] {
            out.push(t);
            out.push(Token::Whitespace(sqlparser::tokenizer::Whitespace::Space));
        }
        out.extend(table);
        out.push(Token::Whitespace(sqlparser::tokenizer::Whitespace::Space));
        let tail: &[&str] = if not_null {
            &["ALTER", "COLUMN", "", "SET", "NOT", "NULL"]
        } else {
            &["ALTER", "COLUMN", "", "DROP", "NOT", "NULL"]
        };
        for w in tail {
            out.push(if w.is_empty() { col.clone() } else { word(w) });
            out.push(Token::Whitespace(sqlparser::tokenizer::Whitespace::Space));
        }
        out.push(Token::SemiColon);
        table_start = None;
        k = j;
        if let Some(&i) = sig.get(k) {
            // whitespace between the rewritten part and what follows
            let prev = sig.get(k.wrapping_sub(1)).copied().unwrap_or(0);
            out.extend(tokens[prev + 1..i].iter().cloned());
        }
    }
    out
}

/// The type name a computed column carries after [`rewrite_computed_columns`]; DDL derives
/// the real type from the expression.
pub(crate) const COMPUTED_TYPE: &str = "__computed";

/// T-SQL's computed column `name AS (expr) [PERSISTED]` (in `CREATE TABLE` column lists and
/// after `ALTER TABLE ... ADD`) has no type, which sqlparser requires: it becomes
/// `name __computed GENERATED ALWAYS AS (expr)`.
fn rewrite_computed_columns(tokens: Vec<Token>) -> Vec<Token> {
    let sig: Vec<usize> = (0..tokens.len())
        .filter(|&i| !matches!(tokens[i], Token::Whitespace(_)))
        .collect();
    let at = |k: usize| sig.get(k).map(|&i| &tokens[i]);
    // Significant positions k of a column name followed by `AS (` that starts a column
    // definition: after `(` or `,` at depth 1 of a CREATE TABLE, or after ADD of ALTER TABLE.
    let mut starts = Vec::new();
    let mut in_create = false;
    let mut depth = 0i32;
    for k in 0..sig.len() {
        match at(k) {
            Some(Token::LParen) => depth += 1,
            Some(Token::RParen) => depth -= 1,
            Some(Token::SemiColon) => in_create = false,
            _ => {}
        }
        if is_kw(at(k), Keyword::CREATE) && is_kw(at(k + 1), Keyword::TABLE) && depth == 0 {
            in_create = true;
        }
        let column_start =
            (in_create && depth == 1 && matches!(at(k), Some(Token::LParen | Token::Comma)))
                || (depth == 0 && is_kw(at(k), Keyword::ADD));
        if column_start
            && matches!(at(k + 1), Some(Token::Word(_)))
            && is_kw(at(k + 2), Keyword::AS)
            && matches!(at(k + 3), Some(Token::LParen))
        {
            starts.push(k + 1);
        }
    }
    if starts.is_empty() {
        return tokens;
    }
    let mut out = Vec::with_capacity(tokens.len() + starts.len() * 6);
    let mut next = starts.into_iter().peekable();
    let mut skip_persisted = None;
    for (k, &i) in sig.iter().enumerate() {
        let from = if k == 0 { 0 } else { sig[k - 1] + 1 };
        if skip_persisted == Some(k) {
            skip_persisted = None;
            if matches!(&tokens[i], Token::Word(w) if w.value.eq_ignore_ascii_case("persisted")) {
                continue;
            }
        }
        out.extend(tokens[from..i].iter().cloned());
        if next.peek() == Some(&(k.wrapping_sub(1))) && is_kw(Some(&tokens[i]), Keyword::AS) {
            next.next();
            let space = Token::Whitespace(sqlparser::tokenizer::Whitespace::Space);
            for w in [COMPUTED_TYPE, "GENERATED", "ALWAYS", "AS"] {
                out.push(space.clone());
                out.push(word(w));
            }
            // `PERSISTED` after the closing parenthesis is dropped: the simulator stores every
            // computed value.
            let mut d = 0i32;
            for (j, &ti) in sig.iter().enumerate().skip(k + 1) {
                match tokens[ti] {
                    Token::LParen => d += 1,
                    Token::RParen => d -= 1,
                    _ => {}
                }
                if d == 0 {
                    skip_persisted = Some(j + 1);
                    break;
                }
            }
            continue;
        }
        out.push(tokens[i].clone());
    }
    if let Some(&last) = sig.last() {
        out.extend(tokens[last + 1..].iter().cloned());
    }
    out
}

/// T-SQL money literals (`$1234.29`, and `-$3148.29` through the minus operator) are numbers
/// with a currency symbol; sqlparser reads `$...` as a placeholder or variable name, so the
/// symbol is dropped and the number kept (money columns take it at 4 decimals).
fn rewrite_money_literals(tokens: Vec<Token>) -> Vec<Token> {
    tokens
        .into_iter()
        .map(|t| {
            let text = match &t {
                Token::Placeholder(p) => Some(p.as_str()),
                Token::Word(w) if w.quote_style.is_none() => Some(w.value.as_str()),
                _ => None,
            };
            match text.and_then(|x| x.strip_prefix('$')) {
                Some(n)
                    if !n.is_empty()
                        && n.chars().all(|c| c.is_ascii_digit() || c == '.')
                        && n.chars().filter(|&c| c == '.').count() <= 1 =>
                {
                    Token::Number(n.to_string(), false)
                }
                _ => t,
            }
        })
        .collect()
}

/// Two T-SQL forms sqlparser does not take: `CREATE [UNIQUE] {CLUSTERED | NONCLUSTERED}
/// INDEX` loses the (storage-only) clustering word, and dynamic SQL `EXEC ('...')` /
/// `EXECUTE (@sql)` becomes `EXEC sp_executesql (...)`, which runs the text as a batch of its
/// own, as EXEC does.
fn rewrite_index_and_dynamic_sql(tokens: Vec<Token>) -> Vec<Token> {
    let mut out: Vec<Token> = Vec::with_capacity(tokens.len());
    let mut last_sig: Vec<Token> = Vec::new();
    for t in tokens {
        let clustering = matches!(&t, Token::Word(w) if w.quote_style.is_none()
            && (w.value.eq_ignore_ascii_case("clustered") || w.value.eq_ignore_ascii_case("nonclustered")));
        let after_create = match last_sig.as_slice() {
            [.., a] if is_kw(Some(a), Keyword::CREATE) => true,
            [.., a, b] => is_kw(Some(a), Keyword::CREATE) && is_kw(Some(b), Keyword::UNIQUE),
            _ => false,
        };
        if clustering && after_create {
            continue;
        }
        if matches!(t, Token::LParen)
            && matches!(last_sig.last(), Some(Token::Word(w)) if w.quote_style.is_none()
                && (w.keyword == Keyword::EXEC || w.keyword == Keyword::EXECUTE))
        {
            out.push(Token::Whitespace(sqlparser::tokenizer::Whitespace::Space));
            out.push(Token::make_word("sp_executesql", None));
            out.push(Token::Whitespace(sqlparser::tokenizer::Whitespace::Space));
        }
        if !matches!(t, Token::Whitespace(_)) {
            last_sig.push(t.clone());
            if last_sig.len() > 2 {
                last_sig.remove(0);
            }
        }
        out.push(t);
    }
    out
}

/// T-SQL's compound assignment `SET @v += expr` (also `-=`, `*=`, `/=`, `%=`) becomes
/// `SET @v = @v + (expr)`; the expression ends at `;`, at the next statement's keyword or at
/// the end of the batch.
fn rewrite_compound_assignment(tokens: Vec<Token>) -> Vec<Token> {
    let sig: Vec<usize> = (0..tokens.len())
        .filter(|&i| !matches!(tokens[i], Token::Whitespace(_)))
        .collect();
    let at = |k: usize| sig.get(k).map(|&i| &tokens[i]);
    let is_op = |t: Option<&Token>| {
        matches!(
            t,
            Some(Token::Plus | Token::Minus | Token::Mul | Token::Div | Token::Mod)
        )
    };
    // (significant index of the operator, significant index where the expression ends)
    let mut spans = Vec::new();
    let mut k = 0;
    while k < sig.len() {
        let var = matches!(at(k + 1), Some(Token::Word(w)) if w.value.starts_with('@'));
        if is_kw(at(k), Keyword::SET)
            && var
            && is_op(at(k + 2))
            && matches!(at(k + 3), Some(Token::Eq))
            && sig[k + 3] == sig[k + 2] + 1
        {
            let mut depth = 0i32;
            let mut end = k + 4;
            while let Some(t) = at(end) {
                match t {
                    Token::LParen => depth += 1,
                    Token::RParen => depth -= 1,
                    Token::SemiColon | Token::EOF if depth == 0 => break,
                    Token::Word(w)
                        if depth == 0
                            && w.quote_style.is_none()
                            && is_statement_start(w.keyword) =>
                    {
                        break;
                    }
                    _ => {}
                }
                end += 1;
            }
            spans.push((k + 2, end));
            k = end;
            continue;
        }
        k += 1;
    }
    if spans.is_empty() {
        return tokens;
    }
    let mut out = Vec::with_capacity(tokens.len() + spans.len() * 4);
    let mut spans = spans.into_iter().peekable();
    let mut close_at = None;
    let mut skip = None;
    for (k, &i) in sig.iter().enumerate() {
        let from = if k == 0 { 0 } else { sig[k - 1] + 1 };
        out.extend(tokens[from..i].iter().cloned());
        if close_at == Some(k) {
            out.push(Token::RParen);
            close_at = None;
        }
        if skip == Some(k) {
            skip = None;
            continue;
        }
        if let Some(&(op, end)) = spans.peek()
            && op == k
        {
            spans.next();
            // `@v <op>=` → `@v = @v <op> (`
            let var = at(k - 1).cloned().unwrap_or(Token::EOF);
            out.push(Token::Eq);
            out.push(Token::Whitespace(sqlparser::tokenizer::Whitespace::Space));
            out.push(var);
            out.push(Token::Whitespace(sqlparser::tokenizer::Whitespace::Space));
            out.push(tokens[i].clone());
            out.push(Token::Whitespace(sqlparser::tokenizer::Whitespace::Space));
            out.push(Token::LParen);
            skip = Some(k + 1);
            close_at = Some(end);
            continue;
        }
        out.push(tokens[i].clone());
    }
    if close_at.is_some() {
        out.push(Token::RParen);
    }
    if let Some(&last) = sig.last() {
        out.extend(tokens[last + 1..].iter().cloned());
    }
    out
}

/// `ALTER TABLE t DROP COLUMN a, b` names several columns after one `DROP COLUMN`, which
/// sqlparser takes only as `DROP COLUMN a, DROP COLUMN b`; and a query's trailing
/// `OPTION (MAXRECURSION n, ...)` hint, which changes no result here, is dropped.
fn rewrite_drop_columns_and_query_options(tokens: Vec<Token>) -> Vec<Token> {
    let mut out: Vec<Token> = Vec::with_capacity(tokens.len());
    let mut in_drop_column = false;
    let mut depth = 0i32;
    let mut prev: Option<Token> = None;
    let mut i = 0;
    let sig_after = |from: usize| {
        tokens[from..]
            .iter()
            .find(|t| !matches!(t, Token::Whitespace(_)))
    };
    while i < tokens.len() {
        let t = tokens[i].clone();
        match &t {
            Token::LParen => depth += 1,
            Token::RParen => depth -= 1,
            Token::SemiColon => in_drop_column = false,
            _ => {}
        }
        if depth == 0
            && matches!(&t, Token::Word(w) if w.quote_style.is_none() && w.keyword == Keyword::OPTION)
            && matches!(sig_after(i + 1), Some(Token::LParen))
        {
            // skip `OPTION ( ... )`
            let mut d = 0i32;
            let mut j = i + 1;
            while j < tokens.len() {
                match tokens[j] {
                    Token::LParen => d += 1,
                    Token::RParen => {
                        d -= 1;
                        if d == 0 {
                            break;
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
            i = j + 1;
            continue;
        }
        if let Token::Word(w) = &t
            && w.quote_style.is_none()
        {
            if w.keyword == Keyword::COLUMN && is_kw(prev.as_ref(), Keyword::DROP) {
                in_drop_column = true;
            } else if is_statement_start(w.keyword) && w.keyword != Keyword::DROP {
                in_drop_column = false;
            }
        }
        let comma_then_column = in_drop_column
            && depth == 0
            && matches!(t, Token::Comma)
            && matches!(sig_after(i + 1), Some(Token::Word(w)) if w.quote_style.is_some()
                || !matches!(w.keyword, Keyword::DROP | Keyword::ADD | Keyword::ALTER | Keyword::CONSTRAINT));
        out.push(t.clone());
        if comma_then_column {
            for w in ["DROP", "COLUMN"] {
                out.push(Token::Whitespace(sqlparser::tokenizer::Whitespace::Space));
                out.push(word(w));
            }
        }
        if !matches!(t, Token::Whitespace(_)) {
            prev = Some(t);
        }
        i += 1;
    }
    out
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

/// T-SQL's `ROLLBACK { TRAN | TRANSACTION } name` (what mssql-jdbc sends for
/// `Connection.rollback(Savepoint)`, also inside `IF @@TRANCOUNT > 0 ...`) becomes sqlparser's
/// `ROLLBACK TO SAVEPOINT name`. A following word that starts a statement is not a name.
fn rewrite_rollback_to_savepoint(tokens: Vec<Token>) -> Vec<Token> {
    let mut out = Vec::with_capacity(tokens.len());
    let mut i = 0;
    while i < tokens.len() {
        let t = &tokens[i];
        if is_kw(Some(t), Keyword::ROLLBACK) {
            let tran = skip_ws(&tokens, i + 1);
            let name = skip_ws(&tokens, tran + 1);
            let is_tran = matches!(tokens.get(tran), Some(Token::Word(w)) if w.quote_style.is_none()
                && (w.value.eq_ignore_ascii_case("tran") || w.value.eq_ignore_ascii_case("transaction")));
            let is_name = matches!(tokens.get(name), Some(Token::Word(w))
                if w.quote_style.is_some() || w.keyword == Keyword::NoKeyword);
            if is_tran
                && is_name
                && let Some(Token::Word(w)) = tokens.get(name)
            {
                out.push(t.clone());
                for word in ["TO", "SAVEPOINT"] {
                    out.push(Token::Whitespace(sqlparser::tokenizer::Whitespace::Space));
                    out.push(Token::make_keyword(word));
                }
                out.push(Token::Whitespace(sqlparser::tokenizer::Whitespace::Space));
                out.push(Token::Word(w.clone()));
                i = name + 1;
                continue;
            }
        }
        out.push(t.clone());
        i += 1;
    }
    out
}
