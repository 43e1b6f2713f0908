//! Databases, schemas and the engine state shared by all sessions.

use std::collections::BTreeMap;

use chrono::{NaiveDateTime, Utc};

pub(crate) use crate::engine::alias_type::AliasType;
use crate::engine::log::Log;
use crate::engine::table::Table;
use crate::engine::txn::TxnTable;
use crate::error::{SqlError, SqlResult};

/// One database.
#[derive(Debug)]
pub(crate) struct Database {
    pub(crate) id: i32,
    pub(crate) name: String,
    /// Keyed by lower-case `schema.table`.
    pub(crate) tables: BTreeMap<String, Table>,
    pub(crate) schemas: Vec<(i32, String)>,
    pub(crate) log: Log,
    pub(crate) created: NaiveDateTime,
    /// `ALLOW_SNAPSHOT_ISOLATION`: OFF in a new database (as in `model`), ON in `master` and
    /// `msdb`, as a stock SQL Server 2022 reports them in `sys.databases.snapshot_isolation_state`.
    /// While OFF, a SNAPSHOT transaction touching the database fails with error 3952.
    pub(crate) allow_snapshot_isolation: bool,
    /// `READ_COMMITTED_SNAPSHOT`: OFF in a new database, as SQL Server creates them
    /// (`sys.databases.is_read_committed_snapshot_on` = 0). While OFF, READ COMMITTED readers
    /// wait for rows other open transactions changed; ON, they read the last committed version.
    pub(crate) read_committed_snapshot: bool,
    /// Alias data types made by `CREATE TYPE name FROM base_type`, in creation order.
    pub(crate) alias_types: Vec<AliasType>,
    /// The `user_type_id` the next alias type gets: 257 for a database's first one (ids up
    /// to 256 are SQL Server's own types, `sysname` 256; these numbers are not in
    /// Microsoft's docs and are unverified here).
    pub(crate) next_user_type_id: i32,
}

/// `sys.types.user_type_id` of `sysname`, a system-supplied type over `nvarchar(128)`
/// (`system_type_id` 231) that, unlike `nvarchar`, is not nullable (Microsoft, "nchar and
/// nvarchar (Transact-SQL)"). Alias types made by CREATE TYPE number from 257.
pub(crate) const SYSNAME_USER_TYPE_ID: i32 = 256;

impl Database {
    pub(crate) fn new(id: i32, name: &str) -> Self {
        Database {
            id,
            name: name.to_string(),
            tables: BTreeMap::new(),
            schemas: vec![
                (1, "dbo".into()),
                (4, "sys".into()),
                (3, "INFORMATION_SCHEMA".into()),
            ],
            log: Log::default(),
            created: now(),
            allow_snapshot_isolation: matches!(name, "master" | "msdb"),
            read_committed_snapshot: false,
            alias_types: Vec::new(),
            next_user_type_id: 257,
        }
    }

    pub(crate) fn schema_id(&self, name: &str) -> Option<i32> {
        self.schemas
            .iter()
            .find(|(_, n)| n.eq_ignore_ascii_case(name))
            .map(|(i, _)| *i)
    }

    pub(crate) fn schema_name(&self, id: i32) -> Option<&str> {
        self.schemas
            .iter()
            .find(|(i, _)| *i == id)
            .map(|(_, n)| n.as_str())
    }

    pub(crate) fn table(&self, schema: &str, name: &str) -> Option<&Table> {
        self.tables.get(&key(schema, name))
    }

    pub(crate) fn table_mut(&mut self, schema: &str, name: &str) -> Option<&mut Table> {
        self.tables.get_mut(&key(schema, name))
    }

    /// The alias type `schema.name` (names compare case-insensitively).
    pub(crate) fn alias_type(&self, schema: &str, name: &str) -> Option<&AliasType> {
        let sid = self.schema_id(schema)?;
        self.alias_types
            .iter()
            .find(|a| a.schema_id == sid && a.name.eq_ignore_ascii_case(name))
    }

    /// The alias type with this `user_type_id`.
    pub(crate) fn alias_type_by_id(&self, user_type_id: i32) -> Option<&AliasType> {
        self.alias_types
            .iter()
            .find(|a| a.user_type_id == user_type_id)
    }

    pub(crate) fn table_by_id(&self, id: i32) -> Option<&Table> {
        self.tables.values().find(|t| t.object_id == id)
    }
}

/// A resolved table name.
#[derive(Debug, Clone)]
pub(crate) struct TableRef {
    pub(crate) db: String,
    pub(crate) schema: String,
    pub(crate) name: String,
    /// The name as the statement spelled it, for error messages.
    pub(crate) written: String,
}

/// The map key of a table.
pub(crate) fn key(schema: &str, name: &str) -> String {
    format!("{}.{}", schema.to_lowercase(), name.to_lowercase())
}

/// Local wall-clock time, as `GETDATE()` returns it.
pub(crate) fn now() -> NaiveDateTime {
    Utc::now().naive_utc()
}

/// Everything every session shares.
#[derive(Debug)]
pub(crate) struct Engine {
    pub(crate) dbs: BTreeMap<String, Database>,
    pub(crate) txns: TxnTable,
    /// Locks of open transactions and the sessions waiting for them.
    pub(crate) locks: crate::engine::locks::Locks,
    pub(crate) next_object_id: i32,
    pub(crate) next_db_id: i32,
    pub(crate) rowversion: u64,
    /// `sp_configure 'max text repl size'` as installed by RECONFIGURE: the largest
    /// large-object value, in bytes, a write to a CDC-tracked table may carry (65536 by
    /// default; -1 = no limit). Larger values fail with error 7139.
    pub(crate) max_text_repl_size: i64,
    /// A value `sp_configure` set that RECONFIGURE has not installed yet.
    pub(crate) max_text_repl_size_pending: Option<i64>,
}

impl Engine {
    pub(crate) fn new() -> Self {
        let mut e = Engine {
            dbs: BTreeMap::new(),
            txns: TxnTable::default(),
            locks: Default::default(),
            next_object_id: 245_575_913,
            next_db_id: 5,
            rowversion: 2000,
            max_text_repl_size: 65536,
            max_text_repl_size_pending: None,
        };
        for (id, name) in [(1, "master"), (2, "tempdb"), (3, "model"), (4, "msdb")] {
            e.dbs.insert(name.to_string(), Database::new(id, name));
        }
        e
    }

    pub(crate) fn db(&self, name: &str) -> SqlResult<&Database> {
        self.dbs
            .get(&name.to_lowercase())
            .ok_or_else(|| no_db(name))
    }

    pub(crate) fn db_mut(&mut self, name: &str) -> SqlResult<&mut Database> {
        self.dbs
            .get_mut(&name.to_lowercase())
            .ok_or_else(|| no_db(name))
    }

    pub(crate) fn alloc_object_id(&mut self) -> i32 {
        self.next_object_id += 16_001;
        self.next_object_id
    }

    pub(crate) fn create_db(&mut self, name: &str) -> SqlResult<()> {
        if self.dbs.contains_key(&name.to_lowercase()) {
            return Err(SqlError::new(
                1801,
                format!("Database '{name}' already exists. Choose a different database name."),
            ));
        }
        let id = self.next_db_id;
        self.next_db_id += 1;
        self.dbs
            .insert(name.to_lowercase(), Database::new(id, name));
        Ok(())
    }
}

fn no_db(name: &str) -> SqlError {
    SqlError::new(
        911,
        format!("Database '{name}' does not exist. Make sure that the name is entered correctly."),
    )
}
