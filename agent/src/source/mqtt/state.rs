//! What the MQTT sensor source remembers between messages (source stage of the agent's flow):
//! when each sensor last published, and the counts of messages and errors. Pure: the task passes
//! every message and the time in, and sends what comes out; the health samples (connection up,
//! sensors up or stale, errors per topic) are built here too.

use super::mapping::{PayloadError, TopicMap};
use faultline_wire::{Sample, SampleKind};
use std::collections::BTreeMap;

/// 1 while connected to the broker, 0 while not (target: the `[[mqtt]]` id).
pub const METRIC_CONNECTED: &str = "faultline_mqtt_connected";
/// Counter of messages received (target: the `[[mqtt]]` id).
pub const METRIC_MESSAGES: &str = "faultline_mqtt_messages";
/// Counter of connection failures by `kind` (target: the `[[mqtt]]` id).
pub const METRIC_ERRORS: &str = "faultline_mqtt_errors";
/// Counter of payloads the mapping could not read, by `topic` and `kind` (target: the id).
pub const METRIC_PAYLOAD_ERRORS: &str = "faultline_mqtt_payload_errors";
/// 1 while a sensor publishes, 0 once it was silent for `stale_after` (target: the sensor).
pub const METRIC_SENSOR_UP: &str = "faultline_mqtt_sensor_up";
/// Unix time of a sensor's last message (target: the sensor).
pub const METRIC_SENSOR_LAST: &str = "faultline_mqtt_sensor_last_message_timestamp_seconds";
/// The help line of each of the source's own families, sent with the samples ([`crate::help`]);
/// mapped sensor metrics are the mapping's.
pub const HELP: [(&str, &str); 6] = [
    (
        METRIC_CONNECTED,
        "1 while connected to the MQTT broker, 0 while not.",
    ),
    (METRIC_MESSAGES, "MQTT messages received."),
    (METRIC_ERRORS, "MQTT broker connection failures by kind."),
    (
        METRIC_PAYLOAD_ERRORS,
        "MQTT payloads the mapping could not read, by topic and kind.",
    ),
    (
        METRIC_SENSOR_UP,
        "1 while an MQTT sensor publishes, 0 once it was silent for stale_after.",
    ),
    (
        METRIC_SENSOR_LAST,
        "Unix time of an MQTT sensor's last message.",
    ),
];

/// Most sensors whose freshness is tracked, and most topics whose payload errors are counted
/// apart; further topics are counted under `topic="(other)"`.
const MAX_TRACKED: usize = 10_000;
const MAX_ERROR_TOPICS: usize = 1_000;

/// The source's state for one broker connection.
#[derive(Debug)]
pub struct SourceState {
    id: String,
    maps: Vec<TopicMap>,
    stale_after_ms: i64,
    last_seen_ms: BTreeMap<String, i64>,
    payload_errors: BTreeMap<(String, &'static str), u64>,
    errors: BTreeMap<&'static str, u64>,
    messages: u64,
    connected: bool,
}

/// What one message gave.
#[derive(Debug, Default, PartialEq)]
pub struct Received {
    /// Samples for the batcher.
    pub samples: Vec<Sample>,
    /// Values that could not be read (already counted).
    pub errors: Vec<PayloadError>,
}

impl SourceState {
    /// State for connection `id` mapping with `maps`.
    pub fn new(id: &str, maps: Vec<TopicMap>, stale_after_ms: i64) -> Self {
        Self {
            id: id.to_string(),
            maps,
            stale_after_ms,
            last_seen_ms: BTreeMap::new(),
            payload_errors: BTreeMap::new(),
            errors: BTreeMap::new(),
            messages: 0,
            connected: false,
        }
    }

    /// The subscription filters, one per topic entry (duplicates removed).
    pub fn filters(&self) -> Vec<String> {
        let mut filters: Vec<String> = self.maps.iter().map(TopicMap::filter).collect();
        filters.sort();
        filters.dedup();
        filters
    }

    /// Maps a message by the first topic entry it matches, counts what could not be read.
    pub fn on_message(&mut self, topic: &str, payload: &[u8], now_ms: i64) -> Received {
        self.messages += 1;
        let Some(mapped) = self.maps.iter().find_map(|m| m.map(topic, payload, now_ms)) else {
            return Received::default();
        };
        if !mapped.samples.is_empty()
            && (self.last_seen_ms.len() < MAX_TRACKED
                || self.last_seen_ms.contains_key(&mapped.target))
        {
            self.last_seen_ms.insert(mapped.target.clone(), now_ms);
        }
        for error in &mapped.errors {
            let topic = if self.payload_errors.len() < MAX_ERROR_TOPICS
                || self
                    .payload_errors
                    .contains_key(&(topic.to_string(), error.kind()))
            {
                topic.to_string()
            } else {
                "(other)".to_string()
            };
            *self
                .payload_errors
                .entry((topic, error.kind()))
                .or_default() += 1;
        }
        Received {
            samples: mapped.samples,
            errors: mapped.errors,
        }
    }

    /// The connection is up (the broker accepted it) or down.
    pub fn set_connected(&mut self, connected: bool) {
        self.connected = connected;
    }

    /// Counts a connection failure of `kind`.
    pub fn count_error(&mut self, kind: &'static str) {
        *self.errors.entry(kind).or_default() += 1;
    }

    /// Health samples at `now_ms`: the connection's state and counters, and each sensor up (1)
    /// or stale (0).
    #[allow(clippy::cast_precision_loss)] // counts and milliseconds far below 2^53
    pub fn health(&self, now_ms: i64) -> Vec<Sample> {
        let sample = |metric: &str, target: &str, value: f64, kind, labels: &[(&str, &str)]| {
            crate::source::sample(metric, target, value, kind, now_ms, labels)
        };
        let id = self.id.as_str();
        let mut out = vec![
            sample(
                METRIC_CONNECTED,
                id,
                if self.connected { 1.0 } else { 0.0 },
                SampleKind::Gauge,
                &[],
            ),
            sample(
                METRIC_MESSAGES,
                id,
                self.messages as f64,
                SampleKind::Counter,
                &[],
            ),
        ];
        for (kind, count) in &self.errors {
            out.push(sample(
                METRIC_ERRORS,
                id,
                *count as f64,
                SampleKind::Counter,
                &[("kind", kind)],
            ));
        }
        for ((topic, kind), count) in &self.payload_errors {
            out.push(sample(
                METRIC_PAYLOAD_ERRORS,
                id,
                *count as f64,
                SampleKind::Counter,
                &[("topic", topic), ("kind", kind)],
            ));
        }
        for (target, last) in &self.last_seen_ms {
            let fresh = now_ms.saturating_sub(*last) < self.stale_after_ms;
            out.push(sample(
                METRIC_SENSOR_UP,
                target,
                if fresh { 1.0 } else { 0.0 },
                SampleKind::Gauge,
                &[("source", id)],
            ));
            out.push(sample(
                METRIC_SENSOR_LAST,
                target,
                *last as f64 / 1000.0,
                SampleKind::Gauge,
                &[("source", id)],
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::mqtt::config::{TopicConfig, ValueConfig};

    fn state() -> SourceState {
        let topic = TopicConfig {
            topic: "z/{sensor}".into(),
            target: "{sensor}".into(),
            labels: BTreeMap::new(),
            values: vec![ValueConfig {
                field: Some("t".into()),
                metric: "temp".into(),
                scale: 1.0,
                offset: 0.0,
                kind: SampleKind::Gauge,
                labels: BTreeMap::new(),
            }],
        };
        let maps = vec![TopicMap::compile(&topic).unwrap()];
        SourceState::new("broker1", maps, 10_000)
    }

    fn value(
        samples: &[Sample],
        metric: &str,
        target: &str,
        label: Option<(&str, &str)>,
    ) -> Option<f64> {
        samples
            .iter()
            .find(|s| {
                s.metric == metric
                    && s.target == target
                    && label.is_none_or(|(k, v)| s.labels.get(k).map(String::as_str) == Some(v))
            })
            .map(|s| s.value)
    }

    #[test]
    fn a_silent_sensor_goes_stale_and_comes_back() {
        let mut s = state();
        assert_eq!(s.filters(), vec!["z/+".to_string()]);
        // (time ms, message for sensor a?, expected up of a)
        let steps = [
            (0, true, 1.0),
            (9_999, false, 1.0),
            (10_000, false, 0.0),
            (15_000, true, 1.0),
        ];
        for (t, publish, want) in steps {
            if publish {
                let got = s.on_message("z/a", br#"{"t":20}"#, t);
                assert_eq!(got.samples.len(), 1);
            }
            let health = s.health(t);
            assert_eq!(
                value(&health, METRIC_SENSOR_UP, "a", None),
                Some(want),
                "at {t}"
            );
        }
        // A sensor that never sent a readable value is not tracked.
        s.on_message("z/b", b"garbage", 0);
        assert_eq!(value(&s.health(0), METRIC_SENSOR_UP, "b", None), None);
    }

    #[test]
    fn errors_are_counted_per_topic_and_kind() {
        let mut s = state();
        s.set_connected(true);
        s.on_message("z/a", b"{", 0);
        s.on_message("z/a", b"{", 0);
        s.on_message("z/a", br#"{"u":1}"#, 0);
        s.on_message("unrelated/topic", b"1", 0);
        s.count_error("refused_credentials");
        let h = s.health(0);
        assert_eq!(value(&h, METRIC_CONNECTED, "broker1", None), Some(1.0));
        assert_eq!(value(&h, METRIC_MESSAGES, "broker1", None), Some(4.0));
        assert_eq!(
            value(
                &h,
                METRIC_PAYLOAD_ERRORS,
                "broker1",
                Some(("kind", "not_json"))
            ),
            Some(2.0)
        );
        assert_eq!(
            value(
                &h,
                METRIC_PAYLOAD_ERRORS,
                "broker1",
                Some(("kind", "missing_field"))
            ),
            Some(1.0)
        );
        assert_eq!(
            value(
                &h,
                METRIC_ERRORS,
                "broker1",
                Some(("kind", "refused_credentials"))
            ),
            Some(1.0)
        );
    }

    #[test]
    fn error_topics_are_bounded() {
        let mut s = state();
        for i in 0..MAX_ERROR_TOPICS + 50 {
            s.on_message(&format!("z/s{i}"), b"x", 0);
        }
        assert_eq!(s.payload_errors.len(), MAX_ERROR_TOPICS + 1);
        assert_eq!(
            s.payload_errors.get(&("(other)".to_string(), "not_json")),
            Some(&50)
        );
    }
}
