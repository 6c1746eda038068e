//! Carrier circuits as first-class inventory entries (config → inventory → **attribution**): a
//! `[[circuits]]` entry names the carrier, its circuit id, our end (`a_end`: a port of our edge,
//! an inventory target we own) and the carrier's hand-off (`z_end`). Loading turns each circuit
//! into a carrier-owned `link` target and makes our port depend on it, so "our side" of the
//! boundary is our equipment upstream of the port — never the customer systems behind it.
//!
//! ```toml
//! [[circuits]]
//! id = "acme-sh-0042"
//! carrier = "ACME Telecom"
//! circuit_id = "ACME-SH-0042"
//! a_end = "edge1-wan"                       # our port (a target, platform-owned)
//! z_end = "ACME POP Shanghai-3, rack 12"    # the carrier's hand-off
//! noc = [{ name = "ACME NOC", email = "noc@acme.example", phone = "+86 21 5555 0000" }]
//! # Path probes on both sides of the boundary (agent `[[probes]]` ids, i.e. their targets):
//! probes = { near = ["edge1-wan-ping"], far = ["acme-handoff-ping", "beyond-ping"] }
//! ```
//!
//! **Probes**: a `near` probe watches our side (our edge's address), a `far` probe the carrier's
//! side (its hand-off or next hop) or a target beyond it. Each far probe depends on the circuit
//! and on the near probes, so a far probe failing while the near ones answer (fresh data, no
//! incident) is a carrier fault with the probes as evidence, and a near probe failing makes the
//! far ones its symptoms (platform). Probes not declared as targets are added as platform-owned
//! `link` targets in our port's room.

use crate::inventory::{Contact, Owner, Target, TargetKind, TargetRole};
use faultline_wire::config_file::{ConfigError, ConfigSource};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A carrier circuit: who runs it and where its two ends are.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Circuit {
    /// Unique id among targets; samples and tickets name the circuit by it.
    pub id: String,
    /// The carrier.
    pub carrier: String,
    /// The carrier's circuit id (what its NOC asks for).
    pub circuit_id: String,
    /// Our end: the target (our edge port) the circuit is plugged into.
    pub a_end: String,
    /// The carrier's hand-off, as the carrier describes it.
    #[serde(default)]
    pub z_end: String,
    /// The carrier's NOC contacts.
    #[serde(default)]
    pub noc: Vec<Contact>,
    /// Path probes on both sides of the boundary.
    #[serde(default)]
    pub probes: CircuitProbes,
}

/// The probes of a circuit: ids of agent probes, which are the targets their samples carry.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CircuitProbes {
    /// Probes of our side of the boundary (our edge's address, from inside).
    #[serde(default)]
    pub near: Vec<String>,
    /// Probes of the carrier's side: its hand-off or next hop, and targets beyond it.
    #[serde(default)]
    pub far: Vec<String>,
}

/// A probe target the inventory does not declare: platform-owned, in our port's room.
fn probe_target(id: &str, room: Option<String>, depends_on: Vec<String>) -> Target {
    Target {
        id: id.to_string(),
        kind: TargetKind::Link,
        role: Some(TargetRole::Link),
        room,
        owner: Owner::Platform,
        carrier: None,
        circuit_id: None,
        department: None,
        depends_on,
        device: None,
        ifname: None,
        labels: BTreeMap::new(),
    }
}

/// Adds `circuit`'s probes to `targets`: near probes as they are (or new), far probes depending on
/// the circuit and on every near probe.
fn add_probes(
    source: &ConfigSource,
    i: usize,
    circuit: &Circuit,
    room: Option<String>,
    targets: &mut Vec<Target>,
) -> Result<(), ConfigError> {
    let probes = &circuit.probes;
    let reserved = [circuit.id.as_str(), circuit.a_end.as_str()];
    for (side, ids) in [("near", &probes.near), ("far", &probes.far)] {
        for (j, id) in ids.iter().enumerate() {
            let field = format!("circuits[{i}].probes.{side}[{j}]");
            let twice = probes
                .near
                .iter()
                .chain(&probes.far)
                .filter(|p| *p == id)
                .count()
                > 1;
            if id.trim().is_empty() || reserved.contains(&id.as_str()) || twice {
                return Err(source.error(
                    &field,
                    format!("`{id}`: a probe id is not empty, not the circuit or its port, and listed once"),
                ));
            }
            match targets.iter().find(|t| t.id == *id) {
                Some(t) if t.owner != Owner::Platform => {
                    return Err(source.error(
                        &field,
                        format!(
                            "`{id}` is {}-owned: a probe target is ours (owner = \"platform\")",
                            t.owner
                        ),
                    ));
                }
                Some(_) => {}
                None => targets.push(probe_target(id, room.clone(), Vec::new())),
            }
        }
    }
    for far in &probes.far {
        if let Some(target) = targets.iter_mut().find(|t| t.id == *far) {
            for dep in std::iter::once(&circuit.id).chain(&probes.near) {
                if !target.depends_on.contains(dep) {
                    target.depends_on.push(dep.clone());
                }
            }
        }
    }
    Ok(())
}

/// Checks `circuits` against the file's `targets` and adds each as a carrier `link` target our
/// port depends on, with its probes; errors name `circuits[i].field`.
pub(crate) fn add_to_targets(
    source: &ConfigSource,
    circuits: &[Circuit],
    targets: &mut Vec<Target>,
) -> Result<(), ConfigError> {
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, circuit) in circuits.iter().enumerate() {
        let field = |f: &str| format!("circuits[{i}].{f}");
        for (name, value) in [
            ("id", &circuit.id),
            ("carrier", &circuit.carrier),
            ("circuit_id", &circuit.circuit_id),
            ("a_end", &circuit.a_end),
        ] {
            if value.trim().is_empty() {
                return Err(source.error(&field(name), "must not be empty"));
            }
        }
        if targets.iter().any(|t| t.id == circuit.id) || seen.insert(&circuit.id, i).is_some() {
            return Err(source.error(&field("id"), format!("duplicate id `{}`", circuit.id)));
        }
        let Some(end) = targets.iter_mut().find(|t| t.id == circuit.a_end) else {
            return Err(source.error(
                &field("a_end"),
                format!(
                    "unknown target `{}`: our port the circuit ends on",
                    circuit.a_end
                ),
            ));
        };
        if end.owner != Owner::Platform {
            return Err(source.error(
                &field("a_end"),
                format!(
                    "`{}` is {}-owned: our end of a circuit is our equipment (owner = \"platform\")",
                    end.id, end.owner
                ),
            ));
        }
        if !end.depends_on.contains(&circuit.id) {
            end.depends_on.push(circuit.id.clone());
        }
        let room = end.room.clone();
        add_probes(source, i, circuit, room.clone(), targets)?;
        targets.push(Target {
            id: circuit.id.clone(),
            kind: TargetKind::Link,
            role: Some(TargetRole::Link),
            room,
            owner: Owner::Carrier,
            carrier: Some(circuit.carrier.clone()),
            circuit_id: Some(circuit.circuit_id.clone()),
            department: None,
            depends_on: Vec::new(),
            device: None,
            ifname: None,
            labels: BTreeMap::new(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::attribution::{Context, KnownIncident, NewIncident, Role, attribute, our_side};
    use crate::inventory::{Inventory, Owner};
    use crate::rules::Correlate;
    use faultline_wire::config_file::{ConfigError, ConfigSource};
    use std::collections::BTreeMap;
    use std::path::Path;

    const INVENTORY: &str = r#"
[[sites]]
id = "dc1"
[[rooms]]
id = "r1"
site = "dc1"
[[targets]]
id = "edge1"
kind = "device"
room = "r1"
owner = "platform"
[[targets]]
id = "edge1-wan"
kind = "interface"
room = "r1"
owner = "platform"
depends_on = ["edge1"]
[[circuits]]
id = "acme-1"
carrier = "ACME"
circuit_id = "ACME-0042"
a_end = "edge1-wan"
probes = { near = ["edge1-wan-ping"], far = ["acme-handoff-ping", "beyond-http"] }
"#;

    fn load(text: &str) -> Result<Inventory, ConfigError> {
        Inventory::load(&ConfigSource::from_text(
            Path::new("inv.toml"),
            text.to_string(),
        ))
    }

    const MIN: i64 = 60_000;
    const T0: i64 = 1_000 * MIN;

    fn incident(id: u64, rule: &str, target: &str) -> KnownIncident {
        KnownIncident {
            id,
            rule: rule.into(),
            target: target.into(),
            tag: Owner::Platform,
            started_at_ms: T0 - MIN,
            resolved_at_ms: None,
            root: None,
        }
    }

    #[test]
    fn probes_on_both_sides_decide_carrier_or_platform() {
        let inv = load(INVENTORY).unwrap();
        let far = inv.target("acme-handoff-ping").unwrap();
        assert_eq!(far.owner, Owner::Platform);
        assert_eq!(far.room.as_deref(), Some("r1"));
        assert_eq!(far.depends_on, ["acme-1", "edge1-wan-ping"]);
        assert!(inv.target("edge1-wan-ping").unwrap().depends_on.is_empty());
        // The circuit's own side: our port, router and near probe; never its far probes.
        assert_eq!(
            our_side(&inv, "acme-1", true),
            ["edge1", "edge1-wan", "edge1-wan-ping"]
        );

        let all_fresh: BTreeMap<String, i64> = ["edge1", "edge1-wan", "edge1-wan-ping"]
            .iter()
            .map(|t| ((*t).to_string(), T0 - MIN))
            .collect();
        let none = BTreeMap::new();
        // (case, target, known incidents, last seen, role, tag, reason contains)
        type Case<'a> = (
            &'a str,
            &'a str,
            Vec<KnownIncident>,
            &'a BTreeMap<String, i64>,
            Role,
            Owner,
            &'a str,
        );
        let cases: Vec<Case> = vec![
            (
                "far side silent, our edge answers: carrier",
                "acme-handoff-ping",
                vec![],
                &all_fresh,
                Role::Root,
                Owner::Carrier,
                "our side (edge1-wan-ping) is up with no incident: fault beyond the boundary on ACME circuit ACME-0042",
            ),
            (
                "our edge does not answer either: platform, joins it",
                "beyond-http",
                vec![incident(7, "ProbeLoss", "edge1-wan-ping")],
                &all_fresh,
                Role::Symptom(7),
                Owner::Platform,
                "beyond-http depends on edge1-wan-ping",
            ),
            (
                "no fresh data from our edge's probe: carrier not blamed",
                "acme-handoff-ping",
                vec![],
                &none,
                Role::Root,
                Owner::Platform,
                "carrier not blamed until our side is verified",
            ),
            (
                "the circuit's own fault is judged without its far probes",
                "acme-1",
                vec![incident(8, "ProbeLoss", "acme-handoff-ping")],
                &all_fresh,
                Role::Root,
                Owner::Carrier,
                "fault beyond the boundary",
            ),
        ];
        for (name, target, incidents, seen, role, tag, reason) in cases {
            let new = NewIncident {
                rule: "ProbeLoss".into(),
                target: target.into(),
                value: 1.0,
                started_at_ms: T0,
                fired_at_ms: T0,
                correlate: Correlate::None,
                same_fault: vec!["ProbeLoss".into()],
                labels: BTreeMap::new(),
            };
            let ctx = Context {
                inventory: &inv,
                incidents: &incidents,
                last_seen_ms: seen,
                correlation_window_ms: 5 * MIN,
            };
            let got = attribute(&new, &ctx);
            assert_eq!((got.role, got.tag), (role, tag), "{name}: {}", got.reason);
            assert!(got.reason.contains(reason), "{name}: {}", got.reason);
        }
        let carrier = attribute(
            &NewIncident {
                rule: "ProbeLoss".into(),
                target: "acme-handoff-ping".into(),
                value: 1.0,
                started_at_ms: T0,
                fired_at_ms: T0,
                correlate: Correlate::None,
                same_fault: vec![],
                labels: BTreeMap::new(),
            },
            &Context {
                inventory: &inv,
                incidents: &[],
                last_seen_ms: &all_fresh,
                correlation_window_ms: 5 * MIN,
            },
        );
        // The near probe's fresh result is the evidence.
        assert_eq!(carrier.evidence.boundary.len(), 1);
        assert_eq!(carrier.evidence.boundary[0].target, "edge1-wan-ping");
        assert_eq!(carrier.evidence.boundary[0].last_seen_ms, Some(T0 - MIN));
    }

    #[test]
    fn probe_lists_are_checked() {
        let customer = "[[departments]]\nid = \"fin\"\n[[targets]]\nid = \"svc\"\nkind = \"service\"\nowner = \"customer\"\ndepartment = \"fin\"\n";
        let cases = [
            (
                INVENTORY.replace("\"beyond-http\"", "\"edge1-wan\""),
                "circuits[0].probes.far[1]",
            ),
            (
                INVENTORY.replace("\"beyond-http\"", "\"edge1-wan-ping\""),
                "circuits[0].probes.near[0]",
            ),
            (
                INVENTORY.replace("\"beyond-http\"", "\"\""),
                "circuits[0].probes.far[1]",
            ),
            (
                format!(
                    "{customer}{}",
                    INVENTORY.replace("\"beyond-http\"", "\"svc\"")
                ),
                "circuits[0].probes.far[1]",
            ),
        ];
        for (text, field) in cases {
            let err = load(&text).unwrap_err();
            assert_eq!(err.field, field, "{err}");
            assert!(err.position.is_some(), "{err}");
        }
    }
}
