//! The CDC system procedures: `sys.sp_cdc_enable_db` / `disable_db`, `enable_table` /
//! `disable_table` (capture instances and their change tables) and
//! `sp_cdc_cleanup_change_table`.

use crate::cdc::state::{CaptureInstance, Cdc, Lob};
use crate::engine::catalog::{Database, Engine, key, now};
use crate::engine::log::{Lsn, shown};
use crate::engine::table::{Column, Table};
use crate::error::{SqlError, SqlResult};
use crate::value::{Len, SqlType, Value};

pub(crate) fn lsn_val(l: Lsn) -> Value {
    Value::Bytes(l.to_bytes().to_vec())
}

fn sys_table(
    eng: &mut Engine,
    db: &str,
    name: &str,
    cols: &[(&str, SqlType, bool)],
) -> SqlResult<()> {
    let id = eng.alloc_object_id();
    let columns = cols
        .iter()
        .enumerate()
        .map(|(i, (n, t, null))| Column {
            name: n.to_string(),
            ty: *t,
            nullable: *null,
            column_id: i as i32 + 1,
            identity: None,
            default: None,
            computed: None,
            user_type_id: None,
        })
        .collect();
    let mut t = Table::new(id, "cdc", name, columns, vec![], now());
    t.system = true;
    eng.db_mut(db)?.tables.insert(key("cdc", name), t);
    Ok(())
}

const SYSNAME: SqlType = SqlType::NVarChar(Len::N(128));
const LSN: SqlType = SqlType::Binary(10);

/// `sys.sp_cdc_enable_db`
pub(crate) fn enable_db(eng: &mut Engine, cdcs: &mut Cdc, db: &str) -> SqlResult<()> {
    eng.db(db)?;
    if cdcs.db(db).is_some() {
        return Ok(());
    }
    if matches!(db, "master" | "tempdb" | "model" | "msdb") {
        return Err(SqlError::new(22988, "This instance of SQL Server is not configured for change data capture on system databases.").state(1));
    }
    {
        let d = eng.db_mut(db)?;
        if d.schema_id("cdc").is_none() {
            d.schemas.push((5, "cdc".into()));
        }
    }
    sys_table(
        eng,
        db,
        "change_tables",
        &[
            ("object_id", SqlType::Int, false),
            ("version", SqlType::Int, true),
            ("source_object_id", SqlType::Int, true),
            ("capture_instance", SYSNAME, false),
            ("start_lsn", LSN, true),
            ("end_lsn", LSN, true),
            ("supports_net_changes", SqlType::Bit, true),
            ("has_drop_pending", SqlType::Bit, true),
            ("role_name", SYSNAME, true),
            ("index_name", SYSNAME, true),
            ("filegroup_name", SYSNAME, true),
            ("create_date", SqlType::DateTime, true),
            ("partition_switch", SqlType::Bit, false),
        ],
    )?;
    sys_table(
        eng,
        db,
        "captured_columns",
        &[
            ("object_id", SqlType::Int, false),
            ("column_name", SYSNAME, false),
            ("column_id", SqlType::Int, true),
            ("column_type", SYSNAME, true),
            ("column_ordinal", SqlType::Int, false),
            ("is_computed", SqlType::Bit, true),
            ("masking_function", SqlType::NVarChar(Len::N(4000)), true),
        ],
    )?;
    sys_table(
        eng,
        db,
        "lsn_time_mapping",
        &[
            ("start_lsn", LSN, false),
            ("tran_begin_time", SqlType::DateTime, true),
            ("tran_end_time", SqlType::DateTime, true),
            ("tran_id", SqlType::VarBinary(Len::N(10)), true),
            ("tran_begin_lsn", LSN, true),
        ],
    )?;
    sys_table(
        eng,
        db,
        "ddl_history",
        &[
            ("source_object_id", SqlType::Int, true),
            ("object_id", SqlType::Int, false),
            ("required_column_update", SqlType::Bit, true),
            ("ddl_command", SqlType::NVarChar(Len::Max), true),
            ("ddl_lsn", LSN, false),
            ("ddl_time", SqlType::DateTime, true),
        ],
    )?;
    sys_table(
        eng,
        db,
        "index_columns",
        &[
            ("object_id", SqlType::Int, false),
            ("column_name", SYSNAME, false),
            ("index_ordinal", SqlType::TinyInt, false),
            ("column_id", SqlType::Int, false),
        ],
    )?;
    cdcs.enable(db);
    Ok(())
}

/// `sys.sp_cdc_disable_db`
pub(crate) fn disable_db(eng: &mut Engine, cdcs: &mut Cdc, db: &str) -> SqlResult<()> {
    let d = eng.db_mut(db)?;
    cdcs.forget(db);
    d.tables
        .retain(|_, t| !t.schema.eq_ignore_ascii_case("cdc"));
    d.schemas.retain(|(_, n)| !n.eq_ignore_ascii_case("cdc"));
    Ok(())
}

fn not_enabled(db: &str) -> SqlError {
    SqlError::new(22901, format!("The database '{db}' is not enabled for Change Data Capture. Ensure that the correct database context is set and retry the operation. To report on the databases enabled for Change Data Capture, query the is_cdc_enabled column in the sys.databases catalog view.")).state(1)
}

/// Parameters of `sys.sp_cdc_enable_table`.
#[derive(Debug, Default)]
pub(crate) struct EnableTable {
    pub(crate) schema: String,
    pub(crate) name: String,
    pub(crate) role: Option<String>,
    pub(crate) capture_instance: Option<String>,
    pub(crate) columns: Option<Vec<String>>,
    pub(crate) net_changes: Option<bool>,
    /// `@index_name`: a unique index that identifies rows instead of the primary key.
    pub(crate) index_name: Option<String>,
}

/// `sys.sp_cdc_enable_table`
pub(crate) fn enable_table(
    eng: &mut Engine,
    cdcs: &mut Cdc,
    db: &str,
    p: EnableTable,
) -> SqlResult<()> {
    let ct_id = eng.alloc_object_id();
    let d = eng.db_mut(db)?;
    let dbname = d.name.clone();
    if cdcs.db(db).is_none() {
        return Err(not_enabled(&dbname));
    }
    let src = d.table(&p.schema, &p.name).ok_or_else(|| {
        SqlError::new(22853, format!("Could not find the source table '{}.{}'. Verify that the table exists in the current database.", p.schema, p.name))
    })?;
    let ci = p
        .capture_instance
        .clone()
        .unwrap_or_else(|| format!("{}_{}", src.schema, src.name));
    let source_object_id = src.object_id;
    // Captured columns keep their collation in the change table.
    let collations = src.collations.clone();
    let captured: Vec<Column> = match &p.columns {
        None => src.columns.to_vec(),
        Some(list) => {
            let mut out = Vec::new();
            for n in list {
                let c = src.columns.iter().find(|c| c.name.eq_ignore_ascii_case(n)).ok_or_else(|| {
                    SqlError::new(22832, format!("Column '{n}' in the captured column list could not be found in source table '{}.{}'.", p.schema, p.name))
                })?;
                out.push(c.clone());
            }
            for &k in &src.pk {
                if !out
                    .iter()
                    .any(|c| c.name.eq_ignore_ascii_case(&src.columns[k].name))
                    && p.net_changes == Some(true)
                {
                    return Err(SqlError::new(
                        22945,
                        "Could not create a capture instance because the captured column list does not contain the primary key columns.",
                    ));
                }
            }
            out.sort_by_key(|c| c.column_id);
            out
        }
    };
    // The row identity: the unique index named by @index_name, else the primary key.
    let (key_cols, index_name): (Vec<usize>, Option<String>) = match &p.index_name {
        Some(name) => {
            let ix = src
                .indexes
                .iter()
                .find(|ix| ix.name.eq_ignore_ascii_case(name))
                .filter(|ix| ix.unique)
                .ok_or_else(|| {
                    // SQL Server refuses a name that is no unique index of the table; the
                    // simulator does not know that error's number, so it says so.
                    SqlError::unsupported(format!(
                        "@index_name = N'{name}', which is not a unique index of '{}.{}'",
                        p.schema, p.name
                    ))
                })?;
            (ix.columns.clone(), Some(ix.name.clone()))
        }
        None => (src.pk.clone(), src.pk_name.clone()),
    };
    let net = p.net_changes.unwrap_or(!key_cols.is_empty());
    if net && key_cols.is_empty() {
        return Err(SqlError::new(
            22939,
            format!(
                "The parameter @supports_net_changes is set to 1, but the source table '{}.{}' does not have a primary key defined and no alternate unique index has been specified.",
                p.schema, p.name
            ),
        ));
    }
    let pk_cols: Vec<(String, i32)> = key_cols
        .iter()
        .map(|&k| (src.columns[k].name.clone(), src.columns[k].column_id))
        .collect();
    let cdc = cdcs.db(db).ok_or_else(|| not_enabled(&dbname))?;
    if cdc.instance(&ci).is_some() {
        return Err(SqlError::new(
            22926,
            format!(
                "Could not create a capture instance because the capture instance name '{ci}' already exists in the current database. Specify an explicit unique name for the parameter @capture_instance."
            ),
        ));
    }
    if cdc
        .instances
        .iter()
        .filter(|i| i.source_object_id == source_object_id)
        .count()
        >= 2
    {
        return Err(SqlError::new(
            22962,
            format!(
                "Two capture instances already exist for source table '{}.{}'. A table can have a maximum of two capture instances. If you want to create a new capture instance for this table, you must first disable one of the existing capture instances.",
                p.schema, p.name
            ),
        ));
    }
    let start_lsn = d.log.next();
    // the change table
    let mut cols = vec![
        Column {
            name: "__$start_lsn".into(),
            ty: LSN,
            nullable: false,
            column_id: 1,
            identity: None,
            default: None,
            computed: None,
            user_type_id: None,
        },
        Column {
            name: "__$end_lsn".into(),
            ty: LSN,
            nullable: true,
            column_id: 2,
            identity: None,
            default: None,
            computed: None,
            user_type_id: None,
        },
        Column {
            name: "__$seqval".into(),
            ty: LSN,
            nullable: false,
            column_id: 3,
            identity: None,
            default: None,
            computed: None,
            user_type_id: None,
        },
        Column {
            name: "__$operation".into(),
            ty: SqlType::Int,
            nullable: false,
            column_id: 4,
            identity: None,
            default: None,
            computed: None,
            user_type_id: None,
        },
        Column {
            name: "__$update_mask".into(),
            ty: SqlType::VarBinary(Len::N(128)),
            nullable: true,
            column_id: 5,
            identity: None,
            default: None,
            computed: None,
            user_type_id: None,
        },
    ];
    for c in &captured {
        let n = cols.len() as i32 + 1;
        cols.push(Column {
            name: c.name.clone(),
            // SQL Server captures timestamp (rowversion) columns as binary(8): the change
            // table's own rows must not get fresh rowversions.
            ty: match c.ty {
                SqlType::RowVersion => SqlType::Binary(8),
                other => other,
            },
            nullable: true,
            column_id: n,
            identity: None,
            default: None,
            computed: None,
            // An alias-typed source column is held as its base type. Microsoft's
            // "cdc.<capture_instance>_CT" page says only that captured columns have the
            // source column's data type (timestamp and identity excepted) and does not
            // mention alias types; that the change table keeps the base type rather than the
            // alias is unverified. Readers of sys.columns see the base type either way.
            user_type_id: None,
        });
    }
    let n = cols.len() as i32 + 1;
    cols.push(Column {
        name: "__$command_id".into(),
        ty: SqlType::Int,
        nullable: true,
        column_id: n,
        identity: None,
        default: None,
        computed: None,
        user_type_id: None,
    });
    let mut ct = Table::new(ct_id, "cdc", &format!("{ci}_CT"), cols, vec![], now());
    ct.system = true;
    ct.collations = collations;
    d.tables.insert(key("cdc", &format!("{ci}_CT")), ct);
    let created = now();
    if let Some(t) = d.table_mut("cdc", "change_tables") {
        t.push(
            vec![
                Value::Int(ct_id as i64),
                Value::Int(0),
                Value::Int(source_object_id as i64),
                Value::Str(ci.clone()),
                lsn_val(start_lsn),
                Value::Null,
                Value::Bit(net),
                Value::Null,
                p.role.clone().map(Value::Str).unwrap_or(Value::Null),
                index_name.map(Value::Str).unwrap_or(Value::Null),
                Value::Null,
                Value::DateTime(created),
                Value::Bit(false),
            ],
            0,
        );
    }
    if let Some(t) = d.table_mut("cdc", "captured_columns") {
        for (i, c) in captured.iter().enumerate() {
            t.push(
                vec![
                    Value::Int(ct_id as i64),
                    Value::Str(c.name.clone()),
                    Value::Int(c.column_id as i64),
                    Value::Str(c.ty.name().to_string()),
                    Value::Int(i as i64 + 1),
                    Value::Bit(c.computed.is_some()),
                    Value::Null,
                ],
                0,
            );
        }
    }
    if let Some(t) = d.table_mut("cdc", "index_columns") {
        for (i, (n, id)) in pk_cols.iter().enumerate() {
            t.push(
                vec![
                    Value::Int(ct_id as i64),
                    Value::Str(n.clone()),
                    Value::Int(i as i64 + 1),
                    Value::Int(*id as i64),
                ],
                0,
            );
        }
    }
    if let Some(cdc) = cdcs.db_mut(db) {
        cdc.instances.push(CaptureInstance {
            name: ci,
            source_object_id,
            ct_object_id: ct_id,
            start_lsn,
            min_lsn: start_lsn,
            columns: captured.iter().map(|c| c.name.clone()).collect(),
            net_changes: net,
            key_positions: pk_cols
                .iter()
                .filter_map(|(n, _)| captured.iter().position(|c| c.name.eq_ignore_ascii_case(n)))
                .collect(),
            computed: captured.iter().map(|c| c.computed.is_some()).collect(),
            lob: captured.iter().map(|c| Lob::of(c.ty)).collect(),
        });
    }
    Ok(())
}

fn delete_where(d: &mut Database, table: &str, pred: impl Fn(&[Value]) -> bool) {
    if let Some(t) = d.table_mut("cdc", table) {
        t.versions.retain(|v| !pred(&v.values));
        t.reindex();
    }
}

/// `sys.sp_cdc_disable_table`
pub(crate) fn disable_table(
    eng: &mut Engine,
    cdcs: &mut Cdc,
    db: &str,
    schema: &str,
    name: &str,
    ci: &str,
) -> SqlResult<()> {
    let d = eng.db_mut(db)?;
    let dbname = d.name.clone();
    let src = d
        .table(schema, name)
        .map(|t| t.object_id)
        .ok_or_else(|| SqlError::invalid_object(name))?;
    let cdc = cdcs.db_mut(db).ok_or_else(|| not_enabled(&dbname))?;
    let all = ci.eq_ignore_ascii_case("all");
    let removed: Vec<CaptureInstance> = cdc
        .instances
        .iter()
        .filter(|i| i.source_object_id == src && (all || i.name.eq_ignore_ascii_case(ci)))
        .cloned()
        .collect();
    if removed.is_empty() {
        return Err(SqlError::new(
            22985,
            format!("Could not find a capture instance '{ci}' for source table '{schema}.{name}'."),
        ));
    }
    cdc.instances
        .retain(|i| !removed.iter().any(|r| r.name == i.name));
    for r in removed {
        d.tables.remove(&key("cdc", &format!("{}_CT", r.name)));
        let id = r.ct_object_id as i64;
        delete_where(d, "change_tables", |v| v.first() == Some(&Value::Int(id)));
        delete_where(d, "captured_columns", |v| {
            v.first() == Some(&Value::Int(id))
        });
        delete_where(d, "index_columns", |v| v.first() == Some(&Value::Int(id)));
    }
    Ok(())
}

/// An unknown `@capture_instance` for `sp_cdc_cleanup_change_table`. Unverified: neither
/// the number nor the text has been checked against a server or the error catalogue (22964
/// is the catalogue's number for a low-water mark missing from `cdc.lsn_time_mapping`).
fn unknown_instance(ci: &str) -> SqlError {
    SqlError::new(22964, format!("LSN {ci}: invalid capture instance name."))
}

/// `sys.sp_cdc_cleanup_change_table`: removes change rows below the low-water mark and
/// raises the instance's minimum LSN, validating the mark as SQL Server does (Microsoft's
/// sys.sp_cdc_cleanup_change_table page):
/// - a mark outside the timeline `cdc.lsn_time_mapping` covers is error 22957;
/// - a mark that is not the `start_lsn` of a `cdc.lsn_time_mapping` row is error 22964;
/// - when other rows share the mark's commit time, the smallest of their LSNs is the mark;
/// - a mark below the instance's current low endpoint leaves it unchanged;
/// - an explicit NULL keeps the current low endpoint and only deletes rows below it.
pub(crate) fn cleanup(
    eng: &mut Engine,
    cdcs: &mut Cdc,
    db: &str,
    ci: &str,
    low_water_mark: Option<Lsn>,
) -> SqlResult<()> {
    let d = eng.db_mut(db)?;
    let dbname = d.name.clone();
    let cdc = cdcs.db_mut(db).ok_or_else(|| not_enabled(&dbname))?;
    if cdc.instance(ci).is_none() {
        return Err(unknown_instance(ci));
    }
    let first = cdc.mapping.first().map_or(Lsn::ZERO, |m| m.0);
    let max = cdc.max_lsn();
    let mark = match low_water_mark {
        None => None,
        Some(lwm) => {
            if lwm < first || lwm > max {
                return Err(SqlError::new(
                    22957,
                    format!(
                        "LSN {}, specified as the new low endpoint for the change table associated with capture instance '{ci}', is not within the Change Data Capture timeline [{}, {}].",
                        shown(lwm),
                        shown(first),
                        shown(max)
                    ),
                ));
            }
            let Some(at) = cdc.mapping.iter().find(|m| m.0 == lwm).map(|m| m.1) else {
                // The number and the rule are SQL Server's (error catalogue 22964; "it must
                // appear as the start_lsn value of a current entry in the cdc.lsn_time_mapping
                // table"); the text is unverified, reconstructed from 22957's wording.
                return Err(SqlError::new(
                    22964,
                    format!(
                        "LSN {}, specified as the new low endpoint for the change table associated with capture instance '{ci}', is not a valid start_lsn value in the cdc.lsn_time_mapping table.",
                        shown(lwm)
                    ),
                ));
            };
            cdc.mapping.iter().filter(|m| m.1 == at).map(|m| m.0).min()
        }
    };
    let Some(inst) = cdc
        .instances
        .iter_mut()
        .find(|i| i.name.eq_ignore_ascii_case(ci))
    else {
        return Err(unknown_instance(ci));
    };
    if let Some(mark) = mark
        && mark > inst.min_lsn
    {
        inst.min_lsn = mark;
    }
    let lwm = inst.min_lsn;
    let name = inst.name.clone();
    let ct_id = inst.ct_object_id as i64;
    let new_min = inst.min_lsn;
    if let Some(t) = d.table_mut("cdc", &format!("{name}_CT")) {
        let lw = lwm.to_bytes().to_vec();
        t.versions.retain(|v| match v.values.first() {
            Some(Value::Bytes(b)) => b.as_slice() >= lw.as_slice(),
            _ => true,
        });
        t.reindex();
    }
    if let Some(t) = d.table_mut("cdc", "change_tables") {
        for v in &mut t.versions {
            if v.values.first() == Some(&Value::Int(ct_id))
                && let Some(slot) = v.values.get_mut(4)
            {
                *slot = lsn_val(new_min);
            }
        }
    }
    Ok(())
}
