//! The T-SQL statements sqlparser does not parse, cut out of the token stream whole:
//! `EXEC` with named arguments, `CREATE TYPE ... FROM` and `ALTER DATABASE ... SET`.

use sqlparser::dialect::MsSqlDialect;
use sqlparser::keywords::Keyword;
use sqlparser::parser::Parser;
use sqlparser::tokenizer::Token;

use super::tokens::{Segment, is_kw, is_statement_start, skip_ws, syntax_from};
use crate::error::{SqlError, SqlResult};

/// Parses `name [arg [, arg]*]` starting at `i`; returns the segment and the next index.
pub(super) fn parse_exec(
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
pub(super) fn create_type_from(tokens: &[Token], i: usize) -> Option<(Segment, usize)> {
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
pub(super) fn alter_database_segment(tokens: &[Token]) -> Segment {
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
