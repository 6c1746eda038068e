//! Walks subtrees of a v2c device with faultline-snmp's client and prints the varbind count
//! and the best wall time of several runs — to compare with `snmpbulkwalk` on the same target
//! (`scripts/bench-snmp.sh`).
//!
//! `cargo run --release -p faultline-snmp --example walk -- 127.0.0.1:1161 public 1.3.6.1.2.1.2,1.3.6.1.2.1.31 25 5`
//! (several roots, comma-separated, are walked side by side; a sixth argument `print` lists the
//! OIDs of the last run).

use faultline_snmp::{Client, DeviceConfig, Oid};
use std::time::{Duration, Instant};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [address, community, root, rest @ ..] = args.as_slice() else {
        return Err("usage: walk ADDRESS COMMUNITY OID[,OID…] [MAX_REPETITIONS] [RUNS]".into());
    };
    let roots = root
        .split(',')
        .map(str::parse)
        .collect::<Result<Vec<Oid>, _>>()?;
    let mut config = DeviceConfig::v2c("bench", address, community);
    config.max_repetitions = rest.first().map_or(Ok(25), |r| r.parse())?;
    config.timeout = Duration::from_secs(5);
    let runs: u32 = rest.get(1).map_or(Ok(5), |r| r.parse())?;
    let mut best = Duration::MAX;
    let mut found = Default::default();
    for _ in 0..runs {
        let mut client = Client::new(&config);
        let started = Instant::now();
        found = client.walk("bench", &roots).await?;
        best = best.min(started.elapsed());
    }
    if rest.get(2).is_some_and(|a| a == "print") {
        for (oid, value) in &found {
            println!("{oid} = {value}");
        }
    }
    let count = found.len();
    println!(
        "{count} varbinds, best of {runs}: {:.1} ms",
        best.as_secs_f64() * 1000.0
    );
    Ok(())
}
