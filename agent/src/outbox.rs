//! The agent's on-disk outbox: the durable queue between the batcher and the transport.
//!
//! Flow: `batcher → outbox → transport`. The batcher appends each batch as one checksummed record
//! (assigning its sequence number); the transport reads the oldest unacknowledged record, pushes it
//! and acknowledges it here once the collector has applied it. Records live in segment files; the
//! acknowledged position lives in a small cursor file replaced atomically. The outbox is bounded in
//! bytes: when full, the oldest segment is dropped and its samples are counted as dropped. After a
//! crash (kill -9 mid-write) a damaged tail is detected by its checksum, cut off and counted.
//!
//! This is a plain synchronous type; the async stages call it from `spawn_blocking`.

use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use thiserror::Error;

const MAGIC: [u8; 4] = *b"FLR1";
/// magic + payload length + crc32 + seq + sample count.
const HEADER_BYTES: usize = 4 + 4 + 4 + 8 + 4;
const CURSOR_FILE: &str = "cursor.json";
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
    /// A record read back no longer matches its checksum (disk corruption after recovery).
    #[error("outbox record {seq} in {path} failed its checksum")]
    Checksum {
        /// The segment file.
        path: PathBuf,
        /// The record's sequence number.
        seq: u64,
    },
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
    /// Samples dropped because the outbox was full (oldest first).
    pub dropped_samples: u64,
    /// Damaged records found at recovery and skipped.
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
    /// Sequence number of the first record written to it; also its file name.
    first_seq: u64,
    bytes: u64,
}

#[derive(Debug, Serialize, Deserialize)]
struct Cursor {
    epoch: u64,
    acked_seq: u64,
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
    segments: VecDeque<Segment>,
    pending: VecDeque<RecordMeta>,
    writer: Option<File>,
    counters: OutboxCounters,
}

impl Outbox {
    /// Opens (or creates) the outbox in `dir`, recovering whatever a previous run left.
    pub fn open(dir: &Path, max_bytes: u64, fsync: bool) -> Result<Self, OutboxError> {
        fs::create_dir_all(dir).map_err(io_error(dir))?;
        let cursor_path = dir.join(CURSOR_FILE);
        let cursor = match fs::read(&cursor_path) {
            Ok(bytes) => {
                serde_json::from_slice::<Cursor>(&bytes).map_err(|e| OutboxError::Cursor {
                    path: cursor_path.clone(),
                    reason: e.to_string(),
                })?
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let cursor = Cursor {
                    epoch: rand::random::<u64>() >> 1,
                    acked_seq: 0,
                };
                write_atomically(
                    &cursor_path,
                    &serde_json::to_vec(&cursor).unwrap_or_default(),
                )?;
                cursor
            }
            Err(e) => return Err(io_error(&cursor_path)(e)),
        };
        let mut outbox = Self {
            dir: dir.to_path_buf(),
            max_bytes,
            segment_bytes: (max_bytes / 8).clamp(MIN_SEGMENT_BYTES, MAX_SEGMENT_BYTES),
            fsync,
            epoch: cursor.epoch,
            acked_seq: cursor.acked_seq,
            next_seq: cursor.acked_seq + 1,
            segments: VecDeque::new(),
            pending: VecDeque::new(),
            writer: None,
            counters: OutboxCounters::default(),
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

    /// Durably appends one batch's encoded samples and returns its sequence number. Drops the
    /// oldest data first when the outbox would exceed its bound.
    pub fn append(&mut self, payload: &[u8], sample_count: u32) -> Result<u64, OutboxError> {
        let record_bytes = (HEADER_BYTES + payload.len()) as u64;
        if record_bytes > self.max_bytes {
            self.counters.dropped_samples += u64::from(sample_count);
            tracing::warn!(
                record_bytes,
                max_bytes = self.max_bytes,
                "batch larger than the whole outbox; dropped"
            );
            return Ok(0);
        }
        let needs_new_segment = match self.segments.back() {
            None => true,
            Some(last) => last.bytes > 0 && last.bytes + record_bytes > self.segment_bytes,
        };
        if needs_new_segment || self.writer.is_none() {
            self.start_segment()?;
        }
        self.make_room(record_bytes)?;

        let seq = self.next_seq;
        let mut record = Vec::with_capacity(HEADER_BYTES + payload.len());
        record.extend_from_slice(&MAGIC);
        record.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        record.extend_from_slice(&checksum(seq, sample_count, payload).to_le_bytes());
        record.extend_from_slice(&seq.to_le_bytes());
        record.extend_from_slice(&sample_count.to_le_bytes());
        record.extend_from_slice(payload);

        let segment = self
            .segments
            .back_mut()
            .ok_or_else(|| OutboxError::Cursor {
                path: self.dir.clone(),
                reason: "no open segment".into(),
            })?;
        let path = segment_path(&self.dir, segment.first_seq);
        let writer = self.writer.as_mut().ok_or_else(|| OutboxError::Cursor {
            path: path.clone(),
            reason: "no open writer".into(),
        })?;
        writer.write_all(&record).map_err(io_error(&path))?;
        if self.fsync {
            writer.sync_data().map_err(io_error(&path))?;
        }
        self.pending.push_back(RecordMeta {
            seq,
            segment: segment.first_seq,
            offset: segment.bytes,
            payload_len: payload.len() as u32,
            sample_count,
        });
        segment.bytes += record_bytes;
        self.next_seq += 1;
        Ok(seq)
    }

    /// Reads the oldest unacknowledged record, if any.
    pub fn oldest(&self) -> Result<Option<Record>, OutboxError> {
        let Some(meta) = self.pending.front().copied() else {
            return Ok(None);
        };
        let path = segment_path(&self.dir, meta.segment);
        let mut file = File::open(&path).map_err(io_error(&path))?;
        file.seek(SeekFrom::Start(meta.offset))
            .map_err(io_error(&path))?;
        let mut buf = vec![0; HEADER_BYTES + meta.payload_len as usize];
        file.read_exact(&mut buf).map_err(io_error(&path))?;
        match parse_record(&buf) {
            Parsed::Record {
                seq,
                count,
                payload,
                ..
            } if seq == meta.seq => Ok(Some(Record {
                seq,
                sample_count: count,
                payload: payload.to_vec(),
            })),
            _ => Err(OutboxError::Checksum {
                path,
                seq: meta.seq,
            }),
        }
    }

    /// Skips a record that can never be sent (rejected by the collector or unreadable), counting its
    /// samples as dropped, and moves the cursor past it.
    pub fn discard(&mut self, seq: u64) -> Result<(), OutboxError> {
        let dropped: u64 = self
            .pending
            .iter()
            .filter(|r| r.seq <= seq)
            .map(|r| u64::from(r.sample_count))
            .sum();
        self.counters.dropped_samples += dropped;
        self.ack(seq)
    }

    /// Marks everything up to and including `seq` as applied by the collector.
    pub fn ack(&mut self, seq: u64) -> Result<(), OutboxError> {
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

    fn write_cursor(&self) -> Result<(), OutboxError> {
        let cursor = Cursor {
            epoch: self.epoch,
            acked_seq: self.acked_seq,
        };
        write_atomically(
            &self.dir.join(CURSOR_FILE),
            &serde_json::to_vec(&cursor).unwrap_or_default(),
        )
    }

    /// Drops oldest segments until `incoming` more bytes fit.
    fn make_room(&mut self, incoming: u64) -> Result<(), OutboxError> {
        while self.depth().bytes + incoming > self.max_bytes && self.segments.len() > 1 {
            let Some(oldest) = self.segments.front() else {
                break;
            };
            let first = oldest.first_seq;
            let mut dropped_samples = 0u64;
            let mut last_dropped = None;
            while self.pending.front().is_some_and(|r| r.segment == first) {
                if let Some(r) = self.pending.pop_front() {
                    dropped_samples += u64::from(r.sample_count);
                    last_dropped = Some(r.seq);
                }
            }
            if dropped_samples > 0 {
                tracing::warn!(
                    dropped_samples,
                    "outbox full: dropped the oldest unsent samples"
                );
            }
            self.counters.dropped_samples += dropped_samples;
            if let Some(seq) = last_dropped {
                self.acked_seq = self.acked_seq.max(seq);
                self.write_cursor()?;
            }
            self.remove_oldest_segment()?;
        }
        Ok(())
    }

    fn remove_oldest_segment(&mut self) -> Result<(), OutboxError> {
        if let Some(segment) = self.segments.pop_front() {
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
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io_error(&path))?;
        if self.fsync {
            sync_dir(&self.dir)?;
        }
        // A segment left empty by a previous run may carry this same name; reuse it.
        if self
            .segments
            .back()
            .is_some_and(|s| s.first_seq == first_seq)
        {
            self.segments.pop_back();
        }
        let bytes = file.metadata().map_err(io_error(&path))?.len();
        self.segments.push_back(Segment { first_seq, bytes });
        self.writer = Some(file);
        Ok(())
    }

    /// Scans the segment files, indexing unacknowledged records and cutting off a damaged tail.
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
        let last = names.last().copied();
        for first_seq in names {
            let path = segment_path(&self.dir, first_seq);
            let data = fs::read(&path).map_err(io_error(&path))?;
            let mut offset = 0usize;
            while offset < data.len() {
                match parse_record(&data[offset..]) {
                    Parsed::Record {
                        seq,
                        count,
                        payload,
                        len,
                    } => {
                        if seq > self.acked_seq {
                            self.pending.push_back(RecordMeta {
                                seq,
                                segment: first_seq,
                                offset: offset as u64,
                                payload_len: payload.len() as u32,
                                sample_count: count,
                            });
                        }
                        self.next_seq = self.next_seq.max(seq + 1);
                        offset += len;
                    }
                    Parsed::Damaged => {
                        self.counters.torn_records += 1;
                        tracing::warn!(
                            file = %path.display(),
                            offset,
                            "outbox: damaged record after a crash; skipping the rest of the segment"
                        );
                        if Some(first_seq) == last {
                            let file = OpenOptions::new()
                                .write(true)
                                .open(&path)
                                .map_err(io_error(&path))?;
                            file.set_len(offset as u64).map_err(io_error(&path))?;
                            file.sync_all().map_err(io_error(&path))?;
                        }
                        break;
                    }
                }
            }
            let bytes = if Some(first_seq) == last {
                offset as u64
            } else {
                data.len() as u64
            };
            self.segments.push_back(Segment { first_seq, bytes });
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

enum Parsed<'a> {
    Record {
        seq: u64,
        count: u32,
        payload: &'a [u8],
        len: usize,
    },
    Damaged,
}

/// Parses one record at the start of `data`.
fn parse_record(data: &[u8]) -> Parsed<'_> {
    if data.len() < HEADER_BYTES || data[..4] != MAGIC {
        return Parsed::Damaged;
    }
    let word = |at: usize| u32::from_le_bytes([data[at], data[at + 1], data[at + 2], data[at + 3]]);
    let payload_len = word(4) as usize;
    let crc = word(8);
    let mut seq_bytes = [0u8; 8];
    seq_bytes.copy_from_slice(&data[12..20]);
    let seq = u64::from_le_bytes(seq_bytes);
    let count = word(20);
    let end = HEADER_BYTES.saturating_add(payload_len);
    if data.len() < end {
        return Parsed::Damaged;
    }
    let payload = &data[HEADER_BYTES..end];
    if checksum(seq, count, payload) != crc {
        return Parsed::Damaged;
    }
    Parsed::Record {
        seq,
        count,
        payload,
        len: end,
    }
}

fn checksum(seq: u64, count: u32, payload: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&seq.to_le_bytes());
    hasher.update(&count.to_le_bytes());
    hasher.update(payload);
    hasher.finalize()
}

fn segment_path(dir: &Path, first_seq: u64) -> PathBuf {
    dir.join(format!("{first_seq:020}{SEGMENT_SUFFIX}"))
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), OutboxError> {
    let tmp = path.with_extension("tmp");
    let mut file = File::create(&tmp).map_err(io_error(&tmp))?;
    file.write_all(bytes).map_err(io_error(&tmp))?;
    file.sync_all().map_err(io_error(&tmp))?;
    fs::rename(&tmp, path).map_err(io_error(path))?;
    if let Some(dir) = path.parent() {
        sync_dir(dir)?;
    }
    Ok(())
}

fn sync_dir(dir: &Path) -> Result<(), OutboxError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_error(dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(i: u64) -> Vec<u8> {
        format!("payload-{i}-{}", "x".repeat(100)).into_bytes()
    }

    #[test]
    fn append_read_ack_and_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let mut ob = Outbox::open(dir.path(), 1 << 20, true).unwrap();
        let epoch = ob.epoch();
        for i in 1..=3 {
            assert_eq!(ob.append(&payload(i), 2).unwrap(), i);
        }
        assert_eq!(ob.depth().records, 3);
        assert_eq!(ob.depth().samples, 6);
        let r = ob.oldest().unwrap().unwrap();
        assert_eq!((r.seq, r.payload.clone()), (1, payload(1)));
        ob.ack(1).unwrap();
        drop(ob);

        let mut ob = Outbox::open(dir.path(), 1 << 20, true).unwrap();
        assert_eq!(ob.epoch(), epoch);
        assert_eq!(ob.depth().records, 2);
        assert_eq!(ob.oldest().unwrap().unwrap().seq, 2);
        assert_eq!(ob.append(&payload(4), 1).unwrap(), 4);
        ob.ack(4).unwrap();
        assert_eq!(ob.oldest().unwrap(), None);
        drop(ob);
        let ob = Outbox::open(dir.path(), 1 << 20, true).unwrap();
        assert_eq!(ob.depth().records, 0);
        assert_eq!(ob.counters(), OutboxCounters::default());
    }

    #[test]
    fn torn_tail_is_cut_and_counted() {
        let dir = tempfile::tempdir().unwrap();
        let mut ob = Outbox::open(dir.path(), 1 << 20, false).unwrap();
        ob.append(&payload(1), 1).unwrap();
        ob.append(&payload(2), 1).unwrap();
        drop(ob);
        // Simulate a crash in the middle of writing record 3.
        let seg = segment_path(dir.path(), 1);
        let len = fs::metadata(&seg).unwrap().len();
        let mut f = OpenOptions::new().append(true).open(&seg).unwrap();
        f.write_all(&MAGIC).unwrap();
        f.write_all(&[200, 0, 0, 0, 1, 2]).unwrap();
        drop(f);

        let mut ob = Outbox::open(dir.path(), 1 << 20, false).unwrap();
        assert_eq!(ob.counters().torn_records, 1);
        assert_eq!(ob.depth().records, 2);
        assert_eq!(
            fs::metadata(&seg).unwrap().len(),
            len,
            "torn tail truncated"
        );
        // Appending after recovery continues the sequence and stays readable.
        assert_eq!(ob.append(&payload(3), 1).unwrap(), 3);
        ob.ack(2).unwrap();
        assert_eq!(ob.oldest().unwrap().unwrap().payload, payload(3));
    }

    #[test]
    fn flipped_byte_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        let mut ob = Outbox::open(dir.path(), 1 << 20, false).unwrap();
        ob.append(&payload(1), 1).unwrap();
        ob.append(&payload(2), 1).unwrap();
        drop(ob);
        let seg = segment_path(dir.path(), 1);
        let mut bytes = fs::read(&seg).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        fs::write(&seg, bytes).unwrap();
        let ob = Outbox::open(dir.path(), 1 << 20, false).unwrap();
        assert_eq!(ob.counters().torn_records, 1);
        assert_eq!(ob.depth().records, 1);
    }

    #[test]
    fn full_outbox_drops_oldest_and_counts() {
        let dir = tempfile::tempdir().unwrap();
        // 512 KiB bound → 64 KiB segments; each record ~1 KiB.
        let max = 512 * 1024;
        let mut ob = Outbox::open(dir.path(), max, false).unwrap();
        let big = vec![7u8; 1000];
        for _ in 0..2000 {
            ob.append(&big, 10).unwrap();
        }
        let depth = ob.depth();
        assert!(depth.bytes <= max, "{depth:?}");
        assert!(depth.records > 300, "{depth:?}");
        let dropped = ob.counters().dropped_samples;
        assert_eq!(
            dropped + depth.samples,
            20_000,
            "every sample is either kept or counted"
        );
        // The oldest kept record is newer than the dropped ones, and reading still works.
        let oldest = ob.oldest().unwrap().unwrap();
        assert_eq!(oldest.seq, 2000 - depth.records + 1);
        drop(ob);
        let ob = Outbox::open(dir.path(), max, false).unwrap();
        assert_eq!(ob.depth().records, depth.records);
    }

    #[test]
    fn discard_counts_dropped_samples() {
        let dir = tempfile::tempdir().unwrap();
        let mut ob = Outbox::open(dir.path(), 1 << 20, false).unwrap();
        ob.append(&payload(1), 5).unwrap();
        ob.append(&payload(2), 5).unwrap();
        ob.discard(1).unwrap();
        assert_eq!(ob.counters().dropped_samples, 5);
        assert_eq!(ob.oldest().unwrap().unwrap().seq, 2);
    }

    #[test]
    fn acked_segments_are_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let mut ob = Outbox::open(dir.path(), 512 * 1024, false).unwrap();
        let big = vec![1u8; 4000];
        for _ in 0..100 {
            ob.append(&big, 1).unwrap();
        }
        let segs = || {
            fs::read_dir(dir.path())
                .unwrap()
                .filter(|e| {
                    e.as_ref()
                        .unwrap()
                        .path()
                        .extension()
                        .is_some_and(|x| x == "seg")
                })
                .count()
        };
        assert!(segs() > 3);
        ob.ack(100).unwrap();
        assert_eq!(segs(), 1);
        assert_eq!(ob.depth().records, 0);
    }
}

/// The async face of the outbox shared by the batcher (writer) and the transport (reader): runs
/// each call on the blocking pool and wakes the transport when a record is added.
#[derive(Clone)]
pub struct OutboxHandle {
    inner: std::sync::Arc<std::sync::Mutex<Outbox>>,
    added: std::sync::Arc<tokio::sync::Notify>,
}

impl OutboxHandle {
    /// Wraps an opened outbox.
    pub fn new(outbox: Outbox) -> Self {
        Self {
            inner: std::sync::Arc::new(std::sync::Mutex::new(outbox)),
            added: std::sync::Arc::new(tokio::sync::Notify::new()),
        }
    }

    async fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Outbox) -> Result<T, OutboxError> + Send + 'static,
    ) -> Result<T, OutboxError> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            // A panic while holding the lock leaves the data on disk intact; keep going.
            let mut outbox = inner
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            f(&mut outbox)
        })
        .await
        .map_err(|e| OutboxError::Task(e.to_string()))?
    }

    /// Appends a batch and wakes the transport.
    pub async fn append(&self, payload: Vec<u8>, sample_count: u32) -> Result<u64, OutboxError> {
        let seq = self.call(move |o| o.append(&payload, sample_count)).await?;
        self.added.notify_one();
        Ok(seq)
    }

    /// The oldest unacknowledged record.
    pub async fn oldest(&self) -> Result<Option<Record>, OutboxError> {
        self.call(|o| o.oldest()).await
    }

    /// Waits until a record may have been added.
    pub async fn wait_for_more(&self) {
        self.added.notified().await;
    }

    /// Acknowledges up to `seq`.
    pub async fn ack(&self, seq: u64) -> Result<(), OutboxError> {
        self.call(move |o| o.ack(seq)).await
    }

    /// Drops a record that can never be delivered, counting its samples.
    pub async fn discard(&self, seq: u64) -> Result<(), OutboxError> {
        self.call(move |o| o.discard(seq)).await
    }

    /// Epoch, depth and counters in one consistent read.
    pub async fn status(&self) -> Result<(u64, OutboxDepth, OutboxCounters), OutboxError> {
        self.call(|o| Ok((o.epoch(), o.depth(), o.counters())))
            .await
    }
}
