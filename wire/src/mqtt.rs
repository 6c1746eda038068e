//! The MQTT transport's contract between agent and collector: where an agent publishes its
//! batches and what a message holds. A batch travels as on HTTP (the same compressed JSON),
//! behind the agent's bearer token, so the collector authenticates it as it does a push even
//! when the broker's own ACLs are loose. Agents publish with QoS 1 to their own topic; the
//! collector subscribes with QoS 1 and a persistent session. Several collectors share the load
//! through a shared subscription (`$share/<group>/…`) on a broker cluster.

/// Topic level before the agent id.
const PREFIX: &str = "faultline/v1/agents/";
/// Topic level after the agent id.
const SUFFIX: &str = "/batches";

/// The topic agent `agent` publishes its batches to: `faultline/v1/agents/<agent>/batches`.
pub fn batch_topic(agent: &str) -> String {
    format!("{PREFIX}{agent}{SUFFIX}")
}

/// The collector's subscription filter: every agent's batches, through the shared subscription
/// `group` when given (`$share/<group>/faultline/v1/agents/+/batches`).
pub fn batch_filter(group: Option<&str>) -> String {
    let filter = format!("{PREFIX}+{SUFFIX}");
    match group {
        Some(group) => format!("$share/{group}/{filter}"),
        None => filter,
    }
}

/// The agent id of a batch topic, `None` for any other topic.
pub fn agent_of_topic(topic: &str) -> Option<&str> {
    topic
        .strip_prefix(PREFIX)?
        .strip_suffix(SUFFIX)
        .filter(|agent| !agent.is_empty() && !agent.contains('/'))
}

/// A message's payload: the agent's token, a newline, then the encoded batch.
pub fn encode_message(token: &str, batch: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(token.len() + 1 + batch.len());
    out.extend_from_slice(token.as_bytes());
    out.push(b'\n');
    out.extend_from_slice(batch);
    out
}

/// Splits a payload into token and encoded batch; `None` when it has no token line.
pub fn decode_message(payload: &[u8]) -> Option<(&[u8], &[u8])> {
    let at = payload.iter().position(|b| *b == b'\n')?;
    let (token, rest) = payload.split_at(at);
    (!token.is_empty()).then_some((token, &rest[1..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_round_trip() {
        assert_eq!(batch_topic("gw-7"), "faultline/v1/agents/gw-7/batches");
        assert_eq!(batch_filter(None), "faultline/v1/agents/+/batches");
        assert_eq!(
            batch_filter(Some("collectors")),
            "$share/collectors/faultline/v1/agents/+/batches"
        );
        let cases = [
            ("faultline/v1/agents/gw-7/batches", Some("gw-7")),
            ("faultline/v1/agents//batches", None),
            ("faultline/v1/agents/a/b/batches", None),
            ("faultline/v2/agents/a/batches", None),
            ("faultline/v1/agents/a/other", None),
        ];
        for (topic, want) in cases {
            assert_eq!(agent_of_topic(topic), want, "{topic}");
        }
    }

    #[test]
    fn messages_round_trip() {
        let message = encode_message("tok", b"\x28\xb5batch\nwith newline");
        assert_eq!(
            decode_message(&message),
            Some((&b"tok"[..], &b"\x28\xb5batch\nwith newline"[..]))
        );
        assert_eq!(decode_message(b"no token line"), None);
        assert_eq!(decode_message(b"\nbody"), None);
    }
}
