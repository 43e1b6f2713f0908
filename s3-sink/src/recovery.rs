//! Crash recovery: where a replay must resume in a directory, read from the store.
//!
//! File names sort by their first event's position, so the newest stored file of a source
//! partition in a directory is the one whose name sorts last; the format reads its last
//! position back (a Parquet footer entry, an NDJSON file's last line). Events at or before it
//! are already stored and are skipped.

use crate::error::Result;
use crate::format::{Encoders, recovery};
use crate::upload::Uploader;
use cdc_core::Position;
use object_store::path::{Path, PathPart};

/// The last position stored in `dir` by files whose names start with `file_prefix`
/// (`<topic>+<slot>+`, one source partition's files), or `None` when there are none.
///
/// # Errors
/// A failed listing or read; [`S3SinkError::Recovery`](crate::S3SinkError::Recovery) when
/// the newest file records no position or cannot be read.
pub(crate) async fn stored_end(
    uploader: &Uploader,
    encoders: &Encoders,
    dir: &Path,
    file_prefix: &str,
) -> Result<Option<Position>> {
    let prefix = PathPart::from(file_prefix).as_ref().to_string();
    let suffix = format!(".{}", encoders.extension());
    let latest = uploader
        .list(dir)
        .await?
        .into_iter()
        .filter(|p| {
            p.filename()
                .is_some_and(|n| n.starts_with(&prefix) && n.ends_with(&suffix))
        })
        .max_by(|a, b| a.as_ref().cmp(b.as_ref()));
    let Some(latest) = latest else {
        return Ok(None);
    };
    let position = encoders
        .last_position(uploader, &latest)
        .await?
        .ok_or_else(|| recovery(&latest, "the file records no position"))?;
    tracing::info!(key = %latest, %position, "resuming after a stored file");
    Ok(Some(position))
}
