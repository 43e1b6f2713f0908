#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Two instances of one pipeline sharing a Kafka offsets topic: the instance that loads last
//! fences the other, whose next save fails with a typed error and leaves the newer instance's
//! checkpoint in place. Needs a real broker (the mock cluster does not bump producer epochs).

mod common;

use cdc_core::{Checkpoint, OffsetStore, Position};
use common::broker::shared;
use kafka_io::{KafkaConfig, KafkaIoError, KafkaOffsetStore, TopicCreator, TopicSpec};

fn checkpoint(seq: u64) -> Checkpoint {
    let mut checkpoint = Checkpoint::default();
    checkpoint.advance(Position::Sequence {
        stream: "orders".into(),
        seq,
    });
    checkpoint
}

#[tokio::test]
async fn the_older_of_two_instances_is_fenced_and_cannot_overwrite_the_checkpoint() {
    let kafka = KafkaConfig::new(shared());
    let topic = format!("offsets-fencing-{}", std::process::id());
    TopicCreator::new(&kafka, TopicSpec::new(1, 1).compacted(true))
        .unwrap()
        .ensure(&topic)
        .await
        .unwrap();
    let older = KafkaOffsetStore::new(kafka.clone(), &topic, "orders-pipeline").unwrap();
    assert_eq!(older.load().await.unwrap(), None);
    older.save(&checkpoint(10)).await.unwrap();

    // A second instance starts: loading fences the first.
    let newer = KafkaOffsetStore::new(kafka.clone(), &topic, "orders-pipeline").unwrap();
    assert_eq!(newer.load().await.unwrap(), Some(checkpoint(10)));

    let error = older.save(&checkpoint(3)).await.unwrap_err();
    assert!(
        error.is_fenced(),
        "{error}: {:?}",
        std::error::Error::source(&error)
    );
    let direct = older.save_checkpoint(&checkpoint(4)).await.unwrap_err();
    assert!(
        matches!(direct, KafkaIoError::Fenced { .. }),
        "the typed kafka-io error: {direct}"
    );

    newer.save(&checkpoint(11)).await.unwrap();
    let reader =
        KafkaOffsetStore::written_by_transactions(kafka, &topic, "orders-pipeline").unwrap();
    assert_eq!(reader.load().await.unwrap(), Some(checkpoint(11)));
}
