//! The trap and inform listener: receives SNMPv1/v2c traps and informs and SNMPv3 traps and
//! informs (USM) on a UDP socket, acknowledges informs, and turns each notification into
//! samples (a per-sender, per-trap counter, and for linkDown/linkUp the interface's new state)
//! sent straight to the batcher.
//!
//! Flow: UDP → [`TrapDecoder::decode`] (pure) → [`notification_samples`] (pure) → `mpsc` →
//! batcher. For a v3 trap the sender is the authoritative engine (keys localized to its engine
//! id, learnt per packet); for a v3 INFORM the listener is, with its own engine id
//! ([`TrapConfig::engine_id`]): discovery probes, time synchronisation and the acknowledgement
//! go through [`crate::usm_responder`]. A malformed, unknown or unauthorised packet is counted
//! and logged with its sender, at most one line per kind of failure every 10 seconds (and
//! answered with a USM Report when the sender asked for one); it never stops the listener. The
//! per-(sender, trap OID) counters are bounded by [`TrapConfig::max_series`]
//! ([`crate::trap_counts`]).

use crate::Oid;
use crate::config::{Secret, UsmConfig};
pub use crate::trap_counts::TrapCounts;
use crate::usm_responder::{self, EngineId, LocalEngine, UsmError, UsmResponder, UsmStat};
use crate::value::SnmpValue;
use faultline_daemon::log_limit::LogLimiter;
use faultline_wire::{Sample, SampleKind};
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};
use thiserror::Error;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

/// Counter per sender and trap OID.
pub const METRIC_TRAPS: &str = "faultline_snmp_traps";
/// Interface state announced by linkDown/linkUp (ifOperStatus numbers).
pub const METRIC_TRAP_IF_OPER_STATUS: &str = "faultline_snmp_trap_if_oper_status";
/// Listener health: packets by `result` (accepted, discovery — a v3 sender's engine discovery
/// or time synchronisation step —, malformed, rejected, unsupported).
pub const METRIC_TRAP_PACKETS: &str = "faultline_snmp_trap_packets";
/// The listener's RFC 3414 usmStats counters by `stat` (`unknown_engine_ids`, `wrong_digests`,
/// …), once non-zero: why v3 messages to its engine were dropped.
pub const METRIC_TRAP_USM_STATS: &str = "faultline_snmp_trap_usm_stats";
/// (sender, trap OID) counters forgotten to stay within [`TrapConfig::max_series`], once non-zero.
pub const METRIC_TRAP_SERIES_EVICTED: &str = "faultline_snmp_trap_series_evicted";

/// At most one log line per kind of failed packet in this time.
const LOG_EVERY: Duration = Duration::from_secs(10);

const SNMP_TRAP_OID: [u32; 11] = [1, 3, 6, 1, 6, 3, 1, 1, 4, 1, 0];
const STANDARD_TRAPS: [u32; 9] = [1, 3, 6, 1, 6, 3, 1, 1, 5];
const IF_ENTRY: [u32; 9] = [1, 3, 6, 1, 2, 1, 2, 2, 1];

/// Settings of the trap listener (`[snmp.traps]` in the agent config).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrapConfig {
    /// UDP address to listen on. Default `0.0.0.0:162` (needs CAP_NET_BIND_SERVICE; use e.g.
    /// `0.0.0.0:1162` unprivileged and redirect).
    #[serde(default = "default_listen")]
    pub listen: String,
    /// Communities accepted from v1/v2c senders; empty accepts any.
    #[serde(default)]
    pub communities: Vec<Secret>,
    /// Target id carried by the listener's own health samples. Default `snmp-traps`.
    #[serde(default = "default_id")]
    pub id: String,
    /// SNMPv3 users whose traps and informs are accepted, at exactly their configured `level`.
    /// Traps: the sender is the authoritative engine, its engine id is learnt per packet (give
    /// the sender a fixed one, e.g. `snmptrap -e`). Informs: this listener is, with
    /// [`engine_id`](Self::engine_id); senders discover it (`snmpinform` needs no `-e`).
    #[serde(default)]
    pub v3_users: Vec<UsmConfig>,
    /// The listener's own SNMPv3 engine id (hex, 5–32 octets, e.g. `"80001f8805a1b2c3d4e5f60718"`),
    /// authoritative for v3 INFORMs. Default: derived from `/etc/machine-id` (or the host name)
    /// and `listen`, stable across restarts ([`EngineId::derived`]). Engine boots are the
    /// seconds from 2020-01-01 to the listener's start ([`usm_responder::boots_at`]), so they
    /// grow at every restart without a state file.
    #[serde(default)]
    pub engine_id: Option<EngineId>,
    /// Most (sender, trap OID) pairs counted at once, each one `faultline_snmp_traps` series;
    /// past it the least recently seen are forgotten (counted in
    /// `faultline_snmp_trap_series_evicted`). Default 2048 (roughly 0.3 MiB in the agent,
    /// estimated).
    #[serde(default = "default_max_series")]
    pub max_series: usize,
}

impl Default for TrapConfig {
    fn default() -> Self {
        Self {
            listen: default_listen(),
            communities: Vec::new(),
            id: default_id(),
            v3_users: Vec::new(),
            engine_id: None,
            max_series: default_max_series(),
        }
    }
}

fn default_max_series() -> usize {
    2048
}

fn default_listen() -> String {
    "0.0.0.0:162".into()
}
fn default_id() -> String {
    "snmp-traps".into()
}

/// One received notification.
#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    /// v1 or v2c community, or the v3 user name.
    pub community: String,
    /// The trap OID (v1 traps mapped as in RFC 3584).
    pub trap_oid: Oid,
    /// Varbinds other than sysUpTime and snmpTrapOID.
    pub varbinds: Vec<(Oid, SnmpValue)>,
    /// The encoded Response to send back, for an INFORM.
    pub ack: Option<Vec<u8>>,
}

/// Why a packet was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TrapError {
    /// Not decodable BER / SNMP.
    #[error("malformed packet: {0}")]
    Malformed(String),
    /// A PDU that is not a trap or inform, or an SNMPv3 message.
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// Community not in the configured list, or unknown v3 user.
    #[error("community or user not accepted")]
    Rejected,
    /// An SNMPv3 message to the listener's own engine that its USM did not accept.
    #[error(transparent)]
    Usm(#[from] UsmError),
}

impl TrapError {
    fn result_label(&self) -> &'static str {
        match self {
            Self::Malformed(_) | Self::Usm(UsmError::Malformed(_)) => "malformed",
            Self::Unsupported(_) => "unsupported",
            Self::Rejected => "rejected",
            Self::Usm(UsmError::Dropped { stat, .. }) => match stat {
                s if s.is_discovery() => "discovery",
                UsmStat::DecryptionErrors => "malformed",
                _ => "rejected",
            },
        }
    }

    /// The USM Report to send back to the sender, if any.
    pub fn report(&self) -> Option<&[u8]> {
        match self {
            Self::Usm(UsmError::Dropped {
                report: Some(report),
                ..
            }) => Some(report),
            _ => None,
        }
    }
}

/// Most (user, sender engine) keys kept; a flood of spoofed engine ids cannot grow it further.
const MAX_V3_KEYS: usize = 1024;

/// Decodes notifications: community check for v1/v2c, USM (authentication, privacy) for v3:
/// traps with keys localized per sender engine id and cached, messages to the listener's own
/// engine (informs, discovery) through its [`UsmResponder`].
pub struct TrapDecoder {
    communities: Vec<Secret>,
    users: Vec<UsmConfig>,
    keys: HashMap<(Vec<u8>, Vec<u8>), snmp2::v3::Security>,
    responder: UsmResponder,
}

impl TrapDecoder {
    /// A decoder for `config`'s communities and v3 users, with the local engine `config` names
    /// (or the derived default, see [`TrapConfig::engine_id`]) booted now.
    pub fn new(config: &TrapConfig) -> Self {
        let id = config.engine_id.clone().unwrap_or_else(|| {
            let host = ["/etc/machine-id", "/proc/sys/kernel/hostname"]
                .iter()
                .find_map(|f| std::fs::read(f).ok())
                .unwrap_or_default();
            EngineId::derived(&host, &config.listen)
        });
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let engine = LocalEngine {
            id,
            boots: usm_responder::boots_at(now.as_secs()),
            started: std::time::Instant::now(),
        };
        Self::with_engine(config, engine, u64::from(now.subsec_nanos()))
    }

    /// A decoder with a given local engine; `salt` seeds the privacy salt counter.
    pub fn with_engine(config: &TrapConfig, engine: LocalEngine, salt: u64) -> Self {
        Self {
            communities: config.communities.clone(),
            users: config.v3_users.clone(),
            keys: HashMap::new(),
            responder: UsmResponder::new(engine, &config.v3_users, salt),
        }
    }

    /// The local engine informs are sent to.
    pub fn engine(&self) -> &LocalEngine {
        self.responder.engine()
    }

    /// The usmStats counters that are not zero.
    pub fn usm_stats(&self) -> impl Iterator<Item = (UsmStat, u32)> + '_ {
        self.responder.stats().nonzero()
    }

    /// Decodes one datagram. No communities configured accepts any community.
    pub fn decode(&mut self, bytes: &[u8]) -> Result<Notification, TrapError> {
        match snmp2::Pdu::from_bytes(bytes) {
            Ok(pdu) => {
                if !self.communities.is_empty()
                    && !self
                        .communities
                        .iter()
                        .any(|c| c.expose().as_bytes() == pdu.community)
                {
                    return Err(TrapError::Rejected);
                }
                let mut n = notification(&pdu)?;
                if pdu.message_type == snmp2::MessageType::InformRequest {
                    let mut response = pdu.clone();
                    response.message_type = snmp2::MessageType::Response;
                    response.error_status = 0;
                    response.error_index = 0;
                    n.ack = Some(
                        response
                            .to_bytes()
                            .map_err(|e| TrapError::Malformed(e.to_string()))?,
                    );
                }
                Ok(n)
            }
            Err(snmp2::Error::AuthFailure(snmp2::v3::AuthErrorKind::SecurityNotProvided)) => {
                self.decode_v3(bytes)
            }
            Err(e) => Err(TrapError::Malformed(e.to_string())),
        }
    }

    fn decode_v3(&mut self, bytes: &[u8]) -> Result<Notification, TrapError> {
        let msg = usm_responder::parse_message(bytes)?;
        if msg.engine_id.is_empty() || msg.engine_id == self.engine().id.as_bytes() {
            return self.decode_authoritative(bytes, &msg);
        }
        let usm = self
            .users
            .iter()
            .find(|u| u.user.as_bytes() == msg.user)
            .ok_or(TrapError::Rejected)?;
        let key = (msg.user.to_vec(), msg.engine_id.to_vec());
        if !self.keys.contains_key(&key) {
            if self.keys.len() >= MAX_V3_KEYS {
                self.keys.clear();
            }
            let security = crate::client::security(usm)
                .with_engine_id(&key.1)
                .map_err(|e| TrapError::Malformed(e.to_string()))?;
            self.keys.insert(key.clone(), security);
        }
        let security = self.keys.get_mut(&key).ok_or(TrapError::Rejected)?;
        // snmp2 writes into the buffer while checking the HMAC: give it a private copy.
        let copy = bytes.to_vec();
        let pdu =
            snmp2::Pdu::from_bytes_with_security(&copy, Some(security)).map_err(|e| match e {
                snmp2::Error::AuthFailure(kind) => {
                    TrapError::Malformed(format!("SNMPv3 authentication failed: {kind}"))
                }
                e => TrapError::Malformed(e.to_string()),
            })?;
        if pdu.message_type != snmp2::MessageType::Trap {
            return Err(TrapError::Unsupported(format!(
                "SNMPv3 {:?} PDU",
                pdu.message_type
            )));
        }
        notification(&pdu)
    }

    /// A v3 message to the listener's own engine: discovery probe, time synchronisation, or an
    /// INFORM (acknowledged) or trap sent with our engine id.
    fn decode_authoritative(
        &mut self,
        bytes: &[u8],
        msg: &usm_responder::V3Message<'_>,
    ) -> Result<Notification, TrapError> {
        let clock = self.engine().clock();
        let incoming = self.responder.process(bytes, msg, clock)?;
        let user = self
            .responder
            .user(incoming.user)
            .map(|u| u.name().to_vec())
            .unwrap_or_default();
        let wrapped = usm_responder::as_v2c_message(&user, &incoming.scoped.pdu);
        let pdu =
            snmp2::Pdu::from_bytes(&wrapped).map_err(|e| TrapError::Malformed(e.to_string()))?;
        let mut n = notification(&pdu)?;
        if pdu.message_type == snmp2::MessageType::InformRequest {
            n.ack = Some(self.responder.response(&incoming, clock)?);
        }
        Ok(n)
    }
}

/// The notification a decoded trap/inform PDU carries (without the acknowledgement, which
/// depends on the SNMP version).
fn notification(pdu: &snmp2::Pdu<'_>) -> Result<Notification, TrapError> {
    let community = String::from_utf8_lossy(pdu.community).into_owned();
    let mut varbinds = SnmpValue::varbinds(pdu)
        .ok_or_else(|| TrapError::Malformed("OID arc beyond 32 bits".into()))?;
    let trap_oid = match pdu.message_type {
        snmp2::MessageType::TrapV1 => {
            let info = pdu
                .v1_trap_info
                .as_ref()
                .ok_or_else(|| TrapError::Malformed("v1 trap without header".into()))?;
            let enterprise = Oid::from_snmp2(&info.enterprise)
                .ok_or_else(|| TrapError::Malformed("bad enterprise OID".into()))?;
            v1_trap_oid(&enterprise, info.generic_trap, info.specific_trap)?
        }
        snmp2::MessageType::Trap | snmp2::MessageType::InformRequest => {
            match varbinds.iter().find(|(oid, _)| oid.arcs() == SNMP_TRAP_OID) {
                Some((_, SnmpValue::ObjectId(oid))) => oid.clone(),
                _ => return Err(TrapError::Malformed("no snmpTrapOID.0 varbind".into())),
            }
        }
        other => return Err(TrapError::Unsupported(format!("{other:?} PDU"))),
    };
    varbinds.retain(|(oid, _)| {
        oid.arcs() != SNMP_TRAP_OID && oid.arcs() != [1, 3, 6, 1, 2, 1, 1, 3, 0]
    });
    Ok(Notification {
        community,
        trap_oid,
        varbinds,
        ack: None,
    })
}

/// RFC 3584 §3.1: generic traps 0–5 → snmpTraps.(generic+1); enterprise-specific →
/// enterprise.0.specific.
fn v1_trap_oid(enterprise: &Oid, generic: i64, specific: i64) -> Result<Oid, TrapError> {
    let bad = || TrapError::Malformed(format!("v1 trap type {generic}/{specific}"));
    match generic {
        0..=5 => Ok(Oid::new(STANDARD_TRAPS.to_vec())
            .child(&[u32::try_from(generic + 1).map_err(|_| bad())?])),
        6 => Ok(enterprise.child(&[0, u32::try_from(specific).map_err(|_| bad())?])),
        _ => Err(bad()),
    }
}

/// A readable name for well-known trap OIDs.
pub fn trap_name(oid: &Oid) -> Option<&'static str> {
    let names: [(&[u32], &str); 10] = [
        (&[1, 3, 6, 1, 6, 3, 1, 1, 5, 1], "coldStart"),
        (&[1, 3, 6, 1, 6, 3, 1, 1, 5, 2], "warmStart"),
        (&[1, 3, 6, 1, 6, 3, 1, 1, 5, 3], "linkDown"),
        (&[1, 3, 6, 1, 6, 3, 1, 1, 5, 4], "linkUp"),
        (&[1, 3, 6, 1, 6, 3, 1, 1, 5, 5], "authenticationFailure"),
        (&[1, 3, 6, 1, 2, 1, 33, 2, 0, 1], "upsTrapOnBattery"),
        (&[1, 3, 6, 1, 2, 1, 33, 2, 0, 2], "upsTrapTestCompleted"),
        (&[1, 3, 6, 1, 2, 1, 33, 2, 0, 3], "upsTrapAlarmEntryAdded"),
        (&[1, 3, 6, 1, 2, 1, 33, 2, 0, 4], "upsTrapAlarmEntryRemoved"),
        (&[1, 3, 6, 1, 4, 1, 8072, 4, 0, 2], "nsNotifyShutdown"),
    ];
    names
        .iter()
        .find(|(arcs, _)| *arcs == oid.arcs())
        .map(|(_, name)| *name)
}

/// Samples for one notification from `target`: the per-trap counter and, for linkDown/linkUp,
/// the interface state it announces.
pub fn notification_samples(
    n: &Notification,
    target: &str,
    ts_ms: i64,
    counts: &mut TrapCounts,
) -> Vec<Sample> {
    let count = counts.count(target, &n.trap_oid);
    let mut labels = BTreeMap::from([("trap_oid".to_string(), n.trap_oid.to_string())]);
    if let Some(name) = trap_name(&n.trap_oid) {
        labels.insert("trap".into(), name.into());
    }
    #[allow(clippy::cast_precision_loss)] // counts far below 2^53
    let mut out = vec![Sample {
        metric: METRIC_TRAPS.into(),
        target: target.into(),
        labels,
        value: count as f64,
        ts_ms,
        kind: SampleKind::Counter,
    }];
    let link = match n.trap_oid.arcs() {
        [1, 3, 6, 1, 6, 3, 1, 1, 5, 3] => Some(2.0),
        [1, 3, 6, 1, 6, 3, 1, 1, 5, 4] => Some(1.0),
        _ => None,
    };
    if let Some(default_state) = link {
        let entry = Oid::new(IF_ENTRY.to_vec());
        let index = n
            .varbinds
            .iter()
            .find_map(|(oid, _)| match oid.suffix_after(&entry) {
                Some([_, index]) => Some(*index),
                _ => None,
            });
        if let Some(index) = index {
            let oper = entry.child(&[8, index]);
            #[allow(clippy::cast_precision_loss)]
            let state = n.varbinds.iter().find_map(|(oid, v)| match v {
                SnmpValue::Integer(s) if *oid == oper => Some(*s as f64),
                _ => None,
            });
            out.push(Sample {
                metric: METRIC_TRAP_IF_OPER_STATUS.into(),
                target: target.into(),
                labels: BTreeMap::from([("ifindex".to_string(), index.to_string())]),
                value: state.unwrap_or(default_state),
                ts_ms,
                kind: SampleKind::State,
            });
        }
    }
    out
}

/// Sender address → device id for [`run_trap_listener`], from devices configured by IP address
/// (devices configured by host name are named by the sender's IP until the agent resolves them).
pub fn trap_targets(devices: &[crate::DeviceConfig]) -> HashMap<IpAddr, String> {
    devices
        .iter()
        .filter_map(|d| {
            let ip = d
                .address
                .parse::<SocketAddr>()
                .map(|a| a.ip())
                .or_else(|_| d.address.parse::<IpAddr>())
                .ok()?;
            Some((ip, d.id.clone()))
        })
        .collect()
}

/// Receives notifications on `socket` (bound by the agent to [`TrapConfig::listen`]) until `tx`'s receiver is gone. `targets` maps sender
/// addresses to device ids (senders not in it are named by their IP address).
pub async fn run_trap_listener(
    socket: UdpSocket,
    config: TrapConfig,
    targets: HashMap<IpAddr, String>,
    tx: mpsc::Sender<Vec<Sample>>,
) {
    let mut buf = vec![0u8; 65_535];
    let mut counts = TrapCounts::new(config.max_series);
    let mut log_limit: LogLimiter<&'static str> = LogLimiter::new(LOG_EVERY, 16);
    let mut decoder = TrapDecoder::new(&config);
    tracing::info!(
        engine_id = %decoder.engine().id,
        boots = decoder.engine().boots,
        "SNMPv3 engine of the trap listener (authoritative for v3 informs)"
    );
    // Packets by result, reported as samples after every packet.
    let mut packets: BTreeMap<&'static str, u64> = BTreeMap::new();
    loop {
        let (n, from): (usize, SocketAddr) = match socket.recv_from(&mut buf).await {
            Ok(r) => r,
            Err(e) => {
                if let Some(held_back) = log_limit.check(&"receive", Instant::now()) {
                    tracing::warn!(error = %e, held_back, "trap socket receive failed");
                }
                continue;
            }
        };
        let ts_ms = now_ms();
        let target = targets
            .get(&from.ip())
            .cloned()
            .unwrap_or_else(|| from.ip().to_string());
        let mut samples = match decoder.decode(&buf[..n]) {
            Ok(notification) => {
                if let Some(ack) = &notification.ack
                    && let Err(e) = socket.send_to(ack, from).await
                    && let Some(held_back) = log_limit.check(&"ack", Instant::now())
                {
                    tracing::warn!(sender = %from, error = %e, held_back, "cannot acknowledge inform");
                }
                tracing::debug!(sender = %from, trap = %notification.trap_oid, "notification");
                *packets.entry("accepted").or_default() += 1;
                notification_samples(&notification, &target, ts_ms, &mut counts)
            }
            Err(e) => {
                let result = e.result_label();
                if result == "discovery" {
                    tracing::debug!(sender = %from, step = %e, "SNMPv3 engine discovery");
                } else if let Some(held_back) = log_limit.check(&result, Instant::now()) {
                    tracing::warn!(sender = %from, bytes = n, error = %e, held_back,
                        "SNMP notification dropped (one line per kind every 10 s; all counted)");
                }
                if let Some(report) = e.report()
                    && let Err(e) = socket.send_to(report, from).await
                    && let Some(held_back) = log_limit.check(&"report", Instant::now())
                {
                    tracing::warn!(sender = %from, error = %e, held_back, "cannot send SNMPv3 report");
                }
                *packets.entry(result).or_default() += 1;
                Vec::new()
            }
        };
        #[allow(clippy::cast_precision_loss)] // counts far below 2^53
        samples.extend(packets.iter().map(|(result, count)| Sample {
            metric: METRIC_TRAP_PACKETS.into(),
            target: config.id.clone(),
            labels: BTreeMap::from([("result".to_string(), (*result).to_string())]),
            value: *count as f64,
            ts_ms,
            kind: SampleKind::Counter,
        }));
        samples.extend(decoder.usm_stats().map(|(stat, count)| Sample {
            metric: METRIC_TRAP_USM_STATS.into(),
            target: config.id.clone(),
            labels: BTreeMap::from([("stat".to_string(), stat.label().to_string())]),
            value: f64::from(count),
            ts_ms,
            kind: SampleKind::Counter,
        }));
        if counts.evicted() > 0 {
            #[allow(clippy::cast_precision_loss)] // counts far below 2^53
            samples.push(Sample {
                metric: METRIC_TRAP_SERIES_EVICTED.into(),
                target: config.id.clone(),
                labels: BTreeMap::new(),
                value: counts.evicted() as f64,
                ts_ms,
                kind: SampleKind::Counter,
            });
        }
        if tx.send(samples).await.is_err() {
            return;
        }
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_from_devices() {
        let devices = [
            crate::DeviceConfig::v2c("a", "10.0.0.1", "public"),
            crate::DeviceConfig::v2c("b", "10.0.0.2:1161", "public"),
            crate::DeviceConfig::v2c("c", "[::1]:161", "public"),
            crate::DeviceConfig::v2c("d", "ups.example", "public"),
        ];
        let targets = trap_targets(&devices);
        assert_eq!(targets.len(), 3);
        assert_eq!(targets[&"10.0.0.2".parse::<IpAddr>().unwrap()], "b");
        assert_eq!(targets[&"::1".parse::<IpAddr>().unwrap()], "c");
    }

    #[test]
    fn v1_mapping() {
        let ent: Oid = "1.3.6.1.4.1.8072".parse().unwrap();
        assert_eq!(
            v1_trap_oid(&ent, 2, 0).unwrap().to_string(),
            "1.3.6.1.6.3.1.1.5.3"
        );
        assert_eq!(
            v1_trap_oid(&ent, 6, 17).unwrap().to_string(),
            "1.3.6.1.4.1.8072.0.17"
        );
        assert!(v1_trap_oid(&ent, 7, 0).is_err());
    }

    #[test]
    fn garbage_is_malformed() {
        for bytes in [
            &[][..],
            &[0x30, 0x84, 0xff],
            &[0x30, 0x03, 0x02, 0x01, 0x07],
        ] {
            assert!(
                matches!(
                    TrapDecoder::new(&TrapConfig::default()).decode(bytes),
                    Err(TrapError::Malformed(_) | TrapError::Unsupported(_))
                ),
                "{bytes:?}"
            );
        }
    }

    #[test]
    fn v3_probe_is_discovery_answered_with_a_report() {
        // net-snmp's engine discovery probe (captured with `snmpinform -d`): noAuthNoPriv,
        // reportable, no engine id, empty GET.
        let probe = include_bytes!("../fuzz/seeds/v3-probe");
        let config = TrapConfig {
            engine_id: Some(EngineId::from_hex("80001f8805a1b2c3d4e5f60718").unwrap()),
            ..TrapConfig::default()
        };
        let mut decoder = TrapDecoder::new(&config);
        let err = decoder.decode(probe).unwrap_err();
        assert_eq!(err.result_label(), "discovery", "{err}");
        let report = usm_responder::parse_message(err.report().unwrap()).unwrap();
        assert_eq!(
            (report.msg_id, report.engine_id, report.boots),
            (
                0x6b4a_e8b6,
                config.engine_id.as_ref().unwrap().as_bytes(),
                decoder.engine().boots
            )
        );
        assert_eq!(
            decoder.usm_stats().collect::<Vec<_>>(),
            [(UsmStat::UnknownEngineIds, 1)]
        );
    }

    #[test]
    fn captured_net_snmp_v3_informs_are_acknowledged() {
        // `snmpinform -e 0x80001f8805f0f1f2f3f4f5f6f7` (boots/time 0/0): the fuzz seeds.
        let users = [
            UsmConfig {
                user: "faultline".into(),
                level: crate::config::SecurityLevel::AuthPriv,
                auth_protocol: crate::config::AuthProtocol::Sha256,
                auth_password: Secret::new("authpass-256"),
                priv_protocol: crate::config::PrivProtocol::Aes128,
                priv_password: Secret::new("privpass-aes"),
                context: String::new(),
            },
            UsmConfig {
                user: "fuzz-noauth".into(),
                level: crate::config::SecurityLevel::NoAuthNoPriv,
                auth_protocol: crate::config::AuthProtocol::Sha256,
                auth_password: Secret::new(""),
                priv_protocol: crate::config::PrivProtocol::Aes128,
                priv_password: Secret::new(""),
                context: String::new(),
            },
        ];
        let config = TrapConfig {
            v3_users: users.to_vec(),
            ..TrapConfig::default()
        };
        let engine = |boots| LocalEngine {
            id: EngineId::from_hex("80001f8805f0f1f2f3f4f5f6f7").unwrap(),
            boots,
            started: std::time::Instant::now(),
        };
        let cases: [(&[u8], &str, bool); 2] = [
            (
                include_bytes!("../fuzz/seeds/v3-inform-authpriv"),
                "linkUp",
                true,
            ),
            (
                include_bytes!("../fuzz/seeds/v3-inform-noauth"),
                "linkDown",
                false,
            ),
        ];
        for (bytes, trap, authenticated) in cases {
            let mut decoder = TrapDecoder::with_engine(&config, engine(0), 1);
            let n = decoder.decode(bytes).unwrap();
            assert_eq!(trap_name(&n.trap_oid), Some(trap));
            let ack = usm_responder::parse_message(n.ack.as_deref().unwrap()).unwrap();
            assert_eq!(
                ack.msg_id,
                usm_responder::parse_message(bytes).unwrap().msg_id
            );
            // After our engine rebooted, an authenticated message is outside the time window.
            let rebooted = TrapDecoder::with_engine(&config, engine(5), 1).decode(bytes);
            match rebooted {
                Err(e) if authenticated => {
                    assert_eq!(e.result_label(), "discovery", "{e}");
                    assert!(e.report().is_some());
                }
                Ok(_) if !authenticated => {}
                other => panic!("{trap}: {other:?}"),
            }
        }
    }

    #[test]
    fn link_down_samples() {
        let n = Notification {
            community: "public".into(),
            trap_oid: "1.3.6.1.6.3.1.1.5.3".parse().unwrap(),
            varbinds: vec![
                (
                    "1.3.6.1.2.1.2.2.1.1.7".parse().unwrap(),
                    SnmpValue::Integer(7),
                ),
                (
                    "1.3.6.1.2.1.2.2.1.8.7".parse().unwrap(),
                    SnmpValue::Integer(7),
                ),
            ],
            ack: None,
        };
        let mut counts = TrapCounts::new(8);
        notification_samples(&n, "sw1", 1, &mut counts);
        let out = notification_samples(&n, "sw1", 2, &mut counts);
        assert_eq!(
            (out[0].value, out[0].labels["trap"].as_str()),
            (2.0, "linkDown")
        );
        assert_eq!(
            (out[1].value, out[1].labels["ifindex"].as_str()),
            (7.0, "7"),
            "lowerLayerDown from the varbind"
        );
    }
}
