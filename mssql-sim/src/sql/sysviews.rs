//! Catalog views (`sys.*`, `INFORMATION_SCHEMA.*`) computed from the engine on demand.

use crate::engine::catalog::{Database, SYSNAME_USER_TYPE_ID};
use crate::error::SqlResult;
use crate::sql::exec::Exec;
use crate::sql::rel::{Rel, RelCol};
use crate::value::{Len, SqlType, Value};

const NAME: SqlType = SqlType::NVarChar(Len::N(128));

fn rel(cols: &[(&str, SqlType)], rows: Vec<Vec<Value>>) -> Rel {
    Rel {
        cols: cols
            .iter()
            .map(|(n, t)| RelCol {
                qual: String::new(),
                name: n.to_string(),
                ty: *t,
                nullable: true,
            })
            .collect(),
        rows,
    }
}

fn s(x: &str) -> Value {
    Value::Str(x.to_string())
}

fn i(x: i64) -> Value {
    Value::Int(x)
}

fn b(x: bool) -> Value {
    Value::Bit(x)
}

const ALL_TYPES: [SqlType; 28] = [
    SqlType::TinyInt,
    SqlType::SmallInt,
    SqlType::Int,
    SqlType::BigInt,
    SqlType::Bit,
    SqlType::Decimal(18, 0),
    SqlType::Money,
    SqlType::SmallMoney,
    SqlType::Real,
    SqlType::Float,
    SqlType::Char(1),
    SqlType::VarChar(Len::N(8000)),
    SqlType::NChar(1),
    SqlType::NVarChar(Len::N(4000)),
    SqlType::Text,
    SqlType::NText,
    SqlType::Image,
    SqlType::Binary(1),
    SqlType::VarBinary(Len::N(8000)),
    SqlType::Date,
    SqlType::Time(7),
    SqlType::DateTime,
    SqlType::SmallDateTime,
    SqlType::DateTime2(7),
    SqlType::DateTimeOffset(7),
    SqlType::UniqueIdentifier,
    SqlType::Xml,
    SqlType::RowVersion,
];

/// An LSN in the numeric form the `sys.dm_tran_*` views use: VLF sequence × 10^15 + block
/// × 10^5 + slot (what Microsoft's `fn_convertnumericlsntobinary` template takes apart).
fn numeric_lsn(l: crate::engine::log::Lsn) -> i128 {
    let b = l.0;
    let vlf = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    let block = u32::from_be_bytes([b[4], b[5], b[6], b[7]]);
    let slot = u16::from_be_bytes([b[8], b[9]]);
    i128::from(vlf) * 1_000_000_000_000_000 + i128::from(block) * 100_000 + i128::from(slot)
}

impl Exec<'_> {
    /// A catalog view by name, if `parts` names one.
    pub(crate) fn system_view(&mut self, parts: &[String]) -> SqlResult<Option<Rel>> {
        let (db_name, schema, view) = match parts {
            [s, v] => (self.sess.db.clone(), s.to_lowercase(), v.to_lowercase()),
            [d, s, v] => (d.to_lowercase(), s.to_lowercase(), v.to_lowercase()),
            _ => return Ok(None),
        };
        if schema != "sys" && schema != "information_schema" {
            return Ok(None);
        }
        let db = self.eng.db(&db_name)?;
        let r = match (schema.as_str(), view.as_str()) {
            ("sys", "databases") => rel(
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
            ("sys", "schemas") => rel(
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
            ("sys", "tables") | ("sys", "objects") => {
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
            ("sys", "columns") => {
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
                            i(c.user_type_id.map_or(c.ty.type_id() as i64, i64::from)),
                            i(c.ty.max_length() as i64),
                            i(c.ty.precision() as i64),
                            i(c.ty.scale() as i64),
                            b(c.nullable),
                            b(c.identity.is_some()),
                            b(false),
                            if c.ty.is_string() {
                                s("SQL_Latin1_General_CP1_CI_AS")
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
            ("sys", "types") => {
                // The system types (user_type_id = system_type_id, schema sys), sysname
                // (user_type_id 256 over nvarchar, not nullable), then the database's alias
                // types (Microsoft, "sys.types").
                let mut rows: Vec<Vec<Value>> = ALL_TYPES
                    .iter()
                    .map(|t| {
                        vec![
                            s(t.name()),
                            i(t.type_id() as i64),
                            i(t.type_id() as i64),
                            i(4),
                            i(t.max_length() as i64),
                            i(t.precision() as i64),
                            i(t.scale() as i64),
                            b(true),
                            b(false),
                            b(false),
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
            ("sys", "indexes") => {
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
            ("sys", "index_columns") => {
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
            ("sys", "dm_tran_current_transaction") => {
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
            ("sys", "dm_tran_database_transactions") => {
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
            ("sys", "dm_tran_locks") => {
                let (cols, rows) = self.dm_tran_locks();
                rel(&cols, rows)
            }
            ("sys", "dm_exec_requests") => {
                let (cols, rows) = self.dm_exec_requests();
                rel(&cols, rows)
            }
            ("sys", "partitions") => {
                let view = self.view();
                let db = self.eng.db(&db_name)?;
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
            ("information_schema", "tables") => rel(
                &[
                    ("TABLE_CATALOG", NAME),
                    ("TABLE_SCHEMA", NAME),
                    ("TABLE_NAME", NAME),
                    ("TABLE_TYPE", SqlType::VarChar(Len::N(10))),
                ],
                db.tables
                    .values()
                    .map(|t| vec![s(&db.name), s(&t.schema), s(&t.name), s("BASE TABLE")])
                    .collect(),
            ),
            ("information_schema", "columns") => info_columns(db),
            ("information_schema", "table_constraints") => rel(
                &[
                    ("CONSTRAINT_CATALOG", NAME),
                    ("CONSTRAINT_SCHEMA", NAME),
                    ("CONSTRAINT_NAME", NAME),
                    ("TABLE_CATALOG", NAME),
                    ("TABLE_SCHEMA", NAME),
                    ("TABLE_NAME", NAME),
                    ("CONSTRAINT_TYPE", SqlType::VarChar(Len::N(11))),
                ],
                db.tables
                    .values()
                    .filter_map(|t| {
                        t.pk_name.as_ref().map(|n| {
                            vec![
                                s(&db.name),
                                s(&t.schema),
                                s(n),
                                s(&db.name),
                                s(&t.schema),
                                s(&t.name),
                                s("PRIMARY KEY"),
                            ]
                        })
                    })
                    .collect(),
            ),
            ("information_schema", "key_column_usage") => {
                let mut rows = Vec::new();
                for t in db.tables.values() {
                    if let Some(n) = &t.pk_name {
                        for (k, &c) in t.pk.iter().enumerate() {
                            rows.push(vec![
                                s(&db.name),
                                s(&t.schema),
                                s(n),
                                s(&db.name),
                                s(&t.schema),
                                s(&t.name),
                                s(&t.columns[c].name),
                                i(k as i64 + 1),
                            ]);
                        }
                    }
                }
                rel(
                    &[
                        ("CONSTRAINT_CATALOG", NAME),
                        ("CONSTRAINT_SCHEMA", NAME),
                        ("CONSTRAINT_NAME", NAME),
                        ("TABLE_CATALOG", NAME),
                        ("TABLE_SCHEMA", NAME),
                        ("TABLE_NAME", NAME),
                        ("COLUMN_NAME", NAME),
                        ("ORDINAL_POSITION", SqlType::Int),
                    ],
                    rows,
                )
            }
            _ => return Ok(None),
        };
        Ok(Some(r))
    }
}

fn info_columns(db: &Database) -> Rel {
    let mut rows = Vec::new();
    for t in db.tables.values() {
        for (k, c) in t.columns.iter().enumerate() {
            let char_len = match c.ty {
                SqlType::Char(n) | SqlType::NChar(n) | SqlType::Binary(n) => i(n as i64),
                SqlType::VarChar(Len::N(n))
                | SqlType::NVarChar(Len::N(n))
                | SqlType::VarBinary(Len::N(n)) => i(n as i64),
                SqlType::VarChar(Len::Max)
                | SqlType::NVarChar(Len::Max)
                | SqlType::VarBinary(Len::Max)
                | SqlType::Xml => i(-1),
                _ => Value::Null,
            };
            let numeric = matches!(
                c.ty,
                SqlType::TinyInt
                    | SqlType::SmallInt
                    | SqlType::Int
                    | SqlType::BigInt
                    | SqlType::Decimal(..)
                    | SqlType::Money
                    | SqlType::SmallMoney
                    | SqlType::Real
                    | SqlType::Float
            );
            // An alias-typed column: DATA_TYPE is the base type, DOMAIN_SCHEMA/DOMAIN_NAME
            // name the alias (NULL for system types, sysname included; the latter is
            // unverified).
            let domain = c
                .user_type_id
                .and_then(|id| db.alias_type_by_id(id))
                .map(|a| {
                    (
                        db.schema_name(a.schema_id).unwrap_or("dbo"),
                        a.name.as_str(),
                    )
                });
            let dt_prec = match c.ty {
                SqlType::Time(p) | SqlType::DateTime2(p) | SqlType::DateTimeOffset(p) => {
                    i(p as i64)
                }
                SqlType::DateTime => i(3),
                SqlType::Date | SqlType::SmallDateTime => i(0),
                _ => Value::Null,
            };
            rows.push(vec![
                s(&db.name),
                s(&t.schema),
                s(&t.name),
                s(&c.name),
                i(k as i64 + 1),
                c.default
                    .as_ref()
                    .map(|d| Value::Str(format!("(({d}))")))
                    .unwrap_or(Value::Null),
                s(if c.nullable { "YES" } else { "NO" }),
                s(c.ty.name()),
                char_len,
                if numeric {
                    i(c.ty.precision() as i64)
                } else {
                    Value::Null
                },
                if numeric {
                    i(c.ty.scale() as i64)
                } else {
                    Value::Null
                },
                dt_prec,
                domain.map_or(Value::Null, |(sch, _)| s(sch)),
                domain.map_or(Value::Null, |(_, n)| s(n)),
            ]);
        }
    }
    rel(
        &[
            ("TABLE_CATALOG", NAME),
            ("TABLE_SCHEMA", NAME),
            ("TABLE_NAME", NAME),
            ("COLUMN_NAME", NAME),
            ("ORDINAL_POSITION", SqlType::Int),
            ("COLUMN_DEFAULT", SqlType::NVarChar(Len::N(4000))),
            ("IS_NULLABLE", SqlType::VarChar(Len::N(3))),
            ("DATA_TYPE", NAME),
            ("CHARACTER_MAXIMUM_LENGTH", SqlType::Int),
            ("NUMERIC_PRECISION", SqlType::TinyInt),
            ("NUMERIC_SCALE", SqlType::Int),
            ("DATETIME_PRECISION", SqlType::SmallInt),
            ("DOMAIN_SCHEMA", NAME),
            ("DOMAIN_NAME", NAME),
        ],
        rows,
    )
}
