//! User-defined alias types (`CREATE TYPE dbo.Phone FROM nvarchar(20) NOT NULL`) and
//! `sysname`: columns, variables and CAST/CONVERT of them behave as the base type; the
//! catalog views report them as SQL Server does; CREATE/DROP TYPE fail with SQL Server's
//! numbers and texts (Microsoft's "Database engine events and errors" lists).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Conn, connect, err_number, exec, message, try_exec};

const SETUP: &str = "CREATE DATABASE app;
USE app;
CREATE TYPE dbo.Phone FROM nvarchar(20) NOT NULL;
CREATE TABLE dbo.contacts (id int PRIMARY KEY, phone dbo.Phone, owner sysname, note Phone NULL);";

async fn row(c: &mut Conn, sql: &str) -> tiberius::Row {
    c.simple_query(sql)
        .await
        .unwrap()
        .into_row()
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("no row from {sql}"))
}

/// (system_type_id, user_type_id, max_length, is_nullable) of a column of dbo.contacts.
async fn column(c: &mut Conn, table: &str, name: &str) -> (u8, i32, i16, bool) {
    let r = row(
        c,
        &format!(
            "SELECT c.system_type_id, c.user_type_id, c.max_length, c.is_nullable FROM sys.columns c \
             JOIN sys.tables t ON t.object_id = c.object_id WHERE t.name = '{table}' AND c.name = '{name}'"
        ),
    )
    .await;
    (
        r.get::<u8, _>(0).unwrap(),
        r.get::<i32, _>(1).unwrap(),
        r.get::<i16, _>(2).unwrap(),
        r.get::<bool, _>(3).unwrap(),
    )
}

#[tokio::test]
async fn sys_types_lists_sysname_and_alias_types_over_their_base_types() {
    let sim = common::start().await;
    let mut c = connect(&sim).await;
    exec(&mut c, SETUP).await;
    let q = "SELECT system_type_id, user_type_id, schema_id, max_length, is_nullable, is_user_defined, is_assembly_type FROM sys.types WHERE name = ";
    let phone = row(&mut c, &format!("{q}'Phone'")).await;
    assert_eq!(
        phone.get::<u8, _>(0),
        Some(231),
        "system_type_id = nvarchar"
    );
    assert_eq!(
        phone.get::<i32, _>(1),
        Some(257),
        "the first alias type's id"
    );
    assert_eq!(phone.get::<i32, _>(2), Some(1), "schema dbo");
    assert_eq!(phone.get::<i16, _>(3), Some(40), "20 characters, in bytes");
    assert_eq!(phone.get::<bool, _>(4), Some(false), "NOT NULL");
    assert_eq!(phone.get::<bool, _>(5), Some(true));
    assert_eq!(phone.get::<bool, _>(6), Some(false));
    let sysname = row(&mut c, &format!("{q}'sysname'")).await;
    assert_eq!(sysname.get::<u8, _>(0), Some(231));
    assert_eq!(sysname.get::<i32, _>(1), Some(256));
    assert_eq!(sysname.get::<i32, _>(2), Some(4), "schema sys");
    assert_eq!(sysname.get::<i16, _>(3), Some(256));
    assert_eq!(sysname.get::<bool, _>(4), Some(false));
    assert_eq!(sysname.get::<bool, _>(5), Some(false), "a system type");
    let nvarchar = row(&mut c, &format!("{q}'nvarchar'")).await;
    assert_eq!(
        nvarchar.get::<i32, _>(1),
        Some(231),
        "system types keep user_type_id = system_type_id"
    );
    // A second alias gets the next id; NULL is the default nullability.
    exec(&mut c, "CREATE TYPE Code FROM char(3)").await;
    let code = row(&mut c, &format!("{q}'Code'")).await;
    assert_eq!(code.get::<u8, _>(0), Some(175));
    assert_eq!(code.get::<i32, _>(1), Some(258));
    assert_eq!(code.get::<bool, _>(4), Some(true));
    // Alias types belong to their database.
    exec(&mut c, "USE master").await;
    let n = row(
        &mut c,
        "SELECT COUNT(*) FROM sys.types WHERE is_user_defined = 1",
    )
    .await;
    assert_eq!(n.get::<i32, _>(0), Some(0));
    sim.stop().await;
}

#[tokio::test]
async fn sys_columns_reports_the_alias_user_type_id_beside_the_base_system_type_id() {
    let sim = common::start().await;
    let mut c = connect(&sim).await;
    exec(&mut c, SETUP).await;
    // The alias's NOT NULL is the column's default; sysname is not nullable either.
    assert_eq!(
        column(&mut c, "contacts", "phone").await,
        (231, 257, 40, false)
    );
    assert_eq!(
        column(&mut c, "contacts", "owner").await,
        (231, 256, 256, false)
    );
    assert_eq!(
        column(&mut c, "contacts", "note").await,
        (231, 257, 40, true)
    );
    assert_eq!(column(&mut c, "contacts", "id").await, (56, 56, 4, false));
    // The join readers use names the alias; the base type is the row of system_type_id.
    let r = row(
        &mut c,
        "SELECT t.name, t.is_user_defined, bt.name FROM sys.columns c JOIN sys.types t ON t.user_type_id = c.user_type_id \
         JOIN sys.types bt ON bt.user_type_id = c.system_type_id WHERE c.name = 'phone'",
    )
    .await;
    assert_eq!(r.get::<&str, _>(0), Some("Phone"));
    assert_eq!(r.get::<bool, _>(1), Some(true));
    assert_eq!(r.get::<&str, _>(2), Some("nvarchar"));
    // INFORMATION_SCHEMA.COLUMNS: DATA_TYPE is the base type, DOMAIN_* the alias.
    let r = row(
        &mut c,
        "SELECT DATA_TYPE, CHARACTER_MAXIMUM_LENGTH, DOMAIN_SCHEMA, DOMAIN_NAME FROM INFORMATION_SCHEMA.COLUMNS WHERE COLUMN_NAME = 'phone'",
    )
    .await;
    assert_eq!(r.get::<&str, _>(0), Some("nvarchar"));
    assert_eq!(r.get::<i32, _>(1), Some(20));
    assert_eq!(r.get::<&str, _>(2), Some("dbo"));
    assert_eq!(r.get::<&str, _>(3), Some("Phone"));
    sim.stop().await;
}

#[tokio::test]
async fn alias_typed_columns_store_and_refuse_values_as_their_base_type() {
    let sim = common::start().await;
    let mut c = connect(&sim).await;
    exec(&mut c, SETUP).await;
    exec(&mut c, "CREATE TABLE dbo.plain (id int PRIMARY KEY, phone nvarchar(20) NOT NULL, owner nvarchar(128) NOT NULL, note nvarchar(20) NULL)").await;
    exec(
        &mut c,
        "INSERT INTO dbo.contacts VALUES (1, N'555-0100', N'ann', NULL)",
    )
    .await;
    let r = row(
        &mut c,
        "SELECT phone, owner, note FROM dbo.contacts WHERE id = 1",
    )
    .await;
    assert_eq!(r.get::<&str, _>(0), Some("555-0100"));
    assert_eq!(r.get::<&str, _>(1), Some("ann"));
    assert_eq!(r.get::<&str, _>(2), None);
    // The same bad values fail with the same errors as on the base-typed table.
    for values in [
        "(2, NULL, N'ann', NULL)",
        "(2, N'555', NULL, NULL)",
        "(2, N'123456789012345678901', N'ann', NULL)",
    ] {
        let alias = try_exec(&mut c, &format!("INSERT INTO dbo.contacts VALUES {values}"))
            .await
            .unwrap_err();
        let base = try_exec(&mut c, &format!("INSERT INTO dbo.plain VALUES {values}"))
            .await
            .unwrap_err();
        assert_eq!(err_number(&alias), err_number(&base), "{values}");
    }
    // The column's metadata on the wire is the base type's.
    let rows = c
        .simple_query("SELECT phone FROM dbo.contacts")
        .await
        .unwrap()
        .into_first_result()
        .await
        .unwrap();
    let col = &rows[0].columns()[0];
    assert_eq!(col.column_type(), tiberius::ColumnType::NVarchar);
    sim.stop().await;
}

#[tokio::test]
async fn variables_cast_convert_and_added_columns_accept_alias_types() {
    let sim = common::start().await;
    let mut c = connect(&sim).await;
    exec(&mut c, SETUP).await;
    let r = row(
        &mut c,
        "DECLARE @p dbo.Phone = N'555-0199'; DECLARE @o sysname = N'bob'; \
         SELECT @p, @o, CAST(N'x' AS dbo.Phone), CONVERT(Phone, N'y'), CAST(N'z' AS sysname)",
    )
    .await;
    assert_eq!(r.get::<&str, _>(0), Some("555-0199"));
    assert_eq!(r.get::<&str, _>(1), Some("bob"));
    assert_eq!(r.get::<&str, _>(2), Some("x"));
    assert_eq!(r.get::<&str, _>(3), Some("y"));
    assert_eq!(r.get::<&str, _>(4), Some("z"));
    // A computed column may CAST to an alias type.
    exec(
        &mut c,
        "CREATE TABLE dbo.calls (id int PRIMARY KEY, n int, shown AS (CAST(n AS dbo.Phone))); INSERT INTO dbo.calls (id, n) VALUES (1, 42)",
    )
    .await;
    let r = row(&mut c, "SELECT shown FROM dbo.calls").await;
    assert_eq!(r.get::<&str, _>(0), Some("42"));
    // A table variable takes alias types from the current database.
    let r = row(
        &mut c,
        "DECLARE @t TABLE (p dbo.Phone, o sysname); INSERT INTO @t VALUES (N'555-0111', N'dan'); SELECT p, o FROM @t",
    )
    .await;
    assert_eq!(r.get::<&str, _>(0), Some("555-0111"));
    assert_eq!(r.get::<&str, _>(1), Some("dan"));
    let e = try_exec(
        &mut c,
        "DECLARE @t TABLE (p dbo.Phone); INSERT INTO @t VALUES (NULL)",
    )
    .await
    .unwrap_err();
    assert_eq!(err_number(&e), 515, "the alias is NOT NULL");
    exec(&mut c, "ALTER TABLE dbo.contacts ADD fax dbo.Phone NULL").await;
    assert_eq!(
        column(&mut c, "contacts", "fax").await,
        (231, 257, 40, true)
    );
    // A NOT NULL alias is a NOT NULL column: adding one to a table with rows needs a default.
    exec(
        &mut c,
        "INSERT INTO dbo.contacts (id, phone, owner) VALUES (1, N'1', N'a')",
    )
    .await;
    let e = try_exec(&mut c, "ALTER TABLE dbo.contacts ADD mobile dbo.Phone")
        .await
        .unwrap_err();
    assert_eq!(err_number(&e), 4901);
    sim.stop().await;
}

#[tokio::test]
async fn unknown_types_are_2715_in_definitions_and_243_in_cast() {
    let sim = common::start().await;
    let mut c = connect(&sim).await;
    exec(&mut c, SETUP).await;
    let e = try_exec(&mut c, "CREATE TABLE dbo.t (id int, c dbo.Nope)")
        .await
        .unwrap_err();
    assert_eq!(err_number(&e), 2715);
    assert_eq!(
        message(&e),
        "Column, parameter, or variable #2: Cannot find data type dbo.Nope."
    );
    let e = try_exec(&mut c, "DECLARE @x Nope").await.unwrap_err();
    assert_eq!(err_number(&e), 2715);
    let e = try_exec(&mut c, "SELECT CAST(1 AS dbo.Nope)")
        .await
        .unwrap_err();
    assert_eq!(err_number(&e), 243);
    assert_eq!(message(&e), "Type dbo.Nope is not a defined system type.");
    // An alias takes no length (2716).
    let e = try_exec(&mut c, "CREATE TABLE dbo.t (c dbo.Phone(10))")
        .await
        .unwrap_err();
    assert_eq!(err_number(&e), 2716);
    assert_eq!(
        message(&e),
        "Column, parameter, or variable #1: Cannot specify a column width on data type dbo.Phone."
    );
    // Another database does not see app's types.
    exec(&mut c, "USE master").await;
    let e = try_exec(&mut c, "CREATE TABLE dbo.t (c dbo.Phone)")
        .await
        .unwrap_err();
    assert_eq!(err_number(&e), 2715);
    sim.stop().await;
}

#[tokio::test]
async fn create_type_of_an_existing_name_is_219_and_of_a_non_system_base_is_222() {
    let sim = common::start().await;
    let mut c = connect(&sim).await;
    exec(&mut c, SETUP).await;
    let e = try_exec(&mut c, "CREATE TYPE dbo.Phone FROM varchar(10)")
        .await
        .unwrap_err();
    assert_eq!(err_number(&e), 219);
    assert_eq!(
        message(&e),
        "The type 'dbo.Phone' already exists, or you do not have permission to create it."
    );
    let e = try_exec(&mut c, "CREATE TYPE dbo.Mobile FROM dbo.Phone")
        .await
        .unwrap_err();
    assert_eq!(err_number(&e), 222);
    assert_eq!(
        message(&e),
        "The base type \"dbo.Phone\" is not a valid base type for the alias data type."
    );
    let e = try_exec(&mut c, "CREATE TYPE dbo.Mobile FROM nosuchtype")
        .await
        .unwrap_err();
    assert_eq!(err_number(&e), 222);
    sim.stop().await;
}

#[tokio::test]
async fn drop_type_in_use_is_3732_and_of_an_unknown_type_is_218() {
    let sim = common::start().await;
    let mut c = connect(&sim).await;
    exec(&mut c, SETUP).await;
    let e = try_exec(&mut c, "DROP TYPE dbo.Phone").await.unwrap_err();
    assert_eq!(err_number(&e), 3732);
    assert_eq!(
        message(&e),
        "Cannot drop type 'dbo.Phone' because it is being referenced by object 'contacts'. There may be other objects that reference this type."
    );
    let e = try_exec(&mut c, "DROP TYPE dbo.x").await.unwrap_err();
    assert_eq!(err_number(&e), 218);
    assert_eq!(
        message(&e),
        "Could not find the type 'dbo.x'. Either it does not exist or you do not have the necessary permission."
    );
    exec(&mut c, "DROP TYPE IF EXISTS dbo.x").await;
    exec(&mut c, "DROP TABLE dbo.contacts; DROP TYPE dbo.Phone").await;
    let n = row(
        &mut c,
        "SELECT COUNT(*) FROM sys.types WHERE name = 'Phone'",
    )
    .await;
    assert_eq!(n.get::<i32, _>(0), Some(0));
    sim.stop().await;
}

#[tokio::test]
async fn change_tables_hold_an_alias_column_as_its_base_type() {
    let sim = common::start().await;
    let mut c = connect(&sim).await;
    exec(&mut c, SETUP).await;
    exec(
        &mut c,
        "EXEC sys.sp_cdc_enable_db; EXEC sys.sp_cdc_enable_table @source_schema = N'dbo', @source_name = N'contacts', @role_name = NULL;
         INSERT INTO dbo.contacts VALUES (1, N'555-0100', N'ann', NULL); EXEC sys.sp_cdc_scan;",
    )
    .await;
    let (system, user, len, _) = column(&mut c, "dbo_contacts_CT", "phone").await;
    assert_eq!((system, user, len), (231, 231, 40));
    let (system, user, len, _) = column(&mut c, "dbo_contacts_CT", "owner").await;
    assert_eq!((system, user, len), (231, 231, 256));
    let r = row(&mut c, "SELECT phone, owner FROM cdc.dbo_contacts_CT").await;
    assert_eq!(r.get::<&str, _>(0), Some("555-0100"));
    assert_eq!(r.get::<&str, _>(1), Some("ann"));
    sim.stop().await;
}

/// How many alias types named `name` the current database has.
async fn types_named(c: &mut Conn, name: &str) -> i32 {
    row(
        c,
        &format!("SELECT COUNT(*) FROM sys.types WHERE is_user_defined = 1 AND name = '{name}'"),
    )
    .await
    .get::<i32, _>(0)
    .unwrap()
}

#[tokio::test]
async fn create_type_and_drop_type_are_undone_by_rollback() {
    let sim = common::start().await;
    let mut c = connect(&sim).await;
    exec(&mut c, SETUP).await;
    exec(
        &mut c,
        "BEGIN TRANSACTION; CREATE TYPE dbo.Email FROM nvarchar(200) NULL;",
    )
    .await;
    assert_eq!(
        types_named(&mut c, "Email").await,
        1,
        "seen inside the transaction"
    );
    exec(&mut c, "ROLLBACK TRANSACTION").await;
    assert_eq!(
        types_named(&mut c, "Email").await,
        0,
        "gone with the rollback"
    );
    // Created again without 219: nothing of the rolled-back one is left.
    exec(&mut c, "CREATE TYPE dbo.Email FROM nvarchar(200) NULL").await;

    exec(&mut c, "BEGIN TRANSACTION; DROP TYPE dbo.Email;").await;
    assert_eq!(types_named(&mut c, "Email").await, 0);
    exec(&mut c, "ROLLBACK TRANSACTION").await;
    assert_eq!(
        types_named(&mut c, "Email").await,
        1,
        "back after the rollback"
    );
    exec(
        &mut c,
        "CREATE TABLE dbo.mail (id int PRIMARY KEY, e dbo.Email)",
    )
    .await;
    assert_eq!(column(&mut c, "mail", "e").await.0, 231, "usable: nvarchar");

    // Back to a savepoint: what came after it is taken back, the transaction goes on.
    exec(
        &mut c,
        "BEGIN TRANSACTION; CREATE TYPE dbo.Code FROM char(3); SAVE TRANSACTION s; \
         CREATE TYPE dbo.Zip FROM char(5); ROLLBACK TRANSACTION s; COMMIT TRANSACTION;",
    )
    .await;
    assert_eq!(types_named(&mut c, "Zip").await, 0);
    assert_eq!(types_named(&mut c, "Code").await, 1);
    sim.stop().await;
}
