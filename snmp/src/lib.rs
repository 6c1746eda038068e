//! Faultline's SNMP source: polls machine-room devices (UPSes, environment monitors, firewalls,
//! switches, servers) and turns their answers into [`faultline_wire::Sample`]s.
//!
//! Sits at the very start of the agent's flow: **source** → batch → outbox → transport → ingest.
//! Layout, from data to I/O:
//! - [`profile`]: device profiles as TOML data, validated with file:line:field errors;
//!   [`catalog`]: the built-in and user profiles, and which of them a device gets;
//! - [`value`], [`collect`], [`counters`]: the pure core — decode values, build samples from
//!   varbinds, keep counters continuous across wraps and reboots;
//! - [`row_scale`]: scale a column by other columns of its row (storage bytes, sensor units);
//! - [`state_map`]: map vendors' state numbers onto one numbering (HA role, fan state);
//! - [`config`]: the `[[snmp.devices]]` settings and their checks;
//! - [`client`], [`poller`]: the thin async shell on `snmp2` — one task per device;
//! - [`trap`]: the trap/inform listener; [`trap_counts`]: its bounded per-sender bookkeeping.
//! - [`usm_responder`]: the listener's SNMPv3 USM as authoritative engine (v3 INFORMs).
//! - [`help`]: the help text of every series the source produces, sent along with them.

pub mod catalog;
pub mod client;
pub mod collect;
pub mod config;
pub mod counters;
pub mod help;
pub mod oid;
pub mod poller;
pub mod profile;
pub mod row_scale;
pub mod state_map;
pub mod trap;
pub mod trap_counts;
pub mod usm_responder;
pub mod value;

pub use catalog::ProfileCatalog;
pub use client::{Client, ErrorKind, SnmpError};
pub use config::{ConfigIssue, DeviceConfig, Severity, SnmpVersion, UsmConfig, validate_devices};
pub use oid::Oid;
pub use poller::{DevicePoller, PollLimit, PollOutcome, run_device};
pub use profile::Profile;
pub use trap::{TrapConfig, run_trap_listener, trap_targets};
