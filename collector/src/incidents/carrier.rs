//! Carrier trouble tickets in the incident stage (incidents → **carrier NOC** → notifications):
//! the book reports each carrier ticket to its carrier once it is due
//! ([`faultline_incidents::carrier::report_due`]), and the carrier's clock — time to its first
//! response, time to restore — is counted per carrier and circuit on `/metrics`.

use super::book::StoreBook;
use faultline_incidents::carrier::{CarrierClock, report_due};
use faultline_incidents::ticket::CarrierReport;
use faultline_incidents::{Change, Command, Millis, Ticket, TimelineEntry};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

type CircuitLabels = [(&'static str, String); 2];
type CircuitDurations = Family<CircuitLabels, Histogram, fn() -> Histogram>;

fn carrier_histogram() -> Histogram {
    // 1 min … ~8.5 days: carriers answer in minutes and restore in hours or days.
    Histogram::new(exponential_buckets(60.0, 2.0, 14))
}

/// `faultline_carrier_…` on `/metrics`: trouble reports sent, time to the carrier's first
/// response and time to restore, labelled by carrier and the carrier's circuit id.
#[derive(Debug)]
pub struct CarrierMetrics {
    reports: Family<CircuitLabels, Counter>,
    first_response: CircuitDurations,
    restore: CircuitDurations,
}

impl CarrierMetrics {
    /// Creates and registers the instruments.
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self {
            reports: Family::default(),
            first_response: Family::new_with_constructor(carrier_histogram),
            restore: Family::new_with_constructor(carrier_histogram),
        };
        registry.register(
            "faultline_carrier_reports",
            "Faults reported to a carrier's NOC (trouble tickets), by carrier and circuit",
            m.reports.clone(),
        );
        registry.register_with_unit(
            "faultline_carrier_first_response",
            "Time from a trouble report to the carrier's first response, by carrier and circuit",
            Unit::Seconds,
            m.first_response.clone(),
        );
        registry.register_with_unit(
            "faultline_carrier_restore",
            "Time from a reported carrier fault's start to service restored, by carrier and circuit",
            Unit::Seconds,
            m.restore.clone(),
        );
        m
    }

    /// Counts what one new timeline entry of `ticket` means for its carrier's clock: the report,
    /// the first response, the restoration (each once per ticket).
    pub(super) fn observe(&self, ticket: &Ticket, entry: &TimelineEntry) {
        let counted = matches!(
            entry.change,
            Change::CarrierReported { .. }
                | Change::CarrierResponded { .. }
                | Change::Resolved { .. }
        );
        let Some(clock) = counted.then(|| CarrierClock::of(ticket)).flatten() else {
            return;
        };
        let labels = [
            ("carrier", clock.report.carrier.clone()),
            ("circuit", clock.report.circuit_id.clone()),
        ];
        let seconds = |ms: Millis| ms.max(0) as f64 / 1000.0;
        match entry.change {
            Change::CarrierReported { .. } => {
                self.reports.get_or_create(&labels).inc();
            }
            Change::CarrierResponded { .. } if clock.first_response_at_ms == Some(entry.at_ms) => {
                if let Some(ms) = clock.response_ms() {
                    self.first_response
                        .get_or_create(&labels)
                        .observe(seconds(ms));
                }
            }
            Change::Resolved { .. } if clock.restored_at_ms == Some(entry.at_ms) => {
                if let Some(ms) = clock.restore_ms(ticket.started_at_ms) {
                    self.restore.get_or_create(&labels).observe(seconds(ms));
                }
            }
            _ => {}
        }
    }
}

impl StoreBook {
    /// Reports every carrier ticket that is due to its carrier's NOC, once per ticket.
    pub(super) fn report_to_carriers(&mut self, now: Millis) {
        let after = self.setup.policy.carrier_report_after;
        let due: Vec<(u64, CarrierReport)> = self
            .tickets
            .iter()
            .filter_map(|t| Some((t.id, report_due(t, &self.setup.inventory, after, now)?)))
            .collect();
        for (id, report) in due {
            tracing::info!(
                ticket = id,
                carrier = %report.carrier,
                circuit = %report.circuit_id,
                contacts = report.contacts.len(),
                "reporting the fault to the carrier"
            );
            if let Err(refusal) =
                self.change_ticket(id, Command::ReportToCarrier(Box::new(report)), now)
            {
                self.automatic_failed(id, &refusal);
            }
        }
    }
}
