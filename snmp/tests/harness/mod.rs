//! The SNMP test peers come from the shared harness (`faultline_tests::snmp_peers`); this module
//! adds what needs the SNMP client itself: waiting for a peer, one poll of a recording. (The
//! in-process responder for cases no real agent produces is `table_agent.rs`, beside it.)

use faultline_snmp::{DeviceConfig, DevicePoller, PollOutcome, ProfileCatalog};
pub use faultline_tests::snmp_peers::*;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One poll of the recording served as `community` by `peer`, with the profiles `named` plus
/// those its sysObjectID selects; every request must succeed and every sample be within the
/// wire limits. Returns the profiles applied and the outcome.
pub async fn poll_recording(
    peer: &Peer,
    community: &str,
    named: &[&str],
    catalog: Arc<ProfileCatalog>,
) -> (Vec<String>, PollOutcome) {
    let mut config = DeviceConfig::v2c(community, &peer.address(), community);
    config.timeout = Duration::from_secs(5);
    config.retries = 1;
    config.profiles = named.iter().map(|p| p.to_string()).collect();
    let mut poller = DevicePoller::new(config, catalog);
    let out = poller.poll().await;
    assert!(
        out.request_errors.is_empty(),
        "{community}: {:#?}\n{}",
        out.request_errors,
        peer.log_text()
    );
    for s in &out.samples {
        faultline_wire::Limits::default()
            .check_sample(s)
            .unwrap_or_else(|e| panic!("{s:?}: {e}"));
    }
    (poller.profiles(), out)
}

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
