//! Faultline's outgoing notifications: the last stage of the collector's
//! `ingest → rules → incidents → notifications` flow.
//!
//! Flow: after every ticket change the collector turns the new timeline entries into
//! [`Notification`]s ([`from_ticket::notifications`]) and hands each to [`Notifier::enqueue`],
//! which routes it to the configured channels ([`NotifyConfig`], `[[notify.channels]]`) and
//! persists one delivery per channel in the [`Outbox`] (SQLite, `notify_` tables). The delivery
//! loop ([`Notifier::run`]) sends what is due — generic webhook, Alertmanager-compatible webhook,
//! PagerDuty Events v2, WeCom / DingTalk / Feishu robots, SMTP e-mail, templated ticket sink —
//! and records every attempt; failures are retried with capped exponential backoff and jitter
//! ([`retry`]). A receiver outage loses nothing, and an event is never delivered twice under the
//! same dedup key by Faultline's own retries.
//!
//! Payload rendering ([`channel`]) and retry scheduling ([`retry`]) are pure functions; the
//! notifier is a thin async shell. The collector reads [`Notifier::counters`] and
//! [`Notifier::backlog`] at scrape time.
//!
//! Wiring in the collector:
//!
//! ```no_run
//! # async fn wire(
//! #     config: faultline_notify::NotifyConfig,
//! #     ticket: faultline_incidents::Ticket,
//! #     new_entries: usize,
//! # ) -> Result<(), faultline_notify::NotifyError> {
//! use faultline_notify::{Link, Notifier, Outbox, from_ticket};
//!
//! // At start: the outbox shares the collector's SQLite file; `config` passed
//! // `NotifyConfig::validate` when the config file was loaded.
//! let outbox = Outbox::open(std::path::Path::new("/var/lib/faultline/collector.db"))?;
//! let notifier = Notifier::new(config, outbox)?;
//! let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
//! let delivery = tokio::spawn({
//!     let notifier = notifier.clone();
//!     async move { notifier.run(async { let _ = stopped.await; }).await }
//! });
//!
//! // After storing a ticket change that appended `new_entries` timeline entries. Enqueue in
//! // timeline order; after a restart, enqueueing a ticket's whole timeline again is harmless.
//! let links = [Link { title: format!("Ticket #{}", ticket.id), url: format!("https://faultline.example/tickets/{}", ticket.id) }];
//! let first = ticket.timeline.len() - new_entries;
//! for notification in from_ticket::notifications(&ticket, first, &links) {
//!     notifier.enqueue(&notification)?;
//! }
//!
//! // At scrape time.
//! for (channel, counters) in notifier.counters() {
//!     println!("{channel}: sent {} failed {} given up {}", counters.sent, counters.failed, counters.given_up);
//! }
//!
//! // At shutdown: the round in progress finishes first.
//! let _ = stop.send(());
//! let _ = delivery.await;
//! # Ok(())
//! # }
//! ```

pub mod carrier;
pub mod channel;
pub mod config;
pub mod customer;
pub mod from_ticket;
pub mod model;
pub mod notifier;
pub mod outbox;
mod path;
pub mod report_mail;
pub mod retry;
pub mod template;

pub use channel::ChannelConfig;
pub use config::NotifyConfig;
pub use model::{Kind, Link, Notification};
pub use notifier::{ChannelCounters, Notifier, NotifyError, Round, now_ms};
pub use outbox::{Backlog, DeliveryRecord, DeliveryState, Outbox, OutboxError};
pub use retry::RetryPolicy;
