//! Acknowledge from the page, through the real collector: with `[api] ack_link_key_file` set, the
//! page for a new ticket reaches the receiver (a webhook and an SMS gateway) with a signed
//! `ack_url`; opening it acknowledges the ticket as the paged on-call engineer. A tampered link,
//! an expired one and one signed with another key are refused with 403; a second use of a good
//! link finds the ticket acknowledged already (409).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use faultline_tests::incidents::*;
use faultline_tests::receivers::Receiver;
use faultline_tests::*;
use faultline_wire::now_ms;
use hmac::{Hmac, Mac};
use sha2::Sha256;

const KEY: &str = "demo-ack-link-key-0123456789abcdef";

/// A token in the collector's format, signed with `key` (the test's own HMAC, as a provider's
/// integration would check it).
fn token(key: &str, ticket: u64, expires_ms: i64, person: &str) -> String {
    let payload = format!(
        "v1.{ticket}.{expires_ms}.{}",
        URL_SAFE_NO_PAD.encode(person)
    );
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(payload.as_bytes());
    let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    format!("{payload}.{signature}")
}

async fn get(url: &str) -> (u16, serde_json::Value) {
    let response = reqwest::get(url).await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_link_acknowledges_the_ticket_and_a_bad_one_is_refused() {
    let receiver = Receiver::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("ack.key");
    std::fs::write(&key_file, format!("{KEY}\n")).unwrap();
    let port = free_port();
    let public = format!("http://127.0.0.1:{port}");
    let tail = format!(
        r#"[incidents.escalation]
default = "ops"

[api]
ack_link_key_file = "{key}"
public_url = "{public}"
ack_link_ttl = "1h"

[notify.retry]
initial = "300ms"
max = "1s"
timeout = "2s"
poll_interval = "200ms"

[[notify.channels]]
name = "hook"
kinds = ["trigger"]
[notify.channels.webhook]
url = "{hook}"

[[notify.channels]]
name = "sms"
[notify.channels.sms]
url = "{sms}"
"#,
        key = key_file.display(),
        hook = receiver.url("/hook"),
        sms = receiver.url("/sms"),
    );
    let setup = IncidentSetup {
        oncall: ONCALL,
        tail: &tail,
        ..IncidentSetup::default()
    };
    let collector = setup.start(dir.path(), port).await.unwrap();

    // edge1 stops answering: one ticket, paged to Ana with an acknowledge link.
    let t0 = now_ms() - 90 * S;
    let samples = (0..4).map(|i| up("edge1", 0.0, t0 + i * 30 * S)).collect();
    push(&collector, 1, samples).await;
    receiver
        .wait("the page", |r| {
            r.accepted("/hook").len() == 1 && !r.accepted("/sms").is_empty()
        })
        .await;
    let page = receiver.accepted("/hook")[0].json();
    let ticket = page["notification"]["ticket_id"].as_u64().unwrap();
    let ack_url = page["notification"]["ack_url"]
        .as_str()
        .unwrap_or_else(|| panic!("no ack_url in the page: {page:#}"))
        .to_string();
    assert!(
        ack_url.starts_with(&format!("{public}/api/v1/ack/v1.{ticket}.")),
        "{ack_url}"
    );
    let sms = receiver.accepted("/sms")[0].json();
    assert_eq!(sms["to"], serde_json::json!(["+8613800000001"]), "{sms:#}");
    assert!(
        sms["message"]
            .as_str()
            .unwrap_or_default()
            .ends_with(&ack_url),
        "the SMS carries the link: {sms:#}"
    );

    // Bad links: tampered (another ticket under the same signature), expired, another key.
    let good = ack_url.rsplit('/').next().unwrap().to_string();
    let tampered = good.replacen(&format!("v1.{ticket}."), &format!("v1.{}.", ticket + 1), 1);
    let expired = token(KEY, ticket, now_ms() - 1000, "Ana Berg");
    let foreign = token(
        "another-key-another-key-another-key",
        ticket,
        now_ms() + 60_000,
        "Ana Berg",
    );
    for (what, token) in [
        ("tampered", tampered),
        ("expired", expired),
        ("foreign", foreign),
    ] {
        let (status, body) = get(&format!("{public}/api/v1/ack/{token}")).await;
        assert_eq!(status, 403, "{what}: {body}");
    }
    let open = tickets(&collector, "?state=open").await;
    assert_eq!(open.len(), 1, "still open after the bad links: {open:#?}");

    // The page's link acknowledges it as Ana.
    let (status, body) = get(&ack_url).await;
    assert_eq!(status, 200, "{body}");
    let acked = tickets(&collector, "?state=acknowledged").await;
    assert_eq!(acked.len(), 1, "{acked:#?}");
    let (_, full) = api(
        &collector,
        Some(VIEWER),
        "GET",
        &format!("/tickets/{ticket}"),
        None,
    )
    .await;
    let by: Vec<&str> = full["timeline"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["change"]["type"] == "acknowledged")
        .filter_map(|e| e["who"].as_str())
        .collect();
    assert_eq!(by, ["Ana Berg"], "{full:#}");

    // Used again: the ticket is acknowledged already.
    let (status, body) = get(&ack_url).await;
    assert_eq!(status, 409, "{body}");
    // A good signature for a ticket that does not exist.
    let missing = token(KEY, ticket + 100, now_ms() + 60_000, "Ana Berg");
    let (status, _) = get(&format!("{public}/api/v1/ack/{missing}")).await;
    assert_eq!(status, 404);
}
