//! SNMP values, owned, and their decoding into sample numbers per profile value kind.
//!
//! The async shell turns each `snmp2` varbind into a [`SnmpValue`] as soon as a response
//! arrives; the pure core ([`crate::collect`]) then calls [`decode`] with the kind the profile
//! declares. Nothing here does I/O.

use crate::profile::ValueKind;
use std::collections::BTreeMap;
use std::fmt;
use thiserror::Error;

/// One varbind value as received from a device.
#[derive(Debug, Clone, PartialEq)]
pub enum SnmpValue {
    /// INTEGER (also enumerations).
    Integer(i64),
    /// Counter32.
    Counter32(u32),
    /// Gauge32 / Unsigned32.
    Gauge32(u32),
    /// TimeTicks (hundredths of a second).
    Timeticks(u32),
    /// Counter64.
    Counter64(u64),
    /// OCTET STRING (DisplayString, MAC addresses, …).
    OctetString(Vec<u8>),
    /// OBJECT IDENTIFIER.
    ObjectId(crate::Oid),
    /// IpAddress.
    IpAddress([u8; 4]),
    /// NULL.
    Null,
    /// noSuchObject: the device does not implement the object.
    NoSuchObject,
    /// noSuchInstance: the object exists but not this instance (row).
    NoSuchInstance,
    /// endOfMibView: a walk ran past the end of the device's MIB.
    EndOfMibView,
    /// Any other type (Opaque, Boolean, constructed); named for error messages.
    Other(&'static str),
}

impl SnmpValue {
    /// Converts a borrowed `snmp2` value.
    pub fn from_snmp2(value: &snmp2::Value<'_>) -> Self {
        use snmp2::Value as V;
        match value {
            V::Integer(n) => Self::Integer(*n),
            V::Counter32(n) => Self::Counter32(*n),
            V::Unsigned32(n) => Self::Gauge32(*n),
            V::Timeticks(n) => Self::Timeticks(*n),
            V::Counter64(n) => Self::Counter64(*n),
            V::OctetString(bytes) => Self::OctetString(bytes.to_vec()),
            V::ObjectIdentifier(oid) => {
                crate::Oid::from_snmp2(oid).map_or(Self::Other("OBJECT IDENTIFIER"), Self::ObjectId)
            }
            V::IpAddress(ip) => Self::IpAddress(*ip),
            V::Null => Self::Null,
            V::NoSuchObject => Self::NoSuchObject,
            V::NoSuchInstance => Self::NoSuchInstance,
            V::EndOfMibView => Self::EndOfMibView,
            V::Opaque(_) => Self::Other("Opaque"),
            V::Boolean(_) => Self::Other("BOOLEAN"),
            _ => Self::Other("constructed"),
        }
    }

    /// Converts every varbind of a decoded PDU; `None` when an OID has an arc beyond 32 bits
    /// (not valid SNMP). This is the whole path from received bytes to owned data that the
    /// client and the trap listener share (and the fuzz target exercises).
    pub fn varbinds(pdu: &snmp2::Pdu<'_>) -> Option<Vec<(crate::Oid, SnmpValue)>> {
        pdu.varbinds
            .clone()
            .map(|(oid, value)| crate::Oid::from_snmp2(&oid).map(|o| (o, Self::from_snmp2(&value))))
            .collect()
    }

    /// True for the three exception values (noSuchObject, noSuchInstance, endOfMibView).
    pub fn is_exception(&self) -> bool {
        matches!(
            self,
            Self::NoSuchObject | Self::NoSuchInstance | Self::EndOfMibView
        )
    }

    /// The value as label text: strings (control characters dropped, invalid UTF-8 replaced),
    /// numbers, OIDs and addresses in their usual notation; `None` for exceptions and NULL.
    pub fn label_text(&self) -> Option<String> {
        Some(match self {
            Self::OctetString(bytes) => String::from_utf8_lossy(bytes)
                .chars()
                .filter(|c| !c.is_control())
                .collect::<String>()
                .trim()
                .to_string(),
            Self::Integer(n) => n.to_string(),
            Self::Counter32(n) | Self::Gauge32(n) | Self::Timeticks(n) => n.to_string(),
            Self::Counter64(n) => n.to_string(),
            Self::ObjectId(oid) => oid.to_string(),
            Self::IpAddress([a, b, c, d]) => format!("{a}.{b}.{c}.{d}"),
            _ => return None,
        })
    }
}

impl fmt::Display for SnmpValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Integer(n) => write!(f, "INTEGER {n}"),
            Self::Counter32(n) => write!(f, "Counter32 {n}"),
            Self::Gauge32(n) => write!(f, "Gauge32 {n}"),
            Self::Timeticks(n) => write!(f, "TimeTicks {n}"),
            Self::Counter64(n) => write!(f, "Counter64 {n}"),
            Self::OctetString(b) => write!(f, "OCTET STRING ({} bytes)", b.len()),
            Self::ObjectId(o) => write!(f, "OID {o}"),
            Self::IpAddress(_) => f.write_str("IpAddress"),
            Self::Null => f.write_str("NULL"),
            Self::NoSuchObject => f.write_str("noSuchObject"),
            Self::NoSuchInstance => f.write_str("noSuchInstance"),
            Self::EndOfMibView => f.write_str("endOfMibView"),
            Self::Other(name) => f.write_str(name),
        }
    }
}

/// Why a value could not become a sample.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    /// The device answered noSuchObject / noSuchInstance / endOfMibView.
    #[error("not present on the device ({0})")]
    Missing(String),
    /// The value's type does not fit the declared kind.
    #[error("expected {expected}, got {got}")]
    WrongType {
        /// The declared kind.
        expected: &'static str,
        /// What the device sent.
        got: String,
    },
    /// A state given as text is not one of the declared state names.
    #[error("state `{0}` is not one of the profile's state names")]
    UnknownState(String),
}

/// A decoded number and, for counters, its width for wrap handling.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Decoded {
    /// A gauge or state value, already scaled.
    Value(f64),
    /// A raw counter reading (unscaled) and its width in bits (32 or 64).
    Counter {
        /// The raw reading.
        raw: u64,
        /// 32 or 64.
        bits: u32,
    },
}

/// Decodes `value` as `kind`. `states` maps state names to numbers (for `state` kinds given as
/// text); `scale` multiplies gauges and states.
pub fn decode(
    value: &SnmpValue,
    kind: ValueKind,
    scale: f64,
    states: &BTreeMap<String, i64>,
) -> Result<Decoded, DecodeError> {
    if value.is_exception() {
        return Err(DecodeError::Missing(value.to_string()));
    }
    let wrong = || DecodeError::WrongType {
        expected: kind.name(),
        got: value.to_string(),
    };
    #[allow(clippy::cast_precision_loss)] // SNMP numbers beyond 2^53 lose precision in f64
    match kind {
        ValueKind::Gauge => {
            let n = match value {
                SnmpValue::Integer(n) => *n as f64,
                SnmpValue::Gauge32(n) | SnmpValue::Timeticks(n) | SnmpValue::Counter32(n) => {
                    f64::from(*n)
                }
                SnmpValue::Counter64(n) => *n as f64,
                SnmpValue::OctetString(bytes) => parse_number(bytes).ok_or_else(wrong)?,
                _ => return Err(wrong()),
            };
            let scaled = n * scale;
            if scaled.is_finite() {
                Ok(Decoded::Value(scaled))
            } else {
                Err(wrong())
            }
        }
        ValueKind::Counter32 => match value {
            SnmpValue::Counter32(n) => Ok(Decoded::Counter {
                raw: u64::from(*n),
                bits: 32,
            }),
            _ => Err(wrong()),
        },
        ValueKind::Counter64 => match value {
            SnmpValue::Counter64(n) => Ok(Decoded::Counter { raw: *n, bits: 64 }),
            // Agents that only speak v1 or lack HC counters answer Counter32 for the same column.
            SnmpValue::Counter32(n) => Ok(Decoded::Counter {
                raw: u64::from(*n),
                bits: 32,
            }),
            _ => Err(wrong()),
        },
        ValueKind::State => match value {
            SnmpValue::Integer(n) => Ok(Decoded::Value(*n as f64 * scale)),
            SnmpValue::Gauge32(n) => Ok(Decoded::Value(f64::from(*n) * scale)),
            SnmpValue::OctetString(bytes) => {
                let text = String::from_utf8_lossy(bytes).trim().to_ascii_lowercase();
                states
                    .iter()
                    .find(|(name, _)| name.to_ascii_lowercase() == text)
                    .map(|(_, n)| Decoded::Value(*n as f64))
                    .ok_or(DecodeError::UnknownState(text.chars().take(64).collect()))
            }
            _ => Err(wrong()),
        },
    }
}

/// Parses a number sent as text: "0.25"; quotes around it and one trailing `%` are dropped
/// (Sangfor sends `"10%`). Anything else beside the number (" 23.5 C") is rejected.
fn parse_number(bytes: &[u8]) -> Option<f64> {
    let text = std::str::from_utf8(bytes)
        .ok()?
        .trim()
        .trim_matches('"')
        .trim();
    let text = text.strip_suffix('%').unwrap_or(text).trim_end();
    text.parse::<f64>().ok().filter(|n| n.is_finite())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn states() -> BTreeMap<String, i64> {
        [("active".to_string(), 1), ("passive".to_string(), 2)].into()
    }

    #[test]
    fn decode_table() {
        use SnmpValue as V;
        use ValueKind as K;
        let v = |n: f64| Ok(Decoded::Value(n));
        let c = |raw: u64, bits: u32| Ok(Decoded::Counter { raw, bits });
        let cases: Vec<(SnmpValue, K, f64, Result<Decoded, &str>)> = vec![
            (V::Integer(-5), K::Gauge, 1.0, v(-5.0)),
            (V::Integer(235), K::Gauge, 0.1, v(23.5)),
            (V::Gauge32(7), K::Gauge, 1.0, v(7.0)),
            (V::Timeticks(12345), K::Gauge, 0.01, v(123.45)),
            (V::OctetString(b" 0.25\n".to_vec()), K::Gauge, 1.0, v(0.25)),
            (V::OctetString(b"NaN".to_vec()), K::Gauge, 1.0, Err("wrong")),
            (V::OctetString(b"\"10%".to_vec()), K::Gauge, 0.01, v(0.1)),
            (V::OctetString(b"\"0.38\"".to_vec()), K::Gauge, 1.0, v(0.38)),
            (
                V::OctetString(b"9.9G".to_vec()),
                K::Gauge,
                1.0,
                Err("wrong"),
            ),
            (V::OctetString(b"%".to_vec()), K::Gauge, 1.0, Err("wrong")),
            (
                V::OctetString(b"1e308".to_vec()),
                K::Gauge,
                1e6,
                Err("wrong"),
            ),
            (
                V::OctetString(b"eth0".to_vec()),
                K::Gauge,
                1.0,
                Err("wrong"),
            ),
            (
                V::Counter32(u32::MAX),
                K::Counter32,
                1.0,
                c(u64::from(u32::MAX), 32),
            ),
            (V::Counter64(u64::MAX), K::Counter64, 1.0, c(u64::MAX, 64)),
            (V::Counter32(9), K::Counter64, 1.0, c(9, 32)),
            (V::Integer(9), K::Counter32, 1.0, Err("wrong")),
            (V::Gauge32(9), K::Counter64, 1.0, Err("wrong")),
            (V::Integer(2), K::State, 1.0, v(2.0)),
            (V::OctetString(b"Passive".to_vec()), K::State, 1.0, v(2.0)),
            (
                V::OctetString(b"weird".to_vec()),
                K::State,
                1.0,
                Err("state"),
            ),
            (V::Counter32(1), K::State, 1.0, Err("wrong")),
            (V::NoSuchObject, K::Gauge, 1.0, Err("missing")),
            (V::NoSuchInstance, K::Counter64, 1.0, Err("missing")),
            (V::EndOfMibView, K::State, 1.0, Err("missing")),
            (V::Null, K::Gauge, 1.0, Err("wrong")),
            (V::Other("Opaque"), K::Gauge, 1.0, Err("wrong")),
        ];
        for (value, kind, scale, want) in cases {
            let got = decode(&value, kind, scale, &states());
            match (want, got) {
                (Ok(Decoded::Value(w)), Ok(Decoded::Value(g))) => {
                    assert!((w - g).abs() < 1e-9, "{value:?} as {kind:?}: {g} != {w}")
                }
                (Ok(w), Ok(g)) => assert_eq!(w, g, "{value:?} as {kind:?}"),
                (Err("missing"), Err(DecodeError::Missing(_)))
                | (Err("wrong"), Err(DecodeError::WrongType { .. }))
                | (Err("state"), Err(DecodeError::UnknownState(_))) => {}
                (want, got) => panic!("{value:?} as {kind:?}: want {want:?}, got {got:?}"),
            }
        }
    }

    #[test]
    fn label_text_is_clean() {
        let v = SnmpValue::OctetString(b"Gi0/1\x00\r\n".to_vec());
        assert_eq!(v.label_text().as_deref(), Some("Gi0/1"));
        assert_eq!(
            SnmpValue::IpAddress([10, 0, 0, 1]).label_text().as_deref(),
            Some("10.0.0.1")
        );
        assert_eq!(SnmpValue::NoSuchInstance.label_text(), None);
    }
}
