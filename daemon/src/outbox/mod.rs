//! The on-disk outbox: the durable queue between a producer and its sender — in the agent
//! `batcher → outbox → transport`, in the collector `ingest → outbox → remote-write sender`
//! (`faultline_collector::remote_write_out`). Payloads are opaque bytes.
//!
//! In the agent: The batcher appends each batch as one checksummed record
//! ([`record`]) and gets its sequence number; the transport reads the oldest unacknowledged record,
//! pushes it and acknowledges it here once the collector has applied it. Records live in segment
//! files; the acknowledged position lives in a pre-allocated cursor file overwritten in place
//! ([`cursor`]), so acknowledging — and deleting the segments that frees — never needs free space.
//!
//! Data is only ever lost oldest first and counted: when the outbox would pass `max_bytes`, and
//! when the disk is full (a failed append is cut back to the last whole record, the oldest segment
//! is dropped and the append retried). Reading resynchronises on the next valid record after any
//! damaged stretch (a crash mid-write, a flipped byte), which is counted as a torn record.
//!
//! This is a plain synchronous type; [`OutboxHandle`] runs it from `spawn_blocking`.

mod cursor;
mod handle;
mod record;
mod store;
#[cfg(test)]
mod tests;

pub use handle::OutboxHandle;

use cursor::{CursorFile, Position};
use std::collections::VecDeque;
use std::fs::{self, File};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use store::{FileStore, SegmentStore, SegmentWriter};
use thiserror::Error;

const SEGMENT_SUFFIX: &str = ".seg";
const MIN_SEGMENT_BYTES: u64 = 64 * 1024;
const MAX_SEGMENT_BYTES: u64 = 64 * 1024 * 1024;

/// An outbox I/O problem; names the file involved.
#[derive(Debug, Error)]
pub enum OutboxError {
    /// A file could not be read or written.
    #[error("outbox file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The cursor file exists but cannot be understood.
    #[error("outbox cursor {path} is corrupt: {reason}")]
    Cursor {
        /// The cursor file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The blocking task running an outbox call died.
    #[error("outbox task failed: {0}")]
    Task(String),
}

impl OutboxError {
    /// True when the filesystem is out of space (or quota): room can be made by dropping data.
    fn is_disk_full(&self) -> bool {
        matches!(self, OutboxError::Io { source, .. } if matches!(
            source.kind(),
            std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
        ))
    }
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> OutboxError + '_ {
    move |source| OutboxError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// What was recovered or lost, for the agent's health report.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct OutboxCounters {
    /// Samples dropped since the outbox was created: outbox full or disk full (oldest first),
    /// rejected or unreadable records. Kept in the cursor file, so restarts do not reset it.
    pub dropped_samples: u64,
    /// Damaged stretches found in segments (crash mid-write, corruption) and skipped, since open.
    pub torn_records: u64,
}

/// A point-in-time view of the outbox's size.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct OutboxDepth {
    /// Bytes on disk in segment files.
    pub bytes: u64,
    /// Unacknowledged records.
    pub records: u64,
    /// Unacknowledged samples.
    pub samples: u64,
}

/// One unacknowledged record as read back for sending.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Sequence number within the outbox's epoch.
    pub seq: u64,
    /// Samples encoded in the payload.
    pub sample_count: u32,
    /// The encoded samples, as given to [`Outbox::append`].
    pub payload: Vec<u8>,
}

#[derive(Debug, Clone, Copy)]
struct RecordMeta {
    seq: u64,
    segment: u64,
    offset: u64,
    payload_len: u32,
    sample_count: u32,
}

#[derive(Debug)]
struct Segment {
    /// Sequence number the outbox was at when the segment was started; also its file name.
    first_seq: u64,
    bytes: u64,
}

/// The durable, bounded queue of batches waiting for the collector.
#[derive(Debug)]
pub struct Outbox {
    dir: PathBuf,
    max_bytes: u64,
    segment_bytes: u64,
    fsync: bool,
    epoch: u64,
    acked_seq: u64,
    next_seq: u64,
    cursor: CursorFile,
    segments: VecDeque<Segment>,
    pending: VecDeque<RecordMeta>,
    store: Box<dyn SegmentStore>,
    writer: Option<Box<dyn SegmentWriter>>,
    counters: OutboxCounters,
    /// The record [`Outbox::oldest`] last handed out, which the transport may be sending.
    in_flight: Option<u64>,
    /// That record, when it was dropped for space while being sent: (seq, samples). If the
    /// collector then applies it, it was delivered after all and is not counted as dropped.
    dropped_in_flight: Option<(u64, u32)>,
}

impl Outbox {
    /// Opens (or creates) the outbox in `dir`, recovering whatever a previous run left.
    pub fn open(dir: &Path, max_bytes: u64, fsync: bool) -> Result<Self, OutboxError> {
        Self::open_on(dir, max_bytes, fsync, Box::new(FileStore))
    }

    fn open_on(
        dir: &Path,
        max_bytes: u64,
        fsync: bool,
        store: Box<dyn SegmentStore>,
    ) -> Result<Self, OutboxError> {
        fs::create_dir_all(dir).map_err(io_error(dir))?;
        let (cursor, position) = CursorFile::open(dir)?;
        let mut outbox = Self {
            dir: dir.to_path_buf(),
            max_bytes,
            segment_bytes: (max_bytes / 8).clamp(MIN_SEGMENT_BYTES, MAX_SEGMENT_BYTES),
            fsync,
            epoch: position.epoch,
            acked_seq: position.acked_seq,
            next_seq: position.acked_seq + 1,
            cursor,
            segments: VecDeque::new(),
            pending: VecDeque::new(),
            store,
            writer: None,
            counters: OutboxCounters {
                dropped_samples: position.dropped_samples,
                ..OutboxCounters::default()
            },
            in_flight: None,
            dropped_in_flight: None,
        };
        outbox.recover()?;
        Ok(outbox)
    }

    /// The random id of this outbox's incarnation; sequence numbers are unique within it.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Drops and damage seen since open.
    pub fn counters(&self) -> OutboxCounters {
        self.counters
    }

    /// Current size.
    pub fn depth(&self) -> OutboxDepth {
        OutboxDepth {
            bytes: self.segments.iter().map(|s| s.bytes).sum(),
            records: self.pending.len() as u64,
            samples: self.pending.iter().map(|r| u64::from(r.sample_count)).sum(),
        }
    }

    /// Durably appends one batch's encoded samples and returns its sequence number, or `None` when
    /// the batch was dropped (counted and logged): it is larger than the whole outbox, or the disk
    /// is full with nothing older left to drop. Drops the oldest data first to make room, when the
    /// outbox would pass its bound or the disk is full. A failed write leaves the segment as it
    /// was.
    pub fn append(
        &mut self,
        payload: &[u8],
        sample_count: u32,
    ) -> Result<Option<u64>, OutboxError> {
        let bytes = record::encode(self.next_seq, sample_count, payload);
        let record_bytes = bytes.len() as u64;
        if record_bytes > self.max_bytes {
            self.counters.dropped_samples += u64::from(sample_count);
            tracing::warn!(
                record_bytes,
                max_bytes = self.max_bytes,
                dropped_samples = sample_count,
                "batch larger than the whole outbox; dropped"
            );
            self.record_drop();
            return Ok(None);
        }
        loop {
            let attempt = self
                .ensure_segment(record_bytes)
                .and_then(|()| self.make_room(record_bytes))
                .and_then(|()| self.write_record(&bytes, sample_count, payload.len()));
            match attempt {
                Ok(seq) => return Ok(Some(seq)),
                Err(e) if e.is_disk_full() => {
                    if !self.drop_oldest_segment("disk full")? {
                        self.counters.dropped_samples += u64::from(sample_count);
                        tracing::warn!(
                            dropped_samples = sample_count,
                            error = %e,
                            "outbox: disk full and no older data left to drop; batch dropped"
                        );
                        self.record_drop();
                        return Ok(None);
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Starts a new segment when there is none open or the record would overflow the current one.
    fn ensure_segment(&mut self, record_bytes: u64) -> Result<(), OutboxError> {
        let full = self
            .segments
            .back()
            .is_none_or(|last| last.bytes > 0 && last.bytes + record_bytes > self.segment_bytes);
        if full || self.writer.is_none() {
            self.start_segment()?;
        }
        Ok(())
    }

    /// Writes one encoded record at the end of the open segment. On failure the segment is cut
    /// back to its last whole record; if even that fails, the segment is closed so the next
    /// append starts a fresh one (reading skips the fragment by its checksum).
    fn write_record(
        &mut self,
        bytes: &[u8],
        sample_count: u32,
        payload_len: usize,
    ) -> Result<u64, OutboxError> {
        let (Some(segment), Some(writer)) = (self.segments.back_mut(), self.writer.as_mut()) else {
            return Err(OutboxError::Cursor {
                path: self.dir.clone(),
                reason: "no open segment".into(),
            });
        };
        let path = segment_path(&self.dir, segment.first_seq);
        let written = writer.append(bytes).and_then(|()| match self.fsync {
            true => writer.sync(),
            false => Ok(()),
        });
        if let Err(source) = written {
            if let Err(cut) = writer.truncate(segment.bytes) {
                tracing::error!(file = %path.display(), error = %cut,
                    "outbox: cannot cut a failed write back; continuing in a new segment");
                self.writer = None;
            }
            return Err(OutboxError::Io { path, source });
        }
        let seq = self.next_seq;
        self.pending.push_back(RecordMeta {
            seq,
            segment: segment.first_seq,
            offset: segment.bytes,
            payload_len: payload_len as u32,
            sample_count,
        });
        segment.bytes += bytes.len() as u64;
        self.next_seq += 1;
        Ok(seq)
    }

    /// Reads the oldest unacknowledged record, if any. A record that no longer matches its
    /// checksum (disk corruption) is counted as torn, its samples as dropped, and reading goes on
    /// with the next one.
    pub fn oldest(&mut self) -> Result<Option<Record>, OutboxError> {
        self.in_flight = None;
        self.dropped_in_flight = None;
        while let Some(meta) = self.pending.front().copied() {
            let path = segment_path(&self.dir, meta.segment);
            let mut buf = vec![0; record::HEADER_BYTES + meta.payload_len as usize];
            let read = File::open(&path).and_then(|mut file| {
                file.seek(SeekFrom::Start(meta.offset))?;
                file.read_exact(&mut buf)
            });
            match read {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {}
                Err(e) => return Err(io_error(&path)(e)),
            }
            if let Some(found) = record::parse(&buf).filter(|r| r.seq == meta.seq) {
                self.in_flight = Some(found.seq);
                return Ok(Some(Record {
                    seq: found.seq,
                    sample_count: found.count,
                    payload: found.payload.to_vec(),
                }));
            }
            self.counters.torn_records += 1;
            tracing::warn!(file = %path.display(), seq = meta.seq, dropped_samples = meta.sample_count,
                "outbox: record failed its checksum; dropped, reading on from the next record");
            self.discard(meta.seq)?;
        }
        Ok(None)
    }

    /// Skips a record that can never be sent (rejected by the collector or unreadable), counting its
    /// samples as dropped, and moves the cursor past it.
    pub fn discard(&mut self, seq: u64) -> Result<(), OutboxError> {
        // Already counted when it was dropped for space; it stays counted.
        self.dropped_in_flight = None;
        let dropped: u64 = self
            .pending
            .iter()
            .filter(|r| r.seq <= seq)
            .map(|r| u64::from(r.sample_count))
            .sum();
        self.counters.dropped_samples += dropped;
        self.ack(seq)
    }

    /// Marks everything up to and including `seq` as applied by the collector. Needs no free disk
    /// space, and deletes the segments that become fully acknowledged.
    pub fn ack(&mut self, seq: u64) -> Result<(), OutboxError> {
        if let Some((dropped, samples)) = self.dropped_in_flight.take_if(|(d, _)| *d <= seq) {
            self.counters.dropped_samples -= u64::from(samples);
            tracing::info!(
                seq = dropped,
                samples,
                "outbox: a batch dropped for space while being sent was applied; not counted as dropped"
            );
        }
        if seq <= self.acked_seq {
            return Ok(());
        }
        self.acked_seq = seq;
        while self.pending.front().is_some_and(|r| r.seq <= seq) {
            self.pending.pop_front();
        }
        self.write_cursor()?;
        // Delete fully acknowledged segments, but keep the one being written.
        while self.segments.len() > 1 {
            let oldest_live = self.pending.front().map(|r| r.segment);
            let Some(first) = self.segments.front() else {
                break;
            };
            if oldest_live.is_some_and(|s| s <= first.first_seq) {
                break;
            }
            self.remove_oldest_segment()?;
        }
        Ok(())
    }

    /// Records the drop count of a batch that was never stored. The cursor slot is overwritten
    /// in place, so this works on a full disk; should it fail all the same, the count is still
    /// exported and written with the next acknowledgement.
    fn record_drop(&mut self) {
        if let Err(e) = self.write_cursor() {
            tracing::warn!(error = %e, "outbox: cannot record the drop count yet");
        }
    }

    fn write_cursor(&mut self) -> Result<(), OutboxError> {
        self.cursor.write(Position {
            epoch: self.epoch,
            acked_seq: self.acked_seq,
            dropped_samples: self.counters.dropped_samples,
        })
    }

    /// Drops oldest segments until `incoming` more bytes fit within `max_bytes`.
    fn make_room(&mut self, incoming: u64) -> Result<(), OutboxError> {
        while self.depth().bytes + incoming > self.max_bytes && self.segments.len() > 1 {
            self.drop_oldest_segment("outbox.max_bytes reached")?;
        }
        Ok(())
    }

    /// Drops the oldest segment with its unsent records (counted, logged with `reason`), the
    /// segment being written included when it is the only one. Returns false when no segment holds
    /// any bytes, so dropping cannot free space.
    fn drop_oldest_segment(&mut self, reason: &str) -> Result<bool, OutboxError> {
        if self.segments.iter().all(|s| s.bytes == 0) {
            return Ok(false);
        }
        let Some(first) = self.segments.front().map(|s| s.first_seq) else {
            return Ok(false);
        };
        let mut dropped_samples = 0u64;
        let mut dropped = None;
        while let Some(r) = self.pending.front().copied().filter(|r| r.segment == first) {
            self.pending.pop_front();
            if self.in_flight == Some(r.seq) {
                self.dropped_in_flight = Some((r.seq, r.sample_count));
            }
            dropped_samples += u64::from(r.sample_count);
            dropped = Some((dropped.map_or(r.seq, |(first, _)| first), r.seq));
        }
        if let Some((first_seq, last_seq)) = dropped {
            self.counters.dropped_samples += dropped_samples;
            tracing::warn!(
                reason,
                dropped_samples,
                first_seq,
                last_seq,
                total_dropped_samples = self.counters.dropped_samples,
                "outbox: dropped the oldest unsent samples"
            );
            self.acked_seq = self.acked_seq.max(last_seq);
            self.write_cursor()?;
        }
        self.remove_oldest_segment()?;
        Ok(true)
    }

    fn remove_oldest_segment(&mut self) -> Result<(), OutboxError> {
        if let Some(segment) = self.segments.pop_front() {
            if self.segments.is_empty() {
                self.writer = None;
            }
            let path = segment_path(&self.dir, segment.first_seq);
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_error(&path)(e)),
            }
        }
        Ok(())
    }

    fn start_segment(&mut self) -> Result<(), OutboxError> {
        let first_seq = self.next_seq;
        let path = segment_path(&self.dir, first_seq);
        let writer = self.store.open_append(&path).map_err(io_error(&path))?;
        if self.fsync {
            sync_dir(&self.dir)?;
        }
        // A segment left empty (or holding only a fragment) may carry this same name; reuse it.
        if self
            .segments
            .back()
            .is_some_and(|s| s.first_seq == first_seq)
        {
            self.segments.pop_back();
        }
        let bytes = writer.len().map_err(io_error(&path))?;
        self.segments.push_back(Segment { first_seq, bytes });
        self.writer = Some(writer);
        Ok(())
    }

    /// Scans the segment files, indexing unacknowledged records, skipping damaged stretches and
    /// cutting off a damaged tail.
    fn recover(&mut self) -> Result<(), OutboxError> {
        let mut names: Vec<u64> = fs::read_dir(&self.dir)
            .map_err(io_error(&self.dir))?
            .filter_map(|entry| entry.ok())
            .filter_map(|entry| {
                let name = entry.file_name().into_string().ok()?;
                name.strip_suffix(SEGMENT_SUFFIX)?.parse().ok()
            })
            .collect();
        names.sort_unstable();
        for first_seq in names {
            let path = segment_path(&self.dir, first_seq);
            let data = fs::read(&path).map_err(io_error(&path))?;
            let mut valid_end = 0;
            for found in record::scan(&data) {
                match found {
                    record::Found::Record { offset, record: r } => {
                        let newer = self.pending.back().is_none_or(|p| r.seq > p.seq);
                        if r.seq > self.acked_seq && newer {
                            self.pending.push_back(RecordMeta {
                                seq: r.seq,
                                segment: first_seq,
                                offset: offset as u64,
                                payload_len: r.payload.len() as u32,
                                sample_count: r.count,
                            });
                        }
                        self.next_seq = self.next_seq.max(r.seq + 1);
                        valid_end = offset + r.len;
                    }
                    record::Found::Damaged { offset, end } => {
                        self.counters.torn_records += 1;
                        tracing::warn!(
                            file = %path.display(),
                            offset,
                            damaged_bytes = end - offset,
                            "outbox: damaged record skipped; reading on from the next valid one"
                        );
                    }
                }
            }
            if valid_end < data.len() {
                store::cut(&path, valid_end as u64)?;
            }
            self.segments.push_back(Segment {
                first_seq,
                bytes: valid_end as u64,
            });
        }
        // Segments holding nothing unacknowledged are garbage now (except the newest, reused).
        while self.segments.len() > 1
            && self.pending.front().is_none_or(|r| {
                self.segments
                    .front()
                    .is_some_and(|s| r.segment > s.first_seq)
            })
        {
            self.remove_oldest_segment()?;
        }
        Ok(())
    }
}

fn segment_path(dir: &Path, first_seq: u64) -> PathBuf {
    dir.join(format!("{first_seq:020}{SEGMENT_SUFFIX}"))
}

fn sync_dir(dir: &Path) -> Result<(), OutboxError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_error(dir))
}
