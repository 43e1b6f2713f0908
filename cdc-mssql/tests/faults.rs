//! Faults: a connection killed mid-page, and deadlock victims, are retried with no loss and
//! no duplicates. These drive the simulator's fault switches, so they always use it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use cdc_core::Value;
use support::{Target, read_events};

async fn workload(target: &Target, rows: i32) {
    let mut sql = String::from("BEGIN TRANSACTION;\n");
    for id in 1..=rows {
        sql.push_str(&format!(
            "INSERT INTO dbo.customers (id, name) VALUES ({id}, N'c{id}');\n"
        ));
    }
    sql.push_str("COMMIT TRANSACTION;");
    target.run(&sql).await;
    target.scan().await;
}

fn ids(events: &[cdc_core::ChangeEvent]) -> Vec<i32> {
    events
        .iter()
        .map(|e| match e.after.as_ref().unwrap().0[0] {
            Value::I32(id) => id,
            _ => panic!(),
        })
        .collect()
}

#[tokio::test]
async fn connection_killed_mid_page_resumes_without_loss_or_duplicates() {
    let target = Target::new("fault_mid_page").await;
    let sim = target
        .sim
        .as_ref()
        .expect("fault tests drive the simulator");
    target.scenario("orders").await;
    let config = target.streaming().page_size(10).build().unwrap();
    let mut source = target.source(config, None).await;
    workload(&target, 30).await;
    // The next result set is cut after 4 rows and the connection dropped.
    sim.faults().close_after_rows(4);
    let events = read_events(&mut source, 30).await;
    assert_eq!(ids(&events), (1..=30).collect::<Vec<_>>());
    let extra = support::drain(&mut source, 5).await;
    assert!(extra.iter().all(|b| b.events.is_empty()), "no duplicates");
}

#[tokio::test]
async fn deadlock_victim_is_retried() {
    let target = Target::new("fault_deadlock").await;
    let sim = target
        .sim
        .as_ref()
        .expect("fault tests drive the simulator");
    target.scenario("orders").await;
    let config = target.streaming().build().unwrap();
    let mut source = target.source(config, None).await;
    workload(&target, 5).await;
    sim.faults().fail_next("dbo_customers_CT", 1205);
    let events = read_events(&mut source, 5).await;
    assert_eq!(ids(&events), (1..=5).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_permanent_error_is_typed_not_retried_forever() {
    let target = Target::new("fault_permanent").await;
    let sim = target
        .sim
        .as_ref()
        .expect("fault tests drive the simulator");
    target.scenario("orders").await;
    let config = target.streaming().build().unwrap();
    let mut source = target.source(config, None).await;
    workload(&target, 2).await;
    sim.faults().fail_next("dbo_customers_CT", 208);
    let err = loop {
        match cdc_core::ChangeSource::next_batch(&mut source).await {
            Ok(_) => continue,
            Err(e) => break e,
        }
    };
    let cdc_core::Error::Source { source, .. } = &err else {
        panic!("{err}")
    };
    let err = source.downcast_ref::<cdc_mssql::Error>().unwrap();
    assert!(
        matches!(err, cdc_mssql::Error::Server { .. }) && !err.is_transient(),
        "{err}"
    );
}
