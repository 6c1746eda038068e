//! The store suite: tickets, timelines, follow-ups and the feed, on both stores
//! ([`crate::both_stores`]); the SQLite file's own migrations at the end.

use super::test_db::Db;
use super::*;
use crate::both_stores;
use crate::inventory::Owner;
use crate::rules::Severity;
use crate::ticket::{Command, NewTicket, SYSTEM, TicketPolicy, Timer};

fn new_ticket(target: &str) -> Ticket {
    let new = NewTicket {
        rule: "CarrierLinkLoss".into(),
        target: target.into(),
        summary: "uplink lost".into(),
        description: String::new(),
        severity: Severity::P1,
        tag: Some(Owner::Carrier),
        reason: "beyond the boundary".into(),
        evidence: None,
        customers: Vec::new(),
        started_at_ms: 1_000,
        opened_by: SYSTEM.into(),
        channel: crate::ticket::Channel::Monitoring,
        pages: true,
        reporter: None,
    };
    Ticket::open(0, new, &TicketPolicy::default(), 2_000).0
}

both_stores!(
    survives_restart_with_timeline_and_timers_and_reopens,
    refuses_to_drop_timeline_or_update_unknown,
    followups_persist_once_and_complete_once,
    the_feed_gives_every_stored_entry_and_task_after_a_position_in_order,
);

fn survives_restart_with_timeline_and_timers_and_reopens(db: &Db) {
    let policy = TicketPolicy::default();
    let ack_timeout = crate::duration_ms(policy.ack_timeout);
    let id = {
        let mut store = db.open();
        assert_eq!(store.schema_version().unwrap(), db.migrations());
        let (ticket, _) = store.create(new_ticket("edge1-wan")).unwrap();
        assert_eq!(ticket.id, 1);
        let dup = store.create(new_ticket("edge1-wan")).unwrap_err();
        assert!(
            matches!(dup, StoreError::DuplicateActive { id: 1, .. }),
            "{dup}"
        );
        let (ticket, _) = ticket
            .apply(Command::Fire(Timer::Escalate), &policy, 2_000 + ack_timeout)
            .unwrap();
        store.update(&ticket).unwrap();
        let (ticket, _) = ticket
            .apply(Command::ConditionCleared, &policy, 900_000)
            .unwrap();
        store.update(&ticket).unwrap();
        ticket.id
    };
    // "Restart": a new connection on the same file.
    let mut store = db.open();
    assert_eq!(
        store.schema_version().unwrap(),
        db.migrations(),
        "migrations run once"
    );
    let ticket = store
        .latest("CarrierLinkLoss", "edge1-wan")
        .unwrap()
        .unwrap();
    assert_eq!(ticket.id, id);
    assert_eq!(ticket.state, TicketState::Resolved);
    assert_eq!(ticket.escalation_level, 1);
    assert_eq!(ticket.timeline.len(), 3, "opened, escalated, resolved");
    assert_eq!(store.get(id).unwrap().as_ref(), Some(&ticket));
    // The flap comes back within the re-open window: the same ticket re-opens, no new one.
    assert!(ticket.reopens(&policy, 950_000));
    let (ticket, _) = ticket.apply(Command::Refire, &policy, 950_000).unwrap();
    store.update(&ticket).unwrap();
    let unclosed = store.unclosed().unwrap();
    assert_eq!(unclosed.len(), 1);
    assert_eq!(
        (unclosed[0].id, unclosed[0].state, unclosed[0].reopen_count),
        (id, TicketState::Open, 1)
    );
    assert_eq!(unclosed[0].timeline.len(), 4);
    assert!(
        store.create(new_ticket("edge1-wan")).is_err(),
        "still one active ticket"
    );
    // Another fingerprint is another ticket.
    assert_eq!(store.create(new_ticket("edge2-wan")).unwrap().0.id, 2);
    let ids = |state| {
        store
            .list(state, &ListWindow::default(), 10)
            .unwrap()
            .iter()
            .map(|t| t.id)
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(None), [2, 1], "newest first");
    assert_eq!(ids(Some(TicketState::Resolved)), Vec::<u64>::new());
    assert_eq!(
        store
            .list(Some(TicketState::Open), &ListWindow::default(), 1)
            .unwrap()
            .len(),
        1
    );
    // Windows: before a cursor, and by opening time.
    let ids_in = |window: ListWindow| {
        store
            .list(None, &window, 10)
            .unwrap()
            .iter()
            .map(|t| t.id)
            .collect::<Vec<_>>()
    };
    let before = |cursor| ListWindow {
        before: Some(cursor),
        ..ListWindow::default()
    };
    assert_eq!(ids_in(before(2)), [1], "older than the cursor");
    assert_eq!(ids_in(before(1)), Vec::<u64>::new());
    let opened = |id| store.get(id).unwrap().unwrap().opened_at_ms;
    let (first, second) = (opened(1), opened(2));
    let range = |since_ms, until_ms| ListWindow {
        since_ms: Some(since_ms),
        until_ms: Some(until_ms),
        ..ListWindow::default()
    };
    let expect = |since_ms: i64, until_ms: i64| {
        [(2, second), (1, first)]
            .into_iter()
            .filter(|(_, at)| (since_ms..until_ms).contains(at))
            .map(|(id, _)| id)
            .collect::<Vec<u64>>()
    };
    for (since_ms, until_ms) in [
        (first, first + 1),
        (second, second + 1),
        (first.min(second), first.max(second) + 1),
        (first.max(second) + 1, i64::MAX),
    ] {
        assert_eq!(
            ids_in(range(since_ms, until_ms)),
            expect(since_ms, until_ms),
            "{since_ms}..{until_ms}"
        );
    }
}

fn refuses_to_drop_timeline_or_update_unknown(db: &Db) {
    let mut store = db.open();
    let (ticket, _) = store.create(new_ticket("x")).unwrap();
    let mut shrunk = ticket.clone();
    shrunk.timeline.clear();
    assert!(matches!(
        store.update(&shrunk),
        Err(StoreError::TimelineShrinks {
            stored: 1,
            given: 0,
            ..
        })
    ));
    let mut unknown = ticket;
    unknown.id = 99;
    assert!(matches!(
        store.update(&unknown),
        Err(StoreError::NotFound(99))
    ));
}

fn followups_persist_once_and_complete_once(db: &Db) {
    use crate::followup::{FollowUp, FollowUpKind};
    let task = |department: &str, after: u64, due: Millis| {
        let followup = FollowUp {
            department: department.into(),
            kind: FollowUpKind::NewCustomer {
                after: Duration::from_secs(after),
            },
            due_at_ms: due,
        };
        FollowUpTask::new(followup, Vec::new(), due + 500)
    };
    {
        let mut store = db.open();
        assert_eq!(store.record_first_seen("fin", 1_000).unwrap(), 1_000);
        assert_eq!(
            store.record_first_seen("fin", 5_000).unwrap(),
            1_000,
            "the first sighting stays"
        );
        assert!(
            store
                .create_followup(&task("fin", 4, 5_000))
                .unwrap()
                .is_some()
        );
        assert!(
            store
                .create_followup(&task("fin", 2, 3_000))
                .unwrap()
                .is_some()
        );
        assert!(
            store
                .create_followup(&task("fin", 2, 3_000))
                .unwrap()
                .is_none(),
            "same key: no duplicate"
        );
    }
    // "Restart": the same rows, and a repeated plan still adds nothing.
    let mut store = db.open();
    assert_eq!(
        store.first_seen().unwrap(),
        BTreeMap::from([("fin".to_string(), 1_000)])
    );
    assert!(
        store
            .create_followup(&task("fin", 2, 3_000))
            .unwrap()
            .is_none()
    );
    let keys = |store: &dyn Store, state| {
        store
            .followups(state, 10)
            .unwrap()
            .into_iter()
            .map(|t| t.key)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        keys(&*store, Some(TaskState::Pending)),
        ["followup:fin:new:2s", "followup:fin:new:4s"],
        "oldest due first"
    );
    let pending = store.followup("followup:fin:new:2s").unwrap().unwrap();
    assert!(
        matches!(
            store.complete_followup(&pending),
            Err(StoreError::FollowUpNotPending(_))
        ),
        "a pending task is no completion"
    );
    let done = pending.complete("ana", "called, all fine", 9_000).unwrap();
    store.complete_followup(&done).unwrap();
    assert!(
        store.complete_followup(&done).is_err(),
        "done is final: never rewritten"
    );
    assert_eq!(
        keys(&*store, Some(TaskState::Done)),
        ["followup:fin:new:2s"]
    );
    assert_eq!(keys(&*store, None).len(), 2, "nothing deleted");
    assert_eq!(
        store.followup("followup:fin:new:2s").unwrap(),
        Some(done),
        "who, when and the note are kept"
    );
    let mut unknown = task("hr", 2, 3_000).complete("ana", "", 1).unwrap();
    unknown.key = "followup:nobody".into();
    assert!(store.complete_followup(&unknown).is_err());
}

fn the_feed_gives_every_stored_entry_and_task_after_a_position_in_order(db: &Db) {
    use crate::followup::{FollowUp, FollowUpKind};
    let policy = TicketPolicy::default();
    let mut store = db.open();
    assert_eq!(store.feed_end().unwrap(), 0);
    assert!(store.feed_after(0, 10).unwrap().is_empty());
    let (a, opened_a) = store.create(new_ticket("a")).unwrap();
    let (b, opened_b) = store.create(new_ticket("b")).unwrap();
    let (a, _) = a.apply(Command::ConditionCleared, &policy, 5_000).unwrap();
    let resolved_a = store.update(&a).unwrap();
    assert!(
        store.update(&a).unwrap().is_empty(),
        "nothing new: nothing fed"
    );
    let followup = FollowUp {
        department: "fin".into(),
        kind: FollowUpKind::NewCustomer {
            after: Duration::from_secs(3),
        },
        due_at_ms: 6_000,
    };
    let task = FollowUpTask::new(followup, Vec::new(), 6_000);
    let fed_task = store.create_followup(&task).unwrap().unwrap();
    assert_eq!(store.create_followup(&task).unwrap(), None, "fed once");

    // Positions increase in the order things were stored, across tickets and tasks.
    let positions: Vec<FeedPosition> = [opened_a, opened_b, resolved_a, vec![fed_task]]
        .into_iter()
        .flatten()
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{positions:?}");
    assert_eq!(positions.len(), 4, "{positions:?}");
    assert_eq!(store.feed_end().unwrap(), fed_task);
    let entry = |ticket: &Ticket, index| Fed::Entry {
        ticket: ticket.id,
        index,
    };
    let want = [
        entry(&a, 0),
        entry(&b, 0),
        entry(&a, 1),
        Fed::FollowUp(task.clone()),
    ];
    // From every cursor: exactly what follows it, in order; `limit` bounds a batch.
    for (i, after) in [0].iter().chain(&positions).enumerate() {
        let items = store.feed_after(*after, 10).unwrap();
        let got: Vec<(FeedPosition, Fed)> =
            items.into_iter().map(|f| (f.position, f.fed)).collect();
        let expected: Vec<(FeedPosition, Fed)> = positions[i..]
            .iter()
            .copied()
            .zip(want[i..].iter().cloned())
            .collect();
        assert_eq!(got, expected, "after {after}");
    }
    let batch = store.feed_after(positions[0], 2).unwrap();
    assert_eq!(
        batch.iter().map(|f| f.position).collect::<Vec<_>>(),
        positions[1..3]
    );
    // The feed is stored: a new connection reads the same.
    drop(store);
    let store = db.open();
    assert_eq!(store.feed_after(positions[1], 10).unwrap().len(), 2);
}

#[test]
fn migrating_feeds_what_was_stored_before_in_time_order() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tickets.db");
    {
        // A version-2 database with two tickets, the second opened first.
        let mut conn = Connection::open(&path).unwrap();
        let tx = conn.transaction().unwrap();
        tx.execute_batch(MIGRATIONS[0]).unwrap();
        tx.execute_batch(MIGRATIONS[1]).unwrap();
        tx.pragma_update(None, "user_version", 2).unwrap();
        for (id, at) in [(1, 9_000), (2, 1_000)] {
            tx.execute(
                "INSERT INTO tickets (id, rule, target, state, tag, severity, opened_at_ms, body)
                 VALUES (?1, 'r', 't', 'resolved', 'platform', 'P2', ?2, '{}')",
                params![id, at],
            )
            .unwrap();
            tx.execute(
                "INSERT INTO timeline (ticket_id, seq, at_ms, who, change) VALUES (?1, 0, ?2, 'faultline', '{}')",
                params![id, at],
            )
            .unwrap();
        }
        tx.commit().unwrap();
    }
    let mut store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.schema_version().unwrap(), MIGRATIONS.len() as i64);
    let fed: Vec<Fed> = store
        .feed_after(0, 10)
        .unwrap()
        .into_iter()
        .map(|f| f.fed)
        .collect();
    assert_eq!(
        fed,
        [
            Fed::Entry {
                ticket: 2,
                index: 0
            },
            Fed::Entry {
                ticket: 1,
                index: 0
            }
        ]
    );
    assert_eq!(store.feed_end().unwrap(), 2);
    let (_, positions) = store.create(new_ticket("new")).unwrap();
    assert_eq!(positions, [3], "new entries follow the migrated ones");
}

#[test]
fn refuses_a_newer_schema() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    Connection::open(&path)
        .unwrap()
        .pragma_update(None, "user_version", MIGRATIONS.len() as i64 + 3)
        .unwrap();
    let err = SqliteStore::open(&path).unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::NewerSchema { found, supported }
                if found == MIGRATIONS.len() as i64 + 3 && supported == MIGRATIONS.len() as i64
        ),
        "{err}"
    );
    let err = SqliteStore::open_read_only(&path).unwrap_err();
    assert!(matches!(err, StoreError::NewerSchema { .. }), "{err}");
}

/// What only the PostgreSQL store has: a server that is down, goes away, or is newer.
mod postgres_only {
    use super::*;
    use crate::store::pg_server::PgServer;

    #[test]
    fn refuses_a_newer_schema() {
        let server = PgServer::start();
        let url = server.url();
        drop(PgStore::connect(&url).unwrap());
        let newer = pg::schema::MIGRATIONS.len() as i64 + 3;
        let mut client = ::postgres::Client::connect(&url, ::postgres::NoTls).unwrap();
        client
            .execute("UPDATE schema_version SET version = $1", &[&newer])
            .unwrap();
        for err in [
            PgStore::connect(&url).unwrap_err(),
            PgStore::connect_read_only(&url).unwrap_err(),
        ] {
            assert!(
                matches!(err, StoreError::NewerSchema { found, .. } if found == newer),
                "{err}"
            );
        }
    }

    #[test]
    fn a_server_that_is_down_is_named_without_the_password() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let err = PgStore::connect(&format!("postgres://fl:s3cret@127.0.0.1:{port}/tickets"))
            .unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, StoreError::Unreachable { .. }), "{text}");
        assert!(text.contains(&format!("127.0.0.1:{port}")), "{text}");
        assert!(!text.contains("s3cret"), "{text}");
        let err = PgStore::connect("postgres://fl@127.0.0.1:notaport/x").unwrap_err();
        assert!(matches!(err, StoreError::Url(_)), "{err}");
    }

    #[test]
    fn writes_fail_while_the_server_is_gone_and_resume_when_it_is_back() {
        let mut server = PgServer::start();
        let mut store = PgStore::connect(&server.url()).unwrap();
        let (a, before) = store.create(new_ticket("a")).unwrap();
        server.stop();
        let err = store.create(new_ticket("b")).unwrap_err();
        assert!(
            matches!(
                err,
                StoreError::Unreachable { .. } | StoreError::Postgres(_)
            ),
            "{err}"
        );
        assert!(store.get(a.id).is_err(), "reads fail too");
        server.resume();
        // The same session object reconnects at its next call; nothing stored was lost.
        assert_eq!(store.get(a.id).unwrap().as_ref(), Some(&a));
        let (b, after) = store.create(new_ticket("b")).unwrap();
        assert_ne!(b.id, a.id);
        assert!(after[0] > before[0], "{before:?} {after:?}");
        assert_eq!(
            store
                .feed_after(0, 10)
                .unwrap()
                .iter()
                .map(|f| f.position)
                .collect::<Vec<_>>(),
            [before, after].concat()
        );
    }
}
