//! A real Modbus TCP server for the tests: pymodbus' server (PyPI, in the test venv that
//! `scripts/install-test-deps.sh` makes) serving the fixed registers of
//! `tests/peers/modbus_server.py` on a free 127.0.0.1 port, killed when the guard drops.

use crate::{Daemon, free_port};
use anyhow::bail;
use std::path::Path;
use std::time::{Duration, Instant};

/// A running pymodbus server; killed on drop.
pub struct ModbusServer {
    _daemon: Daemon,
    /// Its TCP port on 127.0.0.1.
    pub port: u16,
}

impl ModbusServer {
    /// Starts the server, logging to `dir/modbus-server.log`; waits until it accepts connections.
    pub fn start(dir: &Path) -> anyhow::Result<Self> {
        let python = crate::snmp_peers::venv().join("bin/python");
        if !python.exists() {
            bail!(
                "{} missing: run scripts/install-test-deps.sh",
                python.display()
            );
        }
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("peers/modbus_server.py");
        let port = free_port();
        let daemon = Daemon::spawn(
            &python,
            &[&script.to_string_lossy(), &port.to_string()],
            &dir.join("modbus-server.log"),
            &[],
        )?;
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok(Self {
                    _daemon: daemon,
                    port,
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        bail!("pymodbus server not listening; log:\n{}", daemon.log())
    }

    /// `127.0.0.1:PORT`.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}
