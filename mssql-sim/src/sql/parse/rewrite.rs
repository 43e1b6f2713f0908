//! Token rewrites run before sqlparser: each turns a T-SQL form MsSqlDialect does not accept
//! (`ALTER COLUMN`, computed columns, money literals, compound assignment, ...) into one it
//! does, keeping the statement's meaning.

use sqlparser::keywords::Keyword;
use sqlparser::tokenizer::Token;

use super::tokens::{is_kw, is_statement_start, skip_ws, word};

/// T-SQL's `ALTER TABLE t ALTER COLUMN c <type> [NULL | NOT NULL]` is not sqlparser
/// syntax; it becomes `... ALTER COLUMN c SET DATA TYPE <type>` followed by a second
/// `ALTER TABLE` that sets or drops NOT NULL (SQL Server makes the column nullable when
/// neither is written).
pub(super) fn rewrite_alter_column(tokens: Vec<Token>) -> Vec<Token> {
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
pub(super) fn rewrite_computed_columns(tokens: Vec<Token>) -> Vec<Token> {
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
pub(super) fn rewrite_money_literals(tokens: Vec<Token>) -> Vec<Token> {
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
pub(super) fn rewrite_index_and_dynamic_sql(tokens: Vec<Token>) -> Vec<Token> {
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
pub(super) fn rewrite_compound_assignment(tokens: Vec<Token>) -> Vec<Token> {
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
pub(super) fn rewrite_drop_columns_and_query_options(tokens: Vec<Token>) -> Vec<Token> {
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

/// T-SQL's `ROLLBACK { TRAN | TRANSACTION } name` (what mssql-jdbc sends for
/// `Connection.rollback(Savepoint)`, also inside `IF @@TRANCOUNT > 0 ...`) becomes sqlparser's
/// `ROLLBACK TO SAVEPOINT name`. A following word that starts a statement is not a name.
pub(super) fn rewrite_rollback_to_savepoint(tokens: Vec<Token>) -> Vec<Token> {
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
