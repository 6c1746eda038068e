//! The README's first command, `bash scripts/demo.sh`, told once end to end
//! (`FAULTLINE_DEMO_ONCE=1`): the simulated room starts, the three injected faults (carrier
//! circuit loss, room temperature rise, customer disk filling) each open one ticket with its own
//! responsibility tag and page once, the finance department hears a progress update, and all three
//! resolve once the faults are undone; the carrier ticket is acknowledged with the signed link its
//! page carries. Checked from what the demo leaves in its state dir: the
//! ticket list it saved (`story.json`) and what its pager and mailbox received.

use faultline_tests::*;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The whole story must be told within this.
const BOUND: Duration = Duration::from_secs(300);

/// The rule of each injected fault and the tag its ticket must carry.
const STORY: [(&str, &str); 3] = [
    ("CarrierLinkLoss", "carrier"),
    ("RoomTemperatureHigh", "platform"),
    ("StorageFull", "customer"),
];

/// The JSON lines of `path` (none when it is missing).
fn json_lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

#[test]
fn the_demo_tells_the_story_once() {
    let dir = tempfile::tempdir().unwrap();
    // snmpsim runs as `nobody` under root: it must reach its data below the temp dir.
    Command::new("chmod")
        .arg("755")
        .arg(dir.path())
        .status()
        .unwrap();
    let state = dir.path().join("demo");
    let bin_dir = binary("demo_room").parent().unwrap().to_path_buf();
    let log = dir.path().join("demo.out");
    let out = std::fs::File::create(&log).unwrap();
    let mut demo = Command::new("bash")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/demo.sh"))
        .env("FAULTLINE_DEMO_ONCE", "1")
        .env("FAULTLINE_DEMO_DIR", &state)
        .env("FAULTLINE_DEMO_BIN_DIR", &bin_dir)
        .env("FAULTLINE_PORT", free_port().to_string())
        .env("FAULTLINE_DEMO_MQTT_PORT", free_port().to_string())
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .unwrap();
    let deadline = Instant::now() + BOUND;
    let status = loop {
        if let Some(status) = demo.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() > deadline {
            // SIGTERM: the script's trap stops the room, the collector and the agent.
            let _ = Command::new("kill")
                .args(["-TERM", &demo.id().to_string()])
                .status();
            let _ = demo.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    let said = std::fs::read_to_string(&log).unwrap_or_default();
    let collector_log = std::fs::read_to_string(state.join("collector.log")).unwrap_or_default();
    let tail: String = collector_log
        .lines()
        .rev()
        .take(30)
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        status.is_some_and(|s| s.success()),
        "the demo failed or overran {BOUND:?} ({status:?}):\n{said}\ncollector log (last lines, newest first):\n{tail}"
    );

    let story: Value =
        serde_json::from_str(&std::fs::read_to_string(state.join("story.json")).unwrap()).unwrap();
    let tickets = story["tickets"].as_array().cloned().unwrap_or_default();
    assert_eq!(tickets.len(), 3, "three tickets: {tickets:#?}\n{said}");
    let by_rule: BTreeMap<&str, &Value> = tickets
        .iter()
        .filter_map(|t| t["rule"].as_str().map(|r| (r, t)))
        .collect();
    let pages = json_lines(&state.join("room/pager.jsonl"));
    for (rule, tag) in STORY {
        let ticket = by_rule
            .get(rule)
            .unwrap_or_else(|| panic!("no {rule} ticket: {tickets:#?}"));
        assert_eq!(ticket["tag"], tag, "{ticket:#}");
        assert!(
            ticket["state"] == "resolved" || ticket["state"] == "closed",
            "{rule} not resolved: {ticket:#}"
        );
        if rule == "CarrierLinkLoss" {
            assert!(
                ticket["acknowledged_at_ms"].is_number(),
                "acknowledged from the page's link: {ticket:#}\n{said}"
            );
        }
        let triggers: Vec<&Value> = pages
            .iter()
            .filter(|p| {
                p["event_action"] == "trigger"
                    && p["payload"]["custom_details"]["ticket"] == ticket["id"]
            })
            .collect();
        assert_eq!(triggers.len(), 1, "{rule}: one page: {pages:#?}");
        let key = &triggers[0]["dedup_key"];
        assert!(
            pages
                .iter()
                .any(|p| p["event_action"] == "resolve" && &p["dedup_key"] == key),
            "{rule}: the pager hears the resolution: {pages:#?}"
        );
    }
    let mails = json_lines(&state.join("room/mail.jsonl"));
    let to_finance = |subject: &str| {
        mails.iter().any(|m| {
            m["to"][0] == "li.wei@finance.example"
                && m["subject"].as_str().is_some_and(|s| s.contains(subject))
        })
    };
    assert!(
        to_finance("Update on the service disruption"),
        "a customer progress update: {mails:#?}"
    );
    assert!(
        to_finance("Resolved"),
        "the customer hears the resolution: {mails:#?}"
    );
    assert!(
        said.contains("http://127.0.0.1:") && said.contains("/console"),
        "the console URL is printed:\n{said}"
    );
}
