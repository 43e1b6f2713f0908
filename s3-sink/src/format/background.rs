//! A thread that encodes a share of each Parquet record batch's columns while the sink's
//! thread encodes the rest and turns the next events into Arrow arrays, so the work overlaps
//! on a machine with a spare core.

use std::sync::mpsc::{SyncSender, sync_channel};

/// Work for the encoding thread.
pub(crate) type Job = Box<dyn FnOnce() + Send>;

/// Jobs waiting beyond the one running. A full queue makes the sender wait, which bounds the
/// batches in flight (and their memory) however many files are open.
const QUEUE: usize = 1;

/// One encoding thread per sink. Jobs run in the order they are sent, so the batches of one
/// file reach its writer in order and the file's bytes are the same as when encoded inline.
/// The thread ends when the sink and its open files are dropped.
#[derive(Debug)]
pub(crate) struct EncodeThread {
    jobs: SyncSender<Job>,
}

impl EncodeThread {
    /// Starts the thread; `None` if the system refuses one (the sink then encodes inline).
    pub(crate) fn start() -> Option<Self> {
        let (jobs, queue) = sync_channel::<Job>(QUEUE);
        std::thread::Builder::new()
            .name("s3-sink-encode".into())
            .spawn(move || queue.into_iter().for_each(|job| job()))
            .ok()?;
        Some(Self { jobs })
    }

    /// Runs `job` on the thread, or gives it back when the thread has ended.
    pub(crate) fn run(&self, job: Job) -> Result<(), Job> {
        self.jobs.send(job).map_err(|e| e.0)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use std::sync::mpsc::channel;

    #[test]
    fn jobs_run_in_the_order_sent() {
        let thread = EncodeThread::start().unwrap();
        let (tx, rx) = channel();
        for i in 0..100 {
            let tx = tx.clone();
            thread
                .run(Box::new(move || tx.send(i).unwrap()))
                .map_err(|_| "thread ended")
                .unwrap();
        }
        drop(tx);
        assert_eq!(rx.iter().collect::<Vec<_>>(), (0..100).collect::<Vec<_>>());
    }
}
