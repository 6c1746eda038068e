//! The exposition passes `promtool check metrics` with every family's own help, and a real
//! Prometheus, configured with the example scrape config, scraping a collector fed by a demo
//! room (the real agent polling recorded devices in snmpsim and a net-snmp daemon, plus its host)
//! answers every query of every dashboard with data.

use faultline_tests::incidents::{IncidentSetup, fast_default_rules, webhook_channel};
use faultline_tests::prometheus::query;
use faultline_tests::receivers::Receiver;
use faultline_tests::snmp_peers::{self, Peer, Recording};
use faultline_tests::*;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

/// The demo room: a Geist sensor, a UPS, two firewalls, an edge router whose `port1` is the
/// hand-off of a carrier circuit, a switch (net-snmp), all in the agent's site and room, and a
/// customer department's branch system that does not answer (a customer ticket).
const INVENTORY: &str = r#"
[[sites]]
id = "test-site"

[[departments]]
id = "finance"
name = "Finance Bureau"
contacts = [{ name = "Li Wei", email = "li.wei@finance.example" }]

[[targets]]
id = "branch-fin"
kind = "device"
role = "host"
owner = "customer"
department = "finance"

[[rooms]]
id = "test-room"
site = "test-site"

[[targets]]
id = "env-a1"
kind = "sensor"
room = "test-room"
owner = "platform"

[[targets]]
id = "ups-a1"
kind = "device"
role = "ups"
room = "test-room"
owner = "platform"

[[targets]]
id = "fgt-a1"
kind = "device"
role = "firewall"
room = "test-room"
owner = "platform"

[[targets]]
id = "pa-a1"
kind = "device"
role = "firewall"
room = "test-room"
owner = "platform"

[[targets]]
id = "edge-r1"
kind = "device"
role = "router"
room = "test-room"
owner = "platform"

[[targets]]
id = "edge-r1-wan1"
kind = "interface"
role = "interface"
room = "test-room"
owner = "platform"
device = "edge-r1"
ifname = "port1"
labels = { link_role = "carrier", carrier = "China Telecom" }
depends_on = ["edge-r1"]

[[circuits]]
id = "ct-0042"
carrier = "China Telecom"
circuit_id = "GZ-MSTP-0042"
a_end = "edge-r1-wan1"
z_end = "China Telecom Tianhe POP"

[[targets]]
id = "sw-a1"
kind = "device"
role = "switch"
room = "test-room"
owner = "platform"
"#;

/// Recordings of real devices, served by community = target id.
const RECORDINGS: [Recording; 5] = [
    Recording {
        source: "iot/geist-temperature-sensor.snmprec",
        community: "env-a1",
        drop_prefixes: &[],
    },
    Recording {
        source: "UPS/phoenixtec-power.snmprec.bz2",
        community: "ups-a1",
        drop_prefixes: &[],
    },
    // Per-policy stats and routes left out to keep snmpsim quick.
    Recording {
        source: "network/firewall/fortinet-xcu.snmprec.bz2",
        community: "fgt-a1",
        drop_prefixes: &[
            "1.3.6.1.4.1.12356.101.11",
            "1.3.6.1.2.1.4.21",
            "1.3.6.1.4.1.12356.101.14",
        ],
    },
    Recording {
        source: "network/firewall/paloalto-pa-5000.snmprec.bz2",
        community: "pa-a1",
        drop_prefixes: &[],
    },
    Recording {
        source: "network/switch/cts-media-converter.snmprec.bz2",
        community: "edge-r1",
        drop_prefixes: &[],
    },
];

/// Dashboard queries that only hardware temperature sensors answer (none on CI's VMs).
fn hardware_dependent(expr: &str) -> bool {
    expr.contains("faultline_host_temperature_celsius")
}

/// The agent's device tables: every recording, snmpd as the switch, and the branch system at a
/// port nobody listens on.
fn devices(sim: &Peer, switch: &Peer) -> String {
    let mut text = String::new();
    for rec in &RECORDINGS {
        // The UPS's sysObjectID is its vendor's: UPS-MIB is named, the others are detected.
        let profiles = if rec.community == "ups-a1" {
            "profiles = [\"ups-mib\", \"if-mib\"]\n"
        } else {
            ""
        };
        text.push_str(&format!(
            "[[snmp.devices]]\nid = \"{0}\"\naddress = \"{1}\"\ncommunity = \"{0}\"\ninterval = \"3s\"\ntimeout = \"1400ms\"\nretries = 1\n{profiles}\n",
            rec.community,
            sim.address()
        ));
    }
    text.push_str(&format!(
        "[[snmp.devices]]\nid = \"sw-a1\"\naddress = \"{}\"\ncommunity = \"public\"\ninterval = \"3s\"\ntimeout = \"1s\"\nprofiles = [\"if-mib\", \"ucd-snmp\"]\n",
        switch.address()
    ));
    text.push_str(&format!(
        "\n[[snmp.devices]]\nid = \"branch-fin\"\naddress = \"127.0.0.1:{}\"\ncommunity = \"public\"\ninterval = \"1s\"\ntimeout = \"500ms\"\nretries = 0\ndetect_profiles = false\n",
        snmp_peers::free_udp_port()
    ));
    // Path probes across the carrier boundary: our side answers, the far side (a closed port)
    // does not.
    text.push_str(&format!(
        "\n[[probes]]\nid = \"ct-near\"\nkind = \"icmp\"\naddress = \"127.0.0.1\"\ncount = 2\ninterval = \"2s\"\nlabels = {{ carrier = \"China Telecom\" }}\n\n[[probes]]\nid = \"ct-far\"\nkind = \"tcp\"\naddress = \"127.0.0.1:{}\"\ncount = 2\ninterval = \"2s\"\ntimeout = \"300ms\"\nlabels = {{ carrier = \"China Telecom\" }}\n",
        free_port()
    ));
    text
}

/// What `promtool check metrics` says about `text` (empty when clean).
fn promtool_check_metrics(promtool: &Path, text: &str) -> String {
    let mut check = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    check
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = check.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() {
        said.trim().to_string()
    } else {
        format!("exit {}: {said}", out.status)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_prometheus_answers_every_dashboard_query() {
    let promtool = require_program("promtool", "prometheus");
    let prometheus = require_program("prometheus", "prometheus");
    let dir = tempfile::tempdir().unwrap();
    let sim = snmp_peers::snmpsim(&dir.path().join("sim"), &RECORDINGS);
    let switch_dir = dir.path().join("switch");
    std::fs::create_dir_all(&switch_dir).unwrap();
    let switch = snmp_peers::snmpd(&switch_dir, snmp_peers::free_udp_port());
    sim.wait_answering("env-a1", Duration::from_secs(60));

    let receiver = Receiver::start().await.unwrap();
    let tail = webhook_channel(&receiver.url("/hook"));
    let setup = IncidentSetup {
        inventory: INVENTORY,
        tail: &tail,
        ..IncidentSetup::default()
    };
    let collector = setup
        .start_with_rules(dir.path(), free_port(), &fast_default_rules())
        .await
        .unwrap();
    let config = agent_config(dir.path(), &collector.url, "1s", &devices(&sim, &switch)).unwrap();
    let agent = start_agent(dir.path(), &config).unwrap();
    let ready = wait_until(Duration::from_secs(60), || async {
        let text = collector.scrape().await;
        ["env-a1", "ups-a1", "fgt-a1", "pa-a1", "edge-r1", "sw-a1"]
            .iter()
            .all(|t| metric_value(&text, "faultline_snmp_up", &[("target", t)]) == Some(1.0))
            && metric_value(&text, "faultline_host_load1", &[("agent", "a1")]).is_some()
            // The branch system's customer ticket opened.
            && metric_value(&text, "faultline_incident_open_by_department", &[("department", "finance")]) == Some(1.0)
    })
    .await;
    assert!(
        ready,
        "demo room not polled:\n{}\nagent log:\n{}",
        collector.scrape().await,
        agent.log()
    );

    // promtool reads the classic text format, which is what a plain GET returns.
    let text = collector.scrape().await;
    let said = promtool_check_metrics(&promtool, &text);
    assert!(said.is_empty(), "promtool check metrics:\n{said}");
    // Each family keeps its source's help; both daemons' build and process figures are there.
    for line in [
        "# HELP faultline_host_load1 Load average over 1 minute.",
        "# HELP faultline_snmp_up 1 when the device answered this poll, 0 when not.",
        "# HELP faultline_snmp_if_speed_bytes_per_second Interface speed (ifHighSpeed",
        "# HELP faultline_snmp_env_temperature_celsius Temperature at the probe",
        "faultline_build_info{version=\"",
        "process_resident_memory_bytes ",
        "process_cpu_seconds_total ",
        "faultline_agent_build_info{agent=\"a1\",version=\"",
        "faultline_agent_process_resident_memory_bytes{agent=\"a1\"} ",
    ] {
        assert!(text.contains(line), "no `{line}` in:\n{text}");
    }
    assert!(
        !text.contains("its source gave no help text"),
        "a family without its own help:\n{text}"
    );

    // OpenMetrics when asked for it.
    let om = reqwest::Client::new()
        .get(format!("{}/metrics", collector.url))
        .header("Accept", "application/openmetrics-text;version=1.0.0")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(om.ends_with("# EOF\n"), "not OpenMetrics");

    // Every dashboard names only series this collector exports.
    for file in dashboard_files() {
        let missing = missing_dashboard_series(&file, &text);
        assert!(
            missing.is_empty(),
            "{file}: series not exported: {missing:?}"
        );
    }

    // A real Prometheus, with the example scrape config, scrapes the collector every second.
    let example = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../dashboards/prometheus/faultline-scrape.yml"
    ))
    .unwrap();
    let prom_config = dir.path().join("prometheus.yml");
    std::fs::write(
        &prom_config,
        example.replace("15s", "1s").replace("10s", "1s").replace(
            "collector.example.internal:9410",
            collector.url.trim_start_matches("http://"),
        ),
    )
    .unwrap();
    let checked = Command::new(&promtool)
        .args(["check", "config"])
        .arg(&prom_config)
        .output()
        .unwrap();
    assert!(
        checked.status.success(),
        "promtool check config: {checked:?}"
    );
    let prom_port = free_port();
    let _prom = Daemon::spawn(
        &prometheus,
        &[
            &format!("--config.file={}", prom_config.display()),
            &format!("--storage.tsdb.path={}", dir.path().join("tsdb").display()),
            &format!("--web.listen-address=127.0.0.1:{prom_port}"),
        ],
        &dir.path().join("prometheus.log"),
        &[],
    )
    .unwrap();
    let url = format!("http://127.0.0.1:{prom_port}/api/v1/query");

    // Every panel query parses and returns data (rates need a few scrapes: bounded wait).
    let queries = dashboard_queries();
    assert!(
        queries.len() >= 80,
        "too few dashboard queries: {}",
        queries.len()
    );
    let mut waiting: Vec<(String, String, serde_json::Value)> = queries
        .into_iter()
        .filter(|(_, expr)| !hardware_dependent(expr))
        .map(|(file, expr)| {
            let promql = expr
                .replace("$__rate_interval", "1m")
                .replace("$site", ".*")
                .replace("$room", ".*");
            (file, promql, serde_json::Value::Null)
        })
        .collect();
    let deadline = std::time::Instant::now() + Duration::from_secs(40);
    while !waiting.is_empty() && std::time::Instant::now() < deadline {
        let mut still = Vec::new();
        for (file, promql, _) in waiting {
            let answer = query(&url, &promql).await;
            if answer["status"] == "error" {
                panic!("{file}: `{promql}` does not parse: {answer}");
            }
            let has_data = answer["data"]["result"]
                .as_array()
                .is_some_and(|r| !r.is_empty());
            if !has_data {
                still.push((file, promql, answer));
            }
        }
        waiting = still;
        if !waiting.is_empty() {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
    let empty: Vec<String> = waiting
        .iter()
        .map(|(file, promql, answer)| format!("{file}: `{promql}` → {answer}"))
        .collect();
    assert!(
        empty.is_empty(),
        "dashboard queries without data:\n{}",
        empty.join("\n")
    );
    // Prometheus saw the scrape as healthy.
    let up = query(&url, "up{job=\"faultline\"}").await;
    assert_eq!(up["data"]["result"][0]["value"][1], "1", "{up}");
}
