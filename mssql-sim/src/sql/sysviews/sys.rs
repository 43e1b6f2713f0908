//! The `sys.*` catalog views and dynamic management views the simulator has: databases,
//! schemas, objects, columns, types, indexes, partitions and the `dm_tran_*` / `dm_exec_*`
//! views, with the column names and types SQL Server 2022 gives them.

use super::{ALL_TYPES, NAME, b, i, numeric_lsn, rel, s};
use crate::engine::catalog::SYSNAME_USER_TYPE_ID;
use crate::error::SqlResult;
use crate::sql::exec::Exec;
use crate::sql::rel::Rel;
use crate::value::{Len, SqlType, Value};

impl Exec<'_> {
    /// The `sys.<view>` of database `db_name` (`view` lower case); None for a view the
    /// simulator does not have.
    pub(super) fn sys_view(&mut self, db_name: &str, view: &str) -> SqlResult<Option<Rel>> {
        let db = self.eng.db(db_name)?;
        let r = match view {
            "databases" => rel(
                &[
                    ("name", NAME),
                    ("database_id", SqlType::Int),
                    ("create_date", SqlType::DateTime),
                    ("compatibility_level", SqlType::TinyInt),
                    ("collation_name", NAME),
                    ("state_desc", NAME),
                    ("snapshot_isolation_state", SqlType::TinyInt),
                    ("is_read_committed_snapshot_on", SqlType::Bit),
                    ("is_cdc_enabled", SqlType::Bit),
                ],
                self.eng
                    .dbs
                    .values()
                    .map(|d| {
                        vec![
                            s(&d.name),
                            i(d.id as i64),
                            Value::DateTime(d.created),
                            i(160),
                            s("SQL_Latin1_General_CP1_CI_AS"),
                            s("ONLINE"),
                            i(i64::from(d.allow_snapshot_isolation)),
                            b(d.read_committed_snapshot),
                            b(self.cdc.db(&d.name).is_some()),
                        ]
                    })
                    .collect(),
            ),
            "schemas" => rel(
                &[
                    ("name", NAME),
                    ("schema_id", SqlType::Int),
                    ("principal_id", SqlType::Int),
                ],
                db.schemas
                    .iter()
                    .map(|(id, n)| vec![s(n), i(*id as i64), i(1)])
                    .collect(),
            ),
            "tables" | "objects" => {
                let mut rows = Vec::new();
                for t in db.tables.values() {
                    let sid = db.schema_id(&t.schema).unwrap_or(1);
                    let tracked = self.cdc.tracks(&db.name, t.object_id);
                    rows.push(vec![
                        s(&t.name),
                        i(t.object_id as i64),
                        i(sid as i64),
                        s("U"),
                        s("USER_TABLE"),
                        Value::DateTime(t.created),
                        Value::DateTime(t.created),
                        b(t.system),
                        b(tracked),
                    ]);
                }
                rel(
                    &[
                        ("name", NAME),
                        ("object_id", SqlType::Int),
                        ("schema_id", SqlType::Int),
                        ("type", SqlType::Char(2)),
                        ("type_desc", NAME),
                        ("create_date", SqlType::DateTime),
                        ("modify_date", SqlType::DateTime),
                        ("is_ms_shipped", SqlType::Bit),
                        ("is_tracked_by_cdc", SqlType::Bit),
                    ],
                    rows,
                )
            }
            "columns" => {
                let mut rows = Vec::new();
                for t in db.tables.values() {
                    for c in &t.columns {
                        rows.push(vec![
                            i(t.object_id as i64),
                            s(&c.name),
                            i(c.column_id as i64),
                            i(c.ty.type_id() as i64),
                            // An alias-typed or sysname column: the type's own id beside
                            // its base's system_type_id.
                            i(c.user_type_id
                                .map_or(i64::from(c.ty.user_type_id()), i64::from)),
                            i(c.ty.max_length() as i64),
                            i(c.ty.precision() as i64),
                            i(c.ty.scale() as i64),
                            b(c.nullable),
                            b(c.identity.is_some()),
                            b(false),
                            // The column's own COLLATE, else the database default; NULL
                            // for non-text columns (xml has none either).
                            if c.ty.is_string() && c.ty != SqlType::Xml {
                                s(&t.collation_of(&c.name).unwrap_or_default().to_string())
                            } else {
                                Value::Null
                            },
                        ]);
                    }
                }
                rel(
                    &[
                        ("object_id", SqlType::Int),
                        ("name", NAME),
                        ("column_id", SqlType::Int),
                        ("system_type_id", SqlType::TinyInt),
                        ("user_type_id", SqlType::Int),
                        ("max_length", SqlType::SmallInt),
                        ("precision", SqlType::TinyInt),
                        ("scale", SqlType::TinyInt),
                        ("is_nullable", SqlType::Bit),
                        ("is_identity", SqlType::Bit),
                        ("is_computed", SqlType::Bit),
                        ("collation_name", NAME),
                    ],
                    rows,
                )
            }
            "types" => {
                // The system types (user_type_id = system_type_id, schema sys; the CLR types
                // share system_type_id 240 with their own user_type_id), sysname
                // (user_type_id 256 over nvarchar, not nullable), then the database's alias
                // types (Microsoft, "sys.types").
                let mut rows: Vec<Vec<Value>> = ALL_TYPES
                    .iter()
                    .map(|t| {
                        vec![
                            s(t.name()),
                            i(t.type_id() as i64),
                            i(i64::from(t.user_type_id())),
                            i(4),
                            i(t.max_length() as i64),
                            i(t.precision() as i64),
                            i(t.scale() as i64),
                            b(true),
                            // The CLR types (hierarchyid, geometry, geography) are system
                            // types (is_user_defined 0) implemented in an assembly.
                            b(false),
                            b(t.is_clr()),
                        ]
                    })
                    .collect();
                let sysname = SqlType::NVarChar(Len::N(128));
                rows.push(vec![
                    s("sysname"),
                    i(sysname.type_id() as i64),
                    i(i64::from(SYSNAME_USER_TYPE_ID)),
                    i(4),
                    i(sysname.max_length() as i64),
                    i(0),
                    i(0),
                    b(false),
                    b(false),
                    b(false),
                ]);
                for a in &db.alias_types {
                    rows.push(vec![
                        s(&a.name),
                        i(a.base.type_id() as i64),
                        i(i64::from(a.user_type_id)),
                        i(i64::from(a.schema_id)),
                        i(a.base.max_length() as i64),
                        i(a.base.precision() as i64),
                        i(a.base.scale() as i64),
                        b(a.nullable),
                        b(true),
                        b(false),
                    ]);
                }
                rel(
                    &[
                        ("name", NAME),
                        ("system_type_id", SqlType::TinyInt),
                        ("user_type_id", SqlType::Int),
                        ("schema_id", SqlType::Int),
                        ("max_length", SqlType::SmallInt),
                        ("precision", SqlType::TinyInt),
                        ("scale", SqlType::TinyInt),
                        ("is_nullable", SqlType::Bit),
                        ("is_user_defined", SqlType::Bit),
                        ("is_assembly_type", SqlType::Bit),
                    ],
                    rows,
                )
            }
            "indexes" => {
                let mut rows = Vec::new();
                for t in db.tables.values() {
                    match &t.pk_name {
                        Some(n) => rows.push(vec![
                            i(t.object_id as i64),
                            s(n),
                            i(1),
                            i(1),
                            s("CLUSTERED"),
                            b(true),
                            b(true),
                        ]),
                        None => rows.push(vec![
                            i(t.object_id as i64),
                            Value::Null,
                            i(0),
                            i(0),
                            s("HEAP"),
                            b(false),
                            b(false),
                        ]),
                    }
                }
                rel(
                    &[
                        ("object_id", SqlType::Int),
                        ("name", NAME),
                        ("index_id", SqlType::Int),
                        ("type", SqlType::TinyInt),
                        ("type_desc", NAME),
                        ("is_unique", SqlType::Bit),
                        ("is_primary_key", SqlType::Bit),
                    ],
                    rows,
                )
            }
            "index_columns" => {
                let mut rows = Vec::new();
                for t in db.tables.values() {
                    for (k, &c) in t.pk.iter().enumerate() {
                        rows.push(vec![
                            i(t.object_id as i64),
                            i(1),
                            i(k as i64 + 1),
                            i(t.columns[c].column_id as i64),
                            i(k as i64 + 1),
                            b(false),
                            b(false),
                        ]);
                    }
                }
                rel(
                    &[
                        ("object_id", SqlType::Int),
                        ("index_id", SqlType::Int),
                        ("index_column_id", SqlType::Int),
                        ("column_id", SqlType::Int),
                        ("key_ordinal", SqlType::TinyInt),
                        ("is_descending_key", SqlType::Bit),
                        ("is_included_column", SqlType::Bit),
                    ],
                    rows,
                )
            }
            "dm_tran_current_transaction" => {
                let (xid, seq, snapshot) = match self.sess.txn.as_ref() {
                    Some(t) => (t.xid, t.snapshot, t.snapshot.is_some()),
                    None => (0, None, false),
                };
                let opt = |v: Option<u64>| v.map_or(Value::Null, |v| i(v as i64));
                rel(
                    &[
                        ("transaction_id", SqlType::BigInt),
                        ("transaction_sequence_num", SqlType::BigInt),
                        ("transaction_is_snapshot", SqlType::Bit),
                        ("first_snapshot_sequence_num", SqlType::BigInt),
                    ],
                    vec![vec![i(xid as i64), opt(seq), b(snapshot), opt(seq)]],
                )
            }
            "dm_tran_database_transactions" => {
                // The current session's transaction, one row per database it has touched (the
                // current one always): log positions in SQL Server's numeric(25,0) LSN form.
                // Other sessions' transactions are not listed.
                let numeric = |l: Option<&crate::engine::log::Lsn>| match l {
                    Some(l) => Value::Decimal(numeric_lsn(*l), 0),
                    None => Value::Null,
                };
                let mut rows = Vec::new();
                if let Some(t) = self.sess.txn.as_ref() {
                    let mut names: Vec<String> = t.begin_lsn.keys().cloned().collect();
                    if !names.iter().any(|n| n.eq_ignore_ascii_case(&self.sess.db)) {
                        names.push(self.sess.db.clone());
                    }
                    for name in names {
                        let Ok(d) = self.eng.db(&name) else { continue };
                        let begin = t.begin_lsn.get(&name);
                        rows.push(vec![
                            i(t.xid as i64),
                            i(i64::from(d.id)),
                            begin.map_or(Value::Null, |_| Value::DateTime(t.begin_time)),
                            // 1 read/write; 4 has generated log records, 3 has not
                            i(1),
                            i(if begin.is_some() { 4 } else { 3 }),
                            numeric(begin),
                            numeric(t.last_lsn.get(&name)),
                            numeric(t.savepoint_lsn.get(&name)),
                            Value::Null,
                        ]);
                    }
                }
                const NUMERIC_LSN: SqlType = SqlType::Decimal(25, 0);
                rel(
                    &[
                        ("transaction_id", SqlType::BigInt),
                        ("database_id", SqlType::Int),
                        ("database_transaction_begin_time", SqlType::DateTime),
                        ("database_transaction_type", SqlType::Int),
                        ("database_transaction_state", SqlType::Int),
                        ("database_transaction_begin_lsn", NUMERIC_LSN),
                        ("database_transaction_last_lsn", NUMERIC_LSN),
                        (
                            "database_transaction_most_recent_savepoint_lsn",
                            NUMERIC_LSN,
                        ),
                        ("database_transaction_commit_lsn", NUMERIC_LSN),
                    ],
                    rows,
                )
            }
            "dm_tran_locks" => {
                let (cols, rows) = self.dm_tran_locks();
                rel(&cols, rows)
            }
            "dm_exec_requests" => {
                let (cols, rows) = self.dm_exec_requests();
                rel(&cols, rows)
            }
            "partitions" => {
                let view = self.view();
                let db = self.eng.db(db_name)?;
                let mut rows = Vec::new();
                for t in db.tables.values() {
                    let n = t.visible(&self.eng.txns, &view).len();
                    let idx = if t.pk_name.is_some() { 1 } else { 0 };
                    rows.push(vec![
                        i(t.object_id as i64 * 65536 + idx),
                        i(t.object_id as i64),
                        i(idx),
                        i(1),
                        i(n as i64),
                    ]);
                }
                rel(
                    &[
                        ("partition_id", SqlType::BigInt),
                        ("object_id", SqlType::Int),
                        ("index_id", SqlType::Int),
                        ("partition_number", SqlType::Int),
                        ("rows", SqlType::BigInt),
                    ],
                    rows,
                )
            }
            _ => return Ok(None),
        };
        Ok(Some(r))
    }
}
