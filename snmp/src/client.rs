//! The thin async shell around `snmp2`: one [`Client`] per device with timeout, retries, v3
//! re-synchronisation, and GET / GETNEXT / GETBULK walks whose max-repetitions back off when
//! responses are too big.
//!
//! Used by the device task ([`crate::poller`]); returns owned varbinds that the pure core
//! ([`crate::collect`]) turns into samples.

use crate::Oid;
use crate::collect::VarbindMap;
use crate::config::{AuthProtocol, DeviceConfig, PrivProtocol, SecurityLevel, SnmpVersion};
use crate::value::SnmpValue;
use snmp2::{AsyncSession, v3};
use std::fmt;
use std::time::Duration;
use thiserror::Error;

/// error-status tooBig.
const TOO_BIG: u32 = 1;
/// error-status noSuchName (v1's way to say "missing" or "end of MIB").
const NO_SUCH_NAME: u32 = 2;
/// Walks in a row without a back-off after which max-repetitions doubles back towards the
/// configured value (a device that was only briefly overloaded gets fast walks again; one that
/// really needs small responses costs one tooBig or dropped response every this many walks).
const GROW_BACK_AFTER: u32 = 10;

/// A request to a device failed; names the device and what was asked.
#[derive(Debug, Clone, Error, PartialEq)]
#[error("device {device}: {request}: {kind}")]
pub struct SnmpError {
    /// Device id.
    pub device: String,
    /// The request (`GET 1.3.6.1.2.1.1.3.0 (+1)`, `walk ifTable`).
    pub request: String,
    /// What went wrong.
    pub kind: ErrorKind,
}

/// Kinds of [`SnmpError`].
#[derive(Debug, Clone, Error, PartialEq)]
pub enum ErrorKind {
    /// No answer within the timeout, after every retry.
    #[error("no response after {attempts} attempts of {timeout:?}{hint}")]
    Timeout {
        /// Attempts made.
        attempts: u32,
        /// Per-attempt timeout.
        timeout: Duration,
        /// What else silence can mean for this device's settings (may be empty).
        hint: &'static str,
    },
    /// Socket problem (unresolvable address, ICMP port unreachable, …).
    #[error("network: {0}")]
    Network(String),
    /// The device answered something `snmp2` could not accept (malformed BER, wrong community,
    /// v3 authentication or decryption failure, engine id mismatch, …).
    #[error("protocol: {0}")]
    Protocol(String),
    /// The device answered with an error-status.
    #[error("error-status {status} ({}) at varbind {index}", status_name(*status))]
    Status {
        /// error-status.
        status: u32,
        /// error-index (1-based; 0 = whole request).
        index: u32,
    },
    /// A walk got OIDs that do not increase (a broken agent would loop forever).
    #[error("walk not increasing at OID {0}")]
    NotIncreasing(Oid),
}

impl ErrorKind {
    /// Short name for the `kind` label of the errors counter.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Timeout { .. } => "timeout",
            Self::Network(_) => "network",
            Self::Protocol(_) => "protocol",
            Self::Status { .. } => "error_status",
            Self::NotIncreasing(_) => "not_increasing",
        }
    }
}

fn status_name(status: u32) -> &'static str {
    match status {
        1 => "tooBig",
        2 => "noSuchName",
        3 => "badValue",
        5 => "genErr",
        6 => "noAccess",
        16 => "authorizationError",
        _ => "other",
    }
}

/// Operation sent to the device.
#[derive(Debug, Clone, Copy)]
enum Op<'a> {
    Get(&'a [Oid]),
    GetNext(&'a Oid),
    GetBulk(&'a [Oid], u32),
}

impl fmt::Display for Op<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (name, oids, reps) = match self {
            Op::Get(oids) => ("GET", *oids, None),
            Op::GetNext(oid) => ("GETNEXT", std::slice::from_ref(*oid), None),
            Op::GetBulk(oids, r) => ("GETBULK", *oids, Some(*r)),
        };
        write!(f, "{name}")?;
        if let Some(first) = oids.first() {
            write!(f, " {first}")?;
        }
        if oids.len() > 1 {
            write!(f, " (+{} more)", oids.len() - 1)?;
        }
        if let Some(r) = reps {
            write!(f, " max-repetitions {r}")?;
        }
        Ok(())
    }
}

/// What one exchange returned, owned.
struct Response {
    error_status: u32,
    error_index: u32,
    varbinds: Vec<(Oid, SnmpValue)>,
}

/// A per-device SNMP client. Not shared: the device task owns it.
pub struct Client {
    device: String,
    address: String,
    version: SnmpVersion,
    community: Vec<u8>,
    usm: Option<crate::config::UsmConfig>,
    timeout: Duration,
    retries: u32,
    repetitions: Repetitions,
    max_oids: usize,
    getbulk: bool,
    session: Option<AsyncSession>,
    timeouts: u64,
}

impl Client {
    /// A client for `config`; connects lazily on the first request.
    pub fn new(config: &DeviceConfig) -> Self {
        Self {
            device: config.id.clone(),
            address: with_default_port(&config.address),
            version: config.version,
            community: config.community.expose().as_bytes().to_vec(),
            usm: config.v3.clone(),
            timeout: config.timeout,
            retries: config.retries,
            repetitions: Repetitions::new(config.max_repetitions),
            max_oids: config.max_oids_per_request.max(1),
            getbulk: config.getbulk,
            session: None,
            timeouts: 0,
        }
    }

    /// Timeouts seen since the client was created (every attempt counts).
    pub fn timeouts(&self) -> u64 {
        self.timeouts
    }

    /// Closes the session between polls for v1/v2c (a socket and two 64 KiB buffers each, times
    /// thousands of devices); v3 keeps it, since a new one costs an engine discovery.
    pub fn release_idle(&mut self) {
        if self.version != SnmpVersion::V3 {
            self.session = None;
        }
    }

    /// The GETBULK max-repetitions currently used (after any back-off).
    pub fn max_repetitions(&self) -> u32 {
        self.repetitions.current
    }

    fn error(&self, request: impl fmt::Display, kind: ErrorKind) -> SnmpError {
        SnmpError {
            device: self.device.clone(),
            request: request.to_string(),
            kind,
        }
    }

    async fn connect(&self) -> Result<AsyncSession, ErrorKind> {
        let req_id = starting_request_id();
        let net = |e: std::io::Error| ErrorKind::Network(e.to_string());
        match (self.version, &self.usm) {
            (SnmpVersion::V1, _) => {
                AsyncSession::new_v1(self.address.as_str(), &self.community, req_id)
                    .await
                    .map_err(net)
            }
            (SnmpVersion::V2c, _) => {
                AsyncSession::new_v2c(self.address.as_str(), &self.community, req_id)
                    .await
                    .map_err(net)
            }
            (SnmpVersion::V3, None) => Err(ErrorKind::Protocol(
                "version v3 needs a `v3` section".into(),
            )),
            (SnmpVersion::V3, Some(usm)) => {
                let mut session =
                    AsyncSession::new_v3(self.address.as_str(), req_id, security(usm))
                        .await
                        .map_err(net)?;
                match tokio::time::timeout(self.timeout, session.init()).await {
                    Err(_) => Err(self.timeout_error(1)),
                    Ok(Err(e)) => Err(protocol(&e)),
                    Ok(Ok(())) => Ok(session),
                }
            }
        }
    }

    /// Sends `op` with timeout and retries. A timed-out or failed session is dropped, so a late
    /// reply can never be taken for the next request's (snmp2 would report RequestIdMismatch);
    /// v3 re-discovers the engine on the new session.
    async fn request(&mut self, op: Op<'_>) -> Result<Response, SnmpError> {
        let wanted: &[Oid] = match op {
            Op::Get(oids) | Op::GetBulk(oids, _) => oids,
            Op::GetNext(oid) => std::slice::from_ref(oid),
        };
        let oids: Vec<snmp2::Oid<'static>> = wanted
            .iter()
            .map(Oid::to_snmp2)
            .collect::<Result<_, _>>()
            .map_err(|e| self.error(op, ErrorKind::Protocol(e.to_string())))?;
        let attempts = self.retries + 1;
        let mut last = self.timeout_error(attempts);
        let (mut attempt, mut resyncs) = (0, 0);
        while attempt < attempts {
            attempt += 1;
            let mut session = match self.session.take() {
                Some(s) => s,
                None => match self.connect().await {
                    Ok(s) => s,
                    Err(kind) => {
                        if matches!(kind, ErrorKind::Timeout { .. }) {
                            self.timeouts += 1;
                        }
                        last = kind;
                        continue;
                    }
                },
            };
            match tokio::time::timeout(self.timeout, exchange(&mut session, op, &oids)).await {
                Err(_) => {
                    self.timeouts += 1;
                    tracing::debug!(device = %self.device, request = %op, attempt, "timeout");
                    last = self.timeout_error(attempts);
                }
                Ok(Ok(response)) => {
                    self.session = Some(session);
                    return Ok(response);
                }
                // The device restarted and the v3 engine time/boots changed: repeat at once.
                // The device restarted and the v3 engine boots/time changed: repeat at once,
                // without using up a retry (bounded, in case a device keeps doing it).
                Ok(Err(snmp2::Error::AuthUpdated)) => {
                    self.session = Some(session);
                    last = ErrorKind::Protocol("v3 security context keeps changing".into());
                    if resyncs < 2 {
                        resyncs += 1;
                        attempt -= 1;
                    }
                }
                Ok(Err(e)) => {
                    tracing::debug!(device = %self.device, request = %op, attempt, error = %e, "request failed");
                    last = match e {
                        snmp2::Error::Receive | snmp2::Error::Send => {
                            ErrorKind::Network(e.to_string())
                        }
                        _ => protocol(&e),
                    };
                }
            }
        }
        if let ErrorKind::Timeout { attempts: made, .. } = &mut last {
            *made = attempts; // a connect (v3 discovery) timeout counts as one of them
        }
        Err(self.error(op, last))
    }

    fn timeout_error(&self, attempts: u32) -> ErrorKind {
        let hint = match self.version {
            SnmpVersion::V3 => {
                " (SNMPv3: agents such as net-snmp also stay silent on a wrong privacy password)"
            }
            _ => " (or a wrong community: agents do not answer those)",
        };
        ErrorKind::Timeout {
            attempts,
            timeout: self.timeout,
            hint,
        }
    }

    /// GETs `oids` in requests of at most `max_oids_per_request`. Missing OIDs come back as
    /// noSuchObject/noSuchInstance values (v1's noSuchName is turned into noSuchObject).
    pub async fn get(&mut self, oids: &[Oid]) -> Result<VarbindMap, SnmpError> {
        let mut out = VarbindMap::new();
        let mut pending: Vec<Oid> = oids.to_vec();
        while !pending.is_empty() {
            let chunk: Vec<Oid> = pending.iter().take(self.max_oids).cloned().collect();
            let response = self.request(Op::Get(&chunk)).await?;
            match (
                response.error_status,
                usize::try_from(response.error_index).unwrap_or(0),
            ) {
                (0, _) => {
                    out.extend(response.varbinds);
                    pending.drain(..chunk.len());
                }
                (NO_SUCH_NAME, i) if (1..=chunk.len()).contains(&i) => {
                    let missing = pending.remove(i - 1);
                    out.insert(missing, SnmpValue::NoSuchObject);
                }
                (TOO_BIG, _) if chunk.len() > 1 => {
                    self.max_oids = (chunk.len() / 2).max(1);
                    tracing::info!(device = %self.device, max_oids = self.max_oids, "tooBig: fewer OIDs per GET");
                }
                (status, index) => {
                    return Err(self.error(
                        Op::Get(&chunk),
                        ErrorKind::Status {
                            status,
                            index: u32::try_from(index).unwrap_or(0),
                        },
                    ));
                }
            }
        }
        Ok(out)
    }

    /// Walks the subtrees under `columns` (columns of one table, walked side by side) and returns
    /// every varbind found. `what` names the table in errors.
    pub async fn walk(&mut self, what: &str, columns: &[Oid]) -> Result<VarbindMap, SnmpError> {
        let result = if self.version == SnmpVersion::V1 || !self.getbulk {
            self.walk_getnext(columns).await
        } else {
            self.walk_bulk(columns).await
        };
        result.map_err(|mut e| {
            e.request = format!("walk {what}: {}", e.request);
            e
        })
    }

    async fn walk_bulk(&mut self, columns: &[Oid]) -> Result<VarbindMap, SnmpError> {
        // Each column's cells, in the (increasing) order they arrive: the last one is where the
        // column's walk goes on, and the map is built once at the end from these sorted runs.
        let mut found: Vec<Vec<(Oid, SnmpValue)>> = vec![Vec::new(); columns.len()];
        let last = |found: &[Vec<(Oid, SnmpValue)>], c: usize| -> Oid {
            found[c].last().map_or(&columns[c], |(oid, _)| oid).clone()
        };
        // Columns still being walked (indexes into `columns`).
        let mut cursors: Vec<usize> = (0..columns.len()).collect();
        let (mut backed_off, mut backed_off_on_timeout) = (false, false);
        while !cursors.is_empty() {
            let oids: Vec<Oid> = cursors.iter().map(|&c| last(&found, c)).collect();
            let reps = self.repetitions.current;
            let response = match self.request(Op::GetBulk(&oids, reps)).await {
                Ok(r) => r,
                // A device that drops big responses instead of answering tooBig: try smaller.
                // (once per walk: a device that died mid-walk must not cost every halving).
                Err(SnmpError {
                    kind: ErrorKind::Timeout { .. },
                    ..
                }) if reps > 1 && !backed_off_on_timeout => {
                    (backed_off, backed_off_on_timeout) = (true, true);
                    self.back_off("no response");
                    continue;
                }
                Err(e) => return Err(e),
            };
            match response.error_status {
                0 => {}
                TOO_BIG if reps > 1 => {
                    backed_off = true;
                    self.back_off("tooBig");
                    continue;
                }
                status => {
                    return Err(self.error(
                        Op::GetBulk(&oids, reps),
                        ErrorKind::Status {
                            status,
                            index: response.error_index,
                        },
                    ));
                }
            }
            let n = cursors.len();
            let mut done = vec![false; n];
            let mut progressed = false;
            for (i, (oid, value)) in response.varbinds.into_iter().enumerate() {
                let c = i % n;
                if done[c] {
                    continue;
                }
                let column = &columns[cursors[c]];
                let cells = &mut found[cursors[c]];
                if value == SnmpValue::EndOfMibView || !oid.starts_with(column) {
                    done[c] = true;
                    continue;
                }
                if oid <= *cells.last().map_or(column, |(previous, _)| previous) {
                    return Err(self.error(Op::GetBulk(&oids, reps), ErrorKind::NotIncreasing(oid)));
                }
                cells.push((oid, value));
                progressed = true;
            }
            if !progressed && !done.iter().any(|d| *d) {
                return Err(self.error(
                    Op::GetBulk(&oids, reps),
                    ErrorKind::Protocol("empty GETBULK response".into()),
                ));
            }
            let mut i = 0;
            cursors.retain(|_| {
                i += 1;
                !done[i - 1]
            });
        }
        if self.repetitions.walk_done(!backed_off) {
            tracing::info!(device = %self.device, max_repetitions = self.repetitions.current, "GETBULK grows back");
        }
        Ok(found.into_iter().flatten().collect())
    }

    fn back_off(&mut self, why: &str) {
        self.repetitions.back_off();
        tracing::info!(device = %self.device, max_repetitions = self.repetitions.current, why, "GETBULK backs off");
    }

    async fn walk_getnext(&mut self, columns: &[Oid]) -> Result<VarbindMap, SnmpError> {
        let mut out = VarbindMap::new();
        for column in columns {
            let mut last = column.clone();
            loop {
                let response = self.request(Op::GetNext(&last)).await?;
                match response.error_status {
                    0 => {}
                    NO_SUCH_NAME => break, // v1: end of MIB
                    status => {
                        return Err(self.error(
                            Op::GetNext(&last),
                            ErrorKind::Status {
                                status,
                                index: response.error_index,
                            },
                        ));
                    }
                }
                let Some((oid, value)) = response.varbinds.into_iter().next() else {
                    break;
                };
                if value == SnmpValue::EndOfMibView || !oid.starts_with(column) {
                    break;
                }
                if oid <= last {
                    return Err(self.error(Op::GetNext(&last), ErrorKind::NotIncreasing(oid)));
                }
                last = oid.clone();
                out.insert(oid, value);
            }
        }
        Ok(out)
    }
}

/// GETBULK max-repetitions of one client: halved on tooBig or a dropped response, doubled back
/// towards the configured value after [`GROW_BACK_AFTER`] walks in a row without a back-off.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Repetitions {
    configured: u32,
    current: u32,
    clean_walks: u32,
}

impl Repetitions {
    fn new(configured: u32) -> Self {
        let configured = configured.max(1);
        Self {
            configured,
            current: configured,
            clean_walks: 0,
        }
    }

    /// Halves (never below 1); the run of clean walks starts over.
    fn back_off(&mut self) {
        self.current = (self.current / 2).max(1);
        self.clean_walks = 0;
    }

    /// A walk completed, `clean` when it needed no back-off. True when max-repetitions grew.
    fn walk_done(&mut self, clean: bool) -> bool {
        if !clean {
            self.clean_walks = 0;
            return false;
        }
        self.clean_walks += 1;
        if self.current == self.configured || self.clean_walks < GROW_BACK_AFTER {
            return false;
        }
        self.current = self.current.saturating_mul(2).min(self.configured);
        self.clean_walks = 0;
        true
    }
}

async fn exchange(
    session: &mut AsyncSession,
    op: Op<'_>,
    oids: &[snmp2::Oid<'static>],
) -> Result<Response, snmp2::Error> {
    let refs: Vec<&snmp2::Oid<'_>> = oids.iter().collect();
    let pdu = match op {
        Op::Get(_) => session.get_many(&refs).await?,
        Op::GetNext(_) => session.getnext(&oids[0]).await?,
        Op::GetBulk(_, reps) => session.getbulk(&refs, 0, reps).await?,
    };
    let varbinds = SnmpValue::varbinds(&pdu).ok_or(snmp2::Error::ValueOutOfRange)?;
    Ok(Response {
        error_status: pdu.error_status,
        error_index: pdu.error_index,
        varbinds,
    })
}

fn protocol(e: &snmp2::Error) -> ErrorKind {
    let hint = match e {
        snmp2::Error::AuthFailure(
            v3::AuthErrorKind::NotAuthenticated | v3::AuthErrorKind::SignatureMismatch,
        ) => " (wrong v3 user, level or auth password?)",
        snmp2::Error::Crypto(_) => " (wrong v3 privacy password or protocol?)",
        snmp2::Error::AuthFailure(v3::AuthErrorKind::EngineIdMismatch) => {
            " (device replaced? re-discovering)"
        }
        snmp2::Error::CommunityMismatch => " (answer for another community)",
        _ => "",
    };
    ErrorKind::Protocol(format!("{e}{hint}"))
}

/// The `snmp2` USM state for a configured user (also used by the trap listener).
pub(crate) fn security(usm: &crate::config::UsmConfig) -> v3::Security {
    let auth_protocol = match usm.auth_protocol {
        AuthProtocol::Md5 => v3::AuthProtocol::Md5,
        AuthProtocol::Sha1 => v3::AuthProtocol::Sha1,
        AuthProtocol::Sha224 => v3::AuthProtocol::Sha224,
        AuthProtocol::Sha256 => v3::AuthProtocol::Sha256,
        AuthProtocol::Sha384 => v3::AuthProtocol::Sha384,
        AuthProtocol::Sha512 => v3::AuthProtocol::Sha512,
    };
    let cipher = match usm.priv_protocol {
        PrivProtocol::Des => v3::Cipher::Des,
        PrivProtocol::Aes128 => v3::Cipher::Aes128,
        PrivProtocol::Aes192 => v3::Cipher::Aes192,
        PrivProtocol::Aes256 => v3::Cipher::Aes256,
    };
    let auth = match usm.level {
        SecurityLevel::NoAuthNoPriv => v3::Auth::NoAuthNoPriv,
        SecurityLevel::AuthNoPriv => v3::Auth::AuthNoPriv,
        SecurityLevel::AuthPriv => v3::Auth::AuthPriv {
            cipher,
            privacy_password: usm.priv_password.expose().as_bytes().to_vec(),
        },
    };
    let mut security =
        v3::Security::new(usm.user.as_bytes(), usm.auth_password.expose().as_bytes())
            .with_auth_protocol(auth_protocol)
            .with_auth(auth)
            .with_key_extension_method(v3::KeyExtension::Blumenthal);
    if !usm.context.is_empty() {
        security = security.with_context_name(&usm.context);
    }
    security
}

/// `host` → `host:161`; `host:port`, `[v6]:port` and bare IPv6 handled.
fn with_default_port(address: &str) -> String {
    if address.parse::<std::net::SocketAddr>().is_ok() {
        address.to_string()
    } else if let Ok(ip) = address.parse::<std::net::Ipv6Addr>() {
        format!("[{ip}]:161")
    } else if address.contains(':') {
        address.to_string()
    } else {
        format!("{address}:161")
    }
}

/// A request id that differs between sessions, so replies meant for an earlier session of the
/// same device are not taken for this one's.
fn starting_request_id() -> i32 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    i32::try_from(nanos & 0x3fff_ffff).unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_port() {
        assert_eq!(with_default_port("10.0.0.1"), "10.0.0.1:161");
        assert_eq!(with_default_port("10.0.0.1:1161"), "10.0.0.1:1161");
        assert_eq!(with_default_port("ups.example"), "ups.example:161");
        assert_eq!(with_default_port("ups.example:16100"), "ups.example:16100");
        assert_eq!(with_default_port("::1"), "[::1]:161");
        assert_eq!(with_default_port("[::1]:1161"), "[::1]:1161");
    }

    #[test]
    fn repetitions_back_off_and_grow_back() {
        let mut r = Repetitions::new(25);
        r.back_off();
        r.back_off();
        assert_eq!(r.current, 6);
        r.walk_done(false); // the walk that backed off
        for _ in 1..GROW_BACK_AFTER {
            assert!(!r.walk_done(true));
        }
        assert!(r.walk_done(true), "grows after a run of clean walks");
        assert_eq!(r.current, 12);
        for _ in 1..GROW_BACK_AFTER {
            r.walk_done(true);
        }
        r.back_off(); // tooBig again in the middle of a run: the run starts over
        assert_eq!(r.current, 6);
        for _ in 0..GROW_BACK_AFTER * 3 {
            r.walk_done(true);
        }
        assert_eq!(r.current, 25, "never above the configured value");
        assert!(!r.walk_done(true));
        assert_eq!(Repetitions::new(0).current, 1);
    }

    #[test]
    fn op_display_names_oids() {
        let oids: Vec<Oid> = vec![
            "1.3.6.1.2.1.1.3.0".parse().unwrap(),
            "1.3.6.1.2.1.1.2.0".parse().unwrap(),
        ];
        assert_eq!(
            Op::Get(&oids).to_string(),
            "GET 1.3.6.1.2.1.1.3.0 (+1 more)"
        );
        assert_eq!(
            Op::GetBulk(&oids[..1], 10).to_string(),
            "GETBULK 1.3.6.1.2.1.1.3.0 max-repetitions 10"
        );
    }
}
