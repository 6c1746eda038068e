//! Prometheus remote-write receiver (remote-write 1.0): `POST /api/v1/write` bodies from
//! Prometheus, vmagent or anything speaking the protocol enter the same flow as agent batches —
//! `http → remote_write → ingest → series store / rules → incidents` — so node_exporter data fire
//! the same rules and open the same tickets.
//!
//! The sender authenticates with an `[[agents]]` token (Prometheus `authorization:
//! credentials_file`); its samples are that agent's (series limits, `agent` label). [`decode`] is
//! the pure core (snappy → protobuf → samples, labels mapped to inventory targets by
//! [`config::RemoteWriteConfig`]); [`receive`] feeds [`crate::ingest::Ingest::push_samples`] and
//! counts; [`proto`] holds the messages, shared with the sender ([`crate::remote_write_out`]).

pub mod config;
pub mod decode;
pub mod proto;
pub mod receive;

pub use config::RemoteWriteConfig;
pub use receive::Receiver;
