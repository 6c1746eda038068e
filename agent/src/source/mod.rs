//! Sources: the first stage of the agent's flow (`source → batcher → outbox → transport`).
//!
//! Each source runs as its own task on its own schedule and sends every collection it makes into
//! the batcher's bounded channel, so one slow or dead source never delays another.

pub mod host;

use faultline_wire::Sample;
use std::collections::BTreeMap;

/// What a source sends downstream: the samples of one collection.
pub type Collection = Vec<Sample>;

/// Labels every sample of this agent carries (site and room from config).
pub type BaseLabels = BTreeMap<String, String>;
