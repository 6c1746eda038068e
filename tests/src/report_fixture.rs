//! A ticket store seeded for the management report (store → report): twelve tickets of November
//! 2026 (UTC) covering every tag, severity and channel, plus one before and one after the month,
//! and follow-up tasks done and not done. Every figure of its report is worked out by hand in
//! [`EXPECTED_CSV`]; the report crate's fixture test and the e2e report test check against it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use faultline_incidents::followup::{FollowUp, FollowUpKind, FollowUpTask};
use faultline_incidents::ticket::{
    CarrierReport, Change, Channel, Customer, NewTicket, SYSTEM, Ticket, TicketPolicy, TicketState,
    TimelineEntry,
};
use faultline_incidents::{Inventory, Millis, Owner, Severity, SqliteStore, TicketStore};
use faultline_wire::config_file::ConfigSource;
use std::path::Path;
use std::time::Duration;

/// The inventory the fixture's tickets name: a router, a firewall, two customer VMs of two
/// departments and one carrier circuit.
pub const INVENTORY: &str = r#"
[[departments]]
id = "finance"
vip = true
contacts = [{ name = "Li Wei", email = "li.wei@finance.example" }]

[[departments]]
id = "hr"
contacts = [{ name = "Zhang Min", email = "zhang.min@hr.example" }]

[[targets]]
id = "core1"
kind = "device"
role = "router"
owner = "platform"

[[targets]]
id = "fw1"
kind = "device"
role = "firewall"
owner = "platform"

[[targets]]
id = "edge1-wan"
kind = "link"
owner = "platform"

[[targets]]
id = "vm-fin"
kind = "vm"
owner = "customer"
department = "finance"

[[targets]]
id = "vm-hr"
kind = "vm"
owner = "customer"
department = "hr"

[[circuits]]
id = "acme-0042"
carrier = "ACME Telecom"
circuit_id = "ACME-SH-0042"
a_end = "edge1-wan"
"#;

/// The fixture's period.
pub const PERIOD: &str = "2026-11";

/// When the report is made: 2026-12-07 00:00 UTC (the open ticket #10 lasts until then).
pub const AS_OF_MS: Millis = 1_796_601_600_000;

/// 2026-11-01 00:00 UTC.
const NOVEMBER_MS: Millis = 1_793_491_200_000;
const MIN: Millis = 60_000;
const DAY: Millis = 1_440 * MIN;

/// The parsed [`INVENTORY`].
pub fn inventory() -> Inventory {
    Inventory::load(&ConfigSource::from_text(
        Path::new("inventory.toml"),
        INVENTORY.to_string(),
    ))
    .unwrap()
}

/// One fixture ticket: (tag, severity, channel, target, departments, minutes to acknowledge,
/// minutes to resolve, respond breached, resolve breached, call-back: None / Some(done)).
type Row = (
    Owner,
    Severity,
    Channel,
    &'static str,
    &'static [&'static str],
    Option<Millis>,
    Option<Millis>,
    bool,
    bool,
    Option<bool>,
);

/// Ticket `i` (1-based) is opened on November `1 + i`, at midnight.
const TICKETS: [Row; 12] = {
    use Channel::*;
    use Owner::*;
    use Severity::*;
    [
        (
            Platform,
            P1,
            Monitoring,
            "core1",
            &[],
            Some(10),
            Some(60),
            false,
            false,
            None,
        ),
        (
            Platform,
            P2,
            Console,
            "fw1",
            &[],
            Some(20),
            Some(120),
            false,
            false,
            None,
        ),
        (
            Platform,
            P3,
            Api,
            "core1",
            &[],
            Some(30),
            Some(180),
            false,
            false,
            None,
        ),
        (
            Carrier,
            P1,
            Monitoring,
            "acme-0042",
            &["finance"],
            Some(10),
            Some(240),
            false,
            false,
            None,
        ),
        (
            Carrier,
            P2,
            Mailbox,
            "acme-0042",
            &[],
            Some(20),
            Some(60),
            false,
            false,
            None,
        ),
        (
            Customer,
            P2,
            Phone,
            "vm-fin",
            &["finance"],
            Some(10),
            Some(120),
            false,
            false,
            Some(true),
        ),
        (
            Customer,
            P3,
            WalkIn,
            "vm-hr",
            &["hr"],
            Some(30),
            Some(60),
            false,
            false,
            Some(false),
        ),
        (
            Customer,
            P4,
            Api,
            "vm-fin",
            &["finance"],
            Some(40),
            Some(300),
            false,
            true,
            None,
        ),
        (
            Platform,
            P1,
            Monitoring,
            "fw1",
            &[],
            Some(60),
            Some(180),
            true,
            false,
            None,
        ),
        (
            Customer,
            P3,
            Phone,
            "vm-hr",
            &["hr"],
            None,
            None,
            false,
            false,
            None,
        ),
        (
            Platform,
            P4,
            Console,
            "core1",
            &[],
            None,
            Some(120),
            false,
            false,
            None,
        ),
        (
            Carrier,
            P3,
            Monitoring,
            "acme-0042",
            &[],
            Some(30),
            Some(210),
            false,
            false,
            None,
        ),
    ]
};

fn entry(at_ms: Millis, who: &str, change: Change) -> TimelineEntry {
    TimelineEntry {
        at_ms,
        who: who.to_string(),
        change,
    }
}

/// A ticket as the state machine opens it, then acknowledged, resolved and called back at the
/// given times (fields and timeline set directly: the report reads only what is stored).
fn ticket(i: usize, row: &Row, opened_at_ms: Millis) -> Ticket {
    let (tag, severity, channel, target, departments, ack, resolve, respond_b, resolve_b, callback) =
        *row;
    let new = NewTicket {
        rule: format!("Rule{i}"),
        target: target.to_string(),
        summary: format!("fault {i} on {target}"),
        description: String::new(),
        severity,
        tag: Some(tag),
        reason: "fixture".into(),
        evidence: None,
        customers: Vec::new(),
        started_at_ms: opened_at_ms,
        opened_by: if channel == Channel::Monitoring {
            SYSTEM
        } else {
            "operator"
        }
        .into(),
        channel,
        pages: true,
        reporter: None,
    };
    let (mut t, _) = Ticket::open(0, new, &TicketPolicy::default(), opened_at_ms);
    t.customers = departments
        .iter()
        .map(|d| Customer {
            department: d.to_string(),
            ..Customer::default()
        })
        .collect();
    if tag == Owner::Carrier {
        // Reported to the carrier at once; the carrier answers when the ticket is acknowledged.
        let report = Box::new(CarrierReport {
            circuit: target.to_string(),
            carrier: "ACME Telecom".into(),
            circuit_id: "ACME-SH-0042".into(),
            a_end: "edge1-wan".into(),
            z_end: String::new(),
            contacts: Vec::new(),
            evidence: Vec::new(),
        });
        t.timeline.push(entry(
            opened_at_ms,
            SYSTEM,
            Change::CarrierReported { report },
        ));
        if let Some(ack) = ack {
            let answer = Change::CarrierResponded {
                reference: Some(format!("ACME-{i}")),
                note: String::new(),
            };
            t.timeline
                .push(entry(opened_at_ms + ack * MIN, "li.wei", answer));
        }
    }
    if let Some(ack) = ack {
        t.acknowledged_at_ms = Some(opened_at_ms + ack * MIN);
        t.state = TicketState::Acknowledged;
        t.timeline.push(entry(
            opened_at_ms + ack * MIN,
            "li.wei",
            Change::Acknowledged,
        ));
    }
    if let Some(resolve) = resolve {
        let at = opened_at_ms + resolve * MIN;
        t.resolved_at_ms = Some(at);
        t.state = TicketState::Resolved;
        let resolved = Change::Resolved {
            automatic: true,
            note: String::new(),
            flapping: false,
        };
        t.timeline.push(entry(at, SYSTEM, resolved));
        if let Some(done) = callback {
            t.callback_due_ms = Some(at + 60 * MIN);
            if done {
                let note = "customer confirmed".to_string();
                t.timeline.push(entry(
                    at + 90 * MIN,
                    "li.wei",
                    Change::CallbackRecorded { note },
                ));
            }
        }
    }
    t.respond_breached = respond_b;
    t.resolve_breached = resolve_b;
    t
}

fn task(department: &str, kind: FollowUpKind, due_at_ms: Millis, done: bool) -> FollowUpTask {
    let followup = FollowUp {
        department: department.to_string(),
        kind,
        due_at_ms,
    };
    let task = FollowUpTask::new(followup, Vec::new(), due_at_ms);
    if done {
        task.complete("li.wei", "visited", due_at_ms + DAY).unwrap()
    } else {
        task
    }
}

/// Seeds the store file at `path` with the fixture (creating it).
pub fn seed(path: &Path) {
    let mut store = SqliteStore::open(path).unwrap();
    // Outside the period: the last minute of October and the first of December.
    let mut outside = ticket(0, &TICKETS[0], NOVEMBER_MS - MIN);
    outside.rule = "Before".into();
    store.create(outside).unwrap();
    for (i, row) in (1..).zip(&TICKETS) {
        store
            .create(ticket(
                i,
                row,
                NOVEMBER_MS + i64::try_from(i).unwrap() * DAY,
            ))
            .unwrap();
    }
    let mut after = ticket(0, &TICKETS[1], NOVEMBER_MS + 30 * DAY);
    after.rule = "After".into();
    store.create(after).unwrap();
    let days = |n: u64| FollowUpKind::NewCustomer {
        after: Duration::from_secs(n * 86_400),
    };
    // finance first seen 2026-10-29, hr 2026-11-20; the dates below are due dates.
    let tasks = [
        task("finance", days(3), NOVEMBER_MS, true),
        task("finance", days(8), NOVEMBER_MS + 5 * DAY, true),
        task("finance", days(15), NOVEMBER_MS + 12 * DAY, false),
        task(
            "finance",
            FollowUpKind::Vip { period: 1 },
            NOVEMBER_MS + 27 * DAY,
            true,
        ),
        task("hr", days(3), NOVEMBER_MS + 22 * DAY, true),
        task("hr", days(8), NOVEMBER_MS + 27 * DAY, false),
        task("hr", days(15), NOVEMBER_MS + 34 * DAY, false),
    ];
    for task in &tasks {
        let pending = FollowUpTask {
            state: faultline_incidents::followup::TaskState::Pending,
            done: None,
            ..task.clone()
        };
        store.create_followup(&pending).unwrap();
        if task.done.is_some() {
            store.complete_followup(task).unwrap();
        }
    }
}

/// Seeds the store file at `path` with `count` tickets spread evenly over [`PERIOD`], cycling
/// through the fixture's twelve kinds (for the report benchmark; no follow-ups).
pub fn seed_many(path: &Path, count: usize) {
    let mut store = SqliteStore::open(path).unwrap();
    let step = 30 * DAY / i64::try_from(count.max(1)).unwrap();
    for i in 0..count {
        let row = &TICKETS[i % TICKETS.len()];
        store
            .create(ticket(
                i,
                row,
                NOVEMBER_MS + i64::try_from(i).unwrap() * step,
            ))
            .unwrap();
    }
}

/// The report of [`PERIOD`] for all departments as of [`AS_OF_MS`], worked out by hand.
///
/// Acknowledged: 10 tickets, 10+20+30+10+20+10+30+40+60+30 = 260 min → MTTA 26.0. Resolved: 11,
/// 60+120+180+240+60+120+60+300+180+120+210 = 1650 min → MTTR 150.0. Breached: #8 (resolve) and
/// #9 (respond) → SLA 10/12 = 83.3 %. finance (#4, #6, #8): MTTA 60/3 = 20.0, MTTR 660/3 = 220.0,
/// SLA 2/3; hr (#7, #10): MTTA 30.0, MTTR 60.0. Longest: #10 is open from Nov 11 to Dec 7 = 26
/// days = 37440 min; then by duration, ties by id. Circuit acme-0042: #4, #5, #12, outage
/// 240+60+210 = 510 min, first responses 10, 20, 30 → 20.0. Firewall fw1: #2, #9.
pub const EXPECTED_CSV: &str = "\
section,department,item,value
tickets,all,,12
tag,all,carrier,3
tag,all,customer,4
tag,all,platform,5
tag,all,untagged,0
severity,all,P1,3
severity,all,P2,3
severity,all,P3,4
severity,all,P4,2
channel,all,api,2
channel,all,console,2
channel,all,mailbox,1
channel,all,monitoring,4
channel,all,phone,2
channel,all,walk_in,1
mtta_minutes,all,,26.0
mttr_minutes,all,,150.0
sla_compliance_percent,all,,83.3
respond_breached,all,,1
resolve_breached,all,,1
tickets,finance,,3
tag,finance,carrier,1
tag,finance,customer,2
tag,finance,platform,0
tag,finance,untagged,0
severity,finance,P1,1
severity,finance,P2,1
severity,finance,P3,0
severity,finance,P4,1
channel,finance,api,1
channel,finance,console,0
channel,finance,mailbox,0
channel,finance,monitoring,1
channel,finance,phone,1
channel,finance,walk_in,0
mtta_minutes,finance,,20.0
mttr_minutes,finance,,220.0
sla_compliance_percent,finance,,66.7
respond_breached,finance,,0
resolve_breached,finance,,1
tickets,hr,,2
tag,hr,carrier,0
tag,hr,customer,2
tag,hr,platform,0
tag,hr,untagged,0
severity,hr,P1,0
severity,hr,P2,0
severity,hr,P3,2
severity,hr,P4,0
channel,hr,api,0
channel,hr,console,0
channel,hr,mailbox,0
channel,hr,monitoring,0
channel,hr,phone,1
channel,hr,walk_in,1
mtta_minutes,hr,,30.0
mttr_minutes,hr,,60.0
sla_compliance_percent,hr,,100.0
respond_breached,hr,,0
resolve_breached,hr,,0
longest_minutes,all,#11 vm-hr customer (ongoing),37440.0
longest_minutes,all,#9 vm-fin customer,300.0
longest_minutes,all,#5 acme-0042 carrier,240.0
longest_minutes,all,#13 acme-0042 carrier,210.0
longest_minutes,all,#4 core1 platform,180.0
longest_minutes,all,#10 fw1 platform,180.0
longest_minutes,all,#3 fw1 platform,120.0
longest_minutes,all,#7 vm-fin customer,120.0
longest_minutes,all,#12 core1 platform,120.0
longest_minutes,all,#2 core1 platform,60.0
circuit_tickets,all,acme-0042,3
circuit_outage_minutes,all,acme-0042,510.0
circuit_first_response_minutes,all,acme-0042,20.0
security_device_tickets,all,firewall,2
security_device_tickets,all,ips,0
security_device_tickets,all,waf,0
followup_due,all,callback,2
followup_done,all,callback,1
followup_done_percent,all,callback,50.0
followup_due,all,new_customer_3days,2
followup_done,all,new_customer_3days,2
followup_done_percent,all,new_customer_3days,100.0
followup_due,all,new_customer_8days,2
followup_done,all,new_customer_8days,1
followup_done_percent,all,new_customer_8days,50.0
followup_due,all,new_customer_15days,1
followup_done,all,new_customer_15days,0
followup_done_percent,all,new_customer_15days,0.0
followup_due,all,vip,1
followup_done,all,vip,1
followup_done_percent,all,vip,100.0
";
