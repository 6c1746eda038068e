//! Capacity watch core (ingest → **capacity** → incidents): resource pools declared in the
//! inventory ([`pool`]), their usage rolled up hourly and kept for a year ([`history`]), a robust
//! time-to-full forecast ([`forecast`]), the decision whether a pool needs planning and the
//! non-paging planning ticket that says so ([`decide`]), the per-pool memory that requests
//! each need once ([`watch`]), and the rate of a counted metric as usage ([`rate`]). The collector's capacity task feeds it readings and the time;
//! nothing here owns a clock, a task or a file ([`crate::store`] keeps the history).

pub mod decide;
pub mod forecast;
pub mod history;
pub mod pool;
pub mod rate;
pub mod watch;

pub use decide::{CAPACITY_RULE, Level, PlanningNeed, PoolState};
pub use history::HourBucket;
pub use pool::{Pool, PoolKind};
pub use rate::CounterRates;
pub use watch::{Evaluation, Watch};
