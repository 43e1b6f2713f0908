//! The capture instances of a database: which tables, which columns, which keys.

use crate::connection::{Connection, SqlClient};
use crate::types::select_expression;
use crate::{Error, MssqlConfig, query};
use cdc_core::{Column, DataType, Lsn, TableId, TableSchema};
use chrono::NaiveDateTime;
use futures::FutureExt;
use std::collections::HashMap;
use std::sync::Arc;
use tiberius::Row;

/// One capture instance (`cdc.<name>_CT`) and the schema of the rows it yields.
#[derive(Debug, Clone)]
pub(crate) struct CaptureInstance {
    pub(crate) name: String,
    /// The change table's object id: an instance disabled and re-created under the same
    /// name is another instance, with another change table.
    pub(crate) object_id: i64,
    /// The lowest LSN the instance still holds (raised by cleanup).
    pub(crate) min_lsn: Lsn,
    pub(crate) created: Option<NaiveDateTime>,
    /// The captured columns the reader emits (excluded columns removed).
    pub(crate) table: Arc<TableSchema>,
    /// `, [c1], CAST([m] AS decimal(19,4)) AS [m], …` for the change-table query.
    pub(crate) select_list: String,
    /// Whether the event key (`table.primary_key`) identifies rows: a primary key, or the
    /// capture instance's unique index whose columns are all `NOT NULL`, none of them
    /// `sql_variant`. Only such a key chunks a snapshot (a keyset over a non-unique or
    /// nullable key would skip rows, and a sql_variant's bytes cannot be bound back); a
    /// table keyed otherwise is snapshotted in one query.
    pub(crate) key_identifies_rows: bool,
    /// The large-object columns, which change tables hold as NULL where they did not
    /// capture the value (see [`Lob`]).
    pub(crate) lobs: Vec<Lob>,
}

/// A large-object column of a capture instance. SQL Server's change tables hold `text`,
/// `ntext` and `image` as NULL in delete and update-before rows, and `varchar(max)`,
/// `nvarchar(max)`, `varbinary(max)` as NULL in update-before rows unless the update changed
/// them (Microsoft, "cdc.<capture_instance>_CT", Large object data types).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Lob {
    /// Index of the column among the emitted values.
    pub(crate) value: usize,
    /// The column's `cdc.captured_columns.column_ordinal`: its bit in `__$update_mask`.
    pub(crate) ordinal: usize,
    /// `text`/`ntext`/`image` (never captured in delete and update-before rows) rather than
    /// a `(max)` type.
    pub(crate) legacy: bool,
}

impl Lob {
    fn of(value: usize, ordinal: usize, data_type: &DataType) -> Option<Self> {
        let legacy = match data_type {
            DataType::Text | DataType::NText | DataType::Image => true,
            DataType::VarChar { length: None }
            | DataType::NVarChar { length: None }
            | DataType::VarBinary { length: None } => false,
            _ => return None,
        };
        Some(Self {
            value,
            ordinal,
            legacy,
        })
    }
}

/// The capture instances of one database, grouped by source table, oldest first.
#[derive(Debug, Clone, Default)]
pub(crate) struct Catalog {
    pub(crate) tables: Vec<Vec<CaptureInstance>>,
}

/// The identity of the instance set: names and change-table object ids, with their low-water
/// marks. Cheap to read on every poll; the full catalog is reloaded only when an identity
/// changes (an instance added, dropped, or disabled and re-created under its name).
pub(crate) type InstanceMarks = Vec<(String, i64, Lsn)>;

fn text(row: &Row, i: usize) -> Result<String, tiberius::error::Error> {
    Ok(row.try_get::<&str, _>(i)?.unwrap_or_default().to_string())
}

fn lsn(row: &Row, i: usize, what: &str) -> Result<Lsn, Error> {
    let bytes = row
        .try_get::<&[u8], _>(i)
        .map_err(|e| Error::protocol(what, e.to_string()))?;
    bytes
        .and_then(Lsn::from_bytes)
        .ok_or_else(|| Error::protocol(what, "not a binary(10) LSN"))
}

pub(crate) fn int(row: &Row, i: usize) -> Result<i64, tiberius::error::Error> {
    let data = row.get_column_data(i)?;
    Ok(match data {
        tiberius::ColumnData::U8(v) => v.map(i64::from),
        tiberius::ColumnData::I16(v) => v.map(i64::from),
        tiberius::ColumnData::I32(v) => v.map(i64::from),
        tiberius::ColumnData::I64(v) => *v,
        tiberius::ColumnData::Bit(v) => v.map(i64::from),
        _ => None,
    }
    .unwrap_or_default())
}

/// Reads the low-water marks of the capture instances.
pub(crate) async fn marks(conn: &mut Connection) -> Result<InstanceMarks, Error> {
    let rows = conn
        .run("cdc.change_tables", |c| {
            query::batch_rows(c, query::CHANGE_TABLES).boxed()
        })
        .await?;
    let mut marks = rows
        .iter()
        .map(|r| {
            Ok((
                text(r, 0).map_err(|e| Error::protocol("cdc.change_tables", e.to_string()))?,
                int(r, 1).map_err(|e| Error::protocol("cdc.change_tables", e.to_string()))?,
                lsn(r, 3, "cdc.change_tables.start_lsn")?,
            ))
        })
        .collect::<Result<InstanceMarks, Error>>()?;
    marks.sort();
    Ok(marks)
}

/// Whether CDC is enabled on the connection's database.
pub(crate) async fn cdc_enabled(conn: &mut Connection) -> Result<bool, Error> {
    let rows = conn
        .run("sys.databases", |c| {
            query::batch_rows(c, query::CDC_ENABLED).boxed()
        })
        .await?;
    Ok(rows
        .first()
        .map(|r| int(r, 0))
        .transpose()
        .map_err(|e| Error::protocol("sys.databases", e.to_string()))?
        .unwrap_or(0)
        != 0)
}

struct Raw {
    change_tables: Vec<Row>,
    tables: Vec<Row>,
    captured: Vec<Row>,
    columns: Vec<Row>,
    key_constraints: Vec<Row>,
    key_columns: Vec<Row>,
    index_columns: Vec<Row>,
}

async fn fetch(c: &mut SqlClient) -> Result<Raw, tiberius::error::Error> {
    Ok(Raw {
        change_tables: query::batch_rows(c, query::CHANGE_TABLES).await?,
        tables: query::batch_rows(c, query::TABLES).await?,
        captured: query::batch_rows(c, query::CAPTURED_COLUMNS).await?,
        columns: query::batch_rows(c, query::COLUMNS).await?,
        key_constraints: query::batch_rows(c, query::KEY_CONSTRAINTS).await?,
        key_columns: query::batch_rows(c, query::KEY_COLUMNS).await?,
        index_columns: query::batch_rows(c, query::INDEX_COLUMNS).await?,
    })
}

/// Column type facts from `sys.columns`: (type name, max_length, precision, scale, nullable).
type ColumnFacts = (String, i32, u8, u8, bool, bool);

/// Loads every capture instance of the included tables, with schemas and keys.
pub(crate) async fn load(conn: &mut Connection, config: &MssqlConfig) -> Result<Catalog, Error> {
    let database = conn.database().to_string();
    let raw = conn.run("catalog", |c| fetch(c).boxed()).await?;
    let p = |what: &str| {
        let what = what.to_string();
        move |e: tiberius::error::Error| Error::protocol(what.clone(), e.to_string())
    };

    let mut names: HashMap<i64, (String, String)> = HashMap::new();
    for r in &raw.tables {
        names.insert(
            int(r, 0).map_err(p("sys.tables"))?,
            (
                text(r, 1).map_err(p("sys.tables"))?,
                text(r, 2).map_err(p("sys.tables"))?,
            ),
        );
    }
    let mut columns: HashMap<i64, HashMap<String, ColumnFacts>> = HashMap::new();
    for r in &raw.columns {
        let facts = (
            text(r, 2).map_err(p("sys.columns"))?,
            i32::try_from(int(r, 3).map_err(p("sys.columns"))?).unwrap_or(-1),
            u8::try_from(int(r, 4).map_err(p("sys.columns"))?).unwrap_or(0),
            u8::try_from(int(r, 5).map_err(p("sys.columns"))?).unwrap_or(0),
            int(r, 6).map_err(p("sys.columns"))? != 0,
            text(r, 7)
                .map_err(p("sys.columns"))?
                .to_ascii_lowercase()
                .ends_with("_utf8"),
        );
        columns
            .entry(int(r, 0).map_err(p("sys.columns"))?)
            .or_default()
            .insert(text(r, 1).map_err(p("sys.columns"))?.to_lowercase(), facts);
    }
    let mut constraint_of: HashMap<(String, String), String> = HashMap::new();
    for r in &raw.key_constraints {
        let k = p("INFORMATION_SCHEMA.TABLE_CONSTRAINTS");
        constraint_of.insert(
            (
                text(r, 0).map_err(&k)?.to_lowercase(),
                text(r, 1).map_err(&k)?.to_lowercase(),
            ),
            text(r, 2).map_err(&k)?,
        );
    }
    let mut key_columns: HashMap<(String, String), Vec<(i64, String)>> = HashMap::new();
    for r in &raw.key_columns {
        let k = p("INFORMATION_SCHEMA.KEY_COLUMN_USAGE");
        let table = (
            text(r, 0).map_err(&k)?.to_lowercase(),
            text(r, 1).map_err(&k)?.to_lowercase(),
        );
        if constraint_of
            .get(&table)
            .is_some_and(|c| *c == text(r, 2).unwrap_or_default())
        {
            key_columns
                .entry(table)
                .or_default()
                .push((int(r, 4).map_err(&k)?, text(r, 3).map_err(&k)?));
        }
    }
    let mut captured: HashMap<i64, Vec<(i64, String)>> = HashMap::new();
    for r in &raw.captured {
        let k = p("cdc.captured_columns");
        captured
            .entry(int(r, 0).map_err(&k)?)
            .or_default()
            .push((int(r, 2).map_err(&k)?, text(r, 1).map_err(&k)?));
    }

    let mut index_columns: HashMap<i64, Vec<(i64, String)>> = HashMap::new();
    for r in &raw.index_columns {
        let k = p("cdc.index_columns");
        index_columns
            .entry(int(r, 0).map_err(&k)?)
            .or_default()
            .push((int(r, 2).map_err(&k)?, text(r, 1).map_err(&k)?));
    }

    let mut by_table: HashMap<i64, Vec<CaptureInstance>> = HashMap::new();
    for r in &raw.change_tables {
        let k = p("cdc.change_tables");
        let name = text(r, 0).map_err(&k)?;
        let ct_object = int(r, 1).map_err(&k)?;
        let source_object = int(r, 2).map_err(&k)?;
        let Some((schema, table)) = names.get(&source_object).cloned() else {
            continue;
        };
        if !config.table_included(&schema, &table) {
            continue;
        }
        let mut cols = captured.remove(&ct_object).unwrap_or_default();
        cols.sort();
        let ct_columns = columns.get(&ct_object);
        let src_columns = columns.get(&source_object);
        let mut schema_columns = Vec::new();
        let mut select_list = String::new();
        let mut lobs = Vec::new();
        for (ordinal, column) in cols {
            if config.column_excluded(&schema, &table, &column) {
                continue;
            }
            let lower = column.to_lowercase();
            // The source table's type first (a change table stores rowversion as binary(8)),
            // the change table's for a column since dropped from the source.
            let facts = src_columns
                .and_then(|c| c.get(&lower))
                .or_else(|| ct_columns.and_then(|c| c.get(&lower)));
            let Some((type_name, max_length, precision, scale, _, utf8)) = facts else {
                return Err(Error::protocol(
                    "sys.columns",
                    format!("no type for captured column {column:?} of {name}"),
                ));
            };
            let data_type = DataType::from_sql(type_name, *max_length, *precision, *scale)
                .ok_or_else(|| Error::Value {
                    table: format!("{schema}.{table}"),
                    column: column.clone(),
                    reason: format!("unsupported SQL Server type {type_name}"),
                })?;
            // Nullability comes from the source table: change-table columns are all nullable.
            let nullable = src_columns.and_then(|c| c.get(&lower)).is_none_or(|f| f.4);
            select_list.push_str(", ");
            select_list.push_str(&select_expression(&column, &data_type, *utf8));
            lobs.extend(
                usize::try_from(ordinal)
                    .ok()
                    .and_then(|ordinal| Lob::of(schema_columns.len(), ordinal, &data_type)),
            );
            schema_columns.push(Column::new(column, data_type, nullable));
        }
        let ordered = |mut k: Vec<(i64, String)>| -> Vec<String> {
            k.sort();
            k.into_iter().map(|(_, c)| c).collect()
        };
        let primary = ordered(
            key_columns
                .get(&(schema.to_lowercase(), table.to_lowercase()))
                .cloned()
                .unwrap_or_default(),
        );
        // The capture instance's row identity: the primary key or the unique index named by
        // @index_name (what Debezium keys a table without a primary key by).
        let index = ordered(index_columns.get(&ct_object).cloned().unwrap_or_default());
        let not_null = |k: &[String]| {
            k.iter().all(|c| {
                src_columns
                    .and_then(|cs| cs.get(&c.to_lowercase()))
                    .is_some_and(|f| !f.4)
            })
        };
        let same_set = |a: &[String], b: &[String]| {
            a.len() == b.len()
                && a.iter()
                    .all(|x| b.iter().any(|y| x.eq_ignore_ascii_case(y)))
        };
        let configured = config.message_key_columns_of(&database, &schema, &table);
        let (key, key_identifies_rows): (Vec<String>, bool) = match configured {
            // message.key.columns overrides the table's own key, as in Debezium; its
            // columns must be emitted.
            Some(columns) => {
                let mut key = Vec::new();
                for wanted in columns {
                    let found = schema_columns
                        .iter()
                        .find(|c| c.name.eq_ignore_ascii_case(wanted))
                        .ok_or_else(|| {
                            Error::config(
                                "message_key_columns",
                                format!(
                                    "{schema}.{table} has no captured column {wanted:?} (capture instance {name})"
                                ),
                            )
                        })?;
                    key.push(found.name.clone());
                }
                let unique = (!primary.is_empty() && same_set(&key, &primary))
                    || (!index.is_empty() && same_set(&key, &index) && not_null(&index));
                (key, unique)
            }
            None if !primary.is_empty() => (primary, true),
            None if !index.is_empty() => {
                let unique = not_null(&index);
                (index, unique)
            }
            None => (Vec::new(), false),
        };
        // Key columns that are not captured cannot key the events.
        let (key, key_identifies_rows) = if key.iter().all(|k| {
            schema_columns
                .iter()
                .any(|c| c.name.eq_ignore_ascii_case(k))
        }) {
            let key = key
                .iter()
                .filter_map(|k| {
                    schema_columns
                        .iter()
                        .find(|c| c.name.eq_ignore_ascii_case(k))
                        .map(|c| c.name.clone())
                })
                .collect();
            (key, key_identifies_rows)
        } else {
            (Vec::new(), false)
        };
        // A sql_variant key is read as its SSVARIANT bytes, which cannot be bound back as
        // the value they hold (SQL Server refuses varbinary against sql_variant, 206), so
        // such a table is read in one query.
        let key_identifies_rows = key_identifies_rows
            && key.iter().all(|k: &String| {
                !schema_columns.iter().any(|c| {
                    c.name == *k
                        && matches!(&c.data_type, DataType::Opaque { type_name } if type_name == "sql_variant")
                })
            });
        let created = r.try_get::<NaiveDateTime, _>(4).ok().flatten();
        let id = TableId::new(database.clone(), schema, table);
        let version = created.map_or(1, |t| {
            u32::try_from((t - epoch_2000()).num_seconds()).unwrap_or(1)
        });
        let table = TableSchema::with_version(id, schema_columns, key, version)
            .map_err(|e| Error::protocol("catalog", e.to_string()))?;
        by_table
            .entry(source_object)
            .or_default()
            .push(CaptureInstance {
                name,
                object_id: ct_object,
                min_lsn: lsn(r, 3, "cdc.change_tables.start_lsn")?,
                created,
                table: Arc::new(table),
                select_list,
                key_identifies_rows,
                lobs,
            });
    }
    let mut tables: Vec<Vec<CaptureInstance>> = by_table.into_values().collect();
    for instances in &mut tables {
        instances.sort_by_key(|i| (i.created, i.min_lsn));
        // Versions must grow with each newer instance even if created within one second.
        for i in 1..instances.len() {
            if instances[i].table.version <= instances[i - 1].table.version {
                let mut t = (*instances[i].table).clone();
                t.version = instances[i - 1].table.version + 1;
                instances[i].table = Arc::new(t);
            }
        }
    }
    tables.sort_by(|a, b| a[0].table.id.cmp(&b[0].table.id));
    Ok(Catalog { tables })
}

/// Capture instance versions count seconds from 2000-01-01, so they grow with each new
/// instance and stay the same across restarts.
fn epoch_2000() -> NaiveDateTime {
    chrono::NaiveDate::from_ymd_opt(2000, 1, 1)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .unwrap_or_default()
}
