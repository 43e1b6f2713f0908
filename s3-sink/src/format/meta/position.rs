//! The `__position` column's text: a position as compact JSON, serde's form.

use cdc_core::Position;

/// Appends a position as compact JSON to `out`: the same JSON as serde's, written by hand
/// for the per-event kinds because serde's path is a measurable share of encoding time.
pub(crate) fn write_position(out: &mut Vec<u8>, position: &Position) {
    match position {
        Position::Sequence { stream, seq } => {
            out.extend_from_slice(b"{\"kind\":\"sequence\",\"stream\":");
            let _ = serde_json::to_writer(&mut *out, stream);
            out.extend_from_slice(b",\"seq\":");
            out.extend_from_slice(itoa::Buffer::new().format(*seq).as_bytes());
            out.push(b'}');
        }
        Position::Kafka(k) => {
            let mut n = itoa::Buffer::new();
            out.extend_from_slice(b"{\"kind\":\"kafka\",\"topic\":");
            let _ = serde_json::to_writer(&mut *out, &k.topic);
            out.extend_from_slice(b",\"partition\":");
            out.extend_from_slice(n.format(k.partition).as_bytes());
            out.extend_from_slice(b",\"offset\":");
            out.extend_from_slice(n.format(k.offset).as_bytes());
            out.push(b'}');
        }
        Position::SqlServer(p) if p.snapshot.is_none() => {
            out.extend_from_slice(b"{\"kind\":\"sql_server\",\"database\":");
            let _ = serde_json::to_writer(&mut *out, &p.database);
            out.extend_from_slice(b",\"commit_lsn\":\"");
            out.extend_from_slice(p.commit_lsn.text().as_str().as_bytes());
            out.extend_from_slice(b"\",\"change_lsn\":\"");
            out.extend_from_slice(p.change_lsn.text().as_str().as_bytes());
            out.extend_from_slice(b"\",\"event_serial_no\":");
            out.extend_from_slice(itoa::Buffer::new().format(p.event_serial_no).as_bytes());
            out.extend_from_slice(b",\"total_order\":");
            out.extend_from_slice(itoa::Buffer::new().format(p.total_order).as_bytes());
            out.push(b'}');
        }
        other => {
            if serde_json::to_writer(&mut *out, other).is_err() {
                out.extend_from_slice(position_json(other).as_bytes());
            }
        }
    }
}

/// A position as compact JSON (`{"kind":"kafka","topic":…,"partition":…,"offset":…}`).
pub(crate) fn position_json(position: &Position) -> String {
    // Serialising a Position (strings and integers) cannot fail; the fallback keeps library
    // code free of panics all the same.
    serde_json::to_string(position).unwrap_or_else(|_| {
        format!(
            "{{\"source_partition\":{:?}}}",
            position.source_partition().to_string()
        )
    })
}

#[cfg(test)]
pub(super) mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use cdc_core::KafkaOffset;

    /// A position of each kind, with names JSON must escape, and SQL Server positions with
    /// and without a snapshot cursor and of two databases.
    pub(in crate::format::meta) fn positions() -> Vec<Position> {
        let sql_server = cdc_core::testing::every_type_events()[0].position().clone();
        let mut snapshot = sql_server.clone();
        if let Position::SqlServer(p) = &mut snapshot {
            p.snapshot = Some(Box::new(cdc_core::SnapshotCursor {
                table: "dbo.t".into(),
                key: "[1]".into(),
                blocking_row: 0,
            }));
        }
        let mut other_database = sql_server.clone();
        if let Position::SqlServer(p) = &mut other_database {
            p.database = "shop \"two\"".into();
        }
        vec![
            Position::Sequence {
                stream: "a \"quoted\" ß".into(),
                seq: u64::MAX,
            },
            Position::Kafka(KafkaOffset {
                topic: "t.x".into(),
                partition: -1,
                offset: i64::MAX,
            }),
            sql_server,
            snapshot,
            other_database,
        ]
    }

    #[test]
    fn hand_written_positions_match_serde() {
        let positions = positions();
        for p in positions {
            let mut out = Vec::new();
            write_position(&mut out, &p);
            assert_eq!(
                String::from_utf8(out).unwrap(),
                serde_json::to_string(&p).unwrap()
            );
        }
    }
}
