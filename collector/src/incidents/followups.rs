//! Customer follow-ups in the incident stage (`[incidents.followups]`): the first sample of a
//! customer department's target starts that department's clock (stored once); each tick plans
//! only the departments whose next follow-up is due ([`followup::plan`]) and stores every due
//! task under its unique key before announcing it. Done is recorded through the API (who, when,
//! note); nothing is deleted.

use super::stage::Stage;
use super::{StageEvent, store_refusal};
use crate::api::Refusal;
use faultline_incidents::followup::{self, FollowUpPolicy, FollowUpTask};
use faultline_incidents::{Millis, Owner, Store, StoreError};
use std::collections::{BTreeMap, BTreeSet};

/// A customer department's follow-up clock.
#[derive(Debug)]
pub(super) struct Clock {
    /// When its first target appeared.
    first_seen_ms: Millis,
    /// Keys of the tasks created so far.
    created: BTreeSet<String>,
    /// When a follow-up next comes due (`None`: never again).
    next_ms: Option<Millis>,
}

impl Clock {
    /// A clock planned at the next tick.
    fn new(first_seen_ms: Millis) -> Self {
        Self {
            first_seen_ms,
            created: BTreeSet::new(),
            next_ms: Some(first_seen_ms),
        }
    }
}

/// Customer follow-ups: the policy, each department's clock and the tasks not done yet.
#[derive(Debug)]
pub(super) struct FollowUps {
    pub(super) policy: FollowUpPolicy,
    pub(super) clocks: BTreeMap<String, Clock>,
    /// Pending tasks by key.
    pub(super) pending: BTreeMap<String, FollowUpTask>,
}

impl FollowUps {
    /// The clocks and tasks stored in `store`; every clock is planned at the first tick.
    pub(super) fn load(policy: FollowUpPolicy, store: &dyn Store) -> Result<Self, StoreError> {
        let mut clocks: BTreeMap<String, Clock> = store
            .first_seen()?
            .into_iter()
            .map(|(department, first_seen_ms)| (department, Clock::new(first_seen_ms)))
            .collect();
        let mut pending = BTreeMap::new();
        for task in store.followups(None, usize::MAX)? {
            if let Some(clock) = clocks.get_mut(&task.followup.department) {
                clock.created.insert(task.key.clone());
            }
            if task.done.is_none() {
                pending.insert(task.key.clone(), task);
            }
        }
        Ok(Self {
            policy,
            clocks,
            pending,
        })
    }
}

impl Stage {
    /// Starts the follow-up clock of `target`'s customer department when this is the first time
    /// (ever, as stored) one of its targets is seen. Called once per target and process.
    pub(super) fn first_sighting(&mut self, target: &str, now: Millis) {
        let inventory = &self.setup.inventory;
        let Some(department) = inventory
            .target(target)
            .filter(|t| t.owner == Owner::Customer)
            .and_then(|_| inventory.department_of(target))
        else {
            return;
        };
        if self.followups.clocks.contains_key(&department.id) {
            return;
        }
        match self.book.store.record_first_seen(&department.id, now) {
            Ok(first_seen_ms) => {
                tracing::info!(department = %department.id, target, first_seen_ms, "first target of a customer department: follow-ups scheduled");
                self.followups
                    .clocks
                    .insert(department.id.clone(), Clock::new(first_seen_ms));
            }
            Err(e) => {
                self.metrics.error("store", 1);
                tracing::error!(department = %department.id, error = %e, "cannot record the department's first target");
            }
        }
    }

    /// Creates the follow-up tasks that came due, for the departments whose clock says so.
    pub(super) fn plan_followups(&mut self, now: Millis) {
        let inventory = &self.setup.inventory;
        for (department, clock) in &mut self.followups.clocks {
            if clock.next_ms.is_none_or(|next| next > now) {
                continue;
            }
            let Some(entry) = inventory.department(department) else {
                clock.next_ms = None; // No longer in the inventory.
                continue;
            };
            let plan = followup::plan(
                &self.followups.policy,
                department,
                clock.first_seen_ms,
                inventory.is_vip(department),
                &clock.created,
                now,
            );
            clock.next_ms = plan.next_ms;
            for due in plan.due {
                let task = FollowUpTask::new(due, entry.contacts.clone(), now);
                match self.book.store.create_followup(&task) {
                    Ok(fed) => {
                        clock.created.insert(task.key.clone());
                        if let Some(position) = fed {
                            tracing::info!(key = %task.key, department = %department, due_at_ms = task.followup.due_at_ms, "follow-up due");
                            self.followups
                                .pending
                                .insert(task.key.clone(), task.clone());
                            self.book
                                .outbox
                                .push(StageEvent::FollowUp { task, position });
                        }
                    }
                    Err(e) => {
                        // Tried again at the next tick.
                        clock.next_ms = Some(now);
                        self.metrics.error("store", 1);
                        tracing::error!(key = %task.key, error = %e, "cannot store a follow-up task");
                    }
                }
            }
        }
    }

    /// Records follow-up task `key` as done by `by` with `note`.
    pub(super) fn complete_followup(
        &mut self,
        key: &str,
        by: &str,
        note: &str,
        now: Millis,
    ) -> Result<FollowUpTask, Refusal> {
        let task = match self.followups.pending.get(key) {
            Some(task) => task.clone(),
            None => self
                .book
                .store
                .followup(key)
                .map_err(store_refusal)?
                .ok_or_else(|| Refusal::UnknownFollowUp(key.to_string()))?,
        };
        let done = task
            .complete(by, note, now)
            .map_err(|e| Refusal::Conflict(e.to_string()))?;
        self.book
            .store
            .complete_followup(&done)
            .map_err(store_refusal)?;
        self.followups.pending.remove(key);
        self.metrics
            .followups_done
            .get_or_create(&[("kind", done.followup.kind.label())])
            .inc();
        tracing::info!(key, by, "follow-up done");
        Ok(done)
    }
}
