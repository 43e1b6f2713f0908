//! An offset store in a local file, replaced atomically.

use super::{Fenced, OffsetStore};
use crate::{Checkpoint, Error, Result};
use async_trait::async_trait;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

/// Keeps the checkpoint as JSON in one file.
///
/// A save writes a temporary file beside the target, fsyncs it, renames it over the target and
/// fsyncs the directory, so a crash at any point leaves either the old or the new checkpoint.
///
/// Fencing: the first load or save takes an exclusive lock (`flock`/`LockFileEx`, through
/// [`std::fs::File::try_lock`]) on `<path>.lock` and holds it for the store's life (clones
/// share it). A second store on the same path — another process, or another store in this
/// one — fails with [`Fenced`] instead of overwriting the first one's checkpoint. The
/// operating system releases the lock when the holder exits, however it exits.
#[derive(Debug, Clone)]
pub struct FileOffsetStore {
    path: PathBuf,
    lock: Arc<Mutex<Option<std::fs::File>>>,
}

impl FileOffsetStore {
    /// A store at `path`; the file need not exist yet, its directory must.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            lock: Arc::default(),
        }
    }

    /// The lock file's path: `<path>.lock`.
    pub fn lock_path(&self) -> PathBuf {
        let mut name = self.path.as_os_str().to_owned();
        name.push(".lock");
        PathBuf::from(name)
    }

    /// Takes the lock unless this store holds it already.
    fn lock(&self) -> Result<()> {
        let mut held = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
        if held.is_some() {
            return Ok(());
        }
        let path = self.lock_path();
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| self.error(e))?;
        match file.try_lock() {
            Ok(()) => {
                *held = Some(file);
                Ok(())
            }
            Err(std::fs::TryLockError::WouldBlock) => Err(self.error(Fenced {
                store: self.path.display().to_string(),
                detail: format!("another store holds the lock {}", path.display()),
                source: None,
            })),
            Err(std::fs::TryLockError::Error(e)) => Err(self.error(e)),
        }
    }

    /// The checkpoint file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn error(&self, source: impl Into<crate::BoxError>) -> Error {
        Error::OffsetStore {
            store: self.path.display().to_string(),
            source: source.into(),
        }
    }
}

fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".{}.tmp", std::process::id()));
    let tmp = PathBuf::from(tmp);
    let mut file = std::fs::File::create(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&tmp, path)?;
    // The rename is only durable once the directory entry is.
    std::fs::File::open(&dir)?.sync_all()
}

#[async_trait]
impl OffsetStore for FileOffsetStore {
    async fn load(&self) -> Result<Option<Checkpoint>> {
        self.lock()?;
        let bytes = match tokio::fs::read(&self.path).await {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(self.error(e)),
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| self.error(e))
    }

    async fn save(&self, checkpoint: &Checkpoint) -> Result<()> {
        self.lock()?;
        let bytes = serde_json::to_vec_pretty(checkpoint).map_err(|e| self.error(e))?;
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || write_atomically(&path, &bytes))
            .await
            .map_err(|e| self.error(e))?
            .map_err(|e| self.error(e))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::Position;

    #[tokio::test]
    async fn a_crash_mid_save_leaves_the_previous_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("offsets.json");
        let store = FileOffsetStore::new(&path);
        let mut checkpoint = Checkpoint::default();
        checkpoint.advance(Position::Sequence {
            stream: "a".into(),
            seq: 1,
        });
        store.save(&checkpoint).await.unwrap();
        // A save that died after writing half of its temporary file.
        let torn = path.with_file_name(format!("offsets.json.{}.tmp", std::process::id()));
        std::fs::write(&torn, b"{\"lanes\":{\"sequence/a\":{\"ki").unwrap();
        assert_eq!(store.load().await.unwrap(), Some(checkpoint.clone()));
        // The next save replaces the leftover and succeeds.
        checkpoint.advance(Position::Sequence {
            stream: "a".into(),
            seq: 2,
        });
        store.save(&checkpoint).await.unwrap();
        assert_eq!(store.load().await.unwrap(), Some(checkpoint));
        assert!(!torn.exists());
    }

    #[tokio::test]
    async fn a_second_store_on_the_same_file_is_fenced_until_the_first_is_gone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("offsets.json");
        let first = FileOffsetStore::new(&path);
        let mut checkpoint = Checkpoint::default();
        checkpoint.advance(Position::Sequence {
            stream: "a".into(),
            seq: 1,
        });
        first.save(&checkpoint).await.unwrap();
        let second = FileOffsetStore::new(&path);
        let error = second.load().await.unwrap_err();
        assert!(error.is_fenced(), "{error}");
        let error = second.save(&Checkpoint::default()).await.unwrap_err();
        assert!(error.is_fenced(), "{error}");
        // A clone is the same store and shares the lock.
        first.clone().save(&checkpoint).await.unwrap();
        drop(first);
        assert_eq!(second.load().await.unwrap(), Some(checkpoint));
    }

    #[tokio::test]
    async fn a_corrupt_checkpoint_is_a_typed_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("offsets.json");
        std::fs::write(&path, b"not json").unwrap();
        let err = FileOffsetStore::new(&path).load().await.unwrap_err();
        assert!(
            matches!(&err, Error::OffsetStore { store, .. } if store.contains("offsets.json")),
            "{err}"
        );
    }
}
