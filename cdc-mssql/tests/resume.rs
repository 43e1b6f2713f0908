//! Exact resume: a restart from any stored position yields exactly the events after it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use cdc_core::{ChangeSource, Checkpoint};
use support::{Target, read_events};

#[tokio::test]
async fn restart_at_every_event_position_yields_exactly_the_rest() {
    let target = Target::with_orders("resume_every").await;
    let config = || target.streaming().page_size(2).build().unwrap();
    let mut source = target.source(config(), None).await;
    target.scenario("workload").await;
    target.scan().await;
    let all = read_events(&mut source, 9).await;
    assert_eq!(all.len(), 9);
    source.close().await.unwrap();

    for cut in 0..all.len() {
        let mut checkpoint = Checkpoint::default();
        checkpoint.advance(all[cut].position().clone());
        let mut resumed = target.source(config(), Some(&checkpoint)).await;
        let expected = &all[cut + 1..];
        let rest = read_events(&mut resumed, expected.len()).await;
        let got: Vec<_> = rest
            .iter()
            .map(|e| {
                (
                    e.position().clone(),
                    e.op,
                    e.after.clone(),
                    e.before.clone(),
                )
            })
            .collect();
        let want: Vec<_> = expected
            .iter()
            .map(|e| {
                (
                    e.position().clone(),
                    e.op,
                    e.after.clone(),
                    e.before.clone(),
                )
            })
            .collect();
        assert_eq!(
            got,
            want,
            "resume after event {cut} ({})",
            all[cut].position()
        );
        let extra = support::drain(&mut resumed, 3).await;
        assert!(
            extra.iter().all(|b| b.events.is_empty()),
            "no duplicates after resuming at {cut}"
        );
        resumed.close().await.unwrap();
    }
}
