//! Table definitions and their multi-version row storage with a primary-key index.

use std::collections::HashMap;

use chrono::NaiveDateTime;

use crate::engine::txn::{TxStatus, TxnTable, View, Xid};
use crate::value::collation::unicode_text;
use crate::value::{Collation, SqlType, TextCmp, Value};

/// A column definition.
#[derive(Debug, Clone)]
pub(crate) struct Column {
    pub(crate) name: String,
    pub(crate) ty: SqlType,
    pub(crate) nullable: bool,
    pub(crate) column_id: i32,
    /// IDENTITY(seed, increment)
    pub(crate) identity: Option<(i64, i64)>,
    /// DEFAULT expression, evaluated per inserted row (so GETDATE()/NEWID() vary).
    pub(crate) default: Option<sqlparser::ast::Expr>,
    /// A computed column's expression (`name AS (expr)`): its value is computed from the
    /// row's other columns on every insert and update and cannot be written; change tables
    /// hold NULL for it (Microsoft's cdc.<capture_instance>_CT page).
    pub(crate) computed: Option<sqlparser::ast::Expr>,
    /// `sys.columns.user_type_id` when it differs from the type's `system_type_id`: an
    /// alias type's id (257 and up), or 256 for `sysname`. `ty` is then the base type.
    pub(crate) user_type_id: Option<i32>,
}

/// A UNIQUE constraint or an index created with CREATE [UNIQUE] INDEX (the primary key is
/// kept apart, in `Table::pk`).
#[derive(Debug, Clone)]
pub(crate) struct Index {
    pub(crate) name: String,
    /// Column positions, in key order.
    pub(crate) columns: Vec<usize>,
    pub(crate) unique: bool,
    /// A UNIQUE constraint (duplicates: error 2627) rather than an index (2601).
    pub(crate) constraint: bool,
}

/// One version of a row.
#[derive(Debug, Clone)]
pub(crate) struct Version {
    pub(crate) values: Vec<Value>,
    pub(crate) xmin: Xid,
    pub(crate) xmax: Xid,
}

/// A table: definition plus storage.
#[derive(Debug)]
pub(crate) struct Table {
    pub(crate) object_id: i32,
    pub(crate) schema: String,
    pub(crate) name: String,
    pub(crate) columns: Vec<Column>,
    /// Primary-key column positions.
    pub(crate) pk: Vec<usize>,
    pub(crate) pk_name: Option<String>,
    pub(crate) created: NaiveDateTime,
    /// System tables (cdc.*) are never captured.
    pub(crate) system: bool,
    pub(crate) next_identity: i64,
    pub(crate) next_column_id: i32,
    pub(crate) versions: Vec<Version>,
    pk_index: HashMap<String, Vec<usize>>,
    /// UNIQUE constraints and indexes.
    pub(crate) indexes: Vec<Index>,
    /// Text columns with a `COLLATE` of their own, by lower-case column name; the others
    /// have the database default (`SQL_Latin1_General_CP1_CI_AS`).
    pub(crate) collations: HashMap<String, Collation>,
}

impl Table {
    pub(crate) fn new(
        object_id: i32,
        schema: &str,
        name: &str,
        columns: Vec<Column>,
        pk: Vec<usize>,
        created: NaiveDateTime,
    ) -> Self {
        let next_column_id = columns.len() as i32 + 1;
        let next_identity = columns
            .iter()
            .find_map(|c| c.identity.map(|i| i.0))
            .unwrap_or(1);
        Table {
            object_id,
            schema: schema.to_string(),
            name: name.to_string(),
            columns,
            pk,
            pk_name: None,
            created,
            system: false,
            next_identity,
            next_column_id,
            versions: Vec::new(),
            pk_index: HashMap::new(),
            indexes: Vec::new(),
            collations: HashMap::new(),
        }
    }

    pub(crate) fn column_index(&self, name: &str) -> Option<usize> {
        self.columns
            .iter()
            .position(|c| c.name.eq_ignore_ascii_case(name))
    }

    /// The collation a column was declared with (`COLLATE`), `None` for the default.
    pub(crate) fn collation_of(&self, column: &str) -> Option<Collation> {
        if self.collations.is_empty() {
            return None;
        }
        self.collations.get(&column.to_lowercase()).copied()
    }

    /// How values of column `i` compare with each other (its collation, Unicode when the
    /// column is nchar/nvarchar/ntext): the primary-key and unique indexes use it, so a
    /// case-sensitive or binary column keeps 'a' and 'A' apart.
    pub(crate) fn text_cmp(&self, i: usize) -> TextCmp {
        match self.columns.get(i) {
            Some(c) => TextCmp {
                collation: self.collation_of(&c.name).unwrap_or_default(),
                unicode: unicode_text(&c.ty).unwrap_or(true),
            },
            None => TextCmp::default(),
        }
    }

    /// A column value's index key under the column's collation.
    fn cell_key(&self, values: &[Value], i: usize) -> String {
        values
            .get(i)
            .map(|v| v.key_in(&self.text_cmp(i)))
            .unwrap_or_default()
    }

    pub(crate) fn pk_key(&self, values: &[Value]) -> Option<String> {
        if self.pk.is_empty() {
            return None;
        }
        let mut k = String::new();
        for &i in &self.pk {
            k.push_str(&self.cell_key(values, i));
            k.push('\u{1}');
        }
        Some(k)
    }

    /// Indexes of row versions visible to `view`.
    pub(crate) fn visible(&self, tt: &TxnTable, view: &View) -> Vec<usize> {
        (0..self.versions.len())
            .filter(|&i| {
                let v = &self.versions[i];
                view.visible(tt, v.xmin, v.xmax)
            })
            .collect()
    }

    /// Every version ever stored with primary key `key` (live, deleted or rolled back).
    pub(crate) fn key_versions(&self, key: &str) -> impl Iterator<Item = &Version> {
        self.pk_index
            .get(key)
            .into_iter()
            .flatten()
            .filter_map(|&i| self.versions.get(i))
    }

    /// Whether a live (not deleted, not rolled back) row with this key exists for anyone.
    pub(crate) fn key_taken(&self, tt: &TxnTable, key: &str, own: Xid) -> bool {
        let Some(ids) = self.pk_index.get(key) else {
            return false;
        };
        ids.iter().any(|&i| {
            let v = &self.versions[i];
            if matches!(tt.status(v.xmin), TxStatus::Aborted) {
                return false;
            }
            let deleted = v.xmax != 0
                && (v.xmax == own || matches!(tt.status(v.xmax), TxStatus::Committed(_)));
            !deleted
        })
    }

    /// The first unique index that a live row other than those deleted by `own` already
    /// holds `values`' key in, with that key as SQL Server prints it. NULLs count as equal,
    /// as in SQL Server's unique constraints and indexes.
    pub(crate) fn unique_clash(
        &self,
        tt: &TxnTable,
        values: &[Value],
        own: Xid,
    ) -> Option<(&Index, String)> {
        let key = |vals: &[Value], ix: &Index| -> Vec<String> {
            ix.columns.iter().map(|&c| self.cell_key(vals, c)).collect()
        };
        self.indexes.iter().filter(|ix| ix.unique).find_map(|ix| {
            let mine = key(values, ix);
            let taken = self.versions.iter().any(|v| {
                if matches!(tt.status(v.xmin), TxStatus::Aborted) {
                    return false;
                }
                let deleted = v.xmax != 0
                    && (v.xmax == own || matches!(tt.status(v.xmax), TxStatus::Committed(_)));
                !deleted && key(&v.values, ix) == mine
            });
            taken.then(|| {
                let shown: Vec<String> = ix
                    .columns
                    .iter()
                    .map(|&c| match values.get(c) {
                        Some(Value::Null) | None => "<NULL>".to_string(),
                        Some(v) => v.to_string(),
                    })
                    .collect();
                (ix, shown.join(", "))
            })
        })
    }

    pub(crate) fn push(&mut self, values: Vec<Value>, xmin: Xid) {
        let idx = self.versions.len();
        if let Some(k) = self.pk_key(&values) {
            self.pk_index.entry(k).or_default().push(idx);
        }
        self.versions.push(Version {
            values,
            xmin,
            xmax: 0,
        });
    }

    /// Rebuilds the key index after the primary key or column layout changes.
    pub(crate) fn reindex(&mut self) {
        let mut idx: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, v) in self.versions.iter().enumerate() {
            if let Some(k) = self.pk_key(&v.values) {
                idx.entry(k).or_default().push(i);
            }
        }
        self.pk_index = idx;
    }

    /// Drops versions nobody can see any more: rolled back, or deleted by a committed
    /// transaction. Only valid while no transaction is open (no snapshot may need them and
    /// no undo record points at them).
    pub(crate) fn vacuum(&mut self, tt: &TxnTable) {
        let before = self.versions.len();
        self.versions.retain(|v| {
            let rolled_back = matches!(tt.status(v.xmin), TxStatus::Aborted);
            let deleted = v.xmax != 0 && matches!(tt.status(v.xmax), TxStatus::Committed(_));
            !rolled_back && !deleted
        });
        if self.versions.len() != before {
            for v in &mut self.versions {
                // an aborted deleter leaves the row live
                if v.xmax != 0 && matches!(tt.status(v.xmax), TxStatus::Aborted) {
                    v.xmax = 0;
                }
            }
            self.reindex();
        }
    }
}
