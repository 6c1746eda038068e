//! Network path probes (first stage of the agent's flow): ICMP echo, TCP connect and HTTP(S)
//! checks with loss, latency and status per target. [`config`] is the file format,
//! [`outcome`] the pure judgement of a round; this module is the thin task, one per probe.
//!
//! ICMP uses an unprivileged "ping" socket when `net.ipv4.ping_group_range` covers this
//! process's group, a raw socket otherwise (root or CAP_NET_RAW); one socket per IP version is
//! shared by every ICMP probe of the agent. A target that does not resolve, refuses or stays
//! silent is a failed attempt (loss), a counted error and a rate-limited log line; the probe
//! keeps going.

pub mod config;
pub mod outcome;

use super::{Collection, sample};
use config::{ProbeConfig, ProbeKind};
use faultline_daemon::log_limit::LogLimiter;
use faultline_wire::{SampleKind, now_ms};
use outcome::{Attempt, Round};
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};
use surge_ping::{ICMP, PingIdentifier, PingSequence, SurgeError};
use tokio::sync::mpsc;

const LOG_EVERY: Duration = Duration::from_secs(60);
const ECHO_PAYLOAD: [u8; 16] = *b"faultline-probe!";

/// What every probe of the agent shares: the ICMP sockets and the HTTP client.
pub struct Probers {
    icmp_v4: Option<surge_ping::Client>,
    icmp_v6: Option<surge_ping::Client>,
    http: reqwest::Client,
    next_ident: AtomicU16,
}

impl Probers {
    /// Opens the ICMP sockets when `icmp` probes exist (unprivileged when the kernel allows it
    /// for this group, raw otherwise) and builds the HTTP client. A socket that cannot be
    /// opened is logged; its probes then report every attempt failed (`kind="socket"`).
    pub fn new(icmp: bool) -> Result<Self, reqwest::Error> {
        let (icmp_v4, icmp_v6) = if icmp {
            let range =
                std::fs::read_to_string("/proc/sys/net/ipv4/ping_group_range").unwrap_or_default();
            let gid = std::fs::read_to_string("/proc/self/status")
                .ok()
                .and_then(|s| outcome::effective_gid(&s))
                .unwrap_or(u32::MAX);
            let hint = if outcome::unprivileged_icmp_allowed(&range, gid) {
                socket2::Type::DGRAM
            } else {
                socket2::Type::RAW
            };
            let open = |kind| {
                let config = surge_ping::Config::builder()
                    .kind(kind)
                    .sock_type_hint(hint)
                    .build();
                match surge_ping::Client::new(&config) {
                    Ok(client) => {
                        let raw = client.get_socket().get_type() == socket2::Type::RAW;
                        tracing::info!(
                            source = "probe",
                            ?kind,
                            socket = if raw { "raw" } else { "unprivileged" },
                            "ICMP socket open"
                        );
                        Some(client)
                    }
                    Err(e) => {
                        tracing::error!(source = "probe", ?kind, error = %e,
                            "cannot open an ICMP socket: allow the group in net.ipv4.ping_group_range or grant CAP_NET_RAW");
                        None
                    }
                }
            };
            (open(ICMP::V4), open(ICMP::V6))
        } else {
            (None, None)
        };
        let http = reqwest::Client::builder()
            .user_agent(concat!(
                "faultline-agent/",
                env!("CARGO_PKG_VERSION"),
                " probe"
            ))
            .build()?;
        Ok(Self {
            icmp_v4,
            icmp_v6,
            http,
            next_ident: AtomicU16::new(rand::random::<u16>()),
        })
    }
}

/// One probe: its config, its counters and its ICMP identity.
pub struct Probe {
    config: ProbeConfig,
    shared: Arc<Probers>,
    ident: u16,
    seq: u16,
    errors: BTreeMap<&'static str, u64>,
    logs: LogLimiter<&'static str>,
}

impl Probe {
    /// A probe using the agent's shared sockets.
    pub fn new(config: ProbeConfig, shared: Arc<Probers>) -> Self {
        let ident = shared.next_ident.fetch_add(1, Ordering::Relaxed);
        Self {
            config,
            shared,
            ident,
            seq: 0,
            errors: BTreeMap::new(),
            logs: LogLimiter::new(LOG_EVERY, 16),
        }
    }

    /// One round: `count` attempts, then the round's samples and the error counters.
    pub async fn round(&mut self) -> Collection {
        let ts_ms = now_ms();
        let mut http_status = None;
        let attempts = match self.config.kind {
            ProbeKind::Icmp => self.icmp().await,
            ProbeKind::Tcp => self.tcp().await,
            ProbeKind::Http => {
                let (attempts, status) = self.http().await;
                http_status = status;
                attempts
            }
        };
        for attempt in &attempts {
            if let Attempt::Failed(kind) = attempt {
                *self.errors.entry(kind).or_default() += 1;
                if let Some(held_back) = self.logs.check(kind, Instant::now()) {
                    tracing::warn!(source = "probe", probe = %self.config.id, kind, address = %self.config.address, held_back, "probe attempt failed");
                }
            }
        }
        let labels: Vec<(&str, &str)> = self
            .config
            .labels
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let id = self.config.id.as_str();
        let mut out = Round::of(&attempts).samples(id, self.config.kind, ts_ms, &labels);
        let mut with_kind = vec![("probe", self.config.kind.as_str())];
        with_kind.extend_from_slice(&labels);
        if let Some(status) = http_status {
            out.push(sample(
                outcome::METRIC_HTTP_STATUS,
                id,
                f64::from(status),
                SampleKind::Gauge,
                ts_ms,
                &with_kind,
            ));
        }
        for (kind, count) in &self.errors {
            let mut l = with_kind.clone();
            l.push(("kind", kind));
            #[allow(clippy::cast_precision_loss)] // counts far below 2^53
            out.push(sample(
                outcome::METRIC_ERRORS,
                id,
                *count as f64,
                SampleKind::Counter,
                ts_ms,
                &l,
            ));
        }
        out
    }

    fn count(&self) -> usize {
        usize::try_from(self.config.count).unwrap_or(1)
    }

    /// The probe's address as a socket address (port 0 for ICMP), within the probe's timeout.
    async fn resolve(&self) -> Result<SocketAddr, &'static str> {
        let address = self.config.address.as_str();
        let target = match self.config.kind {
            ProbeKind::Tcp => address.to_string(),
            _ => {
                let host = address.trim_start_matches('[').trim_end_matches(']');
                if host.contains(':') {
                    format!("[{host}]:0")
                } else {
                    format!("{host}:0")
                }
            }
        };
        match tokio::time::timeout(self.config.timeout, tokio::net::lookup_host(target)).await {
            Ok(Ok(mut found)) => found.next().ok_or("resolve"),
            Ok(Err(_)) | Err(_) => Err("resolve"),
        }
    }

    async fn icmp(&mut self) -> Vec<Attempt> {
        let address = match self.resolve().await {
            Ok(a) => a.ip(),
            Err(kind) => return vec![Attempt::Failed(kind); self.count()],
        };
        let client = match address {
            IpAddr::V4(_) => self.shared.icmp_v4.as_ref(),
            IpAddr::V6(_) => self.shared.icmp_v6.as_ref(),
        };
        let Some(client) = client else {
            return vec![Attempt::Failed("socket"); self.count()];
        };
        let mut pinger = client.pinger(address, PingIdentifier(self.ident)).await;
        pinger.timeout(self.config.timeout);
        let mut attempts = Vec::with_capacity(self.count());
        for _ in 0..self.count() {
            self.seq = self.seq.wrapping_add(1);
            attempts.push(
                match pinger.ping(PingSequence(self.seq), &ECHO_PAYLOAD).await {
                    Ok((_, rtt)) => Attempt::Ok(rtt.as_secs_f64()),
                    Err(SurgeError::Timeout { .. }) => Attempt::Failed("timeout"),
                    Err(SurgeError::IOError(e)) => Attempt::Failed(outcome::io_error_kind(&e)),
                    Err(_) => Attempt::Failed("network"),
                },
            );
        }
        attempts
    }

    async fn tcp(&self) -> Vec<Attempt> {
        let address = match self.resolve().await {
            Ok(a) => a,
            Err(kind) => return vec![Attempt::Failed(kind); self.count()],
        };
        let mut attempts = Vec::with_capacity(self.count());
        for _ in 0..self.count() {
            let started = Instant::now();
            attempts.push(
                match tokio::time::timeout(
                    self.config.timeout,
                    tokio::net::TcpStream::connect(address),
                )
                .await
                {
                    Ok(Ok(_stream)) => Attempt::Ok(started.elapsed().as_secs_f64()),
                    Ok(Err(e)) => Attempt::Failed(outcome::io_error_kind(&e)),
                    Err(_) => Attempt::Failed("timeout"),
                },
            );
        }
        attempts
    }

    async fn http(&self) -> (Vec<Attempt>, Option<u16>) {
        let mut attempts = Vec::with_capacity(self.count());
        let mut last_status = None;
        for _ in 0..self.count() {
            let started = Instant::now();
            let result = self
                .shared
                .http
                .get(&self.config.address)
                .timeout(self.config.timeout)
                .send()
                .await;
            attempts.push(match result {
                Ok(response) => {
                    let status = response.status().as_u16();
                    last_status = Some(status);
                    // Read the body: the response time includes it, as a user would see it.
                    let _ = response.bytes().await;
                    if outcome::status_ok(status, &self.config.expect_status) {
                        Attempt::Ok(started.elapsed().as_secs_f64())
                    } else {
                        Attempt::Failed("status")
                    }
                }
                Err(e) if e.is_timeout() => Attempt::Failed("timeout"),
                Err(e) => {
                    let text = faultline_daemon::with_causes(&e);
                    Attempt::Failed(if text.contains("dns error") {
                        "resolve"
                    } else if text.contains("certificate") || text.contains("tls") {
                        "tls"
                    } else if text.contains("refused") {
                        "refused"
                    } else {
                        "network"
                    })
                }
            });
        }
        (attempts, last_status)
    }
}

/// The probe task: a round every `interval` (the first at once), each sent to `tx`; returns when
/// `tx`'s receiver is gone.
pub async fn run_probe(mut probe: Probe, tx: mpsc::Sender<Collection>) {
    let mut ticker = tokio::time::interval(probe.config.interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let samples = probe.round().await;
        if tx.send(samples).await.is_err() {
            tracing::debug!(probe = %probe.config.id, "sample channel closed; probe task ends");
            return;
        }
    }
}
