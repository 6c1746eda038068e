//! Register maps of the Modbus source (source stage of the agent's flow): data files that say
//! which registers of a device model hold which value and how to decode it. Built-in maps ship
//! in `agent/modbus-maps/`; `modbus.maps_dir` adds more (a file with a built-in name replaces
//! it). Loading validates every entry, naming the file, line and field.
//!
//! ```toml
//! # xy-md02.toml: the name of the map is the file name
//! description = "XY-MD02 RS-485 temperature/humidity transmitter"
//! [[registers]]
//! metric = "faultline_sensor_temperature_celsius"
//! function = "input"       # holding | input | coil | discrete
//! address = 1              # 0-based protocol address
//! type = "i16"             # u16 i16 u32 i32 u64 i64 f32 f64 bool
//! scale = 0.1
//! unit = "celsius"
//! ```

use faultline_wire::SampleKind;
use faultline_wire::config_file::{ConfigError, ConfigSource};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

/// Built-in maps: (name, file text).
const BUILTIN: &[(&str, &str)] = &[("xy-md02", include_str!("../../../modbus-maps/xy-md02.toml"))];

/// One register map file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterMap {
    /// What device model the map is for.
    #[serde(default)]
    pub description: String,
    /// The values read.
    pub registers: Vec<Register>,
}

/// The Modbus table a value is read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Function {
    /// Holding registers (function 3).
    Holding,
    /// Input registers (function 4).
    Input,
    /// Coils (function 1), one bit each.
    Coil,
    /// Discrete inputs (function 2), one bit each.
    Discrete,
}

/// How a value is laid out in its registers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DataType {
    /// Unsigned 16-bit, one register.
    U16,
    /// Signed 16-bit, one register.
    I16,
    /// Unsigned 32-bit, two registers.
    U32,
    /// Signed 32-bit, two registers.
    I32,
    /// Unsigned 64-bit, four registers.
    U64,
    /// Signed 64-bit, four registers.
    I64,
    /// IEEE 754 single precision, two registers.
    F32,
    /// IEEE 754 double precision, four registers.
    F64,
    /// One coil or discrete input (1 or 0).
    Bool,
}

impl DataType {
    /// Registers (or bits, for `bool`) the value spans.
    pub fn width(self) -> u16 {
        match self {
            DataType::U16 | DataType::I16 | DataType::Bool => 1,
            DataType::U32 | DataType::I32 | DataType::F32 => 2,
            DataType::U64 | DataType::I64 | DataType::F64 => 4,
        }
    }
}

/// Order of the 16-bit words of a multi-register value.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WordOrder {
    /// Most significant word first (`ABCD`), the Modbus convention.
    #[default]
    Big,
    /// Least significant word first (`CDAB`), common for floats on meters and PLCs.
    Little,
}

/// One value of a map.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Register {
    /// Metric name of the samples.
    pub metric: String,
    /// The table it is read from.
    pub function: Function,
    /// 0-based protocol address of its first register (register 40001 is holding address 0).
    pub address: u16,
    /// Its layout; `bool` for coils and discrete inputs.
    #[serde(rename = "type")]
    pub data_type: DataType,
    /// Word order of 32- and 64-bit values.
    #[serde(default)]
    pub word_order: WordOrder,
    /// Swap the two bytes inside each register (`BADC` / `DCBA` devices).
    #[serde(default)]
    pub byte_swap: bool,
    /// Factor applied to the raw value.
    #[serde(default = "crate::source::default_scale")]
    pub scale: f64,
    /// Added after scaling.
    #[serde(default)]
    pub offset: f64,
    /// Unit of the scaled value, put on the samples as label `unit` (`celsius`, `percent`).
    #[serde(default)]
    pub unit: Option<String>,
    /// `gauge` (default), `counter` or `state`.
    #[serde(default = "crate::source::default_kind")]
    pub kind: SampleKind,
    /// Fixed labels of this value's samples (`sensor = "supply_air"`).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// Every register map by name.
#[derive(Debug, Default)]
pub struct MapCatalog {
    maps: BTreeMap<String, Arc<RegisterMap>>,
}

impl MapCatalog {
    /// The built-in maps.
    pub fn builtin() -> Result<Self, ConfigError> {
        let mut catalog = Self::default();
        for (name, text) in BUILTIN {
            let source = ConfigSource::from_text(
                Path::new(&format!("modbus-maps/{name}.toml")),
                (*text).to_string(),
            );
            catalog.add(name, &source)?;
        }
        Ok(catalog)
    }

    /// The built-in maps plus every `*.toml` of `dir`.
    pub fn with_user_dir(dir: &Path) -> Result<Self, ConfigError> {
        let mut catalog = Self::builtin()?;
        let unreadable = |e: std::io::Error| ConfigError {
            file: dir.to_path_buf(),
            position: None,
            field: String::new(),
            message: format!("cannot read the register map directory: {e}"),
        };
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .map_err(unreadable)?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        files.sort();
        for path in files {
            let name = path
                .file_stem()
                .map(|s| s.to_string_lossy().to_string())
                .unwrap_or_default();
            catalog.add(&name, &ConfigSource::read(&path)?)?;
        }
        Ok(catalog)
    }

    fn add(&mut self, name: &str, source: &ConfigSource) -> Result<(), ConfigError> {
        let map: RegisterMap = source.parse()?;
        validate(&map, source)?;
        self.maps.insert(name.to_string(), Arc::new(map));
        Ok(())
    }

    /// The map called `name`.
    pub fn get(&self, name: &str) -> Option<Arc<RegisterMap>> {
        self.maps.get(name).cloned()
    }

    /// Names of all maps.
    pub fn names(&self) -> Vec<&str> {
        self.maps.keys().map(String::as_str).collect()
    }
}

fn validate(map: &RegisterMap, source: &ConfigSource) -> Result<(), ConfigError> {
    if map.registers.is_empty() {
        return Err(source.error("registers", "at least one register is needed"));
    }
    for (i, r) in map.registers.iter().enumerate() {
        let field = |f: &str| format!("registers[{i}].{f}");
        if !crate::source::mqtt::mapping::is_metric_name(&r.metric) {
            return Err(source.error(
                &field("metric"),
                format!("`{}` is not a metric name", r.metric),
            ));
        }
        let bits = matches!(r.function, Function::Coil | Function::Discrete);
        if bits != (r.data_type == DataType::Bool) {
            return Err(source.error(
                &field("type"),
                "coils and discrete inputs are `bool`, registers are not",
            ));
        }
        if u32::from(r.address) + u32::from(r.data_type.width()) > 65_536 {
            return Err(source.error(&field("address"), "the value runs past address 65535"));
        }
        if !r.scale.is_finite() || r.scale == 0.0 || !r.offset.is_finite() {
            return Err(source.error(
                &field("scale"),
                "scale must be finite and non-zero, offset finite",
            ));
        }
        for name in r.labels.keys() {
            if name == "agent" || name == "target" || name == "unit" {
                return Err(source.error(&field("labels"), format!("`{name}` is reserved")));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<RegisterMap, ConfigError> {
        let source = ConfigSource::from_text(Path::new("m.toml"), text.to_string());
        let map: RegisterMap = source.parse()?;
        validate(&map, &source)?;
        Ok(map)
    }

    #[test]
    fn builtin_maps_load() {
        let catalog = MapCatalog::builtin().unwrap();
        assert!(catalog.get("xy-md02").is_some(), "{:?}", catalog.names());
    }

    #[test]
    fn errors_name_line_and_field() {
        let good =
            "[[registers]]\nmetric = \"t\"\nfunction = \"holding\"\naddress = 0\ntype = \"f32\"\n";
        assert!(load(good).is_ok());
        let cases = [
            (good.replace("\"f32\"", "\"bool\""), "registers[0].type", 5),
            (
                good.replace("\"holding\"", "\"coil\""),
                "registers[0].type",
                5,
            ),
            (good.replace("\"f32\"", "\"f16\""), "registers[0].type", 5),
            (
                good.replace("address = 0", "address = 65535"),
                "registers[0].address",
                4,
            ),
            (good.replace("\"t\"", "\"a b\""), "registers[0].metric", 2),
            (format!("{good}scale = 0.0\n"), "registers[0].scale", 6),
            (
                format!("{good}labels = {{ unit = \"x\" }}\n"),
                "registers[0].labels",
                6,
            ),
            (
                "description = \"x\"\nregisters = []\n".to_string(),
                "registers",
                2,
            ),
        ];
        for (text, field, line) in cases {
            let err = load(&text).unwrap_err();
            assert_eq!(err.field, field, "{err}");
            assert_eq!(err.position.map(|p| p.0), Some(line), "{err}");
        }
    }
}
