//! SNMPv3 INFORMs from net-snmp's `snmpinform` (Debian `snmp`, net-snmp 5.9) to the trap
//! listener on 127.0.0.1: the sender discovers the listener's engine (Report PDUs), sends the
//! INFORM authenticated (and encrypted) with keys localized to it, and exits 0 only when our
//! Response arrives. Wrong passphrases and unknown users fail at the sender and are counted.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use faultline_snmp::config::{AuthProtocol, SecurityLevel, UsmConfig};
use faultline_snmp::trap::{METRIC_TRAP_PACKETS, METRIC_TRAP_USM_STATS, METRIC_TRAPS};
use faultline_snmp::{TrapConfig, run_trap_listener};
use faultline_tests::snmp_peers::{V3_AUTH, V3_PRIV, V3_USER};
use faultline_wire::Sample;
use std::path::PathBuf;
use std::time::Duration;
use tokio::sync::mpsc;

/// The authNoPriv user (SHA-512, no encryption).
const AUTH_ONLY_USER: &str = "auth-only";
/// The listener's engine id in this test (the default is derived from the machine id).
const ENGINE_ID: &str = "80001f88051122334455667788";

fn usm(user: &str, level: SecurityLevel, auth: AuthProtocol) -> UsmConfig {
    UsmConfig {
        user: user.into(),
        level,
        auth_protocol: auth,
        auth_password: faultline_snmp::config::Secret::new(V3_AUTH),
        priv_protocol: Default::default(),
        priv_password: faultline_snmp::config::Secret::new(V3_PRIV),
        context: String::new(),
    }
}

/// Runs `snmpinform` with `args` (bounded: one 1 s attempt per message), returning whether it
/// exited 0 and its stderr.
async fn snmpinform(program: PathBuf, persist: PathBuf, args: Vec<String>) -> (bool, String) {
    tokio::task::spawn_blocking(move || {
        let out = std::process::Command::new(&program)
            .args(["-t", "1", "-r", "0"])
            .args(&args)
            .env("MIBS", "")
            // net-snmp keeps its own engine state there: keep it private to the test.
            .env("SNMP_PERSISTENT_DIR", &persist)
            .env("SNMPCONFPATH", &persist)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()));
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    })
    .await
    .unwrap()
}

/// Every batch the listener sent until it has been quiet for 300 ms.
async fn drain(rx: &mut mpsc::Receiver<Vec<Sample>>) -> Vec<Vec<Sample>> {
    let mut batches = Vec::new();
    while let Ok(Some(batch)) = tokio::time::timeout(Duration::from_millis(300), rx.recv()).await {
        batches.push(batch);
    }
    batches
}

/// The notifications (trap name) among `batches`.
fn traps(batches: &[Vec<Sample>]) -> Vec<String> {
    batches
        .iter()
        .flatten()
        .filter(|s| s.metric == METRIC_TRAPS)
        .map(|s| s.labels.get("trap").cloned().unwrap_or_default())
        .collect()
}

/// The last value of a listener counter with `label = value`, 0 when not reported.
fn counter(batches: &[Vec<Sample>], metric: &str, label: &str, value: &str) -> f64 {
    batches
        .iter()
        .flatten()
        .filter(|s| s.metric == metric && s.labels.get(label).map(String::as_str) == Some(value))
        .map(|s| s.value)
        .next_back()
        .unwrap_or(0.0)
}

#[tokio::test]
async fn v3_informs_are_discovered_acknowledged_and_rejected() {
    let program = faultline_tests::require_program("snmpinform", "snmp");
    let persist = tempfile::tempdir().unwrap();
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let address = socket.local_addr().unwrap().to_string();
    let config = TrapConfig {
        listen: address.clone(),
        id: "traps".into(),
        v3_users: vec![
            usm(V3_USER, SecurityLevel::AuthPriv, AuthProtocol::Sha256),
            usm(
                AUTH_ONLY_USER,
                SecurityLevel::AuthNoPriv,
                AuthProtocol::Sha512,
            ),
        ],
        engine_id: Some(faultline_snmp::usm_responder::EngineId::from_hex(ENGINE_ID).unwrap()),
        ..Default::default()
    };
    let targets = [("127.0.0.1".parse().unwrap(), "ups1".to_string())].into();
    let (tx, mut rx) = mpsc::channel(64);
    let listener = tokio::spawn(run_trap_listener(socket, config, targets, tx));
    let inform =
        |level: &str, user: &str, auth: &str, auth_pass: &str, extra: &[&str], trap: &str| {
            let mut args: Vec<String> =
                ["-v3", "-l", level, "-u", user, "-a", auth, "-A", auth_pass]
                    .iter()
                    .chain(extra)
                    .map(|s| s.to_string())
                    .collect();
            args.extend([address.clone(), String::new(), trap.to_string()]);
            args.extend(["1.3.6.1.2.1.2.2.1.1.5", "i", "5"].map(String::from));
            snmpinform(program.clone(), persist.path().to_path_buf(), args)
        };
    let privacy = ["-x", "AES", "-X", V3_PRIV];

    // authPriv SHA-256/AES: discovery, then the encrypted INFORM; exit 0 = our Response arrived.
    let (ok, stderr) = inform(
        "authPriv",
        V3_USER,
        "SHA-256",
        V3_AUTH,
        &privacy,
        "1.3.6.1.6.3.1.1.5.4",
    )
    .await;
    assert!(ok, "snmpinform authPriv failed: {stderr}");
    let batches = drain(&mut rx).await;
    assert_eq!(traps(&batches), ["linkUp"], "{batches:#?}");
    let trap = batches
        .iter()
        .flatten()
        .find(|s| s.metric == METRIC_TRAPS)
        .unwrap();
    assert_eq!((trap.target.as_str(), trap.value), ("ups1", 1.0));
    assert!(counter(&batches, METRIC_TRAP_PACKETS, "result", "discovery") >= 1.0);
    assert!(
        counter(
            &batches,
            METRIC_TRAP_USM_STATS,
            "stat",
            "unknown_engine_ids"
        ) >= 1.0
    );

    // authNoPriv SHA-512.
    let (ok, stderr) = inform(
        "authNoPriv",
        AUTH_ONLY_USER,
        "SHA-512",
        V3_AUTH,
        &[],
        "1.3.6.1.6.3.1.1.5.3",
    )
    .await;
    assert!(ok, "snmpinform authNoPriv failed: {stderr}");
    let batches = drain(&mut rx).await;
    assert_eq!(traps(&batches), ["linkDown"], "{batches:#?}");

    // A sender that already knows our engine id but has stale boots/time (as after our
    // restart): notInTimeWindow Report (authenticated), it re-synchronises and resends.
    let engine = format!("0x{ENGINE_ID}");
    let stale = ["-x", "AES", "-X", V3_PRIV, "-e", &engine, "-Z", "1,0"];
    let (ok, stderr) = inform(
        "authPriv",
        V3_USER,
        "SHA-256",
        V3_AUTH,
        &stale,
        "1.3.6.1.6.3.1.1.5.4",
    )
    .await;
    assert!(ok, "snmpinform with stale boots/time failed: {stderr}");
    let batches = drain(&mut rx).await;
    assert_eq!(traps(&batches), ["linkUp"], "{batches:#?}");
    assert_eq!(
        counter(
            &batches,
            METRIC_TRAP_USM_STATS,
            "stat",
            "not_in_time_windows"
        ),
        1.0
    );

    // Wrong authentication passphrase: no Response, the sender fails; counted as rejected.
    let (ok, stderr) = inform(
        "authPriv",
        V3_USER,
        "SHA-256",
        "wrong-auth-pass",
        &privacy,
        "1.3.6.1.6.3.1.1.5.4",
    )
    .await;
    assert!(!ok, "a wrong passphrase must not be acknowledged: {stderr}");
    let batches = drain(&mut rx).await;
    assert!(traps(&batches).is_empty(), "{batches:#?}");
    assert_eq!(
        counter(&batches, METRIC_TRAP_USM_STATS, "stat", "wrong_digests"),
        1.0
    );
    assert_eq!(
        counter(&batches, METRIC_TRAP_PACKETS, "result", "rejected"),
        1.0
    );

    // Wrong privacy passphrase: authenticated, but cannot be decrypted.
    let wrong_privacy = ["-x", "AES", "-X", "wrong-priv-pass"];
    let (ok, stderr) = inform(
        "authPriv",
        V3_USER,
        "SHA-256",
        V3_AUTH,
        &wrong_privacy,
        "1.3.6.1.6.3.1.1.5.4",
    )
    .await;
    assert!(
        !ok,
        "a wrong privacy passphrase must not be acknowledged: {stderr}"
    );
    let batches = drain(&mut rx).await;
    assert!(traps(&batches).is_empty(), "{batches:#?}");
    assert_eq!(
        counter(&batches, METRIC_TRAP_USM_STATS, "stat", "decryption_errors"),
        1.0
    );

    // Unknown user.
    let (ok, stderr) = inform(
        "authPriv",
        "intruder",
        "SHA-256",
        V3_AUTH,
        &privacy,
        "1.3.6.1.6.3.1.1.5.4",
    )
    .await;
    assert!(!ok, "an unknown user must not be acknowledged: {stderr}");
    let batches = drain(&mut rx).await;
    assert_eq!(
        counter(
            &batches,
            METRIC_TRAP_USM_STATS,
            "stat",
            "unknown_user_names"
        ),
        1.0
    );
    assert_eq!(
        counter(&batches, METRIC_TRAP_PACKETS, "result", "rejected"),
        2.0
    );
    assert_eq!(
        counter(&batches, METRIC_TRAP_PACKETS, "result", "accepted"),
        3.0
    );

    drop(rx);
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .send_to(&[0], &address)
        .unwrap();
    tokio::time::timeout(Duration::from_secs(5), listener)
        .await
        .unwrap()
        .unwrap();
}
