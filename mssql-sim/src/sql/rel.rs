//! Relations: the columns and rows a FROM clause, a query or a system view produces, before
//! they become a result set.

use crate::engine::table::Table;
use crate::sql::out::ResultSet;
use crate::tds::tokens::ColumnMeta;
use crate::value::collation::unicode_text;
use crate::value::{Collation, SqlType, TextCmp, Value};

/// Hidden column carrying a DML target row's version index (see `Exec::dml_target`).
pub(crate) const ROWID: &str = "__sim_rowid";

/// A column of an intermediate relation.
#[derive(Debug, Clone)]
pub(crate) struct RelCol {
    /// Lower-case table alias that qualifies the column.
    pub(crate) qual: String,
    pub(crate) name: String,
    pub(crate) ty: SqlType,
    pub(crate) nullable: bool,
    /// The column's collation where it has one of its own (a table's text column, or an
    /// expression with `COLLATE`); `None`: the database default. Only text types use it.
    pub(crate) collation: Option<Collation>,
}

impl RelCol {
    /// How the column's own values compare with each other (ORDER BY, GROUP BY, DISTINCT):
    /// its collation, Unicode when its type is (nchar/nvarchar/ntext).
    pub(crate) fn text_cmp(&self) -> TextCmp {
        TextCmp {
            collation: self.collation.unwrap_or_default(),
            unicode: unicode_text(&self.ty).unwrap_or(true),
        }
    }
}

/// An intermediate or final relation.
#[derive(Debug, Clone, Default)]
pub(crate) struct Rel {
    pub(crate) cols: Vec<RelCol>,
    pub(crate) rows: Vec<Vec<Value>>,
}

impl Rel {
    pub(crate) fn into_result(self) -> ResultSet {
        ResultSet {
            cols: self
                .cols
                .into_iter()
                .map(|c| ColumnMeta {
                    name: c.name,
                    ty: c.ty,
                    nullable: c.nullable,
                    collation: c.collation,
                })
                .collect(),
            rows: self.rows,
        }
    }
}

/// The relation columns of a table under an alias.
pub(crate) fn table_cols(t: &Table, alias: &str) -> Vec<RelCol> {
    t.columns
        .iter()
        .map(|c| RelCol {
            qual: alias.to_lowercase(),
            name: c.name.clone(),
            ty: c.ty,
            nullable: c.nullable,
            collation: t.collation_of(&c.name),
        })
        .collect()
}
