//! Errors that tell the user what to run.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use cdc_core::ChangeSource;
use cdc_mssql::{Error, MssqlSource};
use support::Target;

async fn start_error(target: &Target, database: &str) -> Error {
    let config = target
        .config()
        .database(database.to_string())
        .build()
        .unwrap();
    let mut source = MssqlSource::new(config);
    let err = source.start(None).await.unwrap_err();
    let cdc_core::Error::Source { source, .. } = err else {
        panic!("{err}")
    };
    *source.downcast::<Error>().unwrap()
}

#[tokio::test]
async fn a_database_without_cdc_says_how_to_enable_it() {
    let target = Target::with_orders("catalog_with_cdc").await;
    let mut master = target.connect_to("master").await;
    support::exec(&mut master, "CREATE DATABASE plain_db;")
        .await
        .unwrap();
    let err = start_error(&target, "plain_db").await;
    assert!(
        matches!(&err, Error::CdcNotEnabled { database } if database == "plain_db"),
        "{err}"
    );
    assert!(
        err.to_string().contains("EXEC sys.sp_cdc_enable_db"),
        "{err}"
    );
}

#[tokio::test]
async fn a_database_without_tracked_tables_says_how_to_track_one() {
    let target = Target::new("catalog_no_tables").await;
    target
        .run("CREATE TABLE dbo.untracked (id int PRIMARY KEY);")
        .await;
    let err = start_error(&target, "catalog_no_tables").await;
    assert!(matches!(&err, Error::NoTables { .. }), "{err}");
    assert!(err.to_string().contains("sys.sp_cdc_enable_table"), "{err}");
}
