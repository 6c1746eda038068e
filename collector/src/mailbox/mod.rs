//! The repair mailbox (IMAP → **mailbox** → incidents → notifications): mail to the service
//! desk's address becomes tickets in the one queue, channel `mailbox`.
//!
//! The pure core: [`parse`] turns raw RFC 5322 bytes into an [`parse::IncomingMail`] (charsets
//! GB2312 / GBK / GB18030 included, HTML converted to text) or a quarantine reason, and
//! [`classify`] tells automatic mail (auto-replies, bounces, lists, our own mails: never a
//! ticket, never an answer) and finds the ticket a reply belongs to ([`classify::thread_of`]).
//!
//! Tickets: a mail from a known sender (a department contact's address, or a department's
//! `mail_domains`) opens rule [`crate::incidents::MAILBOX_RULE`] on target
//! `department:<id>`; one from an unknown sender on `mailbox:unknown`, untagged, waiting for
//! triage (the retag command tags it). Several mailbox tickets of one department may be open at
//! once: one active ticket per fingerprint holds for monitoring tickets only.

//!
//! The shell: [`service`] keeps the IMAP session ([`connect`]) and marks a mail done only after
//! the incident stage answered; [`config`] is `[mailbox]`, [`metrics`] its `/metrics` series.

pub mod classify;
pub mod config;
pub mod connect;
pub mod intake;
pub mod metrics;
pub mod parse;
pub mod service;

use crate::api::Request;
use anyhow::Context;
use prometheus_client::registry::Registry;
use tokio::sync::mpsc;

/// Reads the password (a clear error naming `mailbox.password_file` and the file), registers
/// the metrics and starts the mailbox task.
pub fn start(
    config: &config::MailboxConfig,
    requests: mpsc::Sender<Request>,
    registry: &mut Registry,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let password = config.password().context("repair mailbox")?;
    let metrics = metrics::MailboxMetrics::register(registry);
    Ok(tokio::spawn(service::run(
        config.clone(),
        password,
        requests,
        metrics,
    )))
}
