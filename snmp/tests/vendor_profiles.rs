//! The Chinese machine-room profiles (Huawei, H3C, Ruijie, Sangfor, Topsec, NSFOCUS, Huawei UPS,
//! Liebert cooling) against snmpsim serving recordings of those real devices (snmpsim-data):
//! each profile is detected from the recording's own sysObjectID (or named, where the card
//! answers net-snmp's), and the values, labels and scaling of its samples are the recorded ones;
//! what no recording shows (Hillstone, USG, a failed power supply) is checked on hand-made varbinds.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod harness;

use faultline_snmp::ProfileCatalog;
use faultline_snmp::collect::{CollectProblem, PollStamp, VarbindMap, build_samples};
use faultline_snmp::counters::CounterTracker;
use faultline_snmp::value::{DecodeError, SnmpValue};
use faultline_wire::{Sample, SampleKind};
use harness::Recording;
use std::sync::Arc;
use std::time::Duration;

/// The sample of `metric` whose labels include every pair of `labels`.
fn find<'a>(samples: &'a [Sample], metric: &str, labels: &[(&str, &str)]) -> &'a Sample {
    samples
        .iter()
        .find(|s| {
            s.metric == metric
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .unwrap_or_else(|| {
            let names: Vec<String> = samples
                .iter()
                .filter(|s| s.metric == metric)
                .map(|s| format!("{:?} = {}", s.labels, s.value))
                .collect();
            panic!("no {metric} with {labels:?}; have {names:#?}")
        })
}

fn assert_value(samples: &[Sample], metric: &str, labels: &[(&str, &str)], want: f64) {
    let got = find(samples, metric, labels).value;
    assert!(
        (got - want).abs() < 1e-9 * want.abs().max(1.0),
        "{metric} {labels:?}: {got} != {want}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chinese_machine_room_recordings_match_profiles() {
    let dir = tempfile::tempdir().unwrap();
    let recordings = [
        Recording {
            source: "network/router/huawei-s5720.snmprec.bz2",
            community: "huawei",
            drop_prefixes: &[],
        },
        Recording {
            source: "network/switch/h3c-e528-2.snmprec.bz2",
            community: "h3c",
            drop_prefixes: &[],
        },
        Recording {
            source: "network/switch/ruijie-s5750-24gt12sfp.snmprec.bz2",
            community: "ruijie",
            drop_prefixes: &[],
        },
        Recording {
            source: "network/firewall/sangfor-ad1800-fp2.snmprec.bz2",
            community: "sangfor",
            drop_prefixes: &[],
        },
        Recording {
            source: "network/firewall/topsec-ngfw4000-uf.snmprec.bz2",
            community: "topsec",
            drop_prefixes: &[],
        },
        Recording {
            source: "network/firewall/nsfocus-osms.snmprec.bz2",
            community: "nsfocus",
            drop_prefixes: &[],
        },
        Recording {
            source: "UPS/huawei-gse200m.snmprec.bz2",
            community: "huaweiups",
            drop_prefixes: &[],
        },
        Recording {
            source: "UPS/vertiv-power.snmprec.bz2",
            community: "liebert",
            drop_prefixes: &[],
        },
    ];
    let peer = harness::snmpsim(dir.path(), &recordings);
    harness::wait_ready(&peer, "topsec", Duration::from_secs(90)).await;
    let catalog = Arc::new(ProfileCatalog::builtin().unwrap());
    let peer = &peer;

    // One poll of `community`; returns the applied profiles and the samples.
    let poll = |community: &'static str, named: &'static [&'static str]| {
        let polled = harness::poll_recording(peer, community, named, catalog.clone());
        async move {
            let (profiles, out) = polled.await;
            (profiles, out.samples)
        }
    };

    // Huawei S5720 (sysObjectID 2011.2.23.276): MPU board 67108873 at 38 % CPU, 7 % memory, 42 °C.
    let (profiles, out) = harness::poll_recording(peer, "huawei", &[], catalog.clone()).await;
    assert!(profiles.contains(&"huawei-vrp".to_string()), "{profiles:?}");
    // huawei-usg fits every Huawei product too; a switch without the firewall MIBs or VRRP
    // groups walks its tables empty: no HA role, no session count, no errors.
    assert!(profiles.contains(&"huawei-usg".to_string()), "{profiles:?}");
    assert!(
        !out.value_errors.iter().any(|e| e.profile == "huawei-usg"),
        "{:?}",
        out.value_errors
    );
    let s = out.samples;
    assert!(
        !s.iter()
            .any(|x| x.metric.starts_with("faultline_snmp_firewall_"))
    );
    let mpu = [("entity", "67108873"), ("entity_name", "MPU Board 0")];
    assert_value(&s, "faultline_snmp_device_cpu_usage_ratio", &mpu, 0.38);
    assert_value(&s, "faultline_snmp_device_memory_usage_ratio", &mpu, 0.07);
    assert_value(&s, "faultline_snmp_device_temperature_celsius", &mpu, 42.0);
    let fan = find(
        &s,
        "faultline_snmp_device_fan_status",
        &[("slot", "0"), ("fan", "7")],
    );
    assert_eq!(
        (fan.value, fan.kind),
        (1.0, SampleKind::State),
        "fan normal"
    );
    assert_value(
        &s,
        "faultline_snmp_device_fan_speed_ratio",
        &[("fan", "7")],
        0.3,
    );
    // Hundredths of a dBm: the recorded -1 is -0.01 dBm.
    assert_value(
        &s,
        "faultline_snmp_optical_rx_power_dbm",
        &[("entity", "67403854")],
        -0.01,
    );

    // H3C E528 (25506.1.578): entity 30 at 55 % memory and 40 °C, entity 1 error status normal.
    let (profiles, s) = poll("h3c", &[]).await;
    assert!(
        profiles.contains(&"h3c-comware".to_string()),
        "{profiles:?}"
    );
    assert_value(
        &s,
        "faultline_snmp_device_memory_usage_ratio",
        &[("entity", "30")],
        0.55,
    );
    assert_value(
        &s,
        "faultline_snmp_device_temperature_celsius",
        &[("entity", "34")],
        40.0,
    );
    assert_value(
        &s,
        "faultline_snmp_device_entity_error_status",
        &[("entity", "1")],
        2.0,
    );
    let cpu = find(
        &s,
        "faultline_snmp_device_cpu_usage_ratio",
        &[("entity", "30")],
    )
    .value;
    assert!(
        (0.0..=1.0).contains(&cpu),
        "recorded as a varying 0..100 %: {cpu}"
    );

    // Ruijie S5750 (4881.1.1.10.1.41): CPU 39 % over a minute, memory pool "memory" at 50 %.
    let (profiles, s) = poll("ruijie", &[]).await;
    assert!(profiles.contains(&"ruijie".to_string()), "{profiles:?}");
    assert_value(&s, "faultline_snmp_device_cpu_usage_ratio", &[], 0.39);
    assert_value(
        &s,
        "faultline_snmp_device_memory_usage_ratio",
        &[("pool", "1"), ("pool_name", "memory")],
        0.5,
    );
    // The one temperature sensor this switch reports is marked invalid and reads 0.
    assert_value(
        &s,
        "faultline_snmp_device_temperature_celsius",
        &[("sensor_index", "1"), ("sensor", "number 1:invalid")],
        0.0,
    );

    // Sangfor AD-1800 (35047): text values with a leading quote and a trailing %.
    let (profiles, s) = poll("sangfor", &[]).await;
    assert!(profiles.contains(&"sangfor".to_string()), "{profiles:?}");
    assert_value(
        &s,
        "faultline_snmp_device_disk_usage_ratio",
        &[("disk", "1"), ("partition", "\"/dev/sda1")],
        0.10,
    );
    assert_value(
        &s,
        "faultline_snmp_device_load_average",
        &[("period", "1m")],
        0.38,
    );
    assert_value(
        &s,
        "faultline_snmp_device_load_average",
        &[("period", "15m")],
        0.20,
    );

    // Topsec NGFW4000 (14331.1.4): CPU 3 %, memory 33 %, HA state "MASTER" → role 1 (active).
    let (profiles, s) = poll("topsec", &[]).await;
    assert!(
        profiles.contains(&"topsec-ngfw".to_string()),
        "{profiles:?}"
    );
    assert_value(&s, "faultline_snmp_firewall_cpu_usage_ratio", &[], 0.03);
    assert_value(&s, "faultline_snmp_firewall_memory_usage_ratio", &[], 0.33);
    let role = find(&s, "faultline_snmp_firewall_ha_role", &[]);
    assert_eq!((role.value, role.kind), (1.0, SampleKind::State));

    // NSFOCUS OSMS: its sysObjectID is malformed (1.3.6.1.4.19849), so it is named.
    let (_, s) = poll("nsfocus", &["nsfocus"]).await;
    assert_value(&s, "faultline_snmp_firewall_cpu_usage_ratio", &[], 0.09);
    assert_value(&s, "faultline_snmp_firewall_memory_usage_ratio", &[], 0.33);

    // Huawei UPS5000-E behind a GSE200M card (answers net-snmp's sysObjectID): named.
    let (_, s) = poll("huaweiups", &["huawei-ups"]).await;
    assert_value(&s, "faultline_snmp_ups_supply_mode", &[("ups", "1")], 3.0);
    assert_value(&s, "faultline_snmp_ups_battery_state", &[("ups", "1")], 4.0);
    let input_a = [("direction", "input"), ("phase", "a")];
    assert_value(&s, "faultline_snmp_ups_voltage_volts", &input_a, 234.7);
    let output_c = [("direction", "output"), ("phase", "c")];
    assert_value(&s, "faultline_snmp_ups_voltage_volts", &output_c, 217.9);
    assert_value(
        &s,
        "faultline_snmp_ups_frequency_hertz",
        &[("direction", "input")],
        50.0,
    );
    assert_value(
        &s,
        "faultline_snmp_ups_frequency_hertz",
        &[("direction", "output")],
        49.99,
    );
    assert_value(
        &s,
        "faultline_snmp_ups_output_load_ratio",
        &[("phase", "b")],
        0.219,
    );
    assert_value(
        &s,
        "faultline_snmp_ups_battery_voltage_volts",
        &[("ups", "1")],
        538.5,
    );
    assert_value(
        &s,
        "faultline_snmp_ups_battery_charge_ratio",
        &[("ups", "1")],
        1.0,
    );
    assert_value(
        &s,
        "faultline_snmp_ups_battery_runtime_seconds",
        &[("ups", "1")],
        28080.0,
    );
    assert_value(&s, "faultline_snmp_ups_alarms", &[], 0.0);

    // Liebert unit (476.1.42): sensors named from their well-known OIDs.
    let (profiles, s) = poll("liebert", &[]).await;
    assert!(
        profiles.contains(&"liebert-cooling".to_string()),
        "{profiles:?}"
    );
    let t = "faultline_snmp_cooling_temperature_celsius";
    assert_value(
        &s,
        t,
        &[("sensor", "return_air"), ("sensor_index", "3")],
        23.0,
    );
    assert_value(&s, t, &[("sensor", "compressor_1")], 29.0);
    assert_value(
        &s,
        "faultline_snmp_cooling_temperature_high_threshold_celsius",
        &[("sensor", "control")],
        30.0,
    );
    assert_value(
        &s,
        "faultline_snmp_cooling_humidity_ratio",
        &[("sensor", "return_air")],
        0.42,
    );
    assert_value(&s, "faultline_snmp_cooling_alarms", &[], 0.0);
}

/// The worked example of `docs/writing-a-profile.md` is a valid profile that fits a Huawei switch.
#[test]
fn guide_example_parses() {
    let guide = include_str!("../../docs/writing-a-profile.md");
    let example = guide
        .split("```toml\n")
        .filter_map(|block| block.split("```").next())
        .find(|block| block.contains("name = \"my-huawei\""))
        .unwrap();
    let source = faultline_wire::config_file::ConfigSource::from_text(
        std::path::Path::new("my-huawei.toml"),
        example.to_string(),
    );
    let profile = faultline_snmp::Profile::parse(&source).unwrap();
    assert!(profile.matches(&"1.3.6.1.4.1.2011.2.23.276".parse().unwrap()));
    assert_eq!(profile.tables[0].columns.len(), 3);
}

/// What no public recording shows, on hand-made varbinds: Hillstone's HA status and a Huawei
/// USG's VRRP state remapped onto the common HA role, an unmapped state refused, the USG
/// session scalar read through its walk, a Huawei power supply that stopped supplying, Ruijie
/// fan and power-supply states in the common numbering,
/// Liebert sensors named from their OIDs.
#[test]
fn vendor_states_remapped_and_named() {
    let catalog = ProfileCatalog::builtin().unwrap();
    let run = |name: &str, data: &[(&str, SnmpValue)], lookups: &[(&str, SnmpValue)]| {
        let map = |pairs: &[(&str, SnmpValue)]| -> VarbindMap {
            pairs
                .iter()
                .map(|(o, v)| (o.parse().unwrap(), v.clone()))
                .collect()
        };
        let (mut out, mut errors) = (Vec::new(), Vec::new());
        build_samples(
            catalog.get(name).unwrap(),
            &map(data),
            &map(lookups),
            PollStamp {
                target: "t",
                ts_ms: 1,
            },
            &mut CounterTracker::default(),
            &mut out,
            &mut errors,
        );
        (out, errors)
    };
    let role = |out: &[Sample]| {
        out.iter()
            .find(|s| s.metric == "faultline_snmp_firewall_ha_role")
            .map(|s| (s.value, s.kind))
    };
    let hillstone = "1.3.6.1.4.1.28557.2.2.1.8.0";
    for (device, want) in [(4, Some(1.0)), (3, Some(2.0)), (0, Some(0.0)), (9, None)] {
        let (out, errors) = run(
            "hillstone-stoneos",
            &[(hillstone, SnmpValue::Integer(device))],
            &[],
        );
        assert_eq!(role(&out).map(|r| r.0), want, "sysHAStatus {device}");
        let refused = errors.iter().any(|e| {
            matches!(
                e.problem,
                CollectProblem::Decode(DecodeError::UnknownState(_))
            )
        });
        assert_eq!(refused, want.is_none(), "{errors:?}");
    }

    let (out, errors) = run(
        "huawei-usg",
        &[
            ("1.3.6.1.2.1.68.1.3.1.3.12.1", SnmpValue::Integer(3)),
            (
                "1.3.6.1.4.1.2011.5.25.11.1.2.1.4.0",
                SnmpValue::Counter64(81234),
            ),
        ],
        &[],
    );
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(
        role(&out),
        Some((1.0, SampleKind::State)),
        "VRRP master is active"
    );
    let vrrp = out
        .iter()
        .find(|s| s.metric == "faultline_snmp_firewall_ha_role")
        .unwrap();
    assert_eq!(
        (
            vrrp.labels["ifindex"].as_str(),
            vrrp.labels["vrid"].as_str()
        ),
        ("12", "1")
    );
    let sessions = out
        .iter()
        .find(|s| s.metric == "faultline_snmp_firewall_sessions")
        .unwrap();
    assert_eq!(
        (sessions.value, sessions.kind),
        (81234.0, SampleKind::Gauge)
    );

    let (out, errors) = run(
        "huawei-vrp",
        &[(
            "1.3.6.1.4.1.2011.5.25.31.1.1.18.1.6.0.2",
            SnmpValue::Integer(2),
        )],
        &[],
    );
    assert!(errors.is_empty(), "{errors:?}");
    let psu = out
        .iter()
        .find(|s| s.metric == "faultline_snmp_device_power_supply_status")
        .unwrap();
    assert_eq!(
        (
            psu.labels["slot"].as_str(),
            psu.labels["psu"].as_str(),
            psu.value
        ),
        ("0", "2", 2.0)
    );

    // Ruijie fans and power supplies (RUIJIE-SYSTEM-MIB) in the common numbering: normal(4) → 1,
    // powerbutabnormal(5) / linefail(7) / existnopower(2) → 2 (failed), noexist(1) → 0.
    let fan_oid = "1.3.6.1.4.1.4881.1.1.10.2.1.1.21.1.2.1";
    let psu_oid = "1.3.6.1.4.1.4881.1.1.10.2.1.1.18.1.2.2";
    for (device, want) in [(4, 1.0), (5, 2.0), (7, 2.0), (2, 2.0), (1, 0.0), (6, 4.0)] {
        let (out, errors) = run(
            "ruijie",
            &[
                // ruijieCPUUtilization1Min, the profile's one scalar.
                (
                    "1.3.6.1.4.1.4881.1.1.10.2.36.1.1.2.0",
                    SnmpValue::Integer(10),
                ),
                (fan_oid, SnmpValue::Integer(device)),
                (psu_oid, SnmpValue::Integer(device)),
            ],
            &[
                (
                    "1.3.6.1.4.1.4881.1.1.10.2.1.1.21.1.3.1",
                    SnmpValue::OctetString(b"FAN1".to_vec()),
                ),
                (
                    "1.3.6.1.4.1.4881.1.1.10.2.1.1.18.1.3.2",
                    SnmpValue::OctetString(b"POWER2".to_vec()),
                ),
            ],
        );
        assert!(errors.is_empty(), "{errors:?}");
        let fan = find(
            &out,
            "faultline_snmp_device_fan_status",
            &[("fan", "1"), ("fan_name", "FAN1"), ("slot", "chassis")],
        );
        assert_eq!(
            (fan.value, fan.kind),
            (want, SampleKind::State),
            "fan {device}"
        );
        let psu = find(
            &out,
            "faultline_snmp_device_power_supply_status",
            &[("psu", "2"), ("psu_name", "POWER2"), ("slot", "chassis")],
        );
        assert_eq!(psu.value, want, "power supply {device}");
    }

    let (out, _) = run(
        "liebert-cooling",
        &[(
            "1.3.6.1.4.1.476.1.42.3.4.1.3.3.1.3.2",
            SnmpValue::Integer(18),
        )],
        &[(
            "1.3.6.1.4.1.476.1.42.3.4.1.3.3.1.2.2",
            SnmpValue::ObjectId("1.3.6.1.4.1.476.1.42.3.4.1.1.3".parse().unwrap()),
        )],
    );
    let supply = out
        .iter()
        .find(|s| s.metric == "faultline_snmp_cooling_temperature_celsius")
        .unwrap();
    assert_eq!(
        (supply.labels["sensor"].as_str(), supply.value),
        ("supply_air", 18.0)
    );
}
