//! What the incident stage runs on (config → **incidents**): the rule, inventory, on-call and
//! maintenance files `[incidents]` names, loaded and validated (errors name the file, line and
//! field), and the ticket policy with each tag's escalation times.

use super::metrics::TAGS;
use super::{DEFAULT_RULES, DEFAULT_RULES_NAME};
use crate::config::IncidentsConfig;
use faultline_incidents::dispatch::Env;
use faultline_incidents::maintenance::Maintenance;
use faultline_incidents::oncall::OnCall;
use faultline_incidents::ticket::FlapPolicy;
use faultline_incidents::{Inventory, Millis, RuleSet, TicketPolicy};
use faultline_wire::config_file::{ConfigError, ConfigSource};
use std::path::Path;
use std::sync::Arc;

/// What the stage runs on, loaded and validated from the files `[incidents]` names.
#[derive(Debug)]
pub struct Setup {
    pub(super) rules: RuleSet,
    pub(super) inventory: Arc<Inventory>,
    pub(super) maintenance: Maintenance,
    pub(super) oncall: Option<OnCall>,
    /// `[incidents.tickets]` with the escalation times of each tag's on-call policy.
    pub(super) policy: TicketPolicy,
    /// `[incidents] correlation_window`.
    correlation_window_ms: Millis,
}

fn read_optional<T>(
    path: Option<&Path>,
    load: impl FnOnce(&ConfigSource) -> Result<T, ConfigError>,
) -> Result<Option<T>, ConfigError> {
    path.map(|p| load(&ConfigSource::read(p)?)).transpose()
}

impl Setup {
    /// Reads and validates the rule, inventory, on-call and maintenance files; errors name the
    /// file, line and field. The on-call file must define every policy `[incidents.escalation]`
    /// names; their levels' `after` become the ticket policy's escalation times per tag (paging
    /// by schedule is the notifier stage's).
    pub fn load(config: &IncidentsConfig) -> Result<Self, ConfigError> {
        let sources = if config.rule_files.is_empty() {
            vec![ConfigSource::from_text(
                Path::new(DEFAULT_RULES_NAME),
                DEFAULT_RULES.to_string(),
            )]
        } else {
            config
                .rule_files
                .iter()
                .map(|p| ConfigSource::read(p))
                .collect::<Result<Vec<_>, _>>()?
        };
        let rules = RuleSet::from_sources(&sources)?;
        let inventory =
            read_optional(config.inventory_file.as_deref(), Inventory::load)?.unwrap_or_default();
        let maintenance = read_optional(config.maintenance_file.as_deref(), |s| {
            Maintenance::load(s, &inventory)
        })?
        .unwrap_or_default();
        let oncall = read_optional(config.oncall_file.as_deref(), |source| {
            let oncall = OnCall::load(source)?;
            match config
                .escalation
                .named()
                .find(|(_, policy)| oncall.escalation(policy).is_none())
            {
                Some((field, policy)) => Err(source.error(
                    "escalations",
                    format!(
                        "no escalation policy `{policy}` (named by incidents.escalation.{field})"
                    ),
                )),
                None => Ok(oncall),
            }
        })?;
        let mut policy = config.tickets.clone();
        policy.flap_by_rule = rules
            .rules()
            .iter()
            .filter(|r| r.flap_threshold.is_some() || r.flap_window.is_some())
            .map(|r| {
                let flap = FlapPolicy {
                    threshold: r.flap_threshold.unwrap_or(policy.flap_threshold),
                    window: r.flap_window.unwrap_or(policy.flap_window),
                };
                (r.name.clone(), flap)
            })
            .collect();
        if let Some(oncall) = &oncall {
            // Every policy named exists (checked above).
            policy.escalation = TAGS
                .into_iter()
                .filter_map(|tag| {
                    let id = config.escalation.policy(tag)?;
                    Some((tag, oncall.escalation_offsets(id).ok()?))
                })
                .collect();
        }
        Ok(Self {
            rules,
            inventory: Arc::new(inventory),
            maintenance,
            oncall,
            policy,
            correlation_window_ms: i64::try_from(config.correlation_window.as_millis())
                .unwrap_or(i64::MAX),
        })
    }

    /// What the dispatch judges with.
    pub(super) fn env(&self) -> Env<'_> {
        Env {
            inventory: &self.inventory,
            policy: &self.policy,
            maintenance: &self.maintenance,
            correlation_window_ms: self.correlation_window_ms,
        }
    }

    /// The inventory, shared with ingest (which re-targets samples before the series store).
    pub fn inventory(&self) -> Arc<Inventory> {
        Arc::clone(&self.inventory)
    }

    /// Takes the on-call file out (the notifier's paging owns it).
    pub fn take_oncall(&mut self) -> Option<OnCall> {
        self.oncall.take()
    }

    /// Number of rules loaded.
    pub fn rule_count(&self) -> usize {
        self.rules.rules().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::path::Path;
    use std::time::Duration;

    #[test]
    fn built_in_rules_load_and_files_are_checked() {
        let source = ConfigSource::from_text(Path::new("c.toml"), "[incidents]\n".into());
        #[derive(serde::Deserialize)]
        struct Wrapper {
            incidents: IncidentsConfig,
        }
        let mut config = source.parse::<Wrapper>().unwrap().incidents;
        let setup = Setup::load(&config).unwrap();
        assert!(setup.rule_count() >= 10, "the machine-room defaults");

        let dir = tempfile::tempdir().unwrap();
        let inventory = dir.path().join("inventory.toml");
        std::fs::write(
            &inventory,
            "[[targets]]\nid = \"vm-1\"\nkind = \"vm\"\nowner = \"customer\"\ndepends_on = [\"nowhere\"]\n",
        )
        .unwrap();
        config.inventory_file = Some(inventory);
        let err = Setup::load(&config).unwrap_err();
        assert!(err.to_string().contains("inventory.toml"), "{err}");
        assert!(err.field.starts_with("targets[0]"), "{err}");

        // The on-call file must define the escalation policies [incidents.escalation] names.
        config.inventory_file = None;
        let oncall = dir.path().join("oncall.toml");
        std::fs::write(
            &oncall,
            "[[people]]\nid = \"ana\"\n\n[[escalations]]\nid = \"ops\"\nlevels = [{ person = \"ana\" }, { person = \"ana\", after = \"10s\" }]\n",
        )
        .unwrap();
        config.oncall_file = Some(oncall);
        config.escalation.default = Some("ops".into());
        let setup = Setup::load(&config).unwrap();
        assert!(setup.oncall.is_some());
        // The ticket escalates on the policy's times, for every tag (all take the default).
        let times = vec![Duration::ZERO, Duration::from_secs(10)];
        assert_eq!(
            setup.policy.escalation,
            BTreeMap::from(TAGS.map(|tag| (tag, times.clone())))
        );
        config.escalation.carrier = Some("noc".into());
        let err = Setup::load(&config).unwrap_err();
        assert_eq!(
            (err.field.as_str(), err.position.map(|p| p.0)),
            ("escalations", Some(4)),
            "{err}"
        );
        assert!(
            err.message.contains("incidents.escalation.carrier"),
            "{err}"
        );
    }
}
