//! Modbus against pymodbus' server: over TCP, values of every layout arrive decoded and scaled,
//! an exception response is a counted error that leaves the other values alone, and a device that
//! cannot be reached is reported down; over RTU on a serial line (a socat pty pair), the same
//! registers arrive the same way.

use faultline_tests::modbus_peer::{ModbusServer, SerialModbusServer};
use faultline_tests::*;
use std::path::{Path, PathBuf};
use std::time::Duration;

const MAP: &str = r#"
description = "test map over tests/peers/modbus_server.py"
[[registers]]
metric = "t_i16"
function = "holding"
address = 0
type = "i16"
scale = 0.1
unit = "celsius"
[[registers]]
metric = "t_f32_big"
function = "holding"
address = 1
type = "f32"
[[registers]]
metric = "t_f32_little"
function = "holding"
address = 3
type = "f32"
word_order = "little"
[[registers]]
metric = "t_u32"
function = "holding"
address = 5
type = "u32"
kind = "counter"
[[registers]]
metric = "t_neg"
function = "input"
address = 1
type = "i16"
scale = 0.1
[[registers]]
metric = "t_coil"
function = "coil"
address = 2
type = "bool"
[[registers]]
metric = "t_missing"
function = "holding"
address = 1000
type = "u16"
"#;

/// The test map in `dir/maps` (the agent's `modbus.maps_dir`) and a collector.
async fn maps_and_collector(dir: &Path) -> (PathBuf, CollectorProcess) {
    let maps = dir.join("maps");
    std::fs::create_dir_all(&maps).unwrap();
    std::fs::write(maps.join("test-map.toml"), MAP).unwrap();
    let collector = CollectorProcess::start(dir, free_port(), "").await.unwrap();
    (maps, collector)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registers_exceptions_and_unreachable_devices() {
    let dir = tempfile::tempdir().unwrap();
    let server = ModbusServer::start(dir.path()).unwrap();
    let (maps, collector) = maps_and_collector(dir.path()).await;
    let extra = format!(
        "[modbus]\nmaps_dir = \"{}\"\n\n[[modbus.devices]]\nid = \"plc-1\"\naddress = \"{}\"\nunit = 1\nmap = \"test-map\"\ninterval = \"300ms\"\ntimeout = \"250ms\"\nlabels = {{ rack = \"r7\" }}\n\n\
         [[modbus.devices]]\nid = \"dead-1\"\naddress = \"127.0.0.1:{}\"\nmap = \"xy-md02\"\ninterval = \"300ms\"\ntimeout = \"250ms\"\n",
        maps.display(),
        server.address(),
        free_port()
    );
    let config = agent_config(dir.path(), &collector.url, "60s", &extra).unwrap();
    let mut agent = start_agent(dir.path(), &config).unwrap();

    let last = std::sync::Mutex::new(String::new());
    let arrived = wait_until(Duration::from_secs(20), || async {
        let text = collector.scrape().await;
        let ok = metric_value(&text, "t_coil", &[("target", "plc-1")]).is_some()
            && metric_value(&text, "faultline_modbus_up", &[("target", "dead-1")]).is_some();
        *last.lock().unwrap() = text;
        ok
    })
    .await;
    let text = last.into_inner().unwrap();
    assert!(
        arrived,
        "Modbus values missing; metrics:\n{text}\nagent log:\n{}",
        agent.log()
    );

    let plc = [("agent", "a1"), ("target", "plc-1"), ("rack", "r7")];
    let cases = [
        ("t_i16", 23.5),
        ("t_f32_big", 41.25),
        ("t_f32_little", 41.25),
        ("t_u32_total", 100_000.0),
        ("t_neg", -5.0),
        ("t_coil", 1.0),
        ("faultline_modbus_up", 1.0),
    ];
    for (metric, want) in cases {
        let got = metric_value(&text, metric, &plc);
        assert!(
            got.is_some_and(|v| (v - want).abs() < 1e-9),
            "{metric}: {got:?}, want {want}\n{text}"
        );
    }
    assert_eq!(
        metric_value(&text, "t_i16", &[("target", "plc-1"), ("unit", "celsius")]),
        Some(23.5)
    );
    assert_eq!(metric_value(&text, "t_missing", &[]), None);
    let exceptions = metric_value(
        &text,
        "faultline_modbus_errors_total",
        &[("target", "plc-1"), ("kind", "exception")],
    );
    assert!(exceptions.is_some_and(|n| n >= 1.0), "{text}");
    assert_eq!(
        metric_value(&text, "faultline_modbus_up", &[("target", "dead-1")]),
        Some(0.0)
    );
    assert!(
        metric_value(
            &text,
            "faultline_modbus_errors_total",
            &[("target", "dead-1"), ("kind", "connect")]
        )
        .is_some(),
        "{text}"
    );

    // Logged with device and kind, at most once a minute each.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let log = agent.log();
    let errors = log_events(&log, "Modbus poll error");
    let exception = errors
        .iter()
        .filter(|e| e["fields"]["device"] == "plc-1" && e["fields"]["kind"] == "exception")
        .count();
    assert_eq!(exception, 1, "exception lines:\n{log}");
    assert!(
        errors
            .iter()
            .any(|e| e["fields"]["device"] == "dead-1" && e["fields"]["kind"] == "connect"),
        "{log}"
    );
    assert!(agent.running());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rtu_over_a_serial_line() {
    let dir = tempfile::tempdir().unwrap();
    let line = SerialModbusServer::start(dir.path()).unwrap();
    let (maps, collector) = maps_and_collector(dir.path()).await;
    let extra = format!(
        "[modbus]\nmaps_dir = \"{}\"\n\n[[modbus.devices]]\nid = \"rs485-1\"\nserial = {{ path = \"{}\", baud_rate = 9600 }}\nunit = 1\nmap = \"test-map\"\ninterval = \"500ms\"\ntimeout = \"400ms\"\n",
        maps.display(),
        line.path.display()
    );
    let config = agent_config(dir.path(), &collector.url, "60s", &extra).unwrap();
    let agent = start_agent(dir.path(), &config).unwrap();
    let last = std::sync::Mutex::new(String::new());
    let arrived = wait_until(Duration::from_secs(20), || async {
        let text = collector.scrape().await;
        let ok = metric_value(&text, "t_f32_little", &[("target", "rs485-1")]).is_some();
        *last.lock().unwrap() = text;
        ok
    })
    .await;
    let text = last.into_inner().unwrap();
    assert!(
        arrived,
        "RTU values missing; metrics:\n{text}\nagent log:\n{}",
        agent.log()
    );
    let device = [("target", "rs485-1")];
    for (metric, want) in [
        ("t_i16", 23.5),
        ("t_f32_big", 41.25),
        ("t_f32_little", 41.25),
        ("t_neg", -5.0),
        ("faultline_modbus_up", 1.0),
    ] {
        let got = metric_value(&text, metric, &device);
        assert!(
            got.is_some_and(|v| (v - want).abs() < 1e-9),
            "{metric}: {got:?}, want {want}\n{text}"
        );
    }
}
