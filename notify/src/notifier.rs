//! The delivery loop: a thin async shell around the outbox and the channels
//! (… → incidents → **notifications** → receivers).
//!
//! [`Notifier::enqueue`] routes a notification to the channels that want it and persists it
//! before returning ([`Notifier::enqueue_through`] also records how far its source is handled,
//! in the same transaction); [`Notifier::run`] (or one [`Notifier::deliver_due`] round at a
//! time) sends what is due, each channel concurrently, and records every outcome in the outbox
//! before looking at the next round: a delivery is marked delivered as soon as the receiver
//! acknowledged it, a failure is rescheduled with [`crate::retry::next_attempt`]. Receivers that
//! deduplicate (PagerDuty's `dedup_key`, `Idempotency-Key`, `Message-ID`) also drop the one
//! duplicate that a crash between their acknowledgement and our record could cause.

use crate::channel::{
    ChannelConfig, ChannelType, Expect, HttpRequest, Prepared, Rejection, email, interpret, prepare,
};
use crate::config::NotifyConfig;
use crate::model::Notification;
use crate::outbox::{Backlog, Outbox, OutboxError, PendingDelivery};
use crate::retry::next_attempt;
use faultline_incidents::Millis;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use rand::RngExt;
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use thiserror::Error;
use tokio::task::JoinSet;

/// A notifier failure.
#[derive(Debug, Error)]
pub enum NotifyError {
    /// The outbox failed.
    #[error(transparent)]
    Outbox(#[from] OutboxError),
    /// An e-mail channel's SMTP settings are unusable.
    #[error("channel {channel}: SMTP transport: {source}")]
    Smtp {
        /// Channel.
        channel: String,
        /// lettre's error.
        source: lettre::transport::smtp::Error,
    },
    /// The HTTP client cannot be built (TLS setup).
    #[error("HTTP client: {0}")]
    Http(reqwest::Error),
    /// A thread panicked while holding the outbox.
    #[error("notification outbox lock poisoned")]
    Poisoned,
}

/// Counters of one channel since the notifier started, for the collector's `/metrics`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChannelCounters {
    /// Notifications delivered.
    pub sent: u64,
    /// Delivery attempts that failed (each retry counts).
    pub failed: u64,
    /// Notifications given up on: rejected by the receiver or out of attempts.
    pub given_up: u64,
}

#[derive(Debug, Default)]
struct Counters {
    sent: AtomicU64,
    failed: AtomicU64,
    given_up: AtomicU64,
}

/// What one [`Notifier::deliver_due`] round did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Round {
    /// Deliveries attempted.
    pub attempted: usize,
    /// Delivered.
    pub delivered: usize,
    /// Nothing to send.
    pub skipped: usize,
    /// Failed (retried later or given up).
    pub failed: usize,
}

enum Outcome {
    Delivered(Option<String>),
    Skipped(String),
    Failed(Rejection),
}

struct Inner {
    config: NotifyConfig,
    outbox: Mutex<Outbox>,
    http: reqwest::Client,
    smtp: BTreeMap<String, AsyncSmtpTransport<Tokio1Executor>>,
    counters: BTreeMap<String, Counters>,
    wake: tokio::sync::Notify,
    /// Held for a whole round: rounds never overlap, so one delivery is never attempted twice at
    /// once.
    round: tokio::sync::Mutex<()>,
}

/// Sends notifications through the outbox. Cheap to clone; clones share everything.
#[derive(Clone)]
pub struct Notifier {
    inner: Arc<Inner>,
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> Millis {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

impl Notifier {
    /// A notifier for a validated `config`, delivering from `outbox`.
    pub fn new(config: NotifyConfig, outbox: Outbox) -> Result<Self, NotifyError> {
        let http = reqwest::Client::builder()
            .timeout(config.retry.timeout)
            .user_agent(concat!("faultline-notify/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(NotifyError::Http)?;
        let mut smtp = BTreeMap::new();
        let mut counters = BTreeMap::new();
        for channel in &config.channels {
            if let Some(ChannelType::Email(email)) = channel.channel_type() {
                let transport =
                    email
                        .transport(config.retry.timeout)
                        .map_err(|source| NotifyError::Smtp {
                            channel: channel.name.clone(),
                            source,
                        })?;
                smtp.insert(channel.name.clone(), transport);
            }
            counters.insert(channel.name.clone(), Counters::default());
        }
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                outbox: Mutex::new(outbox),
                http,
                smtp,
                counters,
                wake: tokio::sync::Notify::new(),
                round: tokio::sync::Mutex::new(()),
            }),
        })
    }

    fn outbox(&self) -> Result<MutexGuard<'_, Outbox>, NotifyError> {
        self.inner.outbox.lock().map_err(|_| NotifyError::Poisoned)
    }

    /// Persists `notification` for every channel that wants it and wakes the delivery loop.
    /// Enqueueing the same event again does nothing. Returns how many deliveries are new.
    pub fn enqueue(&self, notification: &Notification) -> Result<usize, NotifyError> {
        self.persist(std::slice::from_ref(notification), None)
    }

    /// Persists `notifications` for the channels that want them and records that their source
    /// has handled everything up to `position` ([`Outbox::enqueue_through`]: one transaction,
    /// also when no channel wants any, or there are none), then wakes the delivery loop.
    /// Returns how many deliveries are new.
    pub fn enqueue_through(
        &self,
        notifications: &[Notification],
        position: u64,
    ) -> Result<usize, NotifyError> {
        self.persist(notifications, Some(position))
    }

    /// Where the source of notifications resumes ([`Outbox::resume`]; `end` when none is
    /// recorded yet).
    pub fn resume(&self, end: u64) -> Result<u64, NotifyError> {
        Ok(self.outbox()?.resume(end)?)
    }

    fn persist(
        &self,
        notifications: &[Notification],
        position: Option<u64>,
    ) -> Result<usize, NotifyError> {
        let channels: Vec<Vec<&str>> = notifications
            .iter()
            .map(|n| {
                self.inner
                    .config
                    .route(n)
                    .into_iter()
                    .map(|c| c.name.as_str())
                    .collect()
            })
            .collect();
        let routed: Vec<(&[&str], &Notification)> = channels
            .iter()
            .map(Vec::as_slice)
            .zip(notifications)
            .filter(|(channels, _)| !channels.is_empty())
            .collect();
        if routed.is_empty() && position.is_none() {
            return Ok(0);
        }
        let added = self.outbox()?.write(&routed, position, now_ms())?;
        if added > 0 {
            for (channels, n) in &routed {
                tracing::debug!(notification = %n.label(), channels = channels.len(), "notification enqueued");
            }
            self.inner.wake.notify_one();
        }
        Ok(added)
    }

    /// Counters per channel since start, by channel name.
    pub fn counters(&self) -> Vec<(String, ChannelCounters)> {
        self.inner
            .counters
            .iter()
            .map(|(name, c)| {
                (
                    name.clone(),
                    ChannelCounters {
                        sent: c.sent.load(Ordering::Relaxed),
                        failed: c.failed.load(Ordering::Relaxed),
                        given_up: c.given_up.load(Ordering::Relaxed),
                    },
                )
            })
            .collect()
    }

    /// Pending and failed deliveries per channel, from the outbox.
    pub fn backlog(&self) -> Result<Vec<(String, Backlog)>, NotifyError> {
        Ok(self.outbox()?.backlog()?)
    }

    /// Runs one delivery round: attempts everything due at `now` (up to the batch size), each
    /// concurrently, and records each outcome as it arrives. Rounds never overlap; one process
    /// delivers from one outbox (several collectors sharing an outbox would each send).
    pub async fn deliver_due(&self, now: Millis) -> Result<Round, NotifyError> {
        let _round = self.inner.round.lock().await;
        let due = self.outbox()?.due(now, self.inner.config.retry.batch)?;
        let mut round = Round {
            attempted: due.len(),
            ..Round::default()
        };
        let mut tasks = JoinSet::new();
        for delivery in due {
            let notifier = self.clone();
            tasks.spawn(async move {
                let outcome = notifier.attempt(&delivery, now).await;
                (delivery, outcome)
            });
        }
        let mut first_error = None;
        while let Some(joined) = tasks.join_next().await {
            let Ok((delivery, outcome)) = joined else {
                continue; // a panicked attempt stays pending and is retried next round
            };
            match self.record(&delivery, outcome, now, &mut round) {
                Ok(()) => {}
                Err(e) => {
                    tracing::error!(channel = %delivery.channel, notification = %delivery.notification.label(), error = %e, "cannot record delivery outcome");
                    first_error.get_or_insert(e);
                }
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(round),
        }
    }

    /// Delivers until `shutdown` completes: a round whenever something is enqueued, a retry comes
    /// due, or the poll interval passes. A round in progress is finished before stopping.
    pub async fn run(&self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        let retry = &self.inner.config.retry;
        loop {
            let now = now_ms();
            let mut full = false;
            match self.deliver_due(now).await {
                Ok(round) => full = round.attempted >= retry.batch,
                Err(e) => tracing::error!(error = %e, "notification delivery round failed"),
            }
            let wait = if full {
                Duration::ZERO
            } else {
                let next = self
                    .outbox()
                    .ok()
                    .and_then(|o| o.next_due_ms().ok().flatten());
                let until_next = next.map_or(retry.poll_interval, |t| {
                    Duration::from_millis(u64::try_from(t.saturating_sub(now_ms())).unwrap_or(0))
                });
                until_next.min(retry.poll_interval)
            };
            tokio::select! {
                () = &mut shutdown => break,
                () = self.inner.wake.notified() => {}
                () = tokio::time::sleep(wait) => {}
            }
        }
    }

    fn channel(&self, name: &str) -> Option<&ChannelConfig> {
        self.inner.config.channels.iter().find(|c| c.name == name)
    }

    async fn attempt(&self, delivery: &PendingDelivery, now: Millis) -> Outcome {
        let Some(channel) = self.channel(&delivery.channel) else {
            return Outcome::Failed(Rejection::permanent("channel is no longer configured"));
        };
        let prepared = prepare(
            channel,
            &delivery.notification,
            delivery.remote_id.as_deref(),
            delivery.attempts,
            now,
        );
        match prepared {
            Err(rejection) => Outcome::Failed(rejection),
            Ok(Prepared::Skip(reason)) => Outcome::Skipped(reason),
            Ok(Prepared::Http { request, expect }) => self.send_http(request, &expect).await,
            Ok(Prepared::Lookup {
                find,
                find_pointer,
                create,
                id_pointer,
            }) => {
                let found = self
                    .send_http(
                        find,
                        &Expect::Lookup {
                            pointer: find_pointer,
                        },
                    )
                    .await;
                match found {
                    Outcome::Delivered(Some(id)) => {
                        tracing::info!(channel = %channel.name, notification = %delivery.notification.label(), remote_id = %id, "remote ticket of an earlier attempt found; not creating another");
                        Outcome::Delivered(Some(id))
                    }
                    Outcome::Delivered(None) => {
                        self.send_http(
                            create,
                            &Expect::RemoteId {
                                pointer: id_pointer,
                            },
                        )
                        .await
                    }
                    other => other,
                }
            }
            Ok(Prepared::Email(messages)) => {
                // In order; a failure retries them all (their Message-IDs let a mail system
                // drop the ones that went through).
                for message in &messages {
                    let outcome = self.send_email(&channel.name, message).await;
                    if !matches!(outcome, Outcome::Delivered(_)) {
                        return outcome;
                    }
                }
                Outcome::Delivered(None)
            }
        }
    }

    async fn send_http(&self, request: HttpRequest, expect: &Expect) -> Outcome {
        let mut builder = self
            .inner
            .http
            .request(request.method.clone(), &request.url)
            .body(request.body);
        for (name, value) in &request.headers {
            builder = builder.header(name, value);
        }
        let response = match builder.send().await {
            Ok(response) => response,
            // `without_url`: robot URLs carry their access token.
            Err(e) => {
                return Outcome::Failed(Rejection::transient(format!(
                    "{}: {}",
                    crate::channel::redact_url(&request.url),
                    e.without_url()
                )));
            }
        };
        let status = response.status().as_u16();
        let body = match response.bytes().await {
            Ok(body) => body,
            Err(e) if (200..300).contains(&status) && *expect == Expect::Status => {
                tracing::debug!(error = %e.without_url(), "response body lost after success");
                Default::default()
            }
            Err(e) => {
                let rejection = match expect {
                    // The remote ticket may exist: never create it again.
                    Expect::RemoteId { .. } if (200..300).contains(&status) => {
                        Rejection::permanent(format!(
                            "ticket created but the response was lost: {}",
                            e.without_url()
                        ))
                    }
                    _ => Rejection::transient(format!("reading response: {}", e.without_url())),
                };
                return Outcome::Failed(rejection);
            }
        };
        match interpret(expect, status, &body) {
            Ok(remote_id) => Outcome::Delivered(remote_id),
            Err(rejection) => Outcome::Failed(rejection),
        }
    }

    async fn send_email(&self, channel: &str, message: &email::EmailMessage) -> Outcome {
        let Some(transport) = self.inner.smtp.get(channel) else {
            return Outcome::Failed(Rejection::permanent("no SMTP transport for this channel"));
        };
        let message = match message.to_lettre() {
            Ok(message) => message,
            Err(rejection) => return Outcome::Failed(rejection),
        };
        match transport.send(message).await {
            Ok(_) => Outcome::Delivered(None),
            Err(e) => Outcome::Failed(Rejection {
                failure: email::classify(&e),
                message: format!("SMTP: {e}"),
            }),
        }
    }

    fn record(
        &self,
        delivery: &PendingDelivery,
        outcome: Outcome,
        now: Millis,
        round: &mut Round,
    ) -> Result<(), NotifyError> {
        let counters = self.inner.counters.get(&delivery.channel);
        let label = delivery.notification.label();
        let channel = delivery.channel.as_str();
        let mut outbox = self.outbox()?;
        match outcome {
            Outcome::Delivered(remote_id) => {
                outbox.record_delivered(delivery, now, remote_id.as_deref())?;
                round.delivered += 1;
                if let Some(c) = counters {
                    c.sent.fetch_add(1, Ordering::Relaxed);
                }
                tracing::info!(%channel, notification = %label, attempts = delivery.attempts + 1, remote_id = remote_id.as_deref().unwrap_or(""), "notification delivered");
            }
            Outcome::Skipped(reason) => {
                outbox.record_skipped(delivery, now, &reason)?;
                round.skipped += 1;
                tracing::debug!(%channel, notification = %label, %reason, "notification skipped");
            }
            Outcome::Failed(rejection) => {
                let attempts = delivery.attempts.saturating_add(1);
                let random: f64 = rand::rng().random();
                let next = next_attempt(
                    &self.inner.config.retry,
                    attempts,
                    rejection.failure,
                    now,
                    random,
                );
                outbox.record_failure(
                    delivery.id,
                    channel,
                    &delivery.notification.dedup_key,
                    now,
                    &rejection.message,
                    next,
                )?;
                round.failed += 1;
                if let Some(c) = counters {
                    c.failed.fetch_add(1, Ordering::Relaxed);
                    if next.is_none() {
                        c.given_up.fetch_add(1, Ordering::Relaxed);
                    }
                }
                match next {
                    Some(at) => {
                        tracing::warn!(%channel, notification = %label, attempts, retry_in_ms = at - now, error = %rejection.message, "notification delivery failed; will retry")
                    }
                    None => {
                        tracing::error!(%channel, notification = %label, attempts, error = %rejection.message, "notification delivery failed for good")
                    }
                }
            }
        }
        Ok(())
    }
}
