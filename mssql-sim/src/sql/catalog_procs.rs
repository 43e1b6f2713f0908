//! The ODBC catalog procedures drivers call for metadata (mssql-jdbc's `DatabaseMetaData`):
//! `sp_tables`, `sp_columns` / `sp_columns_100` and `sp_pkeys`, with SQL Server's result shapes
//! (column names, types and order as documented for each procedure, ODBC 3 type codes); and
//! the procedures drivers and Debezium call in T-SQL text: `sp_unprepare` (mssql-jdbc discards
//! handles in bulk with `EXEC sp_unprepare n;...`) and `sys.sp_cdc_help_jobs`.
//!
//! Name arguments are LIKE patterns where SQL Server's are (`%`, `_`, `[x]`); a NULL or missing
//! pattern matches everything. A qualifier other than the current database fails with 15250, as
//! on SQL Server.

use crate::engine::catalog::Database;
use crate::engine::table::Column;
use crate::error::{SqlError, SqlResult};
use crate::sql::eval::like;
use crate::sql::exec::Exec;
use crate::sql::out::{Out, ResultSet};
use crate::sql::procs::Args;
use crate::tds::tokens::ColumnMeta;
use crate::value::{Len, SqlType, Value};

const SYSNAME: SqlType = SqlType::NVarChar(Len::N(128));

fn matches(value: &str, pattern: &Option<String>) -> bool {
    pattern.as_deref().is_none_or(|p| like(value, p))
}

fn meta(cols: &[(&str, SqlType)]) -> Vec<ColumnMeta> {
    cols.iter()
        .map(|(n, t)| ColumnMeta {
            name: n.to_string(),
            ty: *t,
            nullable: true,
            collation: None,
        })
        .collect()
}

fn s(x: &str) -> Value {
    Value::Str(x.to_string())
}

fn i(x: i64) -> Value {
    Value::Int(x)
}

/// What `sp_columns_100` (ODBC 3) reports for a column type: DATA_TYPE, PRECISION, LENGTH,
/// SCALE, RADIX, SQL_DATA_TYPE, SQL_DATETIME_SUB, CHAR_OCTET_LENGTH, SS_DATA_TYPE. `max` types
/// report 0 for PRECISION and LENGTH (drivers turn 0 into "unbounded").
struct OdbcType {
    data_type: i64,
    precision: Value,
    length: Value,
    scale: Value,
    radix: Value,
    sql_data_type: i64,
    datetime_sub: Value,
    octet_length: Value,
    ss_data_type: Value,
}

fn odbc(ty: &SqlType) -> OdbcType {
    let n = Value::Null;
    let num = |dt: i64, p: i64, l: i64, sc: Option<i64>, radix: i64, ss: i64| OdbcType {
        data_type: dt,
        precision: i(p),
        length: i(l),
        scale: sc.map_or(Value::Null, i),
        radix: i(radix),
        sql_data_type: dt,
        datetime_sub: Value::Null,
        octet_length: Value::Null,
        ss_data_type: i(ss),
    };
    let chars = |dt: i64, p: i64, l: i64, ss: Value| OdbcType {
        data_type: dt,
        precision: i(p),
        length: i(l),
        scale: Value::Null,
        radix: Value::Null,
        sql_data_type: dt,
        datetime_sub: Value::Null,
        octet_length: i(l),
        ss_data_type: ss,
    };
    let temporal =
        |dt: i64, sql: i64, sub: Option<i64>, p: i64, l: i64, sc: Option<i64>, ss| OdbcType {
            data_type: dt,
            precision: i(p),
            length: i(l),
            scale: sc.map_or(Value::Null, i),
            radix: Value::Null,
            sql_data_type: sql,
            datetime_sub: sub.map_or(Value::Null, i),
            octet_length: Value::Null,
            ss_data_type: ss,
        };
    let max_len = |l: &Len, per_char: i64| match l {
        Len::N(n) => *n as i64 * per_char,
        Len::Max => 0,
    };
    match ty {
        SqlType::Bit => OdbcType {
            data_type: -7,
            precision: i(1),
            length: i(1),
            scale: n.clone(),
            radix: n.clone(),
            sql_data_type: -7,
            datetime_sub: n.clone(),
            octet_length: n.clone(),
            ss_data_type: i(50),
        },
        SqlType::TinyInt => num(-6, 3, 1, Some(0), 10, 38),
        SqlType::SmallInt => num(5, 5, 2, Some(0), 10, 38),
        SqlType::Int => num(4, 10, 4, Some(0), 10, 38),
        SqlType::BigInt => num(-5, 19, 8, Some(0), 10, 108),
        SqlType::Decimal(p, sc) => num(3, *p as i64, *p as i64 + 2, Some(*sc as i64), 10, 106),
        SqlType::Money => num(3, 19, 21, Some(4), 10, 110),
        SqlType::SmallMoney => num(3, 10, 12, Some(4), 10, 110),
        SqlType::Real => num(7, 24, 4, None, 2, 109),
        SqlType::Float => num(6, 53, 8, None, 2, 109),
        SqlType::Char(l) => chars(1, *l as i64, *l as i64, i(47)),
        SqlType::VarChar(l) => {
            let len = max_len(l, 1);
            chars(12, len, len, i(39))
        }
        SqlType::NChar(l) => chars(-8, *l as i64, *l as i64 * 2, i(39)),
        SqlType::NVarChar(l) => {
            let len = max_len(l, 2);
            chars(-9, len / 2, len, i(39))
        }
        SqlType::Text => chars(-1, 2_147_483_647, 2_147_483_647, i(35)),
        SqlType::NText => chars(-10, 1_073_741_823, 2_147_483_646, i(35)),
        SqlType::Binary(l) => chars(-2, *l as i64, *l as i64, i(45)),
        SqlType::VarBinary(l) => {
            let len = max_len(l, 1);
            chars(-3, len, len, i(37))
        }
        SqlType::Image => chars(-4, 2_147_483_647, 2_147_483_647, i(34)),
        SqlType::RowVersion => chars(-2, 8, 8, i(45)),
        SqlType::UniqueIdentifier => chars(-11, 36, 16, i(37)),
        SqlType::Xml => chars(-152, 0, 0, n.clone()),
        // SQL_SS_UDT (-151), as the ODBC driver reports CLR types.
        SqlType::HierarchyId => chars(-151, 892, 892, n.clone()),
        SqlType::Geometry | SqlType::Geography => chars(-151, 0, 0, n.clone()),
        // SQL_SS_VARIANT (-150).
        SqlType::Variant => chars(-150, 8000, 8016, n.clone()),
        SqlType::Date => temporal(91, 9, Some(1), 10, 6, None, n.clone()),
        SqlType::Time(p) => {
            let p = *p as i64;
            temporal(
                -154,
                -154,
                Some(0),
                if p == 0 { 8 } else { 9 + p },
                12,
                Some(p),
                n.clone(),
            )
        }
        SqlType::DateTime => temporal(93, 9, Some(3), 23, 16, Some(3), i(111)),
        SqlType::SmallDateTime => temporal(93, 9, Some(3), 16, 16, Some(0), i(111)),
        SqlType::DateTime2(p) => {
            let p = *p as i64;
            temporal(
                93,
                9,
                Some(3),
                if p == 0 { 19 } else { 20 + p },
                16,
                Some(p),
                n.clone(),
            )
        }
        SqlType::DateTimeOffset(p) => {
            let p = *p as i64;
            temporal(
                -155,
                -155,
                Some(0),
                if p == 0 { 26 } else { 27 + p },
                20,
                Some(p),
                n.clone(),
            )
        }
    }
}

/// The 29 columns of `sp_columns_100`'s result.
fn sp_columns_cols() -> Vec<ColumnMeta> {
    meta(&[
        ("TABLE_QUALIFIER", SYSNAME),
        ("TABLE_OWNER", SYSNAME),
        ("TABLE_NAME", SYSNAME),
        ("COLUMN_NAME", SYSNAME),
        ("DATA_TYPE", SqlType::SmallInt),
        ("TYPE_NAME", SYSNAME),
        ("PRECISION", SqlType::Int),
        ("LENGTH", SqlType::Int),
        ("SCALE", SqlType::SmallInt),
        ("RADIX", SqlType::SmallInt),
        ("NULLABLE", SqlType::SmallInt),
        ("REMARKS", SqlType::VarChar(Len::N(254))),
        ("COLUMN_DEF", SqlType::NVarChar(Len::N(4000))),
        ("SQL_DATA_TYPE", SqlType::SmallInt),
        ("SQL_DATETIME_SUB", SqlType::SmallInt),
        ("CHAR_OCTET_LENGTH", SqlType::Int),
        ("ORDINAL_POSITION", SqlType::Int),
        ("IS_NULLABLE", SqlType::VarChar(Len::N(254))),
        ("SS_IS_SPARSE", SqlType::SmallInt),
        ("SS_IS_COLUMN_SET", SqlType::SmallInt),
        ("SS_IS_COMPUTED", SqlType::SmallInt),
        ("SS_IS_IDENTITY", SqlType::SmallInt),
        ("SS_UDT_CATALOG_NAME", SqlType::NVarChar(Len::N(128))),
        ("SS_UDT_SCHEMA_NAME", SqlType::NVarChar(Len::N(128))),
        ("SS_UDT_ASSEMBLY_TYPE_NAME", SqlType::NVarChar(Len::Max)),
        (
            "SS_XML_SCHEMACOLLECTION_CATALOG_NAME",
            SqlType::NVarChar(Len::N(128)),
        ),
        (
            "SS_XML_SCHEMACOLLECTION_SCHEMA_NAME",
            SqlType::NVarChar(Len::N(128)),
        ),
        (
            "SS_XML_SCHEMACOLLECTION_NAME",
            SqlType::NVarChar(Len::N(128)),
        ),
        ("SS_DATA_TYPE", SqlType::TinyInt),
    ])
}

/// The TYPE_NAME `sp_columns` shows: the type's name, with ` identity` for identity columns.
fn type_name(c: &Column) -> String {
    let base = c.ty.name();
    if c.identity.is_some() {
        format!("{base} identity")
    } else {
        base.to_string()
    }
}

fn wrong_qualifier() -> SqlError {
    SqlError::new(
        15250,
        "The database name component of the object qualifier must be the name of the current database.",
    )
    .class(16)
}

impl Exec<'_> {
    /// Runs a catalog procedure if `name` is one; `Ok(false)` when it is not.
    pub(crate) fn catalog_proc(&mut self, name: &str, a: &Args) -> SqlResult<bool> {
        if name == "sp_unprepare" {
            self.sess.prepared.unprepare(a.get("handle", 0).as_ref())?;
            self.done(None);
            return Ok(true);
        }
        let rs = match name {
            "sp_tables" => self.sp_tables(a)?,
            "sp_columns" | "sp_columns_100" => self.sp_columns(a)?,
            "sp_pkeys" => self.sp_pkeys(a)?,
            "sp_cdc_help_jobs" => self.sp_cdc_help_jobs()?,
            _ => return Ok(false),
        };
        let n = rs.rows.len() as u64;
        self.out.push(Out::Rows(rs));
        self.done(Some(n));
        Ok(true)
    }

    /// The current database, after checking a qualifier argument against it.
    fn qualified_db(&self, qualifier: Option<String>) -> SqlResult<&Database> {
        let db = self.eng.db(&self.sess.db)?;
        if let Some(q) = qualifier
            && !q.eq_ignore_ascii_case(&db.name)
        {
            return Err(wrong_qualifier());
        }
        Ok(db)
    }

    /// `sp_tables @table_name, @table_owner, @table_qualifier, @table_type`: TABLE_QUALIFIER,
    /// TABLE_OWNER, TABLE_NAME, TABLE_TYPE (`TABLE`, `SYSTEM TABLE`), REMARKS, ordered by
    /// TABLE_TYPE, TABLE_QUALIFIER, TABLE_OWNER, TABLE_NAME. `@table_type` is a quoted list such
    /// as `'TABLE','VIEW'`.
    fn sp_tables(&mut self, a: &Args) -> SqlResult<ResultSet> {
        let name = a.text("table_name", 0);
        let owner = a.text("table_owner", 1);
        let db = self.qualified_db(a.text("table_qualifier", 2))?;
        let types: Option<Vec<String>> = a.text("table_type", 3).map(|t| {
            t.split(',')
                .map(|x| {
                    x.trim()
                        .trim_matches(|c| c == '\'' || c == '"')
                        .to_uppercase()
                })
                .collect()
        });
        let mut rows: Vec<Vec<Value>> = Vec::new();
        for t in db.tables.values() {
            let kind = if t.system { "SYSTEM TABLE" } else { "TABLE" };
            if !matches(&t.name, &name) || !matches(&t.schema, &owner) {
                continue;
            }
            if types
                .as_ref()
                .is_some_and(|ts| !ts.iter().any(|x| x == kind))
            {
                continue;
            }
            rows.push(vec![
                s(&db.name),
                s(&t.schema),
                s(&t.name),
                s(kind),
                Value::Null,
            ]);
        }
        let key = |r: &Vec<Value>| {
            r.iter()
                .take(4)
                .map(|v| v.to_text().unwrap_or_default())
                .collect::<Vec<_>>()
        };
        rows.sort_by_key(|r| {
            let k = key(r);
            (k[3].clone(), k[0].clone(), k[1].clone(), k[2].clone())
        });
        Ok(ResultSet {
            cols: meta(&[
                ("TABLE_QUALIFIER", SYSNAME),
                ("TABLE_OWNER", SYSNAME),
                ("TABLE_NAME", SYSNAME),
                ("TABLE_TYPE", SqlType::VarChar(Len::N(32))),
                ("REMARKS", SqlType::VarChar(Len::N(254))),
            ]),
            rows,
        })
    }

    /// `sp_columns_100 @table_name, @table_owner, @table_qualifier, @column_name, @NameScope,
    /// @ODBCVer` (and `sp_columns` with the first 19 of its columns' shape): one row per column,
    /// ordered by TABLE_QUALIFIER, TABLE_OWNER, TABLE_NAME, ORDINAL_POSITION.
    fn sp_columns(&mut self, a: &Args) -> SqlResult<ResultSet> {
        if !a.given("table_name", 0) {
            return Err(crate::sql::procs::missing("sp_columns_100", "table_name"));
        }
        // An explicit NULL matches no table (the procedures compare names with `=`/LIKE).
        let Some(name) = a.text("table_name", 0) else {
            return Ok(ResultSet {
                cols: sp_columns_cols(),
                rows: Vec::new(),
            });
        };
        let name = Some(name);
        let owner = a.text("table_owner", 1);
        let column = a.text("column_name", 3);
        let db = self.qualified_db(a.text("table_qualifier", 2))?;
        let mut tables: Vec<_> = db
            .tables
            .values()
            .filter(|t| matches(&t.name, &name) && matches(&t.schema, &owner))
            .collect();
        tables.sort_by_key(|t| (t.schema.to_lowercase(), t.name.to_lowercase()));
        let mut rows = Vec::new();
        for t in tables {
            for (k, c) in t.columns.iter().enumerate() {
                if !matches(&c.name, &column) {
                    continue;
                }
                let o = odbc(&c.ty);
                rows.push(vec![
                    s(&db.name),
                    s(&t.schema),
                    s(&t.name),
                    s(&c.name),
                    i(o.data_type),
                    s(&type_name(c)),
                    o.precision,
                    o.length,
                    o.scale,
                    o.radix,
                    i(i64::from(c.nullable)),
                    Value::Null,
                    c.default
                        .as_ref()
                        .map(|d| Value::Str(format!("(({d}))")))
                        .unwrap_or(Value::Null),
                    i(o.sql_data_type),
                    o.datetime_sub,
                    o.octet_length,
                    i(k as i64 + 1),
                    s(if c.nullable { "YES" } else { "NO" }),
                    i(0),
                    i(0),
                    i(0),
                    i(i64::from(c.identity.is_some())),
                    Value::Null,
                    Value::Null,
                    Value::Null,
                    Value::Null,
                    Value::Null,
                    Value::Null,
                    o.ss_data_type,
                ]);
            }
        }
        Ok(ResultSet {
            cols: sp_columns_cols(),
            rows,
        })
    }

    /// `sys.sp_cdc_help_jobs`: the capture and cleanup jobs with SQL Server's defaults (capture:
    /// maxtrans 500, maxscans 10, continuous, pollinginterval 5 s; cleanup: retention 4320 min,
    /// threshold 5000). 22901 when the database is not enabled for CDC.
    fn sp_cdc_help_jobs(&mut self) -> SqlResult<ResultSet> {
        let db = self.eng.db(&self.sess.db)?;
        if self.cdc.db(&db.name).is_none() {
            return Err(SqlError::new(
                22901,
                format!(
                    "The database '{}' is not enabled for Change Data Capture.",
                    db.name
                ),
            )
            .class(16));
        }
        // Stable per database, as a job id is.
        let job_id = |kind: u8| {
            let mut b = [0u8; 16];
            b[..4].copy_from_slice(&db.id.to_be_bytes());
            b[15] = kind;
            Value::Guid(uuid::Uuid::from_bytes(b))
        };
        let rows = vec![
            vec![
                job_id(1),
                s("capture"),
                s(&format!("cdc.{}_capture", db.name)),
                i(500),
                i(10),
                Value::Bit(true),
                i(5),
                i(0),
                i(0),
            ],
            vec![
                job_id(2),
                s("cleanup"),
                s(&format!("cdc.{}_cleanup", db.name)),
                i(0),
                i(0),
                Value::Bit(false),
                i(0),
                i(4320),
                i(5000),
            ],
        ];
        Ok(ResultSet {
            cols: meta(&[
                ("job_id", SqlType::UniqueIdentifier),
                ("job_type", SqlType::NVarChar(Len::N(20))),
                ("job_name", SYSNAME),
                ("maxtrans", SqlType::Int),
                ("maxscans", SqlType::Int),
                ("continuous", SqlType::Bit),
                ("pollinginterval", SqlType::BigInt),
                ("retention", SqlType::BigInt),
                ("threshold", SqlType::BigInt),
            ]),
            rows,
        })
    }

    /// `sp_pkeys @table_name, @table_owner, @table_qualifier`: TABLE_QUALIFIER, TABLE_OWNER,
    /// TABLE_NAME, COLUMN_NAME, KEY_SEQ, PK_NAME, ordered by the first three and KEY_SEQ. Names
    /// are exact here, not patterns.
    fn sp_pkeys(&mut self, a: &Args) -> SqlResult<ResultSet> {
        if !a.given("table_name", 0) {
            return Err(crate::sql::procs::missing("sp_pkeys", "table_name"));
        }
        let name = a.text("table_name", 0).unwrap_or_default();
        let owner = a.text("table_owner", 1);
        let db = self.qualified_db(a.text("table_qualifier", 2))?;
        let mut rows = Vec::new();
        let mut tables: Vec<_> = db
            .tables
            .values()
            .filter(|t| {
                t.name.eq_ignore_ascii_case(&name)
                    && owner
                        .as_deref()
                        .is_none_or(|o| t.schema.eq_ignore_ascii_case(o))
            })
            .collect();
        tables.sort_by_key(|t| t.schema.to_lowercase());
        for t in tables {
            let Some(pk_name) = &t.pk_name else { continue };
            for (k, &c) in t.pk.iter().enumerate() {
                rows.push(vec![
                    s(&db.name),
                    s(&t.schema),
                    s(&t.name),
                    s(&t.columns[c].name),
                    i(k as i64 + 1),
                    s(pk_name),
                ]);
            }
        }
        Ok(ResultSet {
            cols: meta(&[
                ("TABLE_QUALIFIER", SYSNAME),
                ("TABLE_OWNER", SYSNAME),
                ("TABLE_NAME", SYSNAME),
                ("COLUMN_NAME", SYSNAME),
                ("KEY_SEQ", SqlType::SmallInt),
                ("PK_NAME", SYSNAME),
            ]),
            rows,
        })
    }
}
