//! Order independence, as a property: for a given set of facts, the final tickets, their tags, the
//! pages and every message a customer receives are the same whatever order and poll phase the
//! facts arrive in.
//!
//! The facts are faults in four fixture topologies (independent of each other: the carrier
//! circuit's customers hang off core1, the hypervisor and the firewall off core2) — a carrier circuit with our edge and the
//! customer systems behind it, a room with several sensors, a hypervisor and its VMs, a firewall
//! in the path of a customer system — observed by polls with random intervals (10–90 s) and
//! phases, delivered with random delays. Every sample goes through the collector's own pure core
//! ([`Dispatch`]: the shipped rule set, settling, the desk, adoption), tickets through the real
//! state machine, and notifications through [`notifications`]. Ticket timers (escalation,
//! progress) are left out: they depend on wall time, not on the order of facts.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use faultline_incidents::dispatch::{Book, Dispatch, Env, Note};
use faultline_incidents::maintenance::Maintenance;
use faultline_incidents::settle::SettlePolicy;
use faultline_incidents::{
    Change, Command, Evaluator, Inventory, Millis, NewTicket, Owner, RuleSet, Ticket, TicketPolicy,
    TicketState,
};
use faultline_notify::from_ticket::notifications;
use faultline_notify::model::Kind;
use faultline_wire::config_file::ConfigSource;
use faultline_wire::{Sample, SampleKind};
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

const S: Millis = 1_000;
const MIN: Millis = 60 * S;

const INVENTORY: &str = r#"
[[sites]]
id = "dc1"

[[rooms]]
id = "r1"
site = "dc1"

[[rooms]]
id = "r2"
site = "dc1"

[[departments]]
id = "finance"
contacts = [{ name = "Li Wei", email = "li.wei@finance.example" }]

[[departments]]
id = "health"
contacts = [{ name = "Wang Fang", email = "wang.fang@health.example" }]

[[departments]]
id = "education"
contacts = [{ name = "Zhao Min", email = "zhao.min@edu.example" }]

[[departments]]
id = "tax"
contacts = [{ name = "Chen Jie", email = "chen.jie@tax.example" }]

[[targets]]
id = "acme-circuit"
kind = "link"
owner = "carrier"
carrier = "ACME Telecom"
circuit_id = "ACME-SH-0042"

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
device = "edge1"
ifname = "Te0/0/0"
labels = { link_role = "carrier" }
depends_on = ["edge1", "acme-circuit"]

[[targets]]
id = "core1"
kind = "device"
room = "r1"
owner = "platform"
depends_on = ["edge1-wan"]

[[targets]]
id = "host-1"
kind = "host"
room = "r1"
owner = "platform"
depends_on = ["core1"]

[[targets]]
id = "vm-1"
kind = "vm"
owner = "customer"
department = "finance"
depends_on = ["host-1"]

[[targets]]
id = "vm-2"
kind = "vm"
owner = "customer"
department = "finance"
depends_on = ["host-1"]

[[targets]]
id = "vm-3"
kind = "vm"
owner = "customer"
department = "health"
depends_on = ["host-1"]

[[targets]]
id = "gw-1"
kind = "device"
room = "r2"
owner = "platform"

[[targets]]
id = "temp-1"
kind = "sensor"
room = "r2"
owner = "platform"
depends_on = ["gw-1"]

[[targets]]
id = "temp-2"
kind = "sensor"
room = "r2"
owner = "platform"
depends_on = ["gw-1"]

[[targets]]
id = "temp-3"
kind = "sensor"
room = "r2"
owner = "platform"
depends_on = ["gw-1"]

[[targets]]
id = "core2"
kind = "device"
room = "r1"
owner = "platform"

[[targets]]
id = "hv-1"
kind = "host"
room = "r1"
owner = "platform"
depends_on = ["core2"]

[[targets]]
id = "vm-a"
kind = "vm"
owner = "customer"
department = "education"
depends_on = ["hv-1"]

[[targets]]
id = "vm-b"
kind = "vm"
owner = "customer"
department = "education"
depends_on = ["hv-1"]

[[targets]]
id = "fw-1"
kind = "device"
room = "r1"
owner = "platform"
depends_on = ["core2"]

[[targets]]
id = "vm-c"
kind = "vm"
owner = "customer"
department = "tax"
depends_on = ["fw-1"]
"#;

/// One series a poll of a target reads: metric, labels, healthy value, faulty value.
struct Series {
    metric: &'static str,
    labels: &'static [(&'static str, &'static str)],
    good: f64,
    bad: f64,
    kind: SampleKind,
}

const UP: Series = Series {
    metric: "faultline_snmp_up",
    labels: &[],
    good: 1.0,
    bad: 0.0,
    kind: SampleKind::Gauge,
};
const WAN: Series = Series {
    metric: "faultline_snmp_if_oper_status",
    labels: &[("ifname", "Te0/0/0"), ("link_role", "carrier")],
    good: 1.0,
    bad: 2.0,
    kind: SampleKind::State,
};
const TEMPERATURE: Series = Series {
    metric: "faultline_snmp_env_temperature_celsius",
    labels: &[("sensor", "inlet")],
    good: 24.0,
    bad: 33.0,
    kind: SampleKind::Gauge,
};

/// A fault: which series of which targets go bad — the first is the cause, the others follow it
/// each after a small lag of its own.
struct Fault {
    name: &'static str,
    affected: &'static [(&'static str, &'static Series)],
}

const FAULTS: [Fault; 4] = [
    Fault {
        name: "carrier circuit lost",
        affected: &[
            ("edge1-wan", &WAN),
            ("vm-1", &UP),
            ("vm-2", &UP),
            ("vm-3", &UP),
        ],
    },
    Fault {
        name: "room r2 warming",
        affected: &[
            ("temp-1", &TEMPERATURE),
            ("temp-2", &TEMPERATURE),
            ("temp-3", &TEMPERATURE),
        ],
    },
    Fault {
        name: "hypervisor down",
        affected: &[("hv-1", &UP), ("vm-a", &UP), ("vm-b", &UP)],
    },
    Fault {
        name: "firewall down",
        affected: &[("fw-1", &UP), ("vm-c", &UP)],
    },
];

/// What each target's poll reads when healthy (the device targets report `up`; the edge port
/// and the sensors report their own series, polled with their device).
fn polled_series(target: &str) -> &'static Series {
    match target {
        "edge1-wan" => &WAN,
        t if t.starts_with("temp-") => &TEMPERATURE,
        _ => &UP,
    }
}

/// Targets polled, and which poll (agent schedule) each belongs to: a port is polled with its
/// device.
const POLLED: [(&str, &str); 17] = [
    ("edge1", "edge1"),
    ("edge1-wan", "edge1"),
    ("core1", "core1"),
    ("core2", "core2"),
    ("host-1", "host-1"),
    ("vm-1", "vm-1"),
    ("vm-2", "vm-2"),
    ("vm-3", "vm-3"),
    ("gw-1", "gw-1"),
    ("temp-1", "gw-1"),
    ("temp-2", "gw-1"),
    ("temp-3", "gw-1"),
    ("hv-1", "hv-1"),
    ("vm-a", "vm-a"),
    ("vm-b", "vm-b"),
    ("fw-1", "fw-1"),
    ("vm-c", "vm-c"),
];

/// Tickets kept in memory, with every page and customer message counted.
#[derive(Default)]
struct MemoryBook {
    policy: TicketPolicy,
    open: Vec<Ticket>,
    closed: Vec<Ticket>,
    next_id: u64,
    pages: usize,
    /// (department, what) → count; what is "opened", "resolved" or "reopened".
    customer_messages: BTreeMap<(String, &'static str), usize>,
}

impl MemoryBook {
    /// Counts the pages and customer messages of `ticket`'s entries from `from` on.
    fn account(&mut self, ticket: &Ticket, from: usize) {
        for entry in &ticket.timeline[from..] {
            if entry.change.pages() {
                self.pages += 1;
            }
        }
        for n in notifications(ticket, from, &[]) {
            let change = &ticket.timeline[n.occurrence as usize].change;
            let what = match (n.kind, change) {
                (Kind::Trigger, Change::Opened { .. }) => "opened",
                (Kind::Progress, Change::SymptomLinked { .. }) => "opened",
                (Kind::Reopen, _) => "reopened",
                (Kind::Resolve, _) => "resolved",
                _ => continue,
            };
            for c in &ticket.customers {
                let told = c
                    .contacts
                    .iter()
                    .any(|k| n.contacts.iter().any(|m| m.email == k.email));
                if told {
                    *self
                        .customer_messages
                        .entry((c.department.clone(), what))
                        .or_default() += 1;
                }
            }
        }
    }

    fn keep(&mut self, ticket: Ticket) {
        self.open.retain(|t| t.id != ticket.id);
        if ticket.state == TicketState::Closed {
            self.closed.push(ticket);
        } else {
            self.open.push(ticket);
        }
    }
}

impl Book for MemoryBook {
    fn tickets(&self) -> &[Ticket] {
        &self.open
    }

    fn create(&mut self, new: NewTicket, now: Millis) -> Option<Ticket> {
        self.next_id += 1;
        let (ticket, _) = Ticket::open(self.next_id, new, &self.policy, now);
        self.account(&ticket, 0);
        self.keep(ticket.clone());
        Some(ticket)
    }

    fn apply(&mut self, id: u64, command: Command, now: Millis) -> Option<Ticket> {
        let current = self.open.iter().find(|t| t.id == id)?;
        let from = current.timeline.len();
        let (next, _) = current.apply(command, &self.policy, now).ok()?;
        self.account(&next, from);
        self.keep(next.clone());
        Some(next)
    }

    fn note(&mut self, _: Note<'_>) {}
}

/// A ticket as the property compares it: tag, state, every fingerprint it holds (its own and
/// its symptoms'), its customers. Which of one fault's incidents came first may differ.
type TicketSignature = (
    Option<Owner>,
    &'static str,
    BTreeSet<(String, String)>,
    BTreeSet<String>,
);

/// The outcome the property compares.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    tickets: BTreeSet<TicketSignature>,
    pages: usize,
    customer_messages: BTreeMap<(String, &'static str), usize>,
}

/// One run: when each fault starts and each target's lag, every poll's interval and phase, and
/// the delivery delay of each poll.
#[derive(Debug, Clone)]
struct Run {
    /// Which faults happen.
    faults: Vec<bool>,
    /// Start of each fault, after the warm-up.
    starts: Vec<Millis>,
    /// Lag of each affected series after its fault's start.
    lags: Vec<Vec<Millis>>,
    /// Poll interval and phase per poll schedule.
    schedules: BTreeMap<&'static str, (Millis, Millis)>,
    /// Seed of the delivery delays.
    delays: Vec<Millis>,
}

const WARM_UP: Millis = 5 * MIN;
const FAULT_LENGTH: Millis = 12 * MIN;
const END: Millis = WARM_UP + 3 * MIN + FAULT_LENGTH + 6 * MIN;

fn run_strategy() -> impl Strategy<Value = Run> {
    let schedules: Vec<&'static str> = {
        let mut s: Vec<&str> = POLLED.iter().map(|(_, s)| *s).collect();
        s.sort_unstable();
        s.dedup();
        s
    };
    let n = schedules.len();
    (
        proptest::collection::vec(any::<bool>(), FAULTS.len()),
        proptest::collection::vec(0..3 * MIN, FAULTS.len()),
        proptest::collection::vec(proptest::collection::vec(0..8 * S, 4), FAULTS.len()),
        proptest::collection::vec((10..=90i64, 0..1000i64), n),
        proptest::collection::vec(0..3 * S, 64),
    )
        .prop_map(move |(faults, starts, lags, intervals, delays)| Run {
            faults,
            starts,
            lags,
            schedules: schedules
                .iter()
                .zip(intervals)
                .map(|(s, (secs, phase))| (*s, (secs * S, phase * secs * S / 1000)))
                .collect(),
            delays,
        })
}

/// Whether `target`'s `series` reads bad at `t` in `run`.
fn bad_at(run: &Run, target: &str, t: Millis) -> bool {
    FAULTS.iter().enumerate().any(|(i, fault)| {
        run.faults[i]
            && fault.affected.iter().enumerate().any(|(j, (affected, _))| {
                let lag = if j == 0 {
                    0
                } else {
                    run.lags[i][j % run.lags[i].len()]
                };
                let from = WARM_UP + run.starts[i] + lag;
                *affected == target && t >= from && t < from + FAULT_LENGTH
            })
    })
}

/// Runs the facts of `run` through the dispatch in arrival order.
fn simulate(run: &Run) -> Outcome {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let inventory = Inventory::load(&ConfigSource::from_text(
        Path::new("inventory.toml"),
        INVENTORY.to_string(),
    ))
    .expect("fixture inventory");
    let rules =
        RuleSet::from_sources(&[
            ConfigSource::read(&dir.join("incidents/rules/default.toml")).expect("shipped rules"),
        ])
        .expect("shipped rules load");
    let maintenance = Maintenance::default();
    let mut book = MemoryBook::default();
    let env = Env {
        inventory: &inventory,
        policy: &book.policy.clone(),
        maintenance: &maintenance,
        correlation_window_ms: 5 * MIN,
    };
    let mut dispatch = Dispatch::new(Evaluator::new(rules), SettlePolicy::default());

    // Every poll, as a batch arriving at its time plus a delivery delay.
    let mut batches: Vec<(Millis, Millis, &str)> = Vec::new(); // (arrival, poll time, schedule)
    let mut k = 0;
    for (schedule, (interval, phase)) in &run.schedules {
        let mut t = *phase;
        while t < END {
            let delay = run.delays[k % run.delays.len()];
            k += 1;
            batches.push((t + delay, t, schedule));
            t += interval;
        }
    }
    batches.sort();
    let mut clock = 0;
    for (arrival, polled_at, schedule) in batches {
        // The stage's one-second tick between deliveries.
        while clock + S <= arrival {
            clock += S;
            dispatch.tick(&env, &mut book, clock);
        }
        let samples: Vec<Sample> = POLLED
            .iter()
            .filter(|(_, s)| *s == schedule)
            .map(|(target, _)| *target)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .map(|target| {
                let series = polled_series(target);
                Sample {
                    metric: series.metric.to_string(),
                    target: target.to_string(),
                    labels: series
                        .labels
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                    value: if bad_at(run, target, polled_at) {
                        series.bad
                    } else {
                        series.good
                    },
                    ts_ms: polled_at,
                    kind: series.kind,
                }
            })
            .collect();
        for sample in &samples {
            dispatch.observe(&env, &mut book, "agent-1", sample, arrival);
        }
        dispatch.release(&env, &mut book, arrival);
    }
    dispatch.tick(&env, &mut book, END + 30 * S);
    let tickets = book
        .open
        .iter()
        .chain(&book.closed)
        .filter(|t| {
            !t.timeline
                .iter()
                .any(|e| matches!(e.change, Change::Merged { .. }))
        })
        .map(|t| {
            let mut fingerprints: BTreeSet<(String, String)> = t
                .symptoms
                .iter()
                .map(|s| (s.rule.clone(), s.target.clone()))
                .collect();
            fingerprints.insert((t.rule.clone(), t.target.clone()));
            let customers = t.customers.iter().map(|c| c.department.clone()).collect();
            (t.tag, t.state.as_str(), fingerprints, customers)
        })
        .collect();
    Outcome {
        tickets,
        pages: book.pages,
        customer_messages: book.customer_messages,
    }
}

/// How many tickets, how many of each tag, and the customer messages per (department, what).
type Expected = (
    usize,
    BTreeMap<Option<Owner>, usize>,
    BTreeMap<(String, &'static str), usize>,
);

/// The outcome every run of the same faults must reach: one ticket per fault with its owner's
/// tag, one page each, each affected department told once that it started and once that it
/// ended.
fn expected(run: &Run) -> Expected {
    let mut tags = BTreeMap::new();
    let mut messages = BTreeMap::new();
    let mut count = 0;
    for (i, fault) in FAULTS.iter().enumerate() {
        if !run.faults[i] {
            continue;
        }
        count += 1;
        let tag = if fault.name == "carrier circuit lost" {
            Some(Owner::Carrier)
        } else {
            Some(Owner::Platform)
        };
        *tags.entry(tag).or_default() += 1;
        let departments: BTreeSet<&str> = fault
            .affected
            .iter()
            .filter_map(|(t, _)| match *t {
                "vm-1" | "vm-2" => Some("finance"),
                "vm-3" => Some("health"),
                "vm-a" | "vm-b" => Some("education"),
                "vm-c" => Some("tax"),
                _ => None,
            })
            .collect();
        for d in departments {
            messages.insert((d.to_string(), "opened"), 1);
            messages.insert((d.to_string(), "resolved"), 1);
        }
    }
    (count, tags, messages)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Any poll intervals, phases, lags and delivery delays: one ticket per fault with the right
    /// tag, one page per fault, each department told once of the start and once of the end —
    /// the same outcome as the same faults delivered in a fixed, tidy order.
    #[test]
    fn same_faults_same_tickets_pages_and_customer_messages(run in run_strategy()) {
        let got = simulate(&run);
        let (count, tags, messages) = expected(&run);
        let mut got_tags = BTreeMap::new();
        for (tag, state, fingerprints, _) in &got.tickets {
            *got_tags.entry(*tag).or_default() += 1;
            prop_assert_eq!(*state, TicketState::Resolved.as_str(), "{:?}", fingerprints);
        }
        prop_assert_eq!(got.tickets.len(), count, "{:#?}", got);
        prop_assert_eq!(got_tags, tags, "{:#?}", got);
        prop_assert_eq!(got.pages, count, "{:#?}", got);
        prop_assert_eq!(&got.customer_messages, &messages, "{:#?}", got);

        // The same faults polled in one tidy schedule (every 10 s, in phase, no delay).
        let mut tidy = run.clone();
        for schedule in tidy.schedules.values_mut() {
            *schedule = (10 * S, 0);
        }
        tidy.delays = vec![0];
        tidy.lags = vec![vec![0; 4]; FAULTS.len()];
        prop_assert_eq!(simulate(&tidy), got);
    }
}
