use crate::{ChangeEvent, ChangeSource, Checkpoint, Result};
use async_trait::async_trait;
use std::cmp::Ordering;

/// What the source conformance suite needs besides the source itself.
#[async_trait]
pub trait SourceHarness: Send {
    /// The source under test.
    type Source: ChangeSource;

    /// Makes the upstream hold `n` more changes (for a database: run statements and wait for
    /// them to be captured).
    async fn produce(&mut self, n: usize) -> Result<()>;

    /// A new source over the same upstream.
    async fn new_source(&mut self) -> Result<Self::Source>;
}

/// How many empty polls a suite waits for expected events before it gives up.
const MAX_IDLE_POLLS: usize = 500;

async fn read_n<S: ChangeSource>(source: &mut S, n: usize) -> Result<Vec<ChangeEvent>> {
    let mut events = Vec::new();
    let mut idle = 0;
    while events.len() < n {
        match source.next_batch().await? {
            Some(batch) if !batch.events.is_empty() => events.extend(batch.events),
            Some(_) => {
                idle += 1;
                assert!(
                    idle < MAX_IDLE_POLLS,
                    "expected {n} events, got {} and then nothing",
                    events.len()
                );
            }
            None => break,
        }
    }
    Ok(events)
}

fn same(a: &ChangeEvent, b: &ChangeEvent) -> bool {
    a.position() == b.position() && a.op == b.op && a.before == b.before && a.after == b.after
}

/// Checks a source: source order, exact resume from a checkpoint after any event (no
/// duplicate, no gap), and re-reading of what was not acknowledged.
pub async fn source_conformance<H: SourceHarness>(harness: &mut H) -> Result<()> {
    harness.produce(6).await?;
    let mut source = harness.new_source().await?;
    source.start(None).await?;
    let all = read_n(&mut source, 6).await?;
    assert!(
        all.len() >= 6,
        "expected at least 6 events, read {}",
        all.len()
    );
    for pair in all.windows(2) {
        if let Some(order) = pair[0].position().partial_cmp(pair[1].position()) {
            assert_eq!(
                order,
                Ordering::Less,
                "positions must increase within a lane: {} then {}",
                pair[0].position(),
                pair[1].position()
            );
        }
    }
    source.close().await?;

    // Not acknowledged: a new source from nothing reads everything again.
    let mut again = harness.new_source().await?;
    again.start(None).await?;
    let reread = read_n(&mut again, all.len()).await?;
    assert!(
        all.iter().zip(&reread).all(|(a, b)| same(a, b)),
        "unacknowledged events are read again, in order"
    );
    again.close().await?;

    // Resume after each event: exactly the rest.
    for cut in 0..all.len() {
        let mut checkpoint = Checkpoint::default();
        for event in &all[..=cut] {
            checkpoint.advance(event.position().clone());
        }
        let mut resumed = harness.new_source().await?;
        resumed.start(Some(&checkpoint)).await?;
        let expected = &all[cut + 1..];
        let rest = read_n(&mut resumed, expected.len()).await?;
        assert_eq!(
            rest.len(),
            expected.len(),
            "resume after event {cut}: wrong number of events"
        );
        assert!(
            expected.iter().zip(&rest).all(|(a, b)| same(a, b)),
            "resume after event {cut}: different events"
        );
        resumed.ack(all[cut].position()).await?;
        resumed.close().await?;
    }

    // After everything is acknowledged, only new changes arrive.
    let mut checkpoint = Checkpoint::default();
    for event in &all {
        checkpoint.advance(event.position().clone());
    }
    let mut tail = harness.new_source().await?;
    tail.start(Some(&checkpoint)).await?;
    harness.produce(2).await?;
    let new = read_n(&mut tail, 2).await?;
    assert_eq!(new.len(), 2, "two new changes after the checkpoint");
    assert!(
        new.iter().all(|e| !checkpoint.covers(e.position())),
        "nothing already acknowledged comes back"
    );
    tail.close().await
}
