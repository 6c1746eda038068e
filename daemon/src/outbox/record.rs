//! The outbox's record format (part of `batcher → outbox → transport`): one checksummed record per
//! batch in a segment file, and the scan that reads a segment back — resynchronising on the next
//! valid record after a damaged stretch instead of giving up on the rest of the segment.
//!
//! Pure functions over byte slices; the outbox does the file I/O.

/// Marks the start of every record.
pub(super) const MAGIC: [u8; 4] = *b"FLR1";
/// magic + payload length + crc32 + seq + sample count.
pub(super) const HEADER_BYTES: usize = 4 + 4 + 4 + 8 + 4;

/// One record parsed from a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Parsed<'a> {
    /// Sequence number.
    pub seq: u64,
    /// Samples in the payload.
    pub count: u32,
    /// The encoded samples.
    pub payload: &'a [u8],
    /// Bytes the whole record takes.
    pub len: usize,
}

/// Encodes one record.
pub(super) fn encode(seq: u64, count: u32, payload: &[u8]) -> Vec<u8> {
    let mut record = Vec::with_capacity(HEADER_BYTES + payload.len());
    record.extend_from_slice(&MAGIC);
    record.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    record.extend_from_slice(&checksum(seq, count, payload).to_le_bytes());
    record.extend_from_slice(&seq.to_le_bytes());
    record.extend_from_slice(&count.to_le_bytes());
    record.extend_from_slice(payload);
    record
}

/// Parses one record at the start of `data`; `None` when it is damaged or incomplete.
pub(super) fn parse(data: &[u8]) -> Option<Parsed<'_>> {
    if data.len() < HEADER_BYTES || data[..4] != MAGIC {
        return None;
    }
    let word = |at: usize| u32::from_le_bytes([data[at], data[at + 1], data[at + 2], data[at + 3]]);
    let payload_len = word(4) as usize;
    let crc = word(8);
    let mut seq_bytes = [0u8; 8];
    seq_bytes.copy_from_slice(&data[12..20]);
    let seq = u64::from_le_bytes(seq_bytes);
    let count = word(20);
    let end = HEADER_BYTES.saturating_add(payload_len);
    let payload = data.get(HEADER_BYTES..end)?;
    (checksum(seq, count, payload) == crc).then_some(Parsed {
        seq,
        count,
        payload,
        len: end,
    })
}

fn checksum(seq: u64, count: u32, payload: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&seq.to_le_bytes());
    hasher.update(&count.to_le_bytes());
    hasher.update(payload);
    hasher.finalize()
}

/// What a scan of one segment found, in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Found<'a> {
    /// A valid record at `offset`.
    Record { offset: usize, record: Parsed<'a> },
    /// A damaged stretch `[offset, end)` with no valid record inside.
    Damaged { offset: usize, end: usize },
}

/// Reads every record of a segment. A damaged stretch (a torn write, a flipped byte) is reported
/// once and the scan resumes at the next offset where a valid record starts, so one bad record
/// never hides the good ones after it.
pub(super) fn scan(data: &[u8]) -> Vec<Found<'_>> {
    let mut found = Vec::new();
    let mut offset = 0;
    while offset < data.len() {
        if let Some(record) = parse(&data[offset..]) {
            found.push(Found::Record { offset, record });
            offset += record.len;
            continue;
        }
        let end = next_valid(data, offset + 1).unwrap_or(data.len());
        found.push(Found::Damaged { offset, end });
        offset = end;
    }
    found
}

/// The first offset at or after `from` where a valid record starts.
fn next_valid(data: &[u8], from: usize) -> Option<usize> {
    (from..data.len().saturating_sub(HEADER_BYTES - 1))
        .filter(|&at| data[at..at + 4] == MAGIC)
        .find(|&at| parse(&data[at..]).is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(found: &[Found<'_>]) -> Vec<u64> {
        found
            .iter()
            .filter_map(|f| match f {
                Found::Record { record, .. } => Some(record.seq),
                Found::Damaged { .. } => None,
            })
            .collect()
    }

    fn damaged(found: &[Found<'_>]) -> Vec<(usize, usize)> {
        found
            .iter()
            .filter_map(|f| match f {
                Found::Damaged { offset, end } => Some((*offset, *end)),
                Found::Record { .. } => None,
            })
            .collect()
    }

    #[test]
    fn round_trip() {
        let bytes = encode(7, 3, b"hello");
        let parsed = parse(&bytes).unwrap();
        assert_eq!(
            (parsed.seq, parsed.count, parsed.payload, parsed.len),
            (7, 3, &b"hello"[..], bytes.len())
        );
        assert_eq!(parse(&bytes[..bytes.len() - 1]), None);
    }

    #[test]
    fn scan_resynchronises_after_a_fragment() {
        // Record 1, then the first half of a record that failed mid-write, then records 2 and 3.
        let one = encode(1, 1, b"first");
        let torn = encode(99, 1, b"never finished");
        let two = encode(2, 1, b"second");
        let three = encode(3, 1, b"third");
        // (segment bytes, records read, damaged stretches)
        type Case = (Vec<u8>, Vec<u64>, Vec<(usize, usize)>);
        let cases: Vec<Case> = vec![
            // A fragment in the middle: both neighbours survive.
            (
                [&one[..], &torn[..10], &two[..], &three[..]].concat(),
                vec![1, 2, 3],
                vec![(one.len(), one.len() + 10)],
            ),
            // A flipped byte inside record 2: only record 2 is lost.
            (
                {
                    let mut v = [&one[..], &two[..], &three[..]].concat();
                    v[one.len() + HEADER_BYTES] ^= 0xff;
                    v
                },
                vec![1, 3],
                vec![(one.len(), one.len() + two.len())],
            ),
            // A torn tail.
            (
                [&one[..], &torn[..torn.len() - 1]].concat(),
                vec![1],
                vec![(one.len(), one.len() + torn.len() - 1)],
            ),
            // Garbage at the very start.
            ([&b"xxFLR1yy"[..], &two[..]].concat(), vec![2], vec![(0, 8)]),
            (Vec::new(), vec![], vec![]),
        ];
        for (data, want_records, want_damaged) in cases {
            let found = scan(&data);
            assert_eq!(records(&found), want_records);
            assert_eq!(damaged(&found), want_damaged);
        }
    }
}
