//! Encoding of wire payloads: JSON compressed with zstd.
//!
//! The agent encodes a [`Batch`](crate::Batch) (and its outbox records) with [`encode`]; the
//! collector decodes untrusted request bodies with [`decode`], which bounds the decompressed size so
//! a small body cannot expand without limit, and names the offending field when the JSON is wrong.

use serde::Serialize;
use serde::de::DeserializeOwned;
use std::io::Read;
use thiserror::Error;

/// zstd level used for every payload: fast, and still ~10x on repetitive metric JSON.
const ZSTD_LEVEL: i32 = 3;

/// Why a payload could not be decoded. Each variant maps to one HTTP status at the collector.
#[derive(Debug, Error)]
pub enum DecodeError {
    /// The compressed stream is corrupt or truncated.
    #[error("body is not a valid zstd stream: {0}")]
    Compression(String),
    /// The decompressed payload exceeds the allowed size.
    #[error("decompressed body exceeds {limit} bytes")]
    TooLarge {
        /// The limit that was exceeded, in bytes.
        limit: usize,
    },
    /// The JSON is malformed or does not match the schema.
    #[error("invalid JSON at line {line} column {column}, field `{path}`: {message}")]
    Json {
        /// Dotted path of the field being read when the error occurred (`samples[3].value`).
        path: String,
        /// 1-based line in the decompressed JSON.
        line: usize,
        /// 1-based column in the decompressed JSON.
        column: usize,
        /// What serde_json said.
        message: String,
    },
}

/// Serializes `value` to JSON and compresses it.
pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    // Serializing our own plain data types to a Vec cannot fail; an empty payload would then be
    // rejected by the decoder rather than silently accepted.
    let json = serde_json::to_vec(value).unwrap_or_default();
    zstd::bulk::compress(&json, ZSTD_LEVEL).unwrap_or_default()
}

/// Decompresses at most `max_decoded` bytes of `body` and parses it as `T`.
pub fn decode<T: DeserializeOwned>(body: &[u8], max_decoded: usize) -> Result<T, DecodeError> {
    let json = decompress(body, max_decoded)?;
    parse_json(&json)
}

/// Decompresses `body`, failing once the output would pass `max_decoded` bytes.
///
/// The stream is read straight from `body` (no intermediate input buffer), and the output is
/// sized once from the frame's declared content size when it has one. That size is only a
/// capacity hint, bounded by the body size and `max_decoded`: the limit is enforced on the bytes
/// actually produced.
pub fn decompress(body: &[u8], max_decoded: usize) -> Result<Vec<u8>, DecodeError> {
    let decoder = zstd::stream::read::Decoder::with_buffer(body)
        .map_err(|e| DecodeError::Compression(e.to_string()))?;
    let mut out = Vec::with_capacity(capacity_hint(body, max_decoded));
    let limit = u64::try_from(max_decoded)
        .unwrap_or(u64::MAX)
        .saturating_add(1);
    decoder
        .take(limit)
        .read_to_end(&mut out)
        .map_err(|e| DecodeError::Compression(e.to_string()))?;
    if out.len() > max_decoded {
        return Err(DecodeError::TooLarge { limit: max_decoded });
    }
    Ok(out)
}

/// How much output to reserve for `body`: the first frame's declared content size (plus one byte,
/// so `read_to_end` can see the end without growing), or 8x the body when the frame does not
/// declare it. A declared size is untrusted, so it is capped at 128x the body and, like the
/// fallback, at `max_decoded + 1`.
fn capacity_hint(body: &[u8], max_decoded: usize) -> usize {
    let declared = match zstd::zstd_safe::get_frame_content_size(body) {
        Ok(Some(size)) => usize::try_from(size).ok(),
        _ => None,
    };
    match declared {
        Some(size) => size.saturating_add(1).min(body.len().saturating_mul(128)),
        None => body.len().saturating_mul(8),
    }
    .min(max_decoded.saturating_add(1))
}

/// Parses JSON as `T`, reporting the path of the field that failed. The fast path parses
/// without tracking paths; only a body that fails is parsed again to name the field.
pub fn parse_json<T: DeserializeOwned>(json: &[u8]) -> Result<T, DecodeError> {
    match serde_json::from_slice(json) {
        Ok(value) => Ok(value),
        Err(plain) => Err(locate_json_error::<T>(json, plain)),
    }
}

/// Re-parses a body that failed, tracking the path, to say which field was wrong.
fn locate_json_error<T: DeserializeOwned>(json: &[u8], plain: serde_json::Error) -> DecodeError {
    let mut de = serde_json::Deserializer::from_slice(json);
    let tracked: Result<T, _> = serde_path_to_error::deserialize(&mut de);
    match tracked {
        Err(e) => {
            let path = e.path().to_string();
            let inner = e.into_inner();
            DecodeError::Json {
                path,
                line: inner.line(),
                column: inner.column(),
                message: inner.to_string(),
            }
        }
        // The value parsed; what failed was after it (trailing characters).
        Ok(_) => DecodeError::Json {
            path: ".".into(),
            line: plain.line(),
            column: plain.column(),
            message: plain.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AgentHealth, Batch, Sample, SampleKind};

    fn batch() -> Batch {
        Batch {
            agent: "a1".into(),
            epoch: 7,
            seq: 3,
            health: AgentHealth {
                version: "0.1.0".into(),
                process: Some(crate::ProcessStats {
                    cpu_ms: 1200,
                    resident_bytes: 1 << 20,
                    ..Default::default()
                }),
                ..AgentHealth::default()
            },
            samples: vec![Sample {
                metric: "m".into(),
                target: "t".into(),
                labels: [("site".to_string(), "bj".to_string())].into(),
                value: 1.5,
                ts_ms: 1_700_000_000_000,
                kind: SampleKind::Gauge,
            }],
            help: [("m".to_string(), "A test gauge.".to_string())].into(),
        }
    }

    #[test]
    fn a_batch_from_an_older_agent_decodes() {
        // No `help`, no `version` or `process` in its health: what agents sent before them.
        let json = r#"{"agent":"a1","epoch":1,"seq":1,"health":{"outbox_bytes":0,"outbox_batches":0,"dropped_samples":0,"torn_records":0,"poll_errors":0},"samples":[]}"#;
        let batch: Batch = serde_json::from_str(json).unwrap();
        assert!(batch.help.is_empty() && batch.health.process.is_none());
    }

    #[test]
    fn round_trip() {
        let b = batch();
        let bytes = encode(&b);
        let back: Batch = decode(&bytes, 1 << 20).unwrap();
        assert_eq!(back, b);
    }

    #[test]
    fn truncated_stream_is_a_compression_error() {
        let bytes = encode(&batch());
        let err = decode::<Batch>(&bytes[..bytes.len() / 2], 1 << 20).unwrap_err();
        assert!(matches!(err, DecodeError::Compression(_)), "{err}");
    }

    #[test]
    fn expansion_is_bounded() {
        let big = vec![b' '; 1 << 20];
        let bytes = zstd::bulk::compress(&big, 3).unwrap();
        assert!(bytes.len() < 1024);
        let err = decompress(&bytes, 64 * 1024).unwrap_err();
        assert!(
            matches!(err, DecodeError::TooLarge { limit: 65536 }),
            "{err}"
        );
    }

    #[test]
    fn frames_without_a_declared_size_decode() {
        let json = serde_json::to_vec(&batch()).unwrap();
        let mut encoder = zstd::stream::write::Encoder::new(Vec::new(), 3).unwrap();
        encoder.include_contentsize(false).unwrap();
        std::io::Write::write_all(&mut encoder, &json).unwrap();
        let bytes = encoder.finish().unwrap();
        assert_eq!(
            zstd::zstd_safe::get_frame_content_size(&bytes).unwrap(),
            None
        );
        assert_eq!(decompress(&bytes, 1 << 20).unwrap(), json);
    }

    #[test]
    fn capacity_hint_is_bounded() {
        let bytes = encode(&batch());
        let declared = serde_json::to_vec(&batch()).unwrap().len();
        assert_eq!(capacity_hint(&bytes, 1 << 20), declared + 1);
        assert_eq!(capacity_hint(&bytes, 10), 11);
        assert_eq!(capacity_hint(b"not zstd", 1 << 20), 64);
    }

    #[test]
    fn json_errors_name_the_field() {
        let json = br#"{"agent":"a","epoch":1,"seq":1,"health":{"outbox_bytes":0,"outbox_batches":0,"dropped_samples":0,"torn_records":0,"poll_errors":0},"samples":[{"metric":"m","target":"t","value":null,"ts_ms":1,"kind":"gauge"}]}"#;
        let err = parse_json::<Batch>(json).unwrap_err();
        match err {
            DecodeError::Json { path, .. } => assert_eq!(path, "samples[0].value"),
            other => panic!("unexpected {other}"),
        }
    }

    #[test]
    fn trailing_garbage_is_rejected() {
        let mut json = serde_json::to_vec(&batch()).unwrap();
        json.extend_from_slice(b" xx");
        assert!(parse_json::<Batch>(&json).is_err());
    }
}
