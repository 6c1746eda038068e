//! The outbox's acknowledged position (part of `batcher → outbox → transport`), kept so that
//! recording an acknowledgement never needs free disk space.
//!
//! `cursor.bin` is allocated once, when the outbox is created, with two fixed-size checksummed
//! slots. Each update overwrites the older slot in place (no new blocks, no new file) with a higher
//! generation; reading takes the valid slot with the highest generation, so a write torn by a crash
//! leaves the previous position readable. On a full disk the transport can therefore still record
//! what the collector applied, and the outbox can delete the segments that frees. The slot also
//! keeps the count of samples the outbox ever dropped, so the count survives restarts and crashes:
//! data is dropped only where it is counted.

use super::{OutboxError, io_error, sync_dir};
use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// File name inside the outbox directory.
pub(super) const CURSOR_FILE: &str = "cursor.bin";
/// The JSON cursor of earlier versions, migrated on open.
const LEGACY_CURSOR_FILE: &str = "cursor.json";
const SLOT_MAGIC: [u8; 4] = *b"FLC2";
/// magic + generation + epoch + acked seq + dropped samples + crc32.
const SLOT_BYTES: usize = 4 + 8 + 8 + 8 + 8 + 4;

/// The position recorded in the cursor file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Position {
    /// The outbox's incarnation.
    pub epoch: u64,
    /// Everything up to here has been applied by the collector (or dropped and counted).
    pub acked_seq: u64,
    /// Samples dropped since the outbox was created (full disk, bound reached, rejected).
    pub dropped_samples: u64,
}

/// The open cursor file.
#[derive(Debug)]
pub(super) struct CursorFile {
    path: PathBuf,
    file: File,
    generation: u64,
}

impl CursorFile {
    /// Opens the cursor in `dir`, creating it (with a fresh random epoch, or the position of a
    /// legacy `cursor.json`) when missing.
    pub fn open(dir: &Path) -> Result<(Self, Position), OutboxError> {
        let path = dir.join(CURSOR_FILE);
        match fs::read(&path) {
            Ok(bytes) => {
                let (generation, position) =
                    newest_slot(&bytes).ok_or_else(|| OutboxError::Cursor {
                        path: path.clone(),
                        reason: "no valid slot".into(),
                    })?;
                Ok((Self::for_update(path, generation)?, position))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Self::create(dir, path),
            Err(e) => Err(io_error(&path)(e)),
        }
    }

    fn create(dir: &Path, path: PathBuf) -> Result<(Self, Position), OutboxError> {
        let legacy = dir.join(LEGACY_CURSOR_FILE);
        let position = match fs::read(&legacy) {
            Ok(bytes) => parse_legacy(&bytes).ok_or_else(|| OutboxError::Cursor {
                path: legacy.clone(),
                reason: "not an outbox cursor".into(),
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Position {
                epoch: rand::random::<u64>() >> 1,
                acked_seq: 0,
                dropped_samples: 0,
            },
            Err(e) => return Err(io_error(&legacy)(e)),
        };
        // Both slots are written now, so later updates only overwrite allocated bytes.
        let mut bytes = encode_slot(0, position);
        bytes.extend_from_slice(&encode_slot(0, position));
        let tmp = path.with_extension("tmp");
        fs::write(&tmp, &bytes).map_err(io_error(&tmp))?;
        File::open(&tmp)
            .and_then(|f| f.sync_all())
            .map_err(io_error(&tmp))?;
        fs::rename(&tmp, &path).map_err(io_error(&path))?;
        sync_dir(dir)?;
        match fs::remove_file(&legacy) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_error(&legacy)(e)),
        }
        Ok((Self::for_update(path, 0)?, position))
    }

    /// Opens the existing file for in-place updates after `generation`.
    fn for_update(path: PathBuf, generation: u64) -> Result<Self, OutboxError> {
        let file = OpenOptions::new()
            .write(true)
            .open(&path)
            .map_err(io_error(&path))?;
        Ok(Self {
            path,
            file,
            generation,
        })
    }

    /// Durably records `position`, overwriting the older slot in place.
    pub fn write(&mut self, position: Position) -> Result<(), OutboxError> {
        let generation = self.generation + 1;
        let slot = (generation % 2) * SLOT_BYTES as u64;
        self.file
            .write_all_at(&encode_slot(generation, position), slot)
            .and_then(|()| self.file.sync_data())
            .map_err(io_error(&self.path))?;
        self.generation = generation;
        Ok(())
    }
}

fn encode_slot(generation: u64, position: Position) -> Vec<u8> {
    let mut slot = Vec::with_capacity(SLOT_BYTES);
    slot.extend_from_slice(&SLOT_MAGIC);
    slot.extend_from_slice(&generation.to_le_bytes());
    slot.extend_from_slice(&position.epoch.to_le_bytes());
    slot.extend_from_slice(&position.acked_seq.to_le_bytes());
    slot.extend_from_slice(&position.dropped_samples.to_le_bytes());
    let crc = crc32fast::hash(&slot);
    slot.extend_from_slice(&crc.to_le_bytes());
    slot
}

fn parse_slot(slot: &[u8]) -> Option<(u64, Position)> {
    if slot.len() != SLOT_BYTES || slot[..4] != SLOT_MAGIC {
        return None;
    }
    let body = SLOT_BYTES - 4;
    let crc = u32::from_le_bytes(slot[body..].try_into().ok()?);
    if crc32fast::hash(&slot[..body]) != crc {
        return None;
    }
    let word = |at: usize| slot[at..at + 8].try_into().ok().map(u64::from_le_bytes);
    Some((
        word(4)?,
        Position {
            epoch: word(12)?,
            acked_seq: word(20)?,
            dropped_samples: word(28)?,
        },
    ))
}

/// The valid slot with the highest generation.
fn newest_slot(bytes: &[u8]) -> Option<(u64, Position)> {
    bytes
        .chunks(SLOT_BYTES)
        .take(2)
        .filter_map(parse_slot)
        .max_by_key(|(generation, _)| *generation)
}

fn parse_legacy(bytes: &[u8]) -> Option<Position> {
    let value: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    Some(Position {
        epoch: value["epoch"].as_u64()?,
        acked_seq: value["acked_seq"].as_u64()?,
        dropped_samples: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn updates_overwrite_in_place_and_survive_a_torn_slot() {
        let dir = tempfile::tempdir().unwrap();
        let (mut cursor, start) = CursorFile::open(dir.path()).unwrap();
        assert_eq!(start.acked_seq, 0);
        let len = fs::metadata(dir.path().join(CURSOR_FILE)).unwrap().len();
        for acked_seq in 1..=5 {
            cursor
                .write(Position {
                    epoch: start.epoch,
                    acked_seq,
                    dropped_samples: acked_seq * 10,
                })
                .unwrap();
        }
        drop(cursor);
        let path = dir.path().join(CURSOR_FILE);
        assert_eq!(fs::metadata(&path).unwrap().len(), len, "never grows");
        let (_, read) = CursorFile::open(dir.path()).unwrap();
        assert_eq!((read.acked_seq, read.dropped_samples), (5, 50));

        // Generation 5 lives in slot 1; a crash while overwriting it leaves generation 4 in slot 0.
        let mut bytes = fs::read(&path).unwrap();
        bytes[SLOT_BYTES + 10..SLOT_BYTES + 20].fill(0);
        fs::write(&path, &bytes).unwrap();
        let (_, read) = CursorFile::open(dir.path()).unwrap();
        assert_eq!(
            (read.acked_seq, read.dropped_samples),
            (4, 40),
            "the older slot is used"
        );

        fs::write(&path, vec![0u8; 2 * SLOT_BYTES]).unwrap();
        assert!(matches!(
            CursorFile::open(dir.path()),
            Err(OutboxError::Cursor { .. })
        ));
    }

    #[test]
    fn legacy_json_cursor_is_migrated() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(
            dir.path().join(LEGACY_CURSOR_FILE),
            br#"{"epoch":42,"acked_seq":17}"#,
        )
        .unwrap();
        let (_, read) = CursorFile::open(dir.path()).unwrap();
        assert_eq!(
            read,
            Position {
                epoch: 42,
                acked_seq: 17,
                dropped_samples: 0,
            }
        );
        assert!(!dir.path().join(LEGACY_CURSOR_FILE).exists());
        let (_, again) = CursorFile::open(dir.path()).unwrap();
        assert_eq!(again, read);
    }
}
