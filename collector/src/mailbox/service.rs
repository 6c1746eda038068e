//! The repair mailbox task (IMAP → **mailbox service** → incidents): logs in, takes every new
//! mail of the folder in UID order — fetched with `BODY.PEEK[]` so nothing is marked by reading
//! it — hands it to the incident stage and marks it done (`\Seen` or moved) only after the stage
//! answered that its ticket is committed. Automatic mail is marked done without a ticket;
//! unreadable mail is moved to the quarantine folder. Waits with IDLE when the server offers it,
//! polls otherwise, and reconnects with [`faultline_daemon::backoff`] when the server is away.
//! Never ends the collector: every failure is counted, logged (rate-limited) and retried.

use super::config::{Done, MailboxConfig};
use super::connect::{Failure, Imap, connect, timed};
use super::intake::{Triage, triage};
use super::metrics::MailboxMetrics;
use crate::api::{Refusal, Request};
use async_imap::types::UnsolicitedResponse;
use faultline_daemon::backoff::Backoff;
use faultline_daemon::log_limit::LogLimiter;
use faultline_wire::config_file::Secret;
use futures_util::TryStreamExt;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// The stage is gone (the collector is stopping): the task ends.
struct Stopped;

/// Runs until the incident stage is gone.
pub async fn run(
    config: MailboxConfig,
    password: Secret,
    requests: mpsc::Sender<Request>,
    metrics: MailboxMetrics,
) {
    let backoff = Backoff {
        initial: Duration::from_secs(1),
        max: config.reconnect_max,
        multiplier: 2.0,
        jitter: 0.2,
    };
    let mut failures = 0u32;
    let mut logs: LogLimiter<&'static str> = LogLimiter::new(Duration::from_secs(60), 16);
    let session = Session {
        config: &config,
        requests: &requests,
        metrics: &metrics,
    };
    loop {
        let result = match connect(&config, &password).await {
            Ok(imap) => {
                failures = 0;
                metrics.set_connected(true);
                tracing::info!(host = %config.host, folder = %config.folder, "repair mailbox connected");
                session.serve(imap).await
            }
            Err(failure) => Err(Ok(failure)),
        };
        metrics.set_connected(false);
        let failure = match result {
            Ok(never) => match never {},
            Err(Err(Stopped)) => return,
            Err(Ok(failure)) => failure,
        };
        metrics.error(failure.kind);
        failures = failures.saturating_add(1);
        let delay = backoff.delay(failures, rand::random::<f64>());
        if let Some(held_back) = logs.check(&failure.kind, std::time::Instant::now()) {
            tracing::warn!(host = %config.host, kind = failure.kind, error = %failure.message, held_back, retry_in = ?delay, "repair mailbox session failed");
        }
        tokio::time::sleep(delay).await;
    }
}

/// Why [`Session::serve`] returned: a session failure (reconnect) or the end.
type Ended = Result<Failure, Stopped>;

/// What a session needs: the settings, the stage's door, the counters.
struct Session<'a> {
    config: &'a MailboxConfig,
    requests: &'a mpsc::Sender<Request>,
    metrics: &'a MailboxMetrics,
}

impl Session<'_> {
    /// Serves one logged-in session until it fails.
    async fn serve(&self, mut imap: Imap) -> Result<std::convert::Infallible, Ended> {
        let capabilities = timed("CAPABILITY", imap.capabilities()).await.map_err(Ok)?;
        let idle = self.config.idle && capabilities.has_str("IDLE");
        let can_move = capabilities.has_str("MOVE");
        let mut folders = vec![&self.config.quarantine_folder];
        if self.config.done == Done::Move {
            folders.push(&self.config.processed_folder);
        }
        for folder in folders {
            // Fails when it exists already: a real problem shows at the first move into it.
            if let Err(failure) = timed("CREATE", imap.create(folder)).await {
                tracing::debug!(folder, %failure, "mailbox folder not created");
            }
        }
        timed("SELECT", imap.select(&self.config.folder))
            .await
            .map_err(Ok)?;
        let events = imap.unsolicited_responses.clone();
        loop {
            while events.try_recv().is_ok() {}
            self.take_new(&mut imap, can_move).await?;
            if !idle {
                tokio::time::sleep(self.config.poll_interval).await;
                timed("NOOP", imap.noop()).await.map_err(Ok)?;
                continue;
            }
            let mut handle = imap.idle();
            timed("IDLE", handle.init()).await.map_err(Ok)?;
            // Mail announced before IDLE began is not announced again.
            let announced = std::iter::from_fn(|| events.try_recv().ok()).any(|event| {
                matches!(
                    event,
                    UnsolicitedResponse::Exists(_) | UnsolicitedResponse::Recent(_)
                )
            });
            if !announced {
                let (wait, _stop) = handle.wait_with_timeout(self.config.poll_interval);
                wait.await
                    .map_err(|e| Ok(Failure::new("protocol", format!("IDLE: {e}"))))?;
            }
            imap = timed("DONE", handle.done()).await.map_err(Ok)?;
        }
    }

    /// Takes in every new mail of the folder, oldest first.
    async fn take_new(&self, imap: &mut Imap, can_move: bool) -> Result<(), Ended> {
        let query = match self.config.done {
            Done::Seen => "UNSEEN UNDELETED",
            Done::Move => "UNDELETED",
        };
        let mut uids: Vec<u32> = timed("UID SEARCH", imap.uid_search(query))
            .await
            .map_err(Ok)?
            .into_iter()
            .collect();
        uids.sort_unstable();
        for uid in uids {
            self.take_one(imap, uid, can_move).await?;
        }
        Ok(())
    }

    /// Takes in the mail `uid`.
    async fn take_one(&self, imap: &mut Imap, uid: u32, can_move: bool) -> Result<(), Ended> {
        let config = self.config;
        let (size, message_id) = {
            let fetched = fetch(imap, uid, "(UID RFC822.SIZE ENVELOPE)").await?;
            let Some(first) = fetched.first() else {
                return Ok(()); // expunged meanwhile
            };
            let id = first
                .envelope()
                .and_then(|e| e.message_id.as_deref())
                .map(|id| String::from_utf8_lossy(id).into_owned());
            (first.size.unwrap_or(0), id)
        };
        let outcome = if u64::from(size) > config.max_mail_bytes {
            Triage::Quarantine(super::parse::Quarantine {
                message_id,
                reason: format!(
                    "{size} bytes, over max_mail_bytes {}",
                    config.max_mail_bytes
                ),
            })
        } else {
            let fetched = fetch(imap, uid, "(UID BODY.PEEK[])").await?;
            let Some(raw) = fetched.first().and_then(|f| f.body()) else {
                return Ok(());
            };
            triage(raw, config.max_mail_bytes, config.caps(), config.tag)
        };
        match outcome {
            Triage::Take(intake) => {
                let message_id = intake.mail.message_id.clone();
                let (reply, answer) = oneshot::channel();
                let request = Request::Mail { intake, reply };
                self.requests
                    .send(request)
                    .await
                    .map_err(|_| Err(Stopped))?;
                match answer.await.map_err(|_| Err(Stopped))? {
                    Ok(outcome) => {
                        self.metrics.mail(outcome.label());
                        tracing::info!(uid, %message_id, result = outcome.label(), ?outcome, "mail taken in");
                        self.mark_done(imap, uid, can_move).await
                    }
                    Err(Refusal::Unavailable(error)) => {
                        // Not marked: taken in again once the store works.
                        Err(Ok(Failure::new("stage", format!("{message_id}: {error}"))))
                    }
                    Err(refusal) => {
                        let reason = format!("refused by the ticket queue: {refusal}");
                        self.quarantine(imap, uid, Some(message_id), reason, can_move)
                            .await
                    }
                }
            }
            Triage::Automatic { message_id, kind } => {
                tracing::info!(uid, %message_id, kind = kind.as_str(), "automatic mail: no ticket, no answer");
                self.mark_done(imap, uid, can_move).await?;
                self.metrics.mail("automatic");
                Ok(())
            }
            Triage::Quarantine(q) => {
                self.quarantine(imap, uid, q.message_id, q.reason, can_move)
                    .await
            }
        }
    }

    /// Marks the mail `uid` done.
    async fn mark_done(&self, imap: &mut Imap, uid: u32, can_move: bool) -> Result<(), Ended> {
        match self.config.done {
            Done::Seen => {
                let flagged = timed("UID STORE", async {
                    imap.uid_store(uid.to_string(), "+FLAGS.SILENT (\\Seen)")
                        .await?
                        .try_collect::<Vec<_>>()
                        .await
                })
                .await;
                flagged.map(drop).map_err(Ok)
            }
            Done::Move => move_to(imap, uid, &self.config.processed_folder, can_move).await,
        }
    }

    /// Moves the mail `uid` to the quarantine folder, logged and counted.
    async fn quarantine(
        &self,
        imap: &mut Imap,
        uid: u32,
        message_id: Option<String>,
        reason: String,
        can_move: bool,
    ) -> Result<(), Ended> {
        let folder = &self.config.quarantine_folder;
        move_to(imap, uid, folder, can_move).await?;
        self.metrics.mail("quarantined");
        let message_id = message_id.as_deref().unwrap_or("(none)");
        tracing::warn!(uid, message_id, %reason, folder, "mail quarantined");
        Ok(())
    }
}

/// Fetches `items` of the mail `uid` (nothing when it is gone).
async fn fetch(
    imap: &mut Imap,
    uid: u32,
    items: &str,
) -> Result<Vec<async_imap::types::Fetch>, Ended> {
    timed("UID FETCH", async {
        imap.uid_fetch(uid.to_string(), items)
            .await?
            .try_collect()
            .await
    })
    .await
    .map_err(Ok)
}

/// Moves the mail `uid` to `folder`: `UID MOVE` where offered, else copy, flag deleted, expunge.
async fn move_to(imap: &mut Imap, uid: u32, folder: &str, can_move: bool) -> Result<(), Ended> {
    let uid = uid.to_string();
    if can_move {
        return timed("UID MOVE", imap.uid_mv(&uid, folder))
            .await
            .map_err(Ok);
    }
    timed("UID COPY", imap.uid_copy(&uid, folder))
        .await
        .map_err(Ok)?;
    timed("UID STORE", async {
        imap.uid_store(&uid, "+FLAGS.SILENT (\\Deleted)")
            .await?
            .try_collect::<Vec<_>>()
            .await
    })
    .await
    .map_err(Ok)?;
    timed("EXPUNGE", async {
        imap.expunge().await?.try_collect::<Vec<_>>().await
    })
    .await
    .map(drop)
    .map_err(Ok)
}
