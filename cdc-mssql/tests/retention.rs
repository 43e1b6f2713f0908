//! Retention: a position the cleanup job passed is a typed error, or a new snapshot under that
//! policy; never a silent skip.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use cdc_core::{ChangeSource, Checkpoint, Op};
use cdc_mssql::{Error, RetentionPolicy};
use support::{Target, read_events};

async fn cleaned_target(name: &str) -> (Target, Checkpoint) {
    let target = Target::new(name).await;
    target.scenario("orders").await;
    let mut source = target.streaming_source().await;
    target
        .run("INSERT INTO dbo.customers (id, name) VALUES (1, N'a');")
        .await;
    target.scan().await;
    let first = read_events(&mut source, 1).await;
    let mut checkpoint = Checkpoint::default();
    checkpoint.advance(first[0].position().clone());
    source.close().await.unwrap();
    // More changes, then cleanup up to the newest LSN: the stored position's successors are gone.
    target.run("INSERT INTO dbo.customers (id, name) VALUES (2, N'b'); INSERT INTO dbo.customers (id, name) VALUES (3, N'c');").await;
    target.scan().await;
    target
        .run("DECLARE @lwm binary(10) = sys.fn_cdc_get_max_lsn(); EXEC sys.sp_cdc_cleanup_change_table @capture_instance = N'dbo_customers', @low_water_mark = @lwm;")
        .await;
    (target, checkpoint)
}

#[tokio::test]
async fn cleanup_past_the_stored_position_is_a_typed_error() {
    let (target, checkpoint) = cleaned_target("retention_fail").await;
    let mut source = cdc_mssql::MssqlSource::new(target.streaming().build().unwrap());
    let outcome = async {
        source.start(Some(&checkpoint)).await?;
        loop {
            source.next_batch().await?;
        }
        #[allow(unreachable_code)]
        Ok::<(), cdc_core::Error>(())
    };
    let err = tokio::time::timeout(std::time::Duration::from_secs(10), outcome)
        .await
        .unwrap()
        .unwrap_err();
    let cdc_core::Error::Source { source, .. } = &err else {
        panic!("{err}")
    };
    let err = source.downcast_ref::<Error>().unwrap();
    match err {
        Error::LsnNotAvailable {
            capture_instance,
            requested,
            minimum,
            ..
        } => {
            assert_eq!(capture_instance, "dbo_customers");
            assert!(requested < minimum);
        }
        other => panic!("expected LsnNotAvailable, got {other}"),
    }
    assert!(err.to_string().contains("cleaned up"), "{err}");
}

#[tokio::test]
async fn cleanup_past_the_stored_position_resnapshots_under_that_policy() {
    let (target, checkpoint) = cleaned_target("retention_resnapshot").await;
    let config = target
        .streaming()
        .retention_policy(RetentionPolicy::Resnapshot)
        .build()
        .unwrap();
    let mut source = target.source(config, Some(&checkpoint)).await;
    let events = read_events(&mut source, 3).await;
    assert!(events.iter().all(|e| e.op == Op::Read), "{events:#?}");
    let mut ids: Vec<_> = events
        .iter()
        .map(|e| format!("{:?}", e.key().unwrap()))
        .collect();
    ids.sort();
    assert_eq!(ids.len(), 3, "the snapshot holds every current row");
}
