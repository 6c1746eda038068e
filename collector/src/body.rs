//! Reading a request body under a size limit: a leaf shared by the push endpoint ([`crate::http`]),
//! the ticket API ([`crate::api`]) and the console, so none of them imports another for it.

use crate::telemetry::Rejection;
use axum::body::Body;
use bytes::Bytes;
use http_body_util::BodyExt;

/// How far past the body limit a body is still read (and discarded) to deliver the 413 cleanly.
const DRAIN_FACTOR: usize = 8;

/// Reads a body of at most `limit` bytes. A larger body is read on (not kept) up to
/// [`DRAIN_FACTOR`] × `limit`, so that the client, still sending, receives the 413 rather than a
/// reset connection; past that the connection is dropped.
pub async fn read_body(mut body: Body, limit: usize) -> Result<Bytes, Rejection> {
    let mut kept = Vec::new();
    let mut seen = 0usize;
    let too_large = || Rejection::TooLarge(format!("body exceeds {limit} bytes"));
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| Rejection::Malformed(format!("reading body: {e}")))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        seen = seen.saturating_add(data.len());
        if seen <= limit {
            kept.extend_from_slice(&data);
        } else if seen > limit.saturating_mul(DRAIN_FACTOR) {
            return Err(too_large());
        }
    }
    if seen > limit {
        return Err(too_large());
    }
    Ok(Bytes::from(kept))
}
