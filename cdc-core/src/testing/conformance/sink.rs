use crate::testing::sample_events;
use crate::{ChangeEvent, Checkpoint, Position, Result, SchemaChange, Sink, TableSchema};
use async_trait::async_trait;
use std::sync::Arc;

/// What the sink conformance suite needs besides the sink itself.
#[async_trait]
pub trait SinkHarness: Send {
    /// The sink under test.
    type Sink: Sink;

    /// A new sink over the same destination (a restart).
    async fn new_sink(&mut self) -> Result<Self::Sink>;

    /// Positions of the events the destination holds now, read back independently of the
    /// sink, duplicates included.
    async fn stored_positions(&mut self) -> Result<Vec<Position>>;

    /// The text of `column` in every record the destination holds that has a non-null value
    /// for it, with the record's position: the value of the after image, else of the before
    /// image (a delete carries only a before image), duplicates included, in any order.
    /// Records without the column (written before it was added) or with `NULL` in it are
    /// left out. Text is the value as the destination stores it: a JSON or Parquet string
    /// as is, any other value in the destination's own text form.
    ///
    /// Read back independently of the sink, as [`stored_positions`](Self::stored_positions)
    /// is: from what the destination holds (files, records), decoded by the harness's own
    /// reader, never from the sink's buffers or statistics. There is no default: a harness
    /// that cannot answer would let a sink that drops a new column pass the schema-change
    /// check.
    async fn stored_values(&mut self, column: &str) -> Result<Vec<(Position, String)>>;

    /// Whether the sink promises no duplicates when events are replayed after a restart.
    fn exactly_once(&self) -> bool;

    /// Whether the sink drops a revoked source partition's not yet durable work
    /// ([`Sink::partitions_revoked`]) instead of making it durable anyway (the default no-op,
    /// right for a producer). When it does, the suite checks that the dropped work is never
    /// reported and that the partition's re-read is stored once by an exactly-once sink.
    fn drops_revoked_work(&self) -> bool {
        false
    }
}

/// The column the suite's schema change adds to `conformance-b`'s table (nullable nvarchar).
const ADDED_COLUMN: &str = "note";
/// The value every event written after the schema change carries in [`ADDED_COLUMN`].
const ADDED_VALUE: &str = "added";

fn check_reported(reported: &[Position], written: &Checkpoint) {
    for position in reported {
        assert!(
            written.covers(position),
            "reported {position} durable but never wrote it"
        );
    }
}

/// Checks a sink against its contract: flush makes everything written durable and reports
/// the last position per source partition; nothing unwritten is reported; replays after a
/// restart are tolerated (and deduplicated by exactly-once sinks); a revoked source
/// partition's open work is dropped and its re-read from the durable position stored once
/// (sinks that drop revoked work);
/// `tick` between writes and `pre_commit` report only written positions; after a schema change
/// that adds a column, the events written with the new schema are stored with the new column's
/// values (once each by an exactly-once sink, at least once otherwise), and no record written
/// before the change has them (the change adds a nullable `note` nvarchar column to
/// `conformance-b`'s table; the events after it hold `"added"` there).
pub async fn sink_conformance<H: SinkHarness>(harness: &mut H) -> Result<()> {
    let mut sink = harness.new_sink().await?;
    let reported = sink.flush().await?;
    assert!(
        reported.is_empty(),
        "an empty flush reports nothing, got {reported:?}"
    );

    let lane_a = sample_events("conformance-a", 30);
    let lane_b = sample_events("conformance-b", 10);
    let mut written = Checkpoint::default();
    let mut durable = Checkpoint::default();
    for chunk in lane_a[..20].chunks(7).chain(lane_b.chunks(4)) {
        let reported = sink.write(chunk).await?;
        chunk.iter().for_each(|e| {
            written.advance(e.position().clone());
        });
        check_reported(&reported, &written);
        reported.into_iter().for_each(|p| {
            durable.advance(p);
        });
        // The pipeline's time-driven call between writes: whatever it reports was written.
        let ticked = sink.tick().await?;
        check_reported(&ticked, &written);
        ticked.into_iter().for_each(|p| {
            durable.advance(p);
        });
    }
    let reported = sink.flush().await?;
    check_reported(&reported, &written);
    reported.into_iter().for_each(|p| {
        durable.advance(p);
    });
    assert_eq!(
        durable, written,
        "after flush, the last written position of every lane is durable"
    );

    let stored = harness.stored_positions().await?;
    for event in lane_a[..20].iter().chain(&lane_b) {
        assert!(
            stored.contains(event.position()),
            "{} was flushed but is not stored",
            event.position()
        );
    }

    let again = sink.flush().await?;
    for position in &again {
        assert!(
            durable.covers(position),
            "a second flush may only repeat old positions"
        );
    }

    // A restart replays from the last acknowledged position, here the middle of lane a.
    let mut sink = harness.new_sink().await?;
    let replay: Vec<ChangeEvent> = lane_a[10..].to_vec();
    sink.write(&replay).await?;
    let reported = sink.flush().await?;
    let last = lane_a.last().map(|e| e.position().clone());
    assert!(
        reported.iter().any(|p| Some(p) == last.as_ref()),
        "after a replay the flush reports the replay's last position"
    );
    let stored = harness.stored_positions().await?;
    for event in &lane_a {
        let copies = stored.iter().filter(|p| *p == event.position()).count();
        assert!(copies >= 1, "{} lost after replay", event.position());
        if harness.exactly_once() {
            assert_eq!(
                copies,
                1,
                "{} stored {copies} times by an exactly-once sink",
                event.position()
            );
        }
    }

    // A lane is revoked with work open, then re-read from its durable position (a Kafka
    // rebalance that gives the partition back).
    let lane_c = sample_events("conformance-c", 20);
    let mut c_written = Checkpoint::default();
    sink.write(&lane_c[..10]).await?;
    lane_c[..10].iter().for_each(|e| {
        c_written.advance(e.position().clone());
    });
    let reported = sink.flush().await?;
    check_reported(&reported, &c_written);
    let durable_c = lane_c[9].position().clone();
    let c_lane = durable_c.source_partition();
    let mut reported = sink.write(&lane_c[10..15]).await?;
    lane_c[10..15].iter().for_each(|e| {
        c_written.advance(e.position().clone());
    });
    reported.extend(sink.pre_commit().await?);
    check_reported(&reported, &c_written);
    sink.partitions_revoked(std::slice::from_ref(&c_lane))
        .await?;
    reported.extend(sink.flush().await?);
    if harness.drops_revoked_work() {
        assert!(
            reported
                .iter()
                .filter(|p| c_lane.contains(p))
                .all(|p| matches!(p.partial_cmp(&durable_c), Some(o) if o.is_le())),
            "work of a revoked lane is dropped, never reported: {reported:?}"
        );
    }
    sink.write(&lane_c[10..]).await?;
    let reported = sink.flush().await?;
    let last = lane_c.last().map(|e| e.position().clone());
    assert!(
        reported.iter().any(|p| Some(p) == last.as_ref()),
        "a revoked lane re-read from its durable position is flushed"
    );
    let stored = harness.stored_positions().await?;
    for event in &lane_c {
        let copies = stored.iter().filter(|p| *p == event.position()).count();
        assert!(copies >= 1, "{} lost after a revocation", event.position());
        if harness.exactly_once() && harness.drops_revoked_work() {
            assert_eq!(
                copies,
                1,
                "{} stored {copies} times after a revocation and re-read",
                event.position()
            );
        }
    }

    // A schema change, then events with the new schema.
    let old = &lane_b[0].table;
    let mut columns = old.columns.clone();
    columns.push(crate::Column::new(
        ADDED_COLUMN,
        crate::DataType::NVarChar { length: None },
        true,
    ));
    let new = Arc::new(
        TableSchema::with_version(
            old.id.clone(),
            columns,
            old.primary_key.clone(),
            old.version + 1,
        )
        .map_err(|e| {
            crate::Error::config("schema", "the widened schema is invalid").caused_by(e)
        })?,
    );
    let more = sample_events("conformance-b", 14);
    let evolved: Vec<ChangeEvent> = more[10..]
        .iter()
        .cloned()
        .map(|mut e| {
            e.table = Arc::clone(&new);
            for row in [&mut e.before, &mut e.after].into_iter().flatten() {
                row.0.push(crate::Value::String(ADDED_VALUE.into()));
            }
            e
        })
        .collect();
    sink.schema_changed(&SchemaChange {
        table: new,
        position: evolved[0].position().clone(),
    })
    .await?;
    sink.write(&evolved).await?;
    let reported = sink.flush().await?;
    let last = evolved.last().map(|e| e.position().clone());
    assert!(
        reported.iter().any(|p| Some(p) == last.as_ref()),
        "events after a schema change are flushed"
    );
    // The new column was stored: a sink that keeps writing with the old schema drops it.
    let values = harness.stored_values(ADDED_COLUMN).await?;
    for (position, value) in &values {
        assert!(
            evolved.iter().any(|e| e.position() == position),
            "{position} was written before the schema change, yet is stored with \
             {ADDED_COLUMN} = {value:?}"
        );
        assert_eq!(
            value, ADDED_VALUE,
            "{position} is stored with the wrong {ADDED_COLUMN}"
        );
    }
    for event in &evolved {
        let copies = values.iter().filter(|(p, _)| p == event.position()).count();
        assert!(
            copies >= 1,
            "{} was written after the schema change but is stored without its new column \
             {ADDED_COLUMN}: {} records hold it",
            event.position(),
            values.len()
        );
        if harness.exactly_once() {
            assert_eq!(
                copies,
                1,
                "{} stored with {ADDED_COLUMN} {copies} times by an exactly-once sink",
                event.position()
            );
        }
    }
    Ok(())
}
