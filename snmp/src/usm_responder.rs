//! The SNMPv3 USM pieces of the trap listener acting as the *authoritative* engine (RFC 3414):
//! answering engine discovery and time-synchronisation probes with Report PDUs, verifying and
//! decrypting messages sent to the listener's own engine id (v3 INFORMs), and encoding the
//! authenticated, encrypted Response that acknowledges an INFORM.
//!
//! Flow: [`crate::trap::TrapDecoder`] parses the header ([`parse_message`]); a message whose
//! msgAuthoritativeEngineID is empty or ours goes to [`UsmResponder::process`] (RFC 3414 §3.2
//! steps 3–8, each failure counted in [`UsmStats`] and answered with a Report when the sender
//! asked for one), the accepted PDU goes back to the trap decoder, and an INFORM is acknowledged
//! with [`UsmResponder::response`]. Pure apart from the clock the caller passes in.
//!
//! Why not `snmp2` (0.5.3) for all of it: it only knows the *non-authoritative* side. Its
//! localized keys, HMAC and ciphers are crate-private; its v3 encoder reuses the request-id as
//! msgID (a Response must echo the INFORM's msgID) and always sets the reportable flag; and its
//! decoder applies a command generator's timeliness rules (it rejects boots 0 before checking
//! the digest and decrypts with its own boots), so it can neither authenticate the RFC 3414 §4
//! time-synchronisation probe nor report notInTimeWindow. What it does provide is used: the BER
//! reader ([`snmp2::AsnReader`]) and PDU/varbind decoding (the accepted PDU is handed to
//! `snmp2::Pdu::from_bytes`, see [`as_v2c_message`]). The primitives (HMAC, SHA-2, AES-CFB,
//! DES-CBC) are the same RustCrypto crates `snmp2` is built on.

use crate::config::{AuthProtocol, PrivProtocol, SecurityLevel, UsmConfig};
use aes::cipher::{self, AsyncStreamCipher, BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::digest::DynDigest;
use snmp2::AsnReader;
use std::fmt;
use thiserror::Error;

const SEQUENCE: u8 = 0x30;
const INTEGER: u8 = 0x02;
const OCTET_STRING: u8 = 0x04;
const OBJECT_IDENTIFIER: u8 = 0x06;
const COUNTER32: u8 = 0x41;
/// PDU tags (RFC 3416).
const RESPONSE: u8 = 0xa2;
const REPORT: u8 = 0xa8;
const FLAG_AUTH: u8 = 0x01;
const FLAG_PRIV: u8 = 0x02;
const FLAG_REPORTABLE: u8 = 0x04;
/// RFC 3414 §2.2.3: messages more than this many seconds off our engine time are stale.
const TIME_WINDOW: i64 = 150;
/// RFC 3414 §2.2.2: at this many boots the engine must be reconfigured; nothing authenticates.
const MAX_BOOTS: i64 = 2_147_483_647;
/// msgMaxSize we announce: the largest UDP payload over IPv4.
const MAX_MESSAGE_SIZE: i64 = 65_507;
/// usmStats (1.3.6.1.6.3.15.1.1), BER-encoded; the counter's arc and `.0` follow.
const USM_STATS_OID: [u8; 8] = [0x2b, 6, 1, 6, 3, 15, 1, 1];
/// Net-SNMP's enterprise number (8072) in the RFC 3411 engine-id form; see [`EngineId::derived`].
const ENGINE_ID_ENTERPRISE: [u8; 4] = [0x80, 0x00, 0x1f, 0x88];
/// RFC 3411 engine-id format 5: administratively assigned octets.
const ENGINE_ID_FORMAT_OCTETS: u8 = 5;
/// 2020-01-01T00:00:00Z: engine boots count seconds from here (see [`boots_at`]).
const BOOTS_EPOCH_UNIX: u64 = 1_577_836_800;

/// An SNMP engine id (RFC 3411 SnmpEngineID: 5 to 32 octets), written in config files as hex
/// (`"80001f8805a1b2c3d4e5f60718"`, an optional `0x` prefix allowed).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct EngineId(Vec<u8>);

impl EngineId {
    /// Parses hex text; the error says what is wrong.
    pub fn from_hex(text: &str) -> Result<Self, String> {
        let hex = text
            .strip_prefix("0x")
            .or_else(|| text.strip_prefix("0X"))
            .unwrap_or(text);
        if !hex.len().is_multiple_of(2) {
            return Err(format!("`{text}`: odd number of hex digits"));
        }
        let bytes = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(hex.get(i..i + 2).unwrap_or("zz"), 16))
            .collect::<Result<Vec<u8>, _>>()
            .map_err(|_| format!("`{text}`: not hexadecimal"))?;
        Self::from_bytes(bytes)
    }

    /// Checks the length RFC 3411 allows.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self, String> {
        if (5..=32).contains(&bytes.len()) {
            Ok(Self(bytes))
        } else {
            Err(format!(
                "an engine id has 5 to 32 octets (RFC 3411), this one {}",
                bytes.len()
            ))
        }
    }

    /// A stable engine id for a host: Net-SNMP's enterprise prefix `80001f88` (Faultline has no
    /// IANA enterprise number of its own; net-snmp agents use the same prefix), format 5
    /// (octets), then the first 8 bytes of SHA-256 over `host_identity` (the machine id) and the
    /// listen address, so two listeners on one host differ and a restart keeps the id.
    pub fn derived(host_identity: &[u8], listen: &str) -> Self {
        let mut hasher = sha2::Sha256::default();
        DynDigest::update(&mut hasher, b"faultline-trap-listener\0");
        DynDigest::update(&mut hasher, host_identity);
        DynDigest::update(&mut hasher, b"\0");
        DynDigest::update(&mut hasher, listen.as_bytes());
        let digest = DynDigest::finalize_reset(&mut hasher);
        let mut id = ENGINE_ID_ENTERPRISE.to_vec();
        id.push(ENGINE_ID_FORMAT_OCTETS);
        id.extend(digest.iter().take(8));
        Self(id)
    }

    /// The octets.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Display for EngineId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for EngineId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EngineId({self})")
    }
}

impl<'de> Deserialize<'de> for EngineId {
    fn deserialize<D: serde::Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        let text = String::deserialize(de)?;
        Self::from_hex(&text).map_err(serde::de::Error::custom)
    }
}

/// Engine boots for a listener started at `unix_secs`: seconds since 2020-01-01, at least 1.
/// Strictly increases from one start to the next (as RFC 3414 §2.2.2 requires) without a state
/// file, as long as the clock does not go back; stays below 2^31-1 until 2088.
pub fn boots_at(unix_secs: u64) -> i64 {
    i64::try_from(unix_secs.saturating_sub(BOOTS_EPOCH_UNIX))
        .unwrap_or(MAX_BOOTS)
        .clamp(1, MAX_BOOTS - 1)
}

/// The local engine's snmpEngineBoots and snmpEngineTime at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EngineClock {
    /// snmpEngineBoots.
    pub boots: i64,
    /// snmpEngineTime: seconds since this boot.
    pub time: i64,
}

/// RFC 3414 §3.2 step 7a: is a message carrying `boots`/`time` inside our time window?
pub fn in_time_window(local: EngineClock, boots: i64, time: i64) -> bool {
    local.boots < MAX_BOOTS && boots == local.boots && (time - local.time).abs() <= TIME_WINDOW
}

/// The usmStats counters (RFC 3414 §5): why messages were dropped by the USM.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum UsmStat {
    /// usmStatsUnsupportedSecLevels: a level the user is not configured for.
    UnsupportedSecLevels = 1,
    /// usmStatsNotInTimeWindows: stale boots/time (also the time-synchronisation probe).
    NotInTimeWindows = 2,
    /// usmStatsUnknownUserNames: no such user.
    UnknownUserNames = 3,
    /// usmStatsUnknownEngineIDs: not our engine id (also the discovery probe).
    UnknownEngineIds = 4,
    /// usmStatsWrongDigests: authentication failed (wrong passphrase or tampering).
    WrongDigests = 5,
    /// usmStatsDecryptionErrors: cannot decrypt (wrong privacy passphrase).
    DecryptionErrors = 6,
}

impl UsmStat {
    const ALL: [Self; 6] = [
        Self::UnsupportedSecLevels,
        Self::NotInTimeWindows,
        Self::UnknownUserNames,
        Self::UnknownEngineIds,
        Self::WrongDigests,
        Self::DecryptionErrors,
    ];

    /// Label value for metrics (`unknown_engine_ids`, …).
    pub fn label(self) -> &'static str {
        match self {
            Self::UnsupportedSecLevels => "unsupported_sec_levels",
            Self::NotInTimeWindows => "not_in_time_windows",
            Self::UnknownUserNames => "unknown_user_names",
            Self::UnknownEngineIds => "unknown_engine_ids",
            Self::WrongDigests => "wrong_digests",
            Self::DecryptionErrors => "decryption_errors",
        }
    }

    /// True for the two steps of a sender's engine discovery (RFC 3414 §4), not an attack or a
    /// misconfiguration by themselves.
    pub fn is_discovery(self) -> bool {
        matches!(self, Self::UnknownEngineIds | Self::NotInTimeWindows)
    }

    fn index(self) -> usize {
        self as usize - 1
    }
}

/// The usmStats counter values (Counter32, wrapping).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UsmStats([u32; 6]);

impl UsmStats {
    /// Counts one more `stat`; returns the new value (the report carries it).
    pub fn count(&mut self, stat: UsmStat) -> u32 {
        let slot = &mut self.0[stat.index()];
        *slot = slot.wrapping_add(1);
        *slot
    }

    /// Every counter that is not zero.
    pub fn nonzero(&self) -> impl Iterator<Item = (UsmStat, u32)> + '_ {
        UsmStat::ALL
            .into_iter()
            .map(|s| (s, self.0[s.index()]))
            .filter(|(_, v)| *v > 0)
    }
}

/// Why the USM did not accept a message.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum UsmError {
    /// Not a well-formed SNMPv3/USM message (counted as malformed, never answered).
    #[error("malformed SNMPv3 message: {0}")]
    Malformed(String),
    /// Dropped by a USM check; `report` is the Report PDU to send back (when the sender set
    /// the reportable flag).
    #[error("SNMPv3 USM: {}", stat.label())]
    Dropped {
        /// The usmStats counter that was incremented.
        stat: UsmStat,
        /// Encoded Report message for the sender.
        report: Option<Vec<u8>>,
    },
}

fn malformed(what: &str) -> impl Fn(snmp2::Error) -> UsmError + '_ {
    move |e| UsmError::Malformed(format!("{what}: {e}"))
}

/// The scoped PDU data of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScopedData<'a> {
    /// Plaintext ScopedPDU (the SEQUENCE's contents).
    Plain(&'a [u8]),
    /// encryptedPDU octets.
    Encrypted(&'a [u8]),
}

/// The header fields of an SNMPv3 message with USM security parameters (RFC 3412 §6,
/// RFC 3414 §2.4), borrowed from the received bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V3Message<'a> {
    /// msgID.
    pub msg_id: i64,
    /// msgFlags (auth 1, priv 2, reportable 4).
    pub flags: u8,
    /// msgAuthoritativeEngineID.
    pub engine_id: &'a [u8],
    /// msgAuthoritativeEngineBoots.
    pub boots: i64,
    /// msgAuthoritativeEngineTime.
    pub time: i64,
    /// msgUserName.
    pub user: &'a [u8],
    /// msgAuthenticationParameters.
    pub auth_params: &'a [u8],
    /// Where `auth_params` starts in the message bytes (zeroed there to check the digest).
    pub auth_offset: usize,
    /// msgPrivacyParameters (the salt).
    pub priv_params: &'a [u8],
    /// The scoped PDU, plain or encrypted.
    pub data: ScopedData<'a>,
}

impl V3Message<'_> {
    /// The security level msgFlags asks for; malformed for privacy without authentication.
    pub fn level(&self) -> Result<SecurityLevel, UsmError> {
        match (self.flags & FLAG_AUTH != 0, self.flags & FLAG_PRIV != 0) {
            (false, false) => Ok(SecurityLevel::NoAuthNoPriv),
            (true, false) => Ok(SecurityLevel::AuthNoPriv),
            (true, true) => Ok(SecurityLevel::AuthPriv),
            (false, true) => Err(UsmError::Malformed("privacy without authentication".into())),
        }
    }

    fn reportable(&self) -> bool {
        self.flags & FLAG_REPORTABLE != 0
    }
}

fn in_range(n: i64, what: &str) -> Result<i64, UsmError> {
    if (0..=MAX_BOOTS).contains(&n) {
        Ok(n)
    } else {
        Err(UsmError::Malformed(format!("{what} {n} out of range")))
    }
}

/// Parses the header of an SNMPv3 USM message.
pub fn parse_message(bytes: &[u8]) -> Result<V3Message<'_>, UsmError> {
    let message = AsnReader::from_bytes(bytes)
        .read_raw(SEQUENCE)
        .map_err(malformed("message"))?;
    let mut rdr = AsnReader::from_bytes(message);
    let version = rdr.read_asn_integer().map_err(malformed("msgVersion"))?;
    if version != 3 {
        return Err(UsmError::Malformed(format!("msgVersion {version}")));
    }
    let mut global =
        AsnReader::from_bytes(rdr.read_raw(SEQUENCE).map_err(malformed("msgGlobalData"))?);
    let msg_id = in_range(
        global.read_asn_integer().map_err(malformed("msgID"))?,
        "msgID",
    )?;
    global.read_asn_integer().map_err(malformed("msgMaxSize"))?;
    let flags = match global
        .read_asn_octetstring()
        .map_err(malformed("msgFlags"))?
    {
        [flags] => *flags,
        other => {
            return Err(UsmError::Malformed(format!(
                "msgFlags of {} octets",
                other.len()
            )));
        }
    };
    let model = global
        .read_asn_integer()
        .map_err(malformed("msgSecurityModel"))?;
    if model != 3 {
        return Err(UsmError::Malformed(format!(
            "security model {model}, not USM"
        )));
    }
    let params = rdr
        .read_asn_octetstring()
        .map_err(malformed("msgSecurityParameters"))?;
    let mut usm = AsnReader::from_bytes(
        AsnReader::from_bytes(params)
            .read_raw(SEQUENCE)
            .map_err(malformed("UsmSecurityParameters"))?,
    );
    let engine_id = usm.read_asn_octetstring().map_err(malformed("engine id"))?;
    let boots = in_range(usm.read_asn_integer().map_err(malformed("boots"))?, "boots")?;
    let time = in_range(usm.read_asn_integer().map_err(malformed("time"))?, "time")?;
    let user = usm.read_asn_octetstring().map_err(malformed("user name"))?;
    let auth_params = usm
        .read_asn_octetstring()
        .map_err(malformed("authentication parameters"))?;
    let priv_params = usm
        .read_asn_octetstring()
        .map_err(malformed("privacy parameters"))?;
    let auth_offset = (auth_params.as_ptr() as usize)
        .checked_sub(bytes.as_ptr() as usize)
        .filter(|o| o + auth_params.len() <= bytes.len())
        .ok_or_else(|| UsmError::Malformed("authentication parameters outside message".into()))?;
    let data = match rdr.peek_byte().map_err(malformed("msgData"))? {
        SEQUENCE => ScopedData::Plain(rdr.read_raw(SEQUENCE).map_err(malformed("scopedPDU"))?),
        _ => ScopedData::Encrypted(
            rdr.read_asn_octetstring()
                .map_err(malformed("encryptedPDU"))?,
        ),
    };
    Ok(V3Message {
        msg_id,
        flags,
        engine_id,
        boots,
        time,
        user,
        auth_params,
        auth_offset,
        priv_params,
        data,
    })
}

/// A ScopedPDU (RFC 3412 §6.8): context and the PDU (tag, length and contents).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopedPdu {
    /// contextEngineID.
    pub context_engine_id: Vec<u8>,
    /// contextName.
    pub context_name: Vec<u8>,
    /// The PDU as received, with its tag.
    pub pdu: Vec<u8>,
}

/// Parses the contents of a ScopedPDU SEQUENCE.
pub fn parse_scoped_pdu(contents: &[u8]) -> Result<ScopedPdu, UsmError> {
    let mut rdr = AsnReader::from_bytes(contents);
    let context_engine_id = rdr
        .read_asn_octetstring()
        .map_err(malformed("contextEngineID"))?
        .to_vec();
    let context_name = rdr
        .read_asn_octetstring()
        .map_err(malformed("contextName"))?
        .to_vec();
    let tag = rdr.peek_byte().map_err(malformed("PDU"))?;
    let body = rdr.read_raw(tag).map_err(malformed("PDU"))?;
    Ok(ScopedPdu {
        context_engine_id,
        context_name,
        pdu: tlv(tag, body),
    })
}

/// request-id and the varbind list (contents) of a PDU.
struct PduFields<'a> {
    request_id: i64,
    varbinds: &'a [u8],
}

fn pdu_fields(pdu: &[u8]) -> Result<PduFields<'_>, UsmError> {
    let mut outer = AsnReader::from_bytes(pdu);
    let tag = outer.peek_byte().map_err(malformed("PDU"))?;
    let mut rdr = AsnReader::from_bytes(outer.read_raw(tag).map_err(malformed("PDU"))?);
    let request_id = rdr.read_asn_integer().map_err(malformed("request-id"))?;
    rdr.read_asn_integer().map_err(malformed("error-status"))?;
    rdr.read_asn_integer().map_err(malformed("error-index"))?;
    let varbinds = rdr.read_raw(SEQUENCE).map_err(malformed("varbinds"))?;
    Ok(PduFields {
        request_id,
        varbinds,
    })
}

/// The Response PDU acknowledging `pdu` (RFC 3416 §4.2.7): same request-id and varbinds.
pub fn response_pdu(pdu: &[u8]) -> Result<Vec<u8>, UsmError> {
    let fields = pdu_fields(pdu)?;
    Ok(tlv(
        RESPONSE,
        &[
            tlv(INTEGER, &int_contents(fields.request_id)),
            tlv(INTEGER, &[0]),
            tlv(INTEGER, &[0]),
            tlv(SEQUENCE, fields.varbinds),
        ]
        .concat(),
    ))
}

/// `pdu` wrapped as an SNMPv2c message with `community`, so `snmp2::Pdu::from_bytes` (which
/// decodes SNMPv3 PDUs only together with its own client-side USM) can decode the PDU and its
/// varbinds exactly as for v2c notifications.
pub fn as_v2c_message(community: &[u8], pdu: &[u8]) -> Vec<u8> {
    tlv(
        SEQUENCE,
        &[
            tlv(INTEGER, &[1]),
            tlv(OCTET_STRING, community),
            pdu.to_vec(),
        ]
        .concat(),
    )
}

fn tlv(tag: u8, contents: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(contents.len() + 6);
    out.push(tag);
    let len = contents.len();
    if len < 0x80 {
        out.push(len as u8); // < 0x80 fits
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8); // at most 8
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(contents);
    out
}

/// Minimal two's-complement contents of a BER INTEGER.
fn int_contents(n: i64) -> Vec<u8> {
    let bytes = n.to_be_bytes();
    let mut start = 0;
    while start < 7 {
        let (b, next) = (bytes[start], bytes[start + 1]);
        if (b == 0 && next & 0x80 == 0) || (b == 0xff && next & 0x80 != 0) {
            start += 1;
        } else {
            break;
        }
    }
    bytes[start..].to_vec()
}

/// The local engine: its id, the boots of this run and when the run started.
#[derive(Debug, Clone)]
pub struct LocalEngine {
    /// snmpEngineID.
    pub id: EngineId,
    /// snmpEngineBoots of this run.
    pub boots: i64,
    /// When snmpEngineTime was 0.
    pub started: std::time::Instant,
}

impl LocalEngine {
    /// boots and time now.
    pub fn clock(&self) -> EngineClock {
        EngineClock {
            boots: self.boots,
            time: i64::try_from(self.started.elapsed().as_secs())
                .unwrap_or(MAX_BOOTS)
                .min(MAX_BOOTS),
        }
    }
}

fn hasher(protocol: AuthProtocol) -> Box<dyn DynDigest> {
    match protocol {
        AuthProtocol::Md5 => Box::new(md5::Md5::default()),
        AuthProtocol::Sha1 => Box::new(sha1::Sha1::default()),
        AuthProtocol::Sha224 => Box::new(sha2::Sha224::default()),
        AuthProtocol::Sha256 => Box::new(sha2::Sha256::default()),
        AuthProtocol::Sha384 => Box::new(sha2::Sha384::default()),
        AuthProtocol::Sha512 => Box::new(sha2::Sha512::default()),
    }
}

/// Length of msgAuthenticationParameters (RFC 3414 §6/§7, RFC 7860 §4.2.2).
fn truncation(protocol: AuthProtocol) -> usize {
    match protocol {
        AuthProtocol::Md5 | AuthProtocol::Sha1 => 12,
        AuthProtocol::Sha224 => 16,
        AuthProtocol::Sha256 => 24,
        AuthProtocol::Sha384 => 32,
        AuthProtocol::Sha512 => 48,
    }
}

/// RFC 3414 A.2: the user's key from a passphrase (1 MiB of it hashed), localized to
/// `engine_id` as H(Ku ‖ engineID ‖ Ku).
pub fn localized_key(protocol: AuthProtocol, password: &[u8], engine_id: &[u8]) -> Vec<u8> {
    let mut h = hasher(protocol);
    let mut cycle = password.iter().copied().cycle();
    let mut block = [0u8; 64];
    for _ in 0..(1 << 20) / block.len() {
        block
            .iter_mut()
            .for_each(|b| *b = cycle.next().unwrap_or(0));
        h.update(&block);
    }
    let ku = h.finalize_reset();
    h.update(&ku);
    h.update(engine_id);
    h.update(&ku);
    h.finalize_reset().to_vec()
}

/// The privacy key for `cipher`: the localized key, extended with the Blumenthal method
/// (draft-blumenthal-aes-usm-04 §3.1.2.1, net-snmp's AES-192/AES-256) when it is too short.
fn privacy_key(
    auth: AuthProtocol,
    cipher: PrivProtocol,
    password: &[u8],
    engine: &[u8],
) -> Vec<u8> {
    let mut key = localized_key(auth, password, engine);
    let need = match cipher {
        PrivProtocol::Des | PrivProtocol::Aes128 => 16,
        PrivProtocol::Aes192 => 24,
        PrivProtocol::Aes256 => 32,
    };
    while key.len() < need {
        let mut h = hasher(auth);
        h.update(&key);
        key.extend(h.finalize_reset().iter());
    }
    key.truncate(need);
    key
}

fn hmac(protocol: AuthProtocol, key: &[u8], data: &[u8]) -> Vec<u8> {
    fn run<M: Mac + hmac::digest::KeyInit>(key: &[u8], data: &[u8]) -> Vec<u8> {
        // HMAC takes keys of any length; an error here cannot happen, and an empty digest
        // never verifies.
        <M as hmac::digest::KeyInit>::new_from_slice(key).map_or_else(
            |_| Vec::new(),
            |mut mac| {
                mac.update(data);
                mac.finalize().into_bytes().to_vec()
            },
        )
    }
    match protocol {
        AuthProtocol::Md5 => run::<Hmac<md5::Md5>>(key, data),
        AuthProtocol::Sha1 => run::<Hmac<sha1::Sha1>>(key, data),
        AuthProtocol::Sha224 => run::<Hmac<sha2::Sha224>>(key, data),
        AuthProtocol::Sha256 => run::<Hmac<sha2::Sha256>>(key, data),
        AuthProtocol::Sha384 => run::<Hmac<sha2::Sha384>>(key, data),
        AuthProtocol::Sha512 => run::<Hmac<sha2::Sha512>>(key, data),
    }
}

/// Constant-time equality of the truncated digest.
fn digest_matches(expected: &[u8], got: &[u8]) -> bool {
    expected.len() == got.len()
        && expected
            .iter()
            .zip(got)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

/// The privacy transform's initialisation vector (RFC 3826 §3.1.2.1 for AES, RFC 3414 §8.1.1.1
/// for DES) and the salt sent as msgPrivacyParameters.
fn iv(cipher: PrivProtocol, key: &[u8], boots: i64, time: i64, salt: &[u8]) -> Vec<u8> {
    let be32 = |n: i64| u32::try_from(n).unwrap_or(0).to_be_bytes();
    match cipher {
        PrivProtocol::Des => key
            .get(8..16)
            .unwrap_or(&[0; 8])
            .iter()
            .zip(salt)
            .map(|(a, b)| a ^ b)
            .collect(),
        _ => [&be32(boots)[..], &be32(time), salt].concat(),
    }
}

fn transform(
    cipher: PrivProtocol,
    key: &[u8],
    iv: &[u8],
    data: &mut Vec<u8>,
    encrypt: bool,
) -> Result<(), String> {
    fn cfb<C>(key: &[u8], iv: &[u8], data: &mut [u8], encrypt: bool) -> Result<(), String>
    where
        C: BlockEncryptMut + cipher::BlockCipher + cipher::KeyInit,
    {
        if encrypt {
            cfb_mode::Encryptor::<C>::new_from_slices(key, iv)
                .map_err(|e| e.to_string())?
                .encrypt(data);
        } else {
            cfb_mode::Decryptor::<C>::new_from_slices(key, iv)
                .map_err(|e| e.to_string())?
                .decrypt(data);
        }
        Ok(())
    }
    use cipher::generic_array::GenericArray;
    match cipher {
        PrivProtocol::Aes128 => cfb::<aes::Aes128>(key.get(..16).unwrap_or(key), iv, data, encrypt),
        PrivProtocol::Aes192 => cfb::<aes::Aes192>(key.get(..24).unwrap_or(key), iv, data, encrypt),
        PrivProtocol::Aes256 => cfb::<aes::Aes256>(key.get(..32).unwrap_or(key), iv, data, encrypt),
        PrivProtocol::Des => {
            let key = key.get(..8).unwrap_or(key);
            if encrypt {
                // RFC 3414 §8.1.1.2: pad to whole blocks; the pad value is irrelevant.
                data.resize(data.len().div_ceil(8) * 8, 0);
                let mut enc = cbc::Encryptor::<des::Des>::new_from_slices(key, iv)
                    .map_err(|e| e.to_string())?;
                data.chunks_exact_mut(8)
                    .for_each(|b| enc.encrypt_block_mut(GenericArray::from_mut_slice(b)));
            } else {
                if !data.len().is_multiple_of(8) {
                    return Err("DES ciphertext not a whole number of blocks".into());
                }
                let mut dec = cbc::Decryptor::<des::Des>::new_from_slices(key, iv)
                    .map_err(|e| e.to_string())?;
                data.chunks_exact_mut(8)
                    .for_each(|b| dec.decrypt_block_mut(GenericArray::from_mut_slice(b)));
            }
            Ok(())
        }
    }
}

/// A configured user's keys, localized to the local engine id.
pub struct LocalizedUser {
    name: Vec<u8>,
    level: SecurityLevel,
    auth: Option<(AuthProtocol, Vec<u8>)>,
    privacy: Option<(PrivProtocol, Vec<u8>)>,
}

impl LocalizedUser {
    /// Localizes `usm`'s passphrases to `engine_id` (two 1 MiB hashes per user: done once).
    pub fn new(usm: &UsmConfig, engine_id: &[u8]) -> Self {
        let auth = (usm.level != SecurityLevel::NoAuthNoPriv).then(|| {
            let password = usm.auth_password.expose().as_bytes();
            (
                usm.auth_protocol,
                localized_key(usm.auth_protocol, password, engine_id),
            )
        });
        let privacy = (usm.level == SecurityLevel::AuthPriv).then(|| {
            let password = usm.priv_password.expose().as_bytes();
            (
                usm.priv_protocol,
                privacy_key(usm.auth_protocol, usm.priv_protocol, password, engine_id),
            )
        });
        Self {
            name: usm.user.as_bytes().to_vec(),
            level: usm.level,
            auth,
            privacy,
        }
    }

    /// The user name.
    pub fn name(&self) -> &[u8] {
        &self.name
    }
}

fn level_rank(level: SecurityLevel) -> u8 {
    match level {
        SecurityLevel::NoAuthNoPriv => 0,
        SecurityLevel::AuthNoPriv => 1,
        SecurityLevel::AuthPriv => 2,
    }
}

/// A message the USM accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incoming {
    /// Index of the user in [`UsmResponder`]'s list.
    pub user: usize,
    /// The level it was sent with.
    pub level: SecurityLevel,
    /// msgID, echoed by the response.
    pub msg_id: i64,
    /// The scoped PDU, decrypted.
    pub scoped: ScopedPdu,
}

/// The USM of the local (authoritative) engine: users with keys localized to its engine id,
/// the usmStats counters and the salt for encryption.
pub struct UsmResponder {
    engine: LocalEngine,
    users: Vec<LocalizedUser>,
    stats: UsmStats,
    salt: u64,
}

impl UsmResponder {
    /// A responder for `engine` and `users` (keys localized here); `salt` seeds the privacy
    /// salt counter (RFC 3826 §3.1.1.1 asks only that it not repeat within a key's life).
    pub fn new(engine: LocalEngine, users: &[UsmConfig], salt: u64) -> Self {
        let users = users
            .iter()
            .map(|u| LocalizedUser::new(u, engine.id.as_bytes()))
            .collect();
        Self {
            engine,
            users,
            stats: UsmStats::default(),
            salt,
        }
    }

    /// The local engine.
    pub fn engine(&self) -> &LocalEngine {
        &self.engine
    }

    /// The usmStats counters.
    pub fn stats(&self) -> &UsmStats {
        &self.stats
    }

    /// The user at `index` (as in [`Incoming::user`]).
    pub fn user(&self, index: usize) -> Option<&LocalizedUser> {
        self.users.get(index)
    }

    /// RFC 3414 §3.2 for a message addressed to this engine (`bytes` is the whole message,
    /// `msg` its parsed header): engine id, user, level, digest, time window, decryption.
    pub fn process(
        &mut self,
        bytes: &[u8],
        msg: &V3Message<'_>,
        clock: EngineClock,
    ) -> Result<Incoming, UsmError> {
        let level = msg.level()?;
        let plain_request_id = || match msg.data {
            ScopedData::Plain(contents) => parse_scoped_pdu(contents)
                .and_then(|s| pdu_fields(&s.pdu).map(|f| f.request_id))
                .unwrap_or(0),
            ScopedData::Encrypted(_) => 0,
        };
        if msg.engine_id != self.engine.id.as_bytes() {
            return Err(self.refuse(
                msg,
                UsmStat::UnknownEngineIds,
                plain_request_id(),
                None,
                clock,
            ));
        }
        let Some(index) = self.users.iter().position(|u| u.name == msg.user) else {
            return Err(self.refuse(
                msg,
                UsmStat::UnknownUserNames,
                plain_request_id(),
                None,
                clock,
            ));
        };
        let user = &self.users[index];
        let (user_level, auth, privacy) = (user.level, user.auth.clone(), user.privacy.clone());
        let needs_auth = level != SecurityLevel::NoAuthNoPriv;
        let needs_priv = level == SecurityLevel::AuthPriv;
        if (needs_auth && auth.is_none()) || (needs_priv && privacy.is_none()) {
            return Err(self.refuse(
                msg,
                UsmStat::UnsupportedSecLevels,
                plain_request_id(),
                None,
                clock,
            ));
        }
        if let Some((protocol, key)) = auth.as_ref().filter(|_| needs_auth) {
            let verified = msg.auth_params.len() == truncation(*protocol)
                && digest(*protocol, key, bytes, msg.auth_offset)
                    .is_some_and(|d| digest_matches(&d, msg.auth_params));
            if !verified {
                return Err(self.refuse(
                    msg,
                    UsmStat::WrongDigests,
                    plain_request_id(),
                    None,
                    clock,
                ));
            }
            if !in_time_window(clock, msg.boots, msg.time) {
                // §3.2 7a: reported authenticated, so the sender can trust our boots/time.
                return Err(self.refuse(
                    msg,
                    UsmStat::NotInTimeWindows,
                    plain_request_id(),
                    Some(index),
                    clock,
                ));
            }
        }
        let scoped = match (msg.data, privacy.as_ref().filter(|_| needs_priv)) {
            (ScopedData::Plain(contents), None) => parse_scoped_pdu(contents)?,
            (ScopedData::Encrypted(encrypted), Some((cipher, key))) => {
                let mut plain = encrypted.to_vec();
                let decrypted = msg.priv_params.len() == 8
                    && transform(
                        *cipher,
                        key,
                        &iv(*cipher, key, msg.boots, msg.time, msg.priv_params),
                        &mut plain,
                        false,
                    )
                    .is_ok();
                let scoped = AsnReader::from_bytes(&plain)
                    .read_raw(SEQUENCE)
                    .ok()
                    .filter(|_| decrypted)
                    .and_then(|contents| parse_scoped_pdu(contents).ok());
                match scoped {
                    Some(scoped) => scoped,
                    None => {
                        return Err(self.refuse(msg, UsmStat::DecryptionErrors, 0, None, clock));
                    }
                }
            }
            _ => {
                return Err(UsmError::Malformed(
                    "msgData does not match the privacy flag".into(),
                ));
            }
        };
        if level_rank(level) < level_rank(user_level) {
            let request_id = pdu_fields(&scoped.pdu).map_or(0, |f| f.request_id);
            return Err(self.refuse(msg, UsmStat::UnsupportedSecLevels, request_id, None, clock));
        }
        Ok(Incoming {
            user: index,
            level,
            msg_id: msg.msg_id,
            scoped,
        })
    }

    /// The Response acknowledging an accepted INFORM: same msgID, request-id, context and
    /// security level, from this engine's boots/time, reportable flag clear.
    pub fn response(
        &mut self,
        incoming: &Incoming,
        clock: EngineClock,
    ) -> Result<Vec<u8>, UsmError> {
        let pdu = response_pdu(&incoming.scoped.pdu)?;
        let scoped = scoped_pdu(
            &incoming.scoped.context_engine_id,
            &incoming.scoped.context_name,
            &pdu,
        );
        self.encode(
            incoming.user,
            incoming.level,
            incoming.msg_id,
            &scoped,
            clock,
        )
    }

    /// Counts `stat` and builds the Report for it, when the sender asked for reports: at
    /// noAuthNoPriv, or authenticated by `auth_user` (notInTimeWindow, RFC 3414 §3.2 7a).
    fn refuse(
        &mut self,
        msg: &V3Message<'_>,
        stat: UsmStat,
        request_id: i64,
        auth_user: Option<usize>,
        clock: EngineClock,
    ) -> UsmError {
        let value = self.stats.count(stat);
        let report = msg.reportable().then(|| {
            let oid = [&USM_STATS_OID[..], &[stat as u8, 0]].concat();
            let varbind = tlv(
                SEQUENCE,
                &[
                    tlv(OBJECT_IDENTIFIER, &oid),
                    tlv(COUNTER32, &int_contents(value.into())),
                ]
                .concat(),
            );
            let pdu = tlv(
                REPORT,
                &[
                    tlv(INTEGER, &int_contents(request_id)),
                    tlv(INTEGER, &[0]),
                    tlv(INTEGER, &[0]),
                    tlv(SEQUENCE, &varbind),
                ]
                .concat(),
            );
            let scoped = scoped_pdu(self.engine.id.as_bytes(), b"", &pdu);
            match auth_user {
                Some(user) => self
                    .encode(user, SecurityLevel::AuthNoPriv, msg.msg_id, &scoped, clock)
                    .ok(),
                None => Some(encode_message(
                    &Header {
                        msg_id: msg.msg_id,
                        flags: 0,
                        engine_id: self.engine.id.as_bytes(),
                        clock,
                        user: msg.user,
                        auth_len: 0,
                        priv_params: &[],
                    },
                    &scoped,
                )),
            }
        });
        UsmError::Dropped {
            stat,
            report: report.flatten(),
        }
    }

    /// Encodes an outgoing message from this engine for `user` at `level`.
    fn encode(
        &mut self,
        user: usize,
        level: SecurityLevel,
        msg_id: i64,
        scoped: &[u8],
        clock: EngineClock,
    ) -> Result<Vec<u8>, UsmError> {
        let keys = self
            .users
            .get(user)
            .ok_or_else(|| UsmError::Malformed("no such user".into()))?;
        let no_keys = || UsmError::Malformed("user has no keys for this level".into());
        let mut flags = 0;
        let mut salt = Vec::new();
        let mut data = scoped.to_vec();
        if level == SecurityLevel::AuthPriv {
            let (cipher, key) = keys.privacy.as_ref().ok_or_else(no_keys)?;
            self.salt = self.salt.wrapping_add(1);
            salt = match cipher {
                PrivProtocol::Des => {
                    let boots = u32::try_from(clock.boots).unwrap_or(0).to_be_bytes();
                    [&boots[..], &self.salt.to_be_bytes()[4..]].concat()
                }
                _ => self.salt.to_be_bytes().to_vec(),
            };
            transform(
                *cipher,
                key,
                &iv(*cipher, key, clock.boots, clock.time, &salt),
                &mut data,
                true,
            )
            .map_err(UsmError::Malformed)?;
            data = tlv(OCTET_STRING, &data);
            flags |= FLAG_PRIV;
        }
        let auth = if level == SecurityLevel::NoAuthNoPriv {
            None
        } else {
            flags |= FLAG_AUTH;
            Some(keys.auth.as_ref().ok_or_else(no_keys)?)
        };
        let mut message = encode_message(
            &Header {
                msg_id,
                flags,
                engine_id: self.engine.id.as_bytes(),
                clock,
                user: &keys.name,
                auth_len: auth.map_or(0, |(p, _)| truncation(*p)),
                priv_params: &salt,
            },
            &data,
        );
        if let Some((protocol, key)) = auth {
            sign(&mut message, *protocol, key)?;
        }
        Ok(message)
    }
}

/// The truncated HMAC of `message` with its `truncation(protocol)` digest octets at `offset`
/// taken as zeros (RFC 3414 §6.3.1/§6.3.2); `None` when they lie outside the message.
fn digest(protocol: AuthProtocol, key: &[u8], message: &[u8], offset: usize) -> Option<Vec<u8>> {
    let len = truncation(protocol);
    let mut zeroed = message.to_vec();
    zeroed.get_mut(offset..offset + len)?.fill(0);
    let mut digest = hmac(protocol, key, &zeroed);
    (digest.len() >= len).then(|| {
        digest.truncate(len);
        digest
    })
}

/// Writes the digest of an encoded message into its authentication parameters.
fn sign(message: &mut [u8], protocol: AuthProtocol, key: &[u8]) -> Result<(), UsmError> {
    let offset = parse_message(message)?.auth_offset;
    let digest = digest(protocol, key, message, offset)
        .ok_or_else(|| UsmError::Malformed("cannot place the digest".into()))?;
    message[offset..offset + digest.len()].copy_from_slice(&digest);
    Ok(())
}

fn scoped_pdu(context_engine_id: &[u8], context_name: &[u8], pdu: &[u8]) -> Vec<u8> {
    tlv(
        SEQUENCE,
        &[
            tlv(OCTET_STRING, context_engine_id),
            tlv(OCTET_STRING, context_name),
            pdu.to_vec(),
        ]
        .concat(),
    )
}

/// Header fields of an outgoing message.
struct Header<'a> {
    msg_id: i64,
    flags: u8,
    engine_id: &'a [u8],
    clock: EngineClock,
    user: &'a [u8],
    /// Zero octets reserved for the digest.
    auth_len: usize,
    priv_params: &'a [u8],
}

/// An SNMPv3 message around `data` (a ScopedPDU SEQUENCE or an encryptedPDU OCTET STRING),
/// with a zeroed digest placeholder.
fn encode_message(h: &Header<'_>, data: &[u8]) -> Vec<u8> {
    let usm = tlv(
        SEQUENCE,
        &[
            tlv(OCTET_STRING, h.engine_id),
            tlv(INTEGER, &int_contents(h.clock.boots)),
            tlv(INTEGER, &int_contents(h.clock.time)),
            tlv(OCTET_STRING, h.user),
            tlv(OCTET_STRING, &vec![0; h.auth_len]),
            tlv(OCTET_STRING, h.priv_params),
        ]
        .concat(),
    );
    let global = tlv(
        SEQUENCE,
        &[
            tlv(INTEGER, &int_contents(h.msg_id)),
            tlv(INTEGER, &int_contents(MAX_MESSAGE_SIZE)),
            tlv(OCTET_STRING, &[h.flags]),
            tlv(INTEGER, &[3]),
        ]
        .concat(),
    );
    tlv(
        SEQUENCE,
        &[
            tlv(INTEGER, &[3]),
            global,
            tlv(OCTET_STRING, &usm),
            data.to_vec(),
        ]
        .concat(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn ber_integers_and_lengths() {
        let cases: [(i64, &[u8]); 7] = [
            (0, &[0]),
            (127, &[0x7f]),
            (128, &[0, 0x80]),
            (256, &[1, 0]),
            (-1, &[0xff]),
            (-129, &[0xff, 0x7f]),
            (2_147_483_647, &[0x7f, 0xff, 0xff, 0xff]),
        ];
        for (n, want) in cases {
            assert_eq!(int_contents(n), want, "{n}");
        }
        assert_eq!(tlv(4, &[7; 3])[..2], [4, 3]);
        assert_eq!(tlv(4, &[7; 200])[..3], [4, 0x81, 200]);
        assert_eq!(tlv(4, &[7; 300])[..4], [4, 0x82, 1, 44]);
    }

    #[test]
    fn engine_ids() {
        let cases = [
            ("80001f8805a1b2c3d4", Ok("80001f8805a1b2c3d4")),
            ("0x80001F8880AABBCCDD", Ok("80001f8880aabbccdd")),
            ("80001f880", Err("odd")),
            ("80001f88zz", Err("not hexadecimal")),
            ("80001f88", Err("5 to 32")),
            (&"ab".repeat(33), Err("5 to 32")),
        ];
        for (text, want) in cases {
            match (EngineId::from_hex(text), want) {
                (Ok(id), Ok(want)) => assert_eq!(id.to_string(), want),
                (Err(e), Err(want)) => assert!(e.contains(want), "{text}: {e}"),
                (got, want) => panic!("{text}: {got:?}, want {want:?}"),
            }
        }
        let a = EngineId::derived(b"machine-1\n", "0.0.0.0:162");
        assert_eq!(
            a,
            EngineId::derived(b"machine-1\n", "0.0.0.0:162"),
            "stable"
        );
        assert_ne!(a, EngineId::derived(b"machine-2\n", "0.0.0.0:162"));
        assert_ne!(a, EngineId::derived(b"machine-1\n", "0.0.0.0:1162"));
        assert_eq!(
            (a.as_bytes().len(), &a.as_bytes()[..5]),
            (13, &[0x80, 0, 0x1f, 0x88, 5][..])
        );
    }

    #[test]
    fn boots_and_time_window() {
        assert_eq!(boots_at(0), 1, "clock before 2020");
        assert_eq!(boots_at(BOOTS_EPOCH_UNIX + 1000), 1000);
        assert!(boots_at(BOOTS_EPOCH_UNIX + 1001) > boots_at(BOOTS_EPOCH_UNIX + 1000));
        assert_eq!(boots_at(u64::MAX), MAX_BOOTS - 1);
        let local = EngineClock {
            boots: 7,
            time: 1000,
        };
        let cases = [
            (7, 1000, true),
            (7, 850, true),
            (7, 1150, true),
            (7, 849, false),
            (7, 1151, false),
            (6, 1000, false),
            (8, 1000, false),
            (0, 0, false), // the RFC 3414 §4 time-synchronisation probe
        ];
        for (boots, time, want) in cases {
            assert_eq!(in_time_window(local, boots, time), want, "{boots}/{time}");
        }
        let latched = EngineClock {
            boots: MAX_BOOTS,
            time: 0,
        };
        assert!(!in_time_window(latched, MAX_BOOTS, 0));
    }

    #[test]
    fn rfc3414_key_localization_vectors() {
        // RFC 3414 A.3.1 and A.3.2: "maplesyrup", engine id 00…02.
        let engine = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];
        let cases = [
            (AuthProtocol::Md5, "526f5eed9fcce26f8964c2930787d82b"),
            (
                AuthProtocol::Sha1,
                "6695febc9288e36282235fc7151f128497b38f3f",
            ),
        ];
        for (protocol, want) in cases {
            assert_eq!(hex(&localized_key(protocol, b"maplesyrup", &engine)), want);
        }
    }

    const ENGINE: &str = "80001f8805a1b2c3d4e5f60718";
    const CLOCK: EngineClock = EngineClock {
        boots: 42,
        time: 1000,
    };

    fn user(
        name: &str,
        level: SecurityLevel,
        auth: AuthProtocol,
        cipher: PrivProtocol,
    ) -> UsmConfig {
        UsmConfig {
            user: name.into(),
            level,
            auth_protocol: auth,
            auth_password: Secret::new("authpass-256"),
            priv_protocol: cipher,
            priv_password: Secret::new("privpass-aes"),
            context: String::new(),
        }
    }

    fn responder(users: &[UsmConfig]) -> UsmResponder {
        let engine = LocalEngine {
            id: EngineId::from_hex(ENGINE).unwrap(),
            boots: CLOCK.boots,
            started: std::time::Instant::now(),
        };
        UsmResponder::new(engine, users, 7)
    }

    /// An INFORM-REQUEST for linkUp with request-id 77.
    fn inform_pdu() -> Vec<u8> {
        let uptime = tlv(
            SEQUENCE,
            &[&[6, 8, 0x2b, 6, 1, 2, 1, 1, 3, 0][..], &[0x43, 1, 5]].concat(),
        );
        let trap_oid = tlv(
            SEQUENCE,
            &[
                &[6, 10, 0x2b, 6, 1, 6, 3, 1, 1, 4, 1, 0][..],
                &[6, 9, 0x2b, 6, 1, 6, 3, 1, 1, 5, 4],
            ]
            .concat(),
        );
        tlv(
            0xa6,
            &[
                tlv(INTEGER, &[77]),
                tlv(INTEGER, &[0]),
                tlv(INTEGER, &[0]),
                tlv(SEQUENCE, &[uptime, trap_oid].concat()),
            ]
            .concat(),
        )
    }

    /// What a sender that discovered our engine sends: the responder's own encoder builds the
    /// same message (engine id ours, boots/time as the sender believes them).
    fn sent(
        r: &mut UsmResponder,
        index: usize,
        level: SecurityLevel,
        clock: EngineClock,
    ) -> Vec<u8> {
        let scoped = scoped_pdu(r.engine.id.as_bytes(), b"", &inform_pdu());
        let mut bytes = r.encode(index, level, 900, &scoped, clock).unwrap();
        set_flag(&mut bytes, FLAG_REPORTABLE, true);
        if let Some((protocol, key)) = &r.users[index]
            .auth
            .clone()
            .filter(|_| level != SecurityLevel::NoAuthNoPriv)
        {
            sign(&mut bytes, *protocol, key).unwrap();
        }
        bytes
    }

    fn set_flag(bytes: &mut [u8], flag: u8, on: bool) {
        // msgFlags is the first 1-octet OCTET STRING: 04 01 xx.
        let at = bytes.windows(2).position(|w| w == [4, 1]).unwrap() + 2;
        if on {
            bytes[at] |= flag;
        } else {
            bytes[at] &= !flag;
        }
    }

    fn report_stat(report: &[u8]) -> (u8, Vec<u8>, u8) {
        let msg = parse_message(report).unwrap();
        let ScopedData::Plain(contents) = msg.data else {
            panic!("encrypted report")
        };
        let scoped = parse_scoped_pdu(contents).unwrap();
        assert_eq!(scoped.pdu[0], REPORT);
        let oid_at = scoped
            .pdu
            .windows(8)
            .position(|w| w == USM_STATS_OID)
            .unwrap();
        (scoped.pdu[oid_at + 8], msg.engine_id.to_vec(), msg.flags)
    }

    #[test]
    fn response_decodes_with_snmp2_for_every_protocol() {
        use AuthProtocol::*;
        use PrivProtocol::*;
        let combos = [
            (SecurityLevel::AuthPriv, Md5, Des),
            (SecurityLevel::AuthPriv, Sha1, Aes128),
            (SecurityLevel::AuthPriv, Sha224, Aes256),
            (SecurityLevel::AuthPriv, Sha256, Aes128),
            (SecurityLevel::AuthPriv, Sha384, Aes192),
            (SecurityLevel::AuthPriv, Sha512, Aes256),
            (SecurityLevel::AuthNoPriv, Sha256, Aes128),
            (SecurityLevel::NoAuthNoPriv, Sha256, Aes128),
        ];
        for (level, auth, cipher) in combos {
            let usm = user("u", level, auth, cipher);
            let mut r = responder(std::slice::from_ref(&usm));
            let bytes = sent(&mut r, 0, level, CLOCK);
            let msg = parse_message(&bytes).unwrap();
            let incoming = r.process(&bytes, &msg, CLOCK).unwrap();
            assert_eq!((incoming.msg_id, incoming.level), (900, level));
            assert_eq!(incoming.scoped.pdu, inform_pdu());
            let ack = r.response(&incoming, CLOCK).unwrap();
            assert_eq!(parse_message(&ack).unwrap().flags & FLAG_REPORTABLE, 0);
            if level == SecurityLevel::NoAuthNoPriv {
                continue; // snmp2 decodes only authenticated v3 responses
            }
            let mut security = crate::client::security(&usm)
                .with_engine_id(r.engine.id.as_bytes())
                .unwrap()
                .with_engine_boots_and_time(CLOCK.boots, CLOCK.time);
            let copy = ack.clone();
            let pdu = snmp2::Pdu::from_bytes_with_security(&copy, Some(&mut security))
                .unwrap_or_else(|e| panic!("{auth:?}/{cipher:?}: {e}"));
            assert_eq!(pdu.message_type, snmp2::MessageType::Response);
            assert_eq!((pdu.req_id, pdu.v3_msg_id), (77, 900));
            assert_eq!(pdu.varbinds.count(), 2);
        }
    }

    #[test]
    fn dropped_messages_are_counted_and_reported() {
        let users = [
            user(
                "priv",
                SecurityLevel::AuthPriv,
                AuthProtocol::Sha256,
                PrivProtocol::Aes128,
            ),
            user(
                "auth",
                SecurityLevel::AuthNoPriv,
                AuthProtocol::Sha1,
                PrivProtocol::Aes128,
            ),
        ];
        let mut r = responder(&users);
        let good = sent(&mut r, 0, SecurityLevel::AuthPriv, CLOCK);
        // The discovery probe net-snmp sends: noAuthNoPriv, no engine id, empty GET.
        let probe = {
            let get = tlv(
                0xa0,
                &[
                    tlv(INTEGER, &[5]),
                    tlv(INTEGER, &[0]),
                    tlv(INTEGER, &[0]),
                    tlv(SEQUENCE, &[]),
                ]
                .concat(),
            );
            encode_message(
                &Header {
                    msg_id: 901,
                    flags: FLAG_REPORTABLE,
                    engine_id: b"",
                    clock: EngineClock { boots: 0, time: 0 },
                    user: b"",
                    auth_len: 0,
                    priv_params: &[],
                },
                &scoped_pdu(b"", b"", &get),
            )
        };
        let unknown_user = {
            let mut other = responder(&[user(
                "nobody",
                SecurityLevel::AuthPriv,
                AuthProtocol::Sha256,
                PrivProtocol::Aes128,
            )]);
            sent(&mut other, 0, SecurityLevel::AuthPriv, CLOCK)
        };
        let wrong_digest = {
            let mut bytes = good.clone();
            let at = parse_message(&good).unwrap().auth_offset;
            bytes[at] ^= 1;
            bytes
        };
        let time_sync = sent(
            &mut r,
            0,
            SecurityLevel::AuthPriv,
            EngineClock { boots: 0, time: 0 },
        );
        let stale = sent(
            &mut r,
            0,
            SecurityLevel::AuthPriv,
            EngineClock {
                boots: CLOCK.boots,
                time: CLOCK.time - 151,
            },
        );
        let wrong_privacy = {
            let mut other = responder(&[UsmConfig {
                priv_password: Secret::new("not-the-pass"),
                ..users[0].clone()
            }]);
            sent(&mut other, 0, SecurityLevel::AuthPriv, CLOCK)
        };
        let below_level = sent(&mut r, 0, SecurityLevel::AuthNoPriv, CLOCK);
        let above_level = {
            let mut other = responder(&[UsmConfig {
                level: SecurityLevel::AuthPriv,
                ..users[1].clone()
            }]);
            sent(&mut other, 0, SecurityLevel::AuthPriv, CLOCK)
        };
        let not_reportable = {
            let mut bytes = unknown_user.clone();
            set_flag(&mut bytes, FLAG_REPORTABLE, false);
            bytes
        };
        let cases: [(&str, &[u8], UsmStat, Option<u8>); 9] = [
            ("probe", &probe, UsmStat::UnknownEngineIds, Some(0)),
            (
                "unknown user",
                &unknown_user,
                UsmStat::UnknownUserNames,
                Some(0),
            ),
            (
                "wrong digest",
                &wrong_digest,
                UsmStat::WrongDigests,
                Some(0),
            ),
            (
                "time sync",
                &time_sync,
                UsmStat::NotInTimeWindows,
                Some(FLAG_AUTH),
            ),
            ("stale", &stale, UsmStat::NotInTimeWindows, Some(FLAG_AUTH)),
            (
                "wrong privacy",
                &wrong_privacy,
                UsmStat::DecryptionErrors,
                Some(0),
            ),
            (
                "below the user's level",
                &below_level,
                UsmStat::UnsupportedSecLevels,
                Some(0),
            ),
            (
                "above the user's level",
                &above_level,
                UsmStat::UnsupportedSecLevels,
                Some(0),
            ),
            (
                "not reportable",
                &not_reportable,
                UsmStat::UnknownUserNames,
                None,
            ),
        ];
        for (name, bytes, want_stat, want_flags) in cases {
            let msg = parse_message(bytes).unwrap();
            match r.process(bytes, &msg, CLOCK) {
                Err(UsmError::Dropped { stat, report }) => {
                    assert_eq!(stat, want_stat, "{name}");
                    match (report, want_flags) {
                        (Some(report), Some(flags)) => {
                            let (arc, engine, got_flags) = report_stat(&report);
                            assert_eq!(
                                (arc, engine.as_slice(), got_flags),
                                (stat as u8, r.engine.id.as_bytes(), flags),
                                "{name}"
                            );
                            assert_eq!(
                                parse_message(&report).unwrap().msg_id,
                                msg.msg_id,
                                "{name}"
                            );
                        }
                        (None, None) => {}
                        (got, want) => panic!("{name}: report {got:?}, want flags {want:?}"),
                    }
                }
                other => panic!("{name}: {other:?}"),
            }
        }
        let counts: Vec<(UsmStat, u32)> = r.stats().nonzero().collect();
        assert_eq!(
            counts,
            [
                (UsmStat::UnsupportedSecLevels, 2),
                (UsmStat::NotInTimeWindows, 2),
                (UsmStat::UnknownUserNames, 2),
                (UsmStat::UnknownEngineIds, 1),
                (UsmStat::WrongDigests, 1),
                (UsmStat::DecryptionErrors, 1),
            ]
        );
        assert!(
            r.process(&good, &parse_message(&good).unwrap(), CLOCK)
                .is_ok()
        );
    }

    #[test]
    fn garbage_headers_are_malformed() {
        for bytes in [
            &[][..],
            &[0x30, 0x03, 0x02, 0x01, 0x03],
            &[0x30, 0x84, 0xff],
            &[0x30, 0x05, 0x02, 0x01, 0x01, 0x04, 0x00],
        ] {
            assert!(
                matches!(parse_message(bytes), Err(UsmError::Malformed(_))),
                "{bytes:?}"
            );
        }
        for contents in [&[][..], &[4, 0, 4, 0], &[4, 0, 4, 0, 0xa6, 5, 2, 1, 1]] {
            assert!(
                parse_scoped_pdu(contents)
                    .and_then(|s| response_pdu(&s.pdu))
                    .is_err(),
                "{contents:?}"
            );
        }
    }
}
