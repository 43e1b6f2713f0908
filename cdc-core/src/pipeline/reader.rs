//! The source side of a pipeline: reads batches into the queue, applies acknowledgements.

use super::PipelineMetrics;
use crate::{ChangeSource, Position, Result, SourceBatch};
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Reads until the source ends, the queue closes or `stop` fires, then applies the remaining
/// acknowledgements until the writer drops its end, and closes the source.
///
/// Acknowledgements are applied between reads rather than concurrently, because a source is
/// one `&mut` object; sources return within their poll interval, so acks wait at most that.
pub(super) async fn read_loop<S: ChangeSource>(
    mut source: S,
    batches: mpsc::Sender<SourceBatch>,
    mut acks: mpsc::UnboundedReceiver<Position>,
    stop: CancellationToken,
    metrics: Arc<PipelineMetrics>,
) -> Result<()> {
    loop {
        while let Ok(position) = acks.try_recv() {
            source.ack(&position).await?;
        }
        // Dropping an unfinished read loses nothing: unacknowledged events are read again
        // after a restart.
        let batch = tokio::select! {
            biased;
            () = stop.cancelled() => break,
            batch = source.next_batch() => batch?,
        };
        let Some(batch) = batch else {
            tracing::debug!(source = source.name(), "source ended");
            break;
        };
        if batch.is_empty() {
            continue;
        }
        metrics.read(batch.events.len());
        tokio::select! {
            biased;
            () = stop.cancelled() => break,
            sent = batches.send(batch) => if sent.is_err() { break },
        }
    }
    drop(batches);
    while let Some(position) = acks.recv().await {
        source.ack(&position).await?;
    }
    source.close().await
}
