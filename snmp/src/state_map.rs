//! Vendor enumerations mapped onto one numbering: a state metric's `remap` (device number →
//! the number the profile sends), so that one rule fits every vendor's HA role or fan state.
//!
//! Parsed with the profile ([`crate::profile::Metric::remap`]), applied by the pure core
//! ([`crate::collect`]) after the value is decoded. No I/O.

use crate::value::DecodeError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// `remap = { 4 = 1, 3 = 2 }`: the device's state number (a TOML key) → the number sent. When
/// set, a number the map does not name is refused rather than sent under another meaning.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "BTreeMap<String, i64>", into = "BTreeMap<String, i64>")]
pub struct StateRemap(BTreeMap<i64, i64>);

impl TryFrom<BTreeMap<String, i64>> for StateRemap {
    type Error = String;

    fn try_from(map: BTreeMap<String, i64>) -> Result<Self, Self::Error> {
        map.into_iter()
            .map(|(key, to)| match key.trim().parse::<i64>() {
                Ok(from) => Ok((from, to)),
                Err(_) => Err(format!("`{key}` is not a state number")),
            })
            .collect::<Result<_, _>>()
            .map(Self)
    }
}

impl From<StateRemap> for BTreeMap<String, i64> {
    fn from(remap: StateRemap) -> Self {
        remap
            .0
            .into_iter()
            .map(|(from, to)| (from.to_string(), to))
            .collect()
    }
}

impl StateRemap {
    /// True when no remap is configured (the device's numbers are sent as they are).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The number to send for the device's state `value`; `value` itself without a remap.
    pub fn apply(&self, value: f64) -> Result<f64, DecodeError> {
        if self.0.is_empty() {
            return Ok(value);
        }
        #[allow(clippy::cast_possible_truncation, clippy::cast_precision_loss)]
        // State numbers are small integers; a fractional one is simply not in the map.
        let key = value as i64;
        self.0
            .get(&key)
            .filter(|_| key as f64 == value)
            .map(|to| *to as f64)
            .ok_or_else(|| DecodeError::UnknownState(value.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn remap(pairs: &[(&str, i64)]) -> Result<StateRemap, String> {
        StateRemap::try_from(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_string(), *v))
                .collect::<BTreeMap<_, _>>(),
        )
    }

    #[test]
    fn remap_table() {
        let hillstone = remap(&[("4", 1), ("3", 2), ("0", 0)]).unwrap();
        let cases: [(f64, Result<f64, ()>); 5] = [
            (4.0, Ok(1.0)),
            (3.0, Ok(2.0)),
            (0.0, Ok(0.0)),
            (7.0, Err(())),
            (3.5, Err(())),
        ];
        for (device, want) in cases {
            assert_eq!(hillstone.apply(device).map_err(|_| ()), want, "{device}");
        }
        assert_eq!(StateRemap::default().apply(7.0), Ok(7.0), "no remap");
        assert!(remap(&[("master", 1)]).unwrap_err().contains("`master`"));
        let round: BTreeMap<String, i64> = hillstone.into();
        assert_eq!(round.get("4"), Some(&1));
    }
}
