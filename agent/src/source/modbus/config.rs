//! `[modbus]` config of the Modbus source (source stage of the agent's flow): the devices polled
//! and where extra register maps live. The doc comments are the user docs.
//!
//! ```toml
//! [modbus]
//! maps_dir = "/etc/faultline/modbus-maps"   # optional: extra register maps (*.toml)
//!
//! [[modbus.devices]]                         # Modbus TCP (a gateway or a networked sensor)
//! id = "room-a-th-1"
//! address = "10.0.5.20:502"
//! unit = 1
//! map = "xy-md02"
//!
//! [[modbus.devices]]                         # Modbus RTU on an RS-485 adapter
//! id = "room-a-th-2"
//! serial = { path = "/dev/ttyUSB0", baud_rate = 9600, parity = "none", stop_bits = 1 }
//! unit = 2
//! map = "xy-md02"
//! interval = "30s"
//! ```

use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// `[modbus]`: devices (`[[modbus.devices]]`, one task each) and extra register maps.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModbusConfig {
    /// Directory of extra register maps (`*.toml`, the map's name is the file name), added to the
    /// built-in ones; a file with a built-in map's name replaces it.
    pub maps_dir: Option<PathBuf>,
    /// The devices.
    pub devices: Vec<DeviceConfig>,
}

/// One Modbus device (one unit id on a TCP address or a serial line).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceConfig {
    /// Target id of the device's samples.
    pub id: String,
    /// Modbus TCP: `host:port` (502 by convention). Set this or `serial`.
    #[serde(default)]
    pub address: Option<String>,
    /// Modbus RTU: the serial line. Set this or `address`.
    #[serde(default)]
    pub serial: Option<SerialConfig>,
    /// Unit (slave) id, 1–247; 255 or 0 for TCP devices that ignore it.
    #[serde(default = "default_unit")]
    pub unit: u8,
    /// Register map name (a built-in one or a file of `maps_dir`).
    pub map: String,
    /// Time between polls.
    #[serde(default = "default_interval", with = "humantime_serde")]
    pub interval: Duration,
    /// Time limit of each request (and of connecting); a device that does not answer in time is
    /// reported down (`faultline_modbus_up` = 0) for this poll.
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// Fixed labels added to every sample of the device.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// A serial line for Modbus RTU.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SerialConfig {
    /// Device path (`/dev/ttyUSB0`, `/dev/ttyS1`).
    pub path: PathBuf,
    /// Bits per second.
    #[serde(default = "default_baud")]
    pub baud_rate: u32,
    /// `none` (default), `even` or `odd`.
    #[serde(default)]
    pub parity: Parity,
    /// 1 (default) or 2.
    #[serde(default = "default_stop_bits")]
    pub stop_bits: u8,
    /// 7 or 8 (default).
    #[serde(default = "default_data_bits")]
    pub data_bits: u8,
}

/// Serial parity.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Parity {
    /// No parity bit.
    #[default]
    None,
    /// Even parity.
    Even,
    /// Odd parity.
    Odd,
}

fn default_unit() -> u8 {
    1
}
fn default_interval() -> Duration {
    Duration::from_secs(30)
}
fn default_timeout() -> Duration {
    Duration::from_secs(2)
}
fn default_baud() -> u32 {
    9600
}
fn default_stop_bits() -> u8 {
    1
}
fn default_data_bits() -> u8 {
    8
}

impl DeviceConfig {
    /// Checks values that parse but cannot work; errors are `(field relative to the device,
    /// message)`. Pure: whether the map exists is checked against the catalog by the caller.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if self.id.trim().is_empty() {
            return Err(("id", "must not be empty".into()));
        }
        match (&self.address, &self.serial) {
            (None, None) | (Some(_), Some(_)) => {
                return Err((
                    "address",
                    "set exactly one of `address` (TCP) and `serial` (RTU)".into(),
                ));
            }
            (Some(address), None)
                if address.parse::<std::net::SocketAddr>().is_err()
                    && address
                        .rsplit_once(':')
                        .is_none_or(|(_, p)| p.parse::<u16>().is_err()) =>
            {
                return Err(("address", format!("`{address}` is not host:port")));
            }
            (None, Some(serial)) => {
                if serial.baud_rate == 0 {
                    return Err(("serial", "baud_rate must be above zero".into()));
                }
                if !matches!(serial.stop_bits, 1 | 2) || !matches!(serial.data_bits, 7 | 8) {
                    return Err(("serial", "stop_bits is 1 or 2, data_bits 7 or 8".into()));
                }
            }
            _ => {}
        }
        if self.interval < Duration::from_millis(100) {
            return Err(("interval", "must be at least 100ms".into()));
        }
        if self.timeout.is_zero() || self.timeout > self.interval {
            return Err((
                "timeout",
                "must be above zero and not above interval".into(),
            ));
        }
        if self.labels.contains_key("agent") || self.labels.contains_key("target") {
            return Err(("labels", "`agent` and `target` are reserved".into()));
        }
        Ok(())
    }
}
