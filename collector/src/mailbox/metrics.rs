//! The repair mailbox's metrics (mailbox → **/metrics**): mails by what became of them, whether
//! the IMAP session is up, and its errors by kind.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

type Labels = [(&'static str, &'static str); 1];

/// `faultline_mailbox_*` on `/metrics`.
#[derive(Debug, Clone, Default)]
pub struct MailboxMetrics {
    mails: Family<Labels, Counter>,
    connected: Gauge,
    errors: Family<Labels, Counter>,
}

/// Every `result` of `faultline_mailbox_mails_total`, so each series exists from the start.
const RESULTS: [&str; 5] = ["ticket", "reply", "duplicate", "automatic", "quarantined"];

impl MailboxMetrics {
    /// Registers the metrics in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self::default();
        registry.register(
            "faultline_mailbox_mails",
            "Mails taken from the repair mailbox, by result (ticket, reply, duplicate, automatic, quarantined)",
            metrics.mails.clone(),
        );
        registry.register(
            "faultline_mailbox_connected",
            "1 while the IMAP session of the repair mailbox is logged in",
            metrics.connected.clone(),
        );
        registry.register(
            "faultline_mailbox_errors",
            "Repair mailbox failures by kind (connect, login, protocol, timeout, stage)",
            metrics.errors.clone(),
        );
        for result in RESULTS {
            let _ = metrics.mails.get_or_create(&[("result", result)]);
        }
        metrics
    }

    /// Counts one mail with `result`.
    pub fn mail(&self, result: &'static str) {
        self.mails.get_or_create(&[("result", result)]).inc();
    }

    /// Sets whether the session is up.
    pub fn set_connected(&self, up: bool) {
        self.connected.set(i64::from(up));
    }

    /// Counts one failure of `kind`.
    pub fn error(&self, kind: &'static str) {
        self.errors.get_or_create(&[("kind", kind)]).inc();
    }
}
