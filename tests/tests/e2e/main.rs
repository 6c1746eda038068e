//! End-to-end tests: the real agent and collector binaries against each other and real peers on
//! 127.0.0.1. Every wait is bounded; every process is killed when its guard drops.
// A failed unwrap is a failed test here, which is exactly what it should be.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod ack_link;
mod bad_input;
mod capacity;
mod carrier;
mod cli;
mod console;
mod demo;
mod desk;
mod followups;
mod full_disk;
mod incidents;
mod ingest_bounds;
mod judged;
mod mailbox;
mod modbus;
mod mqtt_sensors;
mod mqtt_transport;
mod order;
mod outage;
mod packaging;
mod pipeline;
mod poll;
mod postgres_store;
mod probes;
mod prometheus;
mod reload;
mod remote_write;
mod remote_write_out;
mod report;
mod scenarios;
mod snmp;
mod soak;
mod tls;
