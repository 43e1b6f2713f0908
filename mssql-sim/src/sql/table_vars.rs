//! Table variables (`DECLARE @t TABLE (...)`) and `INSERT INTO @t EXEC proc ...`, as drivers use
//! them to post-process a catalog procedure's result (mssql-jdbc's `getColumns` declares
//! `@mssqljdbc_temp_sp_columns_result`, fills it from `sp_columns_100` and selects from it).
//!
//! As in SQL Server, a table variable is a table in `tempdb` that lives for the batch: here it
//! is created under an internal name (`tempdb.dbo.[#tv_<spid>_<n>_<name>]`-like, without the `#`
//! the engine reserves), every `@t` used as a table in the batch is rewritten to that name, and
//! the table is dropped when the batch ends, also after an error. `INSERT INTO @t EXEC ...` runs
//! the procedure and inserts the rows of its result sets, reporting the count as one DONE.

use std::collections::VecDeque;

use sqlparser::dialect::MsSqlDialect;
use sqlparser::keywords::Keyword;
use sqlparser::tokenizer::{Token, Tokenizer};

use crate::sql::exec::Exec;
use crate::sql::out::Out;
use crate::sql::parse::Segment;

/// One step of a batch that uses table variables.
enum Step {
    /// `DECLARE @v TABLE (defs)`: the variable (lower case) and the column definitions' text.
    Declare { var: String, defs: String },
    /// `INSERT INTO @v EXEC ...`: the variable and the `EXEC ...` text.
    InsertExec { var: String, exec: String },
    /// Anything else, with table variables already renamed.
    Plain(String),
}

/// A token as T-SQL text (string literals re-escaped, which sqlparser's Display does not do).
fn render(t: &Token) -> String {
    match t {
        Token::SingleQuotedString(s) => format!("'{}'", s.replace('\'', "''")),
        Token::NationalStringLiteral(s) => format!("N'{}'", s.replace('\'', "''")),
        other => other.to_string(),
    }
}

fn word(t: Option<&Token>) -> Option<&sqlparser::tokenizer::Word> {
    match t {
        Some(Token::Word(w)) => Some(w),
        _ => None,
    }
}

fn is_kw(t: Option<&Token>, kw: Keyword) -> bool {
    word(t).is_some_and(|w| w.quote_style.is_none() && w.keyword == kw)
}

/// Index of the next non-whitespace token at or after `i`.
fn next(tokens: &[Token], mut i: usize) -> usize {
    while matches!(tokens.get(i), Some(Token::Whitespace(_))) {
        i += 1;
    }
    i
}

/// The internal table name of variable `var` in this batch.
fn table_name(spid: u16, n: usize, var: &str) -> String {
    format!(
        "tempdb.dbo.[table_variable_{spid}_{n}_{}]",
        var.trim_start_matches('@')
    )
}

/// Splits `sql` into steps if it declares a table variable; `None` when it does not.
/// Each table variable (lower case) and its internal table name.
type Tables = Vec<(String, String)>;

fn plan(sql: &str, spid: u16) -> Option<(Vec<Step>, Tables)> {
    // Most batches declare nothing: skip tokenizing them (this runs before every batch).
    if !sql
        .as_bytes()
        .windows(7)
        .any(|w| w.eq_ignore_ascii_case(b"declare"))
    {
        return None;
    }
    let tokens = Tokenizer::new(&MsSqlDialect {}, sql).tokenize().ok()?;
    let mut vars: Vec<(String, String)> = Vec::new();
    // First pass: which variables are declared as tables.
    let mut i = 0;
    while i < tokens.len() {
        if is_kw(tokens.get(i), Keyword::DECLARE) {
            let v = next(&tokens, i + 1);
            let t = next(&tokens, v + 1);
            let t = if is_kw(tokens.get(t), Keyword::AS) {
                next(&tokens, t + 1)
            } else {
                t
            };
            if let Some(w) = word(tokens.get(v))
                && w.value.starts_with('@')
                && is_kw(tokens.get(t), Keyword::TABLE)
            {
                let name = w.value.to_lowercase();
                let n = vars.len();
                vars.push((name.clone(), table_name(spid, n, &name)));
            }
        }
        i += 1;
    }
    if vars.is_empty() {
        return None;
    }
    let table_of = |t: Option<&Token>| -> Option<String> {
        let w = word(t)?;
        let lower = w.value.to_lowercase();
        vars.iter()
            .find(|(v, _)| *v == lower)
            .map(|(v, _)| v.clone())
    };
    let mut steps = Vec::new();
    let mut plain = String::new();
    let flush = |plain: &mut String, steps: &mut Vec<Step>| {
        if !plain.trim().trim_matches(';').trim().is_empty() {
            steps.push(Step::Plain(std::mem::take(plain)));
        }
        plain.clear();
    };
    let mut i = 0;
    while i < tokens.len() {
        // DECLARE @v [AS] TABLE ( ... )
        if is_kw(tokens.get(i), Keyword::DECLARE) {
            let v = next(&tokens, i + 1);
            let mut t = next(&tokens, v + 1);
            if is_kw(tokens.get(t), Keyword::AS) {
                t = next(&tokens, t + 1);
            }
            let open = next(&tokens, t + 1);
            if let Some(var) = table_of(tokens.get(v))
                && is_kw(tokens.get(t), Keyword::TABLE)
                && matches!(tokens.get(open), Some(Token::LParen))
            {
                let mut depth = 0;
                let mut j = open;
                let mut defs = String::new();
                while let Some(tok) = tokens.get(j) {
                    match tok {
                        Token::LParen => depth += 1,
                        Token::RParen => depth -= 1,
                        _ => {}
                    }
                    defs.push_str(&render(tok));
                    j += 1;
                    if depth == 0 {
                        break;
                    }
                }
                flush(&mut plain, &mut steps);
                steps.push(Step::Declare { var, defs });
                i = j;
                continue;
            }
        }
        // INSERT [INTO] @v EXEC[UTE] ...  (up to `;` or the end)
        if is_kw(tokens.get(i), Keyword::INSERT) {
            let mut v = next(&tokens, i + 1);
            if is_kw(tokens.get(v), Keyword::INTO) {
                v = next(&tokens, v + 1);
            }
            let e = next(&tokens, v + 1);
            if let Some(var) = table_of(tokens.get(v))
                && (is_kw(tokens.get(e), Keyword::EXEC) || is_kw(tokens.get(e), Keyword::EXECUTE))
            {
                let mut j = e;
                let mut exec = String::new();
                while let Some(tok) = tokens.get(j) {
                    if matches!(tok, Token::SemiColon) {
                        break;
                    }
                    exec.push_str(&render(tok));
                    j += 1;
                }
                flush(&mut plain, &mut steps);
                steps.push(Step::InsertExec { var, exec });
                i = j;
                continue;
            }
        }
        let tok = &tokens[i];
        match table_of(Some(tok)) {
            Some(var) => {
                if let Some((_, table)) = vars.iter().find(|(v, _)| *v == var) {
                    plain.push_str(table);
                }
            }
            None => plain.push_str(&render(tok)),
        }
        i += 1;
    }
    flush(&mut plain, &mut steps);
    Some((steps, vars))
}

/// A batch that uses table variables, run one step at a time so that its statements wait for
/// locks as any batch's do (the request loop drives each step's statements and waits between
/// them with the engine unlocked).
pub(crate) struct TableVarBatch {
    steps: VecDeque<Step>,
    /// Each table variable (lower case) and its internal table name.
    tables: Tables,
    /// The internal tables created so far, dropped when the batch ends.
    created: Vec<String>,
}

/// What one step of a [`TableVarBatch`] did.
pub(crate) enum TableVarStep {
    /// It ran (a `DECLARE` or `INSERT ... EXEC`); `failed` ends the batch.
    Ran { failed: bool },
    /// Its statements, for the caller to run (they may wait for locks); an error among
    /// their outputs ends the batch.
    Statements(VecDeque<Segment>),
    /// No steps are left.
    End,
}

impl Exec<'_> {
    /// The steps of `sql` if it uses table variables; `None` (nothing run) otherwise.
    pub(crate) fn table_var_batch(&self, sql: &str) -> Option<TableVarBatch> {
        let (steps, tables) = plan(sql, self.sess.spid)?;
        Some(TableVarBatch {
            steps: steps.into(),
            tables,
            created: Vec::new(),
        })
    }

    /// Runs the next step of `batch`, or hands its statements back.
    pub(crate) fn table_var_step(&mut self, batch: &mut TableVarBatch) -> TableVarStep {
        let Some(step) = batch.steps.pop_front() else {
            return TableVarStep::End;
        };
        let table = |var: &str| {
            batch
                .tables
                .iter()
                .find(|(v, _)| v == var)
                .map(|(_, t)| t.clone())
        };
        let failed = match step {
            Step::Declare { var, defs } => match table(&var) {
                Some(t) => {
                    let ok = self.quiet(&format!("CREATE TABLE {t} {defs}"));
                    if ok {
                        batch.created.push(t);
                    }
                    !ok
                }
                None => true,
            },
            Step::InsertExec { var, exec } => match table(&var) {
                Some(t) => !self.insert_exec(&t, &exec),
                None => true,
            },
            Step::Plain(text) => return TableVarStep::Statements(self.parse_segments(&text)),
        };
        TableVarStep::Ran { failed }
    }

    /// Ends `batch`: drops the tables of its variables (also after an error).
    pub(crate) fn table_var_end(&mut self, batch: TableVarBatch) {
        for t in batch.created {
            self.quiet(&format!("DROP TABLE {t}"));
        }
    }

    /// Runs `sql` keeping only its errors; true when it had none.
    fn quiet(&mut self, sql: &str) -> bool {
        let mark = self.out.len();
        self.run_batch(sql);
        let tail = self.out.split_off(mark);
        let errors: Vec<Out> = tail
            .into_iter()
            .filter(|o| matches!(o, Out::Error(_)))
            .collect();
        let ok = errors.is_empty();
        if !ok {
            self.out.extend(errors);
            self.out.push(Out::Done {
                count: None,
                error: true,
            });
        }
        ok
    }

    /// `INSERT INTO table EXEC ...`: the procedure's result rows go into `table`; one DONE with
    /// their count is reported. True on success.
    fn insert_exec(&mut self, table: &str, exec: &str) -> bool {
        let mark = self.out.len();
        self.run_batch(exec);
        let tail = self.out.split_off(mark);
        let mut rows = Vec::new();
        for o in tail {
            match o {
                Out::Rows(rs) => rows.extend(rs.rows),
                Out::Error(e) => {
                    self.out.push(Out::Error(e));
                    self.out.push(Out::Done {
                        count: None,
                        error: true,
                    });
                    return false;
                }
                _ => {}
            }
        }
        let n = rows.len() as u64;
        for row in rows {
            let mut names = Vec::with_capacity(row.len());
            for (k, v) in row.into_iter().enumerate() {
                let name = format!("@__insert_exec_{k}");
                let ty = v.natural_type();
                self.sess.vars.insert(name.clone(), (ty, v));
                names.push(name);
            }
            let ok = self.quiet(&format!(
                "INSERT INTO {table} VALUES ({})",
                names.join(", ")
            ));
            for name in &names {
                self.sess.vars.remove(name);
            }
            if !ok {
                return false;
            }
        }
        self.out.push(Out::Done {
            count: Some(n),
            error: false,
        });
        true
    }
}

#[cfg(test)]
mod tests {
    use super::{Step, plan};

    #[test]
    fn table_variable_batches_split_into_declare_insert_exec_and_renamed_selects() {
        let (steps, tables) = plan(
            "DECLARE @r TABLE(A SYSNAME, B INT);INSERT INTO @r EXEC sp_x @P0, N'it''s';SELECT A FROM @r ORDER BY A;",
            7,
        )
        .unwrap_or_default();
        assert_eq!(
            tables,
            vec![(
                "@r".to_string(),
                "tempdb.dbo.[table_variable_7_0_r]".to_string()
            )]
        );
        assert!(
            matches!(&steps[0], Step::Declare { var, defs } if var == "@r" && defs == "(A SYSNAME, B INT)")
        );
        assert!(
            matches!(&steps[1], Step::InsertExec { var, exec } if var == "@r" && exec == "EXEC sp_x @P0, N'it''s'")
        );
        assert!(
            matches!(&steps[2], Step::Plain(t) if t.contains("FROM tempdb.dbo.[table_variable_7_0_r] ORDER BY"))
        );
        assert!(plan("DECLARE @x int = 1; SELECT @x", 7).is_none());
    }
}
