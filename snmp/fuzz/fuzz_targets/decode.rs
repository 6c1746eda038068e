//! Fuzzes the decoding path faultline-snmp owns: received bytes → `snmp2::Pdu` → owned varbinds
//! → sample values for every value kind and label text, and the trap/inform decoder including
//! SNMPv3 USM: traps (sender's engine) and, as authoritative engine, discovery probes and
//! informs (`usm_responder`: header, digest, time window, decryption, Report and Response
//! encoding). The same bytes also go straight to the ScopedPDU parser and Response builder,
//! which otherwise only see data that passed the digest. Seed corpus in `seeds/`: v1/v2c/v3
//! traps, a v2c inform, a GETBULK, and from `snmpinform -d`: a v3 discovery probe and v3
//! informs (authPriv, noAuthNoPriv) to the engine id below.
#![no_main]

use faultline_snmp::config::{SecurityLevel, UsmConfig};
use faultline_snmp::profile::ValueKind;
use faultline_snmp::trap::{TrapConfig, TrapDecoder};
use faultline_snmp::usm_responder::{self, EngineId, LocalEngine};
use faultline_snmp::value::{Decoded, SnmpValue, decode};
use libfuzzer_sys::fuzz_target;
use std::collections::BTreeMap;
use std::sync::{LazyLock, Mutex};

/// The engine id the v3 inform seeds were sent to.
const ENGINE_ID: &str = "80001f8805f0f1f2f3f4f5f6f7";

/// One decoder for the whole run, so v3 keys (expensive to localize) are cached as in the agent.
/// Its engine has boots 0 like the inform seeds (`snmpinform -e` sends 0/0), so they pass the
/// time window for the first 150 s and reach decryption, the PDU and the Response encoder.
static DECODER: LazyLock<Mutex<TrapDecoder>> = LazyLock::new(|| {
    let user = UsmConfig {
        user: "faultline".into(),
        level: SecurityLevel::AuthPriv,
        auth_protocol: Default::default(),
        auth_password: faultline_snmp::config::Secret::new("authpass-256"),
        priv_protocol: Default::default(),
        priv_password: faultline_snmp::config::Secret::new("privpass-aes"),
        context: String::new(),
    };
    let no_auth = UsmConfig {
        user: "fuzz-noauth".into(),
        level: SecurityLevel::NoAuthNoPriv,
        ..user.clone()
    };
    let config = TrapConfig {
        v3_users: vec![user, no_auth],
        ..TrapConfig::default()
    };
    let engine = LocalEngine {
        id: EngineId::from_hex(ENGINE_ID).unwrap_or_else(|e| panic!("{e}")),
        boots: 0,
        started: std::time::Instant::now(),
    };
    Mutex::new(TrapDecoder::with_engine(&config, engine, 0))
});

fuzz_target!(|data: &[u8]| {
    let states = BTreeMap::from([("up".to_string(), 1), ("down".to_string(), 2)]);
    if let Ok(pdu) = snmp2::Pdu::from_bytes(data)
        && let Some(varbinds) = SnmpValue::varbinds(&pdu)
    {
        for (_, value) in &varbinds {
            for kind in [
                ValueKind::Gauge,
                ValueKind::Counter32,
                ValueKind::Counter64,
                ValueKind::State,
            ] {
                if let Ok(Decoded::Value(v)) = decode(value, kind, 0.1, &states) {
                    assert!(v.is_finite());
                }
            }
            let _ = value.label_text();
        }
    }
    if let Ok(mut decoder) = DECODER.lock() {
        let _ = decoder.decode(data);
    }
    if let Ok(scoped) = usm_responder::parse_scoped_pdu(data)
        && let Ok(response) = usm_responder::response_pdu(&scoped.pdu)
    {
        let _ = snmp2::Pdu::from_bytes(&usm_responder::as_v2c_message(b"u", &response));
    }
});
