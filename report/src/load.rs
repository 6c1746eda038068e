//! Reading a period's tickets from the store (store → **report**): pages backwards through the
//! tickets opened within the period ([`TicketStore::list`]), a bounded page at a time, and feeds
//! each to the [`Builder`], so a period of 100,000 tickets never sits in memory at once.

use crate::figures::{Builder, CapacityRow, Report};
use crate::period::Period;
use crate::row::ReportTicket;
use faultline_incidents::{Inventory, ListWindow, Millis, StoreError, TicketStore};

/// Tickets read per store query.
const PAGE: usize = 500;

/// Follow-up tasks read at most (a few per department and month).
const MAX_FOLLOWUPS: usize = 1_000_000;

/// The report of `period` (for `department`, or all) from `store`, with targets looked up in
/// `inventory`, made at `now_ms`; `capacity` is the capacity pools' state.
pub fn build(
    store: &dyn TicketStore,
    inventory: &Inventory,
    period: &Period,
    department: Option<&str>,
    capacity: Vec<CapacityRow>,
    now_ms: Millis,
) -> Result<Report, StoreError> {
    let mut builder = Builder::new(period, department, now_ms);
    let mut window = ListWindow {
        before: None,
        since_ms: Some(period.start_ms),
        until_ms: Some(period.end_ms),
    };
    loop {
        let page = store.list(None, &window, PAGE)?;
        for ticket in &page {
            builder.add_ticket(&ReportTicket::from_ticket(ticket, inventory));
        }
        match page.last() {
            Some(last) if page.len() == PAGE => window.before = Some(last.id),
            _ => break,
        }
    }
    for task in store.followups(None, MAX_FOLLOWUPS)? {
        builder.add_followup(&task);
    }
    Ok(builder.finish(capacity))
}
