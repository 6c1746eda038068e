//! The pure core of the Modbus source (source stage of the agent's flow): which requests read a
//! register map ([`plan`]), and how the registers that come back become values ([`decode`]).
//! The same for Modbus TCP and RTU; the task in [`super`] only moves the words.

use super::registers::{DataType, Function, Register, WordOrder};

/// Most registers one read request may ask for (Modbus: 125 registers, 2000 bits).
const MAX_REGISTERS: u16 = 125;
const MAX_BITS: u16 = 2000;
/// Unused registers one request may span to save a round trip.
const MAX_GAP: u16 = 8;

/// One read request and the map entries it serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Read {
    /// Table.
    pub function: Function,
    /// First address.
    pub start: u16,
    /// Registers (or bits).
    pub count: u16,
    /// Indexes into the map's registers that this read covers.
    pub members: Vec<usize>,
}

/// Groups the map's registers into as few reads as possible: same table, contiguous or with
/// small gaps, within the protocol's request size.
pub fn plan(registers: &[Register]) -> Vec<Read> {
    let mut order: Vec<usize> = (0..registers.len()).collect();
    order.sort_by_key(|&i| (registers[i].function, registers[i].address));
    let mut reads: Vec<Read> = Vec::new();
    for i in order {
        let r = &registers[i];
        let end = r.address.saturating_add(r.data_type.width());
        let limit = match r.function {
            Function::Holding | Function::Input => MAX_REGISTERS,
            Function::Coil | Function::Discrete => MAX_BITS,
        };
        if let Some(last) = reads.last_mut()
            && last.function == r.function
            && r.address <= (last.start + last.count).saturating_add(MAX_GAP)
            && end - last.start <= limit
        {
            last.count = last.count.max(end - last.start);
            last.members.push(i);
            continue;
        }
        reads.push(Read {
            function: r.function,
            start: r.address,
            count: end - r.address,
            members: vec![i],
        });
    }
    reads
}

/// A value that could not be decoded.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DecodeError {
    /// Fewer registers came back than the value needs.
    #[error("{metric} at {address}: short response")]
    Short {
        /// The metric.
        metric: String,
        /// Its address.
        address: u16,
    },
    /// The raw value is NaN or infinite (a float register of a sensor that failed).
    #[error("{metric} at {address}: not a finite number")]
    NotFinite {
        /// The metric.
        metric: String,
        /// Its address.
        address: u16,
    },
}

/// What came back for one read: registers or bits from its `start`.
#[derive(Debug, Clone, PartialEq)]
pub enum Words {
    /// Holding or input registers.
    Registers(Vec<u16>),
    /// Coils or discrete inputs.
    Bits(Vec<bool>),
}

/// The scaled value of `register`, read from the response of a read starting at `start`.
pub fn decode(register: &Register, start: u16, words: &Words) -> Result<f64, DecodeError> {
    let offset = usize::from(register.address.saturating_sub(start));
    let width = usize::from(register.data_type.width());
    let short = || DecodeError::Short {
        metric: register.metric.clone(),
        address: register.address,
    };
    let raw = match words {
        Words::Bits(bits) => {
            if *bits.get(offset).ok_or_else(short)? {
                1.0
            } else {
                0.0
            }
        }
        Words::Registers(regs) => {
            let slice = regs.get(offset..offset + width).ok_or_else(short)?;
            raw_value(register, slice)
        }
    };
    if !raw.is_finite() {
        return Err(DecodeError::NotFinite {
            metric: register.metric.clone(),
            address: register.address,
        });
    }
    Ok(raw * register.scale + register.offset)
}

/// The unscaled value of `words` (exactly the type's width) in the register's byte and word order.
#[allow(clippy::cast_precision_loss)] // 64-bit integers beyond 2^53 lose precision as f64, as in every TSDB
fn raw_value(register: &Register, words: &[u16]) -> f64 {
    let mut ordered: Vec<u16> = words
        .iter()
        .map(|w| {
            if register.byte_swap {
                w.swap_bytes()
            } else {
                *w
            }
        })
        .collect();
    if register.word_order == WordOrder::Little {
        ordered.reverse();
    }
    let bits = ordered
        .iter()
        .fold(0u64, |acc, w| (acc << 16) | u64::from(*w));
    match register.data_type {
        DataType::U16 | DataType::U32 | DataType::U64 => bits as f64,
        DataType::I16 => f64::from(bits as u16 as i16),
        DataType::I32 => f64::from(bits as u32 as i32),
        DataType::I64 => bits as i64 as f64,
        DataType::F32 => f64::from(f32::from_bits(bits as u32)),
        DataType::F64 => f64::from_bits(bits),
        DataType::Bool => {
            if bits == 0 {
                0.0
            } else {
                1.0
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use faultline_wire::SampleKind;
    use std::collections::BTreeMap;

    fn reg(function: Function, address: u16, data_type: DataType) -> Register {
        Register {
            metric: format!("m{address}"),
            function,
            address,
            data_type,
            word_order: WordOrder::Big,
            byte_swap: false,
            scale: 1.0,
            offset: 0.0,
            unit: None,
            kind: SampleKind::Gauge,
            labels: BTreeMap::new(),
        }
    }

    #[test]
    fn decoding_types_orders_and_scaling() {
        // 41.25 as f32 is 0x4225_0000; 123456789 as u32 is 0x075B_CD15; -2 as i32 0xFFFF_FFFE.
        // (type, word order, byte swap, scale, offset, words, expected)
        type Case = (DataType, WordOrder, bool, f64, f64, &'static [u16], f64);
        let cases: &[Case] = &[
            (
                DataType::U16,
                WordOrder::Big,
                false,
                1.0,
                0.0,
                &[65_486],
                65_486.0,
            ),
            (
                DataType::I16,
                WordOrder::Big,
                false,
                0.1,
                0.0,
                &[65_486],
                -5.0,
            ),
            (DataType::I16, WordOrder::Big, false, 0.1, 0.0, &[235], 23.5),
            (
                DataType::U16,
                WordOrder::Big,
                false,
                0.01,
                -40.0,
                &[6_500],
                25.0,
            ),
            (
                DataType::U32,
                WordOrder::Big,
                false,
                1.0,
                0.0,
                &[0x075B, 0xCD15],
                123_456_789.0,
            ),
            (
                DataType::U32,
                WordOrder::Little,
                false,
                1.0,
                0.0,
                &[0xCD15, 0x075B],
                123_456_789.0,
            ),
            (
                DataType::I32,
                WordOrder::Big,
                false,
                1.0,
                0.0,
                &[0xFFFF, 0xFFFE],
                -2.0,
            ),
            (
                DataType::F32,
                WordOrder::Big,
                false,
                1.0,
                0.0,
                &[0x4225, 0x0000],
                41.25,
            ),
            (
                DataType::F32,
                WordOrder::Little,
                false,
                1.0,
                0.0,
                &[0x0000, 0x4225],
                41.25,
            ),
            (
                DataType::F32,
                WordOrder::Big,
                true,
                1.0,
                0.0,
                &[0x2542, 0x0000],
                41.25,
            ),
            (
                DataType::F32,
                WordOrder::Little,
                true,
                1.0,
                0.0,
                &[0x0000, 0x2542],
                41.25,
            ),
            (
                DataType::U64,
                WordOrder::Big,
                false,
                1.0,
                0.0,
                &[0, 0, 1, 0],
                65_536.0,
            ),
            (
                DataType::I64,
                WordOrder::Big,
                false,
                1.0,
                0.0,
                &[0xFFFF; 4],
                -1.0,
            ),
            (
                DataType::F64,
                WordOrder::Big,
                false,
                1.0,
                0.0,
                &[0x4045, 0x2000, 0, 0],
                42.25,
            ),
            (
                DataType::F64,
                WordOrder::Little,
                false,
                1.0,
                0.0,
                &[0, 0, 0x2000, 0x4045],
                42.25,
            ),
        ];
        for (data_type, word_order, byte_swap, scale, offset, words, want) in cases {
            let r = Register {
                word_order: *word_order,
                byte_swap: *byte_swap,
                scale: *scale,
                offset: *offset,
                ..reg(Function::Holding, 10, *data_type)
            };
            // The value sits after two other registers of the read.
            let mut regs = vec![7, 7];
            regs.extend_from_slice(words);
            let got = decode(&r, 8, &Words::Registers(regs)).unwrap();
            assert!(
                (got - want).abs() < 1e-9,
                "{data_type:?} {word_order:?} {words:x?}: {got} vs {want}"
            );
        }
    }

    #[test]
    fn bits_short_responses_and_nan() {
        let coil = reg(Function::Coil, 2, DataType::Bool);
        assert_eq!(
            decode(&coil, 0, &Words::Bits(vec![false, false, true])),
            Ok(1.0)
        );
        assert!(matches!(
            decode(&coil, 0, &Words::Bits(vec![true])),
            Err(DecodeError::Short { .. })
        ));
        let f = reg(Function::Input, 0, DataType::F32);
        assert!(matches!(
            decode(&f, 0, &Words::Registers(vec![0x4225])),
            Err(DecodeError::Short { .. })
        ));
        assert!(matches!(
            decode(&f, 0, &Words::Registers(vec![0x7FC0, 0])),
            Err(DecodeError::NotFinite { .. })
        ));
    }

    #[test]
    fn reads_are_grouped_per_table_within_limits() {
        let map = vec![
            reg(Function::Input, 2, DataType::I16),     // 0
            reg(Function::Holding, 0, DataType::F32),   // 1
            reg(Function::Input, 1, DataType::I16),     // 2
            reg(Function::Holding, 4, DataType::U32),   // 3: gap of 2 → same read
            reg(Function::Holding, 100, DataType::U16), // 4: far → own read
            reg(Function::Holding, 220, DataType::U16), // 5: would exceed 125 from 100
            reg(Function::Coil, 0, DataType::Bool),     // 6
            reg(Function::Coil, 5, DataType::Bool),     // 7
        ];
        let got: Vec<(Function, u16, u16, Vec<usize>)> = plan(&map)
            .into_iter()
            .map(|r| (r.function, r.start, r.count, r.members))
            .collect();
        assert_eq!(
            got,
            vec![
                (Function::Holding, 0, 6, vec![1, 3]),
                (Function::Holding, 100, 1, vec![4]),
                (Function::Holding, 220, 1, vec![5]),
                (Function::Input, 1, 2, vec![2, 0]),
                (Function::Coil, 0, 6, vec![6, 7]),
            ]
        );
    }
}
