//! Fuzzes the decoding path faultline-snmp owns: received bytes → `snmp2::Pdu` → owned varbinds
//! → sample values for every value kind and label text, and the trap/inform decoder including
//! SNMPv3 USM (seed corpus in `seeds/`: v1/v2c/v3 traps, an inform, a GETBULK).
#![no_main]

use faultline_snmp::config::{SecurityLevel, UsmConfig};
use faultline_snmp::profile::ValueKind;
use faultline_snmp::trap::{TrapConfig, TrapDecoder};
use faultline_snmp::value::{Decoded, SnmpValue, decode};
use libfuzzer_sys::fuzz_target;
use std::collections::BTreeMap;
use std::sync::{LazyLock, Mutex};

/// One decoder for the whole run, so v3 keys (expensive to localize) are cached as in the agent.
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
    Mutex::new(TrapDecoder::new(&TrapConfig {
        v3_users: vec![user],
        ..TrapConfig::default()
    }))
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
});
