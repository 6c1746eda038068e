//! The sender's loop (`outbox → store`): posts the oldest queued body, acknowledges it once the
//! store answered 2xx, drops it (counted) on any other 4xx — the store will never take it — and
//! retries on 5xx, 429 and connection errors after a `faultline_daemon::backoff` delay, so an
//! outage delays but loses nothing. [`verdict`] is the pure decision.

use super::Metrics;
use faultline_daemon::backoff::Backoff;
use faultline_daemon::log_limit::LogLimiter;
use faultline_daemon::outbox::{OutboxHandle, Record};
use reqwest::header::{CONTENT_ENCODING, CONTENT_TYPE, HeaderMap, HeaderValue};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What to do with a body after the store's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Taken: acknowledge it.
    Delivered,
    /// Refused for good (4xx other than 429): drop it, counted with this reason.
    Rejected(&'static str),
    /// Not now (5xx, 429, no answer): try again later, counted with this reason.
    Retry(&'static str),
}

/// The verdict on a store's HTTP status (`None`: no answer, a connection error or timeout).
pub fn verdict(status: Option<u16>) -> Verdict {
    match status {
        None => Verdict::Retry("connection"),
        Some(200..=299) => Verdict::Delivered,
        Some(429) => Verdict::Retry("throttled"),
        Some(400..=499) => Verdict::Rejected("rejected"),
        Some(500..=599) => Verdict::Retry("server_error"),
        Some(_) => Verdict::Retry("unexpected_status"),
    }
}

/// Where and how to post.
pub struct Target {
    /// The store's remote-write URL.
    pub url: String,
    /// Client with the request timeout.
    pub client: reqwest::Client,
    /// Protocol and authentication headers.
    pub headers: HeaderMap,
    /// Retry delays.
    pub backoff: Backoff,
}

/// Headers of a remote-write 1.0 request, plus `authorization` when given.
pub fn headers(authorization: Option<HeaderValue>) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/x-protobuf"),
    );
    headers.insert(CONTENT_ENCODING, HeaderValue::from_static("snappy"));
    headers.insert(
        "X-Prometheus-Remote-Write-Version",
        HeaderValue::from_static("0.1.0"),
    );
    headers.insert(
        reqwest::header::USER_AGENT,
        HeaderValue::from_static(concat!("faultline-collector/", env!("CARGO_PKG_VERSION"))),
    );
    if let Some(mut value) = authorization {
        value.set_sensitive(true);
        headers.insert(reqwest::header::AUTHORIZATION, value);
    }
    headers
}

/// Sends queued bodies forever.
pub async fn run(outbox: OutboxHandle, target: Target, metrics: Arc<Metrics>) {
    let mut failures = 0u32;
    let mut warnings = LogLimiter::new(Duration::from_secs(60), 16);
    loop {
        metrics.observe(&outbox).await;
        let record = match outbox.oldest().await {
            Ok(Some(record)) => record,
            Ok(None) => {
                // Woken by an append; the timeout only bounds a missed wake-up.
                let _ = tokio::time::timeout(Duration::from_secs(1), outbox.wait_for_more()).await;
                continue;
            }
            Err(e) => {
                if let Some(held_back) = warnings.check(&"queue", Instant::now()) {
                    tracing::warn!(error = %e, held_back, "remote-write queue unreadable; retrying");
                }
                tokio::time::sleep(target.backoff.max).await;
                continue;
            }
        };
        let (status, said) = post(&target, &record).await;
        let done = match verdict(status) {
            Verdict::Delivered => {
                failures = 0;
                metrics.sent.inc_by(u64::from(record.sample_count));
                outbox.ack(record.seq).await
            }
            Verdict::Rejected(reason) => {
                failures = 0;
                metrics.failure(reason);
                if let Some(held_back) = warnings.check(&reason, Instant::now()) {
                    tracing::warn!(status, answer = %said, samples = record.sample_count, held_back,
                        "remote-write store refused a request; dropped (not retried)");
                }
                outbox.discard(record.seq).await
            }
            Verdict::Retry(reason) => {
                failures = failures.saturating_add(1);
                metrics.failure(reason);
                if let Some(held_back) = warnings.check(&reason, Instant::now()) {
                    tracing::warn!(status, answer = %said, failures, held_back,
                        "remote-write store unavailable; the queue keeps the samples and retries");
                }
                tokio::time::sleep(target.backoff.delay(failures, rand::random::<f64>())).await;
                Ok(())
            }
        };
        if let Err(e) = done {
            tracing::warn!(error = %e, seq = record.seq, "remote-write queue update failed");
        }
    }
}

/// Posts one body: the status (none when there was no answer) and what the store said (the
/// start of its body, or the connection error).
async fn post(target: &Target, record: &Record) -> (Option<u16>, String) {
    let sent = target
        .client
        .post(&target.url)
        .headers(target.headers.clone())
        .body(record.payload.clone())
        .send()
        .await;
    match sent {
        Ok(response) => {
            let status = response.status().as_u16();
            let text = response.text().await.unwrap_or_default();
            (Some(status), text.chars().take(200).collect())
        }
        Err(e) => (None, faultline_daemon::with_causes(&e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_server_trouble_is_retried() {
        let cases = [
            (Some(200), Verdict::Delivered),
            (Some(204), Verdict::Delivered),
            (Some(400), Verdict::Rejected("rejected")),
            (Some(401), Verdict::Rejected("rejected")),
            (Some(413), Verdict::Rejected("rejected")),
            (Some(429), Verdict::Retry("throttled")),
            (Some(500), Verdict::Retry("server_error")),
            (Some(503), Verdict::Retry("server_error")),
            (Some(302), Verdict::Retry("unexpected_status")),
            (None, Verdict::Retry("connection")),
        ];
        for (status, want) in cases {
            assert_eq!(verdict(status), want, "{status:?}");
        }
    }
}
