//! Responsibility attribution: decides whether a new incident is a root (tagged with its target's
//! owner, and pages), the same fault as another incident (joins that ticket, may raise its
//! severity) or a symptom of another incident (joins that ticket, takes its tag, never pages), with
//! a one-line reason and the evidence (rules → **incidents**: runs before a ticket is opened).
//!
//! Order of judgement for an incident on target T at time t:
//! 1. **Upstream**: the nearest target upstream of T (breadth-first over `depends_on`) with an
//!    incident active at t or failing within the correlation window makes T a symptom of that
//!    incident's root.
//! 2. **Same fault**: a rule of the same fault ([`NewIncident::same_fault`]: the rules over the same
//!    metric with the same correlation scope) already failing on T, or — for rules with
//!    `correlate = "room"` — on another target in T's room, makes the incident that fault seen
//!    again ([`Role::SameFault`]): several sensors seeing one cooling failure, or the room passing
//!    from the high to the critical temperature. A rule's own fingerprint (rule + target) is not
//!    judged here: re-firing and re-opening are the desk's.
//! 3. **Carrier boundary**: when T is a carrier target, or our edge that depends directly on one,
//!    the evidence on our side of the boundary decides. Our side is T's non-carrier dependencies
//!    (for a carrier target: our edges that depend on it and their non-carrier dependencies). An
//!    incident there makes T its symptom (platform); our side sending fresh data with no incident
//!    puts the fault beyond the boundary (carrier); no fresh data from our side means the carrier
//!    cannot be blamed yet (platform, "unverified").
//! 4. Otherwise T is a root tagged with its owner.
//!
//! A new root also **adopts** the root incidents downstream of it that started within the
//! correlation window: they fired first only because their poll came earlier.

use crate::inventory::{Inventory, Owner, TargetRole};
use crate::rules::Correlate;
use crate::template::format_number;
use crate::{Millis, format_time};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// Prefix of the target id that stands for an agent itself ([`agent_target`]).
pub const AGENT_TARGET_PREFIX: &str = "agent:";

/// The target id of agent `agent` (`agent:<id>`): the collector feeds it one sample per push, so
/// a rule can notice an agent or gateway that stops pushing, and every target the agent reports
/// depends on it implicitly.
pub fn agent_target(agent: &str) -> String {
    format!("{AGENT_TARGET_PREFIX}{agent}")
}

/// An incident already known to the incident stage (open, or recently resolved).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KnownIncident {
    /// Ticket or incident id.
    pub id: u64,
    /// Rule name.
    pub rule: String,
    /// Target id.
    pub target: String,
    /// Its tag.
    pub tag: Owner,
    /// When its condition started.
    pub started_at_ms: Millis,
    /// When it resolved, if it did.
    pub resolved_at_ms: Option<Millis>,
    /// The root it is a symptom of; `None` for a root.
    pub root: Option<u64>,
}

/// The incident being attributed.
#[derive(Debug, Clone, PartialEq)]
pub struct NewIncident {
    /// Rule name.
    pub rule: String,
    /// Target id.
    pub target: String,
    /// The value that fired it.
    pub value: f64,
    /// When its condition started.
    pub started_at_ms: Millis,
    /// When the rule fired.
    pub fired_at_ms: Millis,
    /// The rule's correlation scope.
    pub correlate: Correlate,
    /// The rules whose incidents are one fault with this one, its own included
    /// ([`RuleSet::same_fault`](crate::rules::RuleSet::same_fault)).
    pub same_fault: Vec<String>,
    /// Labels of the series that fired: which sensor or port of the target it is.
    pub labels: BTreeMap<String, String>,
}

/// Everything attribution looks at besides the incident itself.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// The inventory.
    pub inventory: &'a Inventory,
    /// Active and recently resolved incidents.
    pub incidents: &'a [KnownIncident],
    /// Last time each target sent a sample (the "our side is alive" evidence).
    pub last_seen_ms: &'a BTreeMap<String, Millis>,
    /// How far apart two failures may be and still be one fault.
    pub correlation_window_ms: Millis,
}

/// Root, same fault or symptom.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case", tag = "role", content = "root")]
pub enum Role {
    /// Its own fault: opens a ticket and pages.
    Root,
    /// The fault of the root incident with this id, seen by another rule of the same fault or
    /// another target of the room: joins that ticket, and raises its severity (which pages
    /// again) when its rule is more severe.
    SameFault(u64),
    /// Joins the ticket of the root incident with this id; never pages.
    Symptom(u64),
}

/// Our-side evidence looked at for a carrier boundary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BoundaryCheck {
    /// Our target on the boundary side.
    pub target: String,
    /// Its incident, if any.
    pub incident: Option<u64>,
    /// When it last sent a sample.
    pub last_seen_ms: Option<Millis>,
}

/// Another incident the decision relied on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RelatedIncident {
    /// Its id.
    pub id: u64,
    /// Its rule.
    pub rule: String,
    /// Its target.
    pub target: String,
    /// When it started.
    pub started_at_ms: Millis,
}

/// Why the decision was made, kept on the ticket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Evidence {
    /// Rule that fired.
    pub rule: String,
    /// Target it fired on.
    pub target: String,
    /// Value that fired it.
    pub value: f64,
    /// Condition start.
    pub started_at_ms: Millis,
    /// Firing time.
    pub fired_at_ms: Millis,
    /// Dependency chain followed, from the target to the cause (just the target for a plain root).
    pub chain: Vec<String>,
    /// Incident the decision points at, if any.
    pub related: Option<RelatedIncident>,
    /// Our side of a carrier boundary, when one was judged.
    pub boundary: Vec<BoundaryCheck>,
    /// The target's role (absent in older stores, or for a target not in the inventory).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<TargetRole>,
    /// Labels of the series that fired, naming the exact sensor or port (`sensor`, `ifname`);
    /// the agent's label left out (absent in older stores).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

impl Evidence {
    /// The evidence of `new` by itself: its rule, value and times, the chain just its target.
    pub fn of(new: &NewIncident) -> Self {
        Self {
            rule: new.rule.clone(),
            target: new.target.clone(),
            value: new.value,
            started_at_ms: new.started_at_ms,
            fired_at_ms: new.fired_at_ms,
            chain: vec![new.target.clone()],
            related: None,
            boundary: Vec::new(),
            role: None,
            labels: new
                .labels
                .iter()
                .filter(|(k, _)| k.as_str() != "agent")
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        }
    }
}

/// The outcome of attribution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attribution {
    /// Root or symptom.
    pub role: Role,
    /// Responsibility tag.
    pub tag: Owner,
    /// One line for humans.
    pub reason: String,
    /// What it was based on.
    pub evidence: Evidence,
    /// Existing roots that become symptoms of this new root.
    pub adopt: Vec<u64>,
}

impl Attribution {
    /// Whether this incident pages by itself (roots only: the same fault pages only when it
    /// raises its ticket's severity, a symptom never).
    pub fn pages(&self) -> bool {
        self.role == Role::Root
    }
}

impl Context<'_> {
    /// Whether `k` is active at `t` or failing within the window around it.
    fn live(&self, k: &KnownIncident, t: Millis) -> bool {
        let w = self.correlation_window_ms;
        k.started_at_ms <= t.saturating_add(w)
            && k.resolved_at_ms.is_none_or(|r| r.saturating_add(w) >= t)
    }

    /// Incidents on `target` active at `t` or failing within the window around it, earliest first.
    fn failing(&self, target: &str, t: Millis) -> Vec<&KnownIncident> {
        let mut found: Vec<&KnownIncident> = self
            .incidents
            .iter()
            .filter(|k| k.target == target && self.live(k, t))
            .collect();
        found.sort_by_key(|k| (k.started_at_ms, k.id));
        found
    }

    /// The root of `k` and its tag (a symptom's root, followed one step as roots are never symptoms).
    fn root_of(&self, k: &KnownIncident) -> (u64, Owner) {
        match k.root {
            None => (k.id, k.tag),
            Some(root) => (
                root,
                self.incidents
                    .iter()
                    .find(|r| r.id == root)
                    .map_or(k.tag, |r| r.tag),
            ),
        }
    }
}

fn related(k: &KnownIncident) -> RelatedIncident {
    RelatedIncident {
        id: k.id,
        rule: k.rule.clone(),
        target: k.target.clone(),
        started_at_ms: k.started_at_ms,
    }
}

/// Attributes `new` (see the module docs for the order of judgement).
pub fn attribute(new: &NewIncident, ctx: &Context<'_>) -> Attribution {
    let t = new.started_at_ms;
    let inv = ctx.inventory;
    let mut evidence = Evidence::of(new);
    evidence.role = inv.target(&new.target).map(|target| target.role());
    let joins = |evidence: Evidence, cause: &KnownIncident, why: String, same_fault: bool| {
        let (root, tag) = ctx.root_of(cause);
        let (role, what) = if same_fault {
            (Role::SameFault(root), "same fault as")
        } else {
            (Role::Symptom(root), "symptom of")
        };
        Attribution {
            role,
            tag,
            reason: format!("{why}; {what} #{root}, tagged {tag}"),
            evidence: Evidence {
                related: Some(related(cause)),
                ..evidence
            },
            adopt: Vec::new(),
        }
    };
    let symptom =
        |evidence: Evidence, cause: &KnownIncident, why: String| joins(evidence, cause, why, false);

    // 1. Upstream: the inventory's dependencies, then the agent that reports the target (a
    // silent agent or gateway is the cause of its targets' silence).
    let mut paths = inv.upstream(&new.target);
    if let Some(agent) = new.labels.get("agent").map(|a| agent_target(a))
        && agent != new.target
    {
        paths.push(vec![new.target.clone(), agent]);
    }
    for path in paths {
        let Some(upstream) = path.last() else {
            continue;
        };
        if let Some(cause) = ctx.failing(upstream, t).first() {
            let why = format!(
                "{} depends on {} ({}), which has {} since {}",
                new.target,
                upstream,
                path.join(" → "),
                cause.rule,
                format_time(cause.started_at_ms)
            );
            evidence.chain = path;
            return symptom(evidence, cause, why);
        }
    }

    // 2. The same fault on this target or, with room correlation, in its room.
    let room = inv
        .target(&new.target)
        .and_then(|target| target.room.as_deref())
        .filter(|_| new.correlate == Correlate::Room);
    let in_room =
        |target: &str| room.is_some() && inv.target(target).and_then(|o| o.room.as_deref()) == room;
    let same_fault = ctx
        .incidents
        .iter()
        .filter(|k| {
            new.same_fault.contains(&k.rule)
                && !(k.rule == new.rule && k.target == new.target)
                && (k.target == new.target || in_room(&k.target))
                && ctx.live(k, t)
        })
        .min_by_key(|k| (k.target != new.target, k.started_at_ms, k.id));
    if let Some(cause) = same_fault {
        let since = format_time(cause.started_at_ms);
        let why = match room {
            Some(room) if cause.target != new.target => format!(
                "{} already seen in room {room} by {} since {since}",
                cause.rule, cause.target
            ),
            _ => format!(
                "{} {} while it has {} since {since}",
                new.target, new.rule, cause.rule
            ),
        };
        return joins(evidence, cause, why, true);
    }

    let adopt = adoptable(new, ctx);
    if let Some(agent) = new.target.strip_prefix(AGENT_TARGET_PREFIX) {
        evidence.role = Some(TargetRole::Gateway);
        return Attribution {
            role: Role::Root,
            tag: Owner::Platform,
            reason: format!(
                "agent {agent} {} (value {}): the monitoring gateway is ours, tagged platform; \
                 the targets it reports join this ticket",
                new.rule,
                format_number(new.value)
            ),
            evidence,
            adopt,
        };
    }
    let Some(target) = inv.target(&new.target) else {
        return Attribution {
            role: Role::Root,
            tag: Owner::Platform,
            reason: format!(
                "{} is not in the inventory; owner unknown, tagged platform",
                new.target
            ),
            evidence,
            adopt,
        };
    };

    // 3. Carrier boundary.
    let carriers: Vec<&str> = if target.owner == Owner::Carrier {
        vec![target.id.as_str()]
    } else {
        target
            .depends_on
            .iter()
            .filter(|d| inv.target(d).is_some_and(|d| d.owner == Owner::Carrier))
            .map(String::as_str)
            .collect()
    };
    if !carriers.is_empty() {
        let our_side = our_side(inv, &target.id, target.owner == Owner::Carrier);
        for id in &our_side {
            let incident = ctx.failing(id, t).first().map(|k| (*k).clone());
            evidence.boundary.push(BoundaryCheck {
                target: id.clone(),
                incident: incident.as_ref().map(|k| k.id),
                last_seen_ms: ctx.last_seen_ms.get(id).copied(),
            });
            if let Some(cause) = incident {
                let why = format!(
                    "our side of the carrier boundary fails: {id} has {}",
                    cause.rule
                );
                evidence.chain = vec![new.target.clone(), id.clone()];
                return symptom(evidence, &cause, why);
            }
        }
        let circuits: Vec<String> = carriers
            .iter()
            .filter_map(|c| inv.target(c))
            .map(|c| {
                format!(
                    "{} circuit {}",
                    c.carrier.as_deref().unwrap_or("?"),
                    c.circuit_id.as_deref().unwrap_or("?")
                )
            })
            .collect();
        let fresh = |c: &BoundaryCheck| {
            c.last_seen_ms
                .is_some_and(|s| s >= t.saturating_sub(ctx.correlation_window_ms))
        };
        let verified = !evidence.boundary.is_empty() && evidence.boundary.iter().all(fresh);
        let (tag, reason) = if verified {
            (
                Owner::Carrier,
                format!(
                    "{} {} while our side ({}) is up with no incident: fault beyond the boundary on {}",
                    new.target,
                    new.rule,
                    our_side.join(", "),
                    circuits.join(", ")
                ),
            )
        } else {
            (
                Owner::Platform,
                format!(
                    "{} {} at the boundary to {}, but our side ({}) sent no fresh data: carrier \
                     not blamed until our side is verified",
                    new.target,
                    new.rule,
                    circuits.join(", "),
                    if our_side.is_empty() {
                        "none in the inventory".to_string()
                    } else {
                        our_side.join(", ")
                    }
                ),
            )
        };
        return Attribution {
            role: Role::Root,
            tag,
            reason,
            evidence,
            adopt,
        };
    }

    // 4. Plain root.
    Attribution {
        role: Role::Root,
        tag: target.owner,
        reason: format!(
            "{} {} (value {}) with no failing dependency; {}-owned target",
            new.target,
            new.rule,
            format_number(new.value),
            target.owner
        ),
        evidence,
        adopt,
    }
}

/// Our side of the boundary for `id`: its non-carrier dependencies, or, for a carrier target, our
/// edges that depend on it plus their non-carrier dependencies, and a circuit's near probes (its
/// far probes are the carrier's side, though they depend on it).
pub(crate) fn our_side(inv: &Inventory, id: &str, is_carrier: bool) -> Vec<String> {
    let non_carrier_deps = |t: &str| -> Vec<String> {
        inv.target(t)
            .map(|t| {
                t.depends_on
                    .iter()
                    .filter(|d| inv.target(d).is_some_and(|d| d.owner != Owner::Carrier))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut side = BTreeSet::new();
    if is_carrier {
        // A circuit's far probes depend on it but watch the carrier's side; its near probes
        // watch ours.
        let probes = inv.circuit(id).map(|c| &c.probes);
        side.extend(probes.iter().flat_map(|p| p.near.iter().cloned()));
        for edge in inv.dependents(id) {
            if probes.is_some_and(|p| p.far.contains(edge)) {
                continue;
            }
            if inv.target(edge).is_some_and(|e| e.owner != Owner::Carrier) {
                side.insert(edge.clone());
                side.extend(non_carrier_deps(edge));
            }
        }
    } else {
        side.extend(non_carrier_deps(id));
    }
    side.into_iter().collect()
}

/// Roots downstream of `new.target` that started within the window before it.
fn adoptable(new: &NewIncident, ctx: &Context<'_>) -> Vec<u64> {
    let mut ids: Vec<u64> = ctx
        .incidents
        .iter()
        .filter(|k| {
            k.root.is_none()
                && k.resolved_at_ms.is_none()
                && k.target != new.target
                && (new.started_at_ms - k.started_at_ms).abs() <= ctx.correlation_window_ms
                && ctx
                    .inventory
                    .upstream(&k.target)
                    .iter()
                    .any(|p| p.last() == Some(&new.target))
        })
        .map(|k| k.id)
        .collect();
    ids.sort_unstable();
    ids
}

#[cfg(test)]
mod tests {
    use super::*;
    use faultline_wire::config_file::ConfigSource;
    use std::path::Path;

    const INVENTORY: &str = include_str!("../testdata/inventory.toml");

    const MIN: Millis = 60_000;
    const T0: Millis = 1_000 * MIN;

    fn known(
        id: u64,
        rule: &str,
        target: &str,
        tag: Owner,
        started: Millis,
        root: Option<u64>,
    ) -> KnownIncident {
        KnownIncident {
            id,
            rule: rule.into(),
            target: target.into(),
            tag,
            started_at_ms: started,
            resolved_at_ms: None,
            root,
        }
    }

    struct Case {
        name: &'static str,
        rule: &'static str,
        target: &'static str,
        correlate: Correlate,
        /// The rules of the same fault besides the rule itself.
        same_fault: &'static [&'static str],
        incidents: Vec<KnownIncident>,
        /// Targets seen one minute before the fault.
        fresh: &'static [&'static str],
        role: Role,
        tag: Owner,
        reason: &'static str,
        chain: &'static [&'static str],
        adopt: Vec<u64>,
    }

    fn case(name: &'static str, rule: &'static str, target: &'static str) -> Case {
        Case {
            name,
            rule,
            target,
            correlate: Correlate::None,
            same_fault: &[],
            incidents: Vec::new(),
            fresh: &["edge1", "edge1-wan"],
            role: Role::Root,
            tag: Owner::Platform,
            reason: "",
            chain: &[],
            adopt: Vec::new(),
        }
    }

    #[test]
    fn attribution_table() {
        use Owner::{Carrier, Customer, Platform};
        let inventory = Inventory::load(&ConfigSource::from_text(
            Path::new("inv.toml"),
            INVENTORY.to_string(),
        ))
        .unwrap();
        let resolved_long_ago = KnownIncident {
            resolved_at_ms: Some(T0 - 30 * MIN),
            ..known(
                3,
                "DeviceUnreachable",
                "host-1",
                Platform,
                T0 - 60 * MIN,
                None,
            )
        };
        let cases = vec![
            Case {
                tag: Carrier,
                reason: "fault beyond the boundary on ACME Telecom circuit ACME-SH-0042",
                chain: &["edge1-wan"],
                ..case(
                    "carrier uplink down, our edge device healthy",
                    "CarrierLinkLoss",
                    "edge1-wan",
                )
            },
            Case {
                incidents: vec![known(
                    5,
                    "DeviceUnreachable",
                    "edge1",
                    Platform,
                    T0 - MIN,
                    None,
                )],
                role: Role::Symptom(5),
                tag: Platform,
                reason: "edge1-wan depends on edge1 (edge1-wan → edge1), which has DeviceUnreachable since 1970-01-01 16:39:00 UTC",
                chain: &["edge1-wan", "edge1"],
                ..case(
                    "carrier uplink down because our edge router is down",
                    "CarrierLinkLoss",
                    "edge1-wan",
                )
            },
            Case {
                fresh: &[],
                tag: Platform,
                reason: "carrier not blamed until our side is verified",
                chain: &["edge1-wan"],
                ..case(
                    "carrier uplink down, our side unverified",
                    "CarrierLinkLoss",
                    "edge1-wan",
                )
            },
            Case {
                incidents: vec![known(
                    6,
                    "InterfaceErrors",
                    "edge1-wan",
                    Platform,
                    T0 - MIN,
                    None,
                )],
                role: Role::Symptom(6),
                tag: Platform,
                reason: "our side of the carrier boundary fails: edge1-wan has InterfaceErrors",
                chain: &["acme-circuit", "edge1-wan"],
                ..case(
                    "path probe fails while our edge port has its own fault",
                    "CarrierPathDown",
                    "acme-circuit",
                )
            },
            Case {
                tag: Carrier,
                reason: "our side (edge1, edge1-wan) is up",
                chain: &["acme-circuit"],
                ..case(
                    "path probe beyond the boundary fails",
                    "CarrierPathDown",
                    "acme-circuit",
                )
            },
            Case {
                incidents: vec![known(
                    7,
                    "CarrierLinkLoss",
                    "edge1-wan",
                    Carrier,
                    T0 - MIN,
                    None,
                )],
                role: Role::Symptom(7),
                tag: Carrier,
                reason: "vm-1 depends on edge1-wan",
                chain: &["vm-1", "host-1", "tor1", "core1", "edge1-wan"],
                ..case(
                    "customer VM behind the lost carrier uplink",
                    "VmUnreachable",
                    "vm-1",
                )
            },
            Case {
                incidents: vec![
                    known(7, "CarrierLinkLoss", "edge1-wan", Carrier, T0 - MIN, None),
                    known(
                        9,
                        "HostUnreachable",
                        "host-1",
                        Carrier,
                        T0 - MIN / 2,
                        Some(7),
                    ),
                ],
                role: Role::Symptom(7),
                tag: Carrier,
                reason: "symptom of #7, tagged carrier",
                chain: &["vm-2", "host-1"],
                ..case(
                    "nearest failing upstream is itself a symptom: link to its root",
                    "VmUnreachable",
                    "vm-2",
                )
            },
            Case {
                tag: Customer,
                reason: "no failing dependency; customer-owned target",
                chain: &["vm-1"],
                ..case(
                    "customer VM disk full while its host is healthy",
                    "DiskFull",
                    "vm-1",
                )
            },
            Case {
                incidents: vec![resolved_long_ago.clone()],
                tag: Customer,
                reason: "customer-owned",
                chain: &["vm-1"],
                ..case(
                    "upstream failure resolved long before is not a cause",
                    "DiskFull",
                    "vm-1",
                )
            },
            Case {
                incidents: vec![known(
                    12,
                    "HostUnreachable",
                    "host-1",
                    Platform,
                    T0 + MIN,
                    None,
                )],
                role: Role::Symptom(12),
                tag: Platform,
                chain: &["vm-1", "host-1"],
                reason: "vm-1 depends on host-1",
                ..case(
                    "upstream fails within the correlation window after",
                    "VmUnreachable",
                    "vm-1",
                )
            },
            Case {
                correlate: Correlate::Room,
                incidents: vec![known(
                    11,
                    "RoomTemperatureHigh",
                    "temp-1",
                    Platform,
                    T0 - MIN,
                    None,
                )],
                role: Role::SameFault(11),
                tag: Platform,
                reason: "RoomTemperatureHigh already seen in room r2 by temp-1",
                chain: &["temp-2"],
                ..case(
                    "cooling failure seen by a second sensor",
                    "RoomTemperatureHigh",
                    "temp-2",
                )
            },
            Case {
                correlate: Correlate::Room,
                same_fault: &["RoomTemperatureHigh"],
                incidents: vec![known(
                    11,
                    "RoomTemperatureHigh",
                    "temp-1",
                    Platform,
                    T0 - 3 * MIN,
                    None,
                )],
                role: Role::SameFault(11),
                tag: Platform,
                reason: "temp-1 RoomTemperatureCritical while it has RoomTemperatureHigh since 1970-01-01 16:37:00 UTC; same fault as #11, tagged platform",
                chain: &["temp-1"],
                ..case(
                    "the room warms past the critical threshold at the same sensor",
                    "RoomTemperatureCritical",
                    "temp-1",
                )
            },
            Case {
                correlate: Correlate::Room,
                same_fault: &["RoomTemperatureHigh"],
                incidents: vec![known(
                    11,
                    "RoomTemperatureHigh",
                    "temp-1",
                    Platform,
                    T0 - 3 * MIN,
                    None,
                )],
                role: Role::SameFault(11),
                tag: Platform,
                reason: "RoomTemperatureHigh already seen in room r2 by temp-1",
                chain: &["temp-2"],
                ..case(
                    "critical at another sensor of the room",
                    "RoomTemperatureCritical",
                    "temp-2",
                )
            },
            Case {
                correlate: Correlate::Room,
                same_fault: &["RoomTemperatureHigh"],
                incidents: vec![
                    known(
                        11,
                        "RoomTemperatureHigh",
                        "temp-1",
                        Platform,
                        T0 - 3 * MIN,
                        None,
                    ),
                    known(
                        11,
                        "RoomTemperatureHigh",
                        "temp-2",
                        Platform,
                        T0 - 2 * MIN,
                        Some(11),
                    ),
                ],
                role: Role::SameFault(11),
                tag: Platform,
                reason: "temp-2 RoomTemperatureCritical while it has RoomTemperatureHigh",
                chain: &["temp-2"],
                ..case(
                    "critical at a sensor that is already a symptom: its own incident first",
                    "RoomTemperatureCritical",
                    "temp-2",
                )
            },
            Case {
                same_fault: &["RoomTemperatureHigh"],
                incidents: vec![known(
                    11,
                    "RoomTemperatureHigh",
                    "temp-1",
                    Platform,
                    T0 - 3 * MIN,
                    None,
                )],
                reason: "platform-owned",
                chain: &["temp-2"],
                ..case(
                    "without room correlation another sensor's level is its own fault",
                    "RoomTemperatureCritical",
                    "temp-2",
                )
            },
            Case {
                correlate: Correlate::Room,
                same_fault: &["RoomTemperatureHigh"],
                incidents: vec![KnownIncident {
                    resolved_at_ms: Some(T0 - 30 * MIN),
                    ..known(
                        11,
                        "RoomTemperatureHigh",
                        "temp-1",
                        Platform,
                        T0 - 60 * MIN,
                        None,
                    )
                }],
                reason: "platform-owned",
                chain: &["temp-1"],
                ..case(
                    "the same fault resolved long before is over",
                    "RoomTemperatureCritical",
                    "temp-1",
                )
            },
            Case {
                correlate: Correlate::Room,
                same_fault: &["RoomTemperatureHigh"],
                incidents: vec![known(
                    11,
                    "RoomTemperatureCritical",
                    "temp-1",
                    Platform,
                    T0 - 3 * MIN,
                    None,
                )],
                reason: "platform-owned",
                chain: &["temp-1"],
                ..case(
                    "its own fingerprint is the desk's (re-fire, re-open)",
                    "RoomTemperatureCritical",
                    "temp-1",
                )
            },
            Case {
                same_fault: &["DeviceUnreachable"],
                incidents: vec![known(
                    13,
                    "DeviceUnreachable",
                    "gw-1",
                    Platform,
                    T0 - 2 * MIN,
                    None,
                )],
                role: Role::SameFault(13),
                tag: Platform,
                reason: "gw-1 DeviceSilent while it has DeviceUnreachable",
                chain: &["gw-1"],
                ..case(
                    "another rule on the same metric and target, no correlation",
                    "DeviceSilent",
                    "gw-1",
                )
            },
            Case {
                correlate: Correlate::Room,
                incidents: vec![known(
                    11,
                    "RoomHumidityHigh",
                    "temp-1",
                    Platform,
                    T0 - MIN,
                    None,
                )],
                reason: "platform-owned",
                chain: &["temp-2"],
                ..case(
                    "a different rule in the same room is another fault",
                    "RoomTemperatureHigh",
                    "temp-2",
                )
            },
            Case {
                incidents: vec![known(
                    11,
                    "RoomTemperatureHigh",
                    "temp-1",
                    Platform,
                    T0 - MIN,
                    None,
                )],
                reason: "platform-owned",
                chain: &["temp-2"],
                ..case(
                    "without room correlation sensors stay separate",
                    "RoomTemperatureHigh",
                    "temp-2",
                )
            },
            Case {
                incidents: vec![
                    known(20, "VmUnreachable", "vm-1", Customer, T0 - MIN / 2, None),
                    known(21, "DiskFull", "vm-2", Customer, T0 - 20 * MIN, None),
                    known(
                        22,
                        "RoomTemperatureHigh",
                        "temp-1",
                        Platform,
                        T0 - MIN / 2,
                        None,
                    ),
                ],
                tag: Carrier,
                reason: "beyond the boundary",
                chain: &["edge1-wan"],
                adopt: vec![20],
                ..case(
                    "uplink loss adopts VM incidents that fired just before it",
                    "CarrierLinkLoss",
                    "edge1-wan",
                )
            },
            Case {
                reason: "not in the inventory",
                chain: &["mystery"],
                ..case("unknown target", "DeviceUnreachable", "mystery")
            },
        ];
        for c in cases {
            let last_seen: BTreeMap<String, Millis> =
                c.fresh.iter().map(|t| (t.to_string(), T0 - MIN)).collect();
            let ctx = Context {
                inventory: &inventory,
                incidents: &c.incidents,
                last_seen_ms: &last_seen,
                correlation_window_ms: 5 * MIN,
            };
            let new = NewIncident {
                rule: c.rule.into(),
                target: c.target.into(),
                value: 1.0,
                started_at_ms: T0,
                fired_at_ms: T0 + MIN,
                correlate: c.correlate,
                same_fault: std::iter::once(c.rule)
                    .chain(c.same_fault.iter().copied())
                    .map(str::to_string)
                    .collect(),
                labels: BTreeMap::from([
                    ("agent".to_string(), "a1".to_string()),
                    ("ifname".to_string(), "Te0/0/0".to_string()),
                ]),
            };
            let got = attribute(&new, &ctx);
            // The exact port is named; the agent is not evidence.
            assert_eq!(
                got.evidence.labels,
                BTreeMap::from([("ifname".to_string(), "Te0/0/0".to_string())])
            );
            let role = inventory.target(c.target).map(|t| t.role());
            assert_eq!(got.evidence.role, role, "{}", c.name);
            assert_eq!(got.role, c.role, "{}: {}", c.name, got.reason);
            assert_eq!(got.tag, c.tag, "{}: {}", c.name, got.reason);
            assert!(got.reason.contains(c.reason), "{}: {}", c.name, got.reason);
            assert_eq!(got.evidence.chain, c.chain, "{}", c.name);
            assert_eq!(got.adopt, c.adopt, "{}", c.name);
            assert_eq!(got.pages(), c.role == Role::Root, "{}", c.name);
            let related = got.evidence.related.as_ref().map(|r| r.id);
            match got.role {
                Role::Root => assert_eq!(related, None, "{}", c.name),
                Role::SameFault(root) | Role::Symptom(root) => {
                    assert!(related.is_some(), "{}", c.name);
                    assert!(got.reason.contains(&format!("#{root}")), "{}", c.name);
                }
            }
            assert_eq!(
                (got.evidence.rule.as_str(), got.evidence.started_at_ms),
                (c.rule, T0),
                "{}",
                c.name
            );
        }
    }
}
