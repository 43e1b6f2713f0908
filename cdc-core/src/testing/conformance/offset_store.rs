use crate::{Checkpoint, Lsn, LsnPosition, OffsetStore, Position, Result};

/// Checks an offset store that starts empty: load of nothing, save/load round trips with
/// several source partitions and position kinds, and overwrite.
pub async fn offset_store_conformance(store: &dyn OffsetStore) -> Result<()> {
    assert_eq!(store.load().await?, None, "a new store must load nothing");

    let mut checkpoint = Checkpoint::default();
    checkpoint.advance(Position::Sequence {
        stream: "a".into(),
        seq: 7,
    });
    checkpoint.advance(Position::SqlServer(LsnPosition {
        database: "shop".into(),
        commit_lsn: Lsn::from_parts(0x27, 0x758, 5),
        change_lsn: Lsn::from_parts(0x27, 0x750, 2),
        event_serial_no: 1,
        total_order: 3,
        snapshot: Some(Box::new(crate::SnapshotCursor {
            table: "dbo.orders".into(),
            key: "[7]".into(),
            blocking_row: 0,
        })),
    }));
    checkpoint.advance(Position::Kafka(crate::KafkaOffset {
        topic: "erp.shop.dbo.orders".into(),
        partition: 3,
        offset: 1_000_000_007,
    }));
    store.save(&checkpoint).await?;
    assert_eq!(
        store.load().await?.as_ref(),
        Some(&checkpoint),
        "load must return what was saved"
    );

    checkpoint.advance(Position::Sequence {
        stream: "a".into(),
        seq: 8,
    });
    store.save(&checkpoint).await?;
    store.save(&checkpoint).await?;
    assert_eq!(
        store.load().await?,
        Some(checkpoint),
        "a save must replace the previous one"
    );
    Ok(())
}
