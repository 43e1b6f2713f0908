//! The SQL Server source passes cdc-core's source conformance suite.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use async_trait::async_trait;
use cdc_core::Result;
use cdc_core::testing::{SourceHarness, source_conformance};
use cdc_mssql::MssqlSource;
use support::Target;

struct Harness {
    target: Target,
    produced: usize,
}

#[async_trait]
impl SourceHarness for Harness {
    type Source = MssqlSource;

    async fn produce(&mut self, n: usize) -> Result<()> {
        let mut sql = String::from("BEGIN TRANSACTION;\n");
        for _ in 0..n {
            self.produced += 1;
            let id = self.produced;
            // Alternate inserts and updates so both kinds of events are exercised.
            if id.is_multiple_of(3) {
                sql.push_str(&format!(
                    "UPDATE dbo.customers SET name = N'updated {id}' WHERE id = {};\n",
                    id - 1
                ));
            } else {
                sql.push_str(&format!(
                    "INSERT INTO dbo.customers (id, name) VALUES ({id}, N'c{id}');\n"
                ));
            }
        }
        sql.push_str("COMMIT TRANSACTION;");
        self.target.run(&sql).await;
        self.target.scan().await;
        Ok(())
    }

    async fn new_source(&mut self) -> Result<MssqlSource> {
        let config = self
            .target
            .streaming()
            .stream_from_earliest(true)
            .page_size(3)
            .build()
            .unwrap();
        Ok(MssqlSource::new(config))
    }
}

#[tokio::test]
async fn mssql_source_conforms() {
    let target = Target::with_orders("conformance").await;
    source_conformance(&mut Harness {
        target,
        produced: 0,
    })
    .await
    .unwrap();
}
