//! Owned numeric OIDs: parsing from profile/config text, ordering in SNMP walk order, and
//! conversion to and from `snmp2`'s borrowed OID type at the edge of the async shell.
//!
//! Sits under every other module of this source (profiles name OIDs, the core keys varbinds by
//! them, the client sends them).

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;
use thiserror::Error;

/// A numeric object identifier such as `1.3.6.1.2.1.1.3.0`. Orders like SNMP walks do
/// (arc by arc), so a `BTreeMap<Oid, _>` iterates in walk order.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Oid(Vec<u32>);

/// An OID that could not be parsed or converted.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("invalid OID `{text}`: {problem}")]
pub struct OidError {
    /// The offending text (shortened).
    pub text: String,
    /// What is wrong with it.
    pub problem: &'static str,
}

impl Oid {
    /// Builds an OID from its arcs.
    pub fn new(arcs: Vec<u32>) -> Self {
        Self(arcs)
    }

    /// The arcs.
    pub fn arcs(&self) -> &[u32] {
        &self.0
    }

    /// True when `self` is `prefix` or lies below it.
    pub fn starts_with(&self, prefix: &Oid) -> bool {
        self.0.starts_with(&prefix.0)
    }

    /// The arcs after `prefix` (the table index of a column cell), if `self` lies below it.
    pub fn suffix_after(&self, prefix: &Oid) -> Option<&[u32]> {
        self.0.strip_prefix(prefix.0.as_slice())
    }

    /// This OID with `arcs` appended.
    pub fn child(&self, arcs: &[u32]) -> Oid {
        let mut out = self.0.clone();
        out.extend_from_slice(arcs);
        Oid(out)
    }

    /// Converts to `snmp2`'s OID for a request.
    pub fn to_snmp2(&self) -> Result<snmp2::Oid<'static>, OidError> {
        let arcs: Vec<u64> = self.0.iter().map(|&a| u64::from(a)).collect();
        snmp2::Oid::from(&arcs).map_err(|_| OidError {
            text: self.to_string(),
            problem: "not encodable (needs at least two arcs, first ≤ 2, second < 40)",
        })
    }

    /// Converts `snmp2`'s OID from a response; `None` when an arc does not fit in 32 bits
    /// (not a valid SNMP OID) or the encoding is malformed.
    pub fn from_snmp2(oid: &snmp2::Oid<'_>) -> Option<Oid> {
        Self::from_ber(oid.as_bytes())
    }

    /// Decodes the contents of a BER OBJECT IDENTIFIER (without tag and length): one vector
    /// allocated at its final size, and no arithmetic beyond 32 bits — every received varbind
    /// goes through here. `None` for an empty or truncated encoding or an arc above 2^32 - 1.
    pub fn from_ber(bytes: &[u8]) -> Option<Oid> {
        let last = *bytes.last()?;
        if last & 0x80 != 0 {
            return None; // the last sub-identifier is cut short
        }
        let subidentifiers = bytes.iter().filter(|&&b| b & 0x80 == 0).count();
        let mut arcs = Vec::with_capacity(subidentifiers + 1);
        let mut value: u64 = 0;
        for &byte in bytes {
            value = (value << 7) | u64::from(byte & 0x7f);
            if value > u64::from(u32::MAX) + 80 {
                return None;
            }
            if byte & 0x80 != 0 {
                continue;
            }
            if arcs.is_empty() {
                // The first sub-identifier packs two arcs: 40 * first + second.
                let (first, second) = match value {
                    0..40 => (0, value),
                    40..80 => (1, value - 40),
                    _ => (2, value - 80),
                };
                arcs.push(first);
                arcs.push(u32::try_from(second).ok()?);
            } else {
                arcs.push(u32::try_from(value).ok()?);
            }
            value = 0;
        }
        Some(Oid(arcs))
    }
}

impl FromStr for Oid {
    type Err = OidError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let err = |problem| OidError {
            text: text.chars().take(64).collect(),
            problem,
        };
        let trimmed = text.strip_prefix('.').unwrap_or(text);
        if trimmed.is_empty() {
            return Err(err("empty"));
        }
        let arcs = trimmed
            .split('.')
            .map(|part| part.parse::<u32>())
            .collect::<Result<Vec<u32>, _>>()
            .map_err(|_| err("expected dotted decimal numbers such as 1.3.6.1.2.1.1.3.0"))?;
        if arcs.len() < 2 {
            return Err(err("needs at least two arcs"));
        }
        if arcs[0] > 2 || (arcs[0] < 2 && arcs[1] >= 40) {
            return Err(err(
                "first arc must be 0, 1 or 2 (second < 40 below 0 and 1)",
            ));
        }
        Ok(Oid(arcs))
    }
}

impl fmt::Display for Oid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, arc) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(".")?;
            }
            write!(f, "{arc}")?;
        }
        Ok(())
    }
}

impl Serialize for Oid {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Oid {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ber_table() {
        let cases: [(&[u8], Option<Vec<u32>>); 8] = [
            (&[0x2b, 6, 1], Some(vec![1, 3, 6, 1])),
            (&[0x2b, 0x81, 0x00], Some(vec![1, 3, 128])),
            (&[0x00], Some(vec![0, 0])),
            (&[0x88, 0x37, 3], Some(vec![2, 999, 3])),
            (
                &[0x2b, 0x8f, 0xff, 0xff, 0xff, 0x7f],
                Some(vec![1, 3, u32::MAX]),
            ),
            (&[0x2b, 0x90, 0x80, 0x80, 0x80, 0x00], None), // 2^32
            (&[0x2b, 0x86], None),                         // truncated
            (&[], None),
        ];
        for (bytes, want) in cases {
            assert_eq!(Oid::from_ber(bytes).map(|o| o.0), want, "{bytes:x?}");
        }
    }

    #[test]
    fn parse_table() {
        let cases = [
            ("1.3.6.1.2.1.1.3.0", Some(vec![1, 3, 6, 1, 2, 1, 1, 3, 0])),
            (".1.3.6", Some(vec![1, 3, 6])),
            ("0.0", Some(vec![0, 0])),
            ("1", None),
            ("", None),
            ("1.3.x", None),
            ("1..3", None),
            ("3.1", None),
            ("1.40", None),
            ("1.3.4294967296", None),
        ];
        for (text, want) in cases {
            assert_eq!(text.parse::<Oid>().ok().map(|o| o.0), want, "{text}");
        }
    }

    #[test]
    fn order_prefix_and_round_trip() {
        let a: Oid = "1.3.6.1.2.1.2.2.1.2".parse().unwrap();
        let b: Oid = "1.3.6.1.2.1.2.2.1.10".parse().unwrap();
        assert!(a < b, "arc order, not text order");
        let cell = a.child(&[7]);
        assert!(cell.starts_with(&a));
        assert_eq!(cell.suffix_after(&a), Some(&[7][..]));
        assert_eq!(cell.suffix_after(&b), None);
        let back = Oid::from_snmp2(&cell.to_snmp2().unwrap()).unwrap();
        let big: Oid = "1.3.4294967295.0.128.16383.16384".parse().unwrap();
        assert_eq!(Oid::from_snmp2(&big.to_snmp2().unwrap()), Some(big));
        assert_eq!(back, cell);
        assert_eq!(back.to_string(), "1.3.6.1.2.1.2.2.1.2.7");
    }
}
