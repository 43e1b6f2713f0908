//! The SQL Server source inside a cdc-core pipeline: a sink failure acknowledges nothing
//! more, and a restart from the file checkpoint delivers every change exactly once.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use cdc_core::testing::MemorySink;
use cdc_core::{FileOffsetStore, Pipeline, PipelineConfig, Value};
use cdc_mssql::MssqlSource;
use std::time::Duration;
use support::Target;
use tokio_util::sync::CancellationToken;

#[tokio::test]
async fn crash_and_restart_through_the_pipeline_loses_and_repeats_nothing() {
    let target = Target::with_orders("pipeline_restart").await;
    let dir = std::env::temp_dir().join(format!("cdc-mssql-pipeline-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let offsets = FileOffsetStore::new(dir.join("offsets.json"));
    let config = || {
        target
            .streaming()
            .stream_from_earliest(true)
            .max_batch_events(5)
            .build()
            .unwrap()
    };
    let pipeline_config = PipelineConfig::new("restart")
        .flush_max_events(5)
        .flush_interval(Some(Duration::from_millis(50)));

    let mut sql = String::new();
    for id in 1..=40 {
        sql.push_str(&format!(
            "INSERT INTO dbo.customers (id, name) VALUES ({id}, N'c{id}');\n"
        ));
    }
    target.run(&sql).await;
    target.scan().await;

    // First run: the sink dies on its third flush.
    let first = MemorySink::new();
    let handle = first.handle();
    let failing = FlakySink {
        inner: first,
        flushes: 0,
    };
    let err = Pipeline::new(
        pipeline_config.clone(),
        MssqlSource::new(config()),
        failing,
        offsets.clone(),
    )
    .unwrap()
    .run(CancellationToken::new())
    .await
    .unwrap_err();
    assert!(matches!(err, cdc_core::Error::Sink { .. }), "{err}");
    let durable_first: Vec<_> = handle.durable_events();
    assert_eq!(durable_first.len(), 10, "two flushes of five made it");

    // Second run: from the checkpoint, until everything arrived.
    let second = MemorySink::new();
    let handle2 = second.handle();
    let shutdown = CancellationToken::new();
    let run = tokio::spawn(
        Pipeline::new(
            pipeline_config,
            MssqlSource::new(config()),
            second,
            offsets.clone(),
        )
        .unwrap()
        .run(shutdown.clone()),
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while handle2.durable_events().len() < 30 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {} events",
            handle2.durable_events().len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    shutdown.cancel();
    run.await.unwrap().unwrap();
    let ids: Vec<i32> = durable_first
        .iter()
        .chain(handle2.durable_events().iter())
        .map(|e| match e.after.as_ref().unwrap().0[0] {
            Value::I32(id) => id,
            _ => panic!(),
        })
        .collect();
    assert_eq!(
        ids,
        (1..=40).collect::<Vec<_>>(),
        "every change once, in order"
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// Fails its third flush.
struct FlakySink {
    inner: MemorySink,
    flushes: usize,
}

#[async_trait::async_trait]
impl cdc_core::Sink for FlakySink {
    fn name(&self) -> &str {
        "flaky"
    }
    async fn write(
        &mut self,
        events: &[cdc_core::ChangeEvent],
    ) -> cdc_core::Result<Vec<cdc_core::Position>> {
        self.inner.write(events).await
    }
    async fn flush(&mut self) -> cdc_core::Result<Vec<cdc_core::Position>> {
        self.flushes += 1;
        if self.flushes == 3 {
            self.inner.fail_next_flushes(1);
        }
        self.inner.flush().await
    }
}
