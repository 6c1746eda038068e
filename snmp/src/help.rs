//! Help text of every series the SNMP source produces: the `help` field of each profile metric and
//! a line for each poller and trap-listener health metric. The agent sends it with its batches
//! (once per family per batch) so the collector's exposition keeps each family's own help.

use crate::ProfileCatalog;
use crate::poller::{
    METRIC_ERRORS, METRIC_LAST_SUCCESS, METRIC_MAX_REPETITIONS, METRIC_POLL_DURATION,
    METRIC_REBOOTS, METRIC_TIMEOUTS, METRIC_UP, METRIC_UPTIME,
};
use crate::trap::{
    METRIC_TRAP_IF_OPER_STATUS, METRIC_TRAP_PACKETS, METRIC_TRAP_SERIES_EVICTED,
    METRIC_TRAP_USM_STATS, METRIC_TRAPS,
};

/// The poller's and trap listener's own series.
const HEALTH: [(&str, &str); 13] = [
    (
        METRIC_UP,
        "1 when the device answered this poll, 0 when not.",
    ),
    (METRIC_POLL_DURATION, "Wall time of the device's last poll."),
    (
        METRIC_TIMEOUTS,
        "SNMP requests to the device that timed out (every attempt).",
    ),
    (
        METRIC_ERRORS,
        "Failed requests and values that could not become samples, by kind (timeout, network, protocol, error_status, not_increasing, value).",
    ),
    (
        METRIC_LAST_SUCCESS,
        "Unix time of the last poll the device answered.",
    ),
    (
        METRIC_REBOOTS,
        "Device restarts seen (sysUpTime went back).",
    ),
    (METRIC_UPTIME, "Device uptime (sysUpTime)."),
    (
        METRIC_MAX_REPETITIONS,
        "GETBULK max-repetitions in use after back-off.",
    ),
    (
        METRIC_TRAPS,
        "Traps and informs received, by sender and trap OID.",
    ),
    (
        METRIC_TRAP_IF_OPER_STATUS,
        "Interface state announced by linkDown/linkUp traps (ifOperStatus numbers).",
    ),
    (
        METRIC_TRAP_PACKETS,
        "Packets at the trap listener, by result (accepted, discovery, malformed, rejected, unsupported).",
    ),
    (
        METRIC_TRAP_USM_STATS,
        "The trap listener's RFC 3414 usmStats counters, by stat: why SNMPv3 messages were dropped.",
    ),
    (
        METRIC_TRAP_SERIES_EVICTED,
        "Per-sender trap counters forgotten to stay within snmp.traps.max_series.",
    ),
];

/// (metric, help) of every SNMP series: the health metrics, then each metric of `catalog`'s
/// profiles that has help. A metric several profiles share keeps the first profile's line.
pub fn metric_help(catalog: &ProfileCatalog) -> Vec<(String, String)> {
    let health = HEALTH.iter().map(|(m, h)| (m.to_string(), h.to_string()));
    let profiles = catalog.iter().flat_map(|profile| {
        let columns = profile.tables.iter().flat_map(|t| &t.columns);
        profile
            .scalars
            .iter()
            .chain(columns)
            .filter(|m| !m.help.is_empty())
            .map(|m| (m.metric.clone(), m.help.clone()))
            .collect::<Vec<_>>()
    });
    let mut out: Vec<(String, String)> = Vec::new();
    for (metric, help) in health.chain(profiles) {
        if !out.iter().any(|(m, _)| *m == metric) {
            out.push((metric, help));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_metric_has_help() {
        let catalog = ProfileCatalog::builtin().unwrap();
        let help = metric_help(&catalog);
        for profile in catalog.iter() {
            let columns = profile.tables.iter().flat_map(|t| &t.columns);
            for metric in profile.scalars.iter().chain(columns) {
                assert!(
                    help.iter()
                        .any(|(m, h)| *m == metric.metric && !h.is_empty()),
                    "{} in {} has no help",
                    metric.metric,
                    profile.name
                );
            }
        }
        assert!(help.iter().any(|(m, _)| m == METRIC_UP));
    }
}
