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
//! ```

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
}

/// Checks `circuits` against the file's `targets` and adds each as a carrier `link` target our
/// port depends on; errors name `circuits[i].field`.
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
