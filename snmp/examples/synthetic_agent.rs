//! Serves a synthetic IF-MIB with N interfaces on 127.0.0.1 (the test harness's agent, as a
//! separate process) so the fleet benchmark measures the poller alone.
//!
//! `cargo run --release -p faultline-snmp --example synthetic_agent -- 48 16100`

#[allow(dead_code, clippy::unwrap_used, clippy::expect_used)]
#[path = "../tests/harness/table_agent.rs"]
mod table_agent;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let interfaces: u32 = args.first().map_or(Ok(48), |a| a.parse())?;
    let port: u16 = args.get(1).map_or(Ok(16100), |a| a.parse())?;
    let socket = tokio::net::UdpSocket::bind(("127.0.0.1", port)).await?;
    let mib = table_agent::Mib::interfaces(interfaces);
    println!("serving {interfaces} interfaces on 127.0.0.1:{port}");
    let mut buf = vec![0u8; 65_536];
    loop {
        let (n, from) = socket.recv_from(&mut buf).await?;
        if let Some(reply) = mib.answer(&buf[..n]) {
            socket.send_to(&reply, from).await?;
        }
    }
}
