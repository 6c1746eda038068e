//! The Modbus source (first stage of the agent's flow): polls Modbus TCP and RTU devices by their
//! register maps. [`config`] is the file format, [`registers`] the register-map data files,
//! [`decode`] the pure request plan and decoding; this module is the thin task around
//! `tokio-modbus`, one per device, so a dead device delays only itself.
//!
//! Every poll sends the device's health: `faultline_modbus_up` (1 when the device answered, 0
//! when it could not be reached or did not answer in time: the "device unreachable" fact, as
//! `faultline_snmp_up`), the poll's duration and the errors by kind. A Modbus exception (illegal
//! address, device failure) is the device answering: counted and logged (rate-limited) with the
//! register, the other values still read.

pub mod config;
pub mod decode;
pub mod registers;

use super::{Collection, sample};
use config::{DeviceConfig, Parity};
use decode::{Read, Words};
use faultline_daemon::log_limit::LogLimiter;
use faultline_wire::{Sample, SampleKind, now_ms};
use registers::{Function, RegisterMap};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_modbus::client::{Context, Reader};

/// 1 when the device answered this poll, 0 when not.
pub const METRIC_UP: &str = "faultline_modbus_up";
/// Wall time of the poll.
pub const METRIC_POLL_DURATION: &str = "faultline_modbus_poll_duration_seconds";
/// Counter of failed requests and undecodable values by `kind` (resolve, connect, timeout,
/// transport, exception, decode).
pub const METRIC_ERRORS: &str = "faultline_modbus_errors";
/// The help line of each of the source's own families, sent with the samples ([`crate::help`]);
/// register-map metrics are the map's.
pub const HELP: [(&str, &str); 3] = [
    (
        METRIC_UP,
        "1 when the Modbus device answered this poll, 0 when not.",
    ),
    (METRIC_POLL_DURATION, "Wall time of the Modbus poll."),
    (
        METRIC_ERRORS,
        "Failed Modbus requests and undecodable values by kind (resolve, connect, timeout, transport, exception, decode).",
    ),
];

const LOG_EVERY: Duration = Duration::from_secs(60);

/// One device's poller: its map, its open connection and its counters.
pub struct ModbusDevice {
    config: DeviceConfig,
    map: Arc<RegisterMap>,
    reads: Vec<Read>,
    context: Option<Context>,
    errors: BTreeMap<&'static str, u64>,
    logs: LogLimiter<String>,
}

/// Why a request got no answer; the connection is dropped and opened again next poll.
#[derive(Debug, thiserror::Error)]
enum Unanswered {
    #[error("cannot resolve the address: {0}")]
    Resolve(String),
    #[error("cannot connect: {0}")]
    Connect(std::io::Error),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("{0}")]
    Transport(tokio_modbus::Error),
}

impl Unanswered {
    fn kind(&self) -> &'static str {
        match self {
            Unanswered::Resolve(_) => "resolve",
            Unanswered::Connect(_) => "connect",
            Unanswered::Timeout(_) => "timeout",
            Unanswered::Transport(_) => "transport",
        }
    }
}

impl ModbusDevice {
    /// A poller for `config` reading `map`.
    pub fn new(config: DeviceConfig, map: Arc<RegisterMap>) -> Self {
        Self {
            reads: decode::plan(&map.registers),
            map,
            config,
            context: None,
            errors: BTreeMap::new(),
            logs: LogLimiter::new(LOG_EVERY, 64),
        }
    }

    /// Polls the device once: its values and its health samples.
    pub async fn poll(&mut self) -> Vec<Sample> {
        let started = Instant::now();
        let ts_ms = now_ms();
        let mut out = Vec::new();
        let up = match self.poll_inner(ts_ms, &mut out).await {
            Ok(()) => true,
            Err(e) => {
                self.context = None;
                self.count(e.kind(), &e.to_string());
                false
            }
        };
        let id = self.config.id.as_str();
        out.push(sample(
            METRIC_UP,
            id,
            if up { 1.0 } else { 0.0 },
            SampleKind::Gauge,
            ts_ms,
            &[],
        ));
        out.push(sample(
            METRIC_POLL_DURATION,
            id,
            started.elapsed().as_secs_f64(),
            SampleKind::Gauge,
            ts_ms,
            &[],
        ));
        for (kind, count) in &self.errors {
            #[allow(clippy::cast_precision_loss)] // counts far below 2^53
            out.push(sample(
                METRIC_ERRORS,
                id,
                *count as f64,
                SampleKind::Counter,
                ts_ms,
                &[("kind", kind)],
            ));
        }
        for s in &mut out {
            for (k, v) in &self.config.labels {
                s.labels.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
        out
    }

    /// Counts an error of `kind` and logs it, at most once a minute per device and kind.
    fn count(&mut self, kind: &'static str, what: &str) {
        *self.errors.entry(kind).or_default() += 1;
        if let Some(held_back) = self.logs.check(&kind.to_string(), Instant::now()) {
            tracing::warn!(source = "modbus", device = %self.config.id, kind, error = what, held_back, "Modbus poll error");
        }
    }

    async fn poll_inner(&mut self, ts_ms: i64, out: &mut Vec<Sample>) -> Result<(), Unanswered> {
        let timeout = self.config.timeout;
        if self.context.is_none() {
            self.context = Some(
                tokio::time::timeout(timeout, connect(&self.config))
                    .await
                    .map_err(|_| Unanswered::Timeout(timeout))??,
            );
        }
        let reads = self.reads.clone();
        for read in &reads {
            let Some(context) = self.context.as_mut() else {
                return Ok(());
            };
            let answer = tokio::time::timeout(timeout, request(context, read))
                .await
                .map_err(|_| Unanswered::Timeout(timeout))?
                .map_err(Unanswered::Transport)?;
            match answer {
                Ok(words) => {
                    for &i in &read.members {
                        let register = &self.map.registers[i];
                        match decode::decode(register, read.start, &words) {
                            Ok(value) => {
                                let mut labels: Vec<(&str, &str)> = register
                                    .labels
                                    .iter()
                                    .map(|(k, v)| (k.as_str(), v.as_str()))
                                    .collect();
                                if let Some(unit) = &register.unit {
                                    labels.push(("unit", unit));
                                }
                                out.push(sample(
                                    &register.metric,
                                    &self.config.id,
                                    value,
                                    register.kind,
                                    ts_ms,
                                    &labels,
                                ));
                            }
                            Err(e) => self.count("decode", &e.to_string()),
                        }
                    }
                }
                Err(exception) => {
                    let what = format!(
                        "exception {exception} reading {:?} {}..{}",
                        read.function,
                        read.start,
                        u32::from(read.start) + u32::from(read.count)
                    );
                    self.count("exception", &what);
                }
            }
        }
        Ok(())
    }
}

/// Opens the device's TCP connection or serial line.
async fn connect(config: &DeviceConfig) -> Result<Context, Unanswered> {
    let unit = tokio_modbus::Slave(config.unit);
    if let Some(serial) = &config.serial {
        let builder = tokio_serial::new(serial.path.to_string_lossy(), serial.baud_rate)
            .parity(match serial.parity {
                Parity::None => tokio_serial::Parity::None,
                Parity::Even => tokio_serial::Parity::Even,
                Parity::Odd => tokio_serial::Parity::Odd,
            })
            .stop_bits(if serial.stop_bits == 2 {
                tokio_serial::StopBits::Two
            } else {
                tokio_serial::StopBits::One
            })
            .data_bits(if serial.data_bits == 7 {
                tokio_serial::DataBits::Seven
            } else {
                tokio_serial::DataBits::Eight
            });
        let port = tokio_serial::SerialStream::open(&builder)
            .map_err(|e| Unanswered::Connect(std::io::Error::other(e)))?;
        return Ok(tokio_modbus::client::rtu::attach_slave(port, unit));
    }
    let address = config.address.as_deref().unwrap_or_default();
    let socket = tokio::net::lookup_host(address)
        .await
        .map_err(|e| Unanswered::Resolve(format!("{address}: {e}")))?
        .next()
        .ok_or_else(|| Unanswered::Resolve(format!("{address}: no address")))?;
    tokio_modbus::client::tcp::connect_slave(socket, unit)
        .await
        .map_err(Unanswered::Connect)
}

async fn request(
    context: &mut Context,
    read: &Read,
) -> Result<Result<Words, tokio_modbus::ExceptionCode>, tokio_modbus::Error> {
    Ok(match read.function {
        Function::Holding => context
            .read_holding_registers(read.start, read.count)
            .await?
            .map(Words::Registers),
        Function::Input => context
            .read_input_registers(read.start, read.count)
            .await?
            .map(Words::Registers),
        Function::Coil => context
            .read_coils(read.start, read.count)
            .await?
            .map(Words::Bits),
        Function::Discrete => context
            .read_discrete_inputs(read.start, read.count)
            .await?
            .map(Words::Bits),
    })
}

/// The device task: polls every `interval` (the first poll at once) and sends each collection to
/// `tx`; returns when `tx`'s receiver is gone.
pub async fn run_device(mut device: ModbusDevice, tx: mpsc::Sender<Collection>) {
    let mut ticker = tokio::time::interval(device.config.interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let samples = device.poll().await;
        if tx.send(samples).await.is_err() {
            tracing::debug!(device = %device.config.id, "sample channel closed; Modbus device task ends");
            return;
        }
    }
}
