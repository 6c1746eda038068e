//! Where the outbox's segment files are written (part of `batcher → outbox → transport`): the
//! real filesystem in the agent, a deliberately small "disk" in the outbox's tests, so the
//! full-disk paths (partial writes, cut-back, dropping the oldest) are exercised without root.

use super::{OutboxError, io_error};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;

/// Opens segment files for appending.
pub(super) trait SegmentStore: std::fmt::Debug + Send {
    /// Opens (creating if missing) a segment for appending.
    fn open_append(&self, path: &Path) -> std::io::Result<Box<dyn SegmentWriter>>;
}

/// An open segment, written only at its end.
pub(super) trait SegmentWriter: std::fmt::Debug + Send {
    /// Appends all of `bytes`; on error part of them may have been written.
    fn append(&mut self, bytes: &[u8]) -> std::io::Result<()>;
    /// Makes what was written durable.
    fn sync(&mut self) -> std::io::Result<()>;
    /// Cuts the segment back to `len` bytes (frees space; needs none).
    fn truncate(&mut self, len: u64) -> std::io::Result<()>;
    /// Current length.
    fn len(&self) -> std::io::Result<u64>;
}

/// The real filesystem.
#[derive(Debug)]
pub(super) struct FileStore;

impl SegmentStore for FileStore {
    fn open_append(&self, path: &Path) -> std::io::Result<Box<dyn SegmentWriter>> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(Box::new(file))
    }
}

impl SegmentWriter for File {
    fn append(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.write_all(bytes)
    }

    fn sync(&mut self) -> std::io::Result<()> {
        self.sync_data()
    }

    fn truncate(&mut self, len: u64) -> std::io::Result<()> {
        self.set_len(len)
    }

    fn len(&self) -> std::io::Result<u64> {
        Ok(self.metadata()?.len())
    }
}

/// Cuts the file at `path` to `len` bytes, durably (recovery drops a damaged tail this way).
pub(super) fn cut(path: &Path, len: u64) -> Result<(), OutboxError> {
    OpenOptions::new()
        .write(true)
        .open(path)
        .and_then(|file| {
            file.set_len(len)?;
            file.sync_all()
        })
        .map_err(io_error(path))
}
