//! End-to-end tests: the real agent and collector binaries against each other and real peers on
//! 127.0.0.1. Every wait is bounded; every process is killed when its guard drops.

mod bad_input;
mod cli;
mod outage;
mod pipeline;
mod prometheus;
mod tls;
