//! `[[mqtt]]` config of the MQTT sensor source (source stage of the agent's flow): which broker,
//! which topics, and how each message becomes samples. The doc comments are the user docs.
//!
//! ```toml
//! [[mqtt]]
//! id = "room-a-broker"             # names this connection in logs and health samples
//! stale_after = "5m"               # a sensor silent this long is reported down
//! [mqtt.broker]
//! address = "127.0.0.1:1883"
//!
//! [[mqtt.topics]]                  # Zigbee2MQTT: zigbee2mqtt/<name> {"temperature":23.4,...}
//! topic = "zigbee2mqtt/{sensor}"
//! target = "{sensor}"
//! values = [
//!   { field = "temperature", metric = "faultline_sensor_temperature_celsius" },
//!   { field = "humidity", metric = "faultline_sensor_humidity_percent" },
//! ]
//! ```

use faultline_daemon::mqtt::BrokerConfig;
use faultline_wire::SampleKind;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Duration;

/// One broker and the sensor topics read from it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MqttSourceConfig {
    /// Name of this connection: the target id of its health samples (`faultline_mqtt_connected`,
    /// `faultline_mqtt_errors`, `faultline_mqtt_payload_errors`) and the `source` of its logs.
    pub id: String,
    /// The broker.
    pub broker: BrokerConfig,
    /// A sensor (target) that sent nothing for this long is reported down
    /// (`faultline_mqtt_sensor_up` = 0) until it publishes again.
    #[serde(default = "default_stale_after", with = "humantime_serde")]
    pub stale_after: Duration,
    /// How often the connection's health and each sensor's up/down state are sent.
    #[serde(default = "default_health_interval", with = "humantime_serde")]
    pub health_interval: Duration,
    /// The topics subscribed to, each with its mapping; a message is mapped by the first topic
    /// it matches.
    pub topics: Vec<TopicConfig>,
}

fn default_stale_after() -> Duration {
    Duration::from_secs(300)
}
fn default_health_interval() -> Duration {
    Duration::from_secs(15)
}

/// `[[mqtt.topics]]`: a topic pattern and how its messages become samples.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopicConfig {
    /// Topic pattern. A `{name}` segment matches one topic level and captures it as label `name`;
    /// `+` matches one level without capturing; a final `#` matches the rest. The subscription
    /// filter is the pattern with `{name}` replaced by `+` (`tele/{device}/SENSOR` subscribes to
    /// `tele/+/SENSOR`).
    pub topic: String,
    /// Target id of the samples: text with `{name}` placeholders filled from the topic
    /// (`"{device}"`, `"room-a-{sensor}"`).
    pub target: String,
    /// Fixed labels added to every sample of this topic.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// The values read from each message.
    pub values: Vec<ValueConfig>,
}

/// One value read from a message.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValueConfig {
    /// Path of the value in a JSON payload: keys separated by dots, array positions as numbers
    /// (`AM2301.Temperature`, `sensors.0.value`). Absent: the whole payload is the value (a plain
    /// number such as `23.4`, or `ON`/`OFF`/`true`/`false` as 1/0).
    #[serde(default)]
    pub field: Option<String>,
    /// Metric name of the samples.
    pub metric: String,
    /// Factor applied to the raw value (`0.1` for tenths of a degree).
    #[serde(default = "crate::source::default_scale")]
    pub scale: f64,
    /// Added after scaling.
    #[serde(default)]
    pub offset: f64,
    /// `gauge` (default), `counter` or `state`.
    #[serde(default = "crate::source::default_kind")]
    pub kind: SampleKind,
    /// Fixed labels added to this value's samples.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}
