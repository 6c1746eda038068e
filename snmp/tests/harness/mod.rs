//! The SNMP test peers come from the shared harness (`faultline_tests::snmp_peers`); this module
//! adds what needs the SNMP client itself, and an in-process responder for cases no real agent
//! produces (tooBig, huge tables).

pub mod table_agent;

pub use faultline_tests::snmp_peers::*;
use std::time::{Duration, Instant};

/// Waits until `address` answers a v2c GET for sysUpTime with `community`.
pub async fn wait_ready(peer: &Peer, community: &str, within: Duration) {
    let mut config = faultline_snmp::DeviceConfig::v2c("probe", &peer.address(), community);
    config.timeout = Duration::from_millis(300);
    config.retries = 0;
    let oid: faultline_snmp::Oid = "1.3.6.1.2.1.1.3.0".parse().unwrap();
    let deadline = Instant::now() + within;
    loop {
        let mut client = faultline_snmp::Client::new(&config);
        if client.get(std::slice::from_ref(&oid)).await.is_ok() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "peer on {} not ready after {within:?}; log:\n{}",
            peer.address(),
            peer.log_text()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
