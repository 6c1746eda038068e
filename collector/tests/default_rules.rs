//! The built-in rule set reads what the agent's SNMP sources really export: every `faultline_snmp_…`
//! metric a default rule (or its `divide_by`) names is a metric of a shipped device profile or of
//! the poller's and trap listener's own health samples. A rule on a name no source sends would
//! never fire. (Host metrics are checked end to end against the real agent in the e2e suite.)

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use faultline_collector::incidents::DEFAULT_RULES;
use faultline_incidents::RuleSet;
use faultline_snmp::ProfileCatalog;
use faultline_snmp::{poller, trap};
use faultline_wire::config_file::ConfigSource;
use std::collections::BTreeSet;
use std::path::Path;

#[test]
fn default_rules_read_metrics_the_snmp_sources_export() {
    let catalog = ProfileCatalog::builtin().unwrap();
    let mut exported: BTreeSet<&str> = catalog
        .iter()
        .flat_map(|p| {
            p.scalars
                .iter()
                .chain(p.tables.iter().flat_map(|t| t.columns.iter()))
        })
        .map(|m| m.metric.as_str())
        .collect();
    exported.extend([
        poller::METRIC_UP,
        poller::METRIC_POLL_DURATION,
        poller::METRIC_TIMEOUTS,
        poller::METRIC_ERRORS,
        poller::METRIC_LAST_SUCCESS,
        poller::METRIC_REBOOTS,
        poller::METRIC_UPTIME,
        trap::METRIC_TRAPS,
        trap::METRIC_TRAP_IF_OPER_STATUS,
    ]);

    let source = ConfigSource::from_text(Path::new("default.toml"), DEFAULT_RULES.to_string());
    let rules = RuleSet::from_sources(&[source]).unwrap();
    let mut read = 0;
    for rule in rules.rules() {
        for metric in std::iter::once(&rule.metric).chain(&rule.divide_by) {
            if metric.starts_with("faultline_snmp_") {
                read += 1;
                assert!(
                    exported.contains(metric.as_str()),
                    "rule {} reads `{metric}`, which no SNMP profile or poller exports; exported: {exported:#?}",
                    rule.name
                );
            }
        }
    }
    assert!(
        read >= 10,
        "the default rules cover the machine room's SNMP devices ({read})"
    );
}
