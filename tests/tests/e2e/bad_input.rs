//! Bad input gets its status code with a reason, is counted by reason, and never stops the
//! collector from serving good pushes.

use faultline_tests::*;
use faultline_wire::{AgentHealth, Batch, Sample, SampleKind, codec, now_ms};
use tokio::io::AsyncWriteExt;

const EXTRA: &str = "[ingest]\nmax_body_bytes = 1048576\nmax_decoded_bytes = 4194304\nmax_concurrent_pushes = 1\n\n[series]\nstale_after = \"5s\"\n";

fn batch(seq: u64, samples: Vec<Sample>) -> Batch {
    Batch {
        agent: "a1".into(),
        epoch: 42,
        seq,
        health: AgentHealth::default(),
        samples,
        help: Default::default(),
    }
}

fn sample(metric: &str, ts_ms: i64) -> Sample {
    Sample {
        metric: metric.into(),
        target: "dev-1".into(),
        labels: [("site".to_string(), "s".to_string())].into(),
        value: 21.5,
        ts_ms,
        kind: SampleKind::Gauge,
    }
}

struct Client {
    http: reqwest::Client,
    url: String,
}

impl Client {
    async fn post(&self, token: Option<&str>, encoding: &str, body: Vec<u8>) -> (u16, String) {
        let mut req = self
            .http
            .post(format!("{}{}", self.url, faultline_wire::PUSH_PATH))
            .header("Content-Encoding", encoding)
            .body(body);
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        let resp = req.send().await.expect("request failed");
        let status = resp.status().as_u16();
        (status, resp.text().await.unwrap_or_default())
    }

    async fn push(&self, body: Vec<u8>) -> (u16, String) {
        self.post(Some(TOKEN), "zstd", body).await
    }
}

/// Raw JSON of a one-sample batch whose sample has `sample_json` spliced in.
fn raw_batch(sample_json: &str) -> Vec<u8> {
    let json = format!(
        r#"{{"agent":"a1","epoch":42,"seq":9,"health":{{"outbox_bytes":0,"outbox_batches":0,"dropped_samples":0,"torn_records":0,"poll_errors":0}},"samples":[{sample_json}]}}"#
    );
    // Re-encoding the parsed JSON keeps the bad values (null, "NaN", extra fields) as they are.
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    codec::encode(&value)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_and_the_collector_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let collector = CollectorProcess::start(dir.path(), free_port(), EXTRA)
        .await
        .unwrap();
    let client = Client {
        http: reqwest::Client::new(),
        url: collector.url.clone(),
    };
    let now = now_ms();
    let good = codec::encode(&batch(
        1,
        vec![sample("faultline_test_temperature_celsius", now)],
    ));

    let mut many_labels = sample("m", now);
    for i in 0..1000 {
        many_labels.labels.insert(format!("l{i}"), "v".into());
    }
    let mut long_value = sample("m", now);
    long_value
        .labels
        .insert("alias".into(), "x".repeat(100_000));
    let mut other_agent = batch(3, vec![sample("m", now)]);
    other_agent.agent = "someone-else".into();
    let truncated = good[..good.len() / 2].to_vec();
    let bomb = codec::encode(&" ".repeat(16 * 1024 * 1024));
    assert!(bomb.len() < 1024 * 1024, "bomb must pass the body limit");
    let oversized: Vec<u8> = (0..2 * 1024 * 1024u64)
        .map(|i| (i * 7919 % 251) as u8)
        .collect();

    // (case, token, Content-Encoding, body, expected status, text the reason must contain)
    type Case<'a> = (&'a str, Option<&'a str>, &'a str, Vec<u8>, u16, &'a str);
    let cases: Vec<Case> = vec![
        ("no token", None, "zstd", good.clone(), 401, "unauthorized"),
        (
            "wrong token",
            Some("not-the-token-at-all"),
            "zstd",
            good.clone(),
            401,
            "unauthorized",
        ),
        (
            "garbage body",
            Some(TOKEN),
            "zstd",
            b"\x00garbage\xff".to_vec(),
            400,
            "zstd",
        ),
        (
            "wrong encoding",
            Some(TOKEN),
            "gzip",
            good.clone(),
            400,
            "Content-Encoding",
        ),
        (
            "truncated zstd",
            Some(TOKEN),
            "zstd",
            truncated,
            400,
            "malformed",
        ),
        (
            "NaN as null",
            Some(TOKEN),
            "zstd",
            raw_batch(r#"{"metric":"m","target":"t","value":null,"ts_ms":1,"kind":"gauge"}"#),
            400,
            "samples[0].value",
        ),
        (
            "NaN as string",
            Some(TOKEN),
            "zstd",
            raw_batch(r#"{"metric":"m","target":"t","value":"NaN","ts_ms":1,"kind":"gauge"}"#),
            400,
            "samples[0].value",
        ),
        (
            "unknown field",
            Some(TOKEN),
            "zstd",
            raw_batch(r#"{"metric":"m","target":"t","value":1,"ts_ms":1,"kind":"gauge","x":1}"#),
            400,
            "samples[0]",
        ),
        (
            "another agent's batch",
            Some(TOKEN),
            "zstd",
            codec::encode(&other_agent),
            400,
            "agent",
        ),
        (
            "oversized body",
            Some(TOKEN),
            "zstd",
            oversized,
            413,
            "too_large",
        ),
        (
            "decompression bomb",
            Some(TOKEN),
            "zstd",
            bomb,
            413,
            "too_large",
        ),
    ];
    for (name, token, encoding, body, want, reason) in cases {
        let (status, text) = client.post(token, encoding, body).await;
        assert_eq!(status, want, "{name}: {text}");
        assert!(
            text.contains(reason),
            "{name}: reason `{reason}` not in `{text}`"
        );
    }

    // A body streamed without Content-Length is cut off at the limit too.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        (0..40).map(|_| Ok(vec![1u8; 64 * 1024])).collect();
    let stream = futures_stream(chunks);
    let resp = client
        .http
        .post(format!("{}{}", client.url, faultline_wire::PUSH_PATH))
        .bearer_auth(TOKEN)
        .header("Content-Encoding", "zstd")
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .expect("the collector answers an oversized chunked body with a status");
    assert_eq!(resp.status().as_u16(), 413, "chunked oversized body");

    // Overload: one push slot, held by a request whose body never finishes → the next gets 429.
    // The slow request may itself be refused when a push holds the slot as it arrives: then it
    // is answered at once and sent again.
    let head = format!(
        "POST {} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\nContent-Encoding: zstd\r\nContent-Length: 1000\r\n\r\nabc",
        faultline_wire::PUSH_PATH
    );
    let mut slow: Option<tokio::net::TcpStream> = None;
    let mut got_429 = false;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !got_429 && std::time::Instant::now() < deadline {
        let mut answered = [0u8; 64];
        let refused = slow
            .as_ref()
            .is_some_and(|s| s.try_read(&mut answered).is_ok());
        if slow.is_none() || refused {
            let mut stream =
                tokio::net::TcpStream::connect(collector.url.trim_start_matches("http://"))
                    .await
                    .unwrap();
            stream.write_all(head.as_bytes()).await.unwrap();
            slow = Some(stream);
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        got_429 = client.push(good.clone()).await.0 == 429;
    }
    assert!(got_429, "no 429 while the only push slot was busy");
    drop(slow);

    // Still serving: the good batch is applied once, a replay is acknowledged as a duplicate.
    let ok = wait_until(std::time::Duration::from_secs(5), || async {
        client.push(good.clone()).await.0 == 200
    })
    .await;
    assert!(ok, "good push not accepted after bad input");
    let (status, text) = client.push(good.clone()).await;
    assert_eq!(status, 200);
    assert!(text.contains("\"duplicate\":true"), "{text}");

    // A sample older than stale_after is accepted but not exported; a fresh one is.
    let old = codec::encode(&batch(
        6,
        vec![sample("faultline_test_old_celsius", now - 60_000)],
    ));
    assert_eq!(client.push(old).await.0, 200);
    // Over a label limit: the sample is refused alone and listed; the batch is acknowledged.
    let mut fine = sample("faultline_test_fine_celsius", now);
    fine.target = "dev-2".into();
    let labels = codec::encode(&batch(7, vec![many_labels, long_value, fine]));
    let (status, text) = client.push(labels).await;
    assert_eq!(status, 200, "{text}");
    let ack: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(ack["applied"], 1, "{text}");
    assert_eq!(
        ack["rejected"],
        serde_json::json!([
            {"index": 0, "reason": "too_many_labels"},
            {"index": 1, "reason": "label_too_long"}
        ]),
        "{text}"
    );

    let text = collector.scrape().await;
    assert!(
        metric_value(
            &text,
            "faultline_test_temperature_celsius",
            &[("target", "dev-1")]
        ) == Some(21.5),
        "{text}"
    );
    assert_eq!(
        metric_value(&text, "faultline_test_fine_celsius", &[("target", "dev-2")]),
        Some(21.5),
        "{text}"
    );
    for reason in ["too_many_labels", "label_too_long"] {
        assert_eq!(
            metric_value(
                &text,
                "faultline_collector_rejected_samples_total",
                &[("agent", "a1"), ("reason", reason)]
            ),
            Some(1.0),
            "{reason}: {text}"
        );
    }
    assert!(
        !text.contains("faultline_test_old_celsius"),
        "stale series exported"
    );
    for reason in [
        "unauthorized",
        "malformed",
        "invalid",
        "too_large",
        "overloaded",
    ] {
        let n = metric_value(
            &text,
            "faultline_collector_rejected_pushes_total",
            &[("reason", reason)],
        );
        assert!(
            n.is_some_and(|n| n >= 1.0),
            "reason {reason} not counted:\n{text}"
        );
    }
    assert_eq!(
        get_text(&format!("{}/healthz", collector.url)).await,
        "ok\n"
    );
    assert!(
        !collector.daemon.log().contains(TOKEN),
        "token leaked into the collector log"
    );
}

fn futures_stream(
    chunks: Vec<Result<Vec<u8>, std::io::Error>>,
) -> impl futures_core::Stream<Item = Result<Vec<u8>, std::io::Error>> + Send + 'static {
    Chunks(chunks.into_iter())
}

struct Chunks(std::vec::IntoIter<Result<Vec<u8>, std::io::Error>>);

impl futures_core::Stream for Chunks {
    type Item = Result<Vec<u8>, std::io::Error>;
    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        std::task::Poll::Ready(self.0.next())
    }
}
