//! `faultline-agent poll` through the real binary against snmpsim serving a recorded Topsec
//! firewall: the profile is detected from the recording's sysObjectID and the samples printed
//! are the recorded values, scaled; a device entry of a config file gives the same result, and
//! a dead address exits non-zero. No collector runs.

use faultline_tests::snmp_peers::{self, Recording};
use faultline_tests::*;
use std::process::Command;
use std::time::Duration;

fn poll(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(binary("faultline-agent"))
        .arg("poll")
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn poll_prints_a_recorded_firewall_without_a_collector() {
    let dir = tempfile::tempdir().unwrap();
    let peer = snmp_peers::snmpsim(
        dir.path(),
        &[Recording {
            source: "network/firewall/topsec-ngfw4000-uf.snmprec.bz2",
            community: "topsec",
            drop_prefixes: &[],
        }],
    );
    peer.wait_answering("topsec", Duration::from_secs(60));
    let address = peer.address();

    let (ok, out, err) = poll(&[
        "--address",
        &address,
        "--community",
        "topsec",
        "--timeout",
        "5s",
    ]);
    assert!(ok, "{out}\n{err}");
    assert!(out.contains("# profiles: "), "{out}");
    assert!(out.contains("topsec-ngfw"), "{out}");
    assert!(
        out.contains("faultline_snmp_firewall_cpu_usage_ratio{} 0.03 (Gauge)\n"),
        "{out}"
    );
    assert!(
        out.contains("faultline_snmp_firewall_memory_usage_ratio{} 0.33 (Gauge)\n"),
        "{out}"
    );
    assert!(
        out.contains("faultline_snmp_firewall_ha_role{} 1 (State)\n"),
        "{out}"
    );
    assert!(out.contains("faultline_snmp_up{} 1 (Gauge)\n"), "{out}");

    // The same device as a config entry, with a profile it does not answer named as well.
    let config = format!(
        "[agent]\nid = \"a\"\n[push]\nurl = \"http://127.0.0.1:9\"\ntoken = \"t\"\n\n\
         [[snmp.devices]]\nid = \"fw-1\"\naddress = \"{address}\"\ncommunity = \"topsec\"\n\
         profiles = [\"hillstone-stoneos\"]\ntimeout = \"5s\"\nretries = 0\ninterval = \"10s\"\n"
    );
    let file = dir.path().join("agent.toml");
    std::fs::write(&file, config).unwrap();
    let (ok, out, err) = poll(&["--config", file.to_str().unwrap(), "--device", "fw-1"]);
    assert!(ok, "{out}\n{err}");
    assert!(out.starts_with("# device fw-1\n"), "{out}");
    assert!(
        out.contains("faultline_snmp_firewall_ha_role{} 1 (State)\n"),
        "{out}"
    );
    assert!(
        out.contains(
            "#   hillstone-stoneos faultline_snmp_firewall_sessions 1.3.6.1.4.1.28557.2.2.1.7.0\n"
        ),
        "the named profile's OIDs are listed as not answered: {out}"
    );

    // Nobody listens: the poll fails fast and says so.
    let dead = format!("127.0.0.1:{}", snmp_peers::free_udp_port());
    let (ok, out, err) = poll(&["--address", &dead, "--timeout", "300ms"]);
    assert!(!ok, "{out}");
    assert!(err.contains("did not answer"), "{err}");
    assert!(out.contains("faultline_snmp_up{} 0 (Gauge)\n"), "{out}");
}
