//! The footer of a stored Parquet file: the last position its writer recorded there, read
//! back when a restarted sink resumes a directory.

use crate::error::Result;
use crate::format::{Unreadable, recovery};
use crate::upload::Uploader;
use cdc_core::Position;
use object_store::path::Path;
use parquet::file::metadata::ParquetMetaDataReader;

/// Footer key holding the JSON position of the file's last event.
pub(crate) const LAST_POSITION_KEY: &str = "cdc.last_position";

/// The last position recorded in the footer of the stored Parquet file at `path`. Only the
/// footer is read: one ranged read of the file's tail, a second if the footer is larger.
pub(crate) async fn read_last_position(
    uploader: &Uploader,
    path: &Path,
) -> Result<Option<Position>> {
    const TAIL: u64 = 64 * 1024;
    let recovery = |why: Unreadable| recovery(path, why);
    let (tail, size) = uploader
        .get_suffix(path, TAIL)
        .await?
        .ok_or_else(|| recovery("vanished".into()))?;
    let range = metadata_range(&tail, size).map_err(|e| recovery(e.into()))?;
    let tail_start = size
        .checked_sub(tail.len() as u64)
        .ok_or_else(|| recovery("the store returned more bytes than the object has".into()))?;
    let metadata = if range.start >= tail_start {
        let from = usize::try_from(range.start - tail_start)
            .map_err(|e| recovery(Unreadable::caused_by("the footer lies beyond memory", e)))?;
        tail.slice(from..tail.len() - 8)
    } else {
        uploader.get_range(path, range).await?
    };
    let metadata = ParquetMetaDataReader::decode_metadata(&metadata).map_err(|e| {
        recovery(Unreadable::caused_by(
            "the Parquet footer cannot be decoded",
            e,
        ))
    })?;
    position_from(&metadata).map_err(recovery)
}

/// Where the footer metadata of a Parquet file of `size` bytes lies, from its last 8 bytes
/// (metadata length, then `PAR1`).
fn metadata_range(tail: &[u8], size: u64) -> std::result::Result<std::ops::Range<u64>, String> {
    let n = tail.len();
    if n < 8 || &tail[n - 4..] != b"PAR1" {
        return Err("not a Parquet file (no PAR1 footer)".into());
    }
    let mut len = [0u8; 4];
    len.copy_from_slice(&tail[n - 8..n - 4]);
    let len = u64::from(u32::from_le_bytes(len));
    let end = size.checked_sub(8).ok_or("file too short")?;
    let start = end.checked_sub(len).ok_or("footer longer than the file")?;
    Ok(start..end)
}

fn position_from(
    metadata: &parquet::file::metadata::ParquetMetaData,
) -> std::result::Result<Option<Position>, Unreadable> {
    let Some(kv) = metadata.file_metadata().key_value_metadata() else {
        return Ok(None);
    };
    match kv
        .iter()
        .find(|kv| kv.key == LAST_POSITION_KEY)
        .and_then(|kv| kv.value.as_deref())
    {
        Some(json) => serde_json::from_str(json).map(Some).map_err(|e| {
            Unreadable::caused_by(format!("{LAST_POSITION_KEY} is not a position"), e)
        }),
        None => Ok(None),
    }
}
