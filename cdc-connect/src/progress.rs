//! Snapshot progress bars on a terminal (indicatif): one bar per table, rows read out of the
//! `sys.partitions` estimate, counting rows read before a restart. Drawn only when stderr is a
//! terminal; otherwise nothing is drawn and the logs stay plain lines.

use cdc_mssql::{SnapshotProgress, TableProgress};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::collections::HashMap;
use std::io::IsTerminal;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Whether stderr is a terminal: bars are drawn and logs are coloured only then.
pub fn stderr_is_terminal() -> bool {
    std::io::stderr().is_terminal()
}

/// The text beside a table's bar: `database.schema.table`.
fn bar_label(database: &str, table: &TableProgress) -> String {
    format!("{database}.{}", table.table)
}

/// Draws `snapshot`'s progress to `target` every 200 ms until every table is done or `stop`
/// is cancelled; a table's bar finishes when its snapshot does.
pub fn spawn_snapshot_bars(
    snapshot: SnapshotProgress,
    target: ProgressDrawTarget,
    stop: CancellationToken,
) {
    tokio::spawn(async move {
        let multi = MultiProgress::with_draw_target(target);
        let style = ProgressStyle::with_template(
            "{prefix:>30} [{bar:40}] {pos}/{len} rows ({percent}%) {per_sec} eta {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
        let mut bars: HashMap<String, ProgressBar> = HashMap::new();
        let mut tick = tokio::time::interval(Duration::from_millis(200));
        loop {
            tokio::select! {
                () = stop.cancelled() => break,
                _ = tick.tick() => {}
            }
            let tables = snapshot.tables();
            for (database, table) in &tables {
                let label = bar_label(database, table);
                let bar = bars.entry(label.clone()).or_insert_with(|| {
                    let bar = multi.add(ProgressBar::new(table.rows_estimated));
                    bar.set_style(style.clone());
                    bar.set_prefix(label);
                    bar
                });
                // The estimate can be short of the rows read: the bar grows with them.
                bar.set_length(table.rows_estimated.max(table.rows_done));
                bar.set_position(table.rows_done);
                if table.done && !bar.is_finished() {
                    bar.finish();
                }
            }
            if !tables.is_empty() && tables.iter().all(|(_, t)| t.done) {
                break;
            }
        }
        for bar in bars.values() {
            if !bar.is_finished() {
                bar.abandon();
            }
        }
    });
}
