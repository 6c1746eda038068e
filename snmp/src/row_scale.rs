//! Scaling a table column by other columns of the same row ([`crate::profile::RowFactor`]):
//! `hrStorageSize × hrStorageAllocationUnits` in bytes, an ENTITY-SENSOR-MIB reading in base units
//! (`entPhySensorValue × 1000^(entPhySensorScale − 9) ÷ 10^entPhySensorPrecision`, RFC 3433).
//!
//! Pure: [`crate::collect`] calls [`scale_by_row`] with the poll's varbinds and the row index;
//! the referenced columns were walked with the table ([`crate::collect::FetchPlan`]). A row whose
//! factor column is missing, not a number or out of range is an error, never a guess.

use crate::Oid;
use crate::collect::VarbindMap;
use crate::profile::RowFactor;
use crate::value::SnmpValue;
use thiserror::Error;

/// Why a row's reading could not be scaled; each names the factor cell's full OID.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum RowScaleError {
    /// The factor column has no value at this row in the walk.
    #[error("scale column {0} was not returned for this row")]
    NotReturned(Oid),
    /// The device answered noSuchObject / noSuchInstance / endOfMibView for the factor cell.
    #[error("scale column {oid} is not present on the device ({value})")]
    Missing {
        /// The factor cell.
        oid: Oid,
        /// The exception received.
        value: String,
    },
    /// The factor cell is not an INTEGER, Gauge32/Unsigned32 or a number sent as text
    /// (counters and time ticks are not factors).
    #[error("scale column {oid} is not a number: {value}")]
    NotNumeric {
        /// The factor cell.
        oid: Oid,
        /// What the device sent.
        value: String,
    },
    /// A `power_of` factor's cell holds a fraction, or its exponent does not fit.
    #[error("scale column {oid}: {value} is not a usable integer exponent")]
    NotInteger {
        /// The factor cell.
        oid: Oid,
        /// The cell's value.
        value: f64,
    },
    /// The factor cell lies outside the profile's `range`.
    #[error("scale column {oid}: {value} is outside [{min}, {max}]")]
    OutOfRange {
        /// The factor cell.
        oid: Oid,
        /// The cell's value.
        value: f64,
        /// Lowest accepted value.
        min: i64,
        /// Highest accepted value.
        max: i64,
    },
    /// The scaled reading is not a finite number (a zero divisor, an overflow).
    #[error("scaled value is not a finite number")]
    NotFinite,
}

/// `value` scaled by every factor of `factors`, read from `data` at the row `index`.
///
/// Multiplying factors and divisors are gathered first and applied as
/// `value × product / divisor`, so `2350 ÷ 10^2` is exactly `23.5` rather than `2350 × 0.01`.
pub fn scale_by_row(
    value: f64,
    factors: &[RowFactor],
    data: &VarbindMap,
    index: &[u32],
) -> Result<f64, RowScaleError> {
    let (mut product, mut divisor) = (1.0_f64, 1.0_f64);
    for factor in factors {
        let oid = factor.oid.child(index);
        let cell = data
            .get(&oid)
            .ok_or_else(|| RowScaleError::NotReturned(oid.clone()))?;
        let n = number(&oid, cell)?;
        if let Some([min, max]) = factor.range {
            #[allow(clippy::cast_precision_loss)] // MIB ranges are far below 2^53
            if n < min as f64 || n > max as f64 {
                return Err(RowScaleError::OutOfRange {
                    oid,
                    value: n,
                    min,
                    max,
                });
            }
        }
        let (f, divide) = match factor.power_of {
            None => (n, factor.divide),
            Some(base) => {
                let n = if factor.negative_as_zero {
                    n.max(0.0)
                } else {
                    n
                };
                let exponent = exponent(n, factor.offset)
                    .ok_or(RowScaleError::NotInteger { oid, value: n })?;
                // base^-e as a divisor keeps the arithmetic exact for powers of ten.
                let power = f64::from(base).powi(exponent.abs());
                (power, factor.divide != (exponent < 0))
            }
        };
        if divide {
            divisor *= f;
        } else {
            product *= f;
        }
    }
    let scaled = value * product / divisor;
    if scaled.is_finite() {
        Ok(scaled)
    } else {
        Err(RowScaleError::NotFinite)
    }
}

/// A factor cell as a number: INTEGER, Gauge32/Unsigned32 or a number sent as text.
fn number(oid: &Oid, cell: &SnmpValue) -> Result<f64, RowScaleError> {
    #[allow(clippy::cast_precision_loss)] // INTEGER factors are far below 2^53
    let n = match cell {
        SnmpValue::Integer(n) => *n as f64,
        SnmpValue::Gauge32(n) => f64::from(*n),
        SnmpValue::OctetString(bytes) => std::str::from_utf8(bytes)
            .ok()
            .and_then(|t| t.trim().parse::<f64>().ok())
            .filter(|n| n.is_finite())
            .ok_or_else(|| RowScaleError::NotNumeric {
                oid: oid.clone(),
                value: cell.to_string(),
            })?,
        other if other.is_exception() => {
            return Err(RowScaleError::Missing {
                oid: oid.clone(),
                value: other.to_string(),
            });
        }
        other => {
            return Err(RowScaleError::NotNumeric {
                oid: oid.clone(),
                value: other.to_string(),
            });
        }
    };
    Ok(n)
}

/// `n + offset` as a power exponent; `None` for a fraction or an exponent beyond ±1,000
/// (no MIB scales by more; the caller reports the cell).
fn exponent(n: f64, offset: i64) -> Option<i32> {
    if n.fract() != 0.0 || n.abs() > 1e6 {
        return None;
    }
    #[allow(clippy::cast_possible_truncation)] // integral and within ±1e6, checked above
    let e = (n as i64).checked_add(offset)?;
    i32::try_from(e).ok().filter(|e| e.abs() <= 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALUE: &str = "1.3.6.1.2.1.99.1.1.1.4";
    const SCALE: &str = "1.3.6.1.2.1.99.1.1.1.2";
    const PRECISION: &str = "1.3.6.1.2.1.99.1.1.1.3";
    const UNITS: &str = "1.3.6.1.2.1.25.2.3.1.4";

    fn oid(s: &str) -> Oid {
        s.parse().unwrap()
    }

    /// The ENTITY-SENSOR-MIB factors as `snmp/profiles/entity-sensor.toml` declares them.
    fn entity_sensor() -> Vec<RowFactor> {
        crate::catalog::ProfileCatalog::builtin()
            .unwrap()
            .get("entity-sensor")
            .unwrap()
            .tables[0]
            .columns
            .iter()
            .find(|c| c.oid == oid(VALUE))
            .unwrap()
            .scale_by
            .clone()
    }

    fn row(cells: &[(&str, SnmpValue)]) -> VarbindMap {
        cells
            .iter()
            .map(|(column, v)| (oid(column).child(&[7]), v.clone()))
            .collect()
    }

    /// RFC 3433: value × 10^(3·(scale − 9)) / 10^precision; negative precision counts accurate
    /// digits and does not move the decimal point.
    #[test]
    fn entity_sensor_table() {
        use SnmpValue::Integer as I;
        let cases: [(i64, i64, i64, f64); 12] = [
            // (value, scale, precision, base units)
            (23, 9, 0, 23.0),          // units, integer: Palo Alto temperatures
            (282, 9, 1, 28.2),         // 28.2 °C
            (330, 9, 2, 3.30),         // 3.30 V
            (-1234, 9, 2, -12.34),     // negative readings stay negative
            (509, 8, 2, 0.00509),      // 5.09 mA
            (6015, 8, 4, 0.000_601_5), // 0.6015 mW
            (12, 8, 0, 0.012),         // milli
            (15, 10, 0, 15_000.0),     // kilo
            (125, 10, 1, 12_500.0),    // 12.5 kW
            (3, 11, 0, 3e6),           // mega
            (42, 9, -2, 42.0),         // 2 accurate digits: no shift
            (7, 7, 9, 7e-15),          // micro, 9 decimal places
        ];
        let factors = entity_sensor();
        for (value, scale, precision, want) in cases {
            let data = row(&[(SCALE, I(scale)), (PRECISION, I(precision))]);
            let got = scale_by_row(value as f64, &factors, &data, &[7]).unwrap();
            assert!(
                (got - want).abs() <= want.abs() * 1e-12,
                "{value} scale {scale} precision {precision}: {got} != {want}"
            );
        }
        // Decimal places of a units reading are exact, not × 0.01.
        let data = row(&[(SCALE, I(9)), (PRECISION, I(2))]);
        assert_eq!(scale_by_row(2350.0, &factors, &data, &[7]), Ok(23.5));
    }

    #[test]
    fn bad_factor_cells_are_errors() {
        use SnmpValue as V;
        let factors = entity_sensor();
        let scale = oid(SCALE).child(&[7]);
        let precision = oid(PRECISION).child(&[7]);
        let cases: Vec<(VarbindMap, RowScaleError)> = vec![
            (
                row(&[(PRECISION, V::Integer(0))]),
                RowScaleError::NotReturned(scale.clone()),
            ),
            (
                row(&[(SCALE, V::NoSuchInstance), (PRECISION, V::Integer(0))]),
                RowScaleError::Missing {
                    oid: scale.clone(),
                    value: "noSuchInstance".into(),
                },
            ),
            (
                row(&[
                    (SCALE, V::OctetString(b"milli".to_vec())),
                    (PRECISION, V::Integer(0)),
                ]),
                RowScaleError::NotNumeric {
                    oid: scale.clone(),
                    value: "OCTET STRING (5 bytes)".into(),
                },
            ),
            (
                row(&[(SCALE, V::Integer(9)), (PRECISION, V::Counter32(1))]),
                RowScaleError::NotNumeric {
                    oid: precision.clone(),
                    value: "Counter32 1".into(),
                },
            ),
            (
                row(&[(SCALE, V::Integer(18)), (PRECISION, V::Integer(0))]),
                RowScaleError::OutOfRange {
                    oid: scale.clone(),
                    value: 18.0,
                    min: 1,
                    max: 17,
                },
            ),
            (
                row(&[(SCALE, V::Integer(9)), (PRECISION, V::Integer(10))]),
                RowScaleError::OutOfRange {
                    oid: precision.clone(),
                    value: 10.0,
                    min: -8,
                    max: 9,
                },
            ),
            (
                row(&[
                    (SCALE, V::OctetString(b"8.5".to_vec())),
                    (PRECISION, V::Integer(0)),
                ]),
                RowScaleError::NotInteger {
                    oid: scale.clone(),
                    value: 8.5,
                },
            ),
        ];
        for (data, want) in cases {
            assert_eq!(scale_by_row(1.0, &factors, &data, &[7]), Err(want));
        }
    }

    #[test]
    fn plain_factors_multiply_and_divide() {
        use SnmpValue as V;
        let units = |divide| RowFactor {
            oid: oid(UNITS),
            power_of: None,
            offset: 0,
            divide,
            negative_as_zero: false,
            range: None,
        };
        let cases: Vec<(SnmpValue, bool, f64, Result<f64, RowScaleError>)> = vec![
            // hrStorageSize 3956120 × 1024-byte units
            (V::Integer(1024), false, 3_956_120.0, Ok(4_051_066_880.0)),
            (V::Gauge32(4096), false, 16_384.0, Ok(67_108_864.0)),
            (V::OctetString(b" 512 ".to_vec()), false, 2.0, Ok(1024.0)),
            (V::Integer(0), false, 5.0, Ok(0.0)),
            (V::Integer(4), true, 10.0, Ok(2.5)),
            (V::Integer(0), true, 10.0, Err(RowScaleError::NotFinite)),
            (V::Integer(0), true, 0.0, Err(RowScaleError::NotFinite)),
            (
                V::Timeticks(5),
                false,
                1.0,
                Err(RowScaleError::NotNumeric {
                    oid: oid(UNITS).child(&[7]),
                    value: "TimeTicks 5".into(),
                }),
            ),
        ];
        for (cell, divide, value, want) in cases {
            let data = row(&[(UNITS, cell.clone())]);
            assert_eq!(
                scale_by_row(value, &[units(divide)], &data, &[7]),
                want,
                "{cell:?} divide {divide}"
            );
        }
        // Nothing to scale by: the value passes unchanged.
        assert_eq!(scale_by_row(3.5, &[], &VarbindMap::new(), &[7]), Ok(3.5));
    }

    #[test]
    fn exponents_stay_bounded() {
        assert_eq!(exponent(8.0, -9), Some(-1));
        assert_eq!(exponent(-2.0, 0), Some(-2));
        assert_eq!(exponent(0.5, 0), None);
        assert_eq!(exponent(2e9, 0), None);
        assert_eq!(exponent(999.0, 9), None);
        assert_eq!(exponent(1000.0, 0), Some(1000));
    }
}
