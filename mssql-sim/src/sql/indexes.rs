//! Indexes and constraints: `CREATE [UNIQUE] INDEX`, the column lists of indexes and
//! constraints, and the names SQL Server gives unnamed constraints.

use crate::engine::table::{Column, Index};
use crate::error::{SqlError, SqlResult};
use crate::sql::exec::Exec;
use crate::sql::parse::name_parts;
use crate::value::Value;

/// The column names of an index or constraint column list.
pub(crate) fn index_column_names(cols: &[sqlparser::ast::IndexColumn]) -> Vec<String> {
    cols.iter()
        .map(|ic| {
            ic.column
                .expr
                .to_string()
                .trim_matches(|c| c == '[' || c == ']')
                .to_string()
        })
        .collect()
}

/// Positions of named columns (error 1911 for a name the table lacks).
pub(crate) fn positions(cols: &[Column], names: &[String]) -> SqlResult<Vec<usize>> {
    names
        .iter()
        .map(|n| {
            cols.iter()
                .position(|c| c.name.eq_ignore_ascii_case(n))
                .ok_or_else(|| {
                    SqlError::new(
                        1911,
                        format!("Column name '{n}' does not exist in the target table or view."),
                    )
                })
        })
        .collect()
}

impl Exec<'_> {
    /// `CREATE [UNIQUE] [CLUSTERED | NONCLUSTERED] INDEX name ON table (columns)`: recorded so
    /// that a unique index enforces its key (2601) and can identify rows for change data
    /// capture (`sys.sp_cdc_enable_table @index_name`). Error 1913 when the table already has
    /// an index or constraint of that name.
    pub(crate) fn create_index(&mut self, ci: sqlparser::ast::CreateIndex) -> SqlResult<()> {
        let r = self.resolve(&name_parts(&ci.table_name))?;
        let name = ci
            .name
            .as_ref()
            .map(|n| name_parts(n).last().cloned().unwrap_or_default())
            .ok_or_else(|| SqlError::syntax("ON"))?;
        let columns = index_column_names(&ci.columns);
        let own = self.xid();
        self.eng.db(&r.db)?;
        let eng = &mut *self.eng;
        let tt = &eng.txns;
        let t = eng
            .dbs
            .get_mut(&r.db)
            .and_then(|d| d.table_mut(&r.schema, &r.name))
            .ok_or_else(|| SqlError::invalid_object(&r.written))?;
        if t.indexes.iter().any(|i| i.name.eq_ignore_ascii_case(&name))
            || t.pk_name
                .as_ref()
                .is_some_and(|p| p.eq_ignore_ascii_case(&name))
        {
            return Err(SqlError::new(
                1913,
                format!(
                    "The operation failed because an index or statistics with name '{name}' already exists on table '{}.{}'.",
                    t.schema, t.name
                ),
            ));
        }
        let ix = Index {
            name,
            columns: positions(&t.columns, &columns)?,
            unique: ci.unique,
            constraint: false,
        };
        if ix.unique {
            // Existing duplicates stop the index (1505).
            let live: Vec<Vec<Value>> = t
                .versions
                .iter()
                .filter(|v| {
                    !matches!(tt.status(v.xmin), crate::engine::txn::TxStatus::Aborted)
                        && !(v.xmax != 0
                            && (v.xmax == own
                                || matches!(
                                    tt.status(v.xmax),
                                    crate::engine::txn::TxStatus::Committed(_)
                                )))
                })
                .map(|v| v.values.clone())
                .collect();
            let mut seen = std::collections::HashSet::new();
            for v in &live {
                // Equal as the column's collation compares (a case-sensitive column keeps 'a' and 'A').
                let k: Vec<String> = ix
                    .columns
                    .iter()
                    .map(|&c| v[c].key_in(&t.text_cmp(c)))
                    .collect();
                if !seen.insert(k) {
                    let shown: Vec<String> = ix.columns.iter().map(|&c| v[c].to_string()).collect();
                    return Err(SqlError::new(
                        1505,
                        format!(
                            "The CREATE UNIQUE INDEX statement terminated because a duplicate key was found for the object name '{}.{}' and the index name '{}'. The duplicate key value is ({}).",
                            t.schema,
                            t.name,
                            ix.name,
                            shown.join(", ")
                        ),
                    ));
                }
            }
        }
        t.indexes.push(ix);
        self.done(None);
        Ok(())
    }
}

/// The name SQL Server gives an unnamed PRIMARY KEY or UNIQUE constraint: the prefix (`PK`,
/// `UQ`), `__`, the first 8 characters of the table's name, `__` and 16 hex digits
/// (`PK__Employee__3214EC07A1F5D50E` for a table `Employees`). The digits are the server's
/// own; here they come from `seed`, so they are stable per object.
pub(crate) fn system_constraint_name(prefix: &str, table: &str, seed: u64) -> String {
    let short: String = table.chars().take(8).collect();
    format!("{prefix}__{short}__{:016X}", seed.wrapping_mul(2654435761))
}

#[cfg(test)]
mod tests {
    use super::system_constraint_name;

    #[test]
    fn unnamed_constraint_names_keep_the_first_8_characters_of_the_table_name() {
        let long = system_constraint_name("PK", "Employees", 7);
        assert!(long.starts_with("PK__Employee__"), "{long}");
        assert_eq!(long.len(), "PK__Employee__".len() + 16);
        let short = system_constraint_name("UQ", "t", 7);
        assert!(short.starts_with("UQ__t__"), "{short}");
        assert_eq!(short.len(), "UQ__t__".len() + 16);
    }
}
