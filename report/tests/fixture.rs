//! The report of a hand-computed fixture store (`faultline_tests::report_fixture`): every number
//! in the `Report` and in the CSV is checked exactly against figures worked out by hand.

// A failed unwrap is a failed test here.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use faultline_incidents::SqliteStore;
use faultline_report::figures::FollowUpLine;
use faultline_report::{Period, csv, html, load};
use faultline_tests::report_fixture::{AS_OF_MS, EXPECTED_CSV, PERIOD, inventory, seed};
use jiff::tz::TimeZone;
use std::time::Duration;

fn report(department: Option<&str>) -> faultline_report::Report {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tickets.db");
    seed(&path);
    let store = SqliteStore::open(&path).unwrap();
    let period = Period::parse(PERIOD, &TimeZone::UTC).unwrap();
    load::build(
        &store,
        &inventory(),
        &period,
        department,
        Vec::new(),
        AS_OF_MS,
    )
    .unwrap()
}

#[test]
fn fixture_figures_are_exact() {
    let r = report(None);
    let o = &r.overall;
    assert_eq!(o.tickets, 12);
    assert_eq!(o.mtta_ms(), Some(26 * 60_000));
    assert_eq!(o.mttr_ms(), Some(150 * 60_000));
    assert_eq!(
        (o.sla_met, o.respond_breached, o.resolve_breached),
        (10, 1, 1)
    );
    assert_eq!(o.by_tag["platform"], 5);
    assert_eq!(o.by_channel["walk_in"], 1);
    assert_eq!(r.departments["finance"].mttr_ms(), Some(220 * 60_000));
    assert_eq!(r.departments.len(), 2);
    let longest: Vec<u64> = r.longest.iter().map(|i| i.id).collect();
    assert_eq!(longest, [11, 9, 5, 13, 4, 10, 3, 7, 12, 2]);
    assert!(r.longest[0].ongoing);
    let acme = &r.circuits["acme-0042"];
    assert_eq!((acme.tickets, acme.outage_ms), (3, 510 * 60_000));
    assert_eq!(acme.mean_response_ms(), Some(20 * 60_000));
    assert_eq!(r.security["firewall"], 2);
    let three = FollowUpLine::NewCustomer(Duration::from_secs(3 * 86_400));
    assert_eq!((r.followups[&three].due, r.followups[&three].done), (2, 2));
    assert_eq!(r.followups[&FollowUpLine::Callback].percent(), Some(50.0));
    assert_eq!(csv::to_csv(&r).unwrap(), EXPECTED_CSV);
}

#[test]
fn one_department_counts_only_its_tickets_and_follow_ups() {
    let r = report(Some("hr"));
    assert_eq!(r.overall.tickets, 2);
    assert_eq!(r.overall.mtta_ms(), Some(30 * 60_000));
    assert_eq!(r.departments.keys().collect::<Vec<_>>(), ["hr"]);
    let longest: Vec<u64> = r.longest.iter().map(|i| i.id).collect();
    assert_eq!(longest, [11, 8]);
    assert!(r.circuits.is_empty());
    let lines: Vec<(String, u64, u64)> = r
        .followups
        .iter()
        .map(|(line, c)| (line.label(), c.due, c.done))
        .collect();
    assert_eq!(
        lines,
        [
            ("callback".to_string(), 1, 0),
            ("new_customer_3days".to_string(), 1, 1),
            ("new_customer_8days".to_string(), 1, 0),
        ]
    );
    let text = csv::to_csv(&r).unwrap();
    assert!(text.contains("\ntickets,hr,,2\n"), "{text}");
    assert!(!text.contains(",all,"), "{text}");
}

#[test]
fn html_is_self_contained_and_shows_the_figures() {
    let r = report(None);
    let page = html::render(&r, &TimeZone::UTC).unwrap();
    for needle in [
        "<svg",
        "26.0 min",
        "150.0 min",
        "83.3 %",
        "acme-0042",
        "510.0",
        "No pools declared.",
        "new_customer_15days",
    ] {
        assert!(page.contains(needle), "{needle} missing");
    }
    for external in ["<script", "src=", "href=", "@import", "url("] {
        assert!(!page.contains(external), "{external} in the page");
    }
}
