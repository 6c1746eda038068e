//! MQTT sensors through a real mosquitto: values arrive at the collector with the mapping's labels
//! and scaling, a payload the mapping does not expect is counted per topic and logged (the source
//! keeps going), a sensor that stops publishing is reported down, and a broker that refuses the
//! agent's credentials is a counted, logged error.

use faultline_tests::mosquitto::{Access, Mosquitto};
use faultline_tests::*;
use std::time::Duration;

const TOPICS: &str = r#"
[[mqtt.topics]]
topic = "zigbee2mqtt/{sensor}"
target = "{sensor}"
labels = { vendor = "zigbee2mqtt" }
values = [
  { field = "temperature", metric = "faultline_sensor_temperature_celsius" },
  { field = "humidity", metric = "faultline_sensor_humidity_percent" },
]

[[mqtt.topics]]
topic = "tele/{device}/SENSOR"
target = "{device}"
values = [{ field = "AM2301.Temperature", metric = "faultline_sensor_temperature_celsius" }]

[[mqtt.topics]]
topic = "plain/{room}/{sensor}/decicelsius"
target = "{room}-{sensor}"
values = [{ metric = "faultline_sensor_temperature_celsius", scale = 0.1 }]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sensor_values_errors_and_staleness() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Mosquitto::start(dir.path(), Access::Anonymous).unwrap();
    let locked = Mosquitto::start(
        dir.path(),
        Access::Password {
            user: "faultline",
            password: "right",
        },
    )
    .unwrap();
    let collector = CollectorProcess::start(dir.path(), free_port(), "")
        .await
        .unwrap();
    let extra = format!(
        "[[mqtt]]\nid = \"room-a\"\nstale_after = \"2s\"\nhealth_interval = \"300ms\"\n[mqtt.broker]\naddress = \"{}\"\nmin_backoff = \"100ms\"\nmax_backoff = \"500ms\"\n{TOPICS}\n\
         [[mqtt]]\nid = \"locked\"\nhealth_interval = \"300ms\"\n[mqtt.broker]\naddress = \"{}\"\nusername = \"faultline\"\npassword = \"wrong\"\nmin_backoff = \"100ms\"\nmax_backoff = \"200ms\"\n\
         [[mqtt.topics]]\ntopic = \"x/{{s}}\"\ntarget = \"{{s}}\"\nvalues = [{{ metric = \"m\" }}]\n",
        broker.address(),
        locked.address()
    );
    let config = agent_config(dir.path(), &collector.url, "60s", &extra).unwrap();
    let mut agent = start_agent(dir.path(), &config).unwrap();

    // Publish until the values arrive: the agent subscribes a moment after it starts.
    let publish_all = || {
        broker
            .publish(
                "zigbee2mqtt/cold-aisle-1",
                r#"{"temperature":23.4,"humidity":41,"linkquality":96}"#,
            )
            .unwrap();
        broker
            .publish(
                "tele/rack7/SENSOR",
                r#"{"Time":"2026-01-01T00:00:00","AM2301":{"Temperature":21.5,"Humidity":40.1},"TempUnit":"C"}"#,
            )
            .unwrap();
        broker.publish("plain/a/s3/decicelsius", "187").unwrap();
        broker
            .publish("zigbee2mqtt/cold-aisle-1", "not json")
            .unwrap();
    };
    let temperature = "faultline_sensor_temperature_celsius";
    let last = std::sync::Mutex::new(String::new());
    let arrived = wait_until(Duration::from_secs(20), || async {
        publish_all();
        let text = collector.scrape().await;
        let ok = metric_value(&text, temperature, &[("target", "a-s3")]).is_some()
            && metric_value(&text, temperature, &[("target", "rack7")]).is_some()
            && metric_value(&text, temperature, &[("target", "cold-aisle-1")]).is_some()
            && metric_value(
                &text,
                "faultline_mqtt_errors_total",
                &[("target", "locked"), ("kind", "refused_credentials")],
            )
            .is_some()
            // The agent's counters come with its health, on their own schedule.
            && metric_value(
                &text,
                "faultline_mqtt_payload_errors_total",
                &[("target", "room-a"), ("kind", "not_json")],
            )
            .is_some_and(|n| n >= 1.0);
        *last.lock().unwrap() = text;
        ok
    })
    .await;
    let text = last.lock().unwrap().clone();
    assert!(
        arrived,
        "sensor values missing; metrics:\n{text}\nagent log:\n{}",
        agent.log()
    );

    let zigbee = [
        ("agent", "a1"),
        ("target", "cold-aisle-1"),
        ("sensor", "cold-aisle-1"),
        ("vendor", "zigbee2mqtt"),
        ("site", "test-site"),
        ("room", "test-room"),
    ];
    assert_eq!(metric_value(&text, temperature, &zigbee), Some(23.4));
    assert_eq!(
        metric_value(&text, "faultline_sensor_humidity_percent", &zigbee),
        Some(41.0)
    );
    assert_eq!(
        metric_value(
            &text,
            temperature,
            &[("target", "rack7"), ("device", "rack7")]
        ),
        Some(21.5)
    );
    // The topic's `{room}` capture wins over the agent's room label.
    assert_eq!(
        metric_value(
            &text,
            temperature,
            &[("target", "a-s3"), ("room", "a"), ("sensor", "s3")]
        ),
        Some(18.7)
    );
    let payload_errors = metric_value(
        &text,
        "faultline_mqtt_payload_errors_total",
        &[
            ("target", "room-a"),
            ("topic", "zigbee2mqtt/cold-aisle-1"),
            ("kind", "not_json"),
        ],
    );
    assert!(payload_errors.is_some_and(|n| n >= 1.0), "{text}");
    assert_eq!(
        metric_value(&text, "faultline_mqtt_connected", &[("target", "room-a")]),
        Some(1.0)
    );
    assert_eq!(
        metric_value(&text, "faultline_mqtt_connected", &[("target", "locked")]),
        Some(0.0)
    );
    assert_eq!(
        metric_value(&text, "faultline_mqtt_sensor_up", &[("target", "rack7")]),
        Some(1.0)
    );

    // Only rack7 keeps publishing: cold-aisle-1 goes stale (2 s), rack7 stays up.
    let stale = wait_until(Duration::from_secs(15), || async {
        broker
            .publish("tele/rack7/SENSOR", r#"{"AM2301":{"Temperature":21.6}}"#)
            .unwrap();
        let text = collector.scrape().await;
        let ok = metric_value(
            &text,
            "faultline_mqtt_sensor_up",
            &[("target", "cold-aisle-1")],
        ) == Some(0.0)
            && metric_value(&text, "faultline_mqtt_sensor_up", &[("target", "rack7")]) == Some(1.0);
        *last.lock().unwrap() = text;
        ok
    })
    .await;
    assert!(
        stale,
        "cold-aisle-1 not reported down:\n{}",
        last.lock().unwrap()
    );

    // Logged with the topic (rate-limited: the bad payload was sent many times) and the source.
    let log = agent.log();
    let bad = log_events(&log, "MQTT payload not as the mapping expects");
    assert!(!bad.is_empty(), "no payload log line:\n{log}");
    assert_eq!(bad[0]["fields"]["topic"], "zigbee2mqtt/cold-aisle-1");
    assert_eq!(bad[0]["fields"]["source"], "room-a");
    assert!(
        bad.len() <= 2,
        "payload log not rate-limited: {} lines",
        bad.len()
    );
    let refused = log_events(&log, "MQTT connection failed");
    assert!(
        refused
            .iter()
            .any(|e| e["fields"]["source"] == "locked"
                && e["fields"]["kind"] == "refused_credentials"),
        "no refused-credentials log line:\n{log}"
    );
    assert!(
        refused.len() <= 3,
        "connection log not rate-limited: {}",
        refused.len()
    );
    assert!(agent.running(), "agent died:\n{log}");
}
