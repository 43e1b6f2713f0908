//! Two instances of one pipeline sharing an offset store: the one that loses the race is
//! fenced with a typed error and never overwrites the winner's checkpoint.

#![allow(clippy::expect_used)]

use cdc_core::{Checkpoint, ObjectOffsetStore, OffsetStore, Position};
use object_store::ObjectStore;
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use std::sync::Arc;

fn checkpoint(seq: u64) -> Checkpoint {
    let mut checkpoint = Checkpoint::default();
    checkpoint.advance(Position::Sequence {
        stream: "orders".into(),
        seq,
    });
    checkpoint
}

/// The backends a user would share between two instances: in memory (tests) and a local
/// directory (object_store's `LocalFileSystem`, which lacks conditional updates).
fn backends() -> Vec<(Arc<dyn ObjectStore>, tempfile::TempDir)> {
    let dir = tempfile::tempdir().expect("temp dir");
    let local = LocalFileSystem::new_with_prefix(dir.path()).expect("local store");
    vec![
        (
            Arc::new(InMemory::new()),
            tempfile::tempdir().expect("temp dir"),
        ),
        (Arc::new(local), dir),
    ]
}

#[tokio::test]
async fn a_second_writer_is_fenced_and_the_winners_checkpoint_stays() {
    for (backend, _dir) in backends() {
        let first = ObjectOffsetStore::new(backend.clone(), "pipelines/orders");
        let second = ObjectOffsetStore::new(backend.clone(), "pipelines/orders");
        assert_eq!(first.load().await.expect("load"), None);
        assert_eq!(second.load().await.expect("load"), None);

        first
            .save(&checkpoint(10))
            .await
            .expect("the first save wins");
        let lost = second
            .save(&checkpoint(3))
            .await
            .expect_err("the second writer is fenced");
        assert!(lost.is_fenced(), "{backend}: {lost}");

        // A restarted second instance takes over from the winner's checkpoint ...
        let restarted = ObjectOffsetStore::new(backend.clone(), "pipelines/orders");
        assert_eq!(restarted.load().await.expect("load"), Some(checkpoint(10)));
        restarted
            .save(&checkpoint(11))
            .await
            .expect("the new owner saves");
        // ... and the first, now the stale one, can no longer move the checkpoint.
        let stale = first
            .save(&checkpoint(12))
            .await
            .expect_err("the old owner is fenced");
        assert!(stale.is_fenced(), "{backend}: {stale}");
        let reader = ObjectOffsetStore::new(backend, "pipelines/orders");
        assert_eq!(reader.load().await.expect("load"), Some(checkpoint(11)));
    }
}

#[tokio::test]
async fn a_writer_left_far_behind_is_fenced_even_after_old_generations_were_deleted() {
    for (backend, _dir) in backends() {
        let behind = ObjectOffsetStore::new(backend.clone(), "p");
        let ahead = ObjectOffsetStore::new(backend.clone(), "p");
        behind.load().await.expect("load");
        ahead.load().await.expect("load");
        for seq in 1..=5 {
            ahead.save(&checkpoint(seq)).await.expect("save");
        }
        // Generation 1 was deleted by `ahead`'s clean-up, so `behind` can create it again;
        // it must still learn that it lost.
        let error = behind.save(&checkpoint(99)).await.expect_err("fenced");
        assert!(error.is_fenced(), "{backend}: {error}");
        let reader = ObjectOffsetStore::new(backend, "p");
        assert_eq!(reader.load().await.expect("load"), Some(checkpoint(5)));
    }
}

#[tokio::test]
async fn a_single_writer_keeps_two_checkpoint_objects() {
    for (backend, _dir) in backends() {
        let store = ObjectOffsetStore::new(backend.clone(), "p");
        store.load().await.expect("load");
        for seq in 1..=10 {
            store.save(&checkpoint(seq)).await.expect("save");
        }
        let names: Vec<String> = backend
            .list_with_delimiter(Some(&"p".into()))
            .await
            .expect("list")
            .objects
            .into_iter()
            .map(|meta| meta.location.to_string())
            .collect();
        assert_eq!(
            names.len(),
            2,
            "{backend}: the newest and the previous generation: {names:?}"
        );
        assert_eq!(store.load().await.expect("load"), Some(checkpoint(10)));
    }
}

#[tokio::test]
async fn a_store_that_never_loaded_continues_from_the_newest_generation() {
    let backend: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let first = ObjectOffsetStore::new(backend.clone(), "p");
    first
        .save(&checkpoint(1))
        .await
        .expect("save without a load");
    first.save(&checkpoint(2)).await.expect("save");
    let reader = ObjectOffsetStore::new(backend, "p");
    assert_eq!(reader.load().await.expect("load"), Some(checkpoint(2)));
}
