//! The outbox's table and scenario tests, including a small simulated disk that fills and frees.

use super::*;
use std::fs::OpenOptions;
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

fn payload(i: u64) -> Vec<u8> {
    format!("payload-{i}-{}", "x".repeat(100)).into_bytes()
}

fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "seg"))
        .collect();
    files.sort();
    files
}

/// A disk of `capacity` bytes shared by the segment files of one directory: a write that does
/// not fit writes what fits, then fails with "no space left", like a real full filesystem.
#[derive(Debug, Clone)]
struct SmallDisk {
    dir: PathBuf,
    capacity: Arc<AtomicU64>,
}

impl SmallDisk {
    fn new(dir: &Path, capacity: u64) -> Self {
        Self {
            dir: dir.to_path_buf(),
            capacity: Arc::new(AtomicU64::new(capacity)),
        }
    }

    fn free(&self) -> u64 {
        let used: u64 = segment_files(&self.dir)
            .iter()
            .map(|p| fs::metadata(p).map_or(0, |m| m.len()))
            .sum();
        self.capacity.load(Ordering::SeqCst).saturating_sub(used)
    }

    fn open(&self, max_bytes: u64) -> Outbox {
        Outbox::open_on(&self.dir, max_bytes, false, Box::new(self.clone())).unwrap()
    }
}

#[derive(Debug)]
struct SmallDiskFile {
    file: File,
    disk: SmallDisk,
}

impl SegmentStore for SmallDisk {
    fn open_append(&self, path: &Path) -> std::io::Result<Box<dyn SegmentWriter>> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(Box::new(SmallDiskFile {
            file,
            disk: self.clone(),
        }))
    }
}

impl SegmentWriter for SmallDiskFile {
    fn append(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        let fits = (self.disk.free() as usize).min(bytes.len());
        self.file.write_all(&bytes[..fits])?;
        if fits < bytes.len() {
            return Err(std::io::ErrorKind::StorageFull.into());
        }
        Ok(())
    }

    fn sync(&mut self) -> std::io::Result<()> {
        Ok(())
    }

    fn truncate(&mut self, len: u64) -> std::io::Result<()> {
        self.file.set_len(len)
    }

    fn len(&self) -> std::io::Result<u64> {
        Ok(self.file.metadata()?.len())
    }
}

#[test]
fn append_read_ack_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let mut ob = Outbox::open(dir.path(), 1 << 20, true).unwrap();
    let epoch = ob.epoch();
    for i in 1..=3 {
        assert_eq!(ob.append(&payload(i), 2).unwrap(), Some(i));
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
    assert_eq!(ob.append(&payload(4), 1).unwrap(), Some(4));
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
    f.write_all(&record::MAGIC).unwrap();
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
    assert_eq!(ob.append(&payload(3), 1).unwrap(), Some(3));
    ob.ack(2).unwrap();
    assert_eq!(ob.oldest().unwrap().unwrap().payload, payload(3));
}

#[test]
fn reopen_resynchronises_on_the_record_after_a_fragment() {
    // What older versions left behind on a full disk: a fragment, then good records after it.
    let dir = tempfile::tempdir().unwrap();
    let mut ob = Outbox::open(dir.path(), 1 << 20, false).unwrap();
    ob.append(&payload(1), 1).unwrap();
    ob.append(&payload(2), 2).unwrap();
    drop(ob);
    let seg = segment_path(dir.path(), 1);
    let mut f = OpenOptions::new().append(true).open(&seg).unwrap();
    f.write_all(&record::encode(3, 3, &payload(3))[..30])
        .unwrap();
    f.write_all(&record::encode(4, 4, &payload(4))).unwrap();
    f.write_all(&record::encode(5, 5, &payload(5))).unwrap();
    drop(f);

    let mut ob = Outbox::open(dir.path(), 1 << 20, false).unwrap();
    assert_eq!(ob.counters().torn_records, 1);
    let mut seen = Vec::new();
    while let Some(r) = ob.oldest().unwrap() {
        assert_eq!(r.payload, payload(r.seq));
        seen.push(r.seq);
        ob.ack(r.seq).unwrap();
    }
    assert_eq!(seen, [1, 2, 4, 5]);
    assert_eq!(ob.append(&payload(6), 1).unwrap(), Some(6));
}

#[test]
fn flipped_byte_costs_only_its_record() {
    let dir = tempfile::tempdir().unwrap();
    let mut ob = Outbox::open(dir.path(), 1 << 20, false).unwrap();
    for i in 1..=3 {
        ob.append(&payload(i), 1).unwrap();
    }
    drop(ob);
    let seg = segment_path(dir.path(), 1);
    let mut bytes = fs::read(&seg).unwrap();
    let record_len = bytes.len() / 3;
    bytes[record_len + record::HEADER_BYTES + 5] ^= 0xff;
    fs::write(&seg, bytes).unwrap();
    let mut ob = Outbox::open(dir.path(), 1 << 20, false).unwrap();
    assert_eq!(ob.counters().torn_records, 1);
    assert_eq!(ob.depth().records, 2);
    assert_eq!(ob.oldest().unwrap().unwrap().seq, 1);
    ob.ack(1).unwrap();
    assert_eq!(ob.oldest().unwrap().unwrap().seq, 3);
}

#[test]
fn record_corrupted_while_running_is_skipped_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let mut ob = Outbox::open(dir.path(), 1 << 20, false).unwrap();
    ob.append(&payload(1), 7).unwrap();
    ob.append(&payload(2), 1).unwrap();
    let seg = segment_path(dir.path(), 1);
    let mut bytes = fs::read(&seg).unwrap();
    bytes[record::HEADER_BYTES + 3] ^= 0xff;
    fs::write(&seg, bytes).unwrap();
    assert_eq!(ob.oldest().unwrap().unwrap().seq, 2);
    assert_eq!(
        ob.counters(),
        OutboxCounters {
            dropped_samples: 7,
            torn_records: 1
        }
    );
    drop(ob);
    let ob = Outbox::open(dir.path(), 1 << 20, false).unwrap();
    assert_eq!(ob.depth().records, 1, "the skip was persisted");
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
    assert!(segment_files(dir.path()).len() > 3);
    ob.ack(100).unwrap();
    assert_eq!(segment_files(dir.path()).len(), 1);
    assert_eq!(ob.depth().records, 0);
}

#[test]
fn failed_append_is_cut_back_and_the_oldest_segment_makes_room() {
    let dir = tempfile::tempdir().unwrap();
    // 64 KiB segments, ~1 KiB records; the disk holds about 100 records.
    // Not a multiple of the record size: the failing write leaves a fragment to cut back.
    let disk = SmallDisk::new(dir.path(), 100 * 1024 + 500);
    let mut ob = disk.open(512 * 1024);
    let big = vec![3u8; 1000];
    let mut seqs = Vec::new();
    for _ in 0..150 {
        seqs.push(ob.append(&big, 2).unwrap());
    }
    // Every append got a sequence number: the disk-full ones by dropping the first segment.
    assert_eq!(seqs, (1..=150).map(Some).collect::<Vec<_>>());
    let depth = ob.depth();
    let first_kept = ob.oldest().unwrap().unwrap().seq;
    assert!(first_kept > 1, "the oldest segment went first");
    assert_eq!(depth.records, 150 - (first_kept - 1), "{depth:?}");
    assert_eq!(ob.counters().dropped_samples, 2 * (first_kept - 1));
    // No fragment was left behind: every segment is whole records only.
    let on_disk: u64 = segment_files(dir.path())
        .iter()
        .map(|p| fs::metadata(p).unwrap().len())
        .sum();
    assert_eq!(on_disk, depth.bytes);
    assert_eq!(on_disk % (record::HEADER_BYTES as u64 + 1000), 0);
    let dropped = ob.counters().dropped_samples;
    drop(ob);
    let mut ob = disk.open(512 * 1024);
    assert_eq!(
        ob.counters(),
        OutboxCounters {
            dropped_samples: dropped,
            torn_records: 0
        },
        "nothing torn; the drop count survives the restart"
    );
    let mut seen = first_kept;
    while let Some(r) = ob.oldest().unwrap() {
        assert_eq!(r.seq, seen);
        ob.ack(r.seq).unwrap();
        seen += 1;
    }
    assert_eq!(seen, 151);
}

#[test]
fn acknowledging_on_a_full_disk_frees_room_for_new_batches() {
    let dir = tempfile::tempdir().unwrap();
    let disk = SmallDisk::new(dir.path(), 200 * 1024);
    let mut ob = disk.open(512 * 1024);
    let big = vec![5u8; 1000];
    while disk.free() >= big.len() as u64 + record::HEADER_BYTES as u64 {
        ob.append(&big, 1).unwrap();
    }
    let before = ob.counters();
    // The collector is back and applies the backlog: the disk is still full.
    let last = ob.depth().records;
    ob.ack(last).unwrap();
    assert!(disk.free() > 100 * 1024, "acknowledged segments deleted");
    assert_eq!(ob.append(&big, 1).unwrap(), Some(last + 1));
    assert_eq!(ob.counters(), before, "nothing dropped");
}

#[test]
fn a_batch_dropped_for_space_while_being_sent_is_counted_only_if_not_applied() {
    for applied in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let disk = SmallDisk::new(dir.path(), 1 << 20);
        let mut ob = disk.open(1 << 20);
        ob.append(&payload(1), 4).unwrap();
        ob.append(&payload(2), 6).unwrap();
        // The transport takes record 1; meanwhile the disk is full and the batcher appends.
        assert_eq!(ob.oldest().unwrap().unwrap().seq, 1);
        disk.capacity.store(0, Ordering::SeqCst);
        assert_eq!(ob.append(&payload(3), 1).unwrap(), None);
        assert_eq!(ob.counters().dropped_samples, 4 + 6 + 1);
        if applied {
            ob.ack(1).unwrap();
            assert_eq!(
                ob.counters().dropped_samples,
                6 + 1,
                "record 1 was delivered"
            );
        } else {
            ob.discard(1).unwrap();
            assert_eq!(
                ob.counters().dropped_samples,
                4 + 6 + 1,
                "rejected: stays counted"
            );
        }
        ob.ack(5).unwrap();
        assert_eq!(ob.counters().dropped_samples, if applied { 7 } else { 11 });
    }
}

#[test]
fn nothing_to_drop_on_a_full_disk_drops_the_new_batch_counted() {
    let dir = tempfile::tempdir().unwrap();
    let disk = SmallDisk::new(dir.path(), 0);
    let mut ob = disk.open(1 << 20);
    assert_eq!(ob.append(&payload(1), 9).unwrap(), None);
    assert_eq!(ob.counters().dropped_samples, 9);
    disk.capacity.store(1 << 20, Ordering::SeqCst);
    assert_eq!(ob.append(&payload(2), 1).unwrap(), Some(1));
    assert_eq!(ob.oldest().unwrap().unwrap().payload, payload(2));
}

/// Filling and freeing the disk in every order, with deliveries in between: each appended sample
/// is delivered once, still queued, or counted as dropped; what is dropped is always the oldest.
#[test]
fn every_sample_is_delivered_queued_or_counted_while_the_disk_fills_and_frees() {
    for seed in 1..=40u64 {
        let dir = tempfile::tempdir().unwrap();
        let disk = SmallDisk::new(dir.path(), 300 * 1024);
        let mut ob = disk.open(1 << 20);
        let mut state = seed;
        let mut next = move |n: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % n
        };
        let (mut appended, mut delivered) = (0u64, 0u64);
        let mut last_seq = 0;
        for step in 0..600 {
            match next(10) {
                0 => disk.capacity.store(next(400) * 1024, Ordering::SeqCst),
                1..=2 => {
                    // The collector applies up to a few batches.
                    for _ in 0..next(20) {
                        let Some(r) = ob.oldest().unwrap() else { break };
                        delivered += u64::from(r.sample_count);
                        ob.ack(r.seq).unwrap();
                    }
                }
                _ => {
                    let samples = 1 + next(50) as u32;
                    let body = vec![step as u8; 200 + next(3000) as usize];
                    appended += u64::from(samples);
                    if let Some(seq) = ob.append(&body, samples).unwrap() {
                        assert_eq!(seq, last_seq + 1, "seed {seed}");
                        last_seq = seq;
                        // Oldest first: whatever is queued is the newest run of batches.
                        let depth = ob.depth();
                        let oldest = ob.oldest().unwrap().map_or(seq, |r| r.seq);
                        assert_eq!(oldest + depth.records - 1, seq, "seed {seed}");
                    }
                }
            }
            let queued = ob.depth().samples;
            assert_eq!(
                delivered + queued + ob.counters().dropped_samples,
                appended,
                "seed {seed} step {step}"
            );
            assert_eq!(ob.counters().torn_records, 0, "seed {seed}");
        }
        // A restart finds exactly what was queued, undamaged.
        let queued = ob.depth();
        let counters = ob.counters();
        drop(ob);
        let ob = disk.open(1 << 20);
        assert_eq!(ob.depth().records, queued.records, "seed {seed}");
        assert_eq!(
            ob.counters(),
            counters,
            "seed {seed}: the drop count survives"
        );
    }
}
