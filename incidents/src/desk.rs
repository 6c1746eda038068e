//! The incident desk: decides what a rule event does to the tickets (rules → **incidents**). It is
//! the pure glue between [`Evaluator`](crate::eval::Evaluator) output, [`attribute`] and
//! [`Ticket::apply`]; the collector carries the returned [`Action`]s out against its store.
//!
//! - Firing: an active ticket of the fingerprint or an active symptom means nothing new (a restart
//!   re-fires); a ticket resolved within the re-open window re-opens, also one the fingerprint
//!   had joined as the same fault; otherwise attribution decides: the same fault joins its
//!   root's ticket (and raises its severity when more severe, which pages), a symptom joins its
//!   root's ticket (no page), a root opens a ticket (pages). Whatever joins carries
//!   attribution's reason and evidence onto the ticket's timeline.
//! - Resolved: an active symptom clears on its own — even after its root resolved; the
//!   fingerprint's own ticket resolves (its resolution is always sent, even if it has symptoms),
//!   unless the same fault still fires on another rule or target of it.
//!
//! Adoption: when a new root adopts tickets that fired just before it (their targets depend on
//! it), the collector creates the new ticket, then applies [`adopt_actions`] so each adopted ticket
//! is merged into the new one (closed without a resolution: nothing announces an end while the
//! fault goes on) and becomes its symptom. Settling ([`crate::settle`]) makes this rare: a
//! candidate root waits for its upstream before it opens.

use crate::attribution::{
    Attribution, Context, Evidence, KnownIncident, NewIncident, RelatedIncident, Role, attribute,
};
use crate::eval::{Firing, RuleEvent};
use crate::inventory::Inventory;
use crate::rules::Severity;
use crate::ticket::{
    Command, Customer, NewTicket, SYSTEM, SymptomLink, Ticket, TicketPolicy, TicketState,
};
use crate::{Millis, format_time};
use std::collections::BTreeMap;

/// What the desk looks at besides the event.
#[derive(Debug, Clone, Copy)]
pub struct Desk<'a> {
    /// The inventory.
    pub inventory: &'a Inventory,
    /// Tickets that are not closed (the store's `unclosed()`).
    pub tickets: &'a [Ticket],
    /// Last sample time per target.
    pub last_seen_ms: &'a BTreeMap<String, Millis>,
    /// Correlation window for attribution.
    pub correlation_window_ms: Millis,
    /// Ticket timers.
    pub policy: &'a TicketPolicy,
}

/// What the collector must do.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Create a ticket (with [`Ticket::open`]) and page: a root.
    Open {
        /// The ticket to open.
        ticket: Box<NewTicket>,
        /// Why it is a root, and which tickets it adopts.
        attribution: Box<Attribution>,
    },
    /// Apply a command to an existing ticket.
    Apply {
        /// Ticket id.
        ticket: u64,
        /// The command.
        command: Command,
    },
    /// Nothing to change.
    Nothing {
        /// Why, for the log.
        why: String,
    },
}

/// The incidents attribution needs, built from unclosed tickets: each ticket is a root (over once
/// its own condition cleared, even while the same fault keeps the ticket open); each of its
/// symptoms is an incident pointing at it. A ticket still waiting for triage (untagged: a mail
/// from an unknown sender, on no inventory target) is no incident to attribute to.
pub fn known_incidents(tickets: &[Ticket]) -> Vec<KnownIncident> {
    let mut out = Vec::new();
    for t in tickets {
        let Some(tag) = t.tag else { continue };
        out.push(KnownIncident {
            id: t.id,
            rule: t.rule.clone(),
            target: t.target.clone(),
            tag,
            started_at_ms: t.started_at_ms,
            resolved_at_ms: if t.state.is_active() {
                t.condition_cleared_at_ms
            } else {
                t.resolved_at_ms
            },
            root: None,
        });
        out.extend(t.symptoms.iter().map(|s| KnownIncident {
            id: t.id,
            rule: s.rule.clone(),
            target: s.target.clone(),
            tag,
            started_at_ms: s.joined_at_ms,
            resolved_at_ms: s.cleared_at_ms,
            root: Some(t.id),
        }));
    }
    out
}

impl Desk<'_> {
    fn latest(&self, rule: &str, target: &str) -> Option<&Ticket> {
        self.tickets
            .iter()
            .filter(|t| t.rule == rule && t.target == target)
            .max_by_key(|t| t.id)
    }

    fn symptom_ticket(&self, rule: &str, target: &str) -> Option<&Ticket> {
        self.tickets.iter().find(|t| {
            t.symptoms
                .iter()
                .any(|s| s.rule == rule && s.target == target && s.cleared_at_ms.is_none())
        })
    }

    /// The latest ticket resolved within the re-open window at `now` that the fingerprint joined
    /// as the same fault: its flap re-opens that ticket (fingerprint = rule + target).
    fn rejoins(&self, rule: &str, target: &str, now: Millis) -> Option<&Ticket> {
        self.tickets
            .iter()
            .filter(|t| {
                t.reopens(self.policy, now)
                    && t.symptoms
                        .iter()
                        .any(|s| s.rule == rule && s.target == target && s.same_fault.is_some())
            })
            .max_by_key(|t| t.id)
    }

    /// `f` joins ticket `ticket` with `reason` and `evidence`: as the same fault at its
    /// severity, or (`same_fault` none) as a symptom.
    fn link(
        &self,
        ticket: u64,
        f: &Firing,
        reason: String,
        evidence: Evidence,
        same_fault: Option<Severity>,
    ) -> Action {
        Action::Apply {
            ticket,
            command: Command::LinkSymptom(Box::new(SymptomLink {
                rule: f.rule.clone(),
                target: f.target.clone(),
                customer: Customer::of_target(self.inventory, &f.target),
                reason,
                evidence: Some(evidence),
                same_fault,
                informed: false,
            })),
        }
    }

    /// What `event` does, at wall-clock time `now`.
    pub fn on_event(&self, event: &RuleEvent, now: Millis) -> Action {
        match event {
            RuleEvent::Firing(f) => {
                if let Some(t) = self.latest(&f.rule, &f.target) {
                    if t.state.is_active() && t.condition_cleared_at_ms.is_none() {
                        return Action::Nothing {
                            why: format!("already open as #{}", t.id),
                        };
                    }
                    if t.state.is_active() || t.reopens(self.policy, now) {
                        return Action::Apply {
                            ticket: t.id,
                            command: Command::Refire,
                        };
                    }
                }
                if let Some(t) = self.symptom_ticket(&f.rule, &f.target) {
                    return Action::Nothing {
                        why: format!("already a symptom of #{}", t.id),
                    };
                }
                let new = NewIncident {
                    rule: f.rule.clone(),
                    target: f.target.clone(),
                    value: f.value,
                    started_at_ms: f.started_at_ms,
                    fired_at_ms: f.fired_at_ms,
                    correlate: f.correlate,
                    same_fault: f.same_fault.clone(),
                    labels: f.labels.clone(),
                };
                if let Some(t) = self.rejoins(&f.rule, &f.target, now) {
                    let reason = format!(
                        "{} {} again within the re-open window of #{} (resolved {}), which it \
                         had joined as the same fault",
                        f.target,
                        f.rule,
                        t.id,
                        format_time(t.resolved_at_ms.unwrap_or(now))
                    );
                    let evidence = Evidence {
                        related: Some(related(t)),
                        ..Evidence::of(&new)
                    };
                    return self.link(t.id, f, reason, evidence, Some(f.severity));
                }
                let known = known_incidents(self.tickets);
                let ctx = Context {
                    inventory: self.inventory,
                    incidents: &known,
                    last_seen_ms: self.last_seen_ms,
                    correlation_window_ms: self.correlation_window_ms,
                };
                let mut attribution = attribute(&new, &ctx);
                // A cause whose ticket is over (resolved within the correlation window) cannot
                // take the incident in: judged again against the active tickets only.
                let joinable = |root: u64, same_fault: bool| {
                    self.tickets.iter().any(|t| {
                        t.id == root
                            && (t.state.is_active() || (same_fault && t.reopens(self.policy, now)))
                    })
                };
                let stale = match attribution.role {
                    Role::Symptom(root) => !joinable(root, false),
                    Role::SameFault(root) => !joinable(root, true),
                    Role::Root => false,
                };
                if stale {
                    let active: Vec<KnownIncident> = known
                        .iter()
                        .filter(|k| joinable(k.id, false))
                        .cloned()
                        .collect();
                    attribution = attribute(
                        &new,
                        &Context {
                            incidents: &active,
                            ..ctx
                        },
                    );
                }
                let (reason, evidence) = (attribution.reason.clone(), attribution.evidence.clone());
                match attribution.role {
                    Role::SameFault(root) => self.link(root, f, reason, evidence, Some(f.severity)),
                    Role::Symptom(root) => self.link(root, f, reason, evidence, None),
                    Role::Root => Action::Open {
                        ticket: Box::new(NewTicket {
                            rule: f.rule.clone(),
                            target: f.target.clone(),
                            summary: f.summary.clone(),
                            description: f.description.clone(),
                            severity: f.severity,
                            tag: Some(attribution.tag),
                            reason: attribution.reason.clone(),
                            evidence: Some(attribution.evidence.clone()),
                            customers: Customer::of_target(self.inventory, &f.target)
                                .into_iter()
                                .collect(),
                            started_at_ms: f.started_at_ms,
                            opened_by: SYSTEM.to_string(),
                            channel: crate::ticket::Channel::Monitoring,
                            pages: true,
                            reporter: None,
                        }),
                        attribution: Box::new(attribution),
                    },
                }
            }
            RuleEvent::Resolved(r) => {
                if let Some(t) = self.symptom_ticket(&r.rule, &r.target) {
                    return Action::Apply {
                        ticket: t.id,
                        command: Command::SymptomCleared {
                            rule: r.rule.clone(),
                            target: r.target.clone(),
                        },
                    };
                }
                match self.latest(&r.rule, &r.target) {
                    Some(t) if t.state != TicketState::Closed => Action::Apply {
                        ticket: t.id,
                        command: Command::ConditionCleared,
                    },
                    _ => Action::Nothing {
                        why: format!("no ticket for {} on {}", r.rule, r.target),
                    },
                }
            }
        }
    }
}

/// Ticket `t`'s own incident, as evidence names it.
fn related(t: &Ticket) -> RelatedIncident {
    RelatedIncident {
        id: t.id,
        rule: t.rule.clone(),
        target: t.target.clone(),
        started_at_ms: t.started_at_ms,
    }
}

/// After the collector created the ticket `root` for a root incident that adopts `adopted`: each
/// adopted ticket is merged into `root` ([`Command::Merge`]: closed without a resolution, as the
/// fault goes on there) and joins it as a symptom, its reason naming the dependency chain and its
/// evidence its own incident's, the chain and `root` added; the adopted ticket's own active
/// symptoms move along. Customers the adopted ticket already told are not told again.
pub fn adopt_actions(inventory: &Inventory, root: &Ticket, adopted: &[&Ticket]) -> Vec<Action> {
    let mut actions = Vec::new();
    for t in adopted {
        let chain = inventory
            .upstream(&t.target)
            .into_iter()
            .find(|path| path.last() == Some(&root.target))
            .unwrap_or_else(|| vec![t.target.clone(), root.target.clone()]);
        let reason = format!(
            "{} depends on {} ({}), whose {} started within the correlation window of its {}: \
             adopted from #{}; symptom of #{}, tagged {}",
            t.target,
            root.target,
            chain.join(" → "),
            root.rule,
            t.rule,
            t.id,
            root.id,
            crate::inventory::tag_label(root.tag)
        );
        let evidence = t.evidence.clone().map(|e| Evidence {
            chain,
            related: Some(related(root)),
            ..e
        });
        let told = |target: &str| {
            Customer::of_target(inventory, target).map(|c| {
                let informed = t.customers.iter().any(|k| k.department == c.department);
                (c, informed)
            })
        };
        let link = |rule: &str, target: &str, reason: String, evidence: Option<Evidence>| {
            let (customer, informed) = told(target).map_or((None, false), |(c, i)| (Some(c), i));
            Action::Apply {
                ticket: root.id,
                command: Command::LinkSymptom(Box::new(SymptomLink {
                    rule: rule.to_string(),
                    target: target.to_string(),
                    customer,
                    reason,
                    evidence,
                    same_fault: None,
                    informed,
                })),
            }
        };
        actions.push(Action::Apply {
            ticket: t.id,
            command: Command::Merge {
                into: root.id,
                reason: reason.clone(),
            },
        });
        if t.condition_cleared_at_ms.is_none() {
            actions.push(link(&t.rule, &t.target, reason, evidence));
        }
        for s in t.symptoms.iter().filter(|s| s.cleared_at_ms.is_none()) {
            let why = format!(
                "symptom of #{} ({} on {}), which joined #{} as a symptom",
                t.id, t.rule, t.target, root.id
            );
            actions.push(link(&s.rule, &s.target, why, None));
        }
    }
    actions
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::Evaluator;
    use crate::inventory::Owner;
    use crate::rules::{RuleSet, Severity};
    use crate::ticket::Change;
    use faultline_wire::config_file::ConfigSource;
    use faultline_wire::{Sample, SampleKind};
    use std::path::Path;

    const MIN: Millis = 60_000;

    /// A tiny in-memory collector: evaluator → desk → tickets, counting pages.
    struct World {
        inventory: Inventory,
        eval: Evaluator,
        tickets: Vec<Ticket>,
        last_seen: BTreeMap<String, Millis>,
        pages: usize,
        log: Vec<String>,
    }

    impl World {
        fn new() -> Self {
            let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
            let inventory =
                Inventory::load(&ConfigSource::read(&dir.join("testdata/inventory.toml")).unwrap())
                    .unwrap();
            let rules =
                RuleSet::from_sources(&[
                    ConfigSource::read(&dir.join("rules/default.toml")).unwrap()
                ])
                .unwrap();
            Self {
                inventory,
                eval: Evaluator::new(rules),
                tickets: Vec::new(),
                last_seen: BTreeMap::new(),
                pages: 0,
                log: Vec::new(),
            }
        }

        fn sample(
            &mut self,
            metric: &str,
            target: &str,
            labels: &[(&str, &str)],
            value: f64,
            ts: Millis,
        ) {
            let sample = Sample {
                metric: metric.into(),
                target: target.into(),
                labels: labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                value,
                ts_ms: ts,
                kind: SampleKind::State,
            };
            self.last_seen.insert(target.into(), ts);
            for event in self.eval.observe("agent-1", &sample) {
                let policy = TicketPolicy::default();
                let desk = Desk {
                    inventory: &self.inventory,
                    tickets: &self.tickets,
                    last_seen_ms: &self.last_seen,
                    correlation_window_ms: 5 * MIN,
                    policy: &policy,
                };
                let action = desk.on_event(&event, ts);
                self.act(action, ts);
            }
        }

        fn act(&mut self, action: Action, ts: Millis) {
            let policy = TicketPolicy::default();
            match action {
                Action::Open {
                    ticket,
                    attribution,
                } => {
                    let id = self.tickets.len() as u64 + 1;
                    self.log.push(format!(
                        "open #{id} {} {} tag={}",
                        ticket.rule,
                        ticket.target,
                        crate::inventory::tag_label(ticket.tag)
                    ));
                    assert!(attribution.pages());
                    self.pages += 1;
                    let root = Ticket::open(id, *ticket, &policy, ts).0;
                    self.tickets.push(root.clone());
                    let adopted: Vec<Ticket> = self
                        .tickets
                        .iter()
                        .filter(|t| attribution.adopt.contains(&t.id))
                        .cloned()
                        .collect();
                    for action in
                        adopt_actions(&self.inventory, &root, &adopted.iter().collect::<Vec<_>>())
                    {
                        self.act(action, ts);
                    }
                }
                Action::Apply { ticket, command } => {
                    let t = self.tickets.iter_mut().find(|t| t.id == ticket).unwrap();
                    let (next, entries) = t.apply(command, &policy, ts).unwrap();
                    *t = next;
                    for e in entries {
                        if matches!(
                            e.change,
                            Change::SeverityRaised { .. }
                                | Change::Reopened {
                                    flapping: false,
                                    ..
                                }
                        ) {
                            self.pages += 1;
                        }
                        let json = serde_json::to_value(&e.change).unwrap();
                        self.log
                            .push(format!("#{ticket} {}", json["type"].as_str().unwrap()));
                    }
                }
                Action::Nothing { why } => self.log.push(format!("nothing: {why}")),
            }
        }
    }

    #[test]
    fn carrier_uplink_down_with_customer_vms_behind_it_pages_once() {
        let mut w = World::new();
        let wan = [("ifname", "Te0/0/0"), ("link_role", "carrier")];
        for ts in [0, MIN] {
            w.sample("faultline_snmp_up", "edge1", &[], 1.0, ts);
            w.sample("faultline_snmp_if_oper_status", "edge1-wan", &wan, 1.0, ts);
            for vm in ["vm-1", "vm-2"] {
                w.sample("faultline_snmp_up", vm, &[], 1.0, ts);
            }
        }
        // The carrier drops the line at 2m; our edge router keeps answering.
        w.sample("faultline_snmp_up", "edge1", &[], 1.0, 2 * MIN);
        w.sample(
            "faultline_snmp_if_oper_status",
            "edge1-wan",
            &wan,
            2.0,
            2 * MIN,
        );
        for ts in [2 * MIN, 3 * MIN, 4 * MIN] {
            for vm in ["vm-1", "vm-2"] {
                w.sample("faultline_snmp_up", vm, &[], 0.0, ts);
            }
        }
        // The line comes back at 5m, the VMs right after.
        w.sample(
            "faultline_snmp_if_oper_status",
            "edge1-wan",
            &wan,
            1.0,
            5 * MIN,
        );
        for vm in ["vm-1", "vm-2"] {
            w.sample("faultline_snmp_up", vm, &[], 1.0, 5 * MIN + 1);
        }
        assert_eq!(
            w.log,
            [
                "open #1 CarrierLinkLoss edge1-wan tag=carrier",
                "#1 symptom_linked",
                "#1 symptom_linked",
                "#1 resolved",
                "#1 symptom_cleared",
                "#1 symptom_cleared",
            ]
        );
        assert_eq!(w.pages, 1);
        let t = &w.tickets[0];
        assert_eq!(t.tag, Some(Owner::Carrier));
        assert!(t.reason.contains("ACME-SH-0042"), "{}", t.reason);
        assert_eq!(t.customers.len(), 1, "finance is affected through its VMs");
        let reasons = link_reasons(t);
        assert_eq!(reasons.len(), 2);
        assert!(
            reasons.iter().all(|r| r
                .contains("→ host-1 → tor1 → core1 → edge1-wan), which has CarrierLinkLoss since")
                && r.ends_with("symptom of #1, tagged carrier")),
            "the dependency chain: {reasons:?}"
        );
        assert!(
            t.callback_due_ms.is_some(),
            "customer-affecting: call-back planned"
        );
    }

    #[test]
    fn flapping_interface_reopens_one_ticket_and_reports_flapping() {
        let mut w = World::new();
        let port = [("ifname", "Gi1/0/1")];
        for (i, value) in [1.0, 2.0, 1.0, 2.0, 1.0, 2.0].into_iter().enumerate() {
            w.sample(
                "faultline_snmp_if_oper_status",
                "tor1",
                &port,
                value,
                i as Millis * MIN,
            );
        }
        assert_eq!(
            w.log,
            [
                "open #1 InterfaceDown tor1 tag=platform",
                "#1 resolved",
                "#1 reopened",
                "#1 resolved",
                "#1 reopened",
                "#1 flapping_started"
            ]
        );
        // Pages: the opening and the first re-open; the second re-open reports flapping.
        assert_eq!(
            (w.tickets.len(), w.pages, w.tickets[0].reopen_count),
            (1, 2, 2)
        );
        assert!(w.tickets[0].flapping_since_ms.is_some());
    }

    #[test]
    fn a_failure_after_its_upstream_ticket_resolved_opens_its_own_ticket() {
        let mut w = World::new();
        let port = [("ifname", "Gi1/0/1")];
        for (value, ts) in [(1.0, 0), (2.0, MIN / 2), (1.0, MIN)] {
            w.sample("faultline_snmp_if_oper_status", "tor1", &port, value, ts);
        }
        for ts in [2 * MIN, 3 * MIN] {
            w.sample("faultline_snmp_up", "host-1", &[], 0.0, ts);
        }
        // tor1's ticket is resolved (inside the correlation window): host-1 cannot join it,
        // and is not lost either.
        assert_eq!(
            w.log,
            [
                "open #1 InterfaceDown tor1 tag=platform",
                "#1 resolved",
                "open #2 DeviceUnreachable host-1 tag=platform",
            ]
        );
    }

    #[test]
    fn adoption_turns_an_earlier_root_into_a_symptom() {
        let mut w = World::new();
        let wan = [("ifname", "Te0/0/0"), ("link_role", "carrier")];
        w.sample("faultline_snmp_if_oper_status", "edge1-wan", &wan, 1.0, 0);
        for ts in [0, MIN, 2 * MIN] {
            w.sample("faultline_snmp_up", "edge1", &[], 1.0, ts);
        }
        // vm-1's poll notices first; the uplink's port status arrives a minute later.
        for (value, ts) in [(1.0, 0), (0.0, MIN), (0.0, 2 * MIN)] {
            w.sample("faultline_snmp_up", "vm-1", &[], value, ts);
        }
        w.sample(
            "faultline_snmp_if_oper_status",
            "edge1-wan",
            &wan,
            2.0,
            2 * MIN + 1,
        );
        w.sample("faultline_snmp_up", "vm-1", &[], 1.0, 3 * MIN);
        assert_eq!(
            w.log,
            [
                "open #1 DeviceUnreachable vm-1 tag=customer",
                "open #2 CarrierLinkLoss edge1-wan tag=carrier",
                "#1 merged",
                "#2 symptom_linked",
                "#2 symptom_cleared",
            ]
        );
        // Merged, not resolved: closed with no resolution and no call-back of its own.
        let t1 = &w.tickets[0];
        assert_eq!(t1.state, TicketState::Closed);
        assert!(t1.resolved_at_ms.is_none() && t1.callback_due_ms.is_none());
        assert!(
            !t1.timeline
                .iter()
                .any(|e| matches!(e.change, Change::Resolved { .. }))
        );
        let Change::SymptomLinked {
            reason,
            evidence: Some(evidence),
            announce_to,
            ..
        } = &w.tickets[1].timeline[1].change
        else {
            panic!("{:?}", w.tickets[1].timeline);
        };
        assert!(
            reason.starts_with(
                "vm-1 depends on edge1-wan (vm-1 → host-1 → tor1 → core1 → edge1-wan), whose \
                 CarrierLinkLoss started within the correlation window of its DeviceUnreachable: \
                 adopted from #1; symptom of #2, tagged carrier"
            ),
            "{reason}"
        );
        assert_eq!(
            (evidence.rule.as_str(), evidence.chain.len()),
            ("DeviceUnreachable", 5)
        );
        assert_eq!(evidence.related.as_ref().map(|r| r.id), Some(2));
        assert_eq!(w.tickets[1].customers.len(), 1);
        // finance heard of the fault from #1 already: the link does not tell it again.
        assert_eq!(announce_to, &None);
    }

    /// Samples of the inlet sensors in room r2, (target, °C) at `minute`.
    fn room(w: &mut World, minute: Millis, temperatures: &[(&str, f64)]) {
        for (target, celsius) in temperatures {
            w.sample(
                "faultline_snmp_env_temperature_celsius",
                target,
                &[("sensor", "inlet")],
                *celsius,
                minute * MIN,
            );
        }
    }

    /// The reasons of the ticket's `symptom_linked` entries, in order.
    fn link_reasons(t: &Ticket) -> Vec<String> {
        t.timeline
            .iter()
            .filter_map(|e| match &e.change {
                Change::SymptomLinked {
                    reason, evidence, ..
                } => {
                    assert!(evidence.is_some(), "{reason}");
                    Some(reason.clone())
                }
                _ => None,
            })
            .collect()
    }

    #[test]
    fn room_warming_past_critical_is_one_ticket_raised_and_paged_twice() {
        let mut w = World::new();
        room(&mut w, 0, &[("temp-1", 25.0), ("temp-2", 25.0)]);
        room(&mut w, 1, &[("temp-1", 31.0), ("temp-2", 25.0)]);
        room(&mut w, 2, &[("temp-1", 32.0), ("temp-2", 31.0)]);
        room(&mut w, 3, &[("temp-1", 33.0), ("temp-2", 32.0)]); // high at temp-1
        room(&mut w, 4, &[("temp-1", 36.0), ("temp-2", 32.0)]); // high at temp-2
        room(&mut w, 5, &[("temp-1", 38.5), ("temp-2", 32.0)]); // critical at temp-1
        room(&mut w, 6, &[("temp-1", 31.0)]); // critical clears, high holds
        room(&mut w, 7, &[("temp-1", 36.0)]);
        room(&mut w, 8, &[("temp-1", 37.0)]); // critical flaps back
        room(&mut w, 9, &[("temp-1", 25.0), ("temp-2", 25.0)]); // cooling restored
        assert_eq!(
            w.log,
            [
                "open #1 RoomTemperatureHigh temp-1 tag=platform",
                "#1 symptom_linked",
                "#1 symptom_linked",
                "#1 severity_raised",
                "#1 symptom_cleared",
                "#1 symptom_linked",
                "#1 condition_cleared",
                "#1 symptom_cleared",
                "#1 symptom_cleared",
                "#1 resolved",
            ]
        );
        assert_eq!((w.tickets.len(), w.pages), (1, 2), "open and raise");
        let t = &w.tickets[0];
        assert_eq!((t.severity, t.state), (Severity::P1, TicketState::Resolved));
        let reasons = link_reasons(t);
        assert!(
            reasons[0].starts_with(
                "RoomTemperatureHigh already seen in room r2 by temp-1 since 1970-01-01 00:01:00 UTC; same fault as #1"
            ),
            "{reasons:?}"
        );
        assert!(
            reasons[1].starts_with(
                "temp-1 RoomTemperatureCritical while it has RoomTemperatureHigh since"
            ),
            "{reasons:?}"
        );
        let Change::SymptomLinked {
            evidence: Some(evidence),
            ..
        } = &t.timeline[2].change
        else {
            panic!("{:?}", t.timeline[2]);
        };
        assert_eq!(
            (
                evidence.rule.as_str(),
                evidence.value,
                evidence.started_at_ms
            ),
            ("RoomTemperatureCritical", 38.5, 4 * MIN)
        );
        assert_eq!(evidence.related.as_ref().map(|r| r.id), Some(1));

        // Within the re-open window the critical level comes back first: it re-opens the ticket.
        room(&mut w, 10, &[("temp-1", 36.0)]);
        room(&mut w, 11, &[("temp-1", 37.0)]);
        assert_eq!(w.log[10..], ["#1 reopened", "#1 symptom_linked"]);
        assert_eq!(w.tickets.len(), 1);
        assert!(
            link_reasons(&w.tickets[0])
                .last()
                .is_some_and(|r| r.contains("again within the re-open window of #1")),
            "{:?}",
            w.tickets[0].timeline
        );
    }

    #[test]
    fn critical_first_then_high_stays_one_ticket_until_both_clear() {
        let mut w = World::new();
        room(&mut w, 0, &[("temp-1", 25.0)]);
        room(&mut w, 1, &[("temp-1", 36.0)]);
        room(&mut w, 2, &[("temp-1", 37.0)]); // critical
        room(&mut w, 3, &[("temp-1", 38.0)]); // high joins, no raise
        room(&mut w, 4, &[("temp-1", 31.0)]); // critical clears, high holds: stays open
        let t = &w.tickets[0];
        assert_eq!((t.severity, t.state), (Severity::P1, TicketState::Open));
        room(&mut w, 5, &[("temp-1", 36.0)]);
        room(&mut w, 6, &[("temp-1", 37.0)]); // critical holds again: it no longer waits on high
        room(&mut w, 7, &[("temp-1", 25.0)]); // high clears first, then critical resolves
        assert_eq!(
            w.log,
            [
                "open #1 RoomTemperatureCritical temp-1 tag=platform",
                "#1 symptom_linked",
                "#1 condition_cleared",
                "#1 symptom_cleared",
                "#1 resolved",
            ]
        );
        assert_eq!((w.tickets.len(), w.pages), (1, 1));
        // The critical level flaps back within the re-open window: the same ticket re-opens,
        // and the high level joins it again.
        room(&mut w, 8, &[("temp-1", 36.0)]);
        room(&mut w, 9, &[("temp-1", 37.0)]);
        room(&mut w, 10, &[("temp-1", 38.0)]);
        assert_eq!(w.log[5..], ["#1 reopened", "#1 symptom_linked"]);
        assert_eq!(w.tickets.len(), 1);
    }
}
